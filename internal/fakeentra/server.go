// Package fakeentra is a local tenant that speaks Microsoft Entra ID's
// protocol with Entra's strictness: OIDC discovery, signing keys, the v1 and
// v2 token endpoints with the password, client-credentials, on-behalf-of and
// refresh-token grants, certificate and secret client authentication, and
// Entra's error bodies with their AADSTS codes.
//
// It serves the gateway's tests, the demo, and frontend developers without a
// tenant. It shares no token code with the gateway (see jose.go): it is the
// gateway's examiner.
package fakeentra

import (
	"context"
	"crypto/cipher"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// Config configures a Server.
type Config struct {
	// Tenant is the directory to serve; nil serves DemoTenant().
	Tenant *Tenant
	// ExtraTenants are further directories served beside Tenant (for guests
	// and multi-tenant apps). They share the signing keys, as Entra's tenants do.
	ExtraTenants []*Tenant
	// Dir receives, at each start, the CA certificate (ca.pem) and the
	// credential of each app with GenerateCertificate (<name>.crt.pem and
	// <name>.key.pem, mode 0600): names that documentation and
	// configurations (deploy/gateway.local.yaml) rely on. Required.
	Dir string
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Logger receives one line per token request (never a secret or a token); nil discards.
	Logger *slog.Logger
	// CodeLifetime is the lifetime of authorization codes; zero is Entra's
	// 10 minutes.
	CodeLifetime time.Duration
}

// Server is a running local tenant. Its methods are safe for concurrent use.
type Server struct {
	now     func() time.Time
	log     *slog.Logger
	tenants []*Tenant // tenants[0] is the primary
	keys    *keyRing
	controls

	ln      net.Listener
	srv     *http.Server
	baseURL string
	caFile  string
	caPool  *x509.CertPool

	stsLn  net.Listener
	stsURL string // the host of v1 issuers, as sts.windows.net is Entra's
	ca     *pki.CA

	// aioAEAD seals the sign-in evidence tokens carry in aio.
	aioAEAD cipher.AEAD

	// clusters are the cluster issuers played, by name; set before serving.
	clusters map[string]*clusterIssuer
	// mi is the managed identity endpoint (plain HTTP on loopback).
	mi *miEndpoint

	// auth holds the browser sign-in's state: flows, sessions and codes.
	auth authState

	mu           sync.Mutex
	refresh      map[string]*refreshGrant
	refreshOrder []string // the keys of refresh, oldest first
	loops        loopCounter
}

// Start prepares the tenant(s), writes the CA and generated credentials to
// cfg.Dir, and serves HTTPS until ctx is done or Close is called.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("fakeentra: Config.Dir is required")
	}
	s := &Server{
		now:     cfg.Now,
		log:     cfg.Logger,
		refresh: map[string]*refreshGrant{},
		aioAEAD: newAEAD(),
		auth:    newAuthState(cfg.CodeLifetime),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	primary := cfg.Tenant
	if primary == nil {
		primary = DemoTenant()
	}
	s.tenants = append([]*Tenant{primary}, cfg.ExtraTenants...)
	ids := map[string]bool{}
	for _, t := range s.tenants {
		if err := t.prepare(cfg.Dir, s.now()); err != nil {
			return nil, err
		}
		if ids[t.TenantID] {
			return nil, fmt.Errorf("fakeentra: tenant %s served twice", t.TenantID)
		}
		ids[t.TenantID] = true
	}
	if err := checkSystemAssigned(s.tenants); err != nil {
		return nil, err
	}
	var err error
	if s.keys, err = newKeyRing(s.now()); err != nil {
		return nil, err
	}

	// Its own CA and a server certificate for 127.0.0.1, ::1 and localhost.
	ca, err := pki.NewCA("fakeentra local CA", 10*24*time.Hour)
	if err != nil {
		return nil, err
	}
	serverCert, err := ca.IssueServer(10 * 24 * time.Hour)
	if err != nil {
		return nil, err
	}
	tlsCert := &serverCert
	s.ca = ca
	s.caPool = ca.Pool()
	if s.caFile, err = pki.WriteFile(cfg.Dir, "ca.pem", ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}

	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeentra: listen: %w", err)
	}
	s.ln = ln
	s.baseURL = "https://" + hostPort(ln.Addr())
	// A second origin plays sts.windows.net, the host of v1 issuers: a v1
	// token's iss names another host than the authority, as Entra's do.
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if s.stsLn, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
		ln.Close()
		return nil, fmt.Errorf("fakeentra: listen: %w", err)
	}
	s.stsURL = "https://" + hostPort(s.stsLn.Addr())
	s.srv = &http.Server{
		Handler:           requestIDs(s.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.resolveFederated()
	if s.mi, err = s.startManagedIdentityEndpoint(); err != nil {
		ln.Close()
		s.stsLn.Close()
		return nil, err
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	go func() { _ = s.srv.ServeTLS(s.stsLn, "", "") }()
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	return s, nil
}

// hostPort renders a listener address as a URL host, using 127.0.0.1 for the
// unspecified address.
func hostPort(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}

// Close stops serving at once, the managed identity endpoint included.
func (s *Server) Close() error {
	miErr := s.mi.srv.Close()
	if err := s.srv.Close(); err != nil {
		return err
	}
	return miErr
}

// URL is the base URL, https://127.0.0.1:port.
func (s *Server) URL() string { return s.baseURL }

// Tenant is the primary tenant.
func (s *Server) Tenant() *Tenant { return s.tenants[0] }

// Tenants are all served tenants, the primary first.
func (s *Server) Tenants() []*Tenant { return s.tenants }

// TenantID is the primary tenant's ID.
func (s *Server) TenantID() string { return s.tenants[0].TenantID }

// Authority is the authority URL MSAL takes: https://host:port/<tenant-id>.
func (s *Server) Authority() string { return s.baseURL + "/" + s.TenantID() }

// TokenEndpoint is the primary tenant's v2 token endpoint.
func (s *Server) TokenEndpoint() string { return s.tokenEndpoint(s.TenantID(), 2) }

// JWKSURI is the primary tenant's v2 signing-key endpoint.
func (s *Server) JWKSURI() string { return s.baseURL + "/" + s.TenantID() + "/discovery/v2.0/keys" }

// IssuerV2 and IssuerV1 are the issuers of the tenant's v2 and v1 tokens.
func (s *Server) IssuerV2(tenantID string) string { return s.baseURL + "/" + tenantID + "/v2.0" }

// IssuerV1 is the issuer of v1 tokens (Entra's https://sts.windows.net/<tid>/),
// on the second origin.
func (s *Server) IssuerV1(tenantID string) string { return s.stsURL + "/" + tenantID + "/" }

// IssueClientCertificate issues a certificate for commonName from the
// tenant's CA and writes it with its chain (leaf, CA) and its key to the
// tenant's directory, for subject name and issuer authentication
// (App.TrustedCertificateSubjects). The certificate is registered nowhere.
func (s *Server) IssueClientCertificate(dir, commonName string) (certFile, keyFile string, err error) {
	cert, key, err := s.ca.IssueClient(commonName, 24*time.Hour)
	if err != nil {
		return "", "", err
	}
	name := strings.NewReplacer("/", "_", " ", "_", "=", "_").Replace(commonName)
	if certFile, err = pki.WriteFile(dir, name+".chain.pem", append(pki.CertPEM(cert), s.ca.CertPEM()...), 0o644); err != nil {
		return "", "", err
	}
	if keyFile, err = pki.WriteFile(dir, name+".key.pem", pki.KeyPEM(key), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// requestIDs gives every answer an x-ms-request-id, as Entra does (the
// trace_id of its error bodies).
func requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-request-id", newGUID())
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tokenEndpoint(tenantID string, ver int) string {
	if ver == 1 {
		return s.baseURL + "/" + tenantID + "/oauth2/token"
	}
	return s.baseURL + "/" + tenantID + "/oauth2/v2.0/token"
}

// CAFile is the PEM file of the CA that signed the server certificate.
func (s *Server) CAFile() string { return s.caFile }

// CAPool trusts the server certificate.
func (s *Server) CAPool() *x509.CertPool { return s.caPool }

// HTTPClient returns a client that trusts this server, with timeouts.
func (s *Server) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// tenantByRef finds a served tenant by ID or domain.
func (s *Server) tenantByRef(ref string) *Tenant {
	for _, t := range s.tenants {
		if strings.EqualFold(t.TenantID, ref) || strings.EqualFold(t.Domain, ref) {
			return t
		}
	}
	return nil
}

// tenantOfIssuer finds the served tenant whose v1 or v2 issuer is iss.
func (s *Server) tenantOfIssuer(iss string) *Tenant {
	for _, t := range s.tenants {
		if iss == s.IssuerV2(t.TenantID) || iss == s.IssuerV1(t.TenantID) {
			return t
		}
	}
	return nil
}
