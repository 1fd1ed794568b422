package deploy

// gateway.example.yaml cannot mislead: every value that must be the
// reader's own is a <placeholder> that fails with a message naming its
// setting until it is replaced; optional features are commented out and
// still valid once uncommented; every setting appears, set or commented.

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	yamlv3 "gopkg.in/yaml.v3"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

const (
	examplePath = "gateway.example.yaml"
	readmePath  = "../README.md"
)

// replacements are the reader's values for the example's placeholders, as
// environment variables (they override the file).
func replacements(t *testing.T) map[string]string {
	t.Helper()
	cert := filepath.Join(t.TempDir(), "gateway.pem")
	// Validation checks that the file can be read, not what it holds.
	if err := os.WriteFile(cert, []byte("not read by validation\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"AZURE_TENANT_ID":                            "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34",
		"AZURE_CLIENT_ID":                            "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
		"OBO_GATEWAY_ENTRA_AUDIENCES":                "api://obo-gateway",
		"AZURE_CLIENT_CERTIFICATE_PATH":              cert,
		"OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM":          "https://orders.internal.example.com",
		"OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES": "api://orders-api/.default",
		"OBO_GATEWAY_ROUTE_INVENTORY_UPSTREAM":       "http://inventory.internal.example.com:8080",
	}
}

// placeholderRE is a value only the reader knows: <your-…>.
var placeholderRE = regexp.MustCompile(`<[a-z0-9.-]+>`)

// TestExamplePlaceholders: each placeholder the file sets fails, on its
// line, with a message naming its setting; nothing else fails.
func TestExamplePlaceholders(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	want := map[int]string{} // line → the placeholder set there
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if m := placeholderRE.FindString(l); m != "" {
			want[i+1] = m
		}
	}
	if len(want) == 0 {
		t.Fatal("the example has no placeholders")
	}

	_, err = config.Load(examplePath, func(string) string { return "" })
	if err == nil {
		t.Fatal("the example loads as it is: its placeholders must fail until replaced")
	}
	got := map[int]bool{}
	for _, p := range config.Problems(err) {
		msg := p.Error()
		switch {
		case p.Line == 0 || want[p.Line] == "":
			t.Errorf("a problem that is not a placeholder's: %s", msg)
		case p.Field == "" || !strings.Contains(msg, p.Field+": "):
			t.Errorf("line %d: the message does not name the setting: %s", p.Line, msg)
		}
		got[p.Line] = true
		t.Logf("%s", msg)
	}
	for line, ph := range want {
		if !got[line] {
			t.Errorf("line %d: the placeholder %s passes validation: a reader who forgets it would not be told", line, ph)
		}
	}

	t.Run("replaced", func(t *testing.T) {
		env := replacements(t)
		c, err := config.Load(examplePath, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("the example with its placeholders replaced does not load:\n%v", err)
		}
		// The optional features are off until turned on.
		switch {
		case c.AdminPprof, c.TLS != nil, c.Cache.Redis != nil, len(c.CORS.AllowedOrigins) > 0,
			len(c.TrustedProxies) > 0, len(c.Entra.AllowedTenants) > 0, len(c.Entra.ClientCapabilities) > 0,
			c.Entra.CAFile != "":
			t.Errorf("an optional feature is on in the example: %+v", c)
		}
		if c.Entra.InstanceDiscovery == nil || !*c.Entra.InstanceDiscovery {
			t.Errorf("instance discovery is off for %s: the example must leave it to its default", c.Entra.AuthorityHost)
		}
		// One route with an exchange, one without.
		if len(c.Routes) != 2 || len(c.Routes[0].DownstreamScopes) == 0 || len(c.Routes[1].DownstreamScopes) != 0 {
			t.Errorf("the example's routes %+v: want one with an exchange, then one without", c.Routes)
		}
	})
}

// commentedSettingRE is a commented-out setting: "# key: value" or
// "# - item", at the indentation it would have.
var commentedSettingRE = regexp.MustCompile(`^(\s*)# (\s*(?:- \S|[a-z_][a-z0-9_]*:(?:\s|$)).*)$`)

// uncomment turns every commented-out setting of the example on.
func uncomment(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if m := commentedSettingRE.FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + m[2]
			continue
		}
		// A comment inside a commented-out section ("#   # host:port") stays one.
		if m := regexp.MustCompile(`^(\s*)# (\s*# .*)$`).FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + m[2]
		}
	}
	return strings.Join(lines, "\n")
}

// TestExampleCommentedSettings: every setting appears in the example, set
// or commented out; turned on, the commented ones make a valid
// configuration, and those of limits and the routes show the defaults.
func TestExampleCommentedSettings(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	on := filepath.Join(t.TempDir(), "gateway.all-on.yaml")
	if err := os.WriteFile(on, []byte(uncomment(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}

	keys := yamlKeys(t, on)
	for _, path := range config.SettingPaths() {
		if !slices.Contains(keys, path) {
			t.Errorf("%s does not show %s, set or commented out (# %s: …)", examplePath, lastSegment(path), path)
		}
	}

	raw, _, err := config.Parse(on, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the example with every setting turned on does not parse:\n%v", err)
	}
	if raw.Entra.Certificate.Password != "" || raw.Cache.Redis == nil || raw.Cache.Redis.Password != "" || raw.Cache.Redis.EncryptionKeys != "" {
		t.Errorf("the example writes a secret, or hides where it goes: the certificate password, cache.redis.password and encryption_keys belong in the environment")
	}

	env := replacements(t)
	env["OBO_GATEWAY_ENTRA_ALLOWED_TENANTS"] = "4e9a7b12-c3d5-4f60-8a1b-5c2d9e7f0a63"
	env["OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS"] = "k1:" + strings.Repeat("A", 43) + "="
	getenv := func(k string) string { return env[k] }
	all, src, err := config.Parse(on, getenv)
	if err != nil {
		t.Fatal(err)
	}
	// The files the commented-out settings name are examples of paths.
	if _, err := all.ValidateWith(config.Options{Source: src, SkipFiles: true}); err != nil {
		t.Errorf("the example with every setting turned on is not valid:\n%v", err)
	}

	def, err := config.Load(examplePath, getenv)
	if err != nil {
		t.Fatalf("the example with its placeholders replaced does not load:\n%v", err)
	}
	if !reflect.DeepEqual(all.Limits, def.Limits) {
		t.Errorf("the commented-out limits are not the defaults:\nshown    %+v\ndefaults %+v", all.Limits, def.Limits)
	}
	for i := range def.Routes {
		a, d := all.Routes[i], def.Routes[i]
		if a.MaxBodyBytes != d.MaxBodyBytes || a.BodyTimeout != d.BodyTimeout || a.MaxInFlight != d.MaxInFlight {
			t.Errorf("routes[%d]: the commented-out bounds are not the defaults: shown %v %v %d, defaults %v %v %d",
				i, a.MaxBodyBytes, a.BodyTimeout, a.MaxInFlight, d.MaxBodyBytes, d.BodyTimeout, d.MaxInFlight)
		}
	}
}

// TestReadmeQuotesTheExample: the message the README quotes for a
// placeholder is the one the example gives, copied as gateway.yaml.
func TestReadmeQuotesTheExample(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(config: gateway\.yaml:\d+: .*)$`).FindStringSubmatch(string(readme))
	if m == nil {
		t.Fatal("the README quotes no message of the example (config: gateway.yaml:LINE: …)")
	}
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.WriteFile("gateway.yaml", example, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load("gateway.yaml", func(string) string { return "" })
	var msgs []string
	for _, p := range config.Problems(err) {
		msgs = append(msgs, p.Error())
	}
	if !slices.Contains(msgs, m[1]) {
		t.Errorf("the README quotes\n  %s\nbut the example copied as gateway.yaml says\n  %s", m[1], strings.Join(msgs, "\n  "))
	}
	if err == nil {
		t.Error(errors.New("the example loads as it is"))
	}
}

// yamlKeys lists the YAML paths a file sets, routes[].x for the keys of
// any route.
func yamlKeys(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var keys []string
	var walk func(n *yamlv3.Node, prefix string)
	walk = func(n *yamlv3.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := prefix+n.Content[i].Value, n.Content[i+1]
			switch {
			case value.Kind == yamlv3.MappingNode:
				walk(value, key+".")
			case value.Kind == yamlv3.SequenceNode && len(value.Content) > 0 && value.Content[0].Kind == yamlv3.MappingNode:
				for _, item := range value.Content {
					walk(item, key+"[].")
				}
			default:
				keys = append(keys, key)
			}
		}
	}
	walk(doc.Content[0], "")
	return keys
}

func lastSegment(path string) string { return path[strings.LastIndex(path, ".")+1:] }
