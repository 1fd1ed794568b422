package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/inspect"
)

// inspectAbout is what "gateway inspect -h" says besides the flags.
const inspectAbout = `Decodes a token WITHOUT trusting it and explains it: what it is, whether
the gateway configured by -config would accept it, whether its signature
verifies against -jwks, and whether it can serve as an On-Behalf-Of
assertion, and if not, why. "-" reads the token from stdin (prefer it: a
token on the command line stays in the shell's history). A token the
gateway would refuse is a report, not a failure: the exit status is 0
whenever a report is printed.`

// defineInspect is "gateway inspect": it prints the report on stdout and
// fails only when it cannot make one (bad flags, unreadable files); a
// token the gateway would refuse is a report, not an error.
func defineInspect(fs *flag.FlagSet, x *invocation) func(context.Context, []string) error {
	cfgPath := fs.String("config", "", "the gateway's configuration `FILE` (YAML, with the environment over it as for serve): would this gateway accept the token, and on which routes")
	jwksPath := fs.String("jwks", "", "a saved key set to verify the signature with, a `FILE`: JWKS JSON (the tenant's jwks_uri) or PEM certificates")
	atFlag := fs.String("at", "", "evaluate the time claims at this instant, a `TIME`: RFC 3339 (2024-05-01T10:00:00Z) or Unix seconds (default: now)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	offline := fs.Bool("offline", false, "never read the authority host's OIDC discovery (with -config, for hosts other than login.microsoftonline.com)")
	return func(ctx context.Context, args []string) error {
		return runInspect(ctx, x, inspectFlags{*cfgPath, *jwksPath, *atFlag, *asJSON, *offline}, args)
	}
}

// inspectFlags are the flags of gateway inspect.
type inspectFlags struct {
	config, jwks, at string
	json, offline    bool
}

// runInspect inspects the one token of args.
func runInspect(ctx context.Context, x *invocation, f inspectFlags, args []string) error {
	if len(args) != 1 {
		return usagef("inspect: give one token, or - to read it from stdin")
	}
	opt := inspect.Options{}
	if f.at != "" {
		at, err := parseInspectAt(f.at)
		if err != nil {
			return &usageError{err}
		}
		opt.At, opt.AtSource = at, "-at"
	}

	raw := args[0]
	if raw == "-" {
		if x.stdin == nil {
			return errors.New("inspect: no stdin to read the token from")
		}
		data, err := io.ReadAll(io.LimitReader(x.stdin, 1<<20))
		if err != nil {
			return fmt.Errorf("inspect: read stdin: %w", err)
		}
		raw = string(data)
	}

	if f.jwks != "" {
		data, err := os.ReadFile(f.jwks)
		if err != nil {
			return fmt.Errorf("inspect: -jwks: %w", err)
		}
		opt.KeysName = filepath.Base(f.jwks)
		if opt.Keys, err = auth.ParseKeySet(data); err != nil {
			return fmt.Errorf("inspect: -jwks %s: %w", opt.KeysName, err)
		}
		for _, n := range opt.Keys.Notes {
			fmt.Fprintf(x.stderr, "inspect: key set %s: %s\n", opt.KeysName, n)
		}
	}

	if f.config != "" {
		cfg, ignored, err := loadConfigForInspect(f.config, x.environ)
		if err != nil {
			return err
		}
		for _, p := range ignored {
			// The setting and the problem: where it is in the file matters
			// little to a check that does without it.
			fmt.Fprintf(x.stderr, "inspect: config: %s: %s: ignored (not needed to inspect a token)\n", p.Subject(), p.Problem)
		}
		var client *http.Client
		if !f.offline {
			if client, err = clients.Entra(cfg.Entra, nil); err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			defer client.CloseIdleConnections()
		}
		// A developer's tool: a discovery that does not answer within 10s
		// is reported as such (issuers guessed) rather than waited for.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		issuers := inspect.ResolveIssuers(dctx, client, cfg.Entra.AuthorityHost, cfg.Entra.TenantID)
		cancel()
		opt.Gateway = inspect.GatewayOf(filepath.Base(f.config), cfg, issuers)
	}

	r := inspect.Inspect(raw, opt)
	if f.json {
		return inspect.WriteJSON(x.stdout, r)
	}
	return inspect.WriteText(x.stdout, r)
}

// parseInspectAt reads RFC 3339 or Unix seconds.
func parseInspectAt(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("inspect: -at %q: write RFC 3339 (2024-05-01T10:00:00Z) or Unix seconds (1714557600)", s)
	}
	return t, nil
}

// inspectUnused are the settings a token inspection does without: the
// gateway's credential, its listener's TLS files and the shared cache's
// keys and CA are often absent from a developer's machine. entra.ca_file
// is used when it can be read.
var inspectUnused = []string{"entra.certificate", "entra.ca_file", "tls",
	"cache.redis.ca_file", "cache.redis.encryption_keys", "cache.redis.encryption_key_id"}

// loadConfigForInspect reads and validates the configuration as serve
// does (environ over the file), except that problems with the settings of
// inspectUnused are returned in ignored rather than refusing it. An
// unreadable entra.ca_file is dropped: discovery then trusts the system's
// CAs only.
func loadConfigForInspect(path string, environ []string) (cfg *config.Config, ignored []*config.FieldError, err error) {
	cfg, src, err := config.Parse(path, environ)
	if err != nil {
		return nil, nil, err
	}
	ignored, err = cfg.ValidateWith(config.Options{Source: src, Unused: inspectUnused})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ignored {
		if p.Setting() == "entra.ca_file" {
			cfg.Entra.CAFile = ""
		}
	}
	return cfg, ignored, nil
}
