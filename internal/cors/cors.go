// Package cors lets browser apps on other origins call the gateway. It
// answers CORS preflights itself, before authentication (a preflight never
// carries a token), and adds the CORS headers to actual requests from
// allowed origins, including the gateway's own error answers, so a single
// page app can read a 401's WWW-Authenticate claims challenge.
//
// Callers authenticate with bearer tokens, not cookies, so the middleware
// never sends Access-Control-Allow-Credentials.
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
)

// Config configures [Middleware].
type Config struct {
	// AllowedOrigins are the origins browsers may call from, each exactly
	// scheme://host[:port] (https://app.example.com, http://localhost:3000),
	// or "*" for any origin. Scheme and host compare case-insensitively.
	// The "null" origin (sandboxed frames, file: pages) is allowed only if
	// listed literally, even with "*". Empty disables CORS.
	AllowedOrigins []string
	// AllowedHeaders are request headers allowed besides Authorization,
	// Content-Type, X-Request-Id and traceparent.
	AllowedHeaders []string
	// ExposedHeaders are response headers scripts may read besides
	// WWW-Authenticate, X-Request-Id and Retry-After.
	ExposedHeaders []string
	// MaxAge is how long browsers may cache a preflight answer, sent in
	// whole seconds. Zero sends no Access-Control-Max-Age (browsers then
	// cache for 5 seconds).
	MaxAge time.Duration
}

const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// policy is a validated Config.
type policy struct {
	anyOrigin      bool
	origins        map[string]bool // normalised
	allowedHeaders map[string]bool // lower case
	exposedHeaders string
	maxAge         string // "" to omit
}

// Middleware returns middleware that applies cfg. With no AllowedOrigins it
// returns next unchanged.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the middleware without calling next: 204 with the CORS
// headers from an allowed origin, otherwise 403 with a JSON error and no
// CORS headers. Any other request goes to next; from an allowed origin it
// carries Access-Control-Allow-Origin and Access-Control-Expose-Headers,
// set before next runs so that next's error answers have them too.
//
// Middleware panics if cfg is malformed: an origin that is not
// scheme://host[:port] (a path, even a trailing slash, a wildcard host, a
// default port that browsers omit), a header that is not a valid name or a
// negative MaxAge. Configuration is validated before, so that is a
// programmer error.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if len(cfg.AllowedOrigins) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	p, err := newPolicy(cfg)
	if err != nil {
		panic(err.Error())
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := singleOrigin(r)
			if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
				p.preflight(w, r, origin)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin") // the answer depends on Origin even when it has no CORS headers
			if origin != "" && p.allowed(origin) {
				h.Set("Access-Control-Allow-Origin", p.allowOrigin(origin))
				h.Set("Access-Control-Expose-Headers", p.exposedHeaders)
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (p *policy) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	if !p.allowed(origin) {
		apierror.Write(w, r, http.StatusForbidden, "origin_not_allowed", "this origin may not call the gateway")
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Origin", p.allowOrigin(origin))
	h.Set("Access-Control-Allow-Methods", allowedMethods)
	if allowed := p.allowHeaders(r.Header.Values("Access-Control-Request-Headers")); allowed != "" {
		h.Set("Access-Control-Allow-Headers", allowed)
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

// singleOrigin returns the request's Origin, or "" if it has none or,
// abnormally, several.
func singleOrigin(r *http.Request) string {
	if v := r.Header["Origin"]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func (p *policy) allowed(origin string) bool {
	o := strings.ToLower(origin)
	if o == "null" {
		return p.origins["null"]
	}
	return p.anyOrigin || p.origins[o]
}

// allowOrigin is the Access-Control-Allow-Origin for an allowed origin: "*"
// when any origin is allowed, else the origin as the browser sent it.
func (p *policy) allowOrigin(origin string) string {
	if p.anyOrigin {
		return "*"
	}
	return origin
}

// allowHeaders returns the requested headers that are allowed, in the
// order requested, in lower case as browsers send them.
func (p *policy) allowHeaders(requested []string) string {
	var out []string
	seen := map[string]bool{}
	for _, line := range requested {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if p.allowedHeaders[name] && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return strings.Join(out, ", ")
}

func newPolicy(cfg Config) (*policy, error) {
	p := &policy{origins: map[string]bool{}, allowedHeaders: map[string]bool{}}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		p.origins[n] = true
	}
	for _, h := range append([]string{"Authorization", "Content-Type", "X-Request-Id", "traceparent"}, cfg.AllowedHeaders...) {
		if err := checkHeaderName("AllowedHeaders", h); err != nil {
			return nil, err
		}
		p.allowedHeaders[strings.ToLower(h)] = true
	}
	exposed := append([]string{"WWW-Authenticate", "X-Request-Id", "Retry-After"}, cfg.ExposedHeaders...)
	for _, h := range exposed {
		if err := checkHeaderName("ExposedHeaders", h); err != nil {
			return nil, err
		}
	}
	p.exposedHeaders = strings.Join(exposed, ", ")
	switch {
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("cors: MaxAge %v is negative", cfg.MaxAge)
	case cfg.MaxAge > 0:
		p.maxAge = strconv.FormatInt(int64(cfg.MaxAge/time.Second), 10)
	}
	return p, nil
}

// normalizeOrigin checks that o is an origin as browsers send it,
// scheme://host[:port], and returns it in lower case.
func normalizeOrigin(o string) (string, error) {
	if o == "null" {
		return o, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("cors: AllowedOrigins: %q is not an origin (%s); want scheme://host[:port], e.g. https://app.example.com", o, why)
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", bad(err.Error())
	}
	if u.Scheme == "" || u.Host == "" {
		return "", bad("no scheme or host")
	}
	if strings.Contains(u.Host, "*") {
		return "", bad("wildcard hosts are not supported: list each origin, or use * alone")
	}
	n := u.Scheme + "://" + strings.ToLower(u.Host)
	if strings.ToLower(o) != n {
		return "", bad("it has more than scheme, host and port: a path, a trailing slash, a query, user info")
	}
	if port := u.Port(); port == "" && strings.HasSuffix(u.Host, ":") ||
		u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		return "", bad("drop the default or empty port: browsers omit it")
	}
	return n, nil
}

// CheckOrigin reports why o cannot be an allowed origin, or nil. The
// gateway's configuration validation applies it, so that a configuration
// that validates never makes Middleware panic.
func CheckOrigin(o string) error {
	_, err := normalizeOrigin(o)
	return err
}

// CheckHeaderName reports why name cannot be an allowed or exposed header,
// or nil: it must be an RFC 9110 token, and not the wildcard.
func CheckHeaderName(name string) error {
	if name == "*" {
		return errors.New("the wildcard * is not supported; list the headers")
	}
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%q is not a header name (RFC 9110 token), e.g. X-Request-Id", name)
		}
	}
	return nil
}

// checkHeaderName is CheckHeaderName naming the Config field.
func checkHeaderName(field, name string) error {
	if err := CheckHeaderName(name); err != nil {
		return fmt.Errorf("cors: %s: %w", field, err)
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
