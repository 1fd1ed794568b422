package proxy

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// redacted holds a token. It prints as REDACTED, so a value that ends up in a
// log line does not leak it.
type redacted string

func (redacted) String() string       { return "REDACTED" }
func (redacted) GoString() string     { return "REDACTED" }
func (redacted) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Forward is what the proxy needs to know about one request, filled in by
// the middlewares in front of it, and what it reports back ([Outcome]).
// It travels as one context value ([NewContext]) rather than one per item:
// on the hot path each context value, and each request copy that carries
// it, is an allocation.
//
// The zero Forward is ready to use: no upstream token (the upstream request
// then has no Authorization header at all: the incoming one is always
// dropped), no secret, no claims retry.
type Forward struct {
	upstreamToken redacted
	secret        redacted
	claimsRetry   ClaimsRetry
	body          *clientBody // the request body the proxy forwards, when it has one
	// Outcome is what happened upstream; the proxy fills it in while it
	// serves the request. Read it after the handler returns.
	Outcome Outcome
}

// SetUpstreamToken sets the token the proxy sends upstream as
// "Authorization: Bearer <token>".
func (f *Forward) SetUpstreamToken(token string) { f.upstreamToken = redacted(token) }

// SetSecret sets a value that must never go upstream: the user's own token.
// The proxy drops every request header and query parameter that contains
// it, and answers 400 to a path that contains it. Request bodies are
// streamed, not inspected. An empty secret is ignored.
func (f *Forward) SetSecret(secret string) { f.secret = redacted(secret) }

// SetClaimsRetry sets how to answer an upstream's claims challenge
// (continuous access evaluation, conditional access): when the upstream
// answers 401 with WWW-Authenticate carrying claims="…", the proxy gets a
// new token with those claims once and replays the request, if it has no
// body. Otherwise, or if that fails, the upstream's 401 and its challenge go
// to the frontend unchanged, for it to step up.
func (f *Forward) SetClaimsRetry(retry ClaimsRetry) { f.claimsRetry = retry }

// String, GoString and LogValue keep the tokens out of any log line that
// prints a Forward.
func (Forward) String() string       { return "proxy.Forward{REDACTED}" }
func (Forward) GoString() string     { return "proxy.Forward{REDACTED}" }
func (Forward) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// The accessors accept a nil Forward: a request without one is forwarded
// with no token, no secret and no retry, and reports no outcome.

func (f *Forward) token() string {
	if f == nil {
		return ""
	}
	return string(f.upstreamToken)
}

func (f *Forward) secretValue() string {
	if f == nil {
		return ""
	}
	return string(f.secret)
}

// carriesSecret reports an upstream token that contains the user's own
// token: a bug before the proxy (an exchange that passed the user's token
// through). Every token the proxy sends upstream is checked with it.
func (f *Forward) carriesSecret(token string) bool {
	s := f.secretValue()
	return s != "" && strings.Contains(token, s)
}

func (f *Forward) setBody(b *clientBody) {
	if f != nil {
		f.body = b
	}
}

// bodyFailure is the error reading the client's body failed with, or nil.
func (f *Forward) bodyFailure() error {
	if f == nil || f.body == nil {
		return nil
	}
	return f.body.failure()
}

func (f *Forward) retry() ClaimsRetry {
	if f == nil {
		return nil
	}
	return f.claimsRetry
}

func (f *Forward) outcome() *Outcome {
	if f == nil {
		return nil
	}
	return &f.Outcome
}

type forwardKey struct{}

// NewContext returns ctx carrying f, for the proxy to read and fill in.
func NewContext(ctx context.Context, f *Forward) context.Context {
	return context.WithValue(ctx, forwardKey{}, f)
}

// FromContext returns the request's Forward, or nil.
func FromContext(ctx context.Context) *Forward {
	f, _ := ctx.Value(forwardKey{}).(*Forward)
	return f
}

func outcomeFrom(ctx context.Context) *Outcome { return FromContext(ctx).outcome() }

// Outcome is what happened upstream, for the access log.
type Outcome struct {
	// UpstreamStatus is the upstream's status code, or the status the proxy
	// chose on failure: 502, 504, or 499 when the client gave up. Zero means
	// no request was sent upstream (e.g. the proxy answered 400 or 404).
	UpstreamStatus int
	// UpstreamDuration is the time from sending the request to receiving
	// the response headers, or to the failure.
	UpstreamDuration time.Duration
	// Err is empty on success, else the kind of failure: "timeout",
	// "connect", "canceled" or "other".
	Err string
}
