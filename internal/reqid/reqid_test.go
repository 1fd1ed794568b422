package reqid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var generated = regexp.MustCompile(`^[0-9a-f]{32}$`)

// serve runs Prepare and NewContext, as the gateway does, for one request whose X-Request-Id header values are
// given (none when ids is empty) and returns the response and what the next
// handler saw: the ID in its context and the request's header.
func serve(t *testing.T, ids ...string) (rec *httptest.ResponseRecorder, ctxID, hdrID string) {
	t.Helper()
	called := false
	next := func(w http.ResponseWriter, r *http.Request) {
		called = true
		ctxID = FromContext(r.Context())
		hdrID = r.Header.Get(Header)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := Prepare(w, r)
		next(w, r.WithContext(NewContext(r.Context(), id)))
	})
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	for _, id := range ids {
		req.Header.Add(Header, id)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !called {
		t.Fatal("the next handler was not called")
	}
	return rec, ctxID, hdrID
}

func TestKeepsSaneClientID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
	}{
		{"uuid", "3f1c2a9e-7b5d-4c1e-9a0f-2d6b8e4c1a7f"},
		{"one character", "x"},
		{"visible punctuation", "trace:abc/123_!~"},
		{"exactly 128 characters", strings.Repeat("a", 128)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ctxID, hdrID := serve(t, tc.id)
			if got := rec.Header().Get(Header); got != tc.id {
				t.Errorf("response %s = %q, want the client's %q", Header, got, tc.id)
			}
			if ctxID != tc.id {
				t.Errorf("FromContext in next = %q, want %q", ctxID, tc.id)
			}
			if hdrID != tc.id {
				t.Errorf("request header in next = %q, want %q", hdrID, tc.id)
			}
		})
	}
}

func TestReplacesBadClientID(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []string // header values sent; none means no header
	}{
		{"absent", nil},
		{"empty", []string{""}},
		{"129 characters", []string{strings.Repeat("a", 129)}},
		{"newline (log injection)", []string{"abc\ninjected=1"}},
		{"carriage return", []string{"abc\rdef"}},
		{"space", []string{"abc def"}},
		{"tab", []string{"abc\tdef"}},
		{"NUL", []string{"abc\x00"}},
		{"DEL", []string{"abc\x7f"}},
		{"non-ASCII", []string{"café"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ctxID, hdrID := serve(t, tc.ids...)
			got := rec.Header().Get(Header)
			if !generated.MatchString(got) {
				t.Fatalf("response %s = %q, want a new 32-hex-character ID", Header, got)
			}
			if ctxID != got {
				t.Errorf("FromContext in next = %q, want the response's %q", ctxID, got)
			}
			if hdrID != got {
				t.Errorf("request header in next = %q, want the new ID %q (the upstream must see it)", hdrID, got)
			}
		})
	}
}

func TestNewIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if !generated.MatchString(id) {
			t.Fatalf("New() = %q, want 32 hex characters", id)
		}
		if seen[id] {
			t.Fatalf("New() returned %q twice", id)
		}
		seen[id] = true
	}
}

func TestGeneratedIDsDifferAcrossRequests(t *testing.T) {
	a, _, _ := serve(t)
	b, _, _ := serve(t)
	if x, y := a.Header().Get(Header), b.Header().Get(Header); x == y {
		t.Errorf("two requests without an ID both got %q", x)
	}
}

func TestContext(t *testing.T) {
	if got := FromContext(context.Background()); got != "" {
		t.Errorf("FromContext(empty) = %q, want \"\"", got)
	}
	if got := FromContext(NewContext(context.Background(), "req-1")); got != "req-1" {
		t.Errorf("FromContext(NewContext(req-1)) = %q", got)
	}
}

// TestSendsOneID: with several X-Request-Id headers, the first is
// judged, and the next handler (the upstream) sees only the chosen ID, never
// an unchecked second value.
func TestSendsOneID(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []string
		want string // "" means a new ID
	}{
		{"first sane", []string{"req-1", "evil value\twith tab"}, "req-1"},
		{"first bad", []string{"bad id", "req-2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, id := range tc.ids {
				req.Header.Add(Header, id)
			}
			rec := httptest.NewRecorder()
			Prepare(rec, req)
			seen := req.Header.Values(Header) // what goes upstream
			got := rec.Header().Get(Header)
			if tc.want != "" && got != tc.want {
				t.Errorf("ID = %q, want %q", got, tc.want)
			}
			if tc.want == "" && !generated.MatchString(got) {
				t.Errorf("ID = %q, want a new one", got)
			}
			if len(seen) != 1 || seen[0] != got {
				t.Errorf("next saw %s values %q, want only %q", Header, seen, got)
			}
		})
	}
}
