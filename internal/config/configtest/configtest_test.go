package configtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// files are readable files for the settings that name one; Load checks
// only that it can read them.
type files struct{ cert, key, ca, tlsCert, tlsKey string }

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return files{
		cert:    write("gateway.pem", "-----BEGIN CERTIFICATE-----\n"),
		key:     write("gateway.key", "-----BEGIN PRIVATE KEY-----\n"),
		ca:      write("ca.pem", "-----BEGIN CERTIFICATE-----\n"),
		tlsCert: write("tls.crt", "-----BEGIN CERTIFICATE-----\n"),
		tlsKey:  write("tls.key", "-----BEGIN PRIVATE KEY-----\n"),
	}
}

// testKeys are two shared-cache keys (std base64 of 32 bytes each).
const testKeys = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,k2:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

// full sets every setting, none to its default, so that what Load returns
// must equal it exactly: a setting lost or changed on the way shows.
func full(f files) *config.Config {
	d := func(v time.Duration) config.Duration { return config.Duration(v) }
	return &config.Config{
		Listen:      "127.0.0.1:8443",
		AdminListen: "127.0.0.1:9443",
		AdminPprof:  true,
		TLS:         &config.ServerTLS{CertFile: f.tlsCert, KeyFile: f.tlsKey},
		Entra: config.Entra{
			TenantID:               "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34",
			ClientID:               "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
			AuthorityHost:          "https://login.microsoftonline.us",
			InstanceDiscovery:      new(true),
			Audiences:              []string{"api://obo-gateway", "api://obo-gateway-2"},
			AllowedTenants:         []string{"f0f0f0f0-1111-4222-8333-444444444444"},
			ClientCapabilities:     []string{"cp1"},
			ClockSkew:              d(2 * time.Minute),
			Credential:             config.CredentialCertificate,
			Certificate:            config.Certificate{Path: f.cert, KeyPath: f.key, Password: "cert-password", SendX5C: true},
			CAFile:                 f.ca,
			TokenTimeout:           d(300 * time.Millisecond),
			KeysRefreshInterval:    d(90 * time.Minute),
			KeysMinRefreshInterval: d(time.Second),
		},
		Routes: []config.Route{
			{
				Name: "orders", PathPrefix: "/orders", Upstream: "https://orders.internal.example.com/api", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/Orders.Read", "api://orders-api/Orders.Write"},
				RequiredScopes:   []string{"access_as_user"}, RequiredRoles: []string{"Orders.Reader"},
				Timeout: d(200 * time.Millisecond), MaxBodyBytes: 1536 * config.KiB, BodyTimeout: d(time.Minute),
				MaxInFlight: 3, WebSocket: true, Cookies: true,
			},
			{
				Name: "reports", PathPrefix: "/reports", Upstream: "http://127.0.0.1:8081",
				DownstreamScopes: []string{"api://reports-api/.default"},
				Timeout:          d(45 * time.Second), MaxBodyBytes: 100, BodyTimeout: d(90 * time.Second),
			},
		},
		CORS: config.CORS{
			AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000"},
			AllowedHeaders: []string{"X-Request-Id"},
			MaxAge:         d(5 * time.Minute),
		},
		Cache: config.Cache{
			MemoryBudget:         config.GiB,
			VerifiedTokensBudget: 16 * config.MiB,
			RefreshMargin:        d(10 * time.Minute),
			Redis: &config.Redis{
				Address: "redis.internal.example.com:6380", Username: "gateway", Password: "redis-password",
				DB: 2, TLS: true, CAFile: f.ca, Timeout: d(250 * time.Millisecond),
				EncryptionKeys: testKeys, EncryptionKeyID: "k2",
			},
		},
		Limits: config.Limits{
			MaxConnections:         100,
			MaxInFlight:            50,
			MaxConcurrentExchanges: 4,
			MaxQueuedExchanges:     8,
			ExchangeQueueTimeout:   d(300 * time.Millisecond),
			ReadHeaderTimeout:      d(5 * time.Second),
			BodyTimeout:            d(time.Second),
			IdleTimeout:            d(time.Minute),
			MaxHeaderBytes:         32 * config.KiB,
			MaxBodyBytes:           config.KiB,
		},
		TrustedProxies: []string{"10.0.0.0/8", "192.0.2.10"},
		ShutdownGrace:  d(90 * time.Second),
		LogLevel:       "warn",
	}
}

// The round trip: a Config written by Write and read by config.Load is the
// same Config.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	tests := []struct {
		name string
		edit func(c *config.Config)
	}{
		{"every setting, none at its default", func(*config.Config) {}},
		{"instance discovery off where it defaults to on", func(c *config.Config) {
			c.Entra.InstanceDiscovery = new(false)
		}},
		// On where it defaults to off is refused (a host Entra does not
		// know): off is written there too.
		{"instance discovery off where it defaults to off", func(c *config.Config) {
			c.Entra.AuthorityHost = "https://127.0.0.1:8443"
			c.Entra.InstanceDiscovery = new(false)
		}},
		{"durations of every unit", func(c *config.Config) {
			c.ShutdownGrace = config.Duration(90 * time.Second)
			c.Entra.KeysRefreshInterval = config.Duration(2*time.Hour + 30*time.Minute + 15*time.Second)
			c.Entra.TokenTimeout = config.Duration(1500 * time.Millisecond)
			c.Cache.Redis.Timeout = config.Duration(time.Millisecond)
		}},
		{"sizes of every unit", func(c *config.Config) {
			c.Cache.MemoryBudget = 2 * config.GiB
			c.Cache.VerifiedTokensBudget = 1536 * config.KiB
			c.Limits.MaxHeaderBytes = 4097
			c.Routes[0].MaxBodyBytes = 3 * config.MiB
		}},
		{"strings YAML reads as something else unquoted", func(c *config.Config) {
			c.Entra.Certificate.Password = "yes"
			c.Cache.Redis.Username = "null"
			c.Cache.Redis.Password = `#1: 'it's "quoted"' & *not an alias, ~ - [x] {y}` + "\n second line "
		}},
		{"false, zero and nothing set", func(c *config.Config) {
			c.AdminPprof = false
			c.TLS = nil
			c.Entra.Certificate.SendX5C = false
			c.Entra.Certificate.Password = ""
			c.Entra.Audiences, c.Entra.AllowedTenants, c.Entra.ClientCapabilities = nil, nil, nil
			c.Routes[0].StripPrefix, c.Routes[0].WebSocket, c.Routes[0].Cookies = false, false, false
			c.Routes[0].MaxInFlight = 0
			c.Routes[0].RequiredScopes, c.Routes[0].RequiredRoles = nil, nil
			c.CORS.AllowedOrigins, c.CORS.AllowedHeaders = nil, nil
			c.Cache.Redis.TLS, c.Cache.Redis.CAFile, c.Cache.Redis.DB = false, "", 0
			c.Cache.Redis.Username, c.Cache.Redis.Password = "", ""
			c.TrustedProxies = nil
		}},
		{"no shared cache", func(c *config.Config) {
			c.Cache.Redis = nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := full(f)
			tc.edit(want)
			got, err := config.Load(Write(t, want), []string(nil))
			if err != nil {
				t.Fatalf("Load: %v\n%s", err, YAML(t, want))
			}
			if !got.Equal(want) {
				t.Errorf("Load changed the configuration:\n%s\nbecame\n%s", YAML(t, want), YAML(t, got))
			}
		})
	}
}

// YAML writes exactly the settings a Config sets, and the false of
// InstanceDiscovery.
func TestYAMLWritesOnlyWhatIsSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    *config.Config
		want string
	}{
		{"nothing", &config.Config{}, "{}\n"},
		{"one setting", &config.Config{Entra: config.Entra{TenantID: "common"}}, "entra:\n  tenant_id: common\n"},
		{"instance discovery off", &config.Config{Entra: config.Entra{InstanceDiscovery: new(false)}}, "entra:\n  instance_discovery: false\n"},
		{"a route", &config.Config{Routes: []config.Route{{Name: "orders", DownstreamScopes: []string{"api://orders-api/.default"}, Timeout: config.Duration(time.Second)}}},
			"routes:\n  - name: orders\n    downstream_scopes:\n      - api://orders-api/.default\n    timeout: 1s\n"},
		{"an empty shared cache", &config.Config{Cache: config.Cache{Redis: &config.Redis{}}}, "cache:\n  redis: {}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := YAML(t, tc.c); got != tc.want {
				t.Errorf("YAML:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	c := &config.Config{Entra: config.Entra{TenantID: "common"}}
	path := Write(t, c)
	if filepath.Base(path) != FileName {
		t.Errorf("Write wrote %s, want a file named %s", path, FileName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != YAML(t, c) {
		t.Errorf("the file holds %q, want YAML's %q", b, YAML(t, c))
	}
	if other := Write(t, c); other == path {
		t.Errorf("two Writes wrote the same file %s", path)
	}
}

// fatal is a testing.TB whose Fatalf records the message and stops the
// function under test.
type fatal struct {
	testing.TB
	msg string
}

func (f *fatal) Helper() {}

func (f *fatal) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// failure runs fn with a fatal and returns what it failed with, or "".
func failure(fn func(tb testing.TB)) (msg string) {
	f := &fatal{}
	defer func() {
		if r := recover(); r != nil {
			if r != f {
				panic(r)
			}
			msg = f.msg
		}
	}()
	fn(f)
	return ""
}

func TestLine(t *testing.T) {
	t.Parallel()
	y := YAML(t, &config.Config{
		Listen: "127.0.0.1:0",
		Entra:  config.Entra{TenantID: "common", ClientID: "c"},
		Routes: []config.Route{{Name: "orders", DownstreamScopes: []string{"api://orders-api/default"}}},
	})
	// listen, entra, tenant_id, client_id, routes, - name, downstream_scopes, - the scope
	for prefix, want := range map[string]int{"listen:": 1, "tenant_id:": 3, "client_id: c": 4, "- name: orders": 6, "- api://orders-api/default": 8} {
		if got := Line(t, y, prefix); got != want {
			t.Errorf("Line(%q) = %d, want %d in\n%s", prefix, got, want, y)
		}
	}
	for prefix, want := range map[string]string{"tenantid:": "no line starts with", "- ": "lines 6 and 8 start with"} {
		if msg := failure(func(tb testing.TB) { Line(tb, y, prefix) }); !strings.Contains(msg, want) {
			t.Errorf("Line(%q) failed with %q, want %q", prefix, msg, want)
		}
	}
}
