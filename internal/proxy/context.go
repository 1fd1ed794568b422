package proxy

import (
	"context"
	"log/slog"
	"time"
)

// redacted holds a token in a context. It prints as REDACTED, so a context
// or value that ends up in a log line does not leak it.
type redacted string

func (redacted) String() string       { return "REDACTED" }
func (redacted) GoString() string     { return "REDACTED" }
func (redacted) LogValue() slog.Value { return slog.StringValue("REDACTED") }

type (
	upstreamTokenKey struct{}
	secretKey        struct{}
	outcomeKey       struct{}
)

// WithUpstreamToken returns ctx carrying the token the proxy sends upstream
// as "Authorization: Bearer <token>". Without it, the upstream request has no
// Authorization header at all: the incoming one is always dropped.
func WithUpstreamToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, upstreamTokenKey{}, redacted(token))
}

func upstreamTokenFrom(ctx context.Context) string {
	t, _ := ctx.Value(upstreamTokenKey{}).(redacted)
	return string(t)
}

// WithSecret returns ctx carrying a value that must never go upstream: the
// user's own token. The proxy drops every request header and query parameter
// that contains it, and answers 400 to a path that contains it. Request
// bodies are streamed, not inspected. An empty secret is ignored.
func WithSecret(ctx context.Context, secret string) context.Context {
	return context.WithValue(ctx, secretKey{}, redacted(secret))
}

func secretFrom(ctx context.Context) string {
	s, _ := ctx.Value(secretKey{}).(redacted)
	return string(s)
}

// Outcome is what happened upstream, for the access log. The proxy fills it
// in while it serves the request; read it after the handler returns.
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

// WithOutcome returns ctx carrying a new Outcome for the proxy to fill in.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	o := new(Outcome)
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func outcomeFrom(ctx context.Context) *Outcome {
	o, _ := ctx.Value(outcomeKey{}).(*Outcome)
	return o
}
