// Package clients turns the configuration into the long-lived clients the
// gateway talks through: the HTTP client for Entra ID, the configuration of
// the MSAL confidential client that exchanges tokens On-Behalf-Of, the
// shared cache's Redis configuration, and the upstream transport. There is
// one constructor per kind of client, and `gateway serve`, `gateway doctor`
// and `gateway inspect` all call it: a tool that checks what the gateway
// will do talks to Entra, Redis and the upstreams exactly as the gateway does.
//
// Constructors do no network work; they may read the CA files they are
// given. The clients they return are safe for concurrent use.
package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fedcred"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2"
)

// Dialer dials a network connection. Nil means net.Dialer's; tools pass
// their own to observe or forbid connections (gateway doctor -offline).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// The bounds of a call to Entra. MSAL calls have their own bound besides
// (entra.token_timeout, through the request context).
const (
	entraTimeout          = 30 * time.Second
	entraHandshakeTimeout = 10 * time.Second
	entraHeaderTimeout    = 30 * time.Second
	// entraIdleConns is enough idle connections for a burst of exchanges:
	// http.DefaultTransport keeps 2 per host.
	entraIdleConns = 64
)

// Entra returns the HTTP client for Entra ID's discovery, signing-key and
// token endpoints: the system's CAs plus entra.ca_file, TLS 1.2 or later,
// bounded handshake, header and whole-call times, and enough idle
// connections for bursts. It fails only when entra.ca_file cannot be read.
func Entra(e config.Entra, dial Dialer) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = entraIdleConns
	tr.TLSHandshakeTimeout = entraHandshakeTimeout
	tr.ResponseHeaderTimeout = entraHeaderTimeout
	if dial != nil {
		tr.DialContext = dial
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pool, err := pki.SystemRootsWith(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clients: entra.ca_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: entraTimeout}, nil
}

// OBO returns the configuration of the gateway's MSAL confidential client:
// authority, tenant, client ID, the certificate (reloaded from its files
// when they change), x5c, instance discovery, client capabilities, the
// exchange's time bound and the HTTP client for Entra. The caller adds its
// metrics and logger; obo.New makes the exchanger of it, obo.NewClient a
// plain MSAL client (gateway doctor).
//
// With a federated credential (entra.credential workload_identity or
// managed_identity) cert is nil and the assertion source is given instead
// (Assertion).
func OBO(e config.Entra, cert *obo.Certificate, assertion AssertionSource, entra *http.Client) obo.Config {
	c := obo.Config{
		AuthorityHost: e.AuthorityHost, TenantID: e.TenantID, ClientID: e.ClientID,
		InstanceDiscovery:  e.InstanceDiscovery != nil && *e.InstanceDiscovery,
		ClientCapabilities: e.ClientCapabilities,
		HTTPClient:         entra,
		Timeout:            e.TokenTimeout.D(),
	}
	if cert != nil {
		c.Certificate = cert
		c.CertificateFiles = &obo.CertificateFiles{
			Path: e.Certificate.Path, KeyPath: e.Certificate.KeyPath, Password: e.Certificate.Password,
		}
		c.SendX5C = e.Certificate.SendX5C
	} else if assertion != nil {
		c.Assertion = assertion.Assertion
	}
	return c
}

// AssertionSource gives the client assertion of a federated credential
// (fedcred.TokenFile, fedcred.ManagedIdentity), and the last failure to.
type AssertionSource interface {
	Assertion(ctx context.Context) (string, error)
	Err() error
}

// Assertion returns the assertion source of entra.credential
// workload_identity (the token file, read for every assertion) or
// managed_identity (MSAL's managed identity client, for the cloud's
// token-exchange audience unless entra.managed_identity.audience says
// otherwise), or nil for a certificate. It contacts nothing.
func Assertion(e config.Entra, m *fedcred.Metrics) (AssertionSource, error) {
	switch e.Credential {
	case config.CredentialWorkloadIdentity:
		f, err := fedcred.NewTokenFile(fedcred.TokenFileConfig{Path: e.WorkloadIdentity.TokenFile, Metrics: m})
		if err != nil {
			return nil, err
		}
		return f, nil
	case config.CredentialManagedIdentity:
		aud := e.ManagedIdentity.Audience
		if aud == "" {
			aud = fedcred.Audience(e.AuthorityHost)
		}
		// The identity endpoint is local (IMDS, App Service's): no proxy,
		// bounded like every call to Entra.
		tr := &http.Transport{Proxy: nil, ResponseHeaderTimeout: entraHeaderTimeout, MaxIdleConnsPerHost: 4}
		mi, err := fedcred.NewManagedIdentity(fedcred.ManagedIdentityConfig{
			ClientID: e.ManagedIdentity.ClientID, Audience: aud, Metrics: m,
			HTTPClient: &http.Client{Transport: tr, Timeout: entraTimeout},
		})
		if err != nil {
			return nil, err
		}
		return mi, nil
	}
	return nil, nil
}

// Certificate loads the gateway's credential from entra.certificate. Its
// error is a *CertificateError: complete on its own, it names the settings
// the certificate was loaded from, with their values and where each was set.
func Certificate(e config.Entra) (*obo.Certificate, error) {
	c, err := obo.LoadCertificate(e.Certificate.Path, e.Certificate.KeyPath, e.Certificate.Password)
	if err != nil {
		return nil, &CertificateError{Settings: certificateSettings(e), Err: err}
	}
	return c, nil
}

// CertificateError is why the gateway's certificate cannot be loaded, and
// from what.
type CertificateError struct {
	// Settings are those the certificate was loaded from: entra.certificate.path,
	// then key_path and password when they are set.
	Settings []Setting
	// Err is obo.LoadCertificate's error.
	Err error
}

// Setting is one setting a client was made from, as an error names it.
type Setting struct {
	// Name is its YAML path, e.g. entra.certificate.key_path.
	Name string
	// Value is its value, "" for a secret (Secret).
	Value string
	// Secret: the value is never shown, only that it is set.
	Secret bool
	// Origin is where it was set, as config.Config.Origin says it
	// ("gateway.yaml:12", "env OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH"),
	// "" when unknown.
	Origin string
}

// String writes the setting for a message: entra.certificate.path
// "/etc/gw.pem" (gateway.yaml:12); a secret as "entra.certificate.password
// (set, env AZURE_CLIENT_CERTIFICATE_PASSWORD)".
func (s Setting) String() string {
	switch {
	case s.Secret && s.Origin != "":
		return s.Name + " (set, " + s.Origin + ")"
	case s.Secret:
		return s.Name + " (set)"
	case s.Origin != "":
		return fmt.Sprintf("%s %q (%s)", s.Name, s.Value, s.Origin)
	}
	return fmt.Sprintf("%s %q", s.Name, s.Value)
}

// From names the settings the certificate was loaded from:
// entra.certificate.path "/x" (gateway.yaml:12) with entra.certificate.key_path "/y" (env …).
func (e *CertificateError) From() string {
	parts := make([]string, len(e.Settings))
	for i, s := range e.Settings {
		parts[i] = s.String()
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return parts[0] + " with " + strings.Join(parts[1:], " and ")
}

func (e *CertificateError) Error() string {
	return "clients: cannot load the certificate of " + e.From() + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *CertificateError) Unwrap() error { return e.Err }

// certificateSettings lists the settings of e's certificate: the path,
// and the key path and the password when set.
func certificateSettings(e config.Entra) []Setting {
	const (
		path     = "entra.certificate.path"
		keyPath  = "entra.certificate.key_path"
		password = "entra.certificate.password"
	)
	c := e.Certificate
	ss := []Setting{{Name: path, Value: c.Path, Origin: e.Origin(path)}}
	if c.KeyPath != "" {
		ss = append(ss, Setting{Name: keyPath, Value: c.KeyPath, Origin: e.Origin(keyPath)})
	}
	if c.Password != "" {
		ss = append(ss, Setting{Name: password, Secret: true, Origin: e.Origin(password)})
	}
	return ss
}

// Redis returns the configuration of the shared cache for r: address,
// credentials, database, TLS (the system's CAs plus cache.redis.ca_file),
// the per-call bound and the encryption keys. The caller adds metrics and
// logger. It fails when the keys or the CA file cannot be read.
func Redis(r *config.Redis) (redisl2.Config, error) {
	keys, err := redisl2.ParseKeyring(r.EncryptionKeys, r.EncryptionKeyID)
	if err != nil {
		return redisl2.Config{}, fmt.Errorf("clients: cache.redis.encryption_keys: %w", err)
	}
	var tlsCfg *tls.Config
	if r.TLS {
		pool, err := pki.SystemRootsWith(r.CAFile)
		if err != nil {
			return redisl2.Config{}, fmt.Errorf("clients: cache.redis.ca_file: %w", err)
		}
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return redisl2.Config{
		Addr: r.Address, Username: r.Username, Password: r.Password, DB: r.DB,
		TLS: tlsCfg, Timeout: r.Timeout.D(), Keys: keys,
	}, nil
}

// Upstream returns the transport every route's upstream requests share
// (proxy.NewTransport's: pooled keep-alive connections, bounded dial and
// handshake, HTTP/2 over TLS).
func Upstream(dial Dialer) *http.Transport {
	t := proxy.NewTransport(proxy.TransportConfig{})
	if dial != nil {
		t.DialContext = dial
	}
	return t
}
