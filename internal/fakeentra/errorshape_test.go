package fakeentra_test

// The tenant's error bodies against real ones (testdata/entra-errors, see
// SOURCES.md there): same keys, same JSON types, same description format.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// accTimestampLayout is the layout of Entra's error timestamps.
const accTimestampLayout = "2006-01-02 15:04:05Z"

func TestEntraErrorShape(t *testing.T) {
	t.Parallel()
	env := accStart(t, fakeentra.Config{})
	srv := env.srv
	ep := env.tokenEndpoint(fakeentra.DemoTenantID, 2)
	gw := accLoadCred(t, srv, "gateway")
	gwID := fakeentra.DemoGatewayClientID

	obo := func(t *testing.T, opt fakeentra.UserTokenOptions, scope string) accResp {
		t.Helper()
		tok, err := srv.UserToken(accAlice, accGatewayScope, opt)
		if err != nil {
			t.Fatalf("UserToken: %v", err)
		}
		ca := accClientAssertion(t, gw, gwID, ep, nil)
		return env.post(t, ep, accCertForm(gwID, ca, accOBOFields(tok, scope)...), nil)
	}
	wrongSecret := func(t *testing.T, hdr http.Header) accResp {
		t.Helper()
		return env.post(t, ep, accForm("grant_type", "client_credentials", "client_id", gwID,
			"client_secret", "not-the-secret", "scope", "api://orders-api/.default"), hdr)
	}

	for _, tc := range []struct {
		fixture string
		code    int
		provoke func(t *testing.T) accResp
		// newer lists keys the tenant sends that this older real body lacks
		// but later real bodies have.
		newer []string
	}{
		{
			fixture: "AADSTS500133_invalid_grant_assertion_expired_2024.json", code: 500133,
			provoke: func(t *testing.T) accResp {
				return obo(t, fakeentra.UserTokenOptions{Lifetime: -time.Hour}, "api://orders-api/Orders.Read")
			},
		},
		{
			fixture: "AADSTS700027_invalid_client_assertion_key_not_found_2021.json", code: 700027,
			provoke: func(t *testing.T) accResp {
				ca := accClientAssertion(t, gw, gwID, ep, func(h, _ map[string]any) {
					delete(h, "x5t#S256")
					h["kid"] = accGUID(t)
				})
				return env.post(t, ep, accCertForm(gwID, ca, "grant_type", "client_credentials", "scope", "api://orders-api/.default"), nil)
			},
		},
		{
			fixture: "AADSTS65001_invalid_grant_consent_required_2019.json", code: 65001,
			provoke: func(t *testing.T) accResp {
				return obo(t, fakeentra.UserTokenOptions{}, "api://inventory-api/Inventory.Read")
			},
			// The 2019 body predates error_uri, which the 2021-2024 bodies carry.
			newer: []string{"error_uri"},
		},
		{
			fixture: "AADSTS50076_invalid_grant_mfa_claims_suberror_2023.json", code: 50076,
			provoke: func(t *testing.T) accResp {
				return obo(t, fakeentra.UserTokenOptions{}, "api://hr-api/HR.Read")
			},
		},
		{
			fixture: "AADSTS7000215_invalid_client_secret_2020.json", code: 7000215,
			provoke: func(t *testing.T) accResp { return wrongSecret(t, nil) },
		},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			real := accLoadFixture(t, tc.fixture)
			if codes, _ := real["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Fatalf("fixture error_codes = %v, want [%d]", real["error_codes"], tc.code)
			}
			r := tc.provoke(t)
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("tenant's error body is not JSON: %v", err)
			}
			if codes, _ := got["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Fatalf("tenant answered error_codes %v (%v), want [%d]", got["error_codes"], got["error_description"], tc.code)
			}

			for k, v := range real {
				g, ok := got[k]
				if !ok {
					t.Errorf("key %q of the real body is missing", k)
					continue
				}
				if accJSONKind(g) != accJSONKind(v) {
					t.Errorf("key %q is %s, the real body's is %s", k, accJSONKind(g), accJSONKind(v))
				}
			}
			for k := range got {
				if _, ok := real[k]; !ok && !slices.Contains(tc.newer, k) {
					t.Errorf("key %q is not in the real body", k)
				}
			}
			for _, k := range tc.newer {
				if _, ok := got[k]; !ok {
					t.Errorf("key %q, sent by newer Entra, is missing", k)
				}
			}
			accCheckErrorFormat(t, got, true)
			if ts, err := time.Parse(accTimestampLayout, fmt.Sprint(got["timestamp"])); err == nil {
				if d := time.Since(ts); d < -time.Minute || d > time.Minute {
					t.Errorf("timestamp %v is %v away from now", got["timestamp"], d)
				}
			}
		})
	}

	// The checks above, applied to the real bodies, so that they are known to
	// describe Entra and not only the tenant.
	t.Run("real bodies pass the format checks", func(t *testing.T) {
		entries, err := os.ReadDir(filepath.Join("testdata", "entra-errors"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if filepath.Ext(e.Name()) != ".json" {
				continue
			}
			n++
			t.Run(e.Name(), func(t *testing.T) {
				body := accLoadFixture(t, e.Name())
				// One reporter replaced the GUIDs by the word GUID.
				accCheckErrorFormat(t, body, body["trace_id"] != "GUID")
			})
		}
		if n == 0 {
			t.Fatal("no fixtures found")
		}
	})

	t.Run("correlation_id echoes client-request-id", func(t *testing.T) {
		id := accGUID(t)
		r := wrongSecret(t, http.Header{"Client-Request-Id": {id}})
		e := accWantError(t, r, http.StatusUnauthorized, "invalid_client", 7000215)
		if e.CorrelationID != id {
			t.Errorf("correlation_id = %q, want the client-request-id %q", e.CorrelationID, id)
		}
		if !strings.Contains(e.ErrorDescription, "Correlation ID: "+id) {
			t.Errorf("error_description %q does not name correlation ID %s", e.ErrorDescription, id)
		}
		if got := r.header.Get("client-request-id"); got != id {
			t.Errorf("client-request-id response header = %q, want %q", got, id)
		}
	})

	t.Run("correlation_id is fresh without client-request-id", func(t *testing.T) {
		a := accWantError(t, wrongSecret(t, nil), http.StatusUnauthorized, "invalid_client", 7000215)
		b := accWantError(t, wrongSecret(t, nil), http.StatusUnauthorized, "invalid_client", 7000215)
		if !accGUIDPattern.MatchString(a.CorrelationID) || a.CorrelationID == b.CorrelationID {
			t.Errorf("correlation_ids %q and %q: want two different GUIDs", a.CorrelationID, b.CorrelationID)
		}
		if a.TraceID == b.TraceID {
			t.Errorf("two requests share trace_id %q", a.TraceID)
		}
	})
}

// accLoadFixture reads a real error body from testdata/entra-errors.
func accLoadFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "entra-errors", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// accJSONKind names a decoded JSON value's type; for arrays, with the kinds
// of their elements.
func accJSONKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		var kinds []string
		for _, e := range v {
			if k := accJSONKind(e); !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
		return "array of " + strings.Join(kinds, ",")
	}
	return fmt.Sprintf("%T", v)
}

// accCheckErrorFormat checks the format of an Entra error body: the
// description starts with "AADSTS<code>: " and ends with the trace ID,
// correlation ID and timestamp of the body's own fields; the timestamp has
// Entra's layout; error_uri, when present, names the code; claims, when
// present, is a JSON object in a string. With guids, trace_id and
// correlation_id must be GUIDs.
func accCheckErrorFormat(t *testing.T, body map[string]any, guids bool) {
	t.Helper()
	codes, _ := body["error_codes"].([]any)
	if len(codes) == 0 {
		t.Fatalf("error_codes = %v, want at least one code", body["error_codes"])
	}
	n, ok := codes[0].(float64)
	if !ok {
		t.Fatalf("error_codes[0] = %v, want a number", codes[0])
	}
	code := fmt.Sprint(int64(n))
	desc, _ := body["error_description"].(string)
	if !strings.HasPrefix(desc, "AADSTS"+code+": ") {
		t.Errorf("error_description %q does not start with %q", desc, "AADSTS"+code+": ")
	}
	ts, _ := body["timestamp"].(string)
	if _, err := time.Parse(accTimestampLayout, ts); err != nil {
		t.Errorf("timestamp %q is not in the layout %q", ts, accTimestampLayout)
	}
	trace, _ := body["trace_id"].(string)
	corr, _ := body["correlation_id"].(string)
	for _, part := range []struct{ label, value string }{
		{"Trace ID: ", trace}, {"Correlation ID: ", corr}, {"Timestamp: ", ts},
	} {
		want := part.label
		if guids || part.label == "Timestamp: " {
			want += part.value
		}
		if !strings.Contains(desc, want) {
			t.Errorf("error_description %q does not contain %q", desc, want)
		}
	}
	if guids && (!accGUIDPattern.MatchString(trace) || !accGUIDPattern.MatchString(corr)) {
		t.Errorf("trace_id %q or correlation_id %q is not a GUID", trace, corr)
	}
	if uri, ok := body["error_uri"].(string); ok && !strings.HasSuffix(uri, "/error?code="+code) {
		t.Errorf("error_uri %q does not end with /error?code=%s", uri, code)
	}
	if c, ok := body["claims"].(string); ok {
		var obj map[string]any
		if err := json.Unmarshal([]byte(c), &obj); err != nil || obj["access_token"] == nil {
			t.Errorf("claims %q is not a JSON object with access_token", c)
		}
	}
}
