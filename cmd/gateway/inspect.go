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

const inspectUsage = `usage: gateway inspect [-config FILE] [-jwks FILE] [-at TIME] [-json] [-offline] TOKEN|-

Decodes a token WITHOUT trusting it and explains it: what it is, whether
the gateway configured by -config would accept it, whether its signature
verifies against -jwks, and whether it can serve as an On-Behalf-Of
assertion, and if not, why. "-" reads the token from stdin (prefer it: a
token on the command line stays in the shell's history). See docs/inspect.md.

`

// runInspect is "gateway inspect": it prints the report on stdout and
// returns an error only when it cannot make one (bad flags, unreadable
// files); a token the gateway would refuse is a report, not an error.
func runInspect(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, inspectUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "the gateway's configuration (YAML, with the environment over it as for serve): would this gateway accept the token, and on which routes")
	jwksPath := fs.String("jwks", "", "a saved key set to verify the signature with: JWKS JSON (the tenant's jwks_uri) or PEM certificates")
	atFlag := fs.String("at", "", "evaluate the time claims at this instant, RFC 3339 (2024-05-01T10:00:00Z) or Unix seconds (default: now)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	offline := fs.Bool("offline", false, "never read the authority host's OIDC discovery (with -config, for hosts other than login.microsoftonline.com)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("inspect: give one token, or - to read it from stdin")
	}

	opt := inspect.Options{}
	if *atFlag != "" {
		at, err := parseInspectAt(*atFlag)
		if err != nil {
			return err
		}
		opt.At, opt.AtSource = at, "-at"
	}

	raw := fs.Arg(0)
	if raw == "-" {
		if stdin == nil {
			return errors.New("inspect: no stdin to read the token from")
		}
		data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return fmt.Errorf("inspect: read stdin: %w", err)
		}
		raw = string(data)
	}

	if *jwksPath != "" {
		data, err := os.ReadFile(*jwksPath)
		if err != nil {
			return fmt.Errorf("inspect: -jwks: %w", err)
		}
		opt.KeysName = filepath.Base(*jwksPath)
		if opt.Keys, err = auth.ParseKeySet(data); err != nil {
			return fmt.Errorf("inspect: -jwks %s: %w", opt.KeysName, err)
		}
		for _, n := range opt.Keys.Notes {
			fmt.Fprintf(stderr, "inspect: key set %s: %s\n", opt.KeysName, n)
		}
	}

	if *cfgPath != "" {
		cfg, ignored, err := loadConfigForInspect(*cfgPath, getenv)
		if err != nil {
			return err
		}
		for _, p := range ignored {
			// The setting and the problem: where it is in the file matters
			// little to a check that does without it.
			fmt.Fprintf(stderr, "inspect: config: %s: %s: ignored (not needed to inspect a token)\n", p.Subject(), p.Problem)
		}
		var client *http.Client
		if !*offline {
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
		opt.Gateway = inspect.GatewayOf(filepath.Base(*cfgPath), cfg, issuers)
	}

	r := inspect.Inspect(raw, opt)
	if *asJSON {
		return inspect.WriteJSON(stdout, r)
	}
	return inspect.WriteText(stdout, r)
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
// does, except that problems with the settings of inspectUnused are
// returned in ignored rather than refusing it. An unreadable entra.ca_file
// is dropped: discovery then trusts the system's CAs only.
func loadConfigForInspect(path string, getenv func(string) string) (cfg *config.Config, ignored []*config.FieldError, err error) {
	cfg, src, err := config.Parse(path, getenv)
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
