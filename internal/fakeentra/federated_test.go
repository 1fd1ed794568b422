package fakeentra_test

// Federated identity credentials, end to end over loopback: a cluster's
// service-account tokens and managed identity tokens as the gateway's
// client assertion, through MSAL Go itself and as raw requests, and each
// mistake answered with Entra's code.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	accSANamespace = "obo-gateway"
	accSAName      = "obo-gateway"
)

// accFreshMI gives the demo tenant's managed identity new IDs: MSAL's
// managed identity client caches tokens in a package-global cache keyed by
// client ID and resource, so each test needs an identity of its own.
func accFreshMI(t *testing.T) (*fakeentra.Tenant, string) {
	t.Helper()
	ten := fakeentra.DemoTenant()
	mi := ten.ManagedIdentities[0]
	mi.ClientID, mi.ObjectID = accGUID(t), accGUID(t)
	return ten, mi.ClientID
}

// accSAToken mints the gateway's service-account token.
func accSAToken(t *testing.T, srv *fakeentra.Server, opt fakeentra.ServiceAccountTokenOptions) string {
	t.Helper()
	tok, err := srv.ServiceAccountToken("", accSANamespace, accSAName, opt)
	if err != nil {
		t.Fatalf("ServiceAccountToken: %v", err)
	}
	return tok
}

// accMIGet asks the managed identity endpoint for resource, as App
// Service's clients do.
func accMIGet(t *testing.T, srv *fakeentra.Server, header *string, query url.Values) (int, map[string]any) {
	t.Helper()
	endpoint, secret := srv.ManagedIdentityEndpoint()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, endpoint+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if header == nil {
		header = &secret
	}
	if *header != "-" {
		req.Header.Set("X-IDENTITY-HEADER", *header)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("managed identity endpoint answered %d without JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func TestFederatedCredentialWithMSAL(t *testing.T) {
	t.Parallel()
	env := accStart(t, fakeentra.Config{})
	srv := env.srv

	var calls int
	cred := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		calls++ // MSAL calls it for every token request, one at a time here
		return srv.ServiceAccountToken("", accSANamespace, accSAName, fakeentra.ServiceAccountTokenOptions{})
	})
	cc := accMSALConfidential(t, env, cred)
	mark := len(srv.Requests())

	ar, err := cc.AcquireTokenByCredential(t.Context(), []string{"api://orders-api/.default"})
	if err != nil {
		t.Fatalf("AcquireTokenByCredential: %v", err)
	}
	accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
		"aud": fakeentra.DemoOrdersClientID, "azp": fakeentra.DemoGatewayClientID, "azpacr": "2",
		"oid": srv.Tenant().App("gateway").ObjectID,
	})

	alice := accMSALUserToken(t, env, accAlice).AccessToken
	ar, err = cc.AcquireTokenOnBehalfOf(t.Context(), alice, []string{"api://orders-api/Orders.Read"})
	if err != nil {
		t.Fatalf("AcquireTokenOnBehalfOf: %v", err)
	}
	accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
		"aud": fakeentra.DemoOrdersClientID, "oid": fakeentra.DemoAliceObjectID, "scp": "Orders.Read",
		"azp": fakeentra.DemoGatewayClientID, "azpacr": "2",
	})
	if calls != 2 {
		t.Errorf("the assertion callback ran %d times, want 2 (one per token request)", calls)
	}
	var kinds []string
	for _, rec := range srv.Requests()[mark:] {
		if rec.ClientID == fakeentra.DemoGatewayClientID {
			kinds = append(kinds, rec.Credential)
		}
	}
	if !slices.Equal(kinds, []string{fakeentra.CredentialFederated, fakeentra.CredentialFederated}) {
		t.Errorf("request log credentials = %v, want two %q", kinds, fakeentra.CredentialFederated)
	}

	// A wrong subject reaches MSAL's caller as Entra's error.
	bad := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		return srv.ServiceAccountToken("", "default", accSAName, fakeentra.ServiceAccountTokenOptions{})
	})
	_, err = accMSALConfidential(t, env, bad).AcquireTokenByCredential(t.Context(), []string{"api://orders-api/.default"})
	var ce msalerrors.CallErr
	if err == nil || !errors.As(err, &ce) {
		t.Fatalf("AcquireTokenByCredential with another service account: %v, want a CallErr", err)
	}
	var body accEntraError
	if jerr := json.NewDecoder(ce.Resp.Body).Decode(&body); jerr != nil || !slices.Equal(body.ErrorCodes, []int{700213}) {
		t.Errorf("got %v (%v), want [700213]", body.ErrorCodes, jerr)
	}
}

// TestManagedIdentityAsFederatedCredential runs MSAL's own managed identity
// client against the tenant's identity endpoint (its App Service source),
// and the gateway's confidential client with the identity's token as its
// assertion. It sets the process's environment, so it is not parallel.
func TestManagedIdentityAsFederatedCredential(t *testing.T) {
	ten, miClientID := accFreshMI(t)
	env := accStart(t, fakeentra.Config{Tenant: ten})
	srv := env.srv
	endpoint, secret := srv.ManagedIdentityEndpoint()
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", secret)
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "") // not Service Fabric
	if src, err := managedidentity.GetSource(); err != nil || src != managedidentity.AppService {
		t.Fatalf("managedidentity.GetSource() = %s, %v; want AppService", src, err)
	}

	mic, err := managedidentity.New(managedidentity.UserAssignedClientID(miClientID))
	if err != nil {
		t.Fatalf("managedidentity.New: %v", err)
	}
	mi, err := mic.AcquireToken(t.Context(), fakeentra.TokenExchangeAudience)
	if err != nil {
		t.Fatalf("managed identity AcquireToken: %v", err)
	}
	accWantClaims(t, testkit.JWTClaims(t, mi.AccessToken), map[string]string{
		"iss": srv.IssuerV2(fakeentra.DemoTenantID), "aud": fakeentra.TokenExchangeAudience,
		"sub": ten.ManagedIdentities[0].ObjectID, "oid": ten.ManagedIdentities[0].ObjectID,
		"azp": miClientID, "idtyp": "app", "tid": fakeentra.DemoTenantID,
	})
	if left := time.Until(mi.ExpiresOn); left < 23*time.Hour {
		t.Errorf("managed identity token expires in %v, want about a day", left)
	}

	cred := confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
		ar, err := mic.AcquireToken(ctx, fakeentra.TokenExchangeAudience)
		return ar.AccessToken, err
	})
	cc := accMSALConfidential(t, env, cred)
	alice := accMSALUserToken(t, env, accAlice).AccessToken
	ar, err := cc.AcquireTokenOnBehalfOf(t.Context(), alice, []string{"api://orders-api/Orders.Read"})
	if err != nil {
		t.Fatalf("AcquireTokenOnBehalfOf with the managed identity's token: %v", err)
	}
	accWantClaims(t, testkit.JWTClaims(t, ar.AccessToken), map[string]string{
		"aud": fakeentra.DemoOrdersClientID, "oid": fakeentra.DemoAliceObjectID, "azp": fakeentra.DemoGatewayClientID,
	})

	// An identity the host does not have: MSAL reports the endpoint's 400.
	other, err := managedidentity.New(managedidentity.UserAssignedClientID(accGUID(t)))
	if err != nil {
		t.Fatalf("managedidentity.New: %v", err)
	}
	_, err = other.AcquireToken(t.Context(), fakeentra.TokenExchangeAudience)
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) || ce.Resp.StatusCode != http.StatusBadRequest {
		t.Errorf("AcquireToken for an unknown identity: %v, want a CallErr with status 400", err)
	}
}

// TestManagedIdentityEndpoint holds the endpoint to App Service's protocol.
func TestManagedIdentityEndpoint(t *testing.T) {
	t.Parallel()
	ten, miClientID := accFreshMI(t)
	ten.ManagedIdentities = append(ten.ManagedIdentities, &fakeentra.ManagedIdentity{Name: "host", SystemAssigned: true})
	srv := accStart(t, fakeentra.Config{Tenant: ten}).srv
	endpoint, _ := srv.ManagedIdentityEndpoint()
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		t.Fatalf("ManagedIdentityEndpoint() = %q, want http on 127.0.0.1", endpoint)
	}
	q := func(kv ...string) url.Values {
		v := url.Values{"api-version": {"2019-08-01"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	missing, wrong := "-", "not-the-secret"
	for _, tc := range []struct {
		name   string
		header *string
		query  url.Values
		status int
		sub    string // the token's sub, on success
	}{
		{name: "user-assigned by client_id", query: q("resource", fakeentra.TokenExchangeAudience, "client_id", miClientID), status: 200, sub: ten.ManagedIdentities[0].ObjectID},
		{name: "user-assigned by object_id", query: q("resource", fakeentra.TokenExchangeAudience, "object_id", ten.ManagedIdentities[0].ObjectID), status: 200, sub: ten.ManagedIdentities[0].ObjectID},
		{name: "system-assigned", query: q("resource", fakeentra.TokenExchangeAudience), status: 200, sub: ten.ManagedIdentities[1].ObjectID},
		{name: "a tenant's API", query: q("resource", "api://orders-api", "client_id", miClientID), status: 200, sub: ten.ManagedIdentities[0].ObjectID},
		{name: "no X-IDENTITY-HEADER", header: &missing, query: q("resource", fakeentra.TokenExchangeAudience), status: 400},
		{name: "wrong X-IDENTITY-HEADER", header: &wrong, query: q("resource", fakeentra.TokenExchangeAudience), status: 401},
		{name: "unknown client_id", query: q("resource", fakeentra.TokenExchangeAudience, "client_id", accGUID(t)), status: 400},
		{name: "no resource", query: q("client_id", miClientID), status: 400},
		{name: "unknown resource", query: q("resource", "api://nowhere", "client_id", miClientID), status: 400},
		{name: "IMDS api-version", query: url.Values{"api-version": {"2018-02-01"}, "resource": {fakeentra.TokenExchangeAudience}}, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := accMIGet(t, srv, tc.header, tc.query)
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, body["message"], tc.status)
			}
			if status != http.StatusOK {
				if msg, _ := body["message"].(string); msg == "" || body["statusCode"] != float64(status) {
					t.Errorf("error body %v lacks statusCode %d and a message", body, status)
				}
				return
			}
			at, _ := body["access_token"].(string)
			if s, _ := body["expires_on"].(string); s == "" || strings.Trim(s, "0123456789") != "" {
				t.Errorf("expires_on = %v, want epoch seconds as a string", body["expires_on"])
			}
			if body["token_type"] != "Bearer" || body["resource"] != tc.query.Get("resource") || body["client_id"] == "" {
				t.Errorf("answer %v lacks App Service's fields", body)
			}
			accWantClaims(t, testkit.JWTClaims(t, at), map[string]string{"sub": tc.sub})
		})
	}
}

// TestFederatedMistakes: each mistake with a federated credential, as a raw
// request, answered with Entra's status, error and code.
func TestFederatedMistakes(t *testing.T) {
	t.Parallel()
	ten, miClientID := accFreshMI(t)
	ten.ClusterIssuers = []string{"other"}
	env := accStart(t, fakeentra.Config{Tenant: ten})
	srv := env.srv
	ep := env.tokenEndpoint(fakeentra.DemoTenantID, 2)
	gwID := fakeentra.DemoGatewayClientID
	issuer := srv.ClusterIssuerURL("")
	now := time.Now()

	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sa := func(opt fakeentra.ServiceAccountTokenOptions) func(t *testing.T) string {
		return func(t *testing.T) string { return accSAToken(t, srv, opt) }
	}
	mi := func(resource string) func(t *testing.T) string {
		return func(t *testing.T) string {
			status, body := accMIGet(t, srv, nil, url.Values{"api-version": {"2019-08-01"}, "resource": {resource}, "client_id": {miClientID}})
			if status != http.StatusOK {
				t.Fatalf("managed identity endpoint: %d %v", status, body)
			}
			return body["access_token"].(string)
		}
	}
	clientCredentials := func(assertion string) url.Values {
		return accCertForm(gwID, assertion, "grant_type", "client_credentials", "scope", "api://orders-api/.default")
	}
	for _, tc := range []struct {
		name      string
		assertion func(t *testing.T) string
		form      func(t *testing.T, assertion string) url.Values // default: client credentials
		status    int
		err       string
		code      int    // 0: must succeed
		reason    string // part of error_description
	}{
		{name: "service account token", assertion: sa(fakeentra.ServiceAccountTokenOptions{})},
		{name: "managed identity token", assertion: mi(fakeentra.TokenExchangeAudience)},
		{name: "on-behalf-of with a service account token", assertion: sa(fakeentra.ServiceAccountTokenOptions{}),
			form: func(t *testing.T, a string) url.Values {
				user, err := srv.UserToken(accAlice, accGatewayScope, fakeentra.UserTokenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return accCertForm(gwID, a, accOBOFields(user, "api://orders-api/Orders.Read")...)
			}},
		{name: "expired less than the clock skew ago", assertion: sa(fakeentra.ServiceAccountTokenOptions{IssuedAt: now.Add(-time.Hour - 2*time.Minute)})},
		{name: "issuer the app does not trust (another cluster)",
			assertion: func(t *testing.T) string {
				tok, err := srv.ServiceAccountToken("other", accSANamespace, accSAName, fakeentra.ServiceAccountTokenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			},
			status: 401, err: "invalid_client", code: 700211, reason: "presented assertion issuer '" + srv.ClusterIssuerURL("other") + "'"},
		{name: "issuer without its trailing slash", assertion: sa(fakeentra.ServiceAccountTokenOptions{Issuer: strings.TrimSuffix(issuer, "/")}),
			status: 401, err: "invalid_client", code: 700211, reason: "presented assertion issuer '" + strings.TrimSuffix(issuer, "/") + "'"},
		{name: "issuer the tenant knows nothing about", assertion: sa(fakeentra.ServiceAccountTokenOptions{Issuer: "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/"}),
			status: 401, err: "invalid_client", code: 700211, reason: "issuer 'https://oidc.prod-aks.azure.com/"},
		{name: "a user's token as client assertion",
			assertion: func(t *testing.T) string {
				tok, err := srv.UserToken(accAlice, accGatewayScope, fakeentra.UserTokenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			},
			status: 401, err: "invalid_client", code: 700211, reason: "presented assertion issuer '" + srv.IssuerV1(fakeentra.DemoTenantID) + "'"},
		{name: "an app without federated credentials", assertion: sa(fakeentra.ServiceAccountTokenOptions{}),
			form: func(_ *testing.T, a string) url.Values {
				return accCertForm(fakeentra.DemoDaemonClientID, a, "grant_type", "client_credentials", "scope", "api://obo-gateway/.default")
			},
			status: 400, err: "invalid_request", code: 70021,
			reason: "No matching federated identity record found for presented assertion. Assertion Issuer: '" + issuer + "'. Assertion Subject: '" + fakeentra.DemoServiceAccount + "'. Assertion Audience: 'api://AzureADTokenExchange'."},
		{name: "another service account", assertion: func(t *testing.T) string {
			tok, err := srv.ServiceAccountToken("", "default", "default", fakeentra.ServiceAccountTokenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, status: 401, err: "invalid_client", code: 700213, reason: "presented assertion subject 'system:serviceaccount:default:default'"},
		{name: "subject differing only in case", assertion: sa(fakeentra.ServiceAccountTokenOptions{Subject: "system:serviceaccount:OBO-Gateway:obo-gateway"}),
			status: 401, err: "invalid_client", code: 7002138, reason: "matches with case-insensitive comparison, but not with case-sensitive comparison"},
		{name: "the cluster's default audience", assertion: sa(fakeentra.ServiceAccountTokenOptions{Audiences: []string{"https://kubernetes.default.svc.cluster.local"}}),
			status: 401, err: "invalid_client", code: 700212, reason: "presented assertion audience 'https://kubernetes.default.svc.cluster.local'"},
		{name: "another cloud's exchange audience", assertion: sa(fakeentra.ServiceAccountTokenOptions{Audiences: []string{"api://AzureADTokenExchangeChina"}}),
			status: 401, err: "invalid_client", code: 700212, reason: "audience 'api://AzureADTokenExchangeChina'"},
		{name: "managed identity token for another resource", assertion: mi("api://orders-api"),
			status: 401, err: "invalid_client", code: 700212, reason: "audience '" + fakeentra.DemoOrdersClientID + "'"}, // a v2 API: aud is its client ID
		{name: "expired", assertion: sa(fakeentra.ServiceAccountTokenOptions{IssuedAt: now.Add(-2 * time.Hour)}),
			status: 401, err: "invalid_client", code: 700024, reason: "Client assertion is not within its valid time range. Current time: "},
		{name: "not yet valid", assertion: sa(fakeentra.ServiceAccountTokenOptions{IssuedAt: now.Add(10 * time.Minute)}),
			status: 401, err: "invalid_client", code: 700024, reason: "assertion valid from " + now.Add(10*time.Minute).UTC().Format("2006-01-02T15:04:05") + ".0000000Z"},
		{name: "signed by a key not in the issuer's key set", assertion: sa(fakeentra.ServiceAccountTokenOptions{SigningKey: foreign}),
			status: 401, err: "invalid_client", code: 7000272, reason: "could not be found in the metadata of identity provider " + issuer},
		{name: "signed by another key under the issuer's kid",
			assertion: func(t *testing.T) string {
				kid := accClusterKeys(t, env, issuer)[0].Kid
				return accSAToken(t, srv, fakeentra.ServiceAccountTokenOptions{SigningKey: foreign, KeyID: kid})
			},
			status: 401, err: "invalid_client", code: 700027, reason: "The provided signature value did not match"},
		{name: "not a JWT", assertion: func(*testing.T) string { return "system:serviceaccount:obo-gateway:obo-gateway" },
			status: 400, err: "invalid_request", code: 50027, reason: "JWT token is invalid or malformed"},
		{name: "a JWT without its signature", assertion: func(t *testing.T) string {
			tok := accSAToken(t, srv, fakeentra.ServiceAccountTokenOptions{})
			return tok[:strings.LastIndex(tok, ".")+1]
		}, status: 400, err: "invalid_request", code: 50027, reason: "JWT token is invalid or malformed"},
		{name: "on-behalf-of with another service account",
			assertion: func(t *testing.T) string {
				tok, err := srv.ServiceAccountToken("", accSANamespace, "default", fakeentra.ServiceAccountTokenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			},
			form: func(t *testing.T, a string) url.Values {
				user, err := srv.UserToken(accAlice, accGatewayScope, fakeentra.UserTokenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return accCertForm(gwID, a, accOBOFields(user, "api://orders-api/Orders.Read")...)
			},
			status: 401, err: "invalid_client", code: 700213, reason: "subject 'system:serviceaccount:obo-gateway:default'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.assertion(t)
			form := clientCredentials(a)
			if tc.form != nil {
				form = tc.form(t, a)
			}
			corr := accGUID(t)
			r := env.post(t, ep, form, http.Header{"Client-Request-Id": {corr}})
			if tc.code == 0 {
				accWantSuccess(t, r)
			} else {
				e := accWantError(t, r, tc.status, tc.err, tc.code)
				if !strings.Contains(e.ErrorDescription, tc.reason) {
					t.Errorf("error_description %q does not contain %q", e.ErrorDescription, tc.reason)
				}
			}
			var rec *fakeentra.Record
			for _, r := range srv.Requests() {
				if r.ClientRequestID == corr {
					rec = &r
				}
			}
			want := fakeentra.CredentialFederated
			if tc.code == 50027 {
				want = fakeentra.CredentialCertificate // not a JWT: nothing says whose it is
			}
			if rec == nil || rec.Credential != want {
				t.Errorf("request log: %+v, want credential %q", rec, want)
			}
		})
	}
}

// accJWK is a key of a cluster issuer's key set.
type accJWK struct {
	Kty, Use, Kid, Alg, N, E string
}

// accClusterKeys reads a cluster issuer's keys the way Entra does: its
// discovery document, then its jwks_uri.
func accClusterKeys(t *testing.T, env *accEnv, issuer string) []accJWK {
	t.Helper()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	accGetJSON(t, env, issuer+".well-known/openid-configuration", &doc)
	if doc.Issuer != issuer {
		t.Fatalf("discovery issuer = %q, want %q", doc.Issuer, issuer)
	}
	var set struct{ Keys []accJWK }
	accGetJSON(t, env, doc.JWKSURI, &set)
	if len(set.Keys) == 0 {
		t.Fatal("cluster issuer publishes no key")
	}
	return set.Keys
}

func accGetJSON(t *testing.T, env *accEnv, u string, v any) {
	t.Helper()
	resp, err := env.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestClusterIssuer checks the cluster issuer as Entra reads it, and its
// tokens as Kubernetes projects them, with the tests' own JWT code.
func TestClusterIssuer(t *testing.T) {
	t.Parallel()
	env := accStart(t, fakeentra.Config{})
	srv := env.srv
	issuer := srv.ClusterIssuerURL("local")
	if !strings.HasPrefix(issuer, srv.URL()+"/") || !strings.HasSuffix(issuer, "/") {
		t.Fatalf("ClusterIssuerURL(local) = %q, want a URL on the tenant's host ending in /", issuer)
	}
	if got := srv.Info().ClusterIssuers["local"]; got != issuer {
		t.Errorf("Info().ClusterIssuers[local] = %q, want %q", got, issuer)
	}
	if srv.ClusterIssuerURL("nowhere") != "" {
		t.Error("ClusterIssuerURL of an issuer not played is not empty")
	}
	keys := accClusterKeys(t, env, issuer)
	tok := accSAToken(t, srv, fakeentra.ServiceAccountTokenOptions{})
	h := testkit.JWTHeader(t, tok)
	if h["alg"] != "RS256" || h["kid"] != keys[0].Kid || keys[0].Alg != "RS256" || keys[0].Kty != "RSA" || keys[0].Use != "sig" {
		t.Fatalf("header %v and key %+v do not match as Kubernetes' do", h, keys[0])
	}
	n, err1 := accB64.DecodeString(keys[0].N)
	e, err2 := accB64.DecodeString(keys[0].E)
	if err1 != nil || err2 != nil {
		t.Fatalf("key n/e: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	i := strings.LastIndex(tok, ".")
	sig, err := accB64.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok[:i]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the token does not verify with the published key: %v", err)
	}
	c := testkit.JWTClaims(t, tok)
	accWantClaims(t, c, map[string]string{"iss": issuer, "sub": fakeentra.DemoServiceAccount})
	if aud := accStrings(c, "aud"); !slices.Equal(aud, []string{fakeentra.TokenExchangeAudience}) {
		t.Errorf("aud = %v, want [%s] (an array)", aud, fakeentra.TokenExchangeAudience)
	}
	iat, _ := c["iat"].(float64)
	nbf, _ := c["nbf"].(float64)
	exp, _ := c["exp"].(float64)
	if iat == 0 || nbf != iat || exp-iat != 3600 {
		t.Errorf("iat %v nbf %v exp %v: want nbf = iat and a lifetime of one hour", iat, nbf, exp)
	}
	k8s, _ := c["kubernetes.io"].(map[string]any)
	saClaim, _ := k8s["serviceaccount"].(map[string]any)
	if k8s["namespace"] != accSANamespace || saClaim["name"] != accSAName || saClaim["uid"] == "" {
		t.Errorf("kubernetes.io = %v, want namespace and serviceaccount name and uid", k8s)
	}
	if _, err := srv.ServiceAccountToken("nowhere", "a", "b", fakeentra.ServiceAccountTokenOptions{}); err == nil {
		t.Error("ServiceAccountToken of an issuer not played: no error")
	}

	// The same over the control endpoint, for scripts.
	resp, err := env.client.Post(srv.URL()+"/_fakeentra/service-account-token?namespace=apps&name=api&audience=aud1&lifetime=10m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_fakeentra/service-account-token: %d %v", resp.StatusCode, err)
	}
	c = testkit.JWTClaims(t, out.Token)
	accWantClaims(t, c, map[string]string{"iss": issuer, "sub": "system:serviceaccount:apps:api"})
	if aud := accStrings(c, "aud"); !slices.Equal(aud, []string{"aud1"}) || c["exp"].(float64)-c["iat"].(float64) != 600 {
		t.Errorf("aud %v, lifetime %v s: want [aud1] and 600", aud, c["exp"].(float64)-c["iat"].(float64))
	}
}

// TestFederatedTenantFile: the tenant file's keys, and the mistakes in it
// refused at start as Microsoft Graph refuses them.
func TestFederatedTenantFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tenant.yaml")
	yaml := `tenant_id: 0c0c0c0c-3333-4333-8333-0c0c0c0c0c0c
cluster_issuers: [prod]
managed_identities:
  - name: worker
    client_id: 0e0e0e0e-5555-4555-8555-0e0e0e0e0e0e
    object_id: 0f0f0f0f-6666-4666-8666-0f0f0f0f0f0f
  - name: host
    system_assigned: true
apps:
  - name: middle
    federated_credentials:
      - name: prod-cluster
        cluster_issuer: prod
        subject: system:serviceaccount:apps:middle
      - name: github
        issuer: https://token.actions.githubusercontent.com
        subject: repo:contoso/middle:environment:prod
        audiences: [api://AzureADTokenExchange]
      - name: worker
        managed_identity: worker
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ten, err := fakeentra.LoadTenant(file)
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}
	srv := accStart(t, fakeentra.Config{Tenant: ten}).srv
	fics := srv.Tenant().App("middle").FederatedCredentials
	want := []struct{ issuer, subject string }{
		{srv.ClusterIssuerURL("prod"), "system:serviceaccount:apps:middle"},
		{"https://token.actions.githubusercontent.com", "repo:contoso/middle:environment:prod"},
		{srv.IssuerV2("0c0c0c0c-3333-4333-8333-0c0c0c0c0c0c"), "0f0f0f0f-6666-4666-8666-0f0f0f0f0f0f"},
	}
	for i, w := range want {
		if f := fics[i]; f.IssuerURL() != w.issuer || f.Subject != w.subject || !slices.Equal(f.Audiences, []string{fakeentra.TokenExchangeAudience}) {
			t.Errorf("credential %s: issuer %q subject %q audiences %v; want %q %q [%s]", f.Name, f.IssuerURL(), f.Subject, f.Audiences, w.issuer, w.subject, fakeentra.TokenExchangeAudience)
		}
	}
	if srv.ClusterIssuerURL("prod") == "" || srv.ClusterIssuerURL("local") == "" {
		t.Error("the tenant file's cluster issuer or local is not played")
	}

	app := func(fics ...fakeentra.FederatedCredential) *fakeentra.Tenant {
		return &fakeentra.Tenant{Apps: []*fakeentra.App{{Name: "a", FederatedCredentials: fics}}}
	}
	sub := "system:serviceaccount:a:b"
	for _, tc := range []struct {
		name   string
		tenant *fakeentra.Tenant
		want   string
	}{
		{"no name", app(fakeentra.FederatedCredential{Issuer: "https://x/", Subject: sub}), "needs a name"},
		{"duplicate name", app(fakeentra.FederatedCredential{Name: "x", Issuer: "https://x/", Subject: sub}, fakeentra.FederatedCredential{Name: "X", Issuer: "https://y/", Subject: sub}), "duplicate name"},
		{"no issuer", app(fakeentra.FederatedCredential{Name: "x", Subject: sub}), "exactly one of issuer"},
		{"issuer and cluster issuer", app(fakeentra.FederatedCredential{Name: "x", Issuer: "https://x/", ClusterIssuer: "local", Subject: sub}), "exactly one of issuer"},
		{"no subject", app(fakeentra.FederatedCredential{Name: "x", Issuer: "https://x/"}), "needs a subject"},
		{"two audiences", app(fakeentra.FederatedCredential{Name: "x", Issuer: "https://x/", Subject: sub, Audiences: []string{"a", "b"}}), "audiences holds one value"},
		{"unknown cluster issuer", app(fakeentra.FederatedCredential{Name: "x", ClusterIssuer: "prod", Subject: sub}), "cluster issuer \"prod\""},
		{"unknown managed identity", app(fakeentra.FederatedCredential{Name: "x", ManagedIdentity: "worker"}), "no managed identity \"worker\""},
		{"two system-assigned identities", &fakeentra.Tenant{ManagedIdentities: []*fakeentra.ManagedIdentity{
			{Name: "a", SystemAssigned: true}, {Name: "b", SystemAssigned: true}}}, "at most one"},
		{"cluster issuer name with a slash", &fakeentra.Tenant{ClusterIssuers: []string{"a/b"}}, "cluster issuer \"a/b\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeentra.Start(t.Context(), fakeentra.Config{Tenant: tc.tenant, Dir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A user's (delegated) access token issued by the tenant itself is not a
// federated credential, even where an app's federated credential names the
// tenant's issuer and the user's subject: Entra accepts only app-only
// managed identity tokens from its own issuer (AADSTS700229).
func TestFederatedUserTokenFromTheTenantIsRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ten := fakeentra.DemoTenant()
	var aliceOID string
	for _, u := range ten.Users {
		if u.Username == accAlice {
			aliceOID = u.ObjectID
		}
	}
	// The v2 token's sub is pairwise: sha256(oid | app), base64url.
	h := sha256.Sum256([]byte(aliceOID + "|" + fakeentra.DemoOrdersClientID))
	sub := base64.RawURLEncoding.EncodeToString(h[:])[:43]
	for _, a := range ten.Apps {
		if a.Name == "gateway" {
			a.FederatedCredentials = append(a.FederatedCredentials, fakeentra.FederatedCredential{
				Name: "tenant-issuer", Issuer: "https://" + addr + "/" + fakeentra.DemoTenantID + "/v2.0",
				Subject: sub, Audiences: []string{fakeentra.DemoOrdersClientID}})
		}
	}
	env := accStart(t, fakeentra.Config{Tenant: ten, Addr: addr})
	user, err := env.srv.UserToken(accAlice, "api://orders-api/Orders.Read", fakeentra.UserTokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := env.post(t, env.tokenEndpoint(fakeentra.DemoTenantID, 2), accCertForm(fakeentra.DemoGatewayClientID, user,
		"grant_type", "client_credentials", "scope", "api://orders-api/.default"), nil)
	accWantError(t, r, http.StatusUnauthorized, "invalid_client", 700229)
}
