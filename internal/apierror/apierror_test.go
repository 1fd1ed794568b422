package apierror

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// write answers with fn on a request whose context carries requestID (none when "").
func write(t *testing.T, requestID string, fn func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	if requestID != "" {
		r = r.WithContext(reqid.NewContext(r.Context(), requestID))
	}
	rec := httptest.NewRecorder()
	fn(rec, r)
	return rec
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requestID string
		status    int
		code      string
		desc      string
		want      string // the exact body
	}{
		{
			name: "with request ID", requestID: "req-42", status: http.StatusUnauthorized,
			code: "invalid_token", desc: "the token has expired",
			want: `{"error":"invalid_token","error_description":"the token has expired","request_id":"req-42"}` + "\n",
		},
		{
			name: "without request ID or description", status: http.StatusNotFound, code: "not_found",
			want: `{"error":"not_found"}` + "\n",
		},
		{
			name: "no HTML escaping", requestID: "r", status: http.StatusBadRequest, code: "invalid_request",
			desc: "use <App ID URI>/.default & retry",
			want: `{"error":"invalid_request","error_description":"use <App ID URI>/.default & retry","request_id":"r"}` + "\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := write(t, tc.requestID, func(w http.ResponseWriter, r *http.Request) {
				Write(w, r, tc.status, tc.code, tc.desc)
			})
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			for name, want := range map[string]string{
				"Content-Type":           "application/json; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("body = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestWriteBody(t *testing.T) {
	t.Run("claims and request ID from context", func(t *testing.T) {
		rec := write(t, "req-ctx", func(w http.ResponseWriter, r *http.Request) {
			WriteBody(w, r, http.StatusUnauthorized, Body{Error: "insufficient_claims", Claims: "eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="})
		})
		got := testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes())
		want := map[string]string{"error": "insufficient_claims", "claims": "eyJhY2Nlc3NfdG9rZW4iOnt9fQ==", "request_id": "req-ctx"}
		if len(got) != len(want) {
			t.Errorf("body = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("body[%q] = %q, want %q", k, got[k], v)
			}
		}
	})
	t.Run("explicit request ID wins", func(t *testing.T) {
		rec := write(t, "req-ctx", func(w http.ResponseWriter, r *http.Request) {
			WriteBody(w, r, http.StatusBadGateway, Body{Error: "bad_gateway", RequestID: "req-explicit"})
		})
		if !strings.Contains(rec.Body.String(), `"request_id":"req-explicit"`) {
			t.Errorf("body = %s, want request_id req-explicit", rec.Body)
		}
	})
}
