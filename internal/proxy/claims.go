package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// ClaimsRetry gets a new upstream token satisfying a claims challenge (the
// decoded claims JSON), e.g. an On-Behalf-Of exchange with those claims; ctx
// is the request's (its principal is there). A *RetryLaterError means the
// token cannot be had now but can later: the client is answered 503 with
// Retry-After rather than the challenge, which would make the user step up
// for nothing.
type ClaimsRetry func(ctx context.Context, claims string) (token string, err error)

// RetryLaterError is what a ClaimsRetry returns when the new token cannot
// be had now for want of capacity: the gateway's own (Shed names the limit)
// or the identity provider's (throttling, unavailable).
type RetryLaterError struct {
	// After is how long the client should wait; zero means a second.
	After time.Duration
	// Shed is the gateway's limit that turned the exchange away
	// (metrics.Limit*), or "" when the identity provider could not answer.
	Shed string
	Err  error
}

func (e *RetryLaterError) Error() string {
	return "proxy: the new token cannot be had now; retry later: " + e.Err.Error()
}

func (e *RetryLaterError) Unwrap() error { return e.Err }

// retryAfter is the Retry-After value, in whole seconds, at least one.
func (e *RetryLaterError) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.After.Seconds()))))
}

// claimsTransport answers upstream claims challenges, around a route's
// transport, with the route's hook.
type claimsTransport struct {
	next    http.RoundTripper
	retry   ClaimsRetry
	route   string
	log     *slog.Logger
	metrics *Metrics
}

func (t *claimsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	claims := challengeClaims(resp.Header.Values("WWW-Authenticate"))
	if claims == "" || t.retry == nil {
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody {
		// The body was streamed upstream and is gone: the frontend replays.
		t.metrics.claimsChallenge(t.route, "passed_body")
		return resp, nil
	}
	tok, rerr := t.retry(req.Context(), claims)
	if rerr == nil && FromContext(req.Context()).carriesSecret(tok) {
		// As for the first token (Proxy.Handler): never sent.
		t.log.LogAttrs(req.Context(), slog.LevelError, "proxy: the upstream token contains the user's token; not forwarding",
			slog.String("route", t.route), slog.String("request_id", reqid.FromContext(req.Context())))
		rerr = errors.New("the new upstream token contains the user's token")
	}
	if rl := (*RetryLaterError)(nil); errors.As(rerr, &rl) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		result := "shed"
		if rl.Shed == "" {
			result = "unavailable"
		}
		t.metrics.claimsChallenge(t.route, result)
		return nil, rerr // the error handler answers 503
	}
	if rerr != nil {
		t.metrics.claimsChallenge(t.route, "passed_exchange_failed")
		t.log.LogAttrs(req.Context(), slog.LevelInfo, "upstream claims challenge: new token refused; passing the challenge to the frontend",
			slog.String("route", t.route), slog.String("request_id", reqid.FromContext(req.Context())), slog.String("error", rerr.Error()))
		return resp, nil
	}
	again := req.Clone(req.Context())
	again.Header.Set("Authorization", "Bearer "+tok)
	resp2, err := t.next.RoundTrip(again)
	if err != nil {
		// The first answer is still a valid one to give.
		t.metrics.claimsChallenge(t.route, "passed_retry_failed")
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	result := "retried"
	if resp2.StatusCode == http.StatusUnauthorized {
		result = "retried_still_refused"
	}
	t.metrics.claimsChallenge(t.route, result)
	return resp2, nil
}

// challengeClaims finds a claims="<base64>" parameter in WWW-Authenticate
// values and returns the decoded claims JSON, or "".
func challengeClaims(values []string) string {
	for _, v := range values {
		i := strings.Index(strings.ToLower(v), "claims=")
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(v[i+len("claims="):])
		var enc string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				continue
			}
			enc = rest[1 : 1+end]
		} else {
			enc, _, _ = strings.Cut(rest, ",")
			enc = strings.TrimSpace(enc)
		}
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(enc); err == nil && len(b) > 0 && b[0] == '{' {
				return string(b)
			}
		}
	}
	return ""
}
