package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// requestInfo collects, for the access log, what inner handlers learn, and
// holds what the proxy needs: one allocation and two context values per
// request for both.
type requestInfo struct {
	route     string
	principal *auth.Principal
	forward   proxy.Forward
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	return i
}

// accessLog gives the request its ID (reqid.Prepare) and writes one line per
// request: request ID, method, path (never the query, which could carry
// secrets, and with tokens redacted), route, status, duration, the user's oid
// and tid, and the upstream status. It puts in the context, with one request
// copy, the request ID, the requestInfo and the proxy.Forward.
func (g *Gateway) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := reqid.Prepare(w, r)
		info := &requestInfo{route: "unmatched"}
		ctx := proxy.NewContext(context.WithValue(reqid.NewContext(r.Context(), id), infoKey{}, info), &info.forward)
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		returned := false
		defer func() {
			if !g.log.Enabled(r.Context(), slog.LevelInfo) {
				return // e.g. log_level warn: no access log, and nothing to build
			}
			outcome := &info.forward.Outcome
			// Only http.ErrAbortHandler gets past the recoverer (inside).
			status := metrics.Status(ww, returned)
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", logPath(r.URL.Path)),
				slog.String("route", info.route),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int("bytes", ww.BytesWritten()),
			}
			if p := info.principal; p != nil {
				attrs = append(attrs, slog.String("oid", p.ObjectID), slog.String("tid", p.TenantID))
			}
			if outcome.UpstreamStatus != 0 {
				attrs = append(attrs, slog.Int("upstream_status", outcome.UpstreamStatus),
					slog.Float64("upstream_ms", float64(outcome.UpstreamDuration.Microseconds())/1000))
			}
			if outcome.Err != "" {
				attrs = append(attrs, slog.String("upstream_error", outcome.Err))
			}
			g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		}()
		next.ServeHTTP(ww, r.WithContext(ctx))
		returned = true
	})
}

// jwtInPath matches a JWT (three base64url parts, the first a JSON header,
// so "eyJ…") anywhere in a path.
var jwtInPath = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// logPath is the path as the access log writes it: any token in it replaced
// by REDACTED. The proxy refuses a path that carries the caller's token, but
// the access log records every request, refused or not, authenticated or not.
func logPath(path string) string {
	if !strings.Contains(path, "eyJ") {
		return path // the common case, without the regular expression's allocations
	}
	return jwtInPath.ReplaceAllString(path, "REDACTED")
}

// recoverer turns a panic into a 500 JSON answer and a log line, except
// http.ErrAbortHandler, which the reverse proxy uses to abort a response.
func (g *Gateway) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				g.log.Error("panic serving request", "request_id", reqid.FromContext(r.Context()), "panic", rec)
				apierror.Write(w, r, http.StatusInternalServerError, "internal_error", "the gateway failed to answer; quote the request_id")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
