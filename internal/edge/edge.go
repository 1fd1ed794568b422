// Package edge is the first thing a request meets on the API listener. It
// refuses what the gateway must not route: a path without one meaning
// (package urlpath), a method that would let a client read back what the
// gateway adds (TRACE), a path that a lenient upstream would confuse with a
// stricter route's. It bounds what one client can hold: connections,
// requests in flight, the time and size of request bodies. And it hands the
// router the request on its canonical path, which the proxy then forwards
// unchanged, so that the upstream reads the path the router matched.
//
// Every refusal is a JSON error body (package apierror), a log line with
// the reason and the request ID, and a count in
// obo_gateway_http_refused_total or obo_gateway_http_shed_total.
package edge

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/urlpath"
)

// RefusalReasons lists every reason a request can be refused for: the
// label values of obo_gateway_http_refused_total.
func RefusalReasons() []string {
	r := []string{metrics.ReasonMethod, metrics.ReasonLookalike, metrics.ReasonBodyTooLarge,
		metrics.ReasonBodyTimeout, metrics.ReasonBodyBroken, metrics.ReasonUpgrade}
	for _, p := range urlpath.Reasons() {
		r = append(r, string(p))
	}
	return r
}

// AllowedMethods are the methods the gateway forwards. TRACE (and IIS's
// TRACK) would echo the request, downstream token included, back to the
// client; CONNECT would open a tunnel; others have no use on an API
// protected by Entra ID and only widen what upstream frameworks must get
// right.
const AllowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

func allowedMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// Config configures an [Edge].
type Config struct {
	// BodyTimeout bounds the time from a request's arrival until its body
	// has been read, for requests that have one: a client that announces a
	// body and sends it slowly, or not at all, has its connection closed
	// when it passes. It also bounds net/http's drain of a body the handler
	// did not read. Zero means no bound. A route can set its own
	// ([Route.BodyTimeout]).
	BodyTimeout time.Duration
	// MaxInFlight bounds the requests being served by all routes together;
	// beyond it a route answers 503 with Retry-After at once. Zero means no
	// bound.
	MaxInFlight int
	// MaxConnections bounds the open connections of [Edge.Listen]'s
	// listener; the connections beyond it are answered 503 and closed.
	// Zero means no bound.
	MaxConnections int
	// Refusals counts refused and shed requests. Nil counts nothing.
	Refusals *metrics.Refusals
	// Registerer, when set, gets obo_gateway_connections_open.
	Registerer prometheus.Registerer
	// Logger gets one line per refusal. Nil discards.
	Logger *slog.Logger
}

// Edge holds the limits shared by every route. It is safe for concurrent use.
type Edge struct {
	cfg      Config
	log      *slog.Logger
	inFlight limit
	conns    atomic.Int64 // open connections of Listen's listener
}

// New returns an Edge.
func New(cfg Config) *Edge {
	e := &Edge{cfg: cfg, log: cfg.Logger, inFlight: limit{max: int64(cfg.MaxInFlight)}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		promauto.With(cfg.Registerer).NewGaugeFunc(prometheus.GaugeOpts{
			Name: "obo_gateway_connections_open",
			Help: "Open connections of the API listener, bounded by limits.max_connections (those answered 503 beyond it are not counted).",
		}, func() float64 { return float64(e.conns.Load()) })
	}
	return e
}

// Middleware comes before the router. It refuses a method outside
// AllowedMethods (405 with Allow) and a path without a canonical form (400),
// passes the request on with its URL on the canonical path (Path decoded,
// RawPath escaped when Go's own escaping would differ), and sets the read
// deadline that bounds the request's body.
func (e *Edge) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// First: a request refused below is answered only after net/http
		// has drained (up to 256 KiB of) its unread body, and a body that
		// never comes would hold the connection for ever.
		if e.cfg.BodyTimeout > 0 && hasBody(r) {
			setBodyDeadline(w, time.Now().Add(e.cfg.BodyTimeout))
		}
		if !allowedMethod(r.Method) {
			w.Header().Set("Allow", AllowedMethods)
			e.refuse(w, r, http.StatusMethodNotAllowed, "method_not_allowed", metrics.ReasonMethod,
				"this method is not accepted; the gateway accepts "+AllowedMethods)
			return
		}
		raw := requestPath(r)
		canonical, err := urlpath.Canonical(raw)
		if err != nil {
			pe := err.(*urlpath.Error)
			e.refuse(w, r, http.StatusBadRequest, "invalid_request", string(pe.Reason), pe.Description())
			return
		}
		if canonical != raw || r.URL.EscapedPath() != canonical {
			r = withPath(r, canonical)
		}
		next.ServeHTTP(w, r)
	})
}

// requestPath is the escaped path exactly as the client sent it: from the
// request target itself, since r.URL.EscapedPath() may re-escape a path it
// considers badly encoded and lose how it was sent.
func requestPath(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" { // a request made in-process, not read by a server
		return r.URL.EscapedPath()
	}
	if uri[0] != '/' {
		// Absolute form, http://host/path (RFC 9112 §3.2.2): the path
		// starts at the first '/' after the authority, which ends at the
		// first '/', '?' or '#' (RFC 3986 §3.2); an empty path is "/".
		i := strings.Index(uri, "://")
		if i < 0 {
			return uri // "*", or an authority: not a path, refused
		}
		rest := uri[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 || rest[j] != '/' {
			return "/"
		}
		uri = rest[j:]
	}
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// withPath returns a shallow copy of r whose URL has the canonical path.
func withPath(r *http.Request, canonical string) *http.Request {
	u := *r.URL
	u.Path, u.RawPath = urlpath.Decode(canonical), ""
	if u.EscapedPath() != canonical {
		u.RawPath = canonical
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// hasBody reports a request that announces a body: net/http gives NoBody
// to one without.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody
}

// setBodyDeadline sets the connection's read deadline (the stream's, over
// HTTP/2). net/http clears it when the body has been read to its end, so it
// never cuts a long response that follows (server-sent events).
func setBodyDeadline(w http.ResponseWriter, deadline time.Time) {
	// An error means the writer cannot (an in-process test recorder).
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
}

// refuse answers a refusal, logs its reason and counts it.
func (e *Edge) refuse(w http.ResponseWriter, r *http.Request, status int, code, reason, description string) {
	e.cfg.Refusals.Refused(reason)
	reqlog.From(w).SetRefused(reason)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused",
		slog.String("request_id", reqid.FromContext(r.Context())),
		slog.String("reason", reason), slog.Int("status", status), slog.String("method", sanitizeMethod(r.Method)))
	apierror.Write(w, r, status, code, description)
}

// shed answers 503 because limit is full, with Retry-After.
func (e *Edge) shed(w http.ResponseWriter, r *http.Request, limit, description string) {
	e.cfg.Refusals.Shed(limit)
	reqlog.From(w).SetShed(limit)
	e.log.LogAttrs(r.Context(), slog.LevelWarn, "request shed",
		slog.String("request_id", reqid.FromContext(r.Context())), slog.String("limit", limit))
	Shed(w, r, description)
}

// Shed answers 503 temporarily_unavailable with Retry-After: 1, the answer
// of every limit.
func Shed(w http.ResponseWriter, r *http.Request, description string) {
	w.Header().Set("Retry-After", "1")
	apierror.Write(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", description)
}

// sanitizeMethod keeps a client's method out of the log unless it is a
// short token: it is the one request field logged here verbatim.
func sanitizeMethod(m string) string {
	if len(m) > 16 {
		return "(long)"
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < '!' || c > '~' {
			return "(invalid)"
		}
	}
	return m
}

// limit is a count bounded by max; zero max means unbounded.
type limit struct {
	n   atomic.Int64
	max int64
}

func (l *limit) acquire() bool {
	if l.max <= 0 {
		return true
	}
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *limit) release() {
	if l.max > 0 {
		l.n.Add(-1)
	}
}

// Route is what a route's middleware needs of it.
type Route struct {
	// Name labels log lines.
	Name string
	// Stricter are the decoded path prefixes of the routes nested under
	// this one (/orders/admin under /orders; every other route under /). A
	// request routed here whose path has one of them as a prefix when
	// compared as lenient servers compare (urlpath.HasPrefixFold: case,
	// trailing dots and spaces, NFKC) is refused 400: a case-insensitive
	// upstream would serve it as the stricter route.
	Stricter []string
	// MaxInFlight bounds this route's requests in flight, within the
	// edge's MaxInFlight; zero means only that one.
	MaxInFlight int
	// MaxBodyBytes bounds the request body: a larger Content-Length is
	// answered 413 at once, and a chunked body is cut when it passes the
	// bound (the proxy answers 413). Zero means no bound.
	MaxBodyBytes int64
	// BodyTimeout replaces the edge's BodyTimeout for this route; zero, or
	// the edge's own, keeps it.
	BodyTimeout time.Duration
}

// Route returns the middleware of one route, to run after the router chose
// it and before token validation, so that a shed or refused request costs
// no signature check: the lookalike check, the in-flight limits, the body
// bounds.
func (e *Edge) Route(rt Route) func(http.Handler) http.Handler {
	routeLimit := &limit{max: int64(rt.MaxInFlight)}
	bodyTimeout := rt.BodyTimeout
	if bodyTimeout == e.cfg.BodyTimeout {
		bodyTimeout = 0 // set on arrival already (Middleware)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, s := range rt.Stricter {
				if urlpath.HasPrefixFold(r.URL.Path, s) {
					e.refuse(w, r, http.StatusBadRequest, "invalid_request", metrics.ReasonLookalike,
						"the path differs only in case or trailing dots from a path the gateway routes elsewhere: use its exact spelling")
					return
				}
			}
			if !routeLimit.acquire() {
				e.shed(w, r, metrics.LimitRouteInFlight, "this API is serving as many requests as it may; retry shortly")
				return
			}
			defer routeLimit.release()
			if !e.inFlight.acquire() {
				e.shed(w, r, metrics.LimitInFlight, "the gateway is serving as many requests as it may; retry shortly")
				return
			}
			defer e.inFlight.release()
			if hasBody(r) {
				if rt.MaxBodyBytes > 0 {
					if r.ContentLength > rt.MaxBodyBytes {
						w.Header().Set("Connection", "close") // rather than drain what it sends
						e.refuse(w, r, http.StatusRequestEntityTooLarge, "payload_too_large", metrics.ReasonBodyTooLarge,
							"the request body is larger than this API accepts ("+strconv.FormatInt(rt.MaxBodyBytes, 10)+" bytes)")
						return
					}
					r2 := *r
					r2.Body = http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes)
					r = &r2
				}
				if bodyTimeout > 0 {
					setBodyDeadline(w, time.Now().Add(bodyTimeout))
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
