package fakeentra_test

// MSAL Go itself, over HTTPS, against the local tenant: the tenant's answers
// must satisfy the library the gateway uses, as Entra's do.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	accGatewayScope = "api://obo-gateway/access_as_user"
	accAlice        = "alice@contoso.test"
	accBob          = "bob@contoso.test"
)

func TestMSALGo(t *testing.T) {
	t.Parallel()
	env := accStart(t, fakeentra.Config{})
	srv := env.srv
	gw := accLoadCred(t, srv, "gateway")
	gatewayOID := srv.Tenant().App("gateway").ObjectID

	t.Run("public client password grant", func(t *testing.T) {
		mark := len(srv.Requests())
		ar := accMSALUserToken(t, env, accAlice)

		// The gateway's manifest leaves accessTokenAcceptedVersion null, as a
		// new registration does: a v1 token, aud the App ID URI, iss the STS host.
		accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
			"aud":   "api://obo-gateway",
			"scp":   "access_as_user",
			"oid":   fakeentra.DemoAliceObjectID,
			"tid":   fakeentra.DemoTenantID,
			"ver":   "1.0",
			"appid": fakeentra.DemoFrontendClientID,
			"azp":   "",
			"iss":   srv.IssuerV1(fakeentra.DemoTenantID),
		})
		// MSAL built its account from the ID token and client_info.
		if got := ar.Account.PreferredUsername; got != accAlice {
			t.Errorf("Account.PreferredUsername = %q, want %q", got, accAlice)
		}
		if got, want := ar.Account.HomeAccountID, fakeentra.DemoAliceObjectID+"."+fakeentra.DemoTenantID; got != want {
			t.Errorf("Account.HomeAccountID = %q, want %q", got, want)
		}
		if !slices.Contains(ar.GrantedScopes, accGatewayScope) {
			t.Errorf("GrantedScopes = %v, want %s among them", ar.GrantedScopes, accGatewayScope)
		}
		recs := srv.Requests()[mark:]
		if len(recs) != 1 || recs[0].Grant != "password" || recs[0].ClientID != fakeentra.DemoFrontendClientID ||
			recs[0].Subject != fakeentra.DemoAliceObjectID || recs[0].Result != "success" {
			t.Errorf("requests = %+v, want one successful password grant of the frontend for alice", recs)
		}
	})

	for _, tc := range []struct {
		name    string
		opts    []confidential.Option
		wantX5C bool
	}{
		{name: "certificate without x5c"},
		{name: "certificate with x5c", opts: []confidential.Option{confidential.WithX5C()}, wantX5C: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aliceToken := accMSALUserToken(t, env, accAlice).AccessToken
			bobToken := accMSALUserToken(t, env, accBob).AccessToken

			certs, key, err := confidential.CertFromPEM(gw.pem, "")
			if err != nil {
				t.Fatalf("CertFromPEM: %v", err)
			}
			cred, err := confidential.NewCredFromCert(certs, key)
			if err != nil {
				t.Fatalf("NewCredFromCert: %v", err)
			}
			spy := &accAssertionSpy{base: env.client.Transport}
			client := &http.Client{Transport: spy, Timeout: 30 * time.Second}
			cc := accMSALConfidential(t, env, cred, append([]confidential.Option{confidential.WithHTTPClient(client)}, tc.opts...)...)
			mark := len(srv.Requests())

			ar, err := cc.AcquireTokenByCredential(t.Context(), []string{"api://orders-api/.default"})
			if err != nil {
				t.Fatalf("AcquireTokenByCredential: %v", err)
			}
			app := testkit.JWTClaims(t, ar.AccessToken)
			accWantClaims(t, app, map[string]string{
				"aud": fakeentra.DemoOrdersClientID, "azp": fakeentra.DemoGatewayClientID, "azpacr": "2",
				"idtyp": "", "oid": gatewayOID, "ver": "2.0", "scp": "", // idtyp is an optional claim orders-api does not ask for
			})
			if roles := accStrings(app, "roles"); !slices.Contains(roles, "Orders.Read.All") {
				t.Errorf("roles = %v, want Orders.Read.All", roles)
			}

			ar, err = cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, []string{"api://orders-api/Orders.Read"})
			if err != nil {
				t.Fatalf("AcquireTokenOnBehalfOf (alice, orders-api): %v", err)
			}
			accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
				"aud": fakeentra.DemoOrdersClientID, "oid": fakeentra.DemoAliceObjectID,
				"azp": fakeentra.DemoGatewayClientID, "azpacr": "2", "scp": "Orders.Read", "ver": "2.0",
				"idtyp": "", "roles": "",
			})

			ar, err = cc.AcquireTokenOnBehalfOf(t.Context(), bobToken, []string{"api://hr-api/HR.Read"})
			if err != nil {
				t.Fatalf("AcquireTokenOnBehalfOf (bob, hr-api): %v", err)
			}
			accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
				"ver": "1.0", "aud": "api://hr-api", "appid": fakeentra.DemoGatewayClientID, "appidacr": "2",
				"oid": fakeentra.DemoBobObjectID, "scp": "HR.Read", "upn": accBob,
				"iss": srv.IssuerV1(fakeentra.DemoTenantID), "azp": "",
			})

			var got []string
			for _, r := range srv.Requests()[mark:] {
				if r.ClientID != fakeentra.DemoGatewayClientID || r.Result != "success" {
					t.Errorf("request %+v: want a success for the gateway", r)
				}
				got = append(got, r.Grant)
			}
			if want := []string{"client_credentials", accGrantJWTBearer, accGrantJWTBearer}; !slices.Equal(got, want) {
				t.Errorf("grants = %v, want %v", got, want)
			}

			// What MSAL sent, so that the two cases are known to differ.
			headers := spy.assertionHeaders()
			if len(headers) != 3 {
				t.Fatalf("%d client assertions sent, want 3", len(headers))
			}
			leaf := base64.StdEncoding.EncodeToString(gw.cert.Raw)
			for _, h := range headers {
				if h["alg"] != "PS256" || h["x5t#S256"] != accX5tS256(gw.cert) || h["kid"] != nil {
					t.Errorf("client assertion header alg=%v x5t#S256=%v kid=%v; want PS256, the certificate's SHA-256, no kid",
						h["alg"], h["x5t#S256"], h["kid"])
				}
				x5c, _ := h["x5c"].([]any)
				if tc.wantX5C != (len(x5c) > 0) {
					t.Errorf("client assertion x5c present = %v, want %v", len(x5c) > 0, tc.wantX5C)
				}
				if len(x5c) > 0 && x5c[0] != leaf {
					t.Errorf("x5c[0] is not the gateway's certificate")
				}
			}
		})
	}

	t.Run("secret", func(t *testing.T) {
		aliceToken := accMSALUserToken(t, env, accAlice).AccessToken
		cred, err := confidential.NewCredFromSecret(fakeentra.DemoGatewaySecret)
		if err != nil {
			t.Fatalf("NewCredFromSecret: %v", err)
		}
		cc := accMSALConfidential(t, env, cred)
		mark := len(srv.Requests())

		ar, err := cc.AcquireTokenByCredential(t.Context(), []string{"api://orders-api/.default"})
		if err != nil {
			t.Fatalf("AcquireTokenByCredential: %v", err)
		}
		app := testkit.JWTClaims(t, ar.AccessToken)
		accWantClaims(t, app, map[string]string{
			"aud": fakeentra.DemoOrdersClientID, "azp": fakeentra.DemoGatewayClientID, "azpacr": "1", "idtyp": "", "scp": "",
		})
		if roles := accStrings(app, "roles"); !slices.Contains(roles, "Orders.Read.All") {
			t.Errorf("roles = %v, want Orders.Read.All", roles)
		}

		ar, err = cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, []string{"api://orders-api/Orders.Read"})
		if err != nil {
			t.Fatalf("AcquireTokenOnBehalfOf: %v", err)
		}
		accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
			"aud": fakeentra.DemoOrdersClientID, "oid": fakeentra.DemoAliceObjectID,
			"azp": fakeentra.DemoGatewayClientID, "azpacr": "1", "scp": "Orders.Read",
		})
		var got []string
		for _, r := range srv.Requests()[mark:] {
			got = append(got, r.Grant+" "+r.ClientID+" "+r.Result)
		}
		want := []string{
			"client_credentials " + fakeentra.DemoGatewayClientID + " success",
			accGrantJWTBearer + " " + fakeentra.DemoGatewayClientID + " success",
		}
		if !slices.Equal(got, want) {
			t.Errorf("requests = %v, want %v", got, want)
		}
	})

	t.Run("second on-behalf-of is served from MSAL's cache", func(t *testing.T) {
		aliceToken := accMSALUserToken(t, env, accAlice).AccessToken
		cc := accMSALConfidential(t, env, accMSALCertCred(t, gw))
		scopes := []string{"api://orders-api/Orders.Read"}

		first, err := cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, scopes)
		if err != nil {
			t.Fatalf("first AcquireTokenOnBehalfOf: %v", err)
		}
		if first.Metadata.TokenSource != confidential.TokenSourceIdentityProvider {
			t.Errorf("first token source = %v, want the identity provider", first.Metadata.TokenSource)
		}
		if floor := time.Now().Add(5 * time.Minute); !first.ExpiresOn.After(floor) {
			t.Errorf("ExpiresOn = %v, want after %v (MSAL serves nothing within 5 minutes of expiry)", first.ExpiresOn, floor)
		}
		mark := len(srv.Requests())

		second, err := cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, scopes)
		if err != nil {
			t.Fatalf("second AcquireTokenOnBehalfOf: %v", err)
		}
		if n := len(srv.Requests()) - mark; n != 0 {
			t.Errorf("second OBO made %d token requests, want 0 (a cache hit)", n)
		}
		if second.Metadata.TokenSource != confidential.TokenSourceCache {
			t.Errorf("second token source = %v, want the cache", second.Metadata.TokenSource)
		}
		if second.AccessToken != first.AccessToken {
			t.Errorf("second OBO returned another token than the cached one")
		}
	})

	t.Run("on-behalf-of with claims redeems the refresh token", func(t *testing.T) {
		aliceToken := accMSALUserToken(t, env, accAlice).AccessToken
		cc := accMSALConfidential(t, env, accMSALCertCred(t, gw))
		scopes := []string{"api://orders-api/Orders.Read"}

		first, err := cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, scopes)
		if err != nil {
			t.Fatalf("first AcquireTokenOnBehalfOf: %v", err)
		}
		mark := len(srv.Requests())
		second, err := cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, scopes,
			confidential.WithClaims(`{"access_token":{"xms_cc":{"values":["cp1"]}}}`))
		if err != nil {
			t.Fatalf("AcquireTokenOnBehalfOf with claims: %v", err)
		}
		recs := srv.Requests()[mark:]
		if len(recs) != 1 || recs[0].Grant != "refresh_token" || recs[0].ClientID != fakeentra.DemoGatewayClientID ||
			recs[0].Subject != fakeentra.DemoAliceObjectID || recs[0].Result != "success" {
			t.Fatalf("requests = %+v, want one successful refresh_token grant of the gateway for alice", recs)
		}
		if second.AccessToken == first.AccessToken {
			t.Errorf("claims request returned the cached token")
		}
		accWantClaims(t, testkit.JWTClaims(t, second.AccessToken), map[string]string{
			"aud": fakeentra.DemoOrdersClientID, "oid": fakeentra.DemoAliceObjectID,
			"azp": fakeentra.DemoGatewayClientID, "scp": "Orders.Read",
		})
	})

	t.Run("on-behalf-of refusal reaches the caller as CallErr", func(t *testing.T) {
		aliceToken := accMSALUserToken(t, env, accAlice).AccessToken
		cc := accMSALConfidential(t, env, accMSALCertCred(t, gw))
		_, err := cc.AcquireTokenOnBehalfOf(t.Context(), aliceToken, []string{"api://inventory-api/Inventory.Read"})
		var callErr msalerrors.CallErr
		if !msalerrors.As(err, &callErr) || callErr.Resp == nil {
			t.Fatalf("error %T is not a CallErr with a response", err)
		}
		if callErr.Resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", callErr.Resp.StatusCode)
		}
		var body accEntraError
		if err := json.NewDecoder(callErr.Resp.Body).Decode(&body); err != nil {
			t.Fatalf("CallErr body: %v", err)
		}
		if body.Error != "invalid_grant" || body.SubError != "consent_required" || !slices.Equal(body.ErrorCodes, []int{65001}) {
			t.Errorf("got %s/%s %v, want invalid_grant/consent_required [65001]", body.Error, body.SubError, body.ErrorCodes)
		}
	})
}

// accMSALUserToken signs a user in with MSAL's public client ("frontend")
// and the password grant, for the gateway's scope.
func accMSALUserToken(t *testing.T, env *accEnv, username string) public.AuthResult {
	t.Helper()
	pc, err := public.New(fakeentra.DemoFrontendClientID,
		public.WithAuthority(env.srv.Authority()),
		public.WithHTTPClient(env.client),
		public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatalf("public.New: %v", err)
	}
	ar, err := pc.AcquireTokenByUsernamePassword(t.Context(), []string{accGatewayScope}, username, fakeentra.DemoPassword)
	if err != nil {
		t.Fatalf("AcquireTokenByUsernamePassword(%s): %v", username, err)
	}
	return ar
}

// accMSALCertCred is the gateway's certificate credential for MSAL.
func accMSALCertCred(t *testing.T, c accCred) confidential.Credential {
	t.Helper()
	certs, key, err := confidential.CertFromPEM(c.pem, "")
	if err != nil {
		t.Fatalf("CertFromPEM: %v", err)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		t.Fatalf("NewCredFromCert: %v", err)
	}
	return cred
}

// accMSALConfidential is the gateway's confidential client; the options
// come after the defaults, so a WithHTTPClient among them wins.
func accMSALConfidential(t *testing.T, env *accEnv, cred confidential.Credential, opts ...confidential.Option) confidential.Client {
	t.Helper()
	all := append([]confidential.Option{
		confidential.WithHTTPClient(env.client),
		confidential.WithInstanceDiscovery(false),
	}, opts...)
	cc, err := confidential.New(env.srv.Authority(), fakeentra.DemoGatewayClientID, cred, all...)
	if err != nil {
		t.Fatalf("confidential.New: %v", err)
	}
	return cc
}

// accAssertionSpy is a transport that keeps the JOSE header of each client
// assertion sent (never the assertion itself).
type accAssertionSpy struct {
	base    http.RoundTripper
	mu      sync.Mutex
	headers []map[string]any
}

func (s *accAssertionSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return s.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	if form, err := url.ParseQuery(string(body)); err == nil {
		if ca := form.Get("client_assertion"); ca != "" {
			h := map[string]any{}
			if raw, err := accB64.DecodeString(strings.SplitN(ca, ".", 2)[0]); err == nil {
				_ = json.Unmarshal(raw, &h)
			}
			s.mu.Lock()
			s.headers = append(s.headers, h)
			s.mu.Unlock()
		}
	}
	return s.base.RoundTrip(r2)
}

func (s *accAssertionSpy) assertionHeaders() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.headers...)
}
