package obo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

const (
	// fakeUserAssertion and fakeClientAssertion stand for the user's token and
	// the gateway's signed client assertion in the request MSAL sent; neither
	// may reach an *Error.
	fakeUserAssertion   = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJGQUtFLVVTRVItQVNTRVJUSU9OIjoib2JvLXRlc3QifQ.ZmFrZS11c2VyLWFzc2VydGlvbi1zaWduYXR1cmU"
	fakeClientAssertion = "eyJ0eXAiOiJKV1QiLCJhbGciOiJQUzI1NiJ9.eyJGQUtFLUNMSUVOVC1BU1NFUlRJT04iOiJvYm8tdGVzdCJ9.ZmFrZS1jbGllbnQtYXNzZXJ0aW9uLXNpZ25hdHVyZQ"
	fakeTokenURL        = "https://login.microsoftonline.com/8eaef023-2b34-4da1-9baa-8bc8c9d6a490/oauth2/v2.0/token"
)

// fixture reads a file of testdata/entra-errors.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "entra-errors", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

// loggedResponse reads a fixture that records a response as log lines
// ("StatusCode: 429", "ResponseBody: …", "Headers: Name: value").
func loggedResponse(t *testing.T, name string) (int, http.Header, []byte) {
	t.Helper()
	status, hdr := 0, http.Header{}
	var body []byte
	sc := bufio.NewScanner(bytes.NewReader(fixture(t, name)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "StatusCode":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("fixture %s: status %q: %v", name, v, err)
			}
			status = n
		case "ResponseBody":
			body = []byte(v)
		case "Headers":
			hk, hv, ok := strings.Cut(v, ": ")
			if !ok {
				t.Fatalf("fixture %s: header line %q", name, v)
			}
			hdr.Add(hk, strings.TrimSpace(hv))
		}
	}
	if status == 0 || body == nil {
		t.Fatalf("fixture %s: no StatusCode or ResponseBody line", name)
	}
	return status, hdr, body
}

// msalCallErr builds the error MSAL returns for a non-2xx token response: a
// CallErr holding the request (its form carries the user's assertion and the
// client assertion) and the re-buffered response, wrapped as MSAL wraps it.
func msalCallErr(t *testing.T, status int, hdr http.Header, body []byte) error {
	t.Helper()
	form := url.Values{
		"grant_type":            {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"requested_token_use":   {"on_behalf_of"},
		"assertion":             {fakeUserAssertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {fakeClientAssertion},
		"scope":                 {"api://orders-api/.default openid offline_access profile"},
		"client_info":           {"1"},
	}
	enc := form.Encode()
	req, err := http.NewRequest(http.MethodPost, fakeTokenURL, strings.NewReader(enc))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("Content-Type") == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		hdr.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp := &http.Response{
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        hdr,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
	ce := msalerrors.CallErr{
		Req:  req,
		Resp: resp,
		Err: fmt.Errorf("http call(%s)(%s) error: reply status code was %d:\n%s",
			req.URL.String(), req.Method, status, strings.TrimSpace(string(body))),
	}
	return fmt.Errorf("%w", ce)
}

func TestFromMSALEntraErrorBodies(t *testing.T) {
	cases := []struct {
		name    string
		fixture string
		status  int
		header  http.Header
		logged  bool // the fixture is a logged response (status, body, headers)

		code, subError string
		codes          []int
		traceID        string
		correlationID  string
		claims         []string // substrings of Claims; nil means no claims
		retryAfter     time.Duration

		aadsts    int
		class     Class
		label     string
		httpOut   int    // Class().Status(): what the frontend gets
		hintHas   string // the hint is specific to the code
		errorText string
	}{
		{
			name: "50013 invalid signature", fixture: "AADSTS50013_invalid_grant_obo_invalid_signature_2018_PARTIAL.json", status: 400,
			code: "invalid_grant", codes: []int{50013}, traceID: "6161cc29-60c1-4264-8469-342152201c00",
			aadsts: 50013, class: ClassInvalidAssertion, label: "AADSTS50013", httpOut: 401,
			hintHas: "passed unchanged", errorText: "obo: Entra answered HTTP 400 invalid_grant AADSTS50013",
		},
		{
			name: "500133 assertion expired", fixture: "AADSTS500133_invalid_grant_assertion_expired_2024.json", status: 400,
			code: "invalid_grant", codes: []int{500133},
			traceID: "36ca6b7e-6af2-4b19-835d-42fe2ce61a00", correlationID: "70623480-4a75-4831-828b-631ef847d0b2",
			aadsts: 500133, class: ClassInvalidAssertion, label: "AADSTS500133", httpOut: 401,
			hintHas: "expired", errorText: "obo: Entra answered HTTP 400 invalid_grant AADSTS500133",
		},
		{
			name: "50076 MFA with claims", fixture: "AADSTS50076_invalid_grant_mfa_claims_suberror_2023.json", status: 400,
			code: "invalid_grant", subError: "basic_action", codes: []int{50076}, traceID: "GUID", correlationID: "GUID",
			claims: []string{`"capolids"`, `"essential":true`},
			aadsts: 50076, class: ClassInteraction, label: "AADSTS50076", httpOut: 401,
			hintHas: "MFA required", errorText: "obo: Entra answered HTTP 400 invalid_grant AADSTS50076",
		},
		{
			name: "50079 interaction_required with claims", fixture: "AADSTS50079_interaction_required_claims_capolids_suberror_2018.json", status: 400,
			code: "interaction_required", subError: "basic_action", codes: []int{50079},
			traceID: "5c8ce2fc-1720-45c1-899a-0a6d0e965600", correlationID: "e421d7f3-0160-4431-bc41-d675aa4007e8",
			claims: []string{`"capolids"`, "59866338-815e-41e6-9613-0ec6218e5c3d"},
			aadsts: 50079, class: ClassInteraction, label: "AADSTS50079", httpOut: 401,
			hintHas: "MFA registration", errorText: "obo: Entra answered HTTP 400 interaction_required AADSTS50079",
		},
		{
			name: "65001 consent required", fixture: "AADSTS65001_invalid_grant_consent_required_2019.json", status: 400,
			code: "invalid_grant", subError: "consent_required", codes: []int{65001},
			traceID: "7979ed8a-3959-4be5-9206-ce16f12a5900", correlationID: "73d7243c-43ba-4d8a-865a-0b8957def6c6",
			aadsts: 65001, class: ClassConsent, label: "AADSTS65001", httpOut: 403,
			hintHas: "admin consent", errorText: "obo: Entra answered HTTP 400 invalid_grant AADSTS65001",
		},
		{
			name: "700027 client assertion key not found", fixture: "AADSTS700027_invalid_client_assertion_key_not_found_2021.json", status: 401,
			code: "invalid_client", codes: []int{700027},
			traceID: "69614a63-47ba-4e4d-83ee-9ade62ff1600", correlationID: "ae66f807-0e16-448b-b0f8-6a5d6e6bd334",
			aadsts: 700027, class: ClassGateway, label: "AADSTS700027", httpOut: 502,
			hintHas: "upload the certificate", errorText: "obo: Entra answered HTTP 401 invalid_client AADSTS700027",
		},
		{
			name: "7000215 invalid client secret", fixture: "AADSTS7000215_invalid_client_secret_2020.json", status: 401,
			code: "invalid_client", codes: []int{7000215},
			traceID: "b179b7db-c957-4917-a1b6-66fab2042a00", correlationID: "4cfc9c81-660f-4a1a-ba0b-87db205c5461",
			aadsts: 7000215, class: ClassGateway, label: "AADSTS7000215", httpOut: 502,
			hintHas: "secret's value", errorText: "obo: Entra answered HTTP 401 invalid_client AADSTS7000215",
		},
		{
			name: "70011 invalid scope", fixture: "AADSTS70011_invalid_scope_entra-docs_client-credentials.json", status: 400,
			code: "invalid_scope", codes: []int{70011},
			traceID: "255d1aef-8c98-452f-ac51-23d051240864", correlationID: "fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7",
			aadsts: 70011, class: ClassGateway, label: "AADSTS70011", httpOut: 502,
			hintHas: "/.default", errorText: "obo: Entra answered HTTP 400 invalid_scope AADSTS70011",
		},
		{
			// The last code is the specific one: 70002 is the generic
			// "error validating credentials".
			name: "70002 then 500133", fixture: "AADSTS70002_500133_invalid_grant_two_codes_2018.json", status: 400,
			code: "invalid_grant", codes: []int{70002, 500133},
			traceID: "34a47217-50f3-4a88-aaff-e91feffa1100", correlationID: "b823c2c0-55df-4131-b9ab-6192fb5f5bd8",
			aadsts: 500133, class: ClassInvalidAssertion, label: "AADSTS500133", httpOut: 401,
			hintHas: "expired", errorText: "obo: Entra answered HTTP 400 invalid_grant AADSTS500133",
		},
		{
			name: "429 plain-text body with Retry-After", fixture: "HTTP429_token_endpoint_plaintext_body_2021.txt", logged: true,
			retryAfter: 60 * time.Second,
			class:      ClassUnavailable, label: "http_429", httpOut: 503,
			hintHas: "throttling", errorText: "obo: Entra answered HTTP 429",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, hdr, body := tc.status, tc.header, []byte(nil)
			if tc.logged {
				status, hdr, body = loggedResponse(t, tc.fixture)
				if status != http.StatusTooManyRequests {
					t.Fatalf("fixture status = %d; want 429", status)
				}
			} else {
				body = fixture(t, tc.fixture)
			}
			e := fromMSAL(context.Background(), msalCallErr(t, status, hdr, body))

			if e.Status != status {
				t.Errorf("Status = %d; want %d", e.Status, status)
			}
			if e.Code != tc.code || e.SubError != tc.subError {
				t.Errorf("Code, SubError = %q, %q; want %q, %q", e.Code, e.SubError, tc.code, tc.subError)
			}
			if !slices.Equal(e.Codes, tc.codes) {
				t.Errorf("Codes = %v; want %v", e.Codes, tc.codes)
			}
			if e.AADSTS() != tc.aadsts {
				t.Errorf("AADSTS() = %d; want %d", e.AADSTS(), tc.aadsts)
			}
			if e.TraceID != tc.traceID || e.CorrelationID != tc.correlationID {
				t.Errorf("TraceID, CorrelationID = %q, %q; want %q, %q", e.TraceID, e.CorrelationID, tc.traceID, tc.correlationID)
			}
			if tc.claims == nil && e.Claims != "" {
				t.Errorf("Claims = %q; want none", e.Claims)
			}
			for _, want := range tc.claims {
				if !strings.Contains(e.Claims, want) {
					t.Errorf("Claims = %q; want it to contain %s", e.Claims, want)
				}
			}
			if e.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v; want %v", e.RetryAfter, tc.retryAfter)
			}
			if e.Timeout {
				t.Error("Timeout is set for an answer from Entra")
			}
			if got := e.Class(); got != tc.class {
				t.Errorf("Class() = %q; want %q", got, tc.class)
			}
			if got := e.Class().Status(); got != tc.httpOut {
				t.Errorf("Class().Status() = %d; want %d", got, tc.httpOut)
			}
			if got := e.CodeLabel(); got != tc.label {
				t.Errorf("CodeLabel() = %q; want %q", got, tc.label)
			}
			assertSpecificHint(t, e, tc.hintHas)
			if got := e.Error(); !strings.HasPrefix(got, tc.errorText) {
				t.Errorf("Error() = %q; want prefix %q", got, tc.errorText)
			}
			if e.Err == nil || !strings.Contains(e.Err.Error(), strconv.Itoa(status)) {
				t.Errorf("Err = %v; want the sanitised cause naming HTTP %d", e.Err, status)
			}
			var ce msalerrors.CallErr
			if errors.As(e, &ce) {
				t.Error("*Error unwraps to MSAL's CallErr, which carries the request")
			}
			assertNoSecrets(t, e)
		})
	}
}

// TestFromMSALResponseHeaders covers what fromMSAL takes from headers when
// the body lacks it: the trace ID (x-ms-request-id) and an HTTP-date Retry-After.
func TestFromMSALResponseHeaders(t *testing.T) {
	hdr := http.Header{}
	hdr.Set("x-ms-request-id", "0b6e3c1e-1f7a-4d7e-9b0a-5d3c2a1b0f00")
	hdr.Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
	e := fromMSAL(context.Background(), msalCallErr(t, http.StatusServiceUnavailable, hdr, []byte("Service Unavailable")))
	if e.TraceID != "0b6e3c1e-1f7a-4d7e-9b0a-5d3c2a1b0f00" {
		t.Errorf("TraceID = %q; want the x-ms-request-id header", e.TraceID)
	}
	if e.RetryAfter <= 20*time.Second || e.RetryAfter > 30*time.Second {
		t.Errorf("RetryAfter = %v; want about 30s from the HTTP date", e.RetryAfter)
	}
	if e.Class() != ClassUnavailable || e.CodeLabel() != "http_503" {
		t.Errorf("Class, CodeLabel = %q, %q; want unavailable, http_503", e.Class(), e.CodeLabel())
	}
	assertNoSecrets(t, e)
}

func TestFromMSALTransportErrors(t *testing.T) {
	// MSAL wraps the *url.Error of http.Client.Do so.
	transport := func(err error) error {
		return fmt.Errorf("server response error:\n %w", &url.Error{Op: "Post", URL: fakeTokenURL, Err: err})
	}
	refused := &net.OpError{
		Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9},
		Err:  &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED},
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()

	cases := []struct {
		name    string
		ctx     context.Context
		err     error
		timeout bool
		class   Class
		label   string
		errHas  string // substring of Error()
		is      error  // errors.Is(*Error, is), when set
	}{
		{
			name: "context deadline exceeded", ctx: context.Background(), err: transport(context.DeadlineExceeded),
			timeout: true, class: ClassUnavailable, label: "timeout", errHas: "deadline exceeded", is: context.DeadlineExceeded,
		},
		{
			name: "bare context deadline exceeded", ctx: context.Background(), err: context.DeadlineExceeded,
			timeout: true, class: ClassUnavailable, label: "timeout", is: context.DeadlineExceeded,
		},
		{
			name: "exchange context expired", ctx: expired, err: transport(errors.New("net/http: request canceled")),
			timeout: true, class: ClassUnavailable, label: "timeout", is: context.DeadlineExceeded,
		},
		{
			name: "connection refused", ctx: context.Background(), err: transport(refused),
			class: ClassUnavailable, label: "network", errHas: "connection refused",
		},
		{
			name: "dial timeout", ctx: context.Background(), err: transport(&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}),
			timeout: true, class: ClassUnavailable, label: "timeout",
		},
		{
			name: "host name does not exist", ctx: context.Background(),
			err:   transport(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "login.microsoftonline.com", IsNotFound: true}}),
			class: ClassGateway, label: "dns", errHas: "no such host",
		},
		{
			name: "temporary DNS failure", ctx: context.Background(),
			err:   transport(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "login.microsoftonline.com", IsTemporary: true}}),
			class: ClassUnavailable, label: "network", errHas: "server misbehaving",
		},
		{
			name: "certificate of an unknown authority", ctx: context.Background(),
			err:   transport(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			class: ClassGateway, label: "tls", errHas: "certificate",
		},
		{
			name: "connection dropped", ctx: context.Background(), err: transport(io.EOF),
			class: ClassUnavailable, label: "network", errHas: "EOF",
		},
		{
			name: "context canceled", ctx: context.Background(), err: transport(context.Canceled),
			class: ClassUnavailable, label: "other", is: context.Canceled,
		},
		{
			name: "MSAL local error", ctx: context.Background(),
			err:   errors.New("token response failed because declined scopes are present: api://orders-api/Orders.Read"),
			class: ClassGateway, label: "other", errHas: "declined scopes",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := fromMSAL(tc.ctx, tc.err)
			if e.Status != 0 {
				t.Errorf("Status = %d; want 0 (no answer)", e.Status)
			}
			if e.Timeout != tc.timeout {
				t.Errorf("Timeout = %v; want %v", e.Timeout, tc.timeout)
			}
			if got := e.Class(); got != tc.class {
				t.Errorf("Class() = %q; want %q", got, tc.class)
			}
			if got := e.CodeLabel(); got != tc.label {
				t.Errorf("CodeLabel() = %q; want %q", got, tc.label)
			}
			if e.Err == nil {
				t.Fatal("Err is nil")
			}
			if tc.errHas != "" && !strings.Contains(e.Error(), tc.errHas) {
				t.Errorf("Error() = %q; want it to contain %q", e.Error(), tc.errHas)
			}
			if tc.is != nil && !errors.Is(e, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", e, tc.is)
			}
			if e.Hint() == "" {
				t.Error("Hint() is empty")
			}
			assertNoSecrets(t, e)
		})
	}
}

// assertSpecificHint checks that the hint is the catalogue's entry for the
// code (not the class's generic hint) and says what to do.
func assertSpecificHint(t *testing.T, e *Error, want string) {
	t.Helper()
	hint := e.Hint()
	if hint == "" {
		t.Fatal("Hint() is empty")
	}
	if !strings.Contains(hint, want) {
		t.Errorf("Hint() = %q; want it to mention %q", hint, want)
	}
	entry, ok := Lookup(e.AADSTS())
	switch {
	case e.AADSTS() == 0:
		if hint != e.Class().hint() {
			t.Errorf("Hint() = %q; want the class hint %q", hint, e.Class().hint())
		}
	case !ok:
		t.Errorf("AADSTS%d is not in the catalogue", e.AADSTS())
	case hint != entry.Hint || hint == e.Class().hint():
		t.Errorf("Hint() = %q; want the catalogue's hint for AADSTS%d", hint, e.AADSTS())
	case entry.Class != e.Class():
		t.Errorf("catalogue class %q differs from Class() %q", entry.Class, e.Class())
	}
}

// assertNoSecrets checks that no rendering of the error carries the user's
// assertion or the client assertion from the request.
func assertNoSecrets(t *testing.T, e *Error) {
	t.Helper()
	renderings := map[string]string{
		"Error()":     e.Error(),
		"%+v":         fmt.Sprintf("%+v", e),
		"%#v":         fmt.Sprintf("%#v", e),
		"Description": e.Description,
		"Claims":      e.Claims,
	}
	if e.Err != nil {
		renderings["Err"] = e.Err.Error()
		renderings["Err %#v"] = fmt.Sprintf("%#v", e.Err)
	}
	for what, s := range renderings {
		for _, secret := range []string{fakeUserAssertion, fakeClientAssertion, "FAKE-USER", "ZmFrZS11c2Vy", "ZmFrZS1jbGllbnQ"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s carries an assertion from the request", what)
			}
		}
	}
}

func TestSanitizeMSALWithholdsTokens(t *testing.T) {
	leak := `json: cannot unmarshal: {"access_token":"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.sig","refresh_token":"1.AR-secret"}`
	e := fromMSAL(context.Background(), errors.New(leak))
	if strings.Contains(e.Error(), "eyJ") || strings.Contains(e.Error(), "1.AR-secret") {
		t.Fatalf("error keeps the tokens: %q", e.Error())
	}
	long := strings.Repeat("x", 1000)
	if got := fromMSAL(context.Background(), errors.New(long)).Error(); len(got) > 400 {
		t.Errorf("message not bounded: %d bytes", len(got))
	}
}
