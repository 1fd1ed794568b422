package proxy

import (
	"context"
	"log/slog"
	"strings"
)

// redacted holds a token. It prints as REDACTED, so a value that ends up in a
// log line does not leak it.
type redacted string

func (redacted) String() string       { return "REDACTED" }
func (redacted) GoString() string     { return "REDACTED" }
func (redacted) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Forward is what the proxy needs to know about one request that only the
// handlers in front of it know: the token to send upstream and the user's
// own token, which must not go upstream. It is the request's own data, so
// it travels in the request context ([NewContext]); what the proxy reports
// back goes to the access log's writer (package reqlog), and a route's
// claims-challenge hook is given when the route is built ([Route.ClaimsRetry]).
//
// The zero Forward is ready to use: no upstream token (the upstream request
// then has no Authorization header at all: the incoming one is always
// dropped) and no secret.
type Forward struct {
	upstreamToken redacted
	secret        redacted
	// The W3C trace context of the upstream request (the proxy's client
	// span), replacing the client's; empty with tracing off.
	traceparent, tracestate string
}

// SetUpstreamToken sets the token the proxy sends upstream as
// "Authorization: Bearer <token>".
func (f *Forward) SetUpstreamToken(token string) { f.upstreamToken = redacted(token) }

// SetSecret sets a value that must never go upstream: the user's own token.
// The proxy drops every request header and query parameter that contains
// it, and answers 400 to a path that contains it. Request bodies are
// streamed, not inspected. An empty secret is ignored.
func (f *Forward) SetSecret(secret string) { f.secret = redacted(secret) }

// String, GoString and LogValue keep the tokens out of any log line that
// prints a Forward.
func (Forward) String() string       { return "proxy.Forward{REDACTED}" }
func (Forward) GoString() string     { return "proxy.Forward{REDACTED}" }
func (Forward) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// The accessors accept a nil Forward: a request without one is forwarded
// with no token and no secret.

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

type forwardKey struct{}

// NewContext returns ctx carrying f, for the proxy to read.
func NewContext(ctx context.Context, f *Forward) context.Context {
	return context.WithValue(ctx, forwardKey{}, f)
}

// FromContext returns the request's Forward, or nil.
func FromContext(ctx context.Context) *Forward {
	f, _ := ctx.Value(forwardKey{}).(*Forward)
	return f
}
