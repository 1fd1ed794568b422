package doctor

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// testEnv is a local tenant and an upstream.
type testEnv struct {
	srv      *fakeentra.Server
	dir      string
	certFile string
	keyFile  string
	upstream string
}

// startEnv starts the local tenant (the demo tenant when tenant is nil)
// and an upstream answering 404 to everything.
func startEnv(t *testing.T, tenant *fakeentra.Tenant) *testEnv {
	t.Helper()
	dir := t.TempDir()
	srv := fakeentratest.Start(t, fakeentra.Config{Dir: dir, Tenant: tenant})
	up := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(up.Close)
	gw := srv.Info().Apps["gateway"]
	return &testEnv{srv: srv, dir: dir, certFile: gw.CertificateFile, keyFile: gw.KeyFile, upstream: up.URL}
}

// route is a route of the test configurations, at path prefix /name.
func route(name, upstream string, scopes ...string) config.Route {
	return config.Route{Name: name, PathPrefix: "/" + name, Upstream: upstream, DownstreamScopes: scopes}
}

func (e *testEnv) healthyRoutes() []config.Route {
	return []config.Route{
		route("orders", e.upstream, "api://orders-api/.default"),
		route("hr", e.upstream, "api://hr-api/HR.Read"),
		route("inventory", e.upstream, "api://inventory-api/.default"),
		route("public", e.upstream),
	}
}

// healthy is the configuration against the environment that passes every check.
func (e *testEnv) healthy() *config.Config {
	return &config.Config{
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		Entra: config.Entra{
			TenantID:      e.srv.TenantID(),
			ClientID:      fakeentra.DemoGatewayClientID,
			AuthorityHost: e.srv.URL(),
			CAFile:        e.srv.CAFile(),
			Audiences:     []string{"api://obo-gateway"},
			Certificate:   config.Certificate{Path: e.certFile, KeyPath: e.keyFile},
		},
		Routes: e.healthyRoutes(),
	}
}

// write writes the healthy configuration, changed by edits in order (nil
// ones skipped), and returns its path.
func (e *testEnv) write(t *testing.T, edits ...func(*config.Config)) string {
	t.Helper()
	return configtest.Write(t, edited(e.healthy(), edits))
}

// edited is c changed by edits in order; nil ones are skipped.
func edited(c *config.Config, edits []func(*config.Config)) *config.Config {
	for _, edit := range edits {
		if edit != nil {
			edit(c)
		}
	}
	return c
}

// withCredential sets the gateway's certificate and key files.
func withCredential(certFile, keyFile string) func(*config.Config) {
	return func(c *config.Config) {
		c.Entra.Certificate = config.Certificate{Path: certFile, KeyPath: keyFile}
	}
}

// credential writes a self-signed certificate valid from notBefore to
// notAfter, with its key, and returns the files and the certificate.
func credential(t *testing.T, notBefore, notAfter time.Time) (certFile, keyFile string, cert *x509.Certificate, key *rsa.PrivateKey) {
	t.Helper()
	cert, key, err := pki.SelfSigned("CN=doctor-test", notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if certFile, err = pki.WriteFile(dir, "cred.crt.pem", pki.CertPEM(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if keyFile, err = pki.WriteFile(dir, "cred.key.pem", pki.KeyPEM(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert, key
}

// tenantWithGatewayCert is the demo tenant with cert also registered on the gateway app.
func tenantWithGatewayCert(cert *x509.Certificate) *fakeentra.Tenant {
	tn := fakeentra.DemoTenant()
	gw := tn.App("gateway")
	gw.Certificates = append(gw.Certificates, fakeentra.CertificateRef{PEM: string(pki.CertPEM(cert))})
	return tn
}

// countingDialer dials for real and counts.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
}

func run(t *testing.T, path string, offline bool) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, Options{ConfigPath: path, Offline: offline})
}

// byID returns the checks whose ID starts with prefix.
func byID(rep *Report, prefix string) []Check {
	var out []Check
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.ID, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func text(rep *Report) string {
	var b strings.Builder
	rep.WriteText(&b)
	return b.String()
}
