package doctor

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

type testRoute struct {
	name, upstream string
	scopes         []string
}

// testConfig is a gateway configuration; the zero value of a field takes
// the healthy value of the environment.
type testConfig struct {
	tenantID, clientID, authority string
	certFile, keyFile, caFile     string
	noAudiences, noCAFile         bool
	routes                        []testRoute
	extra                         string // YAML appended at the top level
	entraExtra                    string // YAML lines appended to entra
}

func (e *testEnv) healthyRoutes() []testRoute {
	return []testRoute{
		{name: "orders", upstream: e.upstream, scopes: []string{"api://orders-api/.default"}},
		{name: "hr", upstream: e.upstream, scopes: []string{"api://hr-api/HR.Read"}},
		{name: "inventory", upstream: e.upstream, scopes: []string{"api://inventory-api/.default"}},
		{name: "public", upstream: e.upstream},
	}
}

// write writes the configuration into dir and returns its path.
func (e *testEnv) write(t *testing.T, c testConfig) string {
	t.Helper()
	dir := t.TempDir()
	if e != nil {
		def := func(p *string, v string) {
			if *p == "" {
				*p = v
			}
		}
		def(&c.tenantID, e.srv.TenantID())
		def(&c.clientID, fakeentra.DemoGatewayClientID)
		def(&c.authority, e.srv.URL())
		def(&c.certFile, e.certFile)
		def(&c.keyFile, e.keyFile)
		if !c.noCAFile {
			def(&c.caFile, e.srv.CAFile())
		}
		if c.routes == nil {
			c.routes = e.healthyRoutes()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nentra:\n")
	fmt.Fprintf(&b, "  tenant_id: %s\n  client_id: %s\n  authority_host: %s\n", c.tenantID, c.clientID, c.authority)
	if c.caFile != "" {
		fmt.Fprintf(&b, "  ca_file: %s\n", c.caFile)
	}
	if !c.noAudiences {
		fmt.Fprintf(&b, "  audiences: [api://obo-gateway]\n")
	}
	fmt.Fprintf(&b, "  certificate:\n    path: %s\n", c.certFile)
	if c.keyFile != "" {
		fmt.Fprintf(&b, "    key_path: %s\n", c.keyFile)
	}
	b.WriteString(c.entraExtra)
	b.WriteString("routes:\n")
	for _, r := range c.routes {
		fmt.Fprintf(&b, "  - name: %s\n    path_prefix: /%s\n    upstream: %s\n", r.name, r.name, r.upstream)
		if len(r.scopes) > 0 {
			fmt.Fprintf(&b, "    downstream_scopes: [%s]\n", strings.Join(r.scopes, ", "))
		}
	}
	b.WriteString(c.extra)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
