// Package obo exchanges a user's access token for a downstream API's token
// with the OAuth 2.0 On-Behalf-Of flow, through one MSAL Go confidential
// client that proves itself with the gateway's certificate.
//
// Errors are *Error, carrying Entra's status, error, suberror, AADSTS codes,
// trace and correlation IDs and claims challenge, classified (Class) into
// what the frontend and the operator must do.
package obo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// Config configures an Exchanger.
type Config struct {
	// AuthorityHost is the Entra host, e.g. https://login.microsoftonline.com,
	// https://login.microsoftonline.us, or the local tenant's https://127.0.0.1:port.
	AuthorityHost string
	// TenantID is the gateway's home tenant; ClientID its application ID.
	TenantID string
	ClientID string
	// Certificate is the gateway's credential, unless Assertion is set.
	Certificate *Certificate
	// Assertion, instead of a certificate, gives the client assertion for
	// every call to Entra: a federated credential (a workload identity's
	// token file, a managed identity's token; package fedcred). Its errors
	// should carry a CredentialFailure() string method, so that a failure
	// to get one is told from Entra's refusal.
	Assertion func(ctx context.Context) (string, error)
	// CertificateFiles, when set, are the files Certificate was loaded from:
	// they are checked (at most once per CertificateCheckInterval) before an
	// exchange, and a changed certificate — including a Kubernetes Secret
	// update, which swaps a symlink — is used from then on, without restart.
	// An AADSTS700027/700024 answer forces a check at once and, if the
	// certificate changed, one retry.
	CertificateFiles *CertificateFiles
	// CertificateCheckInterval is the least time between two checks of the
	// files; default 10s.
	CertificateCheckInterval time.Duration
	// SendX5C sends the certificate chain (x5c) in the client assertion, for
	// subject name + issuer authentication.
	SendX5C bool
	// InstanceDiscovery asks Entra which hosts are aliases of the authority;
	// it must be off for hosts Entra does not know (the local tenant).
	InstanceDiscovery bool
	// ClientCapabilities are declared to Entra (e.g. "cp1" for continuous
	// access evaluation).
	ClientCapabilities []string
	// HTTPClient talks to Entra; it must have a timeout. Required.
	HTTPClient *http.Client
	// Timeout bounds one exchange; default 10s.
	Timeout time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
}

// Exchanger performs OBO exchanges. It is safe for concurrent use; one is
// built per process, so MSAL resolves the authority once.
type Exchanger struct {
	cfg Config
	// build makes an MSAL client for a certificate (one per certificate:
	// MSAL's credential is fixed at construction).
	build func(*Certificate) (confidential.Client, error)
	cur   atomic.Pointer[credentialState]
	files *certWatcher // nil without CertificateFiles
}

// credentialState is the certificate in use and its MSAL client.
type credentialState struct {
	cert   *Certificate
	client confidential.Client
}

// Request is one exchange.
type Request struct {
	// Assertion is the user's token exactly as received (no "Bearer ").
	Assertion string
	// AssertionSHA256 is the SHA-256 of Assertion when the caller has it
	// already (caches key on it); zero means not known.
	AssertionSHA256 [32]byte
	// TenantID is the token's tid; exchanges for users of other allowed
	// tenants go to their own tenant.
	TenantID string
	// Scopes are the downstream scopes, e.g. api://orders/.default.
	Scopes []string
	// Claims is a claims challenge to satisfy (from a downstream 401), JSON.
	Claims string
	// Route labels metrics.
	Route string
}

// Token is a downstream access token.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
	// Source is where the token came from: SourceExchange here (MSAL's own
	// cache is kept empty: every call asks Entra); the caches in front set
	// theirs (package tokencache).
	Source string
	// Took is how long the exchange took (MSAL's call, retry included).
	Took time.Duration
}

// SourceExchange is the Source of a token this package got from Entra.
const SourceExchange = "exchange"

// tokenOf is the Token of MSAL's result.
func tokenOf(res confidential.AuthResult, took time.Duration) Token {
	return Token{AccessToken: res.AccessToken, ExpiresOn: res.ExpiresOn, Source: SourceExchange, Took: took}
}

// New builds the MSAL confidential client. It does not contact Entra.
func New(cfg Config) (*Exchanger, error) {
	if (cfg.Certificate == nil) == (cfg.Assertion == nil) || cfg.HTTPClient == nil || cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("obo: Config needs one of Certificate and Assertion, HTTPClient, TenantID and ClientID")
	}
	u, err := url.Parse(cfg.AuthorityHost)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("obo: authority host %q must be an https URL such as https://login.microsoftonline.com", cfg.AuthorityHost)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CertificateCheckInterval <= 0 {
		cfg.CertificateCheckInterval = 10 * time.Second
	}
	x := &Exchanger{cfg: cfg}
	if cfg.Assertion != nil {
		// One client for life: the callback gives a fresh assertion for
		// every call, so there is nothing to reload.
		client, err := clientFor(cfg, nil, confidential.WithCache(emptyCache{}))
		if err != nil {
			return nil, err
		}
		x.cur.Store(&credentialState{client: client})
		return x, nil
	}
	x.build = func(c *Certificate) (confidential.Client, error) {
		return clientFor(cfg, c, confidential.WithCache(emptyCache{}))
	}
	client, err := x.build(cfg.Certificate)
	if err != nil {
		return nil, err
	}
	x.cur.Store(&credentialState{cert: cfg.Certificate, client: client})
	cfg.Metrics.certificate(cfg.Certificate)
	if f := cfg.CertificateFiles; f != nil {
		x.files = newCertWatcher(*f, cfg.CertificateCheckInterval, time.Now)
	}
	return x, nil
}

// NewClient returns the MSAL confidential client the Exchanger would use
// for cert (or, when cert is nil, for cfg.Assertion): the same authority,
// HTTP client, instance discovery, region, x5c and client capabilities,
// with MSAL's own token cache. The gateway doctor asks Entra through it,
// so that its checks see what the gateway will.
func NewClient(cfg Config, cert *Certificate) (confidential.Client, error) {
	return clientFor(cfg, cert)
}

func clientFor(cfg Config, c *Certificate, extra ...confidential.Option) (confidential.Client, error) {
	if c == nil {
		if cfg.Assertion == nil {
			return confidential.Client{}, errors.New("obo: no credential: neither a certificate nor an assertion source")
		}
		assertion := cfg.Assertion
		cred := confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
			return assertion(ctx)
		})
		return newClient(cfg, cred, extra...)
	}
	cred, err := confidential.NewCredFromCert(c.Chain, c.Key)
	if err != nil {
		return confidential.Client{}, fmt.Errorf("obo: credential: %w", err)
	}
	return newClient(cfg, cred, extra...)
}

// newClient makes the MSAL confidential client.
func newClient(cfg Config, cred confidential.Credential, extra ...confidential.Option) (confidential.Client, error) {
	opts := []confidential.Option{
		confidential.WithHTTPClient(cfg.HTTPClient),
		confidential.WithInstanceDiscovery(cfg.InstanceDiscovery),
		// Never move OBO to a regional host, whatever MSAL_FORCE_REGION says.
		confidential.WithAzureRegion("DisableMsalForceRegion"),
	}
	// MSAL's in-memory OBO cache never evicts (~4.5 KiB per user token,
	// forever): New keeps it empty (emptyCache). The gateway's own bounded
	// cache (internal/tokencache) sits in front of the Exchanger.
	opts = append(opts, extra...)
	if cfg.SendX5C {
		opts = append(opts, confidential.WithX5C())
	}
	if len(cfg.ClientCapabilities) > 0 {
		opts = append(opts, confidential.WithClientCapabilities(cfg.ClientCapabilities))
	}
	authority := strings.TrimSuffix(cfg.AuthorityHost, "/") + "/" + cfg.TenantID
	client, err := confidential.New(authority, cfg.ClientID, cred, opts...)
	if err != nil {
		return confidential.Client{}, fmt.Errorf("obo: MSAL client: %w", err)
	}
	return client, nil
}

// Exchange gets a downstream token for the user of req.Assertion. Errors are *Error.
func (x *Exchanger) Exchange(ctx context.Context, req Request) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	var opts []confidential.AcquireOnBehalfOfOption
	if req.TenantID != "" && !strings.EqualFold(req.TenantID, x.cfg.TenantID) {
		opts = append(opts, confidential.WithTenantID(req.TenantID))
	}
	if req.Claims != "" {
		opts = append(opts, confidential.WithClaims(req.Claims))
	}
	x.reload(false)
	start := time.Now()
	state := x.cur.Load()
	res, err := state.client.AcquireTokenOnBehalfOf(ctx, req.Assertion, req.Scopes, opts...)
	if err != nil {
		// fromMSAL reads Entra's answer body: once per error, hence the two
		// exits below rather than one.
		e := fromMSAL(ctx, err)
		// Entra refused the certificate: if it was rotated on disk since the
		// last check, retry once with the new one.
		if credentialRefused(e) && x.reload(true) {
			x.cfg.Logger.Info("retrying the exchange with the reloaded certificate", "error_code", e.CodeLabel(), "route", req.Route)
			state = x.cur.Load()
			res, err = state.client.AcquireTokenOnBehalfOf(ctx, req.Assertion, req.Scopes, opts...)
			if err == nil {
				took := time.Since(start)
				x.cfg.Metrics.exchanged(ctx, req.Route, "success", "", took)
				return tokenOf(res, took), nil
			}
			e = fromMSAL(ctx, err)
		}
		x.cfg.Metrics.exchanged(ctx, req.Route, string(e.Class()), e.CodeLabel(), time.Since(start))
		return Token{}, e
	}
	took := time.Since(start)
	x.cfg.Metrics.exchanged(ctx, req.Route, "success", "", took)
	return tokenOf(res, took), nil
}

// Certificate is the certificate in use (nil for exchangers built without one).
func (x *Exchanger) Certificate() *Certificate { return x.cur.Load().cert }

// credentialRefused reports whether Entra refused the gateway's certificate
// in a way a rotation explains: not registered (yet/any more) or out of date.
func credentialRefused(e *Error) bool {
	switch e.AADSTS() {
	case 700027, 700024, 7000214, 1000502:
		return true
	}
	return false
}

// reload checks the certificate files (always when force, else at most once
// per interval) and switches to a changed certificate. It reports whether
// the certificate in use changed.
func (x *Exchanger) reload(force bool) bool {
	if x.files == nil {
		return false
	}
	cert, changed, err := x.files.check(force)
	if err != nil {
		x.cfg.Metrics.certificateReload("failure")
		x.cfg.Logger.Warn("certificate files changed but could not be loaded; keeping the certificate in use", "error", err)
		return false
	}
	if !changed {
		return false
	}
	old := x.cur.Load().cert
	if old != nil && old.Leaf().Equal(cert.Leaf()) {
		return false
	}
	client, err := x.build(cert)
	if err != nil {
		x.cfg.Metrics.certificateReload("failure")
		x.cfg.Logger.Warn("reloaded certificate refused by MSAL; keeping the certificate in use", "error", err)
		return false
	}
	x.cur.Store(&credentialState{cert: cert, client: client})
	x.cfg.Metrics.certificateReload("success")
	x.cfg.Metrics.certificate(cert)
	x.cfg.Logger.Info("certificate reloaded", "thumbprint_sha256", Thumbprint256Hex(cert.Leaf()),
		"not_after", cert.Leaf().NotAfter.UTC().Format(time.RFC3339))
	return true
}

// emptyCache is an MSAL cache accessor that empties MSAL's in-memory cache
// before every read and write, so it never holds more than the token being
// written. MSAL v1.10.1 resets its contract on Unmarshal of empty input; on
// any other failure it keeps working with what it has. Export does nothing:
// there is nothing to persist.
type emptyCache struct{}

func (emptyCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	_ = u.Unmarshal(nil)
	return nil
}

func (emptyCache) Export(context.Context, cache.Marshaler, cache.ExportHints) error { return nil }
