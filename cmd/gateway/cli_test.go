package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// mainResult is what the process shows: its exit status and its output.
type mainResult struct {
	code           int
	stdout, stderr string
}

// runMain runs the program as main does, without a signal: run, then
// exitStatus's last words on stderr. The commands it is given must stop on
// their own (help, errors).
func runMain(t *testing.T, args, environ []string) mainResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, environ, strings.NewReader(""), &stdout, &stderr)
	code := exitStatus(&stderr, err)
	return mainResult{code, stdout.String(), stderr.String()}
}

// errorOf is what exitStatus wrote: stderr after the usage, if any.
func (r mainResult) errorOf() string {
	if i := strings.LastIndex(r.stderr, "\ngateway: "); i >= 0 {
		return r.stderr[i+1:]
	}
	return r.stderr
}

// commandFlags lists the flags of each command, as its FlagSet declares them.
func commandFlags(t *testing.T) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, c := range commands() {
		fs, _ := c.flags(&invocation{})
		m[c.name] = []string{}
		fs.VisitAll(func(f *flag.Flag) { m[c.name] = append(m[c.name], f.Name) })
	}
	return m
}

// TestHelp: -h, -help and --help print the command's usage, with every
// flag, on stdout and succeed; "gateway help" lists every command with all
// its flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	flags := commandFlags(t)
	if len(flags["inspect"]) == 0 || len(flags["demo"]) == 0 {
		t.Fatalf("flags %v", flags)
	}
	for name, fl := range flags {
		for _, args := range [][]string{{name, "-h"}, {name, "-help"}, {name, "--help"}, {"help", name}, {name, "-json", "-h"}} {
			if name == "serve" || name == "version" {
				if len(args) == 3 {
					continue // no -json
				}
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				r := runMain(t, args, nil)
				if r.code != exitOK || r.stderr != "" {
					t.Errorf("exit status %d, stderr %q; want 0 and nothing", r.code, r.stderr)
				}
				if !strings.HasPrefix(r.stdout, "usage: gateway "+name) {
					t.Errorf("stdout does not start with the usage:\n%s", r.stdout)
				}
				for _, f := range fl {
					if !strings.Contains(r.stdout, "\n  -"+f) {
						t.Errorf("the usage does not list -%s:\n%s", f, r.stdout)
					}
				}
			})
		}
	}
	for _, arg := range []string{"help", "-h", "-help", "--help"} {
		t.Run("gateway "+arg, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, []string{arg}, nil)
			if r.code != exitOK || r.stderr != "" {
				t.Errorf("exit status %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			// Each command's block lists all its flags.
			for _, c := range commands() {
				start := strings.Index(r.stdout, "\n  gateway "+c.name)
				if start < 0 {
					t.Errorf("no command %s in:\n%s", c.name, r.stdout)
					continue
				}
				block := r.stdout[start+1:]
				if end := strings.Index(block, "\n\n"); end >= 0 {
					block = block[:end]
				}
				for _, f := range flags[c.name] {
					if !strings.Contains(block, "      -"+f) || !strings.Contains(strings.SplitN(block, "\n", 2)[0], "-"+f) {
						t.Errorf("%s: the help does not list -%s in its synopsis and its flags:\n%s", c.name, f, block)
					}
				}
			}
		})
	}
}

// TestCommandLineMistakes: an unknown command or flag, a bad flag value, a
// missing or stray argument exit with status 2, the usage on stderr and
// the error, with one prefix, as its last line.
func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	cfg := configtest.Write(t, &config.Config{})
	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		usage   string // the usage on stderr starts so
		err     string // the last line of stderr
	}{
		{"no command", nil, nil, "usage: gateway COMMAND", "gateway: a command is required"},
		{"unknown command", []string{"frobnicate"}, nil, "usage: gateway COMMAND", `gateway: unknown command "frobnicate"`},
		{"help of an unknown command", []string{"help", "frobnicate"}, nil, "usage: gateway COMMAND", `gateway: help: unknown command "frobnicate"`},
		{"serve: unknown flag", []string{"serve", "-nope"}, nil, "usage: gateway serve", "gateway: serve: flag provided but not defined: -nope"},
		{"serve: no -config", []string{"serve"}, nil, "usage: gateway serve -config FILE",
			"gateway: serve: -config FILE or OBO_GATEWAY_CONFIG is required (start from deploy/gateway.example.yaml; docs/configuration.md describes every setting)"},
		{"serve: an empty OBO_GATEWAY_CONFIG", []string{"serve"}, []string{"OBO_GATEWAY_CONFIG="}, "usage: gateway serve", "gateway: serve: -config FILE or OBO_GATEWAY_CONFIG is required"},
		{"serve: stray argument", []string{"serve", "-config", cfg, "now"}, nil, "usage: gateway serve", `gateway: serve: unexpected argument "now"`},
		{"serve: -config without its value", []string{"serve", "-config"}, nil, "usage: gateway serve", "gateway: serve: flag needs an argument: -config"},
		{"demo: unknown flag", []string{"demo", "-port", "1"}, nil, "usage: gateway demo", "gateway: demo: flag provided but not defined: -port"},
		{"demo: bad value", []string{"demo", "-json=maybe"}, nil, "usage: gateway demo", `gateway: demo: invalid boolean value "maybe" for -json`},
		{"demo: stray argument", []string{"demo", "x"}, nil, "usage: gateway demo", `gateway: demo: unexpected argument "x"`},
		{"doctor: unknown flag", []string{"doctor", "-nope"}, nil, "usage: gateway doctor", "gateway: doctor: flag provided but not defined: -nope"},
		{"doctor: no -config", []string{"doctor", "-offline"}, nil, "usage: gateway doctor", "gateway: doctor: -config FILE or OBO_GATEWAY_CONFIG is required"},
		{"doctor: stray argument", []string{"doctor", "-config", cfg, "extra"}, nil, "usage: gateway doctor", `gateway: doctor: unexpected argument "extra"`},
		{"inspect: unknown flag", []string{"inspect", "-nope", "-"}, nil, "usage: gateway inspect", "gateway: inspect: flag provided but not defined: -nope"},
		{"inspect: no token", []string{"inspect"}, nil, "usage: gateway inspect", "gateway: inspect: give one token, or - to read it from stdin"},
		{"inspect: two tokens", []string{"inspect", "a", "b"}, nil, "usage: gateway inspect", "gateway: inspect: give one token, or - to read it from stdin"},
		{"inspect: bad -at", []string{"inspect", "-at", "yesterday", "-"}, nil, "usage: gateway inspect", `gateway: inspect: -at "yesterday": write RFC 3339`},
		{"version: stray argument", []string{"version", "2"}, nil, "usage: gateway version", `gateway: version: unexpected argument "2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, tc.args, tc.environ)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d", r.code, exitUsage)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, tc.usage) {
				t.Errorf("stderr does not start with %q:\n%s", tc.usage, r.stderr)
			}
			if got := r.errorOf(); !strings.HasPrefix(got, tc.err) || strings.Count(got, "\n") != 1 {
				t.Errorf("the error %q, want one line starting with %q", got, tc.err)
			}
		})
	}
}

// TestErrorsHaveOnePrefix: errors of the commands themselves exit with
// status 1, prefixed "gateway: " once, whether they come from the command,
// the configuration or package gateway (whose errors start "gateway: ").
func TestErrorsHaveOnePrefix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A certificate file that also holds its key, and the key again in
	// key_path: valid settings (the files can be read), a certificate
	// that cannot be loaded (gateway.New fails before any network call).
	cert, key, err := pki.SelfSigned("CN=obo-gateway", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	combined, _ := pki.WriteFile(dir, "gateway.pem", append(pki.CertPEM(cert), pki.KeyPEM(key)...), 0o600)
	keyFile, _ := pki.WriteFile(dir, "gateway.key", pki.KeyPEM(key), 0o600)
	valid := func() *config.Config {
		return &config.Config{
			Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
			Entra: config.Entra{
				TenantID: "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34", ClientID: "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
				AuthorityHost: "https://127.0.0.1:1",
				Certificate:   config.Certificate{Path: combined, KeyPath: keyFile},
			},
			Routes: []config.Route{{Name: "orders", PathPrefix: "/orders", Upstream: "http://127.0.0.1:1"}},
		}
	}
	twoKeysYAML := configtest.YAML(t, valid())
	twoKeys := configtest.WriteYAML(t, twoKeysYAML)
	bad := valid()
	bad.Entra.TenantID = "common"
	bad.Routes[0].PathPrefix = "orders"
	badFile := configtest.Write(t, bad)
	missing := filepath.Join(dir, "missing.yaml")

	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		err     string // what exitStatus writes, whole
	}{
		{"an error of package gateway", []string{"serve", "-config", twoKeys}, nil,
			fmt.Sprintf("gateway: clients: cannot load the certificate of entra.certificate.path %q (%s:%d) with entra.certificate.key_path %q (%s:%d): obo: certificate: more than one private key in the PEM data\n",
				combined, twoKeys, configtest.Line(t, twoKeysYAML, "path:"), keyFile, twoKeys, configtest.Line(t, twoKeysYAML, "key_path:"))},
		{"a configuration file that cannot be read", []string{"serve", "-config", missing}, nil,
			fmt.Sprintf("gateway: config: %s: cannot read the configuration file: no such file or directory\n", missing)},
		{"several problems", []string{"serve", "-config", badFile}, nil,
			"gateway: serve: 2 problems in the configuration " + badFile + " (docs/configuration.md describes every setting):\n"},
		{"a route variable naming no route", []string{"serve", "-config", twoKeys}, []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing"},
			"gateway: config: OBO_GATEWAY_ROUTE_BILLING_UPSTREAM: names no route field: "},
		{"a failing doctor check", []string{"doctor", "-offline", "-config", missing}, nil, "gateway: doctor: 1 of 1 checks failed\n"},
		{"inspect: a key set that cannot be read", []string{"inspect", "-jwks", missing, "-"}, nil, "gateway: inspect: -jwks: open " + missing + ": no such file or directory\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, tc.args, tc.environ)
			if r.code != exitError {
				t.Errorf("exit status %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			got := r.stderr[strings.LastIndex(r.stderr, "\ngateway: ")+1:]
			if !strings.HasPrefix(got, tc.err) {
				t.Errorf("stderr ends\n%s\nwant it to start\n%s", got, tc.err)
			}
			if strings.Contains(r.stderr, "gateway: gateway:") || strings.Contains(r.stderr, "usage:") {
				t.Errorf("two prefixes, or a usage for an error that is no mistake in the command line:\n%s", r.stderr)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"success", nil, exitOK, ""},
		{"an error", errors.New("doctor: 1 of 2 checks failed"), exitError, "gateway: doctor: 1 of 2 checks failed\n"},
		{"an error of package gateway", fmt.Errorf("gateway: %w", errors.New("OIDC discovery failed")), exitError, "gateway: OIDC discovery failed\n"},
		{"a mistake in the command line", usagef("serve: unexpected argument %q", "x"), exitUsage, "gateway: serve: unexpected argument \"x\"\n"},
		{"a wrapped mistake", fmt.Errorf("wrapped: %w", usagef("x")), exitUsage, "gateway: wrapped: x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if code := exitStatus(&b, tc.err); code != tc.code || b.String() != tc.out {
				t.Errorf("exitStatus = %d, wrote %q; want %d, %q", code, b.String(), tc.code, tc.out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runMain(t, []string{"version"}, nil)
	if r.code != exitOK || r.stdout != version+"\n" || r.stderr != "" {
		t.Errorf("gateway version: %+v", r)
	}
}
