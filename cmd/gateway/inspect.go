package main

import (
	"context"
	"encoding/base64"
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
		for _, f := range ignored {
			fmt.Fprintf(stderr, "inspect: %s: ignored (not needed to inspect a token)\n", f)
		}
		var client *http.Client
		if !*offline {
			if client, err = clients.Entra(cfg.Entra, nil); err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			defer client.CloseIdleConnections()
		}
		issuers := inspect.ResolveIssuers(ctx, client, cfg.Entra.AuthorityHost, cfg.Entra.TenantID)
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

// inspectStandIns returns, for a setting a token inspection does not need
// (by YAML path), values that pass validation, by YAML path: any readable
// file (the configuration itself) for a path, a dummy key for the shared
// cache. The gateway's credential, its listener's TLS files and the shared
// cache's keys are often absent from a developer's machine, and Load would
// refuse the whole configuration for them. nil: the setting is needed.
func inspectStandIns(field, cfgPath string) map[string]string {
	switch field {
	case "entra.certificate.path", "entra.certificate.key_path", "entra.ca_file",
		"tls.cert_file", "tls.key_file", "cache.redis.ca_file":
		return map[string]string{field: cfgPath}
	case "cache.redis.encryption_keys", "cache.redis.encryption_key_id":
		return map[string]string{
			"cache.redis.encryption_keys":   "inspect:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"cache.redis.encryption_key_id": "inspect",
		}
	}
	return nil
}

// loadConfigForInspect loads the configuration as serve does. When the
// only problems are settings inspection does not need (inspectStandIns),
// it loads it again with stand-ins for them, set through their
// environment variables, and names them in ignored. An unreadable
// entra.ca_file is dropped: discovery then trusts the system's CAs only.
func loadConfigForInspect(path string, getenv func(string) string) (cfg *config.Config, ignored []string, err error) {
	cfg, err = config.Load(path, getenv)
	if err == nil {
		return cfg, nil, nil
	}
	envOf := map[string]string{} // YAML path → variable
	for _, v := range config.EnvVars() {
		envOf[v.Field] = v.Name
	}
	standIns := map[string]string{} // variable → value
	for _, e := range config.Problems(err) {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			return nil, nil, err
		}
		fields := inspectStandIns(fe.Field, path)
		if fields == nil {
			return nil, nil, err
		}
		for f, v := range fields {
			standIns[envOf[f]] = v
		}
		ignored = append(ignored, fe.Error())
	}
	cfg, err2 := config.Load(path, func(k string) string {
		if v, ok := standIns[k]; ok {
			return v
		}
		return getenv(k)
	})
	if err2 != nil {
		return nil, nil, err
	}
	if _, stood := standIns[envOf["entra.ca_file"]]; stood {
		cfg.Entra.CAFile = ""
	}
	return cfg, ignored, nil
}
