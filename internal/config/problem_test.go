package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// where is what a test expects of a problem besides its text: every field
// of FieldError except Problem and Err. File is "file" for the test's
// configuration file, "" for none.
type where struct {
	Kind    Kind
	Field   string
	EnvVar  string
	FromEnv bool
	File    string
	Line    int
	Value   string
}

func whereOf(e *FieldError, path string) where {
	w := where{e.Kind, e.Field, e.EnvVar, e.FromEnv, e.File, e.Line, e.Value}
	if path != "" && w.File == path {
		w.File = "file"
	}
	return w
}

// findProblem returns the problem of err at field (or of the whole file,
// field ""), failing the test when there is none.
func findProblem(t *testing.T, err error, field string) *FieldError {
	t.Helper()
	for _, p := range Problems(err) {
		if p.Field == field {
			return p
		}
	}
	t.Fatalf("no problem with %q in:\n%v", field, err)
	return nil
}

func TestParseProblems(t *testing.T) {
	f := newFiles(t)
	base := minimalYAML(f.cert) // 9 lines; routes[0] is "orders"
	for _, tc := range []struct {
		name    string
		content string
		env     map[string]string
		field   string
		want    where
		problem string // in Problem
	}{
		{"unknown key", strings.Replace(base, "  client_id:", "  tenantid: x\n  client_id:", 1), nil,
			"entra.tenantid", where{Kind: KindUnknownKey, Field: "entra.tenantid", File: "file", Line: 3}, `unknown key "tenantid" in entra`},
		{"unknown key in a route", strings.Replace(base, "    upstream:", "    upstrem: x\n    upstream:", 1), nil,
			"routes[0].upstrem", where{Kind: KindUnknownKey, Field: "routes[0].upstrem", File: "file", Line: 9}, `in a route (routes[])`},
		{"wrong type", strings.Replace(base, "    path:", "    send_x5c: maybe\n    path:", 1), nil,
			"entra.certificate.send_x5c", where{Kind: KindWrongType, Field: "entra.certificate.send_x5c", EnvVar: "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", File: "file", Line: 5, Value: "maybe"},
			"the string `maybe` is not a boolean (true or false)"},
		{"a list for a string", base + "log_level: [info]\n", nil,
			"log_level", where{Kind: KindWrongType, Field: "log_level", EnvVar: "OBO_GATEWAY_LOG_LEVEL", File: "file", Line: 10}, "a list is not a string"},
		{"bad duration", base + "shutdown_grace: 30\n", nil,
			"shutdown_grace", where{Kind: KindWrongType, Field: "shutdown_grace", EnvVar: "OBO_GATEWAY_SHUTDOWN_GRACE", File: "file", Line: 10, Value: "30"}, `"30" is not a duration`},
		{"bad duration in a route", strings.Replace(base, "    upstream:", "    timeout: 5 minutes\n    upstream:", 1), nil,
			"routes[0].timeout", where{Kind: KindWrongType, Field: "routes[0].timeout", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_TIMEOUT", File: "file", Line: 9, Value: "5 minutes"}, "is not a duration"},
		{"duration as a list", base + "shutdown_grace:\n  - 1s\n", nil,
			"shutdown_grace", where{Kind: KindWrongType, Field: "shutdown_grace", EnvVar: "OBO_GATEWAY_SHUTDOWN_GRACE", File: "file", Line: 11}, "a duration is a single value"},
		{"bad size", base + "cache:\n  memory_budget: 64MB\n", nil,
			"cache.memory_budget", where{Kind: KindWrongType, Field: "cache.memory_budget", EnvVar: "OBO_GATEWAY_CACHE_MEMORY_BUDGET", File: "file", Line: 11, Value: "64MB"}, "did you mean 64MiB?"},
		{"a scope that is a mapping", strings.Replace(base, "    upstream:", "    downstream_scopes:\n      - api://a/.default\n      - {x: y}\n    upstream:", 1), nil,
			"routes[0].downstream_scopes[1]", where{Kind: KindWrongType, Field: "routes[0].downstream_scopes[1]", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES", File: "file", Line: 11}, "a mapping is not a string"},
		{"duplicate key", base + "listen: :1\nlisten: :2\n", nil,
			"listen", where{Kind: KindDuplicateKey, Field: "listen", File: "file", Line: 11}, `"listen" already defined at line 10`},
		{"two documents", base + "---\nlisten: :1\n", nil,
			"", where{Kind: KindSyntax, File: "file", Line: 10}, "more than one YAML document"},
		{"syntax error", "entra: [\n", nil,
			"", where{Kind: KindSyntax, File: "file"}, "yaml: line"},
		{"not a mapping", "hello\n", nil,
			"", where{Kind: KindWrongType, File: "file", Line: 1, Value: "hello"}, "the string `hello` is not a mapping"},
		{"a merge of itself", "entra: &e\n  <<: *e\n", nil,
			"entra", where{Kind: KindSyntax, Field: "entra", File: "file", Line: 2}, "*e refers to a value that contains it"},
		{"an alias into its own value", "entra: &e\n  certificate: *e\n", nil,
			"entra.certificate.certificate", where{Kind: KindUnknownKey, Field: "entra.certificate.certificate", File: "file", Line: 2}, `unknown key "certificate" in entra.certificate`},
		{"bad variable", base, map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX": "yes"},
			"routes[0].strip_prefix", where{Kind: KindWrongType, Field: "routes[0].strip_prefix", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX", FromEnv: true, Value: "yes"}, `"yes" is not a boolean`},
		{"bad variable of a duration", base, map[string]string{"OBO_GATEWAY_ENTRA_CLOCK_SKEW": "1 minute"},
			"entra.clock_skew", where{Kind: KindWrongType, Field: "entra.clock_skew", EnvVar: "OBO_GATEWAY_ENTRA_CLOCK_SKEW", FromEnv: true, Value: "1 minute"}, "is not a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "gateway.yaml", tc.content)
			c, src, err := Parse(path, tc.env)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if c != nil || src != nil {
				t.Errorf("Parse returned a configuration with its error")
			}
			p := findProblem(t, err, tc.field)
			if got := whereOf(p, path); got != tc.want {
				t.Errorf("problem %v\n got %+v\nwant %+v", p, got, tc.want)
			}
			if !strings.Contains(p.Problem, tc.problem) {
				t.Errorf("Problem %q does not contain %q", p.Problem, tc.problem)
			}
			if strings.Contains(p.Error(), "\n") {
				t.Errorf("Error() spans lines: %q", p.Error())
			}
		})
	}

	t.Run("merged mappings", func(t *testing.T) {
		content := "x-defaults: &d\n  timeot: 5s\n"
		path := writeFile(t, t.TempDir(), "gateway.yaml", content+strings.Replace(base, "  - name: orders\n", "  - <<: *d\n    name: orders\n", 1))
		_, _, err := Parse(path, []string(nil))
		// The anchor's own key is unknown at the top level, and its
		// misspelt key is unknown in the route it is merged into, at its
		// line.
		if got := whereOf(findProblem(t, err, "x-defaults"), path); got != (where{Kind: KindUnknownKey, Field: "x-defaults", File: "file", Line: 1}) {
			t.Errorf("x-defaults: %+v", got)
		}
		if got := whereOf(findProblem(t, err, "routes[0].timeot"), path); got != (where{Kind: KindUnknownKey, Field: "routes[0].timeot", File: "file", Line: 2}) {
			t.Errorf("routes[0].timeot: %+v", got)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, _, err := Parse(path, []string(nil))
		p := findProblem(t, err, "")
		if got := whereOf(p, path); got != (where{Kind: KindUnreadableFile, File: "file"}) {
			t.Errorf("got %+v", got)
		}
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(p.Problem, "no such file") {
			t.Errorf("err = %v, want a not-exist error", err)
		}
	})

	t.Run("secrets of the wrong type are not shown", func(t *testing.T) {
		content := strings.Replace(base, "    path:", "    password: ["+password+"]\n    path:", 1)
		path := writeFile(t, t.TempDir(), "gateway.yaml", content)
		_, _, err := Parse(path, []string(nil))
		p := findProblem(t, err, "entra.certificate.password")
		if p.Value != "" || strings.Contains(p.Error(), password) {
			t.Errorf("the password is shown: %+v", p)
		}
	})

	t.Run("file and environment problems at once", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "gateway.yaml", base+"log_levl: x\n")
		_, _, err := Parse(path, (map[string]string{"OBO_GATEWAY_SHUTDOWN_GRACE": "x"}))
		findProblem(t, err, "log_levl")
		findProblem(t, err, "shutdown_grace")
	})
}

// TestLoadPlacesValidationProblems checks that Load places each problem a
// rule of Validate finds: at the line of a value of the file, on the
// variable of a value of the environment, nowhere for a missing setting.
func TestLoadPlacesValidationProblems(t *testing.T) {
	f := newFiles(t)
	base := minimalYAML(f.cert)
	missing := filepath.Join(f.dir, "missing.pem")
	for _, tc := range []struct {
		name    string
		content string
		env     map[string]string
		field   string
		want    where
	}{
		{"value of the file", strings.Replace(base, "3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34", "contoso.onmicrosoft.com", 1), nil,
			"entra.tenant_id", where{Field: "entra.tenant_id", EnvVar: "AZURE_TENANT_ID", File: "file", Line: 2, Value: "contoso.onmicrosoft.com"}},
		{"value of the environment", base, map[string]string{"AZURE_TENANT_ID": "common"},
			"entra.tenant_id", where{Field: "entra.tenant_id", EnvVar: "AZURE_TENANT_ID", FromEnv: true, Value: "common"}},
		{"list item of the file", strings.Replace(base, "    upstream:", "    downstream_scopes:\n      - api://orders-api/.default\n      - api://orders-api/default\n    upstream:", 1), nil,
			"routes[0].downstream_scopes[1]", where{Field: "routes[0].downstream_scopes[1]", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES", File: "file", Line: 11, Value: "api://orders-api/default"}},
		{"list item of a route variable", base, map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES": "User.Read"},
			"routes[0].downstream_scopes[0]", where{Field: "routes[0].downstream_scopes[0]", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES", FromEnv: true, Value: "User.Read"}},
		{"list as a whole", strings.Replace(base, "    upstream:", "    downstream_scopes: [api://a/.default, api://b/.default]\n    upstream:", 1), nil,
			"routes[0].downstream_scopes", where{Field: "routes[0].downstream_scopes", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES", File: "file", Line: 9}},
		{"missing setting", strings.Replace(base, "  client_id: 9d7e6c5b-4a3f-4e2d-8c1b-0a9f8e7d6c5b\n", "", 1), nil,
			"entra.client_id", where{Field: "entra.client_id", EnvVar: "AZURE_CLIENT_ID"}},
		{"setting without a variable", strings.Replace(base, "name: orders", "name: Orders", 1), nil,
			"routes[0].name", where{Field: "routes[0].name", File: "file", Line: 7, Value: "Orders"}},
		{"a default out of range", base + "limits:\n  max_body_bytes: 65GiB\n", nil,
			"routes[0].max_body_bytes", where{Field: "routes[0].max_body_bytes", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_MAX_BODY_BYTES", Value: "65GiB"}},
		{"unreadable file", strings.Replace(base, f.cert, missing, 1), nil,
			"entra.certificate.path", where{Kind: KindUnreadableFile, Field: "entra.certificate.path", EnvVar: "AZURE_CLIENT_CERTIFICATE_PATH", File: "file", Line: 5, Value: missing}},
		{"unreadable file of a variable", base, map[string]string{"OBO_GATEWAY_ENTRA_CA_FILE": missing},
			"entra.ca_file", where{Kind: KindUnreadableFile, Field: "entra.ca_file", EnvVar: "OBO_GATEWAY_ENTRA_CA_FILE", FromEnv: true, Value: missing}},
		{"a variable over the file", strings.Replace(base, "/orders\n", "/orders/\n", 1), map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX": "orders"},
			"routes[0].path_prefix", where{Field: "routes[0].path_prefix", EnvVar: "OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX", FromEnv: true, Value: "orders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "gateway.yaml", tc.content)
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			p := findProblem(t, err, tc.field)
			if got := whereOf(p, path); got != tc.want {
				t.Errorf("problem %v\n got %+v\nwant %+v", p, got, tc.want)
			}
			// The rendering names the place, the field and the variable.
			var wantPrefix string
			switch {
			case tc.want.FromEnv:
				wantPrefix = "config: " + tc.field + " (env " + tc.want.EnvVar + "): "
			case tc.want.Line > 0:
				wantPrefix = "config: " + path + ":" + strconv.Itoa(tc.want.Line) + ": " + tc.field + ": "
			default:
				wantPrefix = "config: " + tc.field + ": "
			}
			if !strings.HasPrefix(p.Error(), wantPrefix) {
				t.Errorf("Error() = %q, want it to start with %q", p.Error(), wantPrefix)
			}
		})
	}
}

func TestValidateWith(t *testing.T) {
	f := newFiles(t)
	missing := filepath.Join(f.dir, "missing.pem")
	content := strings.Replace(fullYAML(f), f.cert, missing, 1)
	path := writeFile(t, t.TempDir(), "gateway.yaml", content)
	parse := func(t *testing.T, env map[string]string) (*Config, *Source) {
		t.Helper()
		c, src, err := Parse(path, env)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c, src
	}

	t.Run("files checked", func(t *testing.T) {
		c, src := parse(t, nil)
		ignored, err := c.ValidateWith(Options{Source: src})
		if len(ignored) != 0 {
			t.Errorf("ignored %v", ignored)
		}
		if p := findProblem(t, err, "entra.certificate.path"); p.Kind != KindUnreadableFile || !errors.Is(p, os.ErrNotExist) {
			t.Errorf("problem %+v, want an unreadable file, not existing", p)
		}
	})
	t.Run("files skipped", func(t *testing.T) {
		c, src := parse(t, nil)
		if _, err := c.ValidateWith(Options{Source: src, SkipFiles: true}); err != nil {
			t.Errorf("ValidateWith(SkipFiles): %v", err)
		}
		c.Entra.Certificate.Path = ""
		_, err := c.ValidateWith(Options{SkipFiles: true})
		if p := findProblem(t, err, "entra.certificate.path"); p.Kind != KindInvalid || !strings.Contains(p.Problem, "required") {
			t.Errorf("a missing certificate with SkipFiles: %+v, want it required", p)
		}
	})
	t.Run("unused settings", func(t *testing.T) {
		c, src := parse(t, map[string]string{"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS": "nope", "OBO_GATEWAY_LOG_LEVEL": "loud"})
		ignored, err := c.ValidateWith(Options{Source: src, Unused: []string{"entra.certificate", "cache.redis.encryption_keys"}})
		var got []string
		for _, p := range ignored {
			got = append(got, p.Field)
		}
		if want := []string{"entra.certificate.path", "cache.redis.encryption_keys"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ignored %v, want %v", got, want)
		}
		if ps := Problems(err); len(ps) != 1 || ps[0].Field != "log_level" || !ps[0].FromEnv {
			t.Errorf("err = %v, want the log level alone, from its variable", err)
		}
		if ignored[0].Line != 15 || ignored[0].File != path {
			t.Errorf("ignored problems are placed too: %+v", ignored[0])
		}
	})
	t.Run("unused does not match a prefix of a name", func(t *testing.T) {
		c, _ := parse(t, map[string]string{"OBO_GATEWAY_LISTEN": "nope", "OBO_GATEWAY_ADMIN_LISTEN": "nope2"})
		ignored, err := c.ValidateWith(Options{SkipFiles: true, Unused: []string{"listen"}})
		if len(ignored) != 1 || ignored[0].Field != "listen" {
			t.Errorf("ignored %v, want listen", ignored)
		}
		findProblem(t, err, "admin_listen")
	})
}

func TestCheckEnvironProblems(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, fullYAML(f), nil)
	err := c.CheckEnviron([]string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing", "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=https://x", "OBO_GATEWAY_ROUTE_ORDERS_SCOPES=" + password})
	ps := Problems(err)
	if len(ps) != 2 {
		t.Fatalf("%d problems, want 2: %v", len(ps), err)
	}
	for i, name := range []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM", "OBO_GATEWAY_ROUTE_ORDERS_SCOPES"} {
		if got := whereOf(ps[i], ""); got != (where{Kind: KindUnknownVariable, EnvVar: name, FromEnv: true}) {
			t.Errorf("problem %d: %+v", i, got)
		}
		if want := "config: " + name + ": names no route field"; !strings.HasPrefix(ps[i].Error(), want) {
			t.Errorf("Error() = %q, want it to start with %q", ps[i].Error(), want)
		}
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("a variable's value is shown: %v", err)
	}
}

func TestFieldErrorRendering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		e       FieldError
		error   string
		setting string
	}{
		{"in the file", FieldError{Field: "routes[1].downstream_scopes[0]", EnvVar: "OBO_GATEWAY_ROUTE_HR_DOWNSTREAM_SCOPES", File: "gw.yaml", Line: 12, Problem: "bad"},
			"config: gw.yaml:12: routes[1].downstream_scopes[0]: bad", "routes[].downstream_scopes"},
		{"from a variable", FieldError{Field: "entra.tenant_id", EnvVar: "AZURE_TENANT_ID", FromEnv: true, Problem: "bad"},
			"config: entra.tenant_id (env AZURE_TENANT_ID): bad", "entra.tenant_id"},
		{"neither", FieldError{Field: "entra.tenant_id", EnvVar: "AZURE_TENANT_ID", Problem: "required"},
			"config: entra.tenant_id: required", "entra.tenant_id"},
		{"unknown key", FieldError{Kind: KindUnknownKey, Field: "entra.tenantid", File: "gw.yaml", Line: 3, Problem: `unknown key "tenantid" in entra`},
			`config: gw.yaml:3: unknown key "tenantid" in entra`, "entra.tenantid"},
		{"the file", FieldError{Kind: KindSyntax, File: "gw.yaml", Problem: "yaml: line 4: bad"},
			"config: gw.yaml: yaml: line 4: bad", ""},
		{"a line without a file", FieldError{Kind: KindWrongType, Line: 1, Problem: "bad"},
			"config: line 1: bad", ""},
		{"a variable alone", FieldError{Kind: KindUnknownVariable, EnvVar: "OBO_GATEWAY_ROUTE_X_Y", FromEnv: true, Problem: "names no route field"},
			"config: OBO_GATEWAY_ROUTE_X_Y: names no route field", ""},
		{"a route", FieldError{Field: "routes[0]", Problem: "bad"}, "config: routes[0]: bad", "routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.e.Error(); got != tc.error {
				t.Errorf("Error() = %q, want %q", got, tc.error)
			}
			if got := tc.e.Setting(); got != tc.setting {
				t.Errorf("Setting() = %q, want %q", got, tc.setting)
			}
		})
	}
}

// TestParseAliasesAndMerges reads a file that shares settings between
// routes with anchors, aliases and merge keys, as yaml.v3 would.
func TestParseAliasesAndMerges(t *testing.T) {
	f := newFiles(t)
	content := minimalYAML(f.cert) + `  - &hr
    <<: &defaults
      timeout: 5s
      required_scopes: &scopes [access_as_user]
    name: hr
    path_prefix: /hr
    upstream: https://hr.internal.example.com
    downstream_scopes: [api://hr-api/.default]
  - <<: [*defaults, {timeout: 9s, cookies: true}]
    name: pay
    timeout: 7s
    path_prefix: /pay
    upstream: https://pay.internal.example.com
    required_roles: *scopes
cors:
  allowed_origins: [&origin https://app.example.com]
  allowed_headers: [*origin]
`
	c, err := load(t, content, nil)
	if err == nil {
		t.Fatal("Load succeeded, want the header refused")
	}
	if p := findProblem(t, err, "cors.allowed_headers[0]"); p.Line != 26 {
		t.Errorf("an alias's problem is placed at the alias: line %d, want 26", p.Line)
	}
	content = strings.Replace(content, "[*origin]", "[X-Trace]", 1)
	c = mustLoad(t, content, nil)
	hr, pay := c.Routes[1], c.Routes[2]
	if hr.Timeout != Duration(5*time.Second) || !reflect.DeepEqual(hr.RequiredScopes, []string{"access_as_user"}) || hr.Name != "hr" {
		t.Errorf("hr = %+v", hr)
	}
	if pay.Timeout != Duration(7*time.Second) || !pay.Cookies || !reflect.DeepEqual(pay.RequiredScopes, []string{"access_as_user"}) ||
		!reflect.DeepEqual(pay.RequiredRoles, []string{"access_as_user"}) {
		t.Errorf("pay = %+v", pay)
	}
	if c.CORS.AllowedOrigins[0] != "https://app.example.com" {
		t.Errorf("cors = %+v", c.CORS)
	}
}

// TestParseAliasBomb: a small file whose merges expand exponentially is
// refused quickly, with a problem.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 {timeout: 1s}\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	b.WriteString("routes:\n  - <<: *a11\n")
	_, _, err := parse([]byte(b.String()), "bomb.yaml", environmentOf([]string(nil)))
	p := findProblem(t, err, "")
	if p.Kind != KindSyntax || !strings.Contains(p.Problem, "through its aliases") {
		t.Errorf("problem %v, want the expansion refused", p)
	}
}

// FuzzParse feeds Parse arbitrary YAML: it must not panic, and every
// problem must be a *FieldError, never a bare yaml.v3 error.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		minimalYAML("cert.pem"),
		minimalYAML("cert.pem") + "shutdown_grace: 30\nlog_levl: x\ncache:\n  redis:\n    db: one\n",
		"routes:\n  - &r\n    name: a\n  - *r\n  - <<: *r\n    name: b\n",
		"entra: &e\n  certificate: *e\n",
		"a: &a [*a]\nroutes: *a\n",
		"routes: [{<<: [{timeout: 1s}, 5]}]\n",
		"---\n...\n---\n",
		"? [a]\n: b\n",
		"listen: !!binary AAAA\nlimits: {max_connections: 1e400}\n",
		"hello\n",
		"",
		"?", // a null key: yaml.v3 skips it, decode refuses it
		"routes:\n  -\ntrusted_proxies: [a, ~, b]\n", // null items: dropped, as by yaml.v3
		"routes: [{<<, [{0000000000},0]}]",           // yaml.v3's strict decoding panics on it
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The walk reads what yaml.v3's strict decoder reads, as it did
		// before the walk: the same configuration, or a problem.
		got, _, errs := decode(data, "fuzz.yaml")
		want, oracleErr := strictYAML(data)
		switch {
		case len(errs) == 0 && oracleErr == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("decode read\n%#v\nyaml.v3 reads\n%#v", got.Redacted(), want.Redacted())
		case len(errs) == 0 && oracleErr != nil:
			t.Fatalf("decode accepts what yaml.v3 refuses: %v", oracleErr)
		case len(errs) > 0 && oracleErr == nil && !hasEmptyKey(data):
			t.Fatalf("decode refuses what yaml.v3 accepts: %v", errs[0])
		}

		c, src, err := parse(data, "fuzz.yaml", environmentOf([]string(nil)))
		if err == nil {
			if c == nil || src == nil {
				t.Fatal("no configuration and no error")
			}
			_, err = c.ValidateWith(Options{Source: src, SkipFiles: true})
		}
		if err == nil {
			return
		}
		if c != nil && src == nil {
			t.Fatal("a configuration without its source")
		}
		for _, leaf := range unjoinAll(err) {
			var fe *FieldError
			if !errors.As(leaf, &fe) || fe.Problem == "" {
				t.Fatalf("%T %v is not a *FieldError with a problem", leaf, leaf)
			}
			if strings.Contains(fe.Error(), "\n") {
				t.Fatalf("Error() spans lines: %q", fe.Error())
			}
		}
	})
}

// strictYAML decodes data as Parse did before it walked the nodes itself:
// yaml.v3, known fields only, one document. yaml.v3 panics on some merges
// (a list as a key beside <<): that is a refusal too.
func strictYAML(data []byte) (cfg *Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("yaml.v3 panics: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one document")
	}
	return &c, nil
}

// hasEmptyKey reports a null key ("~: x"), which yaml.v3 skips silently
// and decode refuses.
func hasEmptyKey(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 && c.Kind == yaml.ScalarNode && c.ShortTag() == "!!null" {
				return true
			}
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&doc)
}

// unjoinAll returns the leaves of an errors.Join tree.
func unjoinAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoinAll(e)...)
		}
		return out
	}
	return []error{err}
}
