package obo

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// Certificate is the gateway's client credential: an RSA key and its
// certificate chain, leaf first.
type Certificate struct {
	Chain []*x509.Certificate
	Key   *rsa.PrivateKey
}

// Leaf is the certificate of Key.
func (c *Certificate) Leaf() *x509.Certificate { return c.Chain[0] }

// LoadCertificate reads the gateway's certificate credential.
//
// certPath is a PEM file holding the certificate (and optionally its chain
// and the private key), or a PKCS#12/PFX file (.pfx or .p12, or any file that
// is not PEM). keyPath optionally names a separate PEM key file. The key must
// be RSA (Entra's certificate credentials are RSA), PKCS#1 or PKCS#8; an
// encrypted key (PKCS#8 "ENCRYPTED PRIVATE KEY", or legacy encrypted PEM) or
// a PFX is opened with password.
func LoadCertificate(certPath, keyPath, password string) (*Certificate, error) {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("obo: certificate: %w", err)
	}
	ext := strings.ToLower(filepath.Ext(certPath))
	if ext == ".pfx" || ext == ".p12" || !bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePFX(data, password)
	}
	if keyPath != "" {
		kd, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("obo: certificate key: %w", err)
		}
		data = append(append(data, '\n'), kd...)
	}
	return ParsePEM(data, password)
}

func parsePFX(data []byte, password string) (*Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, errors.New("obo: PFX: wrong password (set AZURE_CLIENT_CERTIFICATE_PASSWORD)")
		}
		return nil, fmt.Errorf("obo: PFX: %w", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("obo: PFX: the key is %T; Entra certificate credentials need an RSA key", key)
	}
	return newCertificate(append([]*x509.Certificate{leaf}, cas...), rk)
}

// ParsePEM reads certificates and one private key from PEM data.
func ParsePEM(data []byte, password string) (*Certificate, error) {
	var certs []*x509.Certificate
	var key any
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("obo: certificate: %w", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			if key != nil {
				return nil, errors.New("obo: certificate: more than one private key in the PEM data")
			}
			k, err := parseKeyBlock(b, password)
			if err != nil {
				return nil, err
			}
			key = k
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("obo: certificate: no CERTIFICATE block found")
	}
	if key == nil {
		return nil, errors.New("obo: certificate: no private key found; put it in the same PEM file or set the key file")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("obo: certificate: the key is %T; Entra certificate credentials need an RSA key", key)
	}
	return newCertificate(certs, rk)
}

func parseKeyBlock(b *pem.Block, password string) (any, error) {
	der := b.Bytes
	//nolint:staticcheck // legacy encrypted PEM is still what some tools write
	if x509.IsEncryptedPEMBlock(b) {
		if password == "" {
			return nil, errors.New("obo: certificate: the private key is encrypted; set the certificate password")
		}
		var err error
		//nolint:staticcheck
		if der, err = x509.DecryptPEMBlock(b, []byte(password)); err != nil {
			return nil, fmt.Errorf("obo: certificate: decrypt key: %w", err)
		}
	}
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("obo: certificate: PKCS#1 key: %w", err)
		}
		return k, nil
	case "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return nil, errors.New("obo: certificate: the private key is encrypted; set the certificate password")
		}
		k, err := pkcs8.ParsePKCS8PrivateKey(der, []byte(password))
		if err != nil {
			return nil, fmt.Errorf("obo: certificate: encrypted PKCS#8 key (wrong password?): %w", err)
		}
		return k, nil
	default:
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("obo: certificate: PKCS#8 key: %w", err)
		}
		return k, nil
	}
}

// newCertificate orders the chain leaf first: the certificate whose public
// key is Key's.
func newCertificate(certs []*x509.Certificate, key *rsa.PrivateKey) (*Certificate, error) {
	for i, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
			chain := append([]*x509.Certificate{c}, certs[:i]...)
			chain = append(chain, certs[i+1:]...)
			return &Certificate{Chain: chain, Key: key}, nil
		}
	}
	return nil, errors.New("obo: certificate: the private key does not match any certificate in the file")
}
