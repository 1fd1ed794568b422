package pki

import (
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCAIssuesLoopbackServerCertificate(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.IssueServer(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: ca.Pool()}); err == nil {
		t.Error("the loopback certificate verifies for example.com")
	}
}

func TestSelfSignedRoundTripAndThumbprints(t *testing.T) {
	now := time.Now()
	cert, key, err := SelfSigned("app", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !PublicKeyMatches(cert, key) {
		t.Fatal("key does not match its certificate")
	}
	certs, err := ParseCertsPEM(append(CertPEM(cert), KeyPEM(key)...))
	if err != nil || len(certs) != 1 || !certs[0].Equal(cert) {
		t.Fatalf("ParseCertsPEM = %v, %v", certs, err)
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw) //nolint:gosec
	if string(ThumbprintSHA1(cert)) != string(s1[:]) || string(ThumbprintSHA256(cert)) != string(s256[:]) {
		t.Error("thumbprints are not SHA-1/SHA-256 of the DER")
	}
	if _, err := ParseCertsPEM([]byte("nothing")); err == nil {
		t.Error("no certificate accepted")
	}
}

func TestWriteFileEnforcesMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.pem")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(dir, "k.pem", []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
}

func TestSystemRootsWith(t *testing.T) {
	ca, err := NewCA("extra CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _ := WriteFile(dir, "ca.pem", ca.CertPEM(), 0o644)
	pool, err := SystemRootsWith(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err != nil {
		t.Errorf("a certificate of the added CA does not verify: %v", err)
	}
	if _, err := SystemRootsWith(""); err != nil {
		t.Errorf("no file: %v", err)
	}
	junk, _ := WriteFile(dir, "junk.pem", []byte("not PEM"), 0o644)
	if _, err := SystemRootsWith(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("a file without certificates: err = %v, want one naming it", err)
	}
	if _, err := SystemRootsWith(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file was accepted")
	}
}
