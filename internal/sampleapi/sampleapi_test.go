package sampleapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// jwtLike is an unsigned token shaped like a JWT, with the given claims.
func jwtLike(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(payload) + "." + enc([]byte("signature-bytes"))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// echo sends r to the sample API and decodes its answer; raw is the body.
func echo(t *testing.T, r *http.Request) (e Echo, raw string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	raw = rec.Body.String()
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return e, raw
}

func TestHandlerEchoesRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/orders/42?expand=items&limit=5", strings.NewReader("{}"))
	r.Header.Set("X-Request-Id", "req-1")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "*/*")
	e, _ := echo(t, r)
	if e.Path != "/orders/42" || e.Method != http.MethodPost || e.Query != "expand=items&limit=5" {
		t.Errorf("path, method, query = %q, %q, %q; want /orders/42, POST, expand=items&limit=5", e.Path, e.Method, e.Query)
	}
	if want := []string{"Accept", "Content-Type", "X-Request-Id"}; !slices.Equal(e.Headers, want) {
		t.Errorf("headers = %q, want %q (sorted names)", e.Headers, want)
	}
}

func TestHandlerAuthorization(t *testing.T) {
	claims := map[string]any{"aud": "api://orders-api", "oid": "11111111-aaaa-4aaa-8aaa-111111111111", "scp": "Orders.Read"}
	jwt := jwtLike(t, claims)
	for _, tc := range []struct {
		name       string
		header     string // Authorization; "" sends none
		token      string // the credential that must not be echoed
		wantAuthz  string
		wantHash   string
		wantClaims map[string]any
	}{
		{name: "none", wantAuthz: "none"},
		{name: "bearer JWT", header: "Bearer " + jwt, token: jwt, wantAuthz: "Bearer", wantHash: sha(jwt), wantClaims: claims},
		{name: "lowercase scheme", header: "bearer " + jwt, token: jwt, wantAuthz: "bearer", wantHash: sha(jwt), wantClaims: claims},
		{name: "bearer opaque token", header: "Bearer opaque-downstream-token", token: "opaque-downstream-token", wantAuthz: "Bearer", wantHash: sha("opaque-downstream-token")},
		{name: "bearer three parts, payload not base64", header: "Bearer a.!!!.c", token: "a.!!!.c", wantAuthz: "Bearer", wantHash: sha("a.!!!.c")},
		{name: "bearer three parts, payload not JSON", header: "Bearer a.bm90LWpzb24.c", token: "a.bm90LWpzb24.c", wantAuthz: "Bearer", wantHash: sha("a.bm90LWpzb24.c")},
		{name: "basic", header: "Basic dXNlcjpwYXNzd29yZA==", token: "dXNlcjpwYXNzd29yZA==", wantAuthz: "Basic"},
		{name: "token without scheme", header: jwt, token: jwt, wantAuthz: "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/me", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			e, raw := echo(t, r)
			if e.Authorization != tc.wantAuthz {
				t.Errorf("authorization = %q, want %q", e.Authorization, tc.wantAuthz)
			}
			if e.TokenSHA256 != tc.wantHash {
				t.Errorf("token_sha256 = %q, want %q", e.TokenSHA256, tc.wantHash)
			}
			if len(e.Claims) != len(tc.wantClaims) {
				t.Errorf("claims = %v, want %v", e.Claims, tc.wantClaims)
			}
			for k, v := range tc.wantClaims {
				if e.Claims[k] != v {
					t.Errorf("claims[%q] = %v, want %v", k, e.Claims[k], v)
				}
			}
			if tc.wantClaims == nil && strings.Contains(raw, `"claims"`) {
				t.Errorf("body has a claims field: %s", raw)
			}
			if tc.token != "" && strings.Contains(raw, tc.token) {
				t.Errorf("the response echoes the credential: %s", raw)
			}
		})
	}
}
