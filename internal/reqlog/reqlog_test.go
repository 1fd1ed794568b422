package reqlog

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handler  func(w http.ResponseWriter)
		returned bool
		want     int
	}{
		{"written", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, true, http.StatusTeapot},
		{"body only: net/http's 200", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, true, http.StatusOK},
		{"nothing written, returned: 200", func(http.ResponseWriter) {}, true, http.StatusOK},
		{"nothing written, panicked: the recoverer's 500", func(http.ResponseWriter) {}, false, http.StatusInternalServerError},
		{"written, then panicked: what the client got", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }, false, http.StatusAccepted},
		{"first final status counts", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusBadGateway)
		}, true, http.StatusCreated},
		{"1xx passed through, not counted", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNoContent)
		}, true, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := NewWriter(rec)
			tc.handler(w)
			if got := w.Status(tc.returned); got != tc.want {
				t.Errorf("Status = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBytesAndPassThrough(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	w.Header().Set("X-A", "1")
	_, _ = io.WriteString(w, "hello, ")
	_, _ = io.WriteString(w, "world")
	if w.BytesWritten() != 12 || rec.Body.String() != "hello, world" || rec.Header().Get("X-A") != "1" || rec.Code != 200 {
		t.Errorf("bytes %d, body %q, header %v, code %d", w.BytesWritten(), rec.Body, rec.Header(), rec.Code)
	}
}

// wrapper is a writer around another, as a middleware's would be.
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type opaque struct{ http.ResponseWriter }

func TestFrom(t *testing.T) {
	w := NewWriter(httptest.NewRecorder())
	for _, tc := range []struct {
		name string
		in   http.ResponseWriter
		want *Writer
	}{
		{"itself", w, w},
		{"through Unwrap", wrapper{wrapper{w}}, w},
		{"behind a writer without Unwrap", opaque{w}, nil},
		{"none", httptest.NewRecorder(), nil},
		{"nil", nil, nil},
	} {
		if got := From(tc.in); got != tc.want {
			t.Errorf("%s: From = %p, want %p", tc.name, got, tc.want)
		}
	}
}

// A handler used without the access log records into nothing and fails
// nothing: the middleware chain can be reordered without a nil panic.
func TestNilWriterRecordsNothing(t *testing.T) {
	var w *Writer
	w.SetRoute("orders")
	w.SetUser("oid", "tid")
	w.SetRefused("method")
	w.SetShed("in_flight")
	w.SetUpstream(Upstream{Status: 200})
	if w.Upstream() != (Upstream{}) {
		t.Error("a nil writer holds an outcome")
	}
}

// Over a real connection, the writer lets net/http's features through:
// flushing (server-sent events) and hijacking (WebSocket), which counts as
// 101.
func TestFlushAndHijackOverTheConnection(t *testing.T) {
	flushed := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := NewWriter(rw)
		if r.URL.Path == "/hijack" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			_ = brw.Flush()
			c.Close()
			flushed <- w.Status(true)
			return
		}
		_, _ = io.WriteString(w, "event: one\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		flushed <- w.Status(true)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if err != nil || line != "event: one\n" {
		t.Errorf("read %q, %v before the handler returned: not flushed", line, err)
	}
	if s := <-flushed; s != http.StatusOK {
		t.Errorf("status after a flush = %d, want 200", s)
	}

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	if s := <-flushed; s != http.StatusSwitchingProtocols {
		t.Errorf("status of a hijacked connection = %d, want 101", s)
	}
}

func TestMiddlewareLine(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, tc := range []struct {
		name    string
		target  string
		handler http.HandlerFunc
		want    map[string]any
		absent  []string
	}{
		{
			name:   "proxied",
			target: "/orders/7?access_token=query-secret",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetRoute("orders")
				From(w).SetUser("the-oid", "the-tid")
				From(w).SetUpstream(Upstream{Status: 201, Duration: 1500 * time.Microsecond})
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, "{}")
			},
			want: map[string]any{
				"method": "GET", "path": "/orders/7", "route": "orders", "status": 201.0, "bytes": 2.0,
				"oid": "the-oid", "tid": "the-tid", "upstream_status": 201.0, "upstream_ms": 1.5,
			},
			absent: []string{"refused", "shed", "upstream_error"},
		},
		{
			name:   "refused before routing",
			target: "/a/../b",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetRefused("dot_segment")
				w.WriteHeader(http.StatusBadRequest)
			},
			want:   map[string]any{"route": "unmatched", "status": 400.0, "refused": "dot_segment"},
			absent: []string{"oid", "tid", "upstream_status", "upstream_ms"},
		},
		{
			name:   "shed",
			target: "/orders",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetShed("in_flight")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			want: map[string]any{"status": 503.0, "shed": "in_flight"},
		},
		{
			name:   "upstream failed",
			target: "/orders",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetUpstream(Upstream{Status: 504, Duration: time.Second, Err: "timeout"})
				w.WriteHeader(http.StatusGatewayTimeout)
			},
			want: map[string]any{"status": 504.0, "upstream_status": 504.0, "upstream_error": "timeout", "upstream_ms": 1000.0},
		},
		{
			name:   "audit fields and trace IDs",
			target: "/orders/7",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetClient("app-1", "Orders.Read", "Orders.Admin")
				From(w).SetDownstream(Downstream{Resource: "api://orders-api", Source: "exchange", Exchange: 2500 * time.Microsecond})
				tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
				sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
				From(w).SetTrace(trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
			},
			want: map[string]any{
				"client_id": "app-1", "granted_scope": "Orders.Read", "granted_role": "Orders.Admin",
				"downstream_resource": "api://orders-api", "token_source": "exchange", "exchange_ms": 2.5,
				"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
			},
		},
		{
			name:   "a cached token has no exchange time",
			target: "/orders/7",
			handler: func(w http.ResponseWriter, r *http.Request) {
				From(w).SetDownstream(Downstream{Resource: "api://orders-api", Source: "l2"})
			},
			want:   map[string]any{"token_source": "l2", "downstream_resource": "api://orders-api"},
			absent: []string{"exchange_ms", "trace_id", "span_id", "client_id", "granted_scope", "granted_role"},
		},
		{
			name:   "a token in the path is redacted",
			target: "/orders/" + token + "/x",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
			},
			want: map[string]any{"path": "/orders/REDACTED/x"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			log := slog.New(slog.NewJSONHandler(logs, nil))
			var ctxID string
			h := Middleware(log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctxID = reqid.FromContext(r.Context())
				tc.handler(w, r)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.target, nil))

			line := logs.Only(t, "request")
			for k, v := range tc.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := line[k]; ok {
					t.Errorf("%s = %v, want none", k, line[k])
				}
			}
			if id := rec.Header().Get(reqid.Header); id == "" || line["request_id"] != id || ctxID != id {
				t.Errorf("request_id: log %v, response %q, context %q; want one ID", line["request_id"], id, ctxID)
			}
			if s := logs.String(); strings.Contains(s, "query-secret") || strings.Contains(s, token) {
				t.Errorf("the log holds a secret: %s", s)
			}
		})
	}
}

// Above info (log_level warn), no line is written.
func TestMiddlewareQuietAboveInfo(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	Middleware(log)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if logs.String() != "" {
		t.Errorf("logged at warn: %s", logs)
	}
}
