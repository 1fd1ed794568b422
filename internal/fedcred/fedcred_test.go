package fedcred

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// unsignedJWT makes an unsigned compact JWS with claims (the signature part is
// not checked here: Entra checks it).
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc(b) + "." + enc([]byte("signature"))
}

func TestAudience(t *testing.T) {
	tests := []struct{ host, want string }{
		{"https://login.microsoftonline.com", AudiencePublic},
		{"https://login.microsoftonline.us", AudienceUSGov},
		{"https://login.chinacloudapi.cn", AudienceChina},
		{"https://login.partner.microsoftonline.cn", AudienceChina},
		{"https://127.0.0.1:8443", AudiencePublic},
	}
	for _, tc := range tests {
		if got := Audience(tc.host); got != tc.want {
			t.Errorf("Audience(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestTokenFile(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := func(sub string) string {
		return unsignedJWT(t, map[string]any{"iss": "https://oidc.example/x/", "sub": sub, "aud": []string{AudiencePublic},
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()})
	}
	tests := []struct {
		name       string
		content    *string // nil: no file
		wantReason string
	}{
		{name: "a token", content: ptr(good("system:serviceaccount:gw:gw") + "\n")},
		{name: "no file", wantReason: "unreadable"},
		{name: "empty", content: ptr(" \n"), wantReason: "empty"},
		{name: "not a JWT", content: ptr("hello"), wantReason: "not_a_jwt"},
		{name: "payload not JSON", content: ptr("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"), wantReason: "not_a_jwt"},
		{name: "too large", content: ptr(strings.Repeat("a", maxTokenFile+1)), wantReason: "not_a_jwt"},
		{name: "expired", content: ptr(unsignedJWT(t, map[string]any{"iss": "i", "sub": "s", "exp": now.Add(-time.Second).Unix()})), wantReason: "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "azure-identity-token")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			f, err := NewTokenFile(TokenFileConfig{Path: path, Metrics: m, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := f.Assertion(context.Background())
			if tc.wantReason == "" {
				if err != nil || tok != strings.TrimSpace(*tc.content) {
					t.Fatalf("Assertion = %q, %v; want the file's token", tok, err)
				}
				if got := testutil.ToFloat64(m.expiry.WithLabelValues(KindWorkloadIdentity)); got != float64(now.Add(time.Hour).Unix()) {
					t.Errorf("expiry metric = %v, want the token's exp", got)
				}
				if f.Err() != nil {
					t.Errorf("Err = %v after a good read", f.Err())
				}
				return
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.Reason != tc.wantReason || fe.Kind != KindWorkloadIdentity {
				t.Fatalf("Assertion error = %v, want reason %s", err, tc.wantReason)
			}
			if fe.CredentialFailure() == "" || tok != "" {
				t.Errorf("token %q with a failure", tok)
			}
			if got := testutil.ToFloat64(m.failures.WithLabelValues(KindWorkloadIdentity, tc.wantReason)); got != 1 {
				t.Errorf("failures{%s} = %v, want 1", tc.wantReason, got)
			}
			if f.Err() == nil {
				t.Error("Err = nil after a failed read")
			}
			if _, err := f.Check(); err == nil {
				t.Error("Check = nil for a bad file")
			}
		})
	}
}

// The kubelet rewrites the token file (through a symlink swap): every
// assertion is the file's token at that moment.
func TestTokenFileIsReadForEveryAssertion(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "azure-identity-token")
	now := time.Now()
	write := func(gen, sub string) string {
		tok := unsignedJWT(t, map[string]any{"iss": "i", "sub": sub, "exp": now.Add(time.Hour).Unix()})
		d := filepath.Join(dir, gen)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := link + ".tmp"
		if err := os.Symlink(filepath.Join(d, "token"), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := write("gen1", "a")
	f, err := NewTokenFile(TokenFileConfig{Path: link})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := f.Assertion(context.Background()); err != nil || tok != first {
		t.Fatalf("first assertion %q, %v", tok, err)
	}
	second := write("gen2", "b")
	if tok, err := f.Assertion(context.Background()); err != nil || tok != second {
		t.Fatalf("after the rewrite: %q, %v; want the new token", tok, err)
	}
}

func TestParseClaims(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	c, err := ParseClaims(unsignedJWT(t, map[string]any{"iss": "https://oidc/x/", "sub": "system:serviceaccount:ns:sa", "aud": "api://AzureADTokenExchange", "exp": exp.Unix()}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://oidc/x/" || c.Subject != "system:serviceaccount:ns:sa" || len(c.Audiences) != 1 || c.Audiences[0] != AudiencePublic || !c.Expiry.Equal(exp) {
		t.Errorf("claims = %+v", c)
	}
	for _, bad := range []string{"", "a.b", "a..c", "a.b.c.d", "x.!!!.y", "eyJ9.eyJhdWQiOjF9.c2ln"} {
		if _, err := ParseClaims(bad); err == nil {
			t.Errorf("ParseClaims(%q) accepted", bad)
		}
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpIiwiZXhwIjoxfQ.c2ln")
	f.Add("a.b.c")
	f.Add("eyJ9.eyJhdWQiOlsiYSIsMV19.c2ln")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ParseClaims(tok)
		if err != nil {
			return
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted %q, which is not three parts", tok)
		}
		_ = c
	})
}

func ptr(s string) *string { return &s }

// A caller that gives up is not the identity's failure: the error says
// so, and nothing is counted or kept for readiness.
func TestManagedIdentityCallerGivesUp(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")
	t.Setenv("IDENTITY_HEADER", "secret")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	mi, err := NewManagedIdentity(ManagedIdentityConfig{ClientID: "0d9e1c2b-0000-4000-8000-000000000001", Audience: AudiencePublic, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = mi.Assertion(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Assertion = %v, want context.Canceled", err)
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues(KindManagedIdentity, "unavailable")); got != 0 {
		t.Errorf("failures = %v, want 0", got)
	}
	if mi.Err() != nil {
		t.Errorf("Err = %v, want nil", mi.Err())
	}
}
