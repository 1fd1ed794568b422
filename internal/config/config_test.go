package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// password is the certificate password of the test files: no error and no
// redacted output may contain it.
const password = "Pa55-w0rd-s3cret!"

// redisPassword is the Redis password of the test files, kept secret like password.
const redisPassword = "R3dis-pa55-s3cret?"

// testKey returns the standard base64 of a 32-byte key made of b: key
// material no error and no redacted output may contain.
func testKey(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

// fileKeys is fullYAML's cache.redis.encryption_keys: two keys, k2 current.
var fileKeys = "k1:" + testKey(0x11) + ", k2:" + testKey(0x22)

// secrets are every secret of the test files and the environment samples.
func secrets() []string {
	return []string{password, "env-" + password, redisPassword, "env-" + redisPassword,
		testKey(0x11), testKey(0x22), testKey(0x33)}
}

// files are the readable files a full configuration names.
type files struct {
	dir, cert, key, ca, tlsCert, tlsKey string
}

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	return files{
		dir:     dir,
		cert:    writeFile(t, dir, "gateway.pem", "-----BEGIN CERTIFICATE-----\n"),
		key:     writeFile(t, dir, "gateway.key", "-----BEGIN PRIVATE KEY-----\n"),
		ca:      writeFile(t, dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n"),
		tlsCert: writeFile(t, dir, "tls.crt", "-----BEGIN CERTIFICATE-----\n"),
		tlsKey:  writeFile(t, dir, "tls.key", "-----BEGIN PRIVATE KEY-----\n"),
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fullYAML sets every setting to a value other than its default, except
// cache.redis.ca_file: it needs cache.redis.tls true, and the environment
// test sets one then the other.
func fullYAML(f files) string {
	return fmt.Sprintf(`listen: 127.0.0.1:8443
admin_listen: 127.0.0.1:9443
tls:
  cert_file: %q
  key_file: %q
entra:
  tenant_id: 3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34
  client_id: 9d7e6c5b-4a3f-4e2d-8c1b-0a9f8e7d6c5b
  authority_host: https://login.microsoftonline.com
  instance_discovery: true
  audiences: [api://obo-gateway]
  allowed_tenants: [b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e]
  clock_skew: 2m
  certificate:
    path: %q
    key_path: %q
    password: %q
    send_x5c: false
  ca_file: %q
  token_timeout: 15s
  keys_refresh_interval: 30m
  keys_min_refresh_interval: 1m
routes:
  - name: orders
    path_prefix: /orders
    upstream: https://orders.internal.example.com
    strip_prefix: true
    downstream_scopes: [api://orders-api/.default]
    required_scopes: [access_as_user]
    timeout: 20s
    max_body_bytes: 1MiB
    body_timeout: 2m
    max_in_flight: 100
    websocket: true
    cookies: true
  - name: graph-me
    path_prefix: /graph
    upstream: https://graph.microsoft.com/v1.0
    strip_prefix: false
    downstream_scopes: [https://graph.microsoft.com/User.Read]
    required_scopes: [access_as_user]
    timeout: 10s
  - name: inventory-app
    path_prefix: /inventory
    upstream: http://inventory.internal.example.com:8080
    required_roles: [Inventory.Read]
    timeout: 5s
cors:
  allowed_origins: [https://app.example.com]
  allowed_headers: [X-Request-Id]
  max_age: 5m
cache:
  memory_budget: 256MiB
  verified_tokens_budget: 16MiB
  refresh_margin: 10m
  redis:
    address: redis.internal.example.com:6380
    username: gateway
    password: %q
    db: 1
    tls: true
    ca_file: ""
    timeout: 100ms
    encryption_keys: %q
    encryption_key_id: k2
limits:
  max_connections: 1000
  max_in_flight: 300
  max_concurrent_exchanges: 8
  max_queued_exchanges: 64
  exchange_queue_timeout: 1s
  read_header_timeout: 5s
  body_timeout: 20s
  idle_timeout: 60s
  max_header_bytes: 32KiB
  max_body_bytes: 4MiB
trusted_proxies: [10.0.0.0/8, 192.0.2.10]
tracing:
  endpoint: http://otel-collector:4318
  traces_endpoint: http://otel-collector:4318/v1/traces
  protocol: http/protobuf
  headers: api-key=file-secret
  timeout: 5s
  insecure: true
  ca_file: %q
  compression: gzip
  sampler: parentbased_traceidratio
  sampler_arg: "0.5"
  service_name: gateway-eu
  resource_attributes: deployment.environment.name=prod
  client_certificate: %q
  client_key: %q
  exporter: otlp
  disabled: true
shutdown_grace: 30s
log_level: warn
`, f.tlsCert, f.tlsKey, f.cert, f.key, password, f.ca, redisPassword, fileKeys, f.ca, f.cert, f.key)
}

// minimalYAML sets only what has no default.
func minimalYAML(cert string) string {
	return fmt.Sprintf(`entra:
  tenant_id: 3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34
  client_id: 9d7e6c5b-4a3f-4e2d-8c1b-0a9f8e7d6c5b
  certificate:
    path: %q
routes:
  - name: orders
    path_prefix: /orders
    upstream: https://orders.internal.example.com
`, cert)
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, content string, env map[string]string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, t.TempDir(), "gateway.yaml", content), env)
}

func mustLoad(t *testing.T, content string, env map[string]string) *Config {
	t.Helper()
	c, err := load(t, content, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func wantFull(f files) *Config {
	return &Config{
		Listen:      "127.0.0.1:8443",
		AdminListen: "127.0.0.1:9443",
		TLS:         &ServerTLS{CertFile: f.tlsCert, KeyFile: f.tlsKey},
		Entra: Entra{
			TenantID:               "3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34",
			ClientID:               "9d7e6c5b-4a3f-4e2d-8c1b-0a9f8e7d6c5b",
			AuthorityHost:          "https://login.microsoftonline.com",
			InstanceDiscovery:      ptr(true),
			Audiences:              []string{"api://obo-gateway"},
			AllowedTenants:         []string{"b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"},
			ClockSkew:              Duration(2 * time.Minute),
			Credential:             CredentialCertificate,
			Certificate:            Certificate{Path: f.cert, KeyPath: f.key, Password: password},
			CAFile:                 f.ca,
			TokenTimeout:           Duration(15 * time.Second),
			KeysRefreshInterval:    Duration(30 * time.Minute),
			KeysMinRefreshInterval: Duration(time.Minute),
		},
		Routes: []Route{
			{Name: "orders", PathPrefix: "/orders", Upstream: "https://orders.internal.example.com", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/.default"}, RequiredScopes: []string{"access_as_user"}, Timeout: Duration(20 * time.Second),
				MaxBodyBytes: MiB, BodyTimeout: Duration(2 * time.Minute), MaxInFlight: 100, WebSocket: true, Cookies: true},
			{Name: "graph-me", PathPrefix: "/graph", Upstream: "https://graph.microsoft.com/v1.0",
				DownstreamScopes: []string{"https://graph.microsoft.com/User.Read"}, RequiredScopes: []string{"access_as_user"}, Timeout: Duration(10 * time.Second),
				MaxBodyBytes: 4 * MiB, BodyTimeout: Duration(20 * time.Second)},
			{Name: "inventory-app", PathPrefix: "/inventory", Upstream: "http://inventory.internal.example.com:8080",
				RequiredRoles: []string{"Inventory.Read"}, Timeout: Duration(5 * time.Second),
				MaxBodyBytes: 4 * MiB, BodyTimeout: Duration(20 * time.Second)},
		},
		Limits: Limits{
			MaxConnections: 1000, MaxInFlight: 300, MaxConcurrentExchanges: 8, MaxQueuedExchanges: 64,
			ExchangeQueueTimeout: Duration(time.Second), ReadHeaderTimeout: Duration(5 * time.Second),
			BodyTimeout: Duration(20 * time.Second), IdleTimeout: Duration(time.Minute),
			MaxHeaderBytes: 32 * KiB, MaxBodyBytes: 4 * MiB,
		},
		CORS: CORS{
			AllowedOrigins: []string{"https://app.example.com"},
			AllowedHeaders: []string{"X-Request-Id"},
			MaxAge:         Duration(5 * time.Minute),
		},
		Cache: Cache{
			MemoryBudget:         256 * MiB,
			VerifiedTokensBudget: 16 * MiB,
			RefreshMargin:        Duration(10 * time.Minute),
			Redis: &Redis{
				Address:         "redis.internal.example.com:6380",
				Username:        "gateway",
				Password:        redisPassword,
				DB:              1,
				TLS:             true,
				Timeout:         Duration(100 * time.Millisecond),
				EncryptionKeys:  fileKeys,
				EncryptionKeyID: "k2",
			},
		},
		TrustedProxies: []string{"10.0.0.0/8", "192.0.2.10"},
		Tracing: Tracing{
			Endpoint: "http://otel-collector:4318", TracesEndpoint: "http://otel-collector:4318/v1/traces",
			Protocol: "http/protobuf", Headers: "api-key=file-secret", Timeout: Duration(5 * time.Second), Insecure: true,
			CAFile: f.ca, Compression: "gzip", Sampler: "parentbased_traceidratio", SamplerArg: "0.5",
			ServiceName: "gateway-eu", ResourceAttributes: "deployment.environment.name=prod", Exporter: "otlp", Disabled: true,
			ClientCertificate: f.cert, ClientKey: f.key,
		},
		ShutdownGrace: Duration(30 * time.Second),
		LogLevel:      "warn",
	}
}

func TestLoadFullFile(t *testing.T) {
	f := newFiles(t)
	got := mustLoad(t, fullYAML(f), nil)
	if want := wantFull(f); !got.Equal(want) {
		t.Fatalf("Load:\n got %#v\nwant %#v", got.Redacted(), want.Redacted())
	}

	// What Load returns, written back as YAML, loads to the same Config
	// (compared as YAML: an empty list reads back as empty, not nil).
	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := yaml.Marshal(mustLoad(t, string(out), nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Fatalf("round trip changed the configuration:\n%s\nbecame\n%s", out, again)
	}
}

func TestLoadDefaults(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, minimalYAML(f.cert), nil)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"admin_listen", c.AdminListen, ":9090"},
		{"tls", c.TLS, (*ServerTLS)(nil)},
		{"shutdown_grace", c.ShutdownGrace, Duration(20 * time.Second)},
		{"log_level", c.LogLevel, "info"},
		{"entra.authority_host", c.Entra.AuthorityHost, "https://login.microsoftonline.com"},
		{"entra.instance_discovery", c.Entra.InstanceDiscovery, ptr(true)},
		{"entra.clock_skew", c.Entra.ClockSkew, Duration(time.Minute)},
		{"entra.token_timeout", c.Entra.TokenTimeout, Duration(10 * time.Second)},
		{"entra.keys_refresh_interval", c.Entra.KeysRefreshInterval, Duration(time.Hour)},
		{"entra.keys_min_refresh_interval", c.Entra.KeysMinRefreshInterval, Duration(30 * time.Second)},
		{"entra.certificate.send_x5c", c.Entra.Certificate.SendX5C, false},
		{"routes[0].timeout", c.Routes[0].Timeout, Duration(30 * time.Second)},
		{"routes[0].strip_prefix", c.Routes[0].StripPrefix, false},
		{"cors.max_age", c.CORS.MaxAge, Duration(10 * time.Minute)},
		{"cors.allowed_origins", c.CORS.AllowedOrigins, []string(nil)},
		{"cache.memory_budget", c.Cache.MemoryBudget, 64 * MiB},
		{"cache.verified_tokens_budget", c.Cache.VerifiedTokensBudget, 32 * MiB},
		{"cache.refresh_margin", c.Cache.RefreshMargin, Duration(5 * time.Minute)},
		{"cache.redis", c.Cache.Redis, (*Redis)(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

func TestLoadNormalises(t *testing.T) {
	f := newFiles(t)
	t.Run("empty tls section is no TLS", func(t *testing.T) {
		c := mustLoad(t, minimalYAML(f.cert)+"tls:\n  cert_file: \"\"\n  key_file: \"\"\n", nil)
		if c.TLS != nil {
			t.Errorf("TLS = %+v, want nil", c.TLS)
		}
	})
	t.Run("redis section without an address is no shared cache", func(t *testing.T) {
		c := mustLoad(t, minimalYAML(f.cert)+"cache:\n  redis:\n    address: \"\"\n    db: 2\n    timeout: 1m\n    encryption_keys: nope\n", nil)
		if c.Cache.Redis != nil {
			t.Errorf("Redis = %+v, want nil", c.Cache.Redis)
		}
	})
	t.Run("redis variables without an address are no shared cache", func(t *testing.T) {
		c := mustLoad(t, minimalYAML(f.cert), map[string]string{"OBO_GATEWAY_CACHE_REDIS_PASSWORD": redisPassword, "OBO_GATEWAY_CACHE_REDIS_TIMEOUT": "1s"})
		if c.Cache.Redis != nil {
			t.Errorf("Redis = %+v, want nil", c.Cache.Redis)
		}
	})
	t.Run("redis defaults", func(t *testing.T) {
		c := mustLoad(t, minimalYAML(f.cert)+"cache:\n  redis:\n    address: redis:6379\n    encryption_keys: \" kA : "+testKey(0x11)+" , kB:"+testKey(0x22)+"\"\n", nil)
		want := &Redis{Address: "redis:6379", Timeout: Duration(50 * time.Millisecond),
			EncryptionKeys: " kA : " + testKey(0x11) + " , kB:" + testKey(0x22), EncryptionKeyID: "kA"}
		if !reflect.DeepEqual(c.Cache.Redis, want) {
			t.Errorf("Redis = %#v, want %#v", c.Cache.Redis, want)
		}
	})
	t.Run("trailing slash of the authority host dropped", func(t *testing.T) {
		c := mustLoad(t, minimalYAML(f.cert), map[string]string{"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"})
		if c.Entra.AuthorityHost != "https://login.microsoftonline.us" {
			t.Errorf("authority_host = %q", c.Entra.AuthorityHost)
		}
	})
}

func TestInstanceDiscoveryDefault(t *testing.T) {
	f := newFiles(t)
	for _, tc := range []struct {
		host     string
		explicit string // the file's instance_discovery, "" for none
		want     bool
		wantErr  string // the problem instead, of entra.instance_discovery
	}{
		{host: "https://login.microsoftonline.com", want: true},
		{host: "https://login.microsoftonline.us", want: true},
		{host: "https://login.partner.microsoftonline.cn", want: true},
		{host: "https://login.microsoft.com", want: true},
		{host: "https://login.windows.net", want: true},
		{host: "https://login.chinacloudapi.cn", want: true},
		{host: "https://login-us.microsoftonline.com", want: true},
		{host: "https://login.usgovcloudapi.net", want: true},
		{host: "https://contoso.ciamlogin.com", want: true},
		{host: "https://LOGIN.microsoftonline.com:443", want: true},
		{host: "https://127.0.0.1:8443", want: false},
		{host: "https://fakeentra.test", want: false},
		{host: "https://login.microsoftonline.com.evil.example", want: false},
		{host: "https://ciamlogin.com", want: false},
		{host: "https://a.b.ciamlogin.com", want: false},
		{host: "https://login.microsoftonline.com", explicit: "false", want: false},
		{host: "https://127.0.0.1:8443", explicit: "false", want: false},
		{host: "https://login.microsoftonline.us", explicit: "true", want: true},
		{host: "https://127.0.0.1:8443", explicit: "true", wantErr: "on for 127.0.0.1, a host Entra does not know"},
	} {
		t.Run(tc.host+"/"+tc.explicit, func(t *testing.T) {
			content := strings.Replace(minimalYAML(f.cert), "entra:\n", "entra:\n  authority_host: "+tc.host+"\n", 1)
			if tc.explicit != "" {
				content = strings.Replace(content, "entra:\n", "entra:\n  instance_discovery: "+tc.explicit+"\n", 1)
			}
			c, err := load(t, content, nil)
			if tc.wantErr != "" {
				p := findProblem(t, err, "entra.instance_discovery")
				if !strings.Contains(p.Problem, tc.wantErr) || p.Line != 2 || p.Value != "true" {
					t.Errorf("problem %+v, want %q at line 2", p, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := *c.Entra.InstanceDiscovery; got != tc.want {
				t.Errorf("instance_discovery = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("set by its variable", func(t *testing.T) {
		content := strings.Replace(minimalYAML(f.cert), "entra:\n", "entra:\n  authority_host: https://127.0.0.1:8443\n", 1)
		_, err := load(t, content, map[string]string{"OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY": "1"})
		want := "config: entra.instance_discovery (env OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY): on for 127.0.0.1, a host Entra does not know"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Load error = %v, want %q", err, want)
		}
	})
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	f := newFiles(t)
	for _, tc := range []struct {
		name    string
		replace [2]string // applied to the minimal file
		want    string
	}{
		{"top level", [2]string{"entra:\n", "lisen: :8080\nentra:\n"}, `gateway.yaml:1: unknown key "lisen" in the top level`},
		{"entra", [2]string{"  client_id:", "  tenantid: x\n  client_id:"}, `gateway.yaml:3: unknown key "tenantid" in entra`},
		{"certificate", [2]string{"    path:", "    passwrod: x\n    path:"}, `gateway.yaml:5: unknown key "passwrod" in entra.certificate`},
		{"route", [2]string{"    upstream:", "    upstrem: x\n    upstream:"}, `gateway.yaml:9: unknown key "upstrem" in a route (routes[])`},
		{"cors", [2]string{"routes:\n", "cors:\n  allowed_origin: [x]\nroutes:\n"}, `gateway.yaml:7: unknown key "allowed_origin" in cors`},
		{"tls", [2]string{"routes:\n", "tls:\n  cert: x\nroutes:\n"}, `gateway.yaml:7: unknown key "cert" in tls`},
		{"cache", [2]string{"routes:\n", "cache:\n  memory: 1MiB\nroutes:\n"}, `gateway.yaml:7: unknown key "memory" in cache`},
		{"redis", [2]string{"routes:\n", "cache:\n  redis:\n    addr: x:1\nroutes:\n"}, `gateway.yaml:8: unknown key "addr" in cache.redis`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := strings.Replace(minimalYAML(f.cert), tc.replace[0], tc.replace[1], 1)
			_, err := load(t, content, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), "gateway.yaml") {
				t.Errorf("error %q does not start with config: and name the file", err)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	f := newFiles(t)
	base := minimalYAML(f.cert)
	for _, tc := range []struct {
		name    string
		content string
		want    []string
	}{
		{"duration without unit", base + "shutdown_grace: 30\n", []string{"gateway.yaml:10:", `"30" is not a duration`, `"30s"`}},
		{"duration in words", strings.Replace(base, "    upstream:", "    timeout: 5 minutes\n    upstream:", 1), []string{"gateway.yaml:9:", `"5 minutes" is not a duration`, `"1h30m"`}},
		{"duration as a list", base + "shutdown_grace: [1s]\n", []string{"gateway.yaml:10:", "a duration is a single value"}},
		{"several problems at once", base + "shutdown_grace: 3\nlog_levl: x\n", []string{"gateway.yaml:10:", "gateway.yaml:11:", `unknown key "log_levl"`}},
		{"wrong type", strings.Replace(base, "    path:", "    send_x5c: maybe\n    path:", 1), []string{"gateway.yaml:5:", "the string `maybe` is not a boolean (true or false)"}},
		{"scalar for a list", base + "trusted_proxies: 10.0.0.0/8\n", []string{"gateway.yaml:10:", "is not a list"}},
		{"list for a string", base + "log_level: [info]\n", []string{"gateway.yaml:10:", "a list is not a string"}},
		{"not a mapping", "hello\n", []string{"gateway.yaml:1:", "the string `hello` is not a mapping"}},
		{"duplicate key", base + "listen: :1\nlisten: :2\n", []string{"gateway.yaml:11:", `"listen" already defined`}},
		{"two documents", base + "---\nlisten: :1\n", []string{"more than one YAML document"}},
		{"syntax error", "entra: [\n", []string{"config: ", "line"}},
		{"size in decimal units", base + "cache:\n  memory_budget: 64MB\n", []string{"gateway.yaml:11:", `"64MB" is not a size: units are binary: did you mean 64MiB?`}},
		{"size as a list", base + "cache:\n  memory_budget: [1MiB]\n", []string{"gateway.yaml:11:", "a size is a single value"}},
		{"db not a number", base + "cache:\n  redis:\n    db: one\n", []string{"gateway.yaml:12:", "the string `one` is not a whole number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.content, nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), []string(nil))
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Load error = %v, want a not-exist error naming the file", err)
		}
	})
	t.Run("empty file takes everything from the environment", func(t *testing.T) {
		_, err := load(t, "# nothing here\n", map[string]string{"AZURE_TENANT_ID": "3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34"})
		if err == nil || !strings.Contains(err.Error(), "config: routes: at least one route") || strings.Contains(err.Error(), "entra.tenant_id") {
			t.Fatalf("Load error = %v, want only the missing routes and others, not entra.tenant_id", err)
		}
	})
}

// fieldByPath returns the field at a YAML path of yamlLeaves, taking
// element routeIndex of lists of structs; it is invalid behind a nil pointer.
func fieldByPath(v reflect.Value, path string, routeIndex int) reflect.Value {
	for seg := range strings.SplitSeq(path, ".") {
		name, list := strings.CutSuffix(seg, "[]")
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			panic("no field " + path)
		}
		if list {
			v = v.Index(routeIndex)
		}
	}
	return v
}

func TestEnvVarsCoverEverySetting(t *testing.T) {
	leaves := SettingPaths()
	byField := map[string][]string{}
	names := map[string]bool{}
	for _, v := range EnvVars() {
		if names[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		names[v.Name] = true
		if !slices.Contains(leaves, v.Field) {
			t.Errorf("%s sets %q, which is not a setting", v.Name, v.Field)
		}
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
		if !strings.HasPrefix(v.Name, "OBO_GATEWAY_") && !strings.HasPrefix(v.Name, "AZURE_") && !strings.HasPrefix(v.Name, "OTEL_") {
			t.Errorf("%s: want OBO_GATEWAY_, AZURE_ or OpenTelemetry's OTEL_", v.Name)
		}
		byField[v.Field] = append(byField[v.Field], v.Name)
	}
	for _, leaf := range leaves {
		n := len(byField[leaf])
		if n == 2 && otelPair(byField[leaf]) {
			n = 1 // OTEL_EXPORTER_OTLP_X and its traces-specific OTEL_EXPORTER_OTLP_TRACES_X
		}
		if leaf == "routes[].name" {
			n++ // the key of route variables, not settable
		}
		if n != 1 {
			t.Errorf("%s has %d variables %v, want 1", leaf, n, byField[leaf])
		}
	}
}

// otelPair reports OTEL_EXPORTER_OTLP_<X> and OTEL_EXPORTER_OTLP_TRACES_<X>,
// in that order (the specific one applies last, so it wins).
func otelPair(names []string) bool {
	return len(names) == 2 && strings.HasPrefix(names[0], "OTEL_EXPORTER_OTLP_") &&
		names[1] == strings.Replace(names[0], "OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_", 1)
}

// envSample is a value for one variable and what the field becomes.
type envSample struct {
	route string // for route variables: the route whose field is set
	value string
	want  any // the field's value after Load
	// also are variables set with it, for a sample that is valid only
	// with another change (a credential kind other than certificate
	// clears the certificate).
	also map[string]string
}

// envSamples has one sample per variable of EnvVars, keyed by Field; each
// differs from fullYAML's value and keeps the configuration valid.
func envSamples(t *testing.T, f files) map[string]envSample {
	t.Helper()
	other := func(name string) string { return writeFile(t, f.dir, name, "x") }
	return map[string]envSample{
		"listen":                    {value: "127.0.0.1:18080", want: "127.0.0.1:18080"},
		"admin_listen":              {value: "127.0.0.1:19090", want: "127.0.0.1:19090"},
		"admin_pprof":               {value: "1", want: true},
		"tls.cert_file":             {value: other("tls2.crt"), want: other("tls2.crt")},
		"tls.key_file":              {value: other("tls2.key"), want: other("tls2.key")},
		"entra.tenant_id":           {value: "11111111-2222-4333-8444-555555555555", want: "11111111-2222-4333-8444-555555555555"},
		"entra.client_id":           {value: "66666666-7777-4888-9999-aaaaaaaaaaaa", want: "66666666-7777-4888-9999-aaaaaaaaaaaa"},
		"entra.authority_host":      {value: "https://login.microsoftonline.us", want: "https://login.microsoftonline.us"},
		"entra.instance_discovery":  {value: "0", want: ptr(false)},
		"entra.audiences":           {value: "api://obo-gateway, https://gateway.contoso.com,", want: []string{"api://obo-gateway", "https://gateway.contoso.com"}},
		"entra.allowed_tenants":     {value: "11111111-2222-4333-8444-555555555555,66666666-7777-4888-9999-aaaaaaaaaaaa", want: []string{"11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"}},
		"entra.clock_skew":          {value: "90s", want: Duration(90 * time.Second)},
		"entra.client_capabilities": {value: "cp1", want: []string{"cp1"}},
		"entra.credential": {value: "managed_identity", want: "managed_identity",
			also: map[string]string{"AZURE_CLIENT_CERTIFICATE_PATH": "", "OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH": ""}},
		"entra.workload_identity.token_file": {value: other("token"), want: other("token")},
		"entra.managed_identity.client_id":   {value: "77777777-7777-4777-8777-777777777777", want: "77777777-7777-4777-8777-777777777777"},
		"entra.managed_identity.audience":    {value: "api://AzureADTokenExchangeUSGov", want: "api://AzureADTokenExchangeUSGov"},
		"entra.certificate.path":             {value: other("cert2.pem"), want: other("cert2.pem")},
		"entra.certificate.key_path":         {value: other("key2.pem"), want: other("key2.pem")},
		"entra.certificate.password":         {value: "env-" + password, want: "env-" + password},
		"entra.certificate.send_x5c":         {value: "TRUE", want: true},
		"entra.ca_file":                      {value: other("ca2.pem"), want: other("ca2.pem")},
		"entra.token_timeout":                {value: "7s", want: Duration(7 * time.Second)},
		"entra.keys_refresh_interval":        {value: "2h", want: Duration(2 * time.Hour)},
		"entra.keys_min_refresh_interval":    {value: "45s", want: Duration(45 * time.Second)},
		"cors.allowed_origins":               {value: "https://a.example.com,http://localhost:3000", want: []string{"https://a.example.com", "http://localhost:3000"}},
		"cors.allowed_headers":               {value: "X-A, X-B", want: []string{"X-A", "X-B"}},
		"cors.max_age":                       {value: "1m", want: Duration(time.Minute)},
		"cache.memory_budget":                {value: "1GiB", want: GiB},
		"cache.verified_tokens_budget":       {value: "2097152", want: 2 * MiB},
		"cache.refresh_margin":               {value: "2m", want: Duration(2 * time.Minute)},
		"cache.redis.address":                {value: "[fd00::6]:6379", want: "[fd00::6]:6379"},
		"cache.redis.username":               {value: "gateway-2", want: "gateway-2"},
		"cache.redis.password":               {value: "env-" + redisPassword, want: "env-" + redisPassword},
		"cache.redis.db":                     {value: "3", want: 3},
		"cache.redis.tls":                    {value: "false", want: false},
		"cache.redis.ca_file":                {value: f.ca, want: f.ca},
		"cache.redis.timeout":                {value: "5s", want: Duration(5 * time.Second)},
		"cache.redis.encryption_keys":        {value: "k3:" + testKey(0x33) + ",k2:" + testKey(0x22), want: "k3:" + testKey(0x33) + ",k2:" + testKey(0x22)},
		"cache.redis.encryption_key_id":      {value: "k1", want: "k1"},
		"trusted_proxies":                    {value: "192.0.2.0/24, 2001:db8::1", want: []string{"192.0.2.0/24", "2001:db8::1"}},
		"shutdown_grace":                     {value: "45s", want: Duration(45 * time.Second)},
		"tracing.endpoint":                   {value: "https://collector.example.com:4318", want: "https://collector.example.com:4318"},
		"tracing.traces_endpoint":            {value: "http://tempo:4318/v1/traces", want: "http://tempo:4318/v1/traces"},
		"tracing.protocol":                   {value: "grpc", want: "grpc"},
		"tracing.headers":                    {value: "api-key=env-secret", want: "api-key=env-secret"},
		"tracing.timeout":                    {value: "2500", want: Duration(2500 * time.Millisecond)},
		"tracing.insecure":                   {value: "false", want: false},
		"tracing.ca_file":                    {value: other("otel-ca.pem"), want: other("otel-ca.pem")},
		"tracing.compression":                {value: "none", want: "none"},
		"tracing.sampler":                    {value: "always_on", want: "always_on"},
		"tracing.sampler_arg":                {value: "0.25", want: "0.25"},
		"tracing.service_name":               {value: "gateway-us", want: "gateway-us"},
		"tracing.resource_attributes":        {value: "k8s.namespace.name=gw", want: "k8s.namespace.name=gw"},
		"tracing.exporter":                   {value: "none", want: "none"},
		"tracing.client_certificate":         {value: other("otel-client.pem"), want: other("otel-client.pem")},
		"tracing.client_key":                 {value: other("otel-client.key"), want: other("otel-client.key")},
		"tracing.disabled":                   {value: "false", want: false},
		"log_level":                          {value: "debug", want: "debug"},
		"routes[].path_prefix":               {route: "graph-me", value: "/me", want: "/me"},
		"routes[].upstream":                  {route: "graph-me", value: "https://graph.microsoft.com/beta", want: "https://graph.microsoft.com/beta"},
		"routes[].strip_prefix":              {route: "graph-me", value: "1", want: true},
		"routes[].downstream_scopes":         {route: "graph-me", value: "https://graph.microsoft.com/User.Read,https://graph.microsoft.com/Mail.Read", want: []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"}},
		"routes[].required_scopes":           {route: "graph-me", value: "access_as_user,Graph.Me", want: []string{"access_as_user", "Graph.Me"}},
		"routes[].required_roles":            {route: "inventory-app", value: "Inventory.Read,Inventory.Admin", want: []string{"Inventory.Read", "Inventory.Admin"}},
		"routes[].timeout":                   {route: "graph-me", value: "3s", want: Duration(3 * time.Second)},
		"routes[].max_body_bytes":            {route: "graph-me", value: "512KiB", want: 512 * KiB},
		"routes[].body_timeout":              {route: "graph-me", value: "10m", want: Duration(10 * time.Minute)},
		"routes[].max_in_flight":             {route: "graph-me", value: "50", want: 50},
		"routes[].websocket":                 {route: "graph-me", value: "true", want: true},
		"routes[].cookies":                   {route: "graph-me", value: "1", want: true},
		"routes[].proxy_leg":                 {route: "graph-me", value: "standard", want: "standard"},
		"limits.max_connections":             {value: "4096", want: 4096},
		"limits.max_in_flight":               {value: "200", want: 200},
		"limits.max_concurrent_exchanges":    {value: "4", want: 4},
		"limits.max_queued_exchanges":        {value: "32", want: 32},
		"limits.exchange_queue_timeout":      {value: "500ms", want: Duration(500 * time.Millisecond)},
		"limits.read_header_timeout":         {value: "3s", want: Duration(3 * time.Second)},
		"limits.body_timeout":                {value: "45s", want: Duration(45 * time.Second)},
		"limits.idle_timeout":                {value: "30s", want: Duration(30 * time.Second)},
		"limits.max_header_bytes":            {value: "16KiB", want: 16 * KiB},
		"limits.max_body_bytes":              {value: "2MiB", want: 2 * MiB},
	}
}

func routeIndex(c *Config, name string) int {
	return slices.IndexFunc(c.Routes, func(r Route) bool { return r.Name == name })
}

func TestEnvOverrides(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	base := mustLoad(t, content, nil)
	samples := envSamples(t, f)
	seen := map[string]bool{}
	for _, v := range EnvVars() {
		t.Run(v.Name, func(t *testing.T) {
			s, ok := samples[v.Field]
			if !ok {
				t.Fatalf("no sample for %s (%s): add one to envSamples", v.Name, v.Field)
			}
			seen[v.Field] = true
			name, idx := v.Name, 0
			if s.route != "" {
				name = strings.Replace(name, "<NAME>", routeEnvName(s.route), 1)
				if idx = routeIndex(base, s.route); idx < 0 {
					t.Fatalf("no route %s in the file", s.route)
				}
			}
			env := map[string]string{name: s.value}
			for k, v := range s.also {
				env[k] = v
			}
			c := mustLoad(t, content, env)
			got, before := fieldByPath(reflect.ValueOf(c), v.Field, idx), fieldByPath(reflect.ValueOf(base), v.Field, idx)
			if !reflect.DeepEqual(got.Interface(), s.want) {
				t.Errorf("%s=%q: %s = %v, want %v", name, s.value, v.Field, got, s.want)
			}
			if reflect.DeepEqual(before.Interface(), s.want) {
				t.Errorf("the sample for %s equals the file's value: it proves nothing", v.Name)
			}
		})
	}
	for field := range samples {
		if !seen[field] {
			t.Errorf("envSamples has %s, which no variable sets", field)
		}
	}
}

func TestEnvOverridesCreateTLS(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, minimalYAML(f.cert), map[string]string{"OBO_GATEWAY_TLS_CERT_FILE": f.tlsCert, "OBO_GATEWAY_TLS_KEY_FILE": f.tlsKey})
	if c.TLS == nil || c.TLS.CertFile != f.tlsCert || c.TLS.KeyFile != f.tlsKey {
		t.Fatalf("TLS = %+v", c.TLS)
	}
}

func TestEnvOverridesCreateRedis(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, minimalYAML(f.cert), map[string]string{
		"OBO_GATEWAY_CACHE_REDIS_ADDRESS":         "redis:6379",
		"OBO_GATEWAY_CACHE_REDIS_PASSWORD":        redisPassword,
		"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS": fileKeys,
	})
	want := &Redis{Address: "redis:6379", Password: redisPassword, Timeout: Duration(50 * time.Millisecond),
		EncryptionKeys: fileKeys, EncryptionKeyID: "k1"}
	if !reflect.DeepEqual(c.Cache.Redis, want) {
		t.Fatalf("Redis = %#v, want %#v", c.Cache.Redis, want)
	}

	t.Run("an address without keys is refused", func(t *testing.T) {
		_, err := load(t, minimalYAML(f.cert), map[string]string{"OBO_GATEWAY_CACHE_REDIS_ADDRESS": "redis:6379", "OBO_GATEWAY_CACHE_REDIS_PASSWORD": redisPassword})
		want := "config: cache.redis.encryption_keys: required when cache.redis.address is set: the shared cache holds users' downstream tokens: set cache.redis.encryption_keys (OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS) to kid:base64 of 32 random bytes, e.g. `k1:$(head -c32 /dev/urandom | base64)`"
		if err == nil || err.Error() != want {
			t.Fatalf("Load error = %v, want %q", err, want)
		}
	})
}

// TestEnvEmptyClears: a variable set to "" clears its setting, as if the
// file did not set it, so that the default applies; a getenv function,
// which cannot tell "" from unset, leaves the file alone.
func TestEnvEmptyClears(t *testing.T) {
	f := newFiles(t)
	env := map[string]string{}
	for _, v := range EnvVars() {
		env[strings.Replace(v.Name, "<NAME>", "ORDERS", 1)] = ""
	}
	path := writeFile(t, t.TempDir(), "gateway.yaml", fullYAML(f))

	t.Run("every variable empty", func(t *testing.T) {
		got, src, err := Parse(path, env)
		if err != nil {
			t.Fatal(err)
		}
		// What the variables cannot set is left: the routes' names and the
		// settings of the routes but orders (whose defaults are the
		// cleared limits' now).
		kept := wantFull(f).Routes[1:]
		for i := range kept {
			kept[i].MaxBodyBytes, kept[i].BodyTimeout = 0, 0
		}
		// OpenTelemetry's variables set empty are unset (its
		// specification): the file's tracing section stays.
		want := &Config{Routes: append([]Route{{Name: "orders"}}, kept...), Tracing: wantFull(f).Tracing}
		want.applyDefaults()
		if !got.Equal(want) {
			t.Errorf("Parse:\n got %#v\nwant %#v", got.Redacted(), want.Redacted())
		}
		for field, variable := range map[string]string{
			"entra.certificate.key_path": "OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH",
			"routes[0].upstream":         "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM",
			"limits.max_connections":     "OBO_GATEWAY_LIMITS_MAX_CONNECTIONS",
		} {
			if o := got.Origin(field); o != "env "+variable {
				t.Errorf("Origin(%s) = %q, want the variable that cleared it", field, o)
			}
		}
		// The problems of what was cleared name the variables.
		_, err = got.ValidateWith(Options{Source: src})
		if p := findProblem(t, err, "routes[0].upstream"); !p.FromEnv || p.EnvVar != "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM" || !strings.Contains(p.Problem, "required") {
			t.Errorf("problem %+v, want the upstream required, from its variable", p)
		}
	})

	t.Run("one variable empty", func(t *testing.T) {
		c := mustLoad(t, fullYAML(f), map[string]string{"OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH": "", "OBO_GATEWAY_LIMITS_MAX_CONNECTIONS": "", "OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY": ""})
		want := wantFull(f)
		want.Entra.Certificate.KeyPath = ""
		want.Limits.MaxConnections = defaultMaxConnections
		if !c.Equal(want) {
			t.Errorf("Load:\n got %#v\nwant %#v", c.Redacted(), want.Redacted())
		}
	})

	t.Run("a getenv function cannot tell", func(t *testing.T) {
		c, err := Load(path, envMap(env))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Equal(wantFull(f)) {
			t.Fatalf("empty values from a getenv changed the configuration: %#v", c.Redacted())
		}
	})
}

func TestEnvBadValues(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	var tested int
	for _, v := range EnvVars() {
		ft := fieldByPath(reflect.ValueOf(&Config{TLS: &ServerTLS{}, Routes: []Route{{}}, Cache: Cache{Redis: &Redis{}}}), v.Field, 0).Type()
		var bad string
		switch {
		case ft == reflect.TypeFor[Duration]():
			bad = "5 minutes"
		case ft == reflect.TypeFor[bool]() || ft == reflect.TypeFor[*bool]():
			bad = "yes"
		case ft == reflect.TypeFor[ByteSize]():
			bad = "64 megabytes"
		case ft == reflect.TypeFor[int]():
			bad = "zero"
		default:
			continue
		}
		tested++
		name := strings.Replace(v.Name, "<NAME>", "ORDERS", 1)
		t.Run(name, func(t *testing.T) {
			_, err := load(t, content, map[string]string{name: bad})
			field := strings.Replace(v.Field, "routes[]", "routes[0]", 1) // ORDERS is routes[0]
			want := fmt.Sprintf("config: %s (env %s): %q is not a ", field, name, bad)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load error = %v, want %q", err, want)
			}
		})
	}
	if tested < 14 {
		t.Fatalf("only %d boolean, duration, size and number variables", tested)
	}

	t.Run("all bad values at once", func(t *testing.T) {
		_, err := load(t, content, map[string]string{"OBO_GATEWAY_SHUTDOWN_GRACE": "x", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "on"})
		if err == nil || !strings.Contains(err.Error(), "OBO_GATEWAY_SHUTDOWN_GRACE") || !strings.Contains(err.Error(), "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN") {
			t.Fatalf("Load error = %v, want both variables", err)
		}
	})
}

func TestRouteEnvOverrides(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	for _, tc := range []struct {
		name string
		env  map[string]string
		// got reads the fields the case changes; want is their value, or
		// wantErr the error.
		got     func(*Config) string
		want    string
		wantErr string
	}{
		{name: "name with a dash", env: map[string]string{"OBO_GATEWAY_ROUTE_GRAPH_ME_UPSTREAM": "https://graph.microsoft.com/beta"},
			got:  func(c *Config) string { return c.Routes[1].Upstream + " " + c.Routes[0].Upstream },
			want: "https://graph.microsoft.com/beta https://orders.internal.example.com"},
		{name: "only the named route changes", env: map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_TIMEOUT": "1s"},
			got:  func(c *Config) string { return fmt.Sprint(c.Routes[0].Timeout, " ", c.Routes[1].Timeout) },
			want: "1s 10s"},
		{name: "the result is validated", env: map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES": "api://orders-api/default"},
			wantErr: `config: routes[0].downstream_scopes[0] (env OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES): "api://orders-api/default" is not the .default scope: did you mean api://orders-api/.default? (Entra answers AADSTS70011)`},
		{name: "bad boolean names the variable", env: map[string]string{"OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX": "yes"},
			wantErr: `config: routes[0].strip_prefix (env OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX): "yes" is not a boolean: write true, false, 1 or 0`},
		{name: "bad duration names the variable", env: map[string]string{"OBO_GATEWAY_ROUTE_GRAPH_ME_TIMEOUT": "10"},
			wantErr: `config: routes[1].timeout (env OBO_GATEWAY_ROUTE_GRAPH_ME_TIMEOUT): "10" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, content, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(c); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckEnviron(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, fullYAML(f), nil)
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string // variables named in the error; none: no error
	}{
		{"known route fields", []string{"OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=https://x", "OBO_GATEWAY_ROUTE_GRAPH_ME_TIMEOUT=1s", "OBO_GATEWAY_ROUTE_INVENTORY_APP_REQUIRED_ROLES=a"}, nil},
		{"other variables are not route variables", []string{"PATH=/bin", "OBO_GATEWAY_LISTEN=:1", "OBO_GATEWAY_CONFIG=/etc/x.yaml"}, nil},
		{"an empty value is set too", []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM="}, []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM"}},
		{"a route not in the file", []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing"}, []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM", "orders, graph-me, inventory-app"}},
		{"a name written with a dash", []string{"OBO_GATEWAY_ROUTE_GRAPH-ME_UPSTREAM=https://x"}, []string{"OBO_GATEWAY_ROUTE_GRAPH-ME_UPSTREAM"}},
		{"a misspelt field", []string{"OBO_GATEWAY_ROUTE_ORDERS_UPSTRAEM=https://x", "OBO_GATEWAY_ROUTE_ORDERS_SCOPES=a"}, []string{"OBO_GATEWAY_ROUTE_ORDERS_UPSTRAEM", "OBO_GATEWAY_ROUTE_ORDERS_SCOPES", "DOWNSTREAM_SCOPES"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckEnviron(tc.environ)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckEnviron: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckEnviron succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestLoadChecksRouteVariables: with an environment that can be listed,
// Load reports the route variables that name no route as CheckEnviron
// does, and the problem of a file without routes names those set; a
// getenv function cannot list them.
func TestLoadChecksRouteVariables(t *testing.T) {
	f := newFiles(t)
	path := writeFile(t, t.TempDir(), "gateway.yaml", fullYAML(f))
	noRoutes := writeFile(t, t.TempDir(), "gateway.yaml", minimalYAML(f.cert)[:strings.Index(minimalYAML(f.cert), "routes:")])
	billing := "OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing.internal.example.com"

	t.Run("a list", func(t *testing.T) {
		_, err := Load(path, []string{"PATH=/bin", "OBO_GATEWAY_ROUTE_ORDERS_TIMEOUT=1s", billing})
		ps := Problems(err)
		if len(ps) != 1 || ps[0].Kind != KindUnknownVariable || ps[0].EnvVar != "OBO_GATEWAY_ROUTE_BILLING_UPSTREAM" || !ps[0].FromEnv {
			t.Fatalf("Load: %v, want the billing variable alone", err)
		}
		if want := "config: OBO_GATEWAY_ROUTE_BILLING_UPSTREAM: names no route field: "; !strings.HasPrefix(ps[0].Error(), want) {
			t.Errorf("%q, want it to start with %q", ps[0], want)
		}
		if want := c(t, path).CheckEnviron([]string{billing}).Error(); err.Error() != want {
			t.Errorf("Load says\n%v\nCheckEnviron says\n%v", err, want)
		}
	})
	t.Run("a map", func(t *testing.T) {
		_, err := Load(path, map[string]string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM": ""})
		if p := findProblem(t, err, ""); p.Kind != KindUnknownVariable || p.EnvVar != "OBO_GATEWAY_ROUTE_BILLING_UPSTREAM" {
			t.Errorf("problem %+v, want the billing variable, empty as it is", p)
		}
	})
	t.Run("a getenv function cannot list", func(t *testing.T) {
		if _, err := Load(path, envMap(map[string]string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM": "https://billing"})); err != nil {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("no routes in the file", func(t *testing.T) {
		_, err := Load(noRoutes, []string{"OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=https://orders", "OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX=/orders", "OBO_GATEWAY_ROUTE_HR_API_BODY_TIMEOUT=1m"})
		ps := Problems(err)
		if len(ps) != 1 || ps[0].Field != "routes" {
			t.Fatalf("Load: %v, want the routes problem alone (it names the variables)", err)
		}
		want := "config: routes: at least one route is required (name, path_prefix, upstream): routes are defined in the file, " +
			"and the variables set (OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM, OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX, OBO_GATEWAY_ROUTE_HR_API_BODY_TIMEOUT) " +
			"only override the fields of a route the file defines: add the routes orders, hr_api to the file (routes: with name, path_prefix and upstream)"
		if ps[0].Error() != want {
			t.Errorf("problem\n%s\nwant\n%s", ps[0], want)
		}
	})
	t.Run("no routes and no route variables", func(t *testing.T) {
		_, err := Load(noRoutes, []string(nil))
		if p := findProblem(t, err, "routes"); !strings.Contains(p.Problem, "routes are defined in the file; a variable OBO_GATEWAY_ROUTE_<NAME>_<FIELD> only overrides a field of a route the file defines") {
			t.Errorf("problem %q", p.Problem)
		}
	})
}

// c loads the configuration at path without an environment.
func c(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := Load(path, []string(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOrigin: a Config from Parse says where each setting came from.
func TestOrigin(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	path := writeFile(t, t.TempDir(), "gateway.yaml", content)
	cfg, _, err := Parse(path, map[string]string{"OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH": f.key, "OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES": "api://a/.default,api://a/b", "AZURE_CLIENT_CERTIFICATE_PASSWORD": ""})
	if err != nil {
		t.Fatal(err)
	}
	line := func(prefix string) string {
		for i, l := range strings.Split(content, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return fmt.Sprintf("%s:%d", path, i+1)
			}
		}
		t.Fatalf("no line %q", prefix)
		return ""
	}
	for field, want := range map[string]string{
		"entra.certificate.path":         line("path:"),
		"entra.certificate.key_path":     "env OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH",
		"entra.certificate.password":     "env AZURE_CLIENT_CERTIFICATE_PASSWORD", // cleared by it
		"routes[0].downstream_scopes[1]": "env OBO_GATEWAY_ROUTE_ORDERS_DOWNSTREAM_SCOPES",
		"routes[1].upstream":             line("upstream: https://graph"),
		"entra.token_timeout":            line("token_timeout:"),
		"routes[2].strip_prefix":         "", // a default
		"no.such.setting":                "",
	} {
		if got := cfg.Origin(field); got != want {
			t.Errorf("Origin(%s) = %q, want %q", field, got, want)
		}
		if got := cfg.Entra.Origin(field); got != cfg.Origin(field) {
			t.Errorf("Entra.Origin(%s) = %q, Config.Origin %q", field, got, cfg.Origin(field))
		}
	}
	if got := wantFull(f).Origin("entra.certificate.path"); got != "" {
		t.Errorf("a literal's Origin = %q, want none", got)
	}
}

// validationCase changes a valid configuration; field is the YAML path of
// the problem Validate must report, with want in its message, or "" when
// the change is valid.
type validationCase struct {
	name   string
	mutate func(*Config)
	field  string
	want   string
}

// validationCases break each rule of Validate, and check the edges.
func validationCases(f files) []validationCase {
	missing := filepath.Join(f.dir, "missing.pem")
	return []validationCase{
		// Listeners.
		{"listen empty", func(c *Config) { c.Listen = "" }, "listen", "required: set listen or OBO_GATEWAY_LISTEN"},
		{"listen without port", func(c *Config) { c.Listen = "8080" }, "listen", "is not host:port"},
		{"listen port out of range", func(c *Config) { c.Listen = ":99999" }, "listen", "port must be a number from 0 to 65535"},
		{"listen named port", func(c *Config) { c.Listen = ":http" }, "listen", "port must be a number"},
		{"admin_listen empty", func(c *Config) { c.AdminListen = "" }, "admin_listen", "OBO_GATEWAY_ADMIN_LISTEN"},
		{"admin_listen equals listen", func(c *Config) { c.Listen, c.AdminListen = ":8080", ":8080" }, "admin_listen", "need their own port"},
		{"admin_listen on listen's port, all interfaces", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:8080", ":8080" }, "admin_listen", "need their own port"},
		{"listeners on port 0", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0" }, "", ""},
		{"listeners on one port, different hosts", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:8080", "10.1.2.3:8080" }, "", ""},
		{"tls cert without key", func(c *Config) { c.TLS.KeyFile = "" }, "tls.key_file", "required when tls.cert_file is set"},
		{"tls key without cert", func(c *Config) { c.TLS.CertFile = "" }, "tls.cert_file", "required when tls.key_file is set"},
		{"tls cert unreadable", func(c *Config) { c.TLS.CertFile = missing }, "tls.cert_file", "cannot read"},
		{"tls key is a directory", func(c *Config) { c.TLS.KeyFile = f.dir }, "tls.key_file", "is a directory"},

		// Entra.
		{"tenant_id empty", func(c *Config) { c.Entra.TenantID = "" }, "entra.tenant_id", "set entra.tenant_id or AZURE_TENANT_ID to the Directory (tenant) ID GUID from the app registration's Overview page"},
		{"tenant_id common", func(c *Config) { c.Entra.TenantID = "common" }, "entra.tenant_id", "OBO exchanges go to the gateway's own tenant"},
		{"tenant_id organizations", func(c *Config) { c.Entra.TenantID = "organizations" }, "entra.tenant_id", "entra.allowed_tenants"},
		{"tenant_id consumers", func(c *Config) { c.Entra.TenantID = "Consumers" }, "entra.tenant_id", "is not a tenant"},
		{"tenant_id domain", func(c *Config) { c.Entra.TenantID = "contoso.onmicrosoft.com" }, "entra.tenant_id", "is not a GUID"},
		{"client_id empty", func(c *Config) { c.Entra.ClientID = "" }, "entra.client_id", "set entra.client_id or AZURE_CLIENT_ID"},
		{"client_id App ID URI", func(c *Config) { c.Entra.ClientID = "api://obo-gateway" }, "entra.client_id", "belongs in entra.audiences"},
		{"allowed_tenants not a GUID", func(c *Config) {
			c.Entra.AllowedTenants = []string{"b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e", "fabrikam.com"}
		}, "entra.allowed_tenants[1]", "is not a GUID"},
		{"allowed_tenants common", func(c *Config) { c.Entra.AllowedTenants = []string{"common"} }, "entra.allowed_tenants[0]", "is not a tenant"},
		{"authority_host http", func(c *Config) { c.Entra.AuthorityHost = "http://login.microsoftonline.com" }, "entra.authority_host", "https only"},
		{"authority_host with tenant", func(c *Config) {
			c.Entra.AuthorityHost = "https://login.microsoftonline.com/3f2a9c4e-8b1d-4e6f-9a7c-2d5e8f1b0c34"
		}, "entra.authority_host", "put the tenant in entra.tenant_id"},
		{"authority_host with v2.0 path", func(c *Config) { c.Entra.AuthorityHost = "https://login.microsoftonline.com/common/v2.0" }, "entra.authority_host", "has a path"},
		{"authority_host not a URL", func(c *Config) { c.Entra.AuthorityHost = "login.microsoftonline.com" }, "entra.authority_host", "is not a URL"},
		{"authority_host with query", func(c *Config) { c.Entra.AuthorityHost = "https://login.microsoftonline.com?x=1" }, "entra.authority_host", "https://host[:port] only"},
		{"authority_host local tenant", func(c *Config) {
			c.Entra.AuthorityHost, c.Entra.InstanceDiscovery = "https://127.0.0.1:8443", ptr(false)
		}, "", ""},
		{"instance_discovery on for a local tenant", func(c *Config) { c.Entra.AuthorityHost = "https://127.0.0.1:8443" }, "entra.instance_discovery",
			"on for 127.0.0.1, a host Entra does not know: MSAL would ask login.microsoftonline.com to validate it, and every exchange would fail; remove the setting"},
		{"instance_discovery on for a host ending like Microsoft's", func(c *Config) { c.Entra.AuthorityHost = "https://evil-login.microsoftonline.com" }, "entra.instance_discovery", "a host Entra does not know"},
		{"instance_discovery on for External ID", func(c *Config) { c.Entra.AuthorityHost = "https://contoso.ciamlogin.com" }, "", ""},
		{"instance_discovery on for US Government", func(c *Config) { c.Entra.AuthorityHost = "https://login.microsoftonline.us" }, "", ""},
		{"audience not a URI", func(c *Config) { c.Entra.Audiences = []string{"obo-gateway"} }, "entra.audiences[0]", "is not an absolute URI"},
		{"audience GUID", func(c *Config) { c.Entra.Audiences = []string{"api://x", "9d7e6c5b-4a3f-4e2d-8c1b-0a9f8e7d6c5b"} }, "entra.audiences[1]", "is a GUID"},
		{"audience https", func(c *Config) { c.Entra.Audiences = []string{"https://gateway.contoso.com"} }, "", ""},
		{"unknown client capability", func(c *Config) { c.Entra.ClientCapabilities = []string{"cp1", "cp2"} }, "entra.client_capabilities[1]", "only one is cp1"},
		{"credential unknown", func(c *Config) { c.Entra.Credential = "secret" }, "entra.credential", `"secret" is not a credential kind`},
		{"workload identity without a token file", func(c *Config) {
			c.Entra.Credential, c.Entra.Certificate = CredentialWorkloadIdentity, Certificate{}
		}, "entra.workload_identity.token_file", "AZURE_FEDERATED_TOKEN_FILE"},
		{"workload identity with a missing token file", func(c *Config) {
			c.Entra.Credential, c.Entra.Certificate = CredentialWorkloadIdentity, Certificate{}
			c.Entra.WorkloadIdentity.TokenFile = "/nonexistent/azure-identity-token"
		}, "entra.workload_identity.token_file", "cannot read"},
		{"workload identity with a certificate too", func(c *Config) {
			c.Entra.Credential = CredentialWorkloadIdentity
			c.Entra.WorkloadIdentity.TokenFile = c.Entra.Certificate.Path // any readable file
		}, "entra.certificate.path", "the certificate would not be used"},
		{"managed identity, system-assigned", func(c *Config) {
			c.Entra.Credential, c.Entra.Certificate = CredentialManagedIdentity, Certificate{}
		}, "", ""},
		{"managed identity client_id not a GUID", func(c *Config) {
			c.Entra.Credential, c.Entra.Certificate = CredentialManagedIdentity, Certificate{}
			c.Entra.ManagedIdentity.ClientID = "my-identity"
		}, "entra.managed_identity.client_id", "is not a GUID"},
		{"managed identity audience not a URI", func(c *Config) {
			c.Entra.Credential, c.Entra.Certificate = CredentialManagedIdentity, Certificate{}
			c.Entra.ManagedIdentity.Audience = "AzureADTokenExchange"
		}, "entra.managed_identity.audience", "is not an absolute URI"},
		{"certificate credential without a certificate", func(c *Config) { c.Entra.Certificate = Certificate{} }, "entra.certificate.path", "set entra.credential to workload_identity or managed_identity"},
		{"clock_skew too long", func(c *Config) { c.Entra.ClockSkew = Duration(6 * time.Minute) }, "entra.clock_skew", "use 0 to 5m"},
		{"clock_skew negative", func(c *Config) { c.Entra.ClockSkew = Duration(-time.Second) }, "entra.clock_skew", "out of range"},
		{"clock_skew 5m", func(c *Config) { c.Entra.ClockSkew = Duration(5 * time.Minute) }, "", ""},
		{"token_timeout zero", func(c *Config) { c.Entra.TokenTimeout = 0 }, "entra.token_timeout", "must be positive"},
		{"keys_refresh_interval negative", func(c *Config) { c.Entra.KeysRefreshInterval = Duration(-time.Hour) }, "entra.keys_refresh_interval", "must be positive"},
		{"keys_min_refresh_interval zero", func(c *Config) { c.Entra.KeysMinRefreshInterval = 0 }, "entra.keys_min_refresh_interval", "must be positive"},
		{"keys_min_refresh_interval above the interval", func(c *Config) { c.Entra.KeysMinRefreshInterval = Duration(2 * time.Hour) }, "entra.keys_min_refresh_interval", "longer than entra.keys_refresh_interval"},
		{"certificate path empty", func(c *Config) { c.Entra.Certificate.Path = "" }, "entra.certificate.path", "set entra.certificate.path or AZURE_CLIENT_CERTIFICATE_PATH"},
		{"certificate path missing", func(c *Config) { c.Entra.Certificate.Path = missing }, "entra.certificate.path", "cannot read \"" + missing + "\": no such file"},
		{"certificate path a directory", func(c *Config) { c.Entra.Certificate.Path = f.dir }, "entra.certificate.path", "is a directory"},
		{"certificate key_path missing", func(c *Config) { c.Entra.Certificate.KeyPath = missing }, "entra.certificate.key_path", "cannot read"},
		{"certificate key_path unset", func(c *Config) { c.Entra.Certificate.KeyPath = "" }, "", ""},
		{"ca_file missing", func(c *Config) { c.Entra.CAFile = missing }, "entra.ca_file", "cannot read"},

		// Routes.
		{"no routes", func(c *Config) { c.Routes = nil }, "routes", "at least one route is required"},
		{"name empty", func(c *Config) { c.Routes[1].Name = "" }, "routes[1].name", "required"},
		{"name upper case", func(c *Config) { c.Routes[1].Name = "Graph" }, "routes[1].name", "use lowercase letters, digits, '-' and '_'"},
		{"name with a dot", func(c *Config) { c.Routes[1].Name = "graph.me" }, "routes[1].name", "lowercase"},
		{"name starting with a dash", func(c *Config) { c.Routes[1].Name = "-graph" }, "routes[1].name", "starting with a letter or digit"},
		{"name duplicate", func(c *Config) { c.Routes[2].Name = "orders" }, "routes[2].name", "also the name of routes[0]"},
		{"names sharing variables", func(c *Config) { c.Routes[2].Name = "graph_me" }, "routes[2].name", "share the variables OBO_GATEWAY_ROUTE_GRAPH_ME_*"},
		{"path_prefix empty", func(c *Config) { c.Routes[0].PathPrefix = "" }, "routes[0].path_prefix", "required"},
		{"path_prefix relative", func(c *Config) { c.Routes[0].PathPrefix = "orders" }, "routes[0].path_prefix", "must start with '/'"},
		{"path_prefix query", func(c *Config) { c.Routes[0].PathPrefix = "/orders?x=1" }, "routes[0].path_prefix", "no '?', '#' or '*'"},
		{"path_prefix fragment", func(c *Config) { c.Routes[0].PathPrefix = "/orders#x" }, "routes[0].path_prefix", "no '?', '#' or '*'"},
		{"path_prefix wildcard", func(c *Config) { c.Routes[0].PathPrefix = "/orders/*" }, "routes[0].path_prefix", "no '?', '#' or '*'"},
		{"path_prefix dot-dot", func(c *Config) { c.Routes[0].PathPrefix = "/orders/../admin" }, "routes[0].path_prefix", "must not contain '..'"},
		{"path_prefix trailing slash", func(c *Config) { c.Routes[0].PathPrefix = "/orders/" }, "routes[0].path_prefix", "drop the trailing '/' (write /orders)"},
		{"path_prefix root", func(c *Config) { c.Routes[0].PathPrefix = "/" }, "", ""},
		{"path_prefix duplicate", func(c *Config) { c.Routes[2].PathPrefix = "/orders" }, "routes[2].path_prefix", "also the path_prefix of routes[0]"},
		{"path_prefix encoded", func(c *Config) { c.Routes[0].PathPrefix = "/ord%65rs" }, "routes[0].path_prefix", "letters, digits, '/' and"},
		{"path_prefix semicolon", func(c *Config) { c.Routes[0].PathPrefix = "/orders;v=1" }, "routes[0].path_prefix", "no '%', ';'"},
		{"path_prefix braces", func(c *Config) { c.Routes[0].PathPrefix = "/orders/{id}" }, "routes[0].path_prefix", "braces"},
		{"path_prefix non-ASCII", func(c *Config) { c.Routes[0].PathPrefix = "/café" }, "routes[0].path_prefix", "non-ASCII"},
		{"path_prefix empty segment", func(c *Config) { c.Routes[0].PathPrefix = "/orders//admin" }, "routes[0].path_prefix", "empty or dot segment"},
		{"path_prefix dot segment", func(c *Config) { c.Routes[0].PathPrefix = "/orders/./admin" }, "routes[0].path_prefix", "empty or dot segment"},
		{"path_prefix nested", func(c *Config) { c.Routes[2].PathPrefix = "/orders/admin" }, "", ""},
		{"path_prefixes differing in case", func(c *Config) { c.Routes[2].PathPrefix = "/Orders/admin" }, "routes[2].path_prefix", "differ only in case"},
		{"path_prefixes differing by a format suffix", func(c *Config) { c.Routes[2].PathPrefix = "/orders.json" }, "routes[2].path_prefix", "format suffix"},
		{"route named unmatched", func(c *Config) { c.Routes[1].Name = "unmatched" }, "routes[1].name", "no route matched"},
		{"a stripping route reaches another's upstream paths", func(c *Config) {
			c.Routes[2].Upstream = "https://ORDERS.internal.example.com:443" // routes[0] strips onto its root
		}, "routes[2].upstream", `routes "inventory-app" and "orders" reach the same paths of https://orders.internal.example.com:443`},
		{"two stripping routes onto one base path", func(c *Config) {
			c.Routes[2].Upstream, c.Routes[2].StripPrefix = "https://orders.internal.example.com/", true
		}, "routes[2].upstream", "reach the same paths"},
		{"stripping routes onto separate base paths", func(c *Config) {
			c.Routes[0].Upstream = "https://h.example.com/orders"
			c.Routes[2].Upstream, c.Routes[2].StripPrefix = "https://h.example.com/inventory", true
		}, "", ""},
		{"routes forwarding paths as they are onto one upstream", func(c *Config) {
			c.Routes[0].StripPrefix = false
			c.Routes[2].Upstream = "https://orders.internal.example.com"
		}, "", ""},
		{"routes of one policy overlapping upstream", func(c *Config) {
			c.Routes[2].Upstream = "https://orders.internal.example.com"
			c.Routes[2].DownstreamScopes, c.Routes[2].RequiredScopes, c.Routes[2].RequiredRoles = c.Routes[0].DownstreamScopes, c.Routes[0].RequiredScopes, nil
		}, "", ""},
		{"route max_in_flight above the global one", func(c *Config) { c.Routes[0].MaxInFlight = 1000 }, "routes[0].max_in_flight", "out of range"},
		{"route max_in_flight negative", func(c *Config) { c.Routes[0].MaxInFlight = -1 }, "routes[0].max_in_flight", "out of range"},
		{"route body_timeout too long", func(c *Config) { c.Routes[0].BodyTimeout = Duration(2 * time.Hour) }, "routes[0].body_timeout", "out of range"},
		{"route max_body_bytes too large", func(c *Config) { c.Routes[0].MaxBodyBytes = 65 * GiB }, "routes[0].max_body_bytes", "out of range"},
		{"limits max_in_flight zero", func(c *Config) { c.Limits.MaxInFlight = 0 }, "limits.max_in_flight", "out of range"},
		{"limits max_concurrent_exchanges too many", func(c *Config) { c.Limits.MaxConcurrentExchanges = 5000 }, "limits.max_concurrent_exchanges", "out of range: use 1 to 1024"},
		{"limits exchange_queue_timeout too short", func(c *Config) { c.Limits.ExchangeQueueTimeout = Duration(time.Millisecond) }, "limits.exchange_queue_timeout", "out of range: use 10ms to 1m0s"},
		{"limits max_header_bytes too small", func(c *Config) { c.Limits.MaxHeaderBytes = KiB }, "limits.max_header_bytes", "out of range: use 4KiB to 1MiB"},
		{"limits body_timeout zero", func(c *Config) { c.Limits.BodyTimeout = 0 }, "limits.body_timeout", "out of range"},
		{"upstream empty", func(c *Config) { c.Routes[1].Upstream = "" }, "routes[1].upstream", "required"},
		{"upstream without scheme", func(c *Config) { c.Routes[1].Upstream = "orders.internal.example.com" }, "routes[1].upstream", "is not an absolute URL"},
		{"upstream relative", func(c *Config) { c.Routes[1].Upstream = "/orders" }, "routes[1].upstream", "is not an absolute URL"},
		{"upstream ftp", func(c *Config) { c.Routes[1].Upstream = "ftp://files.example.com" }, "routes[1].upstream", "scheme must be http or https"},
		{"upstream query", func(c *Config) { c.Routes[1].Upstream = "https://x.example.com/api?v=1" }, "routes[1].upstream", "no query or fragment"},
		{"upstream fragment", func(c *Config) { c.Routes[1].Upstream = "https://x.example.com/api#top" }, "routes[1].upstream", "no query or fragment"},
		{"upstream credentials", func(c *Config) { c.Routes[1].Upstream = "https://svc:hunter2@x.example.com" }, "routes[1].upstream", "remove the user information"},
		{"scope with two dots", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://orders-api/..default"} }, "routes[0].downstream_scopes[0]", "did you mean api://orders-api/.default?"},
		{"scope missing dot", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://orders-api/default"} }, "routes[0].downstream_scopes[0]", "did you mean api://orders-api/.default? (Entra answers AADSTS70011)"},
		{"scope bare", func(c *Config) { c.Routes[1].DownstreamScopes = []string{"User.Read"} }, "routes[1].downstream_scopes[0]", "write the full scope, e.g. https://graph.microsoft.com/User.Read"},
		{"scope .default alone", func(c *Config) { c.Routes[0].DownstreamScopes = []string{".default"} }, "routes[0].downstream_scopes[0]", "has no resource"},
		{"scope resource without scope", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://orders-api"} }, "routes[0].downstream_scopes[0]", "did you mean api://orders-api/.default?"},
		{"scope trailing slash", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://orders-api/"} }, "routes[0].downstream_scopes[0]", "ends with '/'"},
		{"scope resource not a URI", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"orders/read"} }, "routes[0].downstream_scopes[0]", "neither an App ID URI"},
		{"scope with a space", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://orders-api/a api://orders-api/b"} }, "routes[0].downstream_scopes[0]", "one scope per list item"},
		{"scope openid", func(c *Config) {
			c.Routes[1].DownstreamScopes = []string{"https://graph.microsoft.com/User.Read", "openid"}
		}, "routes[1].downstream_scopes[1]", "is an OpenID Connect scope"},
		{"scope offline_access", func(c *Config) { c.Routes[1].DownstreamScopes = []string{"offline_access"} }, "routes[1].downstream_scopes[0]", "OpenID Connect"},
		{"scope profile", func(c *Config) { c.Routes[1].DownstreamScopes = []string{"profile"} }, "routes[1].downstream_scopes[0]", "OpenID Connect"},
		{"scope email", func(c *Config) { c.Routes[1].DownstreamScopes = []string{"email"} }, "routes[1].downstream_scopes[0]", "OpenID Connect"},
		{"scopes of two resources", func(c *Config) {
			c.Routes[0].DownstreamScopes = []string{"api://orders-api/Orders.Read", "https://graph.microsoft.com/User.Read"}
		}, "routes[0].downstream_scopes", "2 resources (api://orders-api, https://graph.microsoft.com)"},
		{"scopes .default with named", func(c *Config) {
			c.Routes[0].DownstreamScopes = []string{"api://orders-api/.default", "api://orders-api/Orders.Read"}
		}, "routes[0].downstream_scopes", "mixes /.default with named scopes"},
		{"scopes named, one resource", func(c *Config) {
			c.Routes[0].DownstreamScopes = []string{"api://orders-api/Orders.Read", "api://orders-api/Orders.Write"}
		}, "", ""},
		{"scope GUID resource", func(c *Config) {
			c.Routes[0].DownstreamScopes = []string{"00000003-0000-0000-c000-000000000000/.default"}
		}, "", ""},
		{"scope path resource", func(c *Config) { c.Routes[0].DownstreamScopes = []string{"api://contoso.com/orders/.default"} }, "", ""},
		{"required_scopes full URI", func(c *Config) { c.Routes[0].RequiredScopes = []string{"api://obo-gateway/access_as_user"} }, "routes[0].required_scopes[0]", `write "access_as_user"`},
		{"required_scopes empty item", func(c *Config) { c.Routes[0].RequiredScopes = []string{""} }, "routes[0].required_scopes[0]", "one scope name per list item"},
		{"required_roles empty item", func(c *Config) { c.Routes[2].RequiredRoles = []string{"a b"} }, "routes[2].required_roles[0]", "one app role value per list item"},
		{"timeout zero", func(c *Config) { c.Routes[2].Timeout = 0 }, "routes[2].timeout", "must be positive"},
		{"timeout negative", func(c *Config) { c.Routes[2].Timeout = Duration(-time.Second) }, "routes[2].timeout", "must be positive"},

		// CORS.
		{"origins star", func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }, "", ""},
		{"origins star with others", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://a.example.com", "*"} }, "cors.allowed_origins[1]", "list it alone"},
		{"origin with path", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com/"} }, "cors.allowed_origins[0]", "an origin has no path: write https://app.example.com"},
		{"origin without scheme", func(c *Config) { c.CORS.AllowedOrigins = []string{"app.example.com"} }, "cors.allowed_origins[0]", "is not an origin"},
		{"origin other scheme", func(c *Config) { c.CORS.AllowedOrigins = []string{"ftp://app.example.com"} }, "cors.allowed_origins[0]", "is not an origin"},
		{"origin upper case", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://App.example.com"} }, "cors.allowed_origins[0]", "lower case"},
		{"origin with port", func(c *Config) { c.CORS.AllowedOrigins = []string{"http://localhost:3000"} }, "", ""},
		{"allowed_headers bad", func(c *Config) { c.CORS.AllowedHeaders = []string{"X-Ok", "X Bad"} }, "cors.allowed_headers[1]", "is not a header name"},
		// Rules of the CORS middleware itself: a configuration that validates
		// must not make it panic at start-up.
		{"origin with the default port", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com:443"} }, "cors.allowed_origins[0]", "drop the default or empty port"},
		{"origin with a wildcard host", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://*.example.com"} }, "cors.allowed_origins[0]", "wildcard hosts are not supported"},
		{"allowed_headers wildcard", func(c *Config) { c.CORS.AllowedHeaders = []string{"*"} }, "cors.allowed_headers[0]", "the wildcard * is not supported"},
		{"max_age negative", func(c *Config) { c.CORS.MaxAge = Duration(-time.Second) }, "cors.max_age", "must not be negative"},

		// The rest.
		{"trusted proxy bad CIDR", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }, "trusted_proxies[1]", "is not a CIDR"},
		{"trusted proxy not an IP", func(c *Config) { c.TrustedProxies = []string{"proxy.internal"} }, "trusted_proxies[0]", "neither a CIDR"},
		{"trusted proxy with zone", func(c *Config) { c.TrustedProxies = []string{"fe80::1%eth0"} }, "trusted_proxies[0]", "neither a CIDR"},
		{"trusted proxy IPv6", func(c *Config) { c.TrustedProxies = []string{"2001:db8::/32", "::1"} }, "", ""},
		{"log_level bad", func(c *Config) { c.LogLevel = "verbose" }, "log_level", "use debug, info, warn or error"},
		{"log_level upper case", func(c *Config) { c.LogLevel = "INFO" }, "log_level", "use debug, info, warn or error"},
		{"shutdown_grace negative", func(c *Config) { c.ShutdownGrace = Duration(-time.Second) }, "shutdown_grace", "must not be negative"},

		// Cache.
		{"memory_budget too small", func(c *Config) { c.Cache.MemoryBudget = 512 * KiB }, "cache.memory_budget", "512KiB is out of range: use 1MiB to 64GiB (default 64MiB)"},
		{"memory_budget in bytes", func(c *Config) { c.Cache.MemoryBudget = 64 }, "cache.memory_budget", "64B is out of range: use 1MiB to 64GiB (default 64MiB); a plain number counts bytes"},
		{"memory_budget too large", func(c *Config) { c.Cache.MemoryBudget = 65 * GiB }, "cache.memory_budget", "65GiB is out of range"},
		{"memory_budget negative", func(c *Config) { c.Cache.MemoryBudget = -MiB }, "cache.memory_budget", "out of range"},
		{"memory_budget 1MiB", func(c *Config) { c.Cache.MemoryBudget = MiB }, "", ""},
		{"memory_budget 64GiB", func(c *Config) { c.Cache.MemoryBudget = 64 * GiB }, "", ""},
		{"verified_tokens_budget zero", func(c *Config) { c.Cache.VerifiedTokensBudget = 0 }, "cache.verified_tokens_budget", "out of range: use 1MiB to 64GiB (default 32MiB)"},
		{"verified_tokens_budget too large", func(c *Config) { c.Cache.VerifiedTokensBudget = 64*GiB + 1 }, "cache.verified_tokens_budget", "out of range"},
		{"refresh_margin too short", func(c *Config) { c.Cache.RefreshMargin = Duration(59 * time.Second) }, "cache.refresh_margin", "59s is out of range: use 1m to 30m (default 5m)"},
		{"refresh_margin too long", func(c *Config) { c.Cache.RefreshMargin = Duration(31 * time.Minute) }, "cache.refresh_margin", "out of range"},
		{"refresh_margin 1m", func(c *Config) { c.Cache.RefreshMargin = Duration(time.Minute) }, "", ""},
		{"refresh_margin 30m", func(c *Config) { c.Cache.RefreshMargin = Duration(30 * time.Minute) }, "", ""},
		{"no redis", func(c *Config) { c.Cache.Redis = nil }, "", ""},
		{"redis address empty", func(c *Config) { c.Cache.Redis.Address = "" }, "cache.redis.address", "required: set cache.redis.address or OBO_GATEWAY_CACHE_REDIS_ADDRESS to host:port"},
		{"redis address without port", func(c *Config) { c.Cache.Redis.Address = "redis.internal" }, "cache.redis.address", `"redis.internal" is not host:port`},
		{"redis address without host", func(c *Config) { c.Cache.Redis.Address = ":6379" }, "cache.redis.address", "is not host:port"},
		{"redis address port 0", func(c *Config) { c.Cache.Redis.Address = "redis:0" }, "cache.redis.address", "the port must be a number from 1 to 65535"},
		{"redis address named port", func(c *Config) { c.Cache.Redis.Address = "redis:redis" }, "cache.redis.address", "the port must be a number"},
		{"redis address URL", func(c *Config) { c.Cache.Redis.Address = "rediss://:hunter2@redis:6379/0" }, "cache.redis.address", "is a URL: write host:port only"},
		{"redis address with user", func(c *Config) { c.Cache.Redis.Address = "gw:hunter2@redis:6379" }, "cache.redis.address", "contains '@'"},
		{"redis address IPv6", func(c *Config) { c.Cache.Redis.Address = "[fd00::1]:6379" }, "", ""},
		{"redis db negative", func(c *Config) { c.Cache.Redis.DB = -1 }, "cache.redis.db", "must not be negative"},
		{"redis ca_file without tls", func(c *Config) { c.Cache.Redis.TLS, c.Cache.Redis.CAFile = false, f.ca }, "cache.redis.ca_file", "cache.redis.tls is false"},
		{"redis ca_file missing", func(c *Config) { c.Cache.Redis.CAFile = missing }, "cache.redis.ca_file", "cannot read"},
		{"redis ca_file a directory", func(c *Config) { c.Cache.Redis.CAFile = f.dir }, "cache.redis.ca_file", "is a directory"},
		{"redis ca_file with tls", func(c *Config) { c.Cache.Redis.CAFile = f.ca }, "", ""},
		{"redis without tls", func(c *Config) { c.Cache.Redis.TLS = false }, "", ""},
		{"redis timeout zero", func(c *Config) { c.Cache.Redis.Timeout = 0 }, "cache.redis.timeout", "0s is out of range: use 1ms to 5s (default 50ms)"},
		{"redis timeout too short", func(c *Config) { c.Cache.Redis.Timeout = Duration(500 * time.Microsecond) }, "cache.redis.timeout", "out of range"},
		{"redis timeout too long", func(c *Config) { c.Cache.Redis.Timeout = Duration(6 * time.Second) }, "cache.redis.timeout", "out of range"},
		{"redis timeout 1ms", func(c *Config) { c.Cache.Redis.Timeout = Duration(time.Millisecond) }, "", ""},
		{"redis timeout 5s", func(c *Config) { c.Cache.Redis.Timeout = Duration(5 * time.Second) }, "", ""},
		{"encryption_keys empty", func(c *Config) { c.Cache.Redis.EncryptionKeys = "" }, "cache.redis.encryption_keys",
			"the shared cache holds users' downstream tokens: set cache.redis.encryption_keys (OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS) to kid:base64 of 32 random bytes, e.g. `k1:$(head -c32 /dev/urandom | base64)`"},
		{"encryption_keys blank", func(c *Config) { c.Cache.Redis.EncryptionKeys = " \t" }, "cache.redis.encryption_keys", "required when cache.redis.address is set"},
		{"encryption_keys trailing comma", func(c *Config) { c.Cache.Redis.EncryptionKeys = fileKeys + ", " }, "cache.redis.encryption_keys", "entry 3 of 3 is empty: remove the extra ','"},
		{"encryption_keys only commas", func(c *Config) { c.Cache.Redis.EncryptionKeys = "," }, "cache.redis.encryption_keys", "entry 1 of 2 is empty"},
		{"encryption key without ID", func(c *Config) { c.Cache.Redis.EncryptionKeys = "k2:" + testKey(0x22) + "," + testKey(0x11) }, "cache.redis.encryption_keys", "entry 2 of 2 has no key ID"},
		{"encryption key ID and key swapped", func(c *Config) { c.Cache.Redis.EncryptionKeys = testKey(0x11) + ":k2" }, "cache.redis.encryption_keys", "entry 1 of 1: the key ID before ':' must be 1 to 32 letters"},
		{"encryption key ID with a space", func(c *Config) { c.Cache.Redis.EncryptionKeys = "k 2:" + testKey(0x22) }, "cache.redis.encryption_keys", "the key ID before ':' must be"},
		{"encryption key ID too long", func(c *Config) { c.Cache.Redis.EncryptionKeys = strings.Repeat("k", 33) + ":" + testKey(0x22) }, "cache.redis.encryption_keys", "1 to 32 letters"},
		{"encryption key ID of 32", func(c *Config) {
			c.Cache.Redis.EncryptionKeys, c.Cache.Redis.EncryptionKeyID = strings.Repeat("k", 32)+":"+testKey(0x22), strings.Repeat("k", 32)
		}, "", ""},
		{"encryption key missing", func(c *Config) { c.Cache.Redis.EncryptionKeys = "k2:" }, "cache.redis.encryption_keys", `entry 1 of 1 (key ID "k2"): no key after ':'`},
		{"encryption key not base64", func(c *Config) { c.Cache.Redis.EncryptionKeys = "k2:" + testKey(0x22)[:40] + "*==" }, "cache.redis.encryption_keys", "the key is not standard base64"},
		{"encryption key URL base64", func(c *Config) {
			c.Cache.Redis.EncryptionKeys = "k2:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
		}, "cache.redis.encryption_keys", "not standard base64"},
		{"encryption key unpadded", func(c *Config) { c.Cache.Redis.EncryptionKeys = "k2:" + strings.TrimRight(testKey(0x22), "=") }, "cache.redis.encryption_keys", "not standard base64"},
		{"encryption key of 16 bytes", func(c *Config) {
			c.Cache.Redis.EncryptionKeys = "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x22}, 16))
		}, "cache.redis.encryption_keys", `entry 1 of 1 (key ID "k2"): the key is 16 bytes, want 32 (AES-256)`},
		{"encryption key of 64 bytes", func(c *Config) {
			c.Cache.Redis.EncryptionKeys = "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x22}, 64))
		}, "cache.redis.encryption_keys", "the key is 64 bytes, want 32"},
		{"encryption key IDs not unique", func(c *Config) {
			c.Cache.Redis.EncryptionKeys = "k2:" + testKey(0x22) + ",k1:" + testKey(0x11) + ",k2:" + testKey(0x33)
		}, "cache.redis.encryption_keys", `entry 3 of 3 (key ID "k2"): the key ID is also the ID of entry 1: IDs must be unique`},
		{"encryption_key_id not a key", func(c *Config) { c.Cache.Redis.EncryptionKeyID = "k9" }, "cache.redis.encryption_key_id", `"k9" is not among the key IDs of cache.redis.encryption_keys (k1, k2)`},
		{"encryption_key_id is key material", func(c *Config) { c.Cache.Redis.EncryptionKeyID = testKey(0x22) }, "cache.redis.encryption_key_id", "is not a key ID: write one of k1, k2"},
		{"encryption_key_id empty", func(c *Config) { c.Cache.Redis.EncryptionKeyID = "" }, "cache.redis.encryption_key_id", "required: name the key new values are encrypted with, one of k1, k2"},
		{"encryption keys rotated", func(c *Config) {
			c.Cache.Redis.EncryptionKeys, c.Cache.Redis.EncryptionKeyID = "k2:"+testKey(0x22)+",k3:"+testKey(0x33), "k3"
		}, "", ""},
	}
}

func TestValidate(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	for _, tc := range validationCases(f) {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, content, nil)
			tc.mutate(c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want %s: %s", tc.field, tc.want)
			}
			var found bool
			for _, e := range unjoin(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Field == tc.field && strings.Contains(fe.Problem, tc.want) {
					found = true
					if want := "config: " + tc.field + ": "; !strings.HasPrefix(e.Error(), want) {
						t.Errorf("%q does not start with %q", e, want)
					}
				}
			}
			if !found {
				t.Errorf("Validate:\n%v\nwant a problem with %s containing %q", err, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a URL's password in %q", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := &Config{Routes: []Route{{Name: "Bad"}}, Cache: Cache{Redis: &Redis{}}}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	for _, field := range []string{"listen", "admin_listen", "entra.tenant_id", "entra.client_id", "entra.authority_host",
		"entra.certificate.path", "routes[0].name", "routes[0].path_prefix", "routes[0].upstream", "routes[0].timeout", "log_level",
		"cache.memory_budget", "cache.verified_tokens_budget", "cache.refresh_margin",
		"cache.redis.address", "cache.redis.timeout", "cache.redis.encryption_keys"} {
		if !strings.Contains(err.Error(), "config: "+field+": ") {
			t.Errorf("no problem with %s in:\n%v", field, err)
		}
	}
}

// TestPasswordNeverShown breaks every rule with the passwords and the
// encryption keys set in the file and in the environment, and looks for
// them in every message.
func TestPasswordNeverShown(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	envPassword := "env-" + password
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, p := range secrets() {
			if strings.Contains(s, p) {
				t.Errorf("%s shows the secret %q: %s", what, p, s)
			}
		}
	}
	for _, tc := range validationCases(f) {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, content, nil)
			tc.mutate(c)
			if err := c.Validate(); err != nil {
				check(t, "Validate", err.Error())
			}
			c.Entra.Certificate.Password = envPassword
			if c.Cache.Redis != nil {
				c.Cache.Redis.Password = "env-" + redisPassword
			}
			if err := c.Validate(); err != nil {
				check(t, "Validate", err.Error())
			}
		})
	}
	for _, tc := range []struct {
		name    string
		content string
		env     map[string]string
	}{
		{"env password with bad settings", content, map[string]string{
			"AZURE_CLIENT_CERTIFICATE_PASSWORD": envPassword, "AZURE_TENANT_ID": "common",
			"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "maybe", "AZURE_CLIENT_CERTIFICATE_PATH": filepath.Join(f.dir, "none"),
		}},
		{"password as a mapping", strings.Replace(content, fmt.Sprintf("password: %q", password), "password: {x: "+password+"}", 1), nil},
		{"password with unknown keys", strings.Replace(content, "    send_x5c:", "    passwrd: x\n    send_x5c:", 1), nil},
		{"env redis secrets with bad settings", content, map[string]string{
			"OBO_GATEWAY_CACHE_REDIS_PASSWORD": "env-" + redisPassword, "OBO_GATEWAY_CACHE_REDIS_ADDRESS": "redis",
			"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS": testKey(0x33) + ",k1:" + testKey(0x33)[:40], "OBO_GATEWAY_CACHE_REDIS_DB": "x",
		}},
		{"redis password as a mapping", strings.Replace(content, fmt.Sprintf("password: %q", redisPassword), "password: {x: "+redisPassword+"}", 1), nil},
		{"encryption keys as a list", strings.Replace(content, fmt.Sprintf("encryption_keys: %q", fileKeys), "encryption_keys: ["+fileKeys+"]", 1), nil},
		{"encryption keys as a mapping", strings.Replace(content, fmt.Sprintf("encryption_keys: %q", fileKeys), "encryption_keys: {k1: "+testKey(0x11)+"}", 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.content, tc.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			check(t, "Load", err.Error())
		})
	}

	t.Run("printing and logging", func(t *testing.T) {
		c := mustLoad(t, content, map[string]string{"AZURE_CLIENT_CERTIFICATE_PASSWORD": envPassword,
			"OBO_GATEWAY_CACHE_REDIS_PASSWORD": "env-" + redisPassword, "OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS": "k2:" + testKey(0x33)})
		r := c.Redacted()
		if r.Entra.Certificate.Password != "REDACTED" || r.Cache.Redis.Password != "REDACTED" || r.Cache.Redis.EncryptionKeys != "REDACTED" {
			t.Errorf("Redacted passwords and keys = %q, %q, %q", r.Entra.Certificate.Password, r.Cache.Redis.Password, r.Cache.Redis.EncryptionKeys)
		}
		if c.Entra.Certificate.Password != envPassword || c.Cache.Redis.Password != "env-"+redisPassword || c.Cache.Redis.EncryptionKeys != "k2:"+testKey(0x33) {
			t.Errorf("Redacted changed the original")
		}
		y, err := yaml.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "YAML of Redacted", string(y))
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			check(t, verb, fmt.Sprintf(verb, c))
			check(t, verb, fmt.Sprintf(verb, *c))
			check(t, verb, fmt.Sprintf(verb, c.Entra))
			check(t, verb, fmt.Sprintf(verb, c.Cache))
			check(t, verb, fmt.Sprintf(verb, c.Cache.Redis))
			check(t, verb, fmt.Sprintf(verb, *c.Cache.Redis))
		}
		if s := fmt.Sprint(c.Cache); !strings.Contains(s, "password:REDACTED") || !strings.Contains(s, "encryption_keys:REDACTED") || !strings.Contains(s, "address:redis.internal.example.com:6380") {
			t.Errorf("%%v of the cache section = %s", s)
		}
		var text, js bytes.Buffer
		args := []any{"config", c, "entra", c.Entra, "certificate", c.Entra.Certificate, "cache", c.Cache, "redis", c.Cache.Redis, "redis_value", *c.Cache.Redis}
		slog.New(slog.NewTextHandler(&text, nil)).Info("config", args...)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("config", args...)
		check(t, "slog text", text.String())
		check(t, "slog JSON", js.String())
		for _, want := range []string{"redis.password=REDACTED", "redis.encryption_keys=REDACTED", "redis.encryption_key_id=k2"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("the text log does not say %s:\n%s", want, text.String())
			}
		}
		for _, want := range []string{`"Password":"REDACTED"`, `"EncryptionKeys":"REDACTED"`, `"password":"REDACTED"`, `"encryption_keys":"REDACTED"`} {
			if !strings.Contains(js.String(), want) {
				t.Errorf("the JSON log does not say %s:\n%s", want, js.String())
			}
		}
	})
}

func TestRedacted(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, fullYAML(f), nil)
	r := c.Redacted()

	// Apart from the password, the copy is equal.
	want := wantFull(f)
	want.Entra.Certificate.Password = "REDACTED"
	want.Cache.Redis.Password = "REDACTED"
	want.Cache.Redis.EncryptionKeys = "REDACTED"
	want.Tracing.Headers = "REDACTED"
	if !r.Equal(want) {
		t.Fatalf("Redacted = %#v", r)
	}
	// It is a deep copy: changing it leaves c alone.
	r.TLS.CertFile = "x"
	*r.Entra.InstanceDiscovery = false
	r.Entra.Audiences[0] = "x"
	r.Entra.AllowedTenants[0] = "x"
	r.Routes[0].DownstreamScopes[0] = "x"
	r.Routes[0].RequiredScopes[0] = "x"
	r.Routes[2].RequiredRoles[0] = "x"
	r.Routes[1].Name = "x"
	r.CORS.AllowedOrigins[0] = "x"
	r.CORS.AllowedHeaders[0] = "x"
	r.TrustedProxies[0] = "x"
	r.Cache.Redis.Address = "x"
	if !c.Equal(wantFull(f)) {
		t.Fatalf("changing the redacted copy changed the original: %#v", c.Redacted())
	}

	t.Run("client capabilities are copied", func(t *testing.T) {
		c := &Config{Entra: Entra{ClientCapabilities: []string{"cp1"}}}
		c.Redacted().Entra.ClientCapabilities[0] = "x"
		if c.Entra.ClientCapabilities[0] != "cp1" {
			t.Errorf("changing the redacted copy changed the original: %q", c.Entra.ClientCapabilities)
		}
	})

	t.Run("no password stays empty", func(t *testing.T) {
		c := &Config{Cache: Cache{Redis: &Redis{Address: "redis:6379"}}}
		r := c.Redacted()
		if r.Entra.Certificate.Password != "" || r.Cache.Redis.Password != "" || r.Cache.Redis.EncryptionKeys != "" {
			t.Errorf("passwords and keys = %q, %q, %q, want empty", r.Entra.Certificate.Password, r.Cache.Redis.Password, r.Cache.Redis.EncryptionKeys)
		}
	})
	t.Run("no redis stays nil", func(t *testing.T) {
		if r := (&Config{}).Redacted(); r.Cache.Redis != nil {
			t.Errorf("Redis = %v, want nil", r.Cache.Redis)
		}
	})
}

func TestTrustedProxyPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []string
		want    []netip.Prefix
	}{
		{"none", nil, nil},
		{"CIDRs", []string{"10.0.0.0/8", "2001:db8::/32"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}},
		{"single IPs", []string{"192.0.2.10", "2001:db8::1"}, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::1/128")}},
		{"host bits cleared", []string{"10.1.2.3/8"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{"invalid skipped", []string{"nope", "10.0.0.0/8"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{TrustedProxies: tc.proxies}
			if got := c.TrustedProxyPrefixes(); !slices.Equal(got, tc.want) {
				t.Errorf("TrustedProxyPrefixes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRouteResource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scopes []string
		want   string
	}{
		{"no exchange", nil, ""},
		{".default", []string{"api://orders-api/.default"}, "api://orders-api"},
		{"named scopes", []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"}, "https://graph.microsoft.com"},
		{"GUID resource", []string{"00000003-0000-0000-c000-000000000000/.default"}, "00000003-0000-0000-c000-000000000000"},
		{"resource with a path", []string{"api://contoso.com/orders/.default"}, "api://contoso.com/orders"},
		{"bare scope", []string{"User.Read"}, ""},
		{"bare resource", []string{"api://orders-api"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Route{DownstreamScopes: tc.scopes}
			if got := r.Resource(); got != tc.want {
				t.Errorf("Resource = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDurationYAML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Duration
		err  string
	}{
		{"30s", Duration(30 * time.Second), ""},
		{"5m", Duration(5 * time.Minute), ""},
		{"1h30m", Duration(90 * time.Minute), ""},
		{"250ms", Duration(250 * time.Millisecond), ""},
		{`"10s"`, Duration(10 * time.Second), ""},
		{"30", 0, `line 1: "30" is not a duration: write a number with a unit, e.g. "30s", "5m" or "1h30m"`},
		{"1d", 0, `line 1: "1d" is not a duration`},
		{"{a: 1}", 0, "line 1: a duration is a single value"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tc.in), &d)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || d != tc.want {
				t.Fatalf("got %v, %v; want %v", d, err, tc.want)
			}
			out, err := yaml.Marshal(d)
			if err != nil || strings.TrimSpace(string(out)) != tc.want.String() {
				t.Errorf("Marshal = %q, %v", out, err)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		str  string // String of want
		err  string
	}{
		{"64MiB", 64 * MiB, "64MiB", ""},
		{"512KiB", 512 * KiB, "512KiB", ""},
		{"1GiB", GiB, "1GiB", ""},
		{"1536KiB", 1536 * KiB, "1536KiB", ""},
		{"2048MiB", 2 * GiB, "2GiB", ""},
		{"100B", 100, "100B", ""},
		{"67108864", 64 * MiB, "64MiB", ""},
		{"0", 0, "0B", ""},
		{"64 MiB", 64 * MiB, "64MiB", ""},
		{"64mib", 64 * MiB, "64MiB", ""},
		{`"1GIB"`, GiB, "1GiB", ""},
		{"64MB", 0, "", `"64MB" is not a size: units are binary: did you mean 64MiB? (write a whole number with a binary unit, e.g. "64MiB", "512KiB" or "1GiB"`},
		{"1gb", 0, "", "did you mean 1GiB?"},
		{"512K", 0, "", "did you mean 512KiB?"},
		{"1.5GiB", 0, "", `"1.5GiB" is not a size: write a whole number with a binary unit`},
		{"-1MiB", 0, "", "is not a size"},
		{"MiB", 0, "", "is not a size"},
		{"64TiB", 0, "", "is not a size"},
		{`""`, 0, "", "is not a size"},
		{"99999999999999GiB", 0, "", "too large"},
		{"99999999999999999999", 0, "", "too large"},
		{"[1MiB]", 0, "", "line 1: a size is a single value"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var b ByteSize
			err := yaml.Unmarshal([]byte(tc.in), &b)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				if !strings.HasPrefix(tc.in, "[") {
					if _, err := parseByteSize(strings.Trim(tc.in, `"`)); err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Errorf("as a variable: error = %v, want %q", err, tc.err)
					}
				}
				return
			}
			if err != nil || b != tc.want {
				t.Fatalf("got %v, %v; want %v", b, err, tc.want)
			}
			if got := b.String(); got != tc.str {
				t.Errorf("String = %q, want %q", got, tc.str)
			}
			out, err := yaml.Marshal(b)
			if err != nil || strings.TrimSpace(string(out)) != tc.str {
				t.Errorf("Marshal = %q, %v", out, err)
			}
			if v, err := parseByteSize(tc.str); err != nil || v != tc.want {
				t.Errorf("String does not read back: %v, %v", v, err)
			}
		})
	}
}

func TestRedisKeys(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, fullYAML(f), nil)
	keys, err := c.Cache.Redis.Keys()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"k1": bytes.Repeat([]byte{0x11}, 32), "k2": bytes.Repeat([]byte{0x22}, 32)}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("Keys = %v, want %v", keys, want)
	}
	if _, ok := keys[c.Cache.Redis.EncryptionKeyID]; !ok {
		t.Errorf("encryption_key_id %q names no key", c.Cache.Redis.EncryptionKeyID)
	}

	// Every bad entry is reported by Keys as by Validate, without a key.
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	bad := "k1:" + testKey(0x11) + "," + testKey(0x22) + ",k2:" + short + ",k3:" + testKey(0x33)[:43] + "!,k1:" + testKey(0x11) + "," + testKey(0x33) + ":k4"
	_, err = (&Redis{EncryptionKeys: bad}).Keys()
	if err == nil {
		t.Fatal("Keys succeeded")
	}
	errs := unjoin(err)
	if len(errs) != 5 {
		t.Errorf("%d errors, want 5:\n%v", len(errs), err)
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) || fe.Field != "cache.redis.encryption_keys" {
			t.Errorf("%v is not a *FieldError of cache.redis.encryption_keys", e)
		}
	}
	for _, secret := range []string{testKey(0x11), testKey(0x22), testKey(0x33)[:43], short, testKey(0x33)} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows key material %q: %v", secret, err)
		}
	}
	c.Cache.Redis.EncryptionKeys = bad
	if verr := c.Validate(); verr == nil || !strings.Contains(verr.Error(), err.Error()) {
		t.Errorf("Validate:\n%v\ndoes not report what Keys does:\n%v", verr, err)
	}

	t.Run("no shared cache", func(t *testing.T) {
		var r *Redis
		if keys, err := r.Keys(); err == nil || keys != nil {
			t.Errorf("Keys of nil = %v, %v, want an error", keys, err)
		}
	})
}

// The tracing settings are checked with the tracing package's rules; each
// problem names its setting and the OTEL_* variable that set it, and never
// quotes the headers (they may hold a collector's API key).
func TestTracingProblems(t *testing.T) {
	f := newFiles(t)
	content := fullYAML(f)
	for _, tc := range []struct {
		name, field, envVar string
		env                 map[string]string
	}{
		{"sampler", "tracing.sampler", "OTEL_TRACES_SAMPLER", map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}},
		{"ratio", "tracing.sampler_arg", "OTEL_TRACES_SAMPLER_ARG", map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1.5"}},
		{"protocol", "tracing.protocol", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}},
		{"headers", "tracing.headers", "OTEL_EXPORTER_OTLP_HEADERS", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=hunter2%zz"}},
		{"exporter", "tracing.exporter", "OTEL_TRACES_EXPORTER", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}},
		{"endpoint when on", "tracing.traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
			map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://user:hunter2@collector/v1/traces"}},
		{"timeout", "tracing.timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}},
		{"timeout not in milliseconds", "tracing.timeout", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "10s"}},
		{"endpoint query", "tracing.traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
			map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces?api-key=hunter2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, content, tc.env)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			p := findProblem(t, err, tc.field)
			if !p.FromEnv || p.EnvVar != tc.envVar {
				t.Errorf("problem %+v, want it from %s", p, tc.envVar)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the problem quotes a secret: %v", err)
			}
		})
	}
	// A query (a key) in an endpoint is not shown, on or off.
	off := mustLoad(t, content, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/?api-key=hunter2#x"})
	if shown := fmt.Sprint(off.Redacted(), off.Tracing, off.Tracing.LogValue()); strings.Contains(shown, "hunter2") {
		t.Errorf("the endpoint's query is shown: %s", shown)
	}
	// Off (disabled), the endpoint is not checked; on, it is.
	if _, err := load(t, content, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}); err != nil {
		t.Errorf("a disabled exporter's endpoint was checked: %v", err)
	}
	c := mustLoad(t, content, map[string]string{"OTEL_SDK_DISABLED": "false"})
	if tc := c.Tracing.Tracer("v1"); !tc.Enabled() || tc.ServiceVersion != "v1" || tc.Sampler != "parentbased_traceidratio" {
		t.Errorf("Tracer = %+v", tc)
	}
	if tc := mustLoad(t, content, map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "none"}).Tracing.Tracer(""); tc.Enabled() {
		t.Error("exporter none left tracing on")
	}
}
