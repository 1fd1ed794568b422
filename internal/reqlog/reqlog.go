// Package reqlog is the gateway's access log: one line per request, written
// when the request is answered, from a record that the handlers inside fill
// in as they learn things (the route, the user, what happened upstream, why
// the request was refused).
//
// The record travels with the response, not in the request context: the
// access log wraps the ResponseWriter in a [*Writer], and a handler inside
// finds it with [From] (through any writer that wraps it, by Unwrap). The
// record's setters accept a nil *Writer, so a handler used without the
// access log, or a middleware chain in another order, records nothing and
// fails nothing.
package reqlog

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// Upstream is what happened upstream, as the proxy reports it.
type Upstream struct {
	// Status is the upstream's status code, or the status the proxy chose
	// on failure: 502, 504, or 499 when the client gave up. Zero means no
	// answer came from upstream (nothing was sent, or the proxy answered
	// for the client's own failure).
	Status int
	// Duration is the time from the proxy taking the request to the
	// upstream's response headers, or to the failure. When the proxy
	// answered a claims challenge it includes the new token and both
	// attempts.
	Duration time.Duration
	// Err is empty on success, else the kind of failure: "timeout",
	// "connect", "canceled", "other"; "shed" or "token_unavailable" when
	// the new token a claims challenge asked for could not be had; or the
	// client's body failure (metrics.Reason*).
	Err string
}

// Writer is the ResponseWriter of one request as the access log sees it:
// it records the status and bytes written, and holds the record. The
// request metrics use the same Writer when they find one, so that a
// request is wrapped once and counted by one rule ([Writer.Status]).
type Writer struct {
	w           http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool

	route    string
	oid, tid string
	client   string // azp/appid
	scope    string // the scope that satisfied the route
	role     string // the role that satisfied the route
	refused  string
	shed     string
	upstream Upstream
	down     Downstream
	traceID  trace.TraceID // zero: no span
	spanID   trace.SpanID
}

// Downstream is where the request's downstream token came from.
type Downstream struct {
	// Resource is the downstream API the token is for (its App ID URI).
	Resource string
	// Source is "l1" (this replica's cache), "l2" (the shared cache),
	// "exchange" (an On-Behalf-Of exchange made for this request) or
	// "exchange_shared" (one made for a concurrent request, joined).
	Source string
	// Exchange is the time the exchange with Entra took, when Source is
	// an exchange.
	Exchange time.Duration
}

// NewWriter wraps w.
func NewWriter(w http.ResponseWriter) *Writer { return &Writer{w: w} }

// From returns the Writer that w is or wraps, or nil.
func From(w http.ResponseWriter) *Writer {
	for w != nil {
		switch t := w.(type) {
		case *Writer:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// SetRoute records the route that serves the request.
func (w *Writer) SetRoute(name string) {
	if w != nil {
		w.route = name
	}
}

// SetUser records the user the request was validated for: the token's oid
// and tid, never the token.
func (w *Writer) SetUser(oid, tid string) {
	if w != nil {
		w.oid, w.tid = oid, tid
	}
}

// SetClient records, for audits, the calling application (the token's azp
// or appid) and what satisfied the route's policy: the scope and the role
// it asked for and the token carried (empty when it asked for none).
func (w *Writer) SetClient(clientID, scope, role string) {
	if w != nil {
		w.client, w.scope, w.role = clientID, scope, role
	}
}

// SetDownstream records where the downstream token came from.
func (w *Writer) SetDownstream(d Downstream) {
	if w != nil {
		w.down = d
	}
}

// SetTrace records the request's server span, whose IDs the line carries.
func (w *Writer) SetTrace(sc trace.SpanContext) {
	if w != nil {
		w.traceID, w.spanID = sc.TraceID(), sc.SpanID()
	}
}

// Refused is the reason SetRefused recorded.
func (w *Writer) Refused() string {
	if w == nil {
		return ""
	}
	return w.refused
}

// Shed is the limit SetShed recorded.
func (w *Writer) Shed() string {
	if w == nil {
		return ""
	}
	return w.shed
}

// SetRefused records why the gateway refused the request itself, a
// metrics.Reason* value.
func (w *Writer) SetRefused(reason string) {
	if w != nil {
		w.refused = reason
	}
}

// SetShed records the limit (a metrics.Limit* value) that shed the request.
func (w *Writer) SetShed(limit string) {
	if w != nil {
		w.shed = limit
	}
}

// SetUpstream records what happened upstream.
func (w *Writer) SetUpstream(u Upstream) {
	if w != nil {
		w.upstream = u
	}
}

// Upstream is what SetUpstream recorded.
func (w *Writer) Upstream() Upstream {
	if w == nil {
		return Upstream{}
	}
	return w.upstream
}

// Status is the status of the response: the one written, else 200 (what
// net/http answers) when the handler returned, else 500: it panicked before
// writing, and a recoverer answers 500 (or the response is aborted,
// http.ErrAbortHandler, and no status reaches the client). A hijacked
// connection (a WebSocket) counts as 101. The access log and the metrics
// count responses by this one rule.
func (w *Writer) Status(returned bool) int {
	switch {
	case w.status != 0:
		return w.status
	case returned:
		return http.StatusOK
	default:
		return http.StatusInternalServerError
	}
}

// BytesWritten is the number of body bytes written.
func (w *Writer) BytesWritten() int64 { return w.bytes }

func (w *Writer) Header() http.Header { return w.w.Header() }

// WriteHeader passes 1xx informational answers through and records the
// first final status; later calls are dropped, as net/http would drop them
// (with a log line about a superfluous call).
func (w *Writer) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.w.WriteHeader(code)
		return
	}
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	w.w.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.w.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the response, when the writer underneath can.
func (w *Writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.w).Flush()
}

// Hijack hands the connection over (a WebSocket after the upstream's 101,
// which the proxy writes on the connection itself) and records 101.
func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.w).Hijack()
	if err == nil && !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the writer underneath
// (deadlines, full duplex).
func (w *Writer) Unwrap() http.ResponseWriter { return w.w }

// Middleware gives every request its ID (reqid.Prepare, in the request
// context with reqid.NewContext) and a [Writer], and writes one line at
// info level when the request is answered: request ID, method, path (never
// the query, which could carry secrets, and with any token in it
// redacted), route, status, duration, bytes, the user's oid and tid, the
// reason the gateway refused it or the limit that shed it, and the
// upstream's status, time and failure. With the logger above info, the line is neither built nor
// written.
//
// Put it first: it logs what the handlers inside it answer, including the
// 500 a recoverer inside it writes for a panic.
func Middleware(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := reqid.Prepare(w, r)
			ww := &Writer{w: w, route: "unmatched"}
			returned := false
			defer func() {
				if log.Enabled(r.Context(), slog.LevelInfo) {
					var buf [24]slog.Attr // on the stack: LogAttrs copies them
					log.LogAttrs(r.Context(), slog.LevelInfo, "request", ww.attrs(buf[:0], r, id, start, returned)...)
				}
			}()
			next.ServeHTTP(ww, r.WithContext(reqid.NewContext(r.Context(), id)))
			returned = true
		})
	}
}

// attrs appends the access log's attributes to attrs.
func (w *Writer) attrs(attrs []slog.Attr, r *http.Request, id string, start time.Time, returned bool) []slog.Attr {
	attrs = append(attrs,
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("path", RedactPath(r.URL.Path)),
		slog.String("route", w.route),
		slog.Int("status", w.Status(returned)),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int64("bytes", w.bytes),
	)
	if w.oid != "" || w.tid != "" {
		attrs = append(attrs, slog.String("oid", w.oid), slog.String("tid", w.tid))
	}
	if w.traceID.IsValid() {
		attrs = append(attrs, slog.String("trace_id", w.traceID.String()), slog.String("span_id", w.spanID.String()))
	}
	if w.client != "" {
		attrs = append(attrs, slog.String("client_id", w.client))
	}
	if w.scope != "" {
		attrs = append(attrs, slog.String("granted_scope", w.scope))
	}
	if w.role != "" {
		attrs = append(attrs, slog.String("granted_role", w.role))
	}
	if d := w.down; d.Source != "" {
		attrs = append(attrs, slog.String("downstream_resource", d.Resource), slog.String("token_source", d.Source))
		if d.Exchange > 0 { // set for an exchange only
			attrs = append(attrs, slog.Float64("exchange_ms", float64(d.Exchange.Microseconds())/1000))
		}
	}
	if w.refused != "" {
		attrs = append(attrs, slog.String("refused", w.refused))
	}
	if w.shed != "" {
		attrs = append(attrs, slog.String("shed", w.shed))
	}
	if u := w.upstream; u.Status != 0 || u.Err != "" {
		if u.Status != 0 {
			attrs = append(attrs, slog.Int("upstream_status", u.Status))
		}
		attrs = append(attrs, slog.Float64("upstream_ms", float64(u.Duration.Microseconds())/1000))
		if u.Err != "" {
			attrs = append(attrs, slog.String("upstream_error", u.Err))
		}
	}
	return attrs
}

// jwtInPath matches a JWT (three base64url parts, the first a JSON header,
// so "eyJ…") anywhere in a path.
var jwtInPath = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// RedactPath is the path as the access log (and a trace) writes it: any token in it replaced
// by REDACTED. The proxy refuses a path that carries the caller's token, but
// the access log records every request, refused or not, authenticated or not.
func RedactPath(path string) string {
	if !strings.Contains(path, "eyJ") {
		return path // the common case, without the regular expression's allocations
	}
	return jwtInPath.ReplaceAllString(path, "REDACTED")
}
