// Package fedcred gives the gateway's client assertions when it proves
// itself to Entra with a federated credential instead of a certificate:
//
//   - TokenFile: the Kubernetes service-account token that AKS workload
//     identity projects into the pod (AZURE_FEDERATED_TOKEN_FILE). The
//     kubelet rewrites the file well before the token expires, so it is
//     read again for every assertion;
//   - ManagedIdentity: a managed identity's token for the token-exchange
//     audience, from MSAL Go's managed identity client (which caches it
//     until shortly before it expires).
//
// Entra checks the assertion against the app registration's federated
// identity credentials (issuer, subject, audience). Nothing here verifies
// the assertion's signature: the gateway is its bearer, not its audience.
// Its exp is read only to fail early, with a clear reason, and to export
// the credential's expiry as a metric.
package fedcred

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// The kinds of federated credential, as entra.credential names them.
const (
	KindWorkloadIdentity = "workload_identity"
	KindManagedIdentity  = "managed_identity"
)

// The token-exchange audiences: what a federated credential's assertion
// must be issued for, by cloud.
const (
	AudiencePublic = "api://AzureADTokenExchange"
	AudienceUSGov  = "api://AzureADTokenExchangeUSGov"
	AudienceChina  = "api://AzureADTokenExchangeChina"
)

// Audience is the token-exchange audience of the cloud whose Entra host is
// authorityHost: the US Government's and China's have their own, every
// other host (the public cloud, the local tenant) the public one.
func Audience(authorityHost string) string {
	h := strings.ToLower(authorityHost)
	switch {
	case strings.Contains(h, "login.microsoftonline.us"):
		return AudienceUSGov
	case strings.Contains(h, "login.chinacloudapi.cn"), strings.Contains(h, "login.partner.microsoftonline.cn"):
		return AudienceChina
	}
	return AudiencePublic
}

// Error is why no assertion could be had. Reason is short and fixed (a
// metric label): "unreadable", "empty", "not_a_jwt", "expired",
// "unavailable".
type Error struct {
	Kind   string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("fedcred: %s credential: %s: %v", e.Kind, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// CredentialFailure marks the error as the gateway's own credential's,
// for the exchange's error classes (obo), without an import.
func (e *Error) CredentialFailure() string { return e.Kind + ": " + e.Reason }

// Metrics are the federated credential's metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	expiry   *prometheus.GaugeVec
	failures *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		expiry: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "obo_gateway_client_assertion_expiry_timestamp_seconds",
			Help: "Unix time at which the federated client assertion last obtained (workload identity token, managed identity token) expires, by kind.",
		}, []string{"kind"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_client_assertion_failures_total",
			Help: "Failures to obtain the federated client assertion, by kind and reason (unreadable, empty, not_a_jwt, expired, unavailable).",
		}, []string{"kind", "reason"}),
	}
}

// init0 makes the kind's series exist from the start, at zero.
func (m *Metrics) init0(kind string, reasons ...string) {
	if m == nil {
		return
	}
	for _, r := range reasons {
		m.failures.WithLabelValues(kind, r)
	}
}

func (m *Metrics) got(kind string, exp time.Time) {
	if m != nil && !exp.IsZero() {
		m.expiry.WithLabelValues(kind).Set(float64(exp.Unix()))
	}
}

func (m *Metrics) failed(kind, reason string) {
	if m != nil {
		m.failures.WithLabelValues(kind, reason).Inc()
	}
}

// lastError keeps the last attempt's failure, for readiness.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// maxTokenFile bounds what is read of the token file: a service-account
// token is about a kilobyte.
const maxTokenFile = 64 << 10

// TokenFile reads the workload identity's token from a file for every
// assertion.
type TokenFile struct {
	path    string
	metrics *Metrics
	now     func() time.Time
	last    lastError
}

// TokenFileConfig configures a TokenFile.
type TokenFileConfig struct {
	// Path is the token file (AZURE_FEDERATED_TOKEN_FILE). Required.
	Path    string
	Metrics *Metrics
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// NewTokenFile returns the assertion source reading cfg.Path. It does not
// read the file yet.
func NewTokenFile(cfg TokenFileConfig) (*TokenFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("fedcred: the token file's path is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Metrics.init0(KindWorkloadIdentity, "unreadable", "empty", "not_a_jwt", "expired")
	return &TokenFile{path: cfg.Path, metrics: cfg.Metrics, now: cfg.Now}, nil
}

// Path is the file read.
func (f *TokenFile) Path() string { return f.path }

// Assertion reads the file and returns the token in it.
func (f *TokenFile) Assertion(context.Context) (string, error) {
	tok, exp, err := f.read()
	f.last.set(err)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			f.metrics.failed(KindWorkloadIdentity, fe.Reason)
		}
		return "", err
	}
	f.metrics.got(KindWorkloadIdentity, exp)
	return tok, nil
}

// Check reads the file as Assertion does, without counting a failure: for
// readiness and the doctor. It returns the token's claims.
func (f *TokenFile) Check() (Claims, error) {
	tok, _, err := f.read()
	if err != nil {
		return Claims{}, err
	}
	return ParseClaims(tok)
}

// Err is the last assertion's failure, or nil.
func (f *TokenFile) Err() error { return f.last.get() }

func (f *TokenFile) read() (string, time.Time, error) {
	fail := func(reason string, err error) (string, time.Time, error) {
		return "", time.Time{}, &Error{Kind: KindWorkloadIdentity, Reason: reason, Err: err}
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return fail("unreadable", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxTokenFile+1))
	if err != nil {
		return fail("unreadable", err)
	}
	if len(data) > maxTokenFile {
		return fail("not_a_jwt", fmt.Errorf("%s is larger than %d bytes", f.path, maxTokenFile))
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return fail("empty", fmt.Errorf("%s is empty", f.path))
	}
	c, err := ParseClaims(tok)
	if err != nil {
		return fail("not_a_jwt", fmt.Errorf("%s: %w", f.path, err))
	}
	if !c.Expiry.IsZero() && !f.now().Before(c.Expiry) {
		return fail("expired", fmt.Errorf("the token in %s expired at %s (the kubelet should have rewritten it: is the projected volume mounted?)",
			f.path, c.Expiry.UTC().Format(time.RFC3339)))
	}
	return tok, c.Expiry, nil
}

// Claims are what an assertion says of itself, read without verifying it
// (Entra verifies it): for messages, metrics and the doctor, never for a
// decision about a request.
type Claims struct {
	Issuer    string
	Subject   string
	Audiences []string
	Expiry    time.Time
	NotBefore time.Time
}

// ParseClaims reads the claims of a compact JWS without verifying it
// (jwt.ParseInsecure: the gateway's JOSE library, not a parser of its own).
func ParseClaims(tok string) (Claims, error) {
	if strings.Count(tok, ".") != 2 {
		return Claims{}, errors.New("not a JWT (three base64url parts separated by dots)")
	}
	t, err := jwt.ParseInsecure([]byte(tok))
	if err != nil {
		return Claims{}, fmt.Errorf("not a JWT: %w", err)
	}
	return Claims{Issuer: t.Issuer(), Subject: t.Subject(), Audiences: t.Audience(),
		Expiry: t.Expiration(), NotBefore: t.NotBefore()}, nil
}

// ManagedIdentity gets the managed identity's token for the token-exchange
// audience through MSAL Go's managed identity client, which finds the
// identity's endpoint from the environment (IMDS on a VM or AKS node, App
// Service's IDENTITY_ENDPOINT and IDENTITY_HEADER, Azure Arc…) and caches
// the token until shortly before it expires.
type ManagedIdentity struct {
	client   managedidentity.Client
	audience string
	metrics  *Metrics
	last     lastError
}

// ManagedIdentityConfig configures a ManagedIdentity.
type ManagedIdentityConfig struct {
	// ClientID is a user-assigned identity's client ID; "" is the
	// system-assigned identity.
	ClientID string
	// Audience is the token-exchange audience (Audience). Required.
	Audience string
	// HTTPClient talks to the identity endpoint; nil is MSAL's default.
	HTTPClient *http.Client
	Metrics    *Metrics
}

// NewManagedIdentity builds the managed identity client. It contacts
// nothing.
func NewManagedIdentity(cfg ManagedIdentityConfig) (*ManagedIdentity, error) {
	if cfg.Audience == "" {
		return nil, errors.New("fedcred: the managed identity's token audience is required")
	}
	id := managedidentity.SystemAssigned()
	if cfg.ClientID != "" {
		id = managedidentity.UserAssignedClientID(cfg.ClientID)
	}
	var opts []managedidentity.ClientOption
	if cfg.HTTPClient != nil {
		opts = append(opts, managedidentity.WithHTTPClient(cfg.HTTPClient))
	}
	c, err := managedidentity.New(id, opts...)
	if err != nil {
		return nil, fmt.Errorf("fedcred: managed identity client: %w", err)
	}
	cfg.Metrics.init0(KindManagedIdentity, "unavailable")
	return &ManagedIdentity{client: c, audience: cfg.Audience, metrics: cfg.Metrics}, nil
}

// Assertion returns the managed identity's token for the audience.
func (m *ManagedIdentity) Assertion(ctx context.Context) (string, error) {
	res, err := m.client.AcquireToken(ctx, m.audience)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (its own timeout or cancellation): not the
			// identity's failure, neither counted nor kept for readiness.
			return "", fmt.Errorf("fedcred: managed identity token: %w", ctx.Err())
		}
		e := &Error{Kind: KindManagedIdentity, Reason: "unavailable", Err: errors.New(obo.SanitizeMSAL(err.Error()))}
		m.last.set(e)
		m.metrics.failed(KindManagedIdentity, e.Reason)
		return "", e
	}
	m.last.set(nil)
	m.metrics.got(KindManagedIdentity, res.ExpiresOn)
	return res.AccessToken, nil
}

// Err is the last assertion's failure, or nil.
func (m *ManagedIdentity) Err() error { return m.last.get() }
