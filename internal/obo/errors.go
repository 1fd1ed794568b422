package obo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// codeCredential is the Code of an exchange that failed before Entra was
// asked: the gateway could not get its own client assertion. It is
// unavailable (503), not the user's fault.
const codeCredential = "credential_unavailable"

// Error is a failed exchange, with what Entra said. It never holds the
// user's token or the gateway's credential.
type Error struct {
	// Status is Entra's HTTP status; 0 when no answer came (network, timeout).
	Status        int
	Code          string // OAuth error: invalid_grant, interaction_required, …
	SubError      string // consent_required, basic_action, …
	Codes         []int  // AADSTS codes
	Description   string // Entra's error_description (no secrets; for logs)
	TraceID       string
	CorrelationID string
	// Claims is the claims challenge (JSON) of interaction_required answers.
	Claims string
	// RetryAfter is Entra's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Timeout is set when the exchange ran out of time.
	Timeout bool
	// Err is the cause, sanitised: never MSAL's raw error, which embeds the request.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.Err != nil:
		return "obo: token request failed: " + e.Err.Error()
	case e.AADSTS() != 0:
		return fmt.Sprintf("obo: Entra answered HTTP %d %s AADSTS%d", e.Status, e.Code, e.AADSTS())
	default:
		return strings.TrimSpace(fmt.Sprintf("obo: Entra answered HTTP %d %s", e.Status, e.Code))
	}
}

func (e *Error) Unwrap() error { return e.Err }

// AADSTS is the last (most specific) AADSTS code, or 0: Entra lists a
// generic code before the specific one, e.g. [70002, 500133].
func (e *Error) AADSTS() int {
	if len(e.Codes) == 0 {
		return 0
	}
	return e.Codes[len(e.Codes)-1]
}

// CodeLabel is the metric label for the error: "AADSTS50013", "http_429",
// "timeout", "dns", "tls", "network" or "other".
func (e *Error) CodeLabel() string {
	switch {
	case e.AADSTS() != 0:
		return "AADSTS" + strconv.Itoa(e.AADSTS())
	case e.Code == codeCredential:
		return "credential"
	case e.Timeout:
		return "timeout"
	case e.Status != 0:
		return "http_" + strconv.Itoa(e.Status)
	}
	if k := e.Unreachable(); k != "" {
		return k
	}
	return "other"
}

// Unreachable says why no answer came from Entra at all, or "" when one
// came (or the failure was not the network's):
//   - "dns": the host's name does not exist (NXDOMAIN): a wrong authority
//     host, or a host only Microsoft's network knows (instance discovery);
//   - "tls": Entra's certificate is not trusted: a TLS-inspecting proxy
//     whose CA is not in entra.ca_file;
//   - "network": the connection failed otherwise (refused, reset, a
//     temporary DNS failure): Entra, or the way to it, is down.
//
// The first two are the gateway's configuration, and no retry mends them;
// the last may pass.
func (e *Error) Unreachable() string {
	if e.Status != 0 || e.Timeout || e.Err == nil || e.Code == codeCredential {
		return ""
	}
	var (
		dnsErr    *net.DNSError
		verifyErr *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(e.Err, &dnsErr) && dnsErr.IsNotFound:
		return "dns"
	case errors.As(e.Err, &verifyErr), errors.As(e.Err, &unknownCA), errors.As(e.Err, &hostErr), errors.As(e.Err, &invalid):
		return "tls"
	case isNetwork(e.Err):
		return "network"
	}
	return ""
}

// Class says who must act on the error; it decides the frontend's answer.
// It branches on error, suberror and claims first, as Microsoft advises (codes
// change); the AADSTS code refines it through the catalogue.
func (e *Error) Class() Class {
	switch {
	case e.Claims != "" || e.Code == "interaction_required":
		return ClassInteraction
	case e.SubError == "consent_required":
		return ClassConsent
	case e.Unreachable() == "dns", e.Unreachable() == "tls":
		// Misconfigured, not unavailable: retrying will not help, and the
		// operator, not Entra, must act.
		return ClassGateway
	case e.Timeout, e.Status == http.StatusTooManyRequests, e.Status >= 500,
		e.Status == 0 && e.Code != "msal_error":
		return ClassUnavailable
	}
	if entry, ok := catalogue[e.AADSTS()]; ok {
		return entry.Class
	}
	return ClassGateway
}

// Hint is the operator's hint for the error's AADSTS code, or a generic one.
func (e *Error) Hint() string {
	if entry, ok := catalogue[e.AADSTS()]; ok {
		return entry.Hint
	}
	if e.Code == codeCredential {
		return "the gateway could not get its own client assertion (entra.credential): for workload_identity check that the pod is labelled azure.workload.identity/use: \"true\" and the token file (AZURE_FEDERATED_TOKEN_FILE) is mounted; for managed_identity that the identity is assigned and its endpoint reachable; gateway doctor checks both"
	}
	switch e.Unreachable() {
	case "dns":
		return "the token endpoint's host name does not exist: check entra.authority_host for a typo; hosts other than Microsoft's need entra.instance_discovery off (the default), or MSAL asks login.microsoftonline.com about them"
	case "tls":
		return "Entra's TLS certificate is not trusted: behind a TLS-inspecting proxy, name its CA in entra.ca_file (OBO_GATEWAY_ENTRA_CA_FILE)"
	case "network":
		return "the token endpoint cannot be reached: check network egress to entra.authority_host (NetworkPolicy, firewall, HTTPS_PROXY); /readyz says when the gateway last reached it"
	}
	return e.Class().hint()
}

// ErrorFromMSAL turns the error of an MSAL confidential-client call made
// with ctx into an *Error, reading Entra's JSON body (tools such as gateway
// doctor make their own MSAL calls).
func ErrorFromMSAL(ctx context.Context, err error) *Error { return fromMSAL(ctx, err) }

// ParseErrorBody reads an Entra error body (from the token or discovery
// endpoints) into e's fields; it reports whether body was one.
func ParseErrorBody(body []byte, e *Error) bool {
	var b struct {
		Error         string `json:"error"`
		SubError      string `json:"suberror"`
		Description   string `json:"error_description"`
		ErrorCodes    []int  `json:"error_codes"`
		TraceID       string `json:"trace_id"`
		CorrelationID string `json:"correlation_id"`
		Claims        string `json:"claims"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error == "" {
		return false
	}
	e.Code, e.SubError, e.Description, e.Codes = b.Error, b.SubError, b.Description, b.ErrorCodes
	e.TraceID, e.CorrelationID, e.Claims = b.TraceID, b.CorrelationID, b.Claims
	return true
}

// fromMSAL turns MSAL's error into an *Error, reading Entra's JSON body.
func fromMSAL(ctx context.Context, err error) *Error {
	// The gateway's own credential first: a managed identity endpoint's
	// refusal is an MSAL CallErr too, but not Entra's answer.
	var cf interface{ CredentialFailure() string }
	if errors.As(err, &cf) {
		return &Error{Code: codeCredential, Err: fmt.Errorf("no client assertion (%s): %w", cf.CredentialFailure(), err)}
	}
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		e := &Error{Status: ce.Resp.StatusCode}
		body, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
		ParseErrorBody(body, e)
		if e.TraceID == "" {
			e.TraceID = ce.Resp.Header.Get("x-ms-request-id")
		}
		if ra := ce.Resp.Header.Get("Retry-After"); ra != "" {
			if secs, perr := strconv.Atoi(ra); perr == nil && secs >= 0 {
				e.RetryAfter = time.Duration(secs) * time.Second
			} else if t, perr := http.ParseTime(ra); perr == nil {
				e.RetryAfter = max(0, time.Until(t))
			}
		}
		e.Err = fmt.Errorf("token endpoint answered HTTP %d", e.Status)
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return &Error{Timeout: true, Err: context.DeadlineExceeded}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Err: context.Canceled}
	}
	if isNetwork(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return &Error{Timeout: true, Err: errors.New("token endpoint timed out")}
		}
		return &Error{Err: fmt.Errorf("network: %w", unwrapNet(err))}
	}
	// MSAL's local errors (discovery, declined scopes, bad responses): they
	// name URLs and fields, not credentials.
	return &Error{Status: 0, Code: "msal_error", Err: errors.New(SanitizeMSAL(err.Error()))}
}

// SanitizeMSAL keeps an MSAL error's message unless it quotes an answer
// that held tokens (MSAL's errors embed the whole body, of the token
// endpoint or of a managed identity endpoint), and bounds its length.
func SanitizeMSAL(msg string) string {
	if strings.Contains(msg, "eyJ") || strings.Contains(msg, "access_token") || strings.Contains(msg, "refresh_token") {
		return "MSAL could not use the answer it got (details withheld: the answer held tokens)"
	}
	if len(msg) > 360 {
		msg = msg[:360] + "…"
	}
	return msg
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// unwrapNet keeps the innermost network error, dropping MSAL's wrapping.
// Failing that it keeps http.Client's *url.Error (method, token endpoint URL
// and cause, such as EOF or an HTTP/2 stream reset: no credentials), which is
// itself a net.Error, so CodeLabel still says "network".
func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue
	}
	return errors.New("connection failed")
}
