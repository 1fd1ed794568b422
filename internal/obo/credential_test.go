package obo

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// credPassword is distinctive so that a leak into an error message shows.
const credPassword = "s3cret-Pfx-Passw0rd-7f3a"

// credMaterial is the key material the credential tests share: generating
// RSA keys is slow, and every case only needs to read them.
type credMaterial struct {
	leaf      *x509.Certificate // self-signed, key leafKey
	leafKey   *rsa.PrivateKey
	other     *x509.Certificate // self-signed, key otherKey
	otherKey  *rsa.PrivateKey
	ca        *pki.CA
	caLeaf    *x509.Certificate // issued by ca, key caLeafKey
	caLeafKey *rsa.PrivateKey
	ecCert    *x509.Certificate // self-signed ECDSA, key ecKey
	ecKey     *ecdsa.PrivateKey
}

var (
	credOnce sync.Once
	credMat  *credMaterial
	credErr  error
)

func credentials(t *testing.T) *credMaterial {
	t.Helper()
	credOnce.Do(func() { credMat, credErr = newCredMaterial() })
	if credErr != nil {
		t.Fatalf("generate test credentials: %v", credErr)
	}
	return credMat
}

func newCredMaterial() (*credMaterial, error) {
	m := &credMaterial{}
	now := time.Now()
	var err error
	if m.leaf, m.leafKey, err = pki.SelfSigned("obo-test-leaf", now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if m.other, m.otherKey, err = pki.SelfSigned("obo-test-other", now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if m.ca, err = pki.NewCA("obo-test-ca", 24*time.Hour); err != nil {
		return nil, err
	}
	issued, err := m.ca.IssueServer(24*time.Hour, "gateway.test")
	if err != nil {
		return nil, err
	}
	m.caLeaf, m.caLeafKey = issued.Leaf, issued.PrivateKey.(*rsa.PrivateKey)

	if m.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "obo-test-ecdsa"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &m.ecKey.PublicKey, m.ecKey)
	if err != nil {
		return nil, err
	}
	if m.ecCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return m, nil
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func encryptedPKCS8PEM(t *testing.T, k *rsa.PrivateKey, password string) []byte {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(k, []byte(password), nil)
	if err != nil {
		t.Fatalf("pkcs8.MarshalPrivateKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

func legacyEncryptedPEM(t *testing.T, k *rsa.PrivateKey, password string) []byte {
	t.Helper()
	//nolint:staticcheck // legacy encrypted PEM is exactly what is under test
	b, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), []byte(password), x509.PEMCipherAES256)
	if err != nil {
		t.Fatalf("x509.EncryptPEMBlock: %v", err)
	}
	return pem.EncodeToMemory(b)
}

func ecPKCS8PEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatalf("marshal ECDSA key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pfx(t *testing.T, key any, leaf *x509.Certificate, cas []*x509.Certificate, password string) []byte {
	t.Helper()
	data, err := pkcs12.Modern.Encode(key, leaf, cas, password)
	if err != nil {
		t.Fatalf("pkcs12 encode: %v", err)
	}
	return data
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// writeTemp writes data to name in dir and returns the path.
func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return p
}

func TestLoadCertificate(t *testing.T) {
	m := credentials(t)

	type files struct {
		cert     []byte
		certName string // default "cred.pem"
		key      []byte // written to a separate key file when set
		keyName  string // a key path that is not written: a missing key file
		password string
	}
	cases := []struct {
		name string
		in   func(t *testing.T) files
		// on success: the expected leaf, chain length and key
		leaf     func() *x509.Certificate
		chainLen int
		key      func() *rsa.PrivateKey
		// on failure: substrings the error must contain
		wantErr []string
	}{
		{
			name: "PEM cert and PKCS#8 key",
			in: func(*testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), pki.KeyPEM(m.leafKey))}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "PEM key before cert",
			in: func(*testing.T) files {
				return files{cert: concat(pki.KeyPEM(m.leafKey), pki.CertPEM(m.leaf))}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "PEM cert and PKCS#1 key",
			in: func(*testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), pkcs1PEM(m.leafKey))}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "key in a separate file",
			in: func(*testing.T) files {
				return files{cert: pki.CertPEM(m.leaf), key: pki.KeyPEM(m.leafKey)}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "PKCS#1 key in a separate file",
			in: func(*testing.T) files {
				return files{cert: pki.CertPEM(m.leaf), key: pkcs1PEM(m.leafKey)}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "chain with the CA before the leaf",
			in: func(*testing.T) files {
				return files{cert: concat(m.ca.CertPEM(), pki.CertPEM(m.caLeaf), pki.KeyPEM(m.caLeafKey))}
			},
			leaf: func() *x509.Certificate { return m.caLeaf }, chainLen: 2, key: func() *rsa.PrivateKey { return m.caLeafKey },
		},
		{
			name: "encrypted PKCS#8 key, right password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), encryptedPKCS8PEM(t, m.leafKey, credPassword)), password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "encrypted PKCS#8 key in a separate file, right password",
			in: func(t *testing.T) files {
				return files{cert: pki.CertPEM(m.leaf), key: encryptedPKCS8PEM(t, m.leafKey, credPassword), password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "encrypted PKCS#8 key, wrong password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), encryptedPKCS8PEM(t, m.leafKey, credPassword)), password: credPassword + "-wrong"}
			},
			wantErr: []string{"password"},
		},
		{
			name: "encrypted PKCS#8 key, no password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), encryptedPKCS8PEM(t, m.leafKey, credPassword))}
			},
			wantErr: []string{"encrypted"},
		},
		{
			name: "legacy encrypted PEM key, right password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), legacyEncryptedPEM(t, m.leafKey, credPassword)), password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "legacy encrypted PEM key, wrong password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), legacyEncryptedPEM(t, m.leafKey, credPassword)), password: credPassword + "-wrong"}
			},
			// CBC padding cannot always detect a wrong password, so the
			// message may come from the key parser instead; it must fail.
			wantErr: []string{"obo: certificate"},
		},
		{
			name: "legacy encrypted PEM key, no password",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), legacyEncryptedPEM(t, m.leafKey, credPassword))}
			},
			wantErr: []string{"encrypted"},
		},
		{
			name: "PFX with .pfx extension, right password",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.leafKey, m.leaf, nil, credPassword), certName: "cred.pfx", password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "PFX with .p12 extension and its CA, right password",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.caLeafKey, m.caLeaf, []*x509.Certificate{m.ca.Cert}, credPassword), certName: "cred.P12", password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.caLeaf }, chainLen: 2, key: func() *rsa.PrivateKey { return m.caLeafKey },
		},
		{
			name: "PFX without extension, right password",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.leafKey, m.leaf, nil, credPassword), certName: "gateway-credential", password: credPassword}
			},
			leaf: func() *x509.Certificate { return m.leaf }, chainLen: 1, key: func() *rsa.PrivateKey { return m.leafKey },
		},
		{
			name: "PFX with .pfx extension, wrong password",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.leafKey, m.leaf, nil, credPassword), certName: "cred.pfx", password: credPassword + "-wrong"}
			},
			wantErr: []string{"password", "AZURE_CLIENT_CERTIFICATE_PASSWORD"},
		},
		{
			name: "PFX without extension, wrong password",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.leafKey, m.leaf, nil, credPassword), certName: "gateway-credential", password: "not-" + credPassword}
			},
			wantErr: []string{"password", "AZURE_CLIENT_CERTIFICATE_PASSWORD"},
		},
		{
			name: "PFX with an ECDSA key",
			in: func(t *testing.T) files {
				return files{cert: pfx(t, m.ecKey, m.ecCert, nil, credPassword), certName: "cred.pfx", password: credPassword}
			},
			wantErr: []string{"RSA"},
		},
		{
			name: "key matches no certificate",
			in: func(*testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), pki.CertPEM(m.caLeaf), pki.KeyPEM(m.otherKey))}
			},
			wantErr: []string{"does not match"},
		},
		{
			name: "separate key file matches no certificate",
			in: func(*testing.T) files {
				return files{cert: pki.CertPEM(m.leaf), key: pki.KeyPEM(m.otherKey)}
			},
			wantErr: []string{"does not match"},
		},
		{
			name: "ECDSA key refused",
			in: func(t *testing.T) files {
				return files{cert: concat(pki.CertPEM(m.ecCert), ecPKCS8PEM(t, m.ecKey))}
			},
			wantErr: []string{"need an RSA key"},
		},
		{
			name: "no key",
			in: func(*testing.T) files {
				return files{cert: pki.CertPEM(m.leaf)}
			},
			wantErr: []string{"no private key"},
		},
		{
			name: "no certificate",
			in: func(*testing.T) files {
				return files{cert: pki.KeyPEM(m.leafKey)}
			},
			wantErr: []string{"no CERTIFICATE"},
		},
		{
			name: "two keys",
			in: func(*testing.T) files {
				return files{cert: concat(pki.CertPEM(m.leaf), pki.KeyPEM(m.leafKey), pkcs1PEM(m.otherKey))}
			},
			wantErr: []string{"more than one private key"},
		},
		{
			name: "missing certificate file",
			in: func(*testing.T) files {
				return files{certName: "-"}
			},
			wantErr: []string{"obo: certificate", "no such file"},
		},
		{
			name: "missing key file",
			in: func(*testing.T) files {
				return files{cert: pki.CertPEM(m.leaf), keyName: "absent.key.pem"}
			},
			wantErr: []string{"obo: certificate key", "no such file"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := tc.in(t)
			var certPath, keyPath string
			switch f.certName {
			case "-":
				certPath = filepath.Join(dir, "absent.pem")
			case "":
				certPath = writeTemp(t, dir, "cred.pem", f.cert)
			default:
				certPath = writeTemp(t, dir, f.certName, f.cert)
			}
			switch {
			case f.key != nil:
				keyPath = writeTemp(t, dir, "cred.key.pem", f.key)
			case f.keyName != "":
				keyPath = filepath.Join(dir, f.keyName)
			}

			got, err := LoadCertificate(certPath, keyPath, f.password)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadCertificate succeeded; want an error containing %q", tc.wantErr)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				assertNoPassword(t, err)
				return
			}
			if err != nil {
				t.Fatalf("LoadCertificate: %v", err)
			}
			assertCertificate(t, got, tc.leaf(), tc.chainLen, tc.key())
		})
	}
}

// TestParsePEM covers the exported PEM parser directly, including the leaf
// ordering when the chain holds several certificates around the leaf.
func TestParsePEM(t *testing.T) {
	m := credentials(t)
	data := concat(m.ca.CertPEM(), pki.CertPEM(m.other), pki.KeyPEM(m.caLeafKey), pki.CertPEM(m.caLeaf))
	got, err := ParsePEM(data, "")
	if err != nil {
		t.Fatalf("ParsePEM: %v", err)
	}
	assertCertificate(t, got, m.caLeaf, 3, m.caLeafKey)
	// The other certificates keep their order after the leaf.
	if !got.Chain[1].Equal(m.ca.Cert) || !got.Chain[2].Equal(m.other) {
		t.Errorf("chain after the leaf = [%s, %s]; want [%s, %s]",
			got.Chain[1].Subject.CommonName, got.Chain[2].Subject.CommonName, m.ca.Cert.Subject.CommonName, m.other.Subject.CommonName)
	}

	if _, err := ParsePEM([]byte("not PEM at all"), credPassword); err == nil || !strings.Contains(err.Error(), "no CERTIFICATE") {
		t.Errorf("ParsePEM(garbage) error = %v; want no CERTIFICATE", err)
	} else {
		assertNoPassword(t, err)
	}
}

func assertCertificate(t *testing.T, got *Certificate, leaf *x509.Certificate, chainLen int, key *rsa.PrivateKey) {
	t.Helper()
	if got == nil || len(got.Chain) == 0 {
		t.Fatal("LoadCertificate returned no chain")
	}
	if len(got.Chain) != chainLen {
		t.Errorf("chain length = %d; want %d", len(got.Chain), chainLen)
	}
	if !got.Leaf().Equal(leaf) || !got.Chain[0].Equal(leaf) {
		t.Errorf("leaf = %q; want %q first in Chain", got.Leaf().Subject.CommonName, leaf.Subject.CommonName)
	}
	if got.Key == nil || !got.Key.Equal(key) {
		t.Error("Key is not the expected private key")
	}
	if pub, ok := got.Leaf().PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&got.Key.PublicKey) {
		t.Error("Key does not belong to Leaf()")
	}
}

func assertNoPassword(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), credPassword) {
		t.Error("error message contains the password")
	}
}
