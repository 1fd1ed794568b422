package fakeentra_test

// What the tenant decides from the claims parameter, and the shape of what
// it issues: as a real registration gets it from Entra.

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestClaimsParameter(t *testing.T) {
	t.Parallel()
	e := gwStart(t, nil)
	const orders = "api://orders-api/Orders.Read"

	t.Run("malformed claims are refused on every grant", func(t *testing.T) {
		for _, claims := range []string{"not json", `"c1"`, `[]`, `{"access_token":"acrs"}`,
			`{"access_token":{"acrs":{"essential":true,"value":1}}}`, `{"access_token":{"xms_cc":{"values":"cp1"}}}`} {
			r := e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{}), orders, "claims", claims)
			accWantError(t, r, http.StatusBadRequest, "invalid_request", 90100)
			r = e.post(t, e.ep, accForm("grant_type", "password", "client_id", fakeentra.DemoFrontendClientID,
				"username", accAlice, "password", fakeentra.DemoPassword, "scope", accGatewayScope, "claims", claims), nil)
			accWantError(t, r, http.StatusBadRequest, "invalid_request", 90100)
		}
	})

	t.Run("an authentication context the sign-in satisfies is in the token", func(t *testing.T) {
		const c1 = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
		m := accWantSuccess(t, e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{MFA: true}), orders, "claims", c1))
		at, _ := m["access_token"].(string)
		if acrs := accStrings(testkit.JWTClaims(t, at), "acrs"); !slices.Equal(acrs, []string{"c1"}) {
			t.Errorf("acrs = %v, want [c1]", acrs)
		}
		// The tenant recorded the claims it was sent.
		recs := e.srv.Requests()
		if last := recs[len(recs)-1]; last.Claims != c1 {
			t.Errorf("request log claims = %q, want %q", last.Claims, c1)
		}
	})

	t.Run("one it does not is the interaction error with the claims to send back", func(t *testing.T) {
		const c1 = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
		plain := e.userToken(t, fakeentra.UserTokenOptions{})
		ee := accWantError(t, e.obo(t, plain, orders, "claims", c1), http.StatusBadRequest, "invalid_grant", 50076)
		if ee.SubError != "basic_action" || ee.Claims != c1 {
			t.Errorf("suberror %q claims %q, want basic_action and %s", ee.SubError, ee.Claims, c1)
		}
		// Without the claims the same assertion is exchanged (orders has no policy).
		m := accWantSuccess(t, e.obo(t, plain, orders))
		at, _ := m["access_token"].(string)
		if _, has := testkit.JWTClaims(t, at)["acrs"]; has {
			t.Error("a token nobody asked an authentication context for carries acrs")
		}
		// The user signs in again with the claims (the local stand-in for an
		// interactive step-up); the new token satisfies them.
		stepped := accWantSuccess(t, e.post(t, e.ep, accForm("grant_type", "password", "client_id", fakeentra.DemoFrontendClientID,
			"username", accAlice, "password", fakeentra.DemoPassword, "scope", accGatewayScope, "claims", ee.Claims), nil))
		st, _ := stepped["access_token"].(string)
		accWantSuccess(t, e.obo(t, st, orders, "claims", c1))
	})

	t.Run("the evidence of MFA is not a claim a client can write", func(t *testing.T) {
		// A token the tenant signed with amr ["mfa"] but no aio of its own
		// (a forgery through SignToken, as a compromised client could not
		// even do) proves nothing.
		claims := testkit.JWTClaims(t, e.userToken(t, fakeentra.UserTokenOptions{}))
		claims["amr"] = []string{"pwd", "mfa"}
		claims["aio"] = "forged"
		forged, err := e.srv.SignToken(claims, nil)
		if err != nil {
			t.Fatal(err)
		}
		accWantError(t, e.obo(t, forged, "api://hr-api/HR.Read"), http.StatusBadRequest, "invalid_grant", 50076)
		accWantSuccess(t, e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{MFA: true}), "api://hr-api/HR.Read"))
	})

	t.Run("capabilities and CAE challenges are accepted", func(t *testing.T) {
		m := accWantSuccess(t, e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{}), orders,
			"claims", `{"access_token":{"xms_cc":{"values":["cp1"]},"nbf":{"essential":true,"value":"1700000000"}}}`))
		at, _ := m["access_token"].(string)
		if cc := accStrings(testkit.JWTClaims(t, at), "xms_cc"); !slices.Equal(cc, []string{"cp1"}) {
			t.Errorf("xms_cc = %v, want [cp1]", cc)
		}
	})
}

// A user who has not registered for MFA cannot satisfy a policy that needs
// it: AADSTS50079, interaction_required, with the claims.
func TestMFANotRegistered(t *testing.T) {
	t.Parallel()
	ten := fakeentra.DemoTenant()
	for _, u := range ten.Users {
		if u.Username == accAlice {
			u.MFANotRegistered = true
		}
	}
	e := gwStart(t, ten)
	ee := accWantError(t, e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{}), "api://hr-api/HR.Read"),
		http.StatusBadRequest, "interaction_required", 50079)
	if ee.Claims == "" || ee.SubError != "basic_action" {
		t.Errorf("claims %q suberror %q, want claims and basic_action", ee.Claims, ee.SubError)
	}
}

// The tokens and answers a real registration gets.
func TestIssuedShapes(t *testing.T) {
	t.Parallel()
	e := gwStart(t, nil)

	t.Run("v2 tokens carry no amr, v1 tokens do", func(t *testing.T) {
		v2 := testkit.JWTClaims(t, mustToken(t, e.srv, "api://orders-api/Orders.Read"))
		v1 := testkit.JWTClaims(t, mustToken(t, e.srv, accGatewayScope))
		if _, has := v2["amr"]; has || v2["ver"] != "2.0" {
			t.Errorf("v2 token: ver %v amr %v, want 2.0 and no amr", v2["ver"], v2["amr"])
		}
		if amr := accStrings(v1, "amr"); !slices.Contains(amr, "pwd") || v1["ver"] != "1.0" {
			t.Errorf("v1 token: ver %v amr %v, want 1.0 with amr", v1["ver"], amr)
		}
		if iss, _ := v1["iss"].(string); strings.HasPrefix(iss, e.srv.URL()) || iss != e.srv.IssuerV1(fakeentra.DemoTenantID) {
			t.Errorf("v1 iss %q: want the STS origin, not the authority %s", iss, e.srv.URL())
		}
	})

	t.Run("idtyp only for a resource that asks for it", func(t *testing.T) {
		ten := fakeentra.DemoTenant()
		ten.App("orders-api").OptionalClaims = []string{"idtyp"}
		srv := accStart(t, fakeentra.Config{Tenant: ten}).srv
		user := testkit.JWTClaims(t, mustToken(t, srv, "api://orders-api/Orders.Read"))
		if user["idtyp"] != "user" {
			t.Errorf("idtyp = %v, want user", user["idtyp"])
		}
		if plain := testkit.JWTClaims(t, mustToken(t, e.srv, "api://orders-api/Orders.Read")); plain["idtyp"] != nil {
			t.Errorf("idtyp = %v without the optional claim", plain["idtyp"])
		}
	})

	t.Run("OBO answer: lifetimes, id_token, scope echo, x-ms-request-id", func(t *testing.T) {
		seen := map[int]bool{}
		for range 5 {
			r := e.obo(t, e.userToken(t, fakeentra.UserTokenOptions{}), "api://orders-api/Orders.Read openid profile offline_access")
			m := accWantSuccess(t, r)
			exp, _ := m["expires_in"].(float64)
			ext, _ := m["ext_expires_in"].(float64)
			if exp < 3600 || exp >= 5400 || ext <= exp {
				t.Errorf("expires_in %v ext_expires_in %v: want 60-90 minutes and a longer extended lifetime", exp, ext)
			}
			seen[int(exp)] = true
			if id, _ := m["id_token"].(string); id == "" {
				t.Error("no id_token although openid was asked")
			}
			if m["refresh_token"] == nil {
				t.Error("no refresh_token although offline_access was asked")
			}
			if sc := m["scope"]; sc != "api://orders-api/Orders.Read" {
				t.Errorf("scope = %v, want the resource scopes only", sc)
			}
			if !accGUIDPattern.MatchString(r.header.Get("x-ms-request-id")) {
				t.Errorf("x-ms-request-id = %q on a success", r.header.Get("x-ms-request-id"))
			}
		}
		if len(seen) < 2 {
			t.Errorf("five tokens, lifetimes %v: want them to vary", seen)
		}
	})

	t.Run("every refresh returns a new refresh token", func(t *testing.T) {
		m := accWantSuccess(t, e.post(t, e.ep, accForm("grant_type", "password", "client_id", fakeentra.DemoFrontendClientID,
			"username", accAlice, "password", fakeentra.DemoPassword, "scope", accGatewayScope+" offline_access"), nil))
		rt, _ := m["refresh_token"].(string)
		for range 2 {
			m = accWantSuccess(t, e.post(t, e.ep, accForm("grant_type", "refresh_token", "client_id", fakeentra.DemoFrontendClientID,
				"refresh_token", rt, "scope", accGatewayScope), nil))
			next, _ := m["refresh_token"].(string)
			if next == "" || next == rt {
				t.Fatalf("refresh returned refresh_token %q, want a new one", next)
			}
			rt = next
		}
	})

	t.Run("discovery answers carry x-ms-request-id", func(t *testing.T) {
		resp, err := e.client.Get(e.srv.URL() + "/" + fakeentra.DemoTenantID + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !accGUIDPattern.MatchString(resp.Header.Get("x-ms-request-id")) {
			t.Errorf("x-ms-request-id = %q", resp.Header.Get("x-ms-request-id"))
		}
	})

	t.Run("thumbprints are quoted in hex", func(t *testing.T) {
		now := time.Now()
		cert, key, err := pki.SelfSigned("CN=unregistered", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ca := accClientAssertion(t, accCred{cert: cert, key: key}, fakeentra.DemoGatewayClientID, e.ep, func(h, _ map[string]any) {
			delete(h, "x5t#S256")
			h["x5t"] = accX5t(cert)
		})
		ee := accWantError(t, e.post(t, e.ep, accCertForm(fakeentra.DemoGatewayClientID, ca, "grant_type", "client_credentials",
			"scope", "api://orders-api/.default"), nil), http.StatusUnauthorized, "invalid_client", 700027)
		if !strings.Contains(ee.ErrorDescription, "'"+accHexThumbprintSHA1(cert)+"'") {
			t.Errorf("700027 does not quote the SHA-1 thumbprint in hex: %s", ee.ErrorDescription)
		}
	})
}

func mustToken(t *testing.T, srv *fakeentra.Server, scope string) string {
	t.Helper()
	tok, err := srv.UserToken(accAlice, scope, fakeentra.UserTokenOptions{Client: "gateway"})
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	return tok
}

// An app that trusts subject names (SNI) accepts a certificate no one
// registered when its x5c chain leads to the tenant's CA and the subject is
// trusted; otherwise Entra's refusals.
func TestSubjectNameIssuerAuthentication(t *testing.T) {
	t.Parallel()
	ten := fakeentra.DemoTenant()
	ten.App("gateway").TrustedCertificateSubjects = []string{"CN=gateway.contoso.test"}
	e := gwStart(t, ten)
	dir := t.TempDir()
	load := func(cn string) (accCred, []*x509.Certificate) {
		certFile, keyFile, err := e.srv.IssueClientCertificate(dir, cn)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _ := os.ReadFile(certFile)
		keyPEM, _ := os.ReadFile(keyFile)
		chain, err := pki.ParseCertsPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tlsKey(keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return accCred{cert: chain[0], key: c}, chain
	}
	x5c := func(chain []*x509.Certificate) func(h, _ map[string]any) {
		return func(h, _ map[string]any) {
			var v []string
			for _, c := range chain {
				v = append(v, stdB64(c.Raw))
			}
			h["x5c"] = v
		}
	}
	cc := func(assertion string) accResp {
		return e.post(t, e.ep, accCertForm(fakeentra.DemoGatewayClientID, assertion, "grant_type", "client_credentials",
			"scope", "api://orders-api/.default"), nil)
	}
	trusted, chain := load("gateway.contoso.test")
	accWantSuccess(t, cc(accClientAssertion(t, trusted, fakeentra.DemoGatewayClientID, e.ep, x5c(chain))))
	// Without x5c there is nothing to trust but a thumbprint nobody registered.
	accWantError(t, cc(accClientAssertion(t, trusted, fakeentra.DemoGatewayClientID, e.ep, nil)), http.StatusUnauthorized, "invalid_client", 700027)
	// A valid chain to an untrusted subject.
	other, otherChain := load("someone-else.contoso.test")
	accWantError(t, cc(accClientAssertion(t, other, fakeentra.DemoGatewayClientID, e.ep, x5c(otherChain))), http.StatusUnauthorized, "invalid_client", 700030)
	// The trusted subject on a self-signed certificate: no chain to the CA.
	now := time.Now()
	selfCert, selfKey, err := pki.SelfSigned("gateway.contoso.test", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	self := accCred{cert: selfCert, key: selfKey}
	accWantError(t, cc(accClientAssertion(t, self, fakeentra.DemoGatewayClientID, e.ep, x5c([]*x509.Certificate{selfCert}))), http.StatusUnauthorized, "invalid_client", 700027)
}

func stdB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// tlsKey reads an RSA private key PEM (PKCS#8 or PKCS#1).
func tlsKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}
