package fakeentra_test

// Helpers of the acceptance tests (msal_test.go, mistakes_test.go,
// fidelity_test.go). They are prefixed "acc" so that they cannot clash with
// other tests of the package.
//
// The JWT code here is written for the tests alone: it shares nothing with
// the tenant's jose.go, so that the tenant's checks are examined by
// independent code.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// accEnv is a running tenant and an HTTP client that trusts it.
type accEnv struct {
	srv    *fakeentra.Server
	client *http.Client
}

// accStart starts a tenant for one test (the demo tenant when cfg.Tenant is
// nil) in a fresh temporary directory, and closes it when the test ends.
func accStart(t *testing.T, cfg fakeentra.Config) *accEnv {
	t.Helper()
	srv := fakeentratest.Start(t, cfg)
	client := srv.HTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	return &accEnv{srv: srv, client: client}
}

// tokenEndpoint is the v2 (ver 2) or v1 (ver 1) token endpoint of tenantID,
// spelled out here rather than asked of the server, so that a wrong
// TokenEndpoint() would show.
func (e *accEnv) tokenEndpoint(tenantID string, ver int) string {
	if ver == 1 {
		return e.srv.URL() + "/" + tenantID + "/oauth2/token"
	}
	return e.srv.URL() + "/" + tenantID + "/oauth2/v2.0/token"
}

// accResp is a token endpoint's answer.
type accResp struct {
	status int
	header http.Header
	body   []byte
}

// post sends a form to a token endpoint, with extra headers.
func (e *accEnv) post(t *testing.T, endpoint string, form url.Values, hdr http.Header) accResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s: %v", endpoint, err)
	}
	return accResp{status: resp.StatusCode, header: resp.Header, body: body}
}

// accEntraError is Entra's token-endpoint error body.
type accEntraError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	SubError         string `json:"suberror"`
	Claims           string `json:"claims"`
}

// accWantError checks that r is Entra's answer to a mistake: the HTTP status,
// the OAuth error, the AADSTS code as the only entry of error_codes and at
// the start of error_description, and the trace fields (timestamp, trace and
// correlation IDs, also in the description; error_uri naming the code).
func accWantError(t *testing.T, r accResp, status int, oauthErr string, code int) accEntraError {
	t.Helper()
	var e accEntraError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d, body is not JSON: %v", r.status, err)
	}
	if r.status != status || e.Error != oauthErr || !slices.Equal(e.ErrorCodes, []int{code}) {
		t.Fatalf("got %d %s %v (%s); want %d %s [%d]",
			r.status, e.Error, e.ErrorCodes, e.ErrorDescription, status, oauthErr, code)
	}
	if want := fmt.Sprintf("AADSTS%d: ", code); !strings.HasPrefix(e.ErrorDescription, want) {
		t.Fatalf("error_description %q does not start with %q", e.ErrorDescription, want)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	for name, v := range map[string]string{"timestamp": e.Timestamp, "trace_id": e.TraceID, "correlation_id": e.CorrelationID} {
		if v == "" {
			t.Errorf("error body has no %s", name)
		}
	}
	if !strings.Contains(e.ErrorDescription, "Trace ID: "+e.TraceID) || !strings.Contains(e.ErrorDescription, "Correlation ID: "+e.CorrelationID) {
		t.Errorf("error_description does not carry the trace and correlation IDs of the body")
	}
	if want := fmt.Sprintf("/error?code=%d", code); !strings.HasSuffix(e.ErrorURI, want) {
		t.Errorf("error_uri %q does not end with %q", e.ErrorURI, want)
	}
	return e
}

// accWantSuccess checks that r is a 200 token response and returns it. On
// failure it prints the error and its description, never a token.
func accWantSuccess(t *testing.T, r accResp) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		var e accEntraError
		_ = json.Unmarshal(r.body, &e)
		t.Fatalf("got %d %s %v (%s); want 200", r.status, e.Error, e.ErrorCodes, e.ErrorDescription)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", m["token_type"])
	}
	if at, _ := m["access_token"].(string); strings.Count(at, ".") != 2 {
		t.Fatalf("access_token is not a compact JWS")
	}
	return m
}

// accB64 is the JOSE base64url alphabet without padding.
var accB64 = base64.RawURLEncoding

// accWantClaims checks string claims of a token payload; a want of "" means
// the claim must be absent.
func accWantClaims(t *testing.T, payload map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		got, present := payload[k]
		switch {
		case w == "" && present:
			t.Errorf("claim %s = %v, want it absent", k, got)
		case w != "" && got != w:
			t.Errorf("claim %s = %v, want %q", k, got, w)
		}
	}
}

// accStrings reads a claim that is a JSON array of strings.
func accStrings(payload map[string]any, k string) []string {
	arr, _ := payload[k].([]any)
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// accCred is an app's certificate credential: what the portal's
// "Certificates" holds (cert) and what the app keeps (key).
type accCred struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  []byte // certificate then key, as confidential.CertFromPEM takes them
}

// accLoadCred reads the credential the tenant generated for app.
func accLoadCred(t *testing.T, srv *fakeentra.Server, app string) accCred {
	t.Helper()
	info, ok := srv.Info().Apps[app]
	if !ok || info.CertificateFile == "" || info.KeyFile == "" {
		t.Fatalf("app %q has no generated credential in Info()", app)
	}
	certPEM, err := os.ReadFile(info.CertificateFile)
	if err != nil {
		t.Fatalf("read certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(info.KeyFile)
	if err != nil {
		t.Fatalf("read key: %v", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatalf("credential files of %q are not PEM", app)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatalf("parse key: %v", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("key of %q is %T, want RSA", app, k)
	}
	return accCred{cert: cert, key: key, pem: append(append([]byte{}, certPEM...), keyPEM...)}
}

// accX5tS256 is the x5t#S256 header value: standard base64 of the SHA-256 of
// the certificate DER (what MSAL sends).
func accX5tS256(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return base64.StdEncoding.EncodeToString(h[:])
}

// accX5t is the x5t header value: base64url of the SHA-1 of the certificate DER.
func accX5t(c *x509.Certificate) string {
	h := sha1.Sum(c.Raw) //nolint:gosec
	return accB64.EncodeToString(h[:])
}

// accHexThumbprintSHA1 is the thumbprint as the portal shows it: uppercase hex SHA-1.
func accHexThumbprintSHA1(c *x509.Certificate) string {
	h := sha1.Sum(c.Raw) //nolint:gosec
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// accClientAssertion builds a certificate client assertion the documented
// way: RS256, x5t#S256 of the certificate, aud the token endpoint, iss = sub
// = the client ID, a jti, nbf now and exp in 10 minutes. edit, when not nil,
// changes the header or the claims before signing, to reproduce a mistake.
func accClientAssertion(t *testing.T, cred accCred, clientID, aud string, edit func(header, claims map[string]any)) string {
	t.Helper()
	now := time.Now()
	header := map[string]any{"alg": "RS256", "typ": "JWT", "x5t#S256": accX5tS256(cred.cert)}
	claims := map[string]any{
		"aud": aud, "iss": clientID, "sub": clientID,
		"jti": accGUID(t), "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(header, claims)
	}
	return testkit.SignJWT(t, cred.key, header, claims)
}

// accGUID returns a random version-4 GUID.
func accGUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// accGUIDPattern matches a GUID in its usual 8-4-4-4-12 form.
var accGUIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Grant types and the client-assertion type, spelled as Entra spells them.
const (
	accGrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	accGrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	accAssertionType      = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// accCertForm is a form authenticated by a certificate client assertion.
func accCertForm(clientID, clientAssertion string, fields ...string) url.Values {
	f := accForm(fields...)
	f.Set("client_id", clientID)
	f.Set("client_assertion_type", accAssertionType)
	f.Set("client_assertion", clientAssertion)
	return f
}

// accForm builds a form from key, value pairs.
func accForm(kv ...string) url.Values {
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// accOBOFields are the fields of an on-behalf-of request, before the client's credential.
func accOBOFields(assertion, scope string) []string {
	return []string{
		"grant_type", accGrantJWTBearer,
		"requested_token_use", "on_behalf_of",
		"assertion", assertion,
		"scope", scope,
	}
}

// gwEnv is a running tenant (the demo tenant when ten is nil) with the
// gateway app's certificate credential, for the requests the gateway makes.
type gwEnv struct {
	*accEnv
	ep string // the demo tenant's v2 token endpoint
	gw accCred
}

func gwStart(t *testing.T, ten *fakeentra.Tenant) *gwEnv {
	t.Helper()
	env := accStart(t, fakeentra.Config{Tenant: ten})
	return &gwEnv{accEnv: env, ep: env.tokenEndpoint(fakeentra.DemoTenantID, 2), gw: accLoadCred(t, env.srv, "gateway")}
}

// userToken is alice's token for the gateway (as the frontend gets it).
func (e *gwEnv) userToken(t *testing.T, opt fakeentra.UserTokenOptions) string {
	t.Helper()
	tok, err := e.srv.UserToken(accAlice, accGatewayScope, opt)
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	return tok
}

// obo asks, as the gateway with its certificate, for scope on behalf of
// the user of assertion.
func (e *gwEnv) obo(t *testing.T, assertion, scope string, extra ...string) accResp {
	t.Helper()
	ca := accClientAssertion(t, e.gw, fakeentra.DemoGatewayClientID, e.ep, nil)
	return e.post(t, e.ep, accCertForm(fakeentra.DemoGatewayClientID, ca, append(accOBOFields(assertion, scope), extra...)...), nil)
}

// clientCredentials asks, as the gateway, for orders-api with the client
// assertion given.
func (e *gwEnv) clientCredentials(t *testing.T, clientAssertion string) accResp {
	t.Helper()
	return e.post(t, e.ep, accCertForm(fakeentra.DemoGatewayClientID, clientAssertion,
		"grant_type", "client_credentials", "scope", "api://orders-api/.default"), nil)
}

// secret asks, as the gateway with the secret given, for orders-api.
func (e *gwEnv) secret(t *testing.T, secret string, hdr http.Header) accResp {
	t.Helper()
	return e.post(t, e.ep, accForm("grant_type", "client_credentials", "client_id", fakeentra.DemoGatewayClientID,
		"client_secret", secret, "scope", "api://orders-api/.default"), hdr)
}
