package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	app          = "https://app.example.com"
	preflightVar = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	exposed      = "WWW-Authenticate, X-Request-Id, Retry-After"
	absent       = "" // in want: the header must not be there
)

var base = Config{AllowedOrigins: []string{app, "http://localhost:3000"}, MaxAge: 10 * time.Minute}

func TestMiddleware(t *testing.T) {
	custom := base
	custom.AllowedHeaders = []string{"X-Tenant"}
	custom.ExposedHeaders = []string{"X-Total-Count"}
	wildcard := Config{AllowedOrigins: []string{"*"}}
	withNull := Config{AllowedOrigins: []string{app, "null"}}

	tests := []struct {
		name     string
		cfg      Config
		method   string
		header   map[string]string
		status   int  // what the next handler answers, when it is called
		wantNext bool // next was called
		want     map[string]string
		wantCode int
	}{
		{
			name:   "preflight from an allowed origin",
			cfg:    base,
			method: http.MethodOptions,
			header: map[string]string{"Origin": app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"},
			want: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "authorization, content-type",
				"Access-Control-Max-Age":       "600",
				"Vary":                         preflightVar,
			},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight echoes only the allowed requested headers",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "traceparent, X-Evil, x-request-id, Authorization, x-tenant"},
			want:     map[string]string{"Access-Control-Allow-Headers": "traceparent, x-request-id, authorization"},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight with a configured header",
			cfg:      custom,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-tenant"},
			want:     map[string]string{"Access-Control-Allow-Headers": "authorization, x-tenant"},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight without requested headers",
			cfg:      Config{AllowedOrigins: []string{app}},
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": app, "Access-Control-Request-Method": "GET"},
			want:     map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Headers": absent, "Access-Control-Max-Age": absent},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight from an origin in other case",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "HTTPS://App.Example.COM", "Access-Control-Request-Method": "GET"},
			want:     map[string]string{"Access-Control-Allow-Origin": "HTTPS://App.Example.COM"},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight with any origin allowed",
			cfg:      wildcard,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "https://anything.example", "Access-Control-Request-Method": "DELETE"},
			want:     map[string]string{"Access-Control-Allow-Origin": "*"},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "preflight from a disallowed origin",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "preflight from the allowed host on another port",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "https://app.example.com:8443", "Access-Control-Request-Method": "GET"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "preflight from the allowed host over http",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "http://app.example.com", "Access-Control-Request-Method": "GET"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "preflight from a suffix of an allowed origin",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "https://app.example.com.evil.example", "Access-Control-Request-Method": "GET"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "null origin not allowed",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "null", "Access-Control-Request-Method": "GET"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "null origin not allowed by the wildcard",
			cfg:      wildcard,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "null", "Access-Control-Request-Method": "GET"},
			wantCode: http.StatusForbidden,
		},
		{
			name:     "null origin configured",
			cfg:      withNull,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": "null", "Access-Control-Request-Method": "GET"},
			want:     map[string]string{"Access-Control-Allow-Origin": "null"},
			wantCode: http.StatusNoContent,
		},
		{
			name:     "OPTIONS that is not a preflight goes to next",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": app},
			status:   http.StatusOK,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Expose-Headers": exposed, "Access-Control-Allow-Methods": absent},
			wantCode: http.StatusOK,
		},
		{
			name:     "OPTIONS without an origin goes to next",
			cfg:      base,
			method:   http.MethodOptions,
			header:   map[string]string{"Access-Control-Request-Method": "GET"},
			status:   http.StatusOK,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": absent, "Vary": "Origin"},
			wantCode: http.StatusOK,
		},
		{
			name:     "actual request from an allowed origin",
			cfg:      custom,
			method:   http.MethodGet,
			header:   map[string]string{"Origin": app},
			status:   http.StatusOK,
			wantNext: true,
			want: map[string]string{
				"Access-Control-Allow-Origin":   app,
				"Access-Control-Expose-Headers": exposed + ", X-Total-Count",
				"Vary":                          "Origin",
				"Access-Control-Allow-Methods":  absent,
			},
			wantCode: http.StatusOK,
		},
		{
			name:     "the gateway's own 401 carries the CORS headers",
			cfg:      base,
			method:   http.MethodGet,
			header:   map[string]string{"Origin": "http://localhost:3000"},
			status:   http.StatusUnauthorized,
			wantNext: true,
			want: map[string]string{
				"Access-Control-Allow-Origin":   "http://localhost:3000",
				"Access-Control-Expose-Headers": exposed,
				"WWW-Authenticate":              `Bearer error="insufficient_claims"`,
			},
			wantCode: http.StatusUnauthorized,
		},
		{
			name:     "actual request with any origin allowed",
			cfg:      wildcard,
			method:   http.MethodPost,
			header:   map[string]string{"Origin": "https://anything.example"},
			status:   http.StatusCreated,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": exposed},
			wantCode: http.StatusCreated,
		},
		{
			name:     "actual request from another origin passes without CORS headers",
			cfg:      base,
			method:   http.MethodGet,
			header:   map[string]string{"Origin": "https://evil.example"},
			status:   http.StatusOK,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": absent, "Access-Control-Expose-Headers": absent, "Vary": "Origin"},
			wantCode: http.StatusOK,
		},
		{
			name:     "request without an origin",
			cfg:      base,
			method:   http.MethodGet,
			status:   http.StatusOK,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": absent, "Vary": "Origin"},
			wantCode: http.StatusOK,
		},
		{
			name:     "no allowed origins: preflights reach next untouched",
			cfg:      Config{AllowedHeaders: []string{"X-Tenant"}, MaxAge: time.Hour},
			method:   http.MethodOptions,
			header:   map[string]string{"Origin": app, "Access-Control-Request-Method": "GET"},
			status:   http.StatusUnauthorized,
			wantNext: true,
			want:     map[string]string{"Access-Control-Allow-Origin": absent, "Vary": absent},
			wantCode: http.StatusUnauthorized,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				if tc.status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims"`)
					apierror.Write(w, r, http.StatusUnauthorized, "invalid_token", "no token")
					return
				}
				w.WriteHeader(tc.status)
			})
			r := httptest.NewRequest(tc.method, "/orders/1", nil)
			r = r.WithContext(reqid.NewContext(r.Context(), "req-1"))
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			Middleware(tc.cfg)(next).ServeHTTP(w, r)

			if called != tc.wantNext {
				t.Errorf("next called = %v, want %v", called, tc.wantNext)
			}
			if w.Code != tc.wantCode {
				t.Errorf("status = %d, want %d", w.Code, tc.wantCode)
			}
			h := w.Result().Header
			for name, want := range tc.want {
				got := strings.Join(h.Values(name), ", ")
				if got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if v, ok := h["Access-Control-Allow-Credentials"]; ok {
				t.Errorf("Access-Control-Allow-Credentials = %q: bearer tokens need no credentials mode", v)
			}
			if tc.wantCode == http.StatusForbidden {
				for name := range h {
					if strings.HasPrefix(name, "Access-Control-") {
						t.Errorf("refused preflight has %s", name)
					}
				}
				if b := testkit.ErrorBody(t, w.Header(), w.Body.Bytes()); b["error"] != "origin_not_allowed" || b["request_id"] != "req-1" {
					t.Errorf("body = %s, want the origin_not_allowed JSON error", w.Body)
				}
			}
			if tc.wantCode == http.StatusNoContent && w.Body.Len() != 0 {
				t.Errorf("preflight body = %q, want none", w.Body)
			}
		})
	}
}

// The CORS headers are on the response before next runs, so whatever next
// answers has them.
func TestHeadersSetBeforeNext(t *testing.T) {
	var seen string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = w.Header().Get("Access-Control-Allow-Origin")
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Origin", app)
	Middleware(base)(next).ServeHTTP(httptest.NewRecorder(), r)
	if seen != app {
		t.Errorf("next saw Access-Control-Allow-Origin %q, want %q", seen, app)
	}
}

func TestMiddlewarePanicsOnMalformedConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"trailing slash", Config{AllowedOrigins: []string{"https://app.example.com/"}}, "not an origin"},
		{"path", Config{AllowedOrigins: []string{"https://app.example.com/app"}}, "not an origin"},
		{"query", Config{AllowedOrigins: []string{"https://app.example.com?x=1"}}, "not an origin"},
		{"user info", Config{AllowedOrigins: []string{"https://me@app.example.com"}}, "not an origin"},
		{"no scheme", Config{AllowedOrigins: []string{"app.example.com"}}, "not an origin"},
		{"empty", Config{AllowedOrigins: []string{""}}, "not an origin"},
		{"surrounding space", Config{AllowedOrigins: []string{" https://app.example.com"}}, "not an origin"},
		{"wildcard host", Config{AllowedOrigins: []string{"https://*.example.com"}}, "wildcard"},
		{"default https port", Config{AllowedOrigins: []string{"https://app.example.com:443"}}, "default"},
		{"default http port", Config{AllowedOrigins: []string{"http://localhost:80"}}, "default"},
		{"empty port", Config{AllowedOrigins: []string{"https://app.example.com:"}}, "port"},
		{"Null", Config{AllowedOrigins: []string{"Null"}}, "not an origin"},
		{"allowed header with a space", Config{AllowedOrigins: []string{app}, AllowedHeaders: []string{"X Tenant"}}, "AllowedHeaders"},
		{"allowed header wildcard", Config{AllowedOrigins: []string{app}, AllowedHeaders: []string{"*"}}, "wildcard"},
		{"exposed header with a colon", Config{AllowedOrigins: []string{app}, ExposedHeaders: []string{"X-Count:"}}, "ExposedHeaders"},
		{"empty exposed header", Config{AllowedOrigins: []string{app}, ExposedHeaders: []string{""}}, "ExposedHeaders"},
		{"negative max age", Config{AllowedOrigins: []string{app}, MaxAge: -time.Second}, "MaxAge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "cors: ") || !strings.Contains(msg, tc.want) {
					t.Errorf("panic %q, want a cors: message containing %q", msg, tc.want)
				}
			}()
			Middleware(tc.cfg)
		})
	}
}

func TestValidOrigins(t *testing.T) {
	tests := map[string]string{
		"https://app.example.com":       "https://app.example.com",
		"HTTPS://App.Example.com:8443":  "https://app.example.com:8443",
		"http://localhost:3000":         "http://localhost:3000",
		"http://[::1]:3000":             "http://[::1]:3000",
		"capacitor://localhost":         "capacitor://localhost",
		"null":                          "null",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	}
	for in, want := range tests {
		got, err := normalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
