package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// An unauthenticated client controls User-Agent and the path, which the
// server span records before the edge has refused anything. OTLP carries
// attribute values as protobuf strings, which must be valid UTF-8: one
// span with invalid UTF-8 would fail the export of the whole batch (every
// other request's spans in it). Clean makes them valid, and cuts on a
// character boundary: a well-behaved request exported in the same batch
// reaches the collector. (Found by the review of the tracing change.)
func TestInvalidUTF8DoesNotLoseTheBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"user agent with a raw 0xff byte", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/orders/1", nil)
			r.Header.Set("User-Agent", "evil\xff\xfe")
			return r
		}},
		{"path with %ff (refused later by the edge, but recorded first)", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/orders/%ff", nil)
		}},
		{"an honest multi-byte user agent cut at the bound", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/orders/1", nil)
			r.Header.Set("User-Agent", strings.Repeat("a", maxAttr-1)+"é")
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := tracingtest.Start(t)
			tr, err := New(context.Background(), Config{Endpoint: recv.HTTPEndpoint})
			if err != nil {
				t.Fatal(err)
			}
			h := reqlog.Middleware(slog.New(slog.DiscardHandler))(Middleware(tr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
			good := httptest.NewRequest(http.MethodGet, "/orders/good", nil)
			h.ServeHTTP(httptest.NewRecorder(), good)
			bad := tc.req()
			if ua := bad.UserAgent(); !utf8.ValidString(Clean(ua)) || len(Clean(ua)) > maxAttr {
				t.Fatalf("Clean(%q) is not valid UTF-8 within the bound", ua)
			}
			h.ServeHTTP(httptest.NewRecorder(), bad)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shutdownErr := tr.Shutdown(ctx) // flushes the one batch holding both spans
			spans, ok := recv.WaitFor(3*time.Second, func(s []tracingtest.Span) bool {
				for _, sp := range s {
					if sp.Attrs["url.path"] == "/orders/good" {
						return true
					}
				}
				return false
			})
			if !ok {
				t.Errorf("the honest request's span never reached the collector (%d spans received; shutdown: %v): a client-controlled attribute lost the whole batch", len(spans), shutdownErr)
			}
		})
	}
}
