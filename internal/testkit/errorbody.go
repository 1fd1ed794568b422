package testkit

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// ErrorBody decodes the gateway's JSON error body,
//
//	{"error":"…","error_description":"…","request_id":"…"}
//
// given the answer's header and body. It fails t unless the body is a JSON
// object of strings with an "error", and reports an error unless the
// Content-Type is JSON. It is for the gateway's own answers; Entra's error
// bodies have another shape.
func ErrorBody[B string | []byte](t testing.TB, header http.Header, body B) map[string]string {
	t.Helper()
	var b map[string]string
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("body %q is not a JSON error: %v", body, err)
	}
	if b["error"] == "" {
		t.Fatalf("body %q has no error", body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json; body %q", ct, body)
	}
	return b
}
