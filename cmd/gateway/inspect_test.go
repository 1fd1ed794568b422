package main

// Tests of "gateway inspect": real Entra tokens with the key sets that sign
// them (internal/testkit/testdata/entra-real, see its SOURCES.md), and
// tokens of the local tenant checked against a gateway configuration for
// it, whose verdicts are compared with the tenant's own answer to an
// On-Behalf-Of exchange.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// inspectTestdata holds the real tokens and key sets.
var inspectTestdata = testkit.EntraFixtureDir() + "/"

// inspectResult is one run of "gateway inspect".
type inspectResult struct {
	stdout, stderr string
	err            error
}

// runInspectCmd runs "gateway inspect args..." with stdin, and fails the
// test if the output shows the token or its signature.
func runInspectCmd(t *testing.T, token, stdin string, args ...string) inspectResult {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"inspect"}, args...), nil, strings.NewReader(stdin), &out, &errOut)
	r := inspectResult{stdout: out.String(), stderr: errOut.String(), err: err}
	checkTokenNotShown(t, token, r.stdout+r.stderr)
	return r
}

// checkTokenNotShown fails the test if text holds the token or its signature.
func checkTokenNotShown(t *testing.T, token, text string) {
	t.Helper()
	tok := strings.TrimSpace(token)
	if tok == "" {
		return
	}
	if strings.Contains(text, tok) {
		t.Errorf("the output shows the token")
	}
	if segs := strings.Split(tok, "."); len(segs) == 3 && len(segs[2]) >= 16 && strings.Contains(text, segs[2]) {
		t.Errorf("the output shows the token's signature")
	}
}

// inspectDoc is the decoded -json output.
type inspectDoc map[string]any

// get returns the value at a dotted path; list elements are named by index
// ("obo.problems.0.code").
func (d inspectDoc) get(path string) any {
	var v any = map[string]any(d)
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// list returns field of each element of the list at path.
func (d inspectDoc) list(path, field string) []string {
	var out []string
	l, _ := d.get(path).([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, showJSONValue(m[field]))
		} else {
			out = append(out, showJSONValue(e))
		}
	}
	return out
}

// inspectJSON runs inspect with -json and decodes its one object.
func inspectJSON(t *testing.T, token, stdin string, args ...string) (inspectDoc, inspectResult) {
	t.Helper()
	r := runInspectCmd(t, token, stdin, append([]string{"-json"}, args...)...)
	if r.err != nil {
		t.Fatalf("inspect %v: %v\nstderr: %s", args, r.err, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Errorf("-json printed more than one line:\n%s", r.stdout)
	}
	var d inspectDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("-json output is not one JSON object: %v\n%s", err, r.stdout)
	}
	return d, r
}

// showJSONValue writes a decoded JSON value; whole numbers without exponent.
func showJSONValue(v any) string {
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(v)
}

// checkInspectJSON compares values at paths, as showJSONValue writes them.
func checkInspectJSON(t *testing.T, d inspectDoc, want map[string]any) {
	t.Helper()
	for path, w := range want {
		if got := d.get(path); showJSONValue(got) != showJSONValue(w) {
			t.Errorf("%s = %s, want %s", path, showJSONValue(got), showJSONValue(w))
		}
	}
}

func checkInspectText(t *testing.T, what, text string, phrases []string) {
	t.Helper()
	for _, p := range phrases {
		if !strings.Contains(text, p) {
			t.Errorf("%s lacks %q:\n%s", what, p, text)
		}
	}
}

func readInspectFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(inspectTestdata + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// inspectUnsignedToken builds an unsigned token (alg none) from a claims
// fixture ({"payload": {...}}).
func inspectUnsignedToken(t *testing.T, name string) string {
	t.Helper()
	var doc struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(readInspectFixture(t, name)), &doc); err != nil {
		t.Fatal(err)
	}
	return testkit.B64JSON(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + base64.RawURLEncoding.EncodeToString(doc.Payload) + "."
}

// inspectX5COnlyJWKS writes a JWKS whose one key has only an x5c certificate (no
// n, e or alg), made from a PEM certificate fixture.
func inspectX5COnlyJWKS(t *testing.T, pemName string) string {
	t.Helper()
	certs, err := pki.ParseCertsPEM([]byte(readInspectFixture(t, pemName)))
	if err != nil {
		t.Fatal(err)
	}
	kid := base64.RawURLEncoding.EncodeToString(pki.ThumbprintSHA1(certs[0]))
	doc := map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid,
		"x5c": []string{base64.StdEncoding.EncodeToString(certs[0].Raw)},
	}}}
	b, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "x5c-only-keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// inspectAtIat60 is a fixture's iat + 60s, the clock its VERIFICATION.txt line uses.
func inspectAtIat60(iat int64) string { return strconv.FormatInt(iat+60, 10) }

func TestInspectRealTokens(t *testing.T) {
	t.Parallel()
	const (
		commonKeys2016 = "jose4j_aad_common_discovery_keys_2016-08-01.json"
		tenantKeys2016 = "jose4j_aad_tenant_30aa0e58_discovery_v2.0_keys_2016-08-02.json"
		stdB64Keys2015 = "jose4j_aad_common_discovery_keys_2015-01-07_std_base64_n.json"
		certZ039z      = "aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem"
	)
	tests := []struct {
		name string
		// token is a fixture file; build makes the token instead.
		token string
		build func(t *testing.T) string
		// jwks is a fixture file; jwksPath a file the test made.
		jwks     string
		jwksPath func(t *testing.T) string
		at       string // -at; "" evaluates now
		want     map[string]any
		problems []string // the codes of obo.problems, in order
		text     []string // phrases of the text output
		stderr   []string
	}{
		{
			name: "v1 ID token with kid and x5t, common keys", token: "jose4j_v1_id_token.jwt", jwks: commonKeys2016, at: inspectAtIat60(1470086997),
			want: map[string]any{
				"input.kind": "jwt", "version": "1.0", "version_source": "ver claim", "kind": "id_token",
				"issuer.shape": "v1", "issuer.cloud": "Microsoft's public cloud", "tenant.matches_issuer": true,
				"header.alg": "RS256", "header.kid": "MnC_VZcATfM5pOYiJHMba9goEKY", "header.x5t": "MnC_VZcATfM5pOYiJHMba9goEKY", "header.nonce": false,
				"signature.status": "verified", "signature.key_id": "MnC_VZcATfM5pOYiJHMba9goEKY",
				"times.status": "valid", "times.at_source": "-at", "times.exp.relative": "expires in 1h4m", "times.iat.relative": "issued 1m ago",
				"subject.username": "x@cboidctesttesttest.onmicrosoft.com", "amr.0": "pwd", "obo.usable": false,
			},
			problems: []string{"id_token"},
			text: []string{
				"signature verified with key MnC_VZcATfM5pOYiJHMba9goEKY",
				"this is an ID token (aud = the frontend's client ID 56c77428-2d91-48a0-93e6-ca9154965e51, no scp): send the access token",
				"VALID at 2016-08-01T21:30:57Z (per -at)", "OBO assertion: NOT USABLE",
			},
		},
		{
			name: "v2 ID token, tenant key set with per-key issuers", token: "jose4j_v2_id_token.jwt", jwks: tenantKeys2016, at: inspectAtIat60(1470148361),
			want: map[string]any{
				"version": "2.0", "issuer.shape": "v2", "issuer.tenant": "30aa0e58-719c-44f0-b5bb-e131f1f68ab3", "kind": "id_token",
				"signature.status": "verified", "signature.key_id": "MnC_VZcATfM5pOYiJHMba9goEKY", "times.status": "valid",
				"subject.username_claim": "preferred_username",
			},
			problems: []string{"id_token"},
			text:     []string{"v2 shape", "signature verified with key MnC_VZcATfM5pOYiJHMba9goEKY"},
		},
		{
			name: "v1 token with x5t and no kid, key set with standard-base64 moduli", token: "idmodel_Cyrano_v1_token.jwt", jwks: stdB64Keys2015, at: inspectAtIat60(1419268520),
			want: map[string]any{
				"header.kid": nil, "header.x5t": "kriMPdmBvx68skT8-mPAB3BseeA", "kind": "id_token",
				"signature.status": "verified", "signature.key_id": "x5t kriMPdmBvx68skT8-mPAB3BseeA", "times.status": "valid",
			},
			problems: []string{"id_token"},
			text:     []string{"signature verified with key x5t kriMPdmBvx68skT8-mPAB3BseeA", "its key is looked up by x5t"},
		},
		{
			name: "v1 access token for a custom API: spn: audience, scp", token: "passport_v1_access_token_custom_api_scp.jwt", jwks: commonKeys2016, at: inspectAtIat60(1467311248),
			want: map[string]any{
				"kind": "user", "scopes.0": "user_impersonation", "audience.kind": "spn", "audience.values.0.value": "spn:6514a8ca-d9e4-4155-b292-65258398f3aa",
				"client.id": "bebfad57-efd7-419b-b74b-4b9dab7bd470", "client.claim": "appid", "client.auth_method": "client secret",
				"subject.oid": "7912fe7b-b5ab-425b-bb1f-0e83b99fca7f", "acr": "1",
				"signature.status": "verified", "signature.key_id": "YbRAQRYcE_motWVJKHrwLBbd_9s", "obo.usable": true,
			},
			problems: nil,
			text:     []string{"USER (delegated)", "named with the spn: prefix", "OBO assertion: USABLE", "not checked: audience: whether spn:6514a8ca-d9e4-4155-b292-65258398f3aa is the gateway (pass -config FILE)"},
		},
		{
			name: "v1 access token, key from a PEM certificate", token: "msdocs_v1obo_incoming_assertion_custom_api_v1_access_token.jwt", jwks: certZ039z, at: inspectAtIat60(1493423152),
			want: map[string]any{
				"kind": "user", "audience.kind": "app_id_uri", "client.auth_method": "public client (no credential)",
				"signature.status": "verified", "signature.key_id": "z039zdsFuizpBfBVK1Tn25QHYO0",
				"times.exp.relative": "expires in 12h4m", "obo.usable": true,
			},
			text: []string{"signature verified with key z039zdsFuizpBfBVK1Tn25QHYO0 (from " + certZ039z + ")"},
		},
		{
			name: "Microsoft Graph token with a nonce header", token: "msdocs_v2obo_response_access_token_MSGRAPH_NONCE_unverifiable.jwt", jwks: certZ039z, at: inspectAtIat60(1493930305),
			want: map[string]any{
				"header.nonce": true, "kind": "user", "audience.kind": "microsoft_graph", "client.name": "TodoDotnetObo",
				"signature.status": "nonce", "signature.hashed_nonce_verifies": true, "times.status": "valid",
			},
			problems: []string{"graph_audience"},
			text: []string{
				"does not verify, by design", "Microsoft Graph token",
				"audience is Microsoft Graph: the frontend must request a token for api://<gateway> (scope api://<gateway>/access_as_user)",
			},
		},
		{
			name: "Microsoft Graph token without a key set", token: "msdocs_v2obo_response_access_token_MSGRAPH_NONCE_unverifiable.jwt", at: inspectAtIat60(1493930305),
			want:     map[string]any{"signature.status": "nonce", "signature.hashed_nonce_verifies": nil},
			problems: []string{"graph_audience"},
			text:     []string{"cannot be verified, by design"},
		},
		{
			// Its tampered last character is not a canonical base64url
			// spelling: refused before any signature is checked.
			name: "ID token with a tampered signature", token: "passport_NEGATIVE_v1_id_token_wrong_signature.jwt", jwks: commonKeys2016, at: inspectAtIat60(1471313417),
			want:     map[string]any{"signature.status": "refused", "kind": "id_token"},
			problems: []string{"id_token", "not_compact"},
			text:     []string{"not verified: the bearer token is not a JWT: each of its three parts must be unpadded base64url"},
		},
		{
			name: "ID token with another key's signature", build: func(t *testing.T) string {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				tok := readInspectFixture(t, "jose4j_v1_id_token.jwt")
				return testkit.SignJWT(t, key, testkit.JWTHeader(t, tok), testkit.JWTClaims(t, tok))
			}, jwks: commonKeys2016, at: inspectAtIat60(1470086997),
			want:     map[string]any{"signature.status": "invalid", "signature.key_id": "MnC_VZcATfM5pOYiJHMba9goEKY", "kind": "id_token"},
			problems: []string{"id_token", "bad_signature"},
			text:     []string{"signature does not verify with key MnC_VZcATfM5pOYiJHMba9goEKY", "Entra answers AADSTS50013"},
		},
		{
			name: "app-only token (Office 365 Management sample, unsigned)",
			build: func(t *testing.T) string {
				return inspectUnsignedToken(t, "claims/msdocs_o365mgmt_v1_app_only_access_token_roles.payload.json")
			},
			at: inspectAtIat60(1431655194),
			want: map[string]any{
				"kind": "app", "roles.0": "ServiceHealth.Read", "roles.1": "ActivityFeed.Read", "scopes": nil,
				"client.id": "a6099727-6b7b-482c-b509-1df309acc563", "audience.kind": "microsoft_api",
				"signature.status": "unsigned", "obo.problems.1.aadsts.0": 7000114,
			},
			problems: []string{"unsigned", "app_only", "other_audience"},
			text:     []string{"APP-ONLY (no user)", "app-only token from client credentials: OBO needs the user's token", "Office 365 Management APIs"},
		},
		{
			name: "unsigned ID token of an OBO response (alg none)", token: "msdocs_v1obo_response_id_token_UNSIGNED_alg_none.jwt", jwks: certZ039z, at: inspectAtIat60(1493423168),
			want:     map[string]any{"header.alg": "none", "signature.status": "unsigned", "kind": "id_token"},
			problems: []string{"unsigned", "id_token"},
			text:     []string{"unsigned (alg none, 0-byte signature)"},
		},
		{
			name: "Azure AD Graph token of an OBO response", token: "msdocs_v1obo_response_access_token_aadgraph_v1.jwt", jwks: certZ039z, at: inspectAtIat60(1493423168),
			want:     map[string]any{"kind": "user", "audience.kind": "microsoft_api", "signature.status": "verified"},
			problems: []string{"other_audience"},
			text:     []string{"Azure AD Graph (retired)"},
		},
		{
			name: "ID-token-shaped v2 assertion of the 2017 docs", token: "msdocs_v2obo_incoming_assertion_v2_token.jwt", jwks: certZ039z, at: inspectAtIat60(1493920916),
			want:     map[string]any{"version": "2.0", "kind": "id_token", "signature.status": "verified", "signature.key_id": "z039zdsFuizpBfBVK1Tn25QHYO0"},
			problems: []string{"id_token"},
		},
		{
			name: "docs sample whose issuer names another tenant than tid", token: "claims/msdocs_access-tokens_v1_user_access_token.UNVERIFIABLE_truncated_sig.jwt", at: inspectAtIat60(1537233106),
			want: map[string]any{
				"tenant.matches_issuer": false, "issuer.tenant": "fa15d692-e9c7-4460-a743-29f29522229",
				"signature.status": "refused",
			},
			problems: []string{"tenant_mismatch", "not_compact"},
			text:     []string{"iss names ANOTHER tenant"},
		},
		{
			name: "key set without the token's key", token: "idmodel_Cyrano_v1_token.jwt", jwks: commonKeys2016, at: inspectAtIat60(1419268520),
			want:     map[string]any{"signature.status": "unknown_key"},
			problems: []string{"id_token", "unknown_key"},
			text:     []string{"no key with x5t kriMPdmBvx68skT8-mPAB3BseeA in " + commonKeys2016, "signed by a key that is not the tenant's (x5t kriMPdmBvx68skT8-mPAB3BseeA not in the key set"},
		},
		{
			name: "real token evaluated now: expired", token: "jose4j_v1_id_token.jwt", jwks: commonKeys2016,
			want:     map[string]any{"times.status": "expired", "times.at_source": "now", "signature.status": "verified", "obo.problems.1.aadsts.0": 500133},
			problems: []string{"id_token", "expired"},
			text:     []string{"EXPIRED at", "Entra answers AADSTS500133"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := ""
			if tc.build != nil {
				tok = tc.build(t)
			} else {
				tok = readInspectFixture(t, tc.token)
			}
			var args []string
			switch {
			case tc.jwks != "":
				args = append(args, "-jwks", inspectTestdata+tc.jwks)
			case tc.jwksPath != nil:
				args = append(args, "-jwks", tc.jwksPath(t))
			}
			if tc.at != "" {
				args = append(args, "-at", tc.at)
			}

			d, r := inspectJSON(t, tok, "", append(args, tok)...)
			checkInspectJSON(t, d, tc.want)
			if got := d.list("obo.problems", "code"); !slices.Equal(got, tc.problems) {
				t.Errorf("obo.problems codes = %v, want %v", got, tc.problems)
			}
			if usable := d.get("obo.usable"); usable != (len(tc.problems) == 0) {
				t.Errorf("obo.usable = %v with problems %v", usable, tc.problems)
			}
			checkInspectText(t, "stderr", r.stderr, tc.stderr)

			// The text form, with the token on stdin as "Bearer <token>".
			text := runInspectCmd(t, tok, "Bearer "+tok+"\n", append(args, "-")...)
			if text.err != nil {
				t.Fatalf("inspect: %v", text.err)
			}
			checkInspectText(t, "text output", text.stdout, tc.text)
			checkInspectText(t, "text output", text.stdout, []string{"Claims (decoded, not trusted unless the signature verified)", "removed: surrounding whitespace, Bearer prefix"})
		})
	}
}

// TestInspectPublicCloudConfig checks a real token against a gateway of
// Microsoft's public cloud (issuers computed offline) whose certificate and
// shared-cache keys are not on this machine: the configuration still loads.
func TestInspectPublicCloudConfig(t *testing.T) {
	t.Parallel()
	cfg := configtest.Write(t, &config.Config{
		Entra: config.Entra{
			TenantID:    "268da1a1-9db4-48b9-b1fe-683250ba90cc",
			ClientID:    "6514a8ca-d9e4-4155-b292-65258398f3aa",
			Audiences:   []string{"api://obo-gateway"},
			Certificate: config.Certificate{Path: "/nonexistent/gateway.pem"},
		},
		Cache: config.Cache{Redis: &config.Redis{Address: "redis.internal:6379"}},
		Routes: []config.Route{{Name: "orders", PathPrefix: "/orders", Upstream: "https://orders.internal.example.com",
			DownstreamScopes: []string{"api://orders-api/.default"}, RequiredScopes: []string{"user_impersonation"}}},
	})
	tok := readInspectFixture(t, "passport_v1_access_token_custom_api_scp.jwt")
	d, r := inspectJSON(t, tok, tok, "-config", cfg, "-jwks", inspectTestdata+"jose4j_aad_common_discovery_keys_2016-08-01.json", "-at", inspectAtIat60(1467311248), "-")
	checkInspectJSON(t, d, map[string]any{
		"audience.kind":                  "gateway_spn",
		"tenant.gateway":                 "home tenant",
		"gateway.config":                 "gateway.yaml",
		"gateway.accepted":               false,
		"gateway.reason":                 "audience",
		"gateway.issuers.v1":             "https://sts.windows.net/268da1a1-9db4-48b9-b1fe-683250ba90cc/",
		"gateway.issuers.v2":             "https://login.microsoftonline.com/268da1a1-9db4-48b9-b1fe-683250ba90cc/v2.0",
		"gateway.issuers.source":         "computed for Microsoft's public cloud (no network)",
		"gateway.routes.0.name":          "orders",
		"gateway.routes.0.allowed":       false,
		"gateway.routes.0.policy_allows": true,
		"obo.usable":                     true,
	})
	checks := map[string]string{}
	for i, name := range d.list("gateway.checks", "name") {
		checks[name] = fmt.Sprint(d.get(fmt.Sprintf("gateway.checks.%d.result", i)))
	}
	wantChecks := map[string]string{"format": "pass", "header": "pass", "signature": "pass", "claims": "pass", "time": "pass", "tenant": "pass", "issuer": "pass", "audience": "fail", "token_kind": "pass"}
	if fmt.Sprint(checks) != fmt.Sprint(wantChecks) {
		t.Errorf("gateway checks = %v, want %v", checks, wantChecks)
	}
	checkInspectText(t, "stderr", r.stderr, []string{
		`inspect: config: entra.certificate.path: cannot read "/nonexistent/gateway.pem"`, "ignored (not needed to inspect a token)",
		"inspect: config: cache.redis.encryption_keys: required",
	})

	text := runInspectCmd(t, tok, tok, "-config", cfg, "-at", inspectAtIat60(1467311248), "-")
	checkInspectText(t, "text output", text.stdout, []string{
		"Gateway gateway.yaml: REFUSED (reason audience)",
		"written spn:6514a8ca-d9e4-4155-b292-65258398f3aa: the gateway compares aud literally",
		"https://sts.windows.net/268da1a1-9db4-48b9-b1fe-683250ba90cc/ is the tenant's v1 issuer",
		"??   signature   not checked: pass -jwks FILE, the tenant's key set (https://login.microsoftonline.com/268da1a1-9db4-48b9-b1fe-683250ba90cc/discovery/v2.0/keys)",
	})
}

func writeInspectFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestInspectInput(t *testing.T) {
	t.Parallel()
	tok := readInspectFixture(t, "jose4j_v2_id_token.jwt")
	segs := strings.Split(tok, ".")
	tests := []struct {
		name    string
		stdin   string
		want    map[string]any
		removed string // one of input.removed
		problem string // the first obo problem's code
		text    []string
	}{
		{name: "Bearer prefix and a newline", stdin: "  Bearer " + tok + "\n", want: map[string]any{"input.kind": "jwt", "kind": "id_token"}, removed: "Bearer prefix"},
		{name: "a whole Authorization header", stdin: "Authorization: Bearer " + tok, want: map[string]any{"input.kind": "jwt"}, removed: "Authorization: prefix"},
		{name: "quoted", stdin: `"` + tok + `"`, want: map[string]any{"input.kind": "jwt"}, removed: "quotes"},
		{
			name: "a token response", stdin: `{"token_type":"Bearer","expires_in":3599,"access_token":"` + tok + `","refresh_token":"0.AAAA-not-a-jwt"}`,
			want: map[string]any{"input.kind": "jwt", "version": "2.0"}, removed: "token response JSON (its access_token is inspected; id_token and refresh_token are ignored)",
		},
		{
			name: "an encrypted token (JWE)", stdin: inspectB64(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".a2V5.aXY.Y2lwaGVy.dGFn",
			want: map[string]any{"input.kind": "jwe", "input.segments": 5, "header": nil}, problem: "jwe",
			text: []string{"an encrypted JWT (JWE)", "alg RSA-OAEP, enc A256GCM", "OBO assertion: NOT USABLE"},
		},
		{
			name: "a token cut when copied", stdin: segs[0] + "." + segs[1],
			want: map[string]any{"input.kind": "not_jwt", "input.segments": 2}, problem: "not_jwt",
			text: []string{"2 segments: a JWT has 3 (header.claims.signature); the token was probably cut when copied"},
		},
		{
			name: "an opaque refresh token", stdin: "0.AXEAWA0qMJxx8ESi-TvSeQuGSQ",
			want: map[string]any{"input.kind": "not_jwt"}, problem: "not_jwt",
			text: []string{"NOT A JWT", "refresh token or authorization code"},
		},
		{name: "nothing", stdin: " \n", want: map[string]any{"input.kind": "empty"}, problem: "not_jwt", text: []string{"no token given"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, _ := inspectJSON(t, tok, tc.stdin, "-")
			checkInspectJSON(t, d, tc.want)
			if tc.removed != "" && !slices.Contains(d.list("input.removed", ""), tc.removed) {
				t.Errorf("input.removed = %v, want it to include %q", d.get("input.removed"), tc.removed)
			}
			if got := fmt.Sprint(d.get("obo.problems.0.code")); tc.problem != "" && got != tc.problem {
				t.Errorf("obo.problems.0.code = %s, want %s", got, tc.problem)
			}
			text := runInspectCmd(t, tok, tc.stdin, "-")
			if text.err != nil {
				t.Fatal(text.err)
			}
			checkInspectText(t, "text output", text.stdout, tc.text)
		})
	}

	t.Run("-at as Unix seconds or RFC 3339", func(t *testing.T) {
		t.Parallel()
		unix, _ := inspectJSON(t, tok, "", "-at", "1470148421", tok)
		rfc, _ := inspectJSON(t, tok, "", "-at", "2016-08-02T14:33:41Z", tok)
		if unix.get("times.at") != "2016-08-02T14:33:41Z" || rfc.get("times.at") != unix.get("times.at") {
			t.Errorf("times.at = %v (Unix) and %v (RFC 3339), want 2016-08-02T14:33:41Z for both", unix.get("times.at"), rfc.get("times.at"))
		}
	})
}

func inspectB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestInspectErrors(t *testing.T) {
	t.Parallel()
	tok := readInspectFixture(t, "jose4j_v2_id_token.jwt")
	notKeys := filepath.Join(t.TempDir(), "openid-configuration.json")
	writeInspectFile(t, notKeys, `{"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0","jwks_uri":"https://login.microsoftonline.com/common/discovery/v2.0/keys"}`)
	badCfg := configtest.Write(t, &config.Config{Entra: config.Entra{TenantID: "common"}})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no token", nil, "give one token, or - to read it from stdin"},
		{"two tokens", []string{tok, tok}, "give one token"},
		{"bad -at", []string{"-at", "yesterday", tok}, `-at "yesterday": write RFC 3339`},
		{"missing key set", []string{"-jwks", "/nonexistent/keys.json", tok}, "-jwks"},
		{"an OpenID configuration given as key set", []string{"-jwks", notKeys, tok}, "not the OpenID configuration"},
		// The gateway reads key sets with jwx, which needs n and e: a set it
		// cannot read, inspect does not read either.
		{"a key with only an x5c certificate", []string{"-jwks", inspectX5COnlyJWKS(t, "aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem"), tok}, "required field e is missing"},
		{"a configuration that does not load", []string{"-config", badCfg, tok}, "entra.tenant_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runInspectCmd(t, tok, "", tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", r.err, tc.want)
			}
		})
	}
}

// inspectConfig is a gateway configuration for the local tenant, like
// harness_test.go's gatewayConfig, with a route for app-only callers.
func inspectConfig(te *tenantEnv) *config.Config {
	gw := te.info.Apps["gateway"]
	return &config.Config{
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		Entra: config.Entra{
			TenantID:          te.info.TenantID,
			ClientID:          gw.ClientID,
			AuthorityHost:     te.srv.URL(),
			InstanceDiscovery: new(false),
			Audiences:         []string{"api://obo-gateway"},
			CAFile:            te.info.CAFile,
			Certificate:       config.Certificate{Path: gw.CertificateFile, KeyPath: gw.KeyFile},
		},
		Routes: []config.Route{
			{Name: "orders", PathPrefix: "/orders", Upstream: "https://orders.internal.test",
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "hr", PathPrefix: "/hr", Upstream: "https://hr.internal.test",
				DownstreamScopes: []string{"api://hr-api/.default"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "reports", PathPrefix: "/reports", Upstream: "https://reports.internal.test",
				RequiredRoles: []string{"Gateway.Call"}},
		},
	}
}

// inspectOBOAnswer is the local tenant's answer to an On-Behalf-Of exchange of
// assertion by the gateway app for the orders API: 200, or Entra's first
// AADSTS code.
func (te *tenantEnv) inspectOBOAnswer(t *testing.T, assertion string) (status, code int) {
	t.Helper()
	resp, err := te.client.PostForm(te.info.TokenEndpoint, url.Values{
		"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"requested_token_use": {"on_behalf_of"},
		"client_id":           {te.info.Apps["gateway"].ClientID},
		"client_secret":       {demoGatewaySecret},
		"assertion":           {assertion},
		"scope":               {"api://orders-api/Orders.Read"},
	})
	if err != nil {
		t.Fatalf("OBO request: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		ErrorCodes []int `json:"error_codes"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	if len(body.ErrorCodes) > 0 {
		code = body.ErrorCodes[0]
	}
	return resp.StatusCode, code
}

// TestInspectLocalTenant inspects tokens of the local tenant against a
// gateway configuration for it and the tenant's saved key set, and checks
// each OBO verdict against the tenant's own answer to the exchange.
func TestInspectLocalTenant(t *testing.T) {
	t.Parallel()
	te := startTenant(t, newSecrets())
	dir := t.TempDir()
	cfg := configtest.Write(t, inspectConfig(te))
	jwks := filepath.Join(dir, "tenant-keys.json")
	resp, err := te.client.Get(te.srv.JWKSURI())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: HTTP %d, %v", te.srv.JWKSURI(), resp.StatusCode, err)
	}
	writeInspectFile(t, jwks, string(keys))

	tenantKid := te.srv.SigningKeyID()
	gatewayID := te.info.Apps["gateway"].ClientID
	frontendID := te.info.Apps["frontend"].ClientID
	// The demo gateway's manifest leaves the token version null: the tokens
	// frontends get for it are v1, issued on the STS host.
	issuerV1 := te.srv.IssuerV1(te.info.TenantID)
	const keyIDGUID = "7c1f5d4e-2b3a-4c8d-9e0f-a1b2c3d4e5f6" // an app's keyCredentials keyId

	tests := []struct {
		name     string
		token    func(t *testing.T) string
		want     map[string]any
		problems []string
		routes   map[string]bool // route → allowed
		text     []string
	}{
		{
			name: "user token for the gateway",
			token: func(t *testing.T) string {
				return te.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{})
			},
			want: map[string]any{
				"kind": "user", "version": "1.0", "issuer.shape": "v1", "issuer.value": issuerV1, "issuer.cloud": "not a Microsoft host: a local or test tenant?",
				"audience.kind": "gateway_app_id_uri", "scopes.0": "access_as_user", "client.id": frontendID, "client.claim": "appid",
				"subject.oid": fakeentra.DemoAliceObjectID, "tenant.gateway": "home tenant",
				"signature.status": "verified", "signature.key_id": tenantKid, "times.status": "valid",
				"gateway.accepted": true, "gateway.unchecked": nil, "gateway.issuers.v1": te.srv.IssuerV1(te.info.TenantID),
			},
			routes: map[string]bool{"orders": true, "hr": true, "reports": false},
			text: []string{
				"refused 403: the token lacks an app role this route requires (needs one of roles Gateway.Call; the token has Gateway.Admin)",
				"signature verified with key " + tenantKid, "Gateway gateway.yaml: ACCEPTED", "OBO assertion: USABLE",
				"is the tenant's v1 issuer", "from " + te.srv.URL() + "'s OIDC discovery",
			},
		},
		{
			name:     "password-grant token (the real token endpoint)",
			token:    func(t *testing.T) string { return te.passwordToken(t, "bob@contoso.test", "") },
			want:     map[string]any{"kind": "user", "subject.oid": fakeentra.DemoBobObjectID, "client.auth_method": "public client (no credential)", "gateway.accepted": true},
			routes:   map[string]bool{"orders": true, "hr": true, "reports": false},
			problems: nil,
		},
		{
			name:  "client-credentials token",
			token: func(t *testing.T) string { return te.appToken(t) },
			// The gateway app holds no app role of its own API: its token
			// carries neither scp nor roles, which no route admits.
			want: map[string]any{
				"kind": "app", "audience.kind": "gateway_app_id_uri",
				"client.id": gatewayID, "client.auth_method": "client secret", "client.is_gateway": true,
				"signature.status": "verified", "gateway.accepted": false, "gateway.reason": "token_kind",
			},
			problems: []string{"app_only"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": false},
			text: []string{
				"app-only token from client credentials: OBO needs the user's token (the access token the frontend got for api://obo-gateway/access_as_user with the user signed in)",
				"an app's token (client credentials), which the gateway refuses: neither scp nor roles",
				"FAIL token_kind  the token is not an access token for this API",
			},
		},
		{
			name:  "app-only token of a daemon holding the role",
			token: func(t *testing.T) string { return te.daemonToken(t) },
			want: map[string]any{
				"kind": "app", "roles.0": "Gateway.Call", "client.id": fakeentra.DemoDaemonClientID,
				"signature.status": "verified", "gateway.accepted": true,
				"gateway.routes.0.status": 401, "gateway.routes.0.reason": "app_only",
			},
			problems: []string{"app_only"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": true},
			text: []string{
				"refused 401: this is an app-only token (client credentials); this route calls its API On-Behalf-Of a user and needs a user's token",
				"roles meet required_roles (Gateway.Call)",
			},
		},
		{
			name: "self-signed token with kid = a keyCredentials keyId",
			token: func(t *testing.T) string {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				genuine := te.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{})
				return testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": keyIDGUID}, testkit.JWTClaims(t, genuine))
			},
			want: map[string]any{
				"kind": "user", "audience.kind": "gateway_app_id_uri", "header.kid": keyIDGUID,
				"signature.status": "unknown_key", "gateway.accepted": false, "gateway.reason": "unknown_key",
			},
			problems: []string{"unknown_key"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": false},
			text: []string{
				"signed by a key that is not the tenant's (kid " + keyIDGUID + " not in the key set tenant-keys.json): a self-signed or foreign token — Entra answers AADSTS50013 'The key was not found'",
				"keyCredentials keyId", "Gateway gateway.yaml: REFUSED (reason unknown_key)",
			},
		},
		{
			name: "expired user token",
			token: func(t *testing.T) string {
				return te.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{Lifetime: -time.Hour})
			},
			want:     map[string]any{"times.status": "expired", "signature.status": "verified", "gateway.accepted": false, "gateway.reason": "expired"},
			problems: []string{"expired"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": false},
			text:     []string{"ago: Entra answers AADSTS500133 (assertion expired)", "beyond the 1m0s clock skew allowed"},
		},
		{
			name: "ID token",
			token: func(t *testing.T) string {
				return te.tokenRequest(t, url.Values{
					"grant_type": {"password"}, "client_id": {frontendID},
					"username": {"alice@contoso.test"}, "password": {fakeentra.DemoPassword}, "scope": {gatewayScope + " openid profile"},
				}).IDToken
			},
			want: map[string]any{
				"kind": "id_token", "audience.kind": "client_id", "audience.values.0.value": frontendID,
				"signature.status": "verified", "gateway.accepted": false, "gateway.reason": "audience",
			},
			problems: []string{"id_token"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": false},
			text: []string{
				"this is an ID token (aud = the frontend's client ID " + frontendID + ", no scp): send the access token, the one the frontend gets for api://obo-gateway/access_as_user",
				"FAIL audience    the token is not meant for this API (audience mismatch)",
			},
		},
		{
			name: "downstream token the gateway got On-Behalf-Of",
			token: func(t *testing.T) string {
				return te.userToken(t, "alice@contoso.test", "api://orders-api/Orders.Read", fakeentra.UserTokenOptions{Client: "gateway"})
			},
			want: map[string]any{
				"kind": "user", "audience.kind": "client_id", "client.is_gateway": true,
				"gateway.accepted": false, "gateway.reason": "audience",
			},
			problems: []string{"other_audience"},
			routes:   map[string]bool{"orders": false, "hr": false, "reports": false},
			text: []string{
				"not the gateway: the frontend must request a token for api://obo-gateway (scope api://obo-gateway/access_as_user)",
				"a downstream token from an On-Behalf-Of exchange",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := tc.token(t)
			d, _ := inspectJSON(t, tok, tok, "-config", cfg, "-jwks", jwks, "-")
			checkInspectJSON(t, d, tc.want)
			if got := d.list("obo.problems", "code"); !slices.Equal(got, tc.problems) {
				t.Errorf("obo.problems codes = %v, want %v", got, tc.problems)
			}
			for i, name := range d.list("gateway.routes", "name") {
				if want, got := tc.routes[name], d.get(fmt.Sprintf("gateway.routes.%d.allowed", i)); got != want {
					t.Errorf("route %s: allowed = %v, want %v (%v)", name, got, want, d.get(fmt.Sprintf("gateway.routes.%d.message", i)))
				}
			}
			if len(d.list("gateway.routes", "name")) != 3 {
				t.Errorf("gateway.routes = %v, want the configuration's three", d.get("gateway.routes"))
			}

			// The verdict agrees with the tenant's answer to the exchange.
			status, code := te.inspectOBOAnswer(t, tok)
			var codes []int
			for i := range d.list("obo.problems", "code") {
				for _, c := range d.list(fmt.Sprintf("obo.problems.%d.aadsts", i), "") {
					n, _ := strconv.Atoi(c)
					codes = append(codes, n)
				}
			}
			switch usable := d.get("obo.usable") == true; {
			case usable && status != 200:
				t.Errorf("inspect says usable, the tenant answers HTTP %d AADSTS%d", status, code)
			case !usable && (status == 200 || !slices.Contains(codes, code)):
				t.Errorf("inspect says not usable (AADSTS %v), the tenant answers HTTP %d AADSTS%d", codes, status, code)
			}

			text := runInspectCmd(t, tok, "Bearer "+tok, "-config", cfg, "-jwks", jwks, "-")
			if text.err != nil {
				t.Fatalf("inspect: %v\n%s", text.err, text.stderr)
			}
			checkInspectText(t, "text output", text.stdout, tc.text)
		})
	}

	t.Run("offline: the v1 issuer is unknown without discovery", func(t *testing.T) {
		t.Parallel()
		tok := te.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{})
		d, _ := inspectJSON(t, tok, tok, "-offline", "-config", cfg, "-jwks", jwks, "-")
		// A v1 token, whose issuer offline inspection cannot confirm: not
		// checked, rather than refused.
		checkInspectJSON(t, d, map[string]any{
			"gateway.accepted": true, "gateway.issuers.v2": te.srv.IssuerV2(te.info.TenantID), "gateway.issuers.v1": nil,
		})
		text := runInspectCmd(t, tok, tok, "-offline", "-config", cfg, "-jwks", jwks, "-")
		checkInspectText(t, "offline text", text.stdout, []string{"the v1 issuer is unknown (guessed for"})
		if src := fmt.Sprint(d.get("gateway.issuers.source")); !strings.Contains(src, "without discovery (-offline)") {
			t.Errorf("gateway.issuers.source = %q", src)
		}
	})
}
