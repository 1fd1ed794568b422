package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2/redistest"
)

func TestAnalyzeScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes    []string
		resource  string // when no problem
		isDefault bool
		problem   []string // all in the first problem's detail and fix
	}{
		{scopes: []string{"api://orders-api/.default"}, resource: "api://orders-api", isDefault: true},
		{scopes: []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"}, resource: "https://graph.microsoft.com"},
		{scopes: []string{"a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a01/.default"}, resource: "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a01", isDefault: true},
		{scopes: []string{"api://x/default"}, problem: []string{"did you mean api://x/.default?", "Entra answers AADSTS70011"}},
		{scopes: []string{"api://x/Default"}, problem: []string{"did you mean api://x/.default?"}},
		{scopes: []string{"api://x/..default"}, problem: []string{"did you mean api://x/.default?"}},
		{scopes: []string{"api://orders-api"}, problem: []string{"names a resource but no scope", "did you mean api://orders-api/.default?"}},
		{scopes: []string{"User.Read"}, problem: []string{"bare scope", "https://graph.microsoft.com/User.Read"}},
		{scopes: []string{".default"}, problem: []string{"has no resource", "App ID URI"}},
		{scopes: []string{"api://a/.default", "api://b/.default"}, problem: []string{"2 resources", "AADSTS28000"}},
		{scopes: []string{"api://a/.default", "api://a/Read"}, problem: []string{"mixes", "AADSTS70011"}},
		{scopes: []string{"openid"}, problem: []string{"OpenID Connect", "MSAL adds"}},
		{scopes: []string{"offline_access"}, problem: []string{"OpenID Connect"}},
		{scopes: []string{"api://a/Read api://a/Write"}, problem: []string{"several scopes", "one scope per list item"}},
		{scopes: []string{"api://a/"}, problem: []string{"ends with '/'", "api://a/.default"}},
		{scopes: []string{"notauri/.default"}, problem: []string{"neither an App ID URI", "application ID"}},
		{scopes: []string{""}, problem: []string{"empty"}},
	}
	for _, tc := range tests {
		a := config.AnalyzeScopes(tc.scopes)
		if len(tc.problem) == 0 {
			if len(a.Problems) > 0 {
				t.Errorf("%q: unexpected problem %+v", tc.scopes, a.Problems)
				continue
			}
			if len(a.Resources) != 1 || a.Resources[0] != tc.resource || a.IsDefault != tc.isDefault {
				t.Errorf("%q: resources %q default %v, want %q %v", tc.scopes, a.Resources, a.IsDefault, tc.resource, tc.isDefault)
			}
			continue
		}
		if len(a.Problems) == 0 {
			t.Errorf("%q: no problem found", tc.scopes)
			continue
		}
		p := a.Problems[0]
		for _, s := range tc.problem {
			if !strings.Contains(p.Detail+" | "+p.Fix, s) {
				t.Errorf("%q: %q | %q lacks %q", tc.scopes, p.Detail, p.Fix, s)
			}
		}
	}
}

func TestThumbprintsOf(t *testing.T) {
	t.Parallel()
	cert, _, err := pki.SelfSigned("thumbs", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw) //nolint:gosec
	got := ThumbprintsOf(cert)
	want := Thumbprints{
		SHA1Hex:    strings.ToUpper(hex.EncodeToString(s1[:])),
		SHA1Base64: base64.StdEncoding.EncodeToString(s1[:]),
		X5T:        base64.RawURLEncoding.EncodeToString(s1[:]),
		X5TS256:    base64.StdEncoding.EncodeToString(s256[:]),
		SHA256Hex:  hex.EncodeToString(s256[:]),
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if len(got.SHA1Hex) != 40 || !strings.HasSuffix(got.X5TS256, "=") || strings.ContainsAny(got.X5T, "+/=") {
		t.Errorf("forms look wrong: %+v", got)
	}
}

// offlineConfig writes a configuration for offline checks, changed by
// edits in order (nil ones skipped): no network is needed, and the
// credential is a new self-signed one unless an edit sets the certificate.
func offlineConfig(t *testing.T, edits ...func(*config.Config)) string {
	t.Helper()
	c := edited(&config.Config{
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		Entra: config.Entra{
			TenantID:      "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34",
			ClientID:      "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
			AuthorityHost: "https://login.microsoftonline.com",
			Audiences:     []string{"api://obo-gateway"},
		},
		Routes: []config.Route{route("orders", "https://orders.invalid", "api://orders-api/.default")},
	}, edits)
	if cert := &c.Entra.Certificate; cert.Path == "" {
		cert.Path, cert.KeyPath, _, _ = credential(t, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	}
	return configtest.Write(t, c)
}

func runOffline(t *testing.T, path string, environ []string) *Report {
	t.Helper()
	d := &countingDialer{}
	rep := Run(context.Background(), Options{ConfigPath: path, Offline: true, Environ: environ, dial: d.dial})
	if d.n.Load() != 0 {
		t.Errorf("offline run dialled %d times", d.n.Load())
	}
	checkSummary(t, rep)
	return rep
}

func TestConfigProblemsAreReportedOneByOne(t *testing.T) {
	t.Parallel()
	bad := offlineConfig(t, func(c *config.Config) {
		c.Entra.TenantID = "contoso.onmicrosoft.com"
		c.Routes = []config.Route{route("orders", "ftp://orders", "User.Read")}
	})
	dir := t.TempDir()
	// A misspelt key and a value of the wrong type, which no Config can
	// hold: a Config's text, edited.
	unknownKeyYAML := strings.Replace(configtest.YAML(t, &config.Config{Entra: config.Entra{TenantID: "x"}}), "tenant_id:", "tenantid:", 1)
	unknownKey := configtest.WriteYAML(t, unknownKeyYAML)
	wrongTypeYAML := configtest.YAML(t, &config.Config{Entra: config.Entra{TenantID: "x"}}) + "shutdown_grace: 30\n"
	wrongType := configtest.WriteYAML(t, wrongTypeYAML)
	placedYAML := configtest.YAML(t, &config.Config{Entra: config.Entra{TenantID: "contoso.onmicrosoft.com"}})
	placed := configtest.WriteYAML(t, placedYAML)
	good := offlineConfig(t)
	tests := []struct {
		name    string
		path    string
		environ []string
		want    map[string][]string // ID → strings in detail and fix
	}{
		{"validation problems", bad, nil, map[string][]string{
			"config/entra.tenant_id":                {"not a GUID", "AZURE_TENANT_ID"},
			"config/routes[0].upstream":             {"http or https"},
			"config/routes[0].downstream_scopes[0]": {"User.Read", "https://graph.microsoft.com/User.Read"},
		}},
		{"problems placed at their line or variable", placed, []string{"AZURE_CLIENT_ID=api://obo-gateway"}, map[string][]string{
			"config/entra.tenant_id": {"not a GUID", fmt.Sprintf("entra.tenant_id at line %d of %s", configtest.Line(t, placedYAML, "tenant_id:"), placed),
				"or the variable AZURE_TENANT_ID"},
			"config/entra.client_id":        {"belongs in entra.audiences", "the variable AZURE_CLIENT_ID, which sets entra.client_id over " + placed},
			"config/entra.certificate.path": {"required", "entra.certificate.path in " + placed + " (or the variable AZURE_CLIENT_CERTIFICATE_PATH"},
			"config/routes":                 {"at least one route", "routes are defined in the file"},
		}},
		{"routes from variables only", placed, []string{"AZURE_TENANT_ID=6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34", "AZURE_CLIENT_ID=0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
			"AZURE_CLIENT_CERTIFICATE_PATH=" + placed, "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=https://orders.invalid", "OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX=/orders"}, map[string][]string{
			"config/routes": {"routes are defined in the file", "the variables set (OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM, OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX)", "add the route orders to the file"},
		}},
		{"a route variable naming no route", good, []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing.invalid", "OBO_GATEWAY_ROUTE_ORDERS_UPSTRAEM="}, map[string][]string{
			"config/env/OBO_GATEWAY_ROUTE_BILLING_UPSTREAM": {"names no route field", "orders", "correct or unset OBO_GATEWAY_ROUTE_BILLING_UPSTREAM"},
			"config/env/OBO_GATEWAY_ROUTE_ORDERS_UPSTRAEM":  {"names no route field", "UPSTREAM"},
		}},
		{"instance discovery on for a host Entra does not know", offlineConfig(t, func(c *config.Config) {
			c.Entra.AuthorityHost, c.Entra.InstanceDiscovery = "https://127.0.0.1:1", new(true)
		}), nil, map[string][]string{
			"config/entra.instance_discovery": {"on for 127.0.0.1, a host Entra does not know", "every exchange would fail", "set it to false", "entra.instance_discovery at line"},
		}},
		{"wrong type in the file", wrongType, nil, map[string][]string{
			"config/file": {fmt.Sprintf("%s: line %d: shutdown_grace: \"30\" is not a duration", wrongType, configtest.Line(t, wrongTypeYAML, "shutdown_grace:")),
				"at that line"},
		}},
		{"unknown key", unknownKey, nil, map[string][]string{
			"config/file": {fmt.Sprintf("line %d", configtest.Line(t, unknownKeyYAML, "tenantid:")), "unknown key \"tenantid\""},
		}},
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, map[string][]string{
			"config/file": {"cannot read", "-config"},
		}},
		{"bad environment variable", good, []string{"OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY=maybe"}, map[string][]string{
			"config/env/OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY": {"maybe", "unset"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := runOffline(t, tc.path, tc.environ)
			if rep.Summary.Fail != len(tc.want) || rep.Summary.Pass != 0 || len(rep.Checks) != len(tc.want) {
				t.Errorf("want exactly %d FAILs and nothing else:\n%s", len(tc.want), text(rep))
			}
			for id, subs := range tc.want {
				got := byID(rep, id)
				if len(got) != 1 {
					t.Errorf("no single check %s:\n%s", id, text(rep))
					continue
				}
				for _, s := range subs {
					if !strings.Contains(got[0].Detail+" | "+got[0].Fix, s) {
						t.Errorf("%s lacks %q: %s | %s", id, s, got[0].Detail, got[0].Fix)
					}
				}
			}
		})
	}
}

func TestCertificateChecks(t *testing.T) {
	t.Parallel()
	now := time.Now()
	goodCert, goodKey, _, _ := credential(t, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	_, otherKey, _, _ := credential(t, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	futureCert, futureKey, _, _ := credential(t, now.Add(48*time.Hour), now.AddDate(1, 0, 0))
	dir := t.TempDir()

	// An encrypted PKCS#8 key.
	keyPEM, err := os.ReadFile(goodKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pkcs8.MarshalPrivateKey(k, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	encKey := write(t, dir, "enc.key.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}))

	// An ECDSA credential.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ek.PublicKey, ek)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ek)
	ecFile := write(t, dir, "ec.pem", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})...))

	// A 1024-bit RSA credential.
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallCert, err := pki.SelfSignedWithKey("small", small, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	smallFile := write(t, dir, "small.pem", append(pki.CertPEM(smallCert), pki.KeyPEM(small)...))

	// A PEM holding certificate and key, for the upload hint.
	combined := write(t, dir, "combined.pem", append(testkit.ReadFile(t, goodCert), testkit.ReadFile(t, goodKey)...))

	tests := []struct {
		name           string
		cert, key, pwd string
		id             string
		status         Status
		want           []string
	}{
		{"good", goodCert, goodKey, "", "certificate/load", Pass, []string{"RSA 2048-bit", "self-signed", "send_x5c off"}},
		{"combined PEM", combined, "", "", "certificate/load", Pass, []string{"RSA 2048-bit"}},
		{"the key in both files", combined, goodKey, "", "certificate/load", Fail, []string{"more than one private key",
			fmt.Sprintf("loaded from entra.certificate.path %q (", combined), fmt.Sprintf("with entra.certificate.key_path %q (", goodKey),
			"remove key_path, or clear it with OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH="}},
		{"key of another certificate", goodCert, otherKey, "", "certificate/load", Fail, []string{"does not match", "belongs to another certificate"}},
		{"no key", goodCert, "", "", "certificate/load", Fail, []string{"no private key", "key_path"}},
		{"encrypted key, no password", goodCert, encKey, "", "certificate/load", Fail, []string{"encrypted", "AZURE_CLIENT_CERTIFICATE_PASSWORD"}},
		{"encrypted key, wrong password", goodCert, encKey, "nope", "certificate/load", Fail, []string{"wrong password", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "and entra.certificate.password (set, "}},
		{"encrypted key, right password", goodCert, encKey, "s3cret", "certificate/load", Pass, nil},
		{"ECDSA", ecFile, "", "", "certificate/load", Fail, []string{"RSA key"}},
		{"1024-bit", smallFile, "", "", "certificate/load", Warn, []string{"1024-bit", "at least 2048"}},
		{"not yet valid", futureCert, futureKey, "", "certificate/validity", Fail, []string{"not yet valid", "clock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := offlineConfig(t, func(c *config.Config) {
				c.Entra.Certificate = config.Certificate{Path: tc.cert, KeyPath: tc.key, Password: tc.pwd}
			})
			rep := runOffline(t, path, nil)
			got := byID(rep, tc.id)
			if len(got) != 1 {
				t.Fatalf("no check %s:\n%s", tc.id, text(rep))
			}
			c := got[0]
			if c.Status != tc.status {
				t.Errorf("status %s, want %s: %s | %s", c.Status, tc.status, c.Detail, c.Fix)
			}
			for _, s := range tc.want {
				if !strings.Contains(c.Detail+" | "+c.Fix, s) {
					t.Errorf("lacks %q: %s | %s", s, c.Detail, c.Fix)
				}
			}
			if tc.pwd != "" && strings.Contains(text(rep), tc.pwd) {
				t.Errorf("the report shows the password")
			}
		})
	}

	if h := uploadHint(combined); !strings.Contains(h, "openssl x509 -in "+combined) {
		t.Errorf("upload hint for a PEM with its key: %q", h)
	}
	if h := uploadHint(goodCert); h != "" {
		t.Errorf("upload hint for a certificate alone: %q", h)
	}
	if h := uploadHint("gw.pfx"); !strings.Contains(h, "-nokeys") {
		t.Errorf("upload hint for a PFX: %q", h)
	}
}

func TestSettingsChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*config.Config) // of offlineConfig's configuration
		id   string
		want Status
		sub  string
	}{
		{"instance discovery off for Microsoft", func(c *config.Config) { c.Entra.InstanceDiscovery = new(false) },
			"settings/instance_discovery", Warn, "remove entra.instance_discovery"},
		{"instance discovery off for another host", func(c *config.Config) {
			c.Entra.AuthorityHost = "https://127.0.0.1:1"
		}, "settings/instance_discovery", Pass, "off for 127.0.0.1, a host Entra does not know"},
		{"instance discovery default", nil, "settings/instance_discovery", Pass, "on for login.microsoftonline.com"},
		{"clock skew 3m", func(c *config.Config) { c.Entra.ClockSkew = config.Duration(3 * time.Minute) }, "settings/clock_skew", Warn, "NTP"},
		{"clock skew 2m", func(c *config.Config) { c.Entra.ClockSkew = config.Duration(2 * time.Minute) }, "settings/clock_skew", Pass, "2m0s"},
		{"allowed tenants", func(c *config.Config) { c.Entra.AllowedTenants = []string{"11111111-2222-4333-8444-555555555555"} },
			"settings/allowed_tenants", Warn, "token's own tenant"},
		{"no audiences", func(c *config.Config) { c.Entra.Audiences = nil }, "settings/audiences", Warn, "accessTokenAcceptedVersion"},
		{"redis offline", func(c *config.Config) {
			c.Cache.Redis = &config.Redis{Address: "127.0.0.1:1", EncryptionKeys: "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))}
		}, "cache/redis", Pass, "not contacted: -offline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := runOffline(t, offlineConfig(t, tc.edit), nil)
			got := byID(rep, tc.id)
			if len(got) != 1 {
				t.Fatalf("no check %s:\n%s", tc.id, text(rep))
			}
			if got[0].Status != tc.want || !strings.Contains(got[0].Detail+" | "+got[0].Fix, tc.sub) {
				t.Errorf("%s %s, want %s with %q: %s | %s", tc.id, got[0].Status, tc.want, tc.sub, got[0].Detail, got[0].Fix)
			}
			if tc.want == Pass && rep.Summary.Warn+rep.Summary.Fail != 0 {
				t.Errorf("want no WARN or FAIL:\n%s", text(rep))
			}
		})
	}
}

// bareRunner is a runner for one check, with cfg.
func bareRunner(cfg *config.Config) *runner {
	r := newRunner(Options{RedisTimeout: 2 * time.Second, UpstreamTimeout: 2 * time.Second})
	if cfg.Entra.TokenTimeout == 0 {
		cfg.Entra.TokenTimeout = config.Duration(5 * time.Second)
	}
	r.cfg = cfg
	r.online = r.newOnline()
	return r
}

func TestRedisCheck(t *testing.T) {
	t.Parallel()
	keys := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	open := redistest.StartServer(t)
	locked := redistest.StartServerWith(t, redistest.Options{Password: "letmein"})
	tests := []struct {
		name   string
		redis  config.Redis
		status Status
		want   []string
	}{
		{"answers", config.Redis{Address: open.Addr}, Pass, []string{"PONG", "k1"}},
		{"closed port", config.Redis{Address: testkit.ClosedAddr(t)}, Fail, []string{"connection refused", "requests still work without it"}},
		{"wrong password", config.Redis{Address: locked.Addr, Password: "wrong"}, Fail, []string{"PING failed", "credentials"}},
		{"no password", config.Redis{Address: locked.Addr}, Fail, []string{"NOAUTH", "credentials"}},
		{"right password", config.Redis{Address: locked.Addr, Password: "letmein"}, Pass, []string{"PONG"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd := tc.redis
			rd.EncryptionKeys, rd.EncryptionKeyID, rd.Timeout = keys, "k1", config.Duration(time.Second)
			r := bareRunner(&config.Config{Cache: config.Cache{Redis: &rd}})
			r.checkRedis(context.Background())
			got := byID(r.rep, "cache/redis")
			if len(got) != 1 {
				t.Fatalf("no check cache/redis: %+v", r.rep.Checks)
			}
			c := got[0]
			if c.Status != tc.status {
				t.Errorf("status %s, want %s: %s | %s", c.Status, tc.status, c.Detail, c.Fix)
			}
			for _, s := range tc.want {
				if !strings.Contains(c.Detail+" | "+c.Fix, s) {
					t.Errorf("lacks %q: %s | %s", s, c.Detail, c.Fix)
				}
			}
			for _, secret := range []string{"letmein", "wrong", keys[3:]} {
				if strings.Contains(c.Detail+c.Fix, secret) {
					t.Errorf("shows a secret: %s | %s", c.Detail, c.Fix)
				}
			}
		})
	}
}

func TestUpstreamCheck(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the probe sent credentials")
		}
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	t.Cleanup(plain.Close)
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(untrusted.Close)
	redirect := httptest.NewServer(http.RedirectHandler("http://"+testkit.ClosedAddr(t)+"/", http.StatusFound))
	t.Cleanup(redirect.Close)
	tests := []struct {
		name, upstream string
		status         Status
		want           []string
	}{
		{"any status is reachable", plain.URL + "/base", Pass, []string{"405"}},
		{"redirects are not followed", redirect.URL, Pass, []string{"302"}},
		{"closed port", "http://" + testkit.ClosedAddr(t), Fail, []string{"connection refused", "OBO_GATEWAY_ROUTE_ORDERS_API_UPSTREAM"}},
		{"certificate of an unknown CA", untrusted.URL, Fail, []string{"unknown authority", "trust store"}},
		{"https to a plain HTTP port", strings.Replace(plain.URL, "http://", "https://", 1), Fail, []string{"TLS", "http://"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := config.Route{Name: "orders-api", Upstream: tc.upstream, Timeout: config.Duration(30 * time.Second)}
			r := bareRunner(&config.Config{Routes: []config.Route{rt}})
			r.checkUpstream(context.Background(), &rt)
			c := r.rep.Checks[0]
			if c.Status != tc.status {
				t.Errorf("status %s, want %s: %s | %s", c.Status, tc.status, c.Detail, c.Fix)
			}
			for _, s := range tc.want {
				if !strings.Contains(c.Detail+" | "+c.Fix, s) {
					t.Errorf("lacks %q: %s | %s", s, c.Detail, c.Fix)
				}
			}
		})
	}
}

func TestWriteCheck(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	WriteCheck(&b, Check{ID: "x", Name: "thing", Status: Warn, Detail: "first\nsecond", Fix: "do this\nthen that"})
	want := "WARN  thing: first\n      second\n      fix: do this\n           then that\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	WriteSummary(&b, Summary{Pass: 3, Warn: 1, Fail: 2})
	if !strings.Contains(b.String(), "6 checks: 3 passed, 1 warning, 2 failed") {
		t.Errorf("summary %q", b.String())
	}
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
