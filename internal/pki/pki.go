// Package pki makes the keys and X.509 certificates that the local tenant,
// the demo and the tests need: a CA, loopback server certificates, and
// self-signed client certificates like those uploaded to an Entra app.
//
// It is deliberately neutral: it signs nothing but certificates and knows
// nothing of JWTs, so the local tenant and the gateway can both use it without
// sharing any token logic.
package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 thumbprints are what Entra calls x5t.
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyBits is the RSA modulus size used for every generated key, the size
// Entra uses for its signing keys.
const KeyBits = 2048

// CA is a certificate authority able to issue server certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// NewCA creates a self-signed CA valid from one hour ago for the given lifetime.
func NewCA(commonName string, lifetime time.Duration) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"OBO Gateway local"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM returns the CA certificate as PEM, for clients to trust.
func (ca *CA) CertPEM() []byte { return CertPEM(ca.Cert) }

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueServer issues a TLS server certificate for the given DNS names and IP
// addresses. With no hosts it covers the loopback names: 127.0.0.1, ::1 and localhost.
func (ca *CA) IssueServer(lifetime time.Duration, hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// IssueClient issues a client certificate with the given common name and
// its RSA key: the kind of certificate an app authenticates with by subject
// name and issuer (Entra's SNI), the CA's certificate in its chain.
func (ca *CA) IssueClient(commonName string, lifetime time.Duration) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate client key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse client certificate: %w", err)
	}
	return cert, key, nil
}

// SelfSigned creates a self-signed certificate and its RSA key, valid between
// notBefore and notAfter: the kind of certificate uploaded to an app
// registration as a client credential, or used by Entra for signing keys.
func SelfSigned(commonName string, notBefore, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	cert, err := SelfSignedWithKey(commonName, key, notBefore, notAfter)
	return cert, key, err
}

// SelfSignedWithKey is SelfSigned with a key the caller already has.
func SelfSignedWithKey(commonName string, key *rsa.PrivateKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate: %w", err)
	}
	return cert, nil
}

// CertPEM encodes a certificate as a PEM CERTIFICATE block.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes an RSA key as an unencrypted PKCS#8 PEM block.
func KeyPEM(k *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		// Cannot happen for a valid *rsa.PrivateKey.
		panic(fmt.Sprintf("pki: marshal PKCS#8: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParseCertsPEM returns every CERTIFICATE block in data, in order.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("pki: no CERTIFICATE block found")
	}
	return certs, nil
}

// ThumbprintSHA1 is the SHA-1 of the certificate DER: what the portal shows
// (in hex) and what goes, base64url-encoded, in an x5t header.
func ThumbprintSHA1(c *x509.Certificate) []byte {
	s := sha1.Sum(c.Raw) //nolint:gosec
	return s[:]
}

// ThumbprintSHA256 is the SHA-256 of the certificate DER, used in x5t#S256.
func ThumbprintSHA256(c *x509.Certificate) []byte {
	s := sha256.Sum256(c.Raw)
	return s[:]
}

// WriteFile writes data to dir/name with the given mode, creating dir, and
// returns the path. Private keys should be written with 0o600.
func WriteFile(dir, name string, data []byte, mode os.FileMode) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	// WriteFile keeps the mode of a file that already exists: enforce it.
	if err := os.Chmod(p, mode); err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	return p, nil
}

// PublicKeyMatches reports whether key is the private half of cert's RSA key.
func PublicKeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(fmt.Sprintf("pki: serial: %v", err))
	}
	return n
}

// SystemRootsWith returns the system's trusted roots plus the PEM
// certificates of caFile ("" adds none). It fails when caFile cannot be read
// or holds no certificate, naming the file.
func SystemRootsWith(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("pki: %s holds no PEM certificate", caFile)
	}
	return pool, nil
}
