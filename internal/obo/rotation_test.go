package obo

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// secretVolume lays certificate files out as a Kubernetes Secret volume
// does: tls.pem -> ..data/tls.pem, ..data -> ..<version>; an update writes a
// new version directory and swaps the ..data symlink atomically.
type secretVolume struct {
	t   *testing.T
	dir string
	n   int
}

func newSecretVolume(t *testing.T, pemData []byte) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update(pemData)
	if err := os.Symlink(filepath.Join("..data", "tls.pem"), filepath.Join(v.dir, "tls.pem")); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *secretVolume) path() string { return filepath.Join(v.dir, "tls.pem") }

func (v *secretVolume) update(pemData []byte) {
	v.t.Helper()
	v.n++
	version := filepath.Join(v.dir, "..v"+string(rune('0'+v.n)))
	if err := os.Mkdir(version, 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "tls.pem"), pemData, 0o600); err != nil {
		v.t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

type rotCert struct {
	cert *x509.Certificate
	pem  []byte // certificate + key
}

func newRotCert(t *testing.T, name string) rotCert {
	t.Helper()
	now := time.Now()
	c, k, err := pki.SelfSigned(name, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return rotCert{cert: c, pem: append(pki.CertPEM(c), pki.KeyPEM(k)...)}
}

func (c rotCert) x5tS256() string {
	h := sha256.Sum256(c.cert.Raw)
	return base64.StdEncoding.EncodeToString(h[:])
}

// tenantWithCerts is the demo tenant whose gateway app has exactly the given
// certificates registered.
func tenantWithCerts(t *testing.T, certs ...rotCert) *fakeentra.Server {
	t.Helper()
	ten := fakeentra.DemoTenant()
	gw := ten.App("gateway")
	gw.GenerateCertificate = false
	for _, c := range certs {
		gw.Certificates = append(gw.Certificates, fakeentra.CertificateRef{PEM: string(pki.CertPEM(c.cert))})
	}
	return fakeentratest.Start(t, fakeentra.Config{Tenant: ten})
}

func rotationHarness(t *testing.T, srv *fakeentra.Server, vol *secretVolume, interval time.Duration) *harness {
	t.Helper()
	cert, err := LoadCertificate(vol.path(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, srv, cert, func(c *Config) {
		c.CertificateFiles = &CertificateFiles{Path: vol.path()}
		c.CertificateCheckInterval = interval
	})
}

func (h *harness) exchangeAlice(t *testing.T, srv *fakeentra.Server) error {
	t.Helper()
	tok, err := srv.UserToken(aliceUsername, gatewayScope, fakeentra.UserTokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.x.Exchange(t.Context(), Request{Assertion: tok, TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders"})
	return err
}

func (h *harness) lastThumbprint(t *testing.T) string {
	t.Helper()
	reqs := h.rec.tokenRequests()
	if len(reqs) == 0 {
		t.Fatal("no token request")
	}
	v, _ := reqs[len(reqs)-1].assertionHeader["x5t#S256"].(string)
	return v
}

// TestRotatedCertificateIsUsedWithoutRestart: a Secret update (symlink
// swap) is picked up by the next exchange.
func TestRotatedCertificateIsUsedWithoutRestart(t *testing.T) {
	a, b := newRotCert(t, "gateway-a"), newRotCert(t, "gateway-b")
	srv := tenantWithCerts(t, a, b)
	vol := newSecretVolume(t, a.pem)
	h := rotationHarness(t, srv, vol, time.Nanosecond)

	if err := h.exchangeAlice(t, srv); err != nil {
		t.Fatalf("exchange with A: %v", err)
	}
	if got := h.lastThumbprint(t); got != a.x5tS256() {
		t.Fatalf("first exchange signed with %s, want certificate A", got)
	}
	vol.update(b.pem)
	if err := h.exchangeAlice(t, srv); err != nil {
		t.Fatalf("exchange after rotation: %v", err)
	}
	if got := h.lastThumbprint(t); got != b.x5tS256() {
		t.Errorf("exchange after rotation signed with %s, want certificate B", got)
	}
	if got := testutil.ToFloat64(h.x.cfg.Metrics.reloads.WithLabelValues("success")); got != 1 {
		t.Errorf("successful reloads = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.x.cfg.Metrics.notAfter); got != float64(b.cert.NotAfter.Unix()) {
		t.Errorf("not_after gauge = %v, want B's %d", got, b.cert.NotAfter.Unix())
	}
	if !h.x.Certificate().Leaf().Equal(b.cert) {
		t.Error("Certificate() is not B")
	}
}

// TestCredentialRefusedRightAfterRotationIsRetriedOnce: Entra already has
// only the new certificate; the files changed but the periodic check has not
// run yet. The AADSTS700027 forces a reload, and the retry succeeds.
func TestCredentialRefusedRightAfterRotationIsRetriedOnce(t *testing.T) {
	a, b := newRotCert(t, "gateway-a"), newRotCert(t, "gateway-b")
	srv := tenantWithCerts(t, b)
	vol := newSecretVolume(t, a.pem)
	h := rotationHarness(t, srv, vol, time.Hour)
	vol.update(b.pem)

	if err := h.exchangeAlice(t, srv); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	reqs := h.rec.tokenRequests()
	if len(reqs) != 2 {
		t.Fatalf("token requests = %d, want 2 (refused with A, retried with B)", len(reqs))
	}
	if reqs[0].assertionHeader["x5t#S256"] != a.x5tS256() || reqs[1].assertionHeader["x5t#S256"] != b.x5tS256() {
		t.Errorf("requests signed with %v then %v; want A then B", reqs[0].assertionHeader["x5t#S256"], reqs[1].assertionHeader["x5t#S256"])
	}
	if got := h.exchanges(t, "orders", "success", ""); got != 1 {
		t.Errorf("success count = %v, want 1", got)
	}
}

// TestCredentialRefusedWithoutRotationIsNotRetried: no change on disk, so
// the 700027 is the operator's problem; one request, the error returned.
func TestCredentialRefusedWithoutRotationIsNotRetried(t *testing.T) {
	a, b := newRotCert(t, "gateway-a"), newRotCert(t, "gateway-b")
	srv := tenantWithCerts(t, b)
	vol := newSecretVolume(t, a.pem)
	h := rotationHarness(t, srv, vol, time.Hour)

	err := h.exchangeAlice(t, srv)
	var oe *Error
	if !errors.As(err, &oe) || oe.AADSTS() != 700027 {
		t.Fatalf("err = %v, want AADSTS700027", err)
	}
	if n := len(h.rec.tokenRequests()); n != 1 {
		t.Errorf("token requests = %d, want 1 (no retry without a rotation)", n)
	}
}

// TestUnreadableRotationKeepsTheCertificateInUse: a half-written update is
// not loaded; exchanges go on with the old certificate until the files are
// whole again.
func TestUnreadableRotationKeepsTheCertificateInUse(t *testing.T) {
	a, b := newRotCert(t, "gateway-a"), newRotCert(t, "gateway-b")
	srv := tenantWithCerts(t, a, b)
	vol := newSecretVolume(t, a.pem)
	h := rotationHarness(t, srv, vol, time.Nanosecond)

	vol.update(b.pem[:len(b.pem)/2]) // truncated: certificate without its key
	if err := h.exchangeAlice(t, srv); err != nil {
		t.Fatalf("exchange with a broken update on disk: %v", err)
	}
	if got := h.lastThumbprint(t); got != a.x5tS256() {
		t.Errorf("signed with %s, want the old certificate A", got)
	}
	if got := testutil.ToFloat64(h.x.cfg.Metrics.reloads.WithLabelValues("failure")); got < 1 {
		t.Errorf("failed reloads = %v, want ≥ 1", got)
	}
	vol.update(b.pem)
	if err := h.exchangeAlice(t, srv); err != nil {
		t.Fatalf("exchange after the repaired update: %v", err)
	}
	if got := h.lastThumbprint(t); got != b.x5tS256() {
		t.Errorf("signed with %s, want B once the files are whole", got)
	}
}
