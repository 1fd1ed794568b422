package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name       string
		upstream   func(t *testing.T) string // the upstream base URL
		timeout    time.Duration
		wantStatus int
		wantError  string
		wantKind   string
	}{
		{
			name:       "connection refused",
			upstream:   func(t *testing.T) string { return "http://" + testkit.ClosedAddr(t) },
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "connect",
		},
		{
			name: "untrusted certificate",
			upstream: func(t *testing.T) string {
				srv := httptest.NewUnstartedServer(http.NotFoundHandler())
				srv.Config.ErrorLog = quietLog()
				srv.StartTLS()
				t.Cleanup(srv.Close)
				return srv.URL
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "connect",
		},
		{
			name: "connection closed without a response",
			upstream: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "other",
		},
		{
			name: "no response headers within the route timeout",
			upstream: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					<-r.Context().Done() // the proxy gives up and closes the connection
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			timeout:    20 * time.Millisecond,
			wantStatus: http.StatusGatewayTimeout, wantError: "gateway_timeout", wantKind: "timeout",
		},
		{
			name: "headers, then nothing within the route timeout",
			upstream: func(t *testing.T) string {
				return newRawUpstream(t, func(conn net.Conn, _ rawRequest) bool {
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-")
					_, _ = io.Copy(io.Discard, conn) // until the proxy gives up
					return false
				}).URL
			},
			timeout:    20 * time.Millisecond,
			wantStatus: http.StatusGatewayTimeout, wantError: "gateway_timeout", wantKind: "timeout",
		},
		{
			name: "not HTTP",
			upstream: func(t *testing.T) string {
				return newRawUpstream(t, func(conn net.Conn, _ rawRequest) bool {
					_, _ = io.WriteString(conn, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
					return false
				}).URL
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "other",
		},
		{
			name: "malformed Content-Length",
			upstream: func(t *testing.T) string {
				return newRawUpstream(t, func(conn net.Conn, _ rawRequest) bool {
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok")
					return false
				}).URL
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "other",
		},
		{
			name: "header line without a colon",
			upstream: func(t *testing.T) string {
				return newRawUpstream(t, func(conn net.Conn, _ rawRequest) bool {
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nX-Broken\r\nContent-Length: 2\r\n\r\nok")
					return false
				}).URL
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "other",
		},
		{
			name: "plain HTTP behind an https URL",
			upstream: func(t *testing.T) string {
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Config.ErrorLog = quietLog()
				t.Cleanup(srv.Close)
				return strings.Replace(srv.URL, "http:", "https:", 1)
			},
			wantStatus: http.StatusBadGateway, wantError: "bad_gateway", wantKind: "connect",
		},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u := mustURL(t, tc.upstream(t))
				rt := ordersRoute(u)
				rt.Timeout = tc.timeout
				g := newGateway(t, rt, setup{leg: leg})
				req, _ := http.NewRequest(http.MethodGet, g.URL+"/orders/1?q="+userToken, nil)
				req.Header.Set("Authorization", "Bearer "+userToken)
				resp, body := g.do(t, req)

				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				b := testkit.ErrorBody(t, resp.Header, body)
				if b["error"] != tc.wantError || b["error_description"] == "" || b["request_id"] != requestID {
					t.Errorf("body = %s, want error %q with a description and the request ID", body, tc.wantError)
				}
				o := g.outcome(t)
				if o.Status != tc.wantStatus || o.Err != tc.wantKind || o.Duration <= 0 {
					t.Errorf("outcome = %+v, want status %d, kind %q and a duration", o, tc.wantStatus, tc.wantKind)
				}
				if tc.timeout > 0 && o.Duration < tc.timeout {
					t.Errorf("gave up after %v, before the %v timeout", o.Duration, tc.timeout)
				}
				if n := testutil.ToFloat64(g.metrics.errors.WithLabelValues("orders", tc.wantKind)); n != 1 {
					t.Errorf("errors_total{kind=%q} = %v, want 1", tc.wantKind, n)
				}
				if n := testkit.HistogramCount(t, g.reg, "obo_gateway_upstream_request_duration_seconds", map[string]string{"route": "orders"}); n != 0 {
					t.Errorf("duration observations = %d, want 0 for a failure", n)
				}
				assertFailureLogged(t, g.logs, "WARN", tc.wantKind, u.Host)
			})
		}
	})
}

// The client gives up while the upstream is still working: nothing is
// written (the client is gone), 499 is reported to the access log and logged.
func TestClientCancel(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testClientCancel(t, leg) })
}

func testClientCancel(t *testing.T, leg Leg) {
	arrived := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(up.Close)
	u := mustURL(t, up.URL)
	g := newGateway(t, ordersRoute(u), setup{leg: leg})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/orders/slow", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := g.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}

	o := g.outcome(t)
	if o.Status != StatusClientClosedRequest || o.Err != "canceled" {
		t.Errorf("outcome = %+v, want 499 canceled", o)
	}
	if n := testutil.ToFloat64(g.metrics.errors.WithLabelValues("orders", "canceled")); n != 1 {
		t.Errorf("errors_total{kind=canceled} = %v, want 1", n)
	}
	assertFailureLogged(t, g.logs, "INFO", "canceled", u.Host)
}

// assertFailureLogged checks the one failure line: its level, route,
// upstream host and kind, and that no token or header went to the log.
func assertFailureLogged(t *testing.T, logs *testkit.SyncBuffer, level, kind, host string) {
	t.Helper()
	lines := logs.All(t, "proxy: upstream request failed")
	if len(lines) != 1 {
		t.Fatalf("failure log lines = %v, want 1", lines)
	}
	e := lines[0]
	want := map[string]any{"level": level, "route": "orders", "upstream": host, "kind": kind, "request_id": requestID}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("log %s = %v, want %v (line %v)", k, e[k], v, e)
		}
	}
	if e["error"] == nil || e["error"] == "" {
		t.Errorf("log line %v has no error detail", e)
	}
	all := logs.String()
	for _, secret := range []string{userToken, downstreamToken, "Authorization", "Bearer"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q:\n%s", secret, all)
		}
	}
}

// The one function that maps failures to statuses.
func TestErrorHandler(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantStatus int // 0: nothing written
		wantError  string
		wantKind   string
	}{
		{"client gone", canceled, context.Canceled, 0, "", "canceled"},
		{"client gone while the timer fired", canceled, errTimeout, 0, "", "canceled"},
		{"route timeout", context.Background(), fmt.Errorf("%w (1s)", errTimeout), 504, "gateway_timeout", "timeout"},
		{"deadline", context.Background(), context.DeadlineExceeded, 504, "gateway_timeout", "timeout"},
		{"net timeout", context.Background(), &net.OpError{Op: "read", Err: timeoutErr{}}, 504, "gateway_timeout", "timeout"},
		{"refused", context.Background(), dial, 502, "bad_gateway", "connect"},
		{"dial timeout", context.Background(), &net.OpError{Op: "dial", Err: timeoutErr{}}, 502, "bad_gateway", "connect"},
		{"dns", context.Background(), &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "orders.internal"}}, 502, "bad_gateway", "connect"},
		{"bad certificate", context.Background(), &wrappedErr{x509.UnknownAuthorityError{}}, 502, "bad_gateway", "connect"},
		{"anything else", context.Background(), io.ErrUnexpectedEOF, 502, "bad_gateway", "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			logs := &testkit.SyncBuffer{}
			p := New(Config{
				Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { panic("unused") }),
				Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Metrics:   NewMetrics(reg),
			})
			ctx := NewContext(reqid.NewContext(tc.ctx, requestID), &Forward{})
			r := httptest.NewRequest(http.MethodGet, "/orders/1", nil).WithContext(ctx)
			w := &writeRecorder{ResponseRecorder: httptest.NewRecorder()}
			lw := reqlog.NewWriter(w)
			guard := guards.Get().(*guardWriter)
			guard.reset(lw) // as the handler gives ReverseProxy
			p.errorHandler(ordersRoute(mustURL(t, "http://orders.internal:8080")))(guard, r, tc.err)
			guard.finish()
			o := lw.Upstream()

			if tc.wantStatus == 0 {
				// Only the status, for the access log and the metrics: no
				// body to a client that is gone.
				if w.Code != StatusClientClosedRequest || w.Body.Len() != 0 {
					t.Errorf("wrote %d %q to a client that is gone; want 499 and no body", w.Code, w.Body.String())
				}
			} else {
				if w.Code != tc.wantStatus {
					t.Errorf("status = %d, want %d", w.Code, tc.wantStatus)
				}
				if b := testkit.ErrorBody(t, w.Header(), w.Body.Bytes()); b["error"] != tc.wantError {
					t.Errorf("error = %q, want %q", b["error"], tc.wantError)
				}
			}
			wantStatus := tc.wantStatus
			if wantStatus == 0 {
				wantStatus = StatusClientClosedRequest
			}
			if o.Status != wantStatus || o.Err != tc.wantKind {
				t.Errorf("outcome = %+v, want %d %q", o, wantStatus, tc.wantKind)
			}
			if n := testutil.ToFloat64(p.metrics.errors.WithLabelValues("orders", tc.wantKind)); n != 1 {
				t.Errorf("errors_total{kind=%q} = %v, want 1", tc.wantKind, n)
			}
			if !strings.Contains(logs.String(), `"upstream":"orders.internal:8080"`) {
				t.Errorf("log %s lacks the upstream host", logs.String())
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// wrappedErr wraps an error, as transports do.
type wrappedErr struct{ err error }

func (e *wrappedErr) Error() string { return "tls: " + e.err.Error() }
func (e *wrappedErr) Unwrap() error { return e.err }

// writeRecorder records whether anything was written.
type writeRecorder struct {
	*httptest.ResponseRecorder
	wrote bool
}

func (w *writeRecorder) WriteHeader(code int) {
	w.wrote = true
	w.ResponseRecorder.WriteHeader(code)
}

func (w *writeRecorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseRecorder.Write(b)
}

func TestNotFound(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/nowhere", nil)
	NotFound(w, r.WithContext(reqid.NewContext(r.Context(), requestID)))
	if w.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", w.Code)
	}
	if b := testkit.ErrorBody(t, w.Header(), w.Body.Bytes()); b["error"] != "not_found" || b["request_id"] != requestID {
		t.Errorf("body = %v", b)
	}
}
