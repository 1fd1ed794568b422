package fakeentra_test

// The mistakes of the table in ENTRA.md ("Mistakes users make, and what
// Entra answers") that a local tenant can reproduce, each asserting Entra's
// HTTP status, error, and AADSTS code. Requests are raw form posts; JWTs are
// built and signed by the tests' own code (helpers_test.go).

import (
	"crypto/sha1" //nolint:gosec // a SHA-1 thumbprint is the mistake under test
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// A second tenant, served beside the demo tenant, for what the demo tenant
// does not have: an app whose only certificate has expired, a disabled user.
const (
	accFabTenantID   = "fab1ca00-0000-4000-8000-00000000fab1"
	accFabFrontendID = "fab1ca00-0001-4000-8000-00000000fab1"
	accFabMiddleID   = "fab1ca00-0002-4000-8000-00000000fab1"
	accFabReportsID  = "fab1ca00-0003-4000-8000-00000000fab1"
	accFabSecret     = "fabrikam-middle-secret"
	accCarol         = "carol@fabrikam.test"
)

func accFabrikamTenant(expiredCertPEM []byte) *fakeentra.Tenant {
	return &fakeentra.Tenant{
		TenantID: accFabTenantID,
		Domain:   "fabrikam.test",
		Apps: []*fakeentra.App{
			{
				Name: "frontend", ClientID: accFabFrontendID, PublicClient: true,
				Permissions: []fakeentra.Permission{{Resource: "middle", Scopes: []string{"access_as_user"}}},
			},
			{
				Name: "middle", ClientID: accFabMiddleID,
				IdentifierURIs: []string{"api://fabrikam-middle"},
				Scopes:         []string{"access_as_user"},
				Secrets:        []string{accFabSecret},
				Certificates:   []fakeentra.CertificateRef{{PEM: string(expiredCertPEM)}},
				Permissions:    []fakeentra.Permission{{Resource: "reports-api", Scopes: []string{"Reports.Read"}}},
			},
			{
				Name: "reports-api", ClientID: accFabReportsID,
				IdentifierURIs: []string{"api://reports-api"},
				Scopes:         []string{"Reports.Read"},
			},
		},
		Users: []*fakeentra.User{
			{Username: accCarol, Password: fakeentra.DemoPassword, Disabled: true},
		},
	}
}

// accMistake is one request that a developer gets wrong, and Entra's answer.
// A zero code means the request is right and must succeed (a control case).
type accMistake struct {
	name   string
	send   func(t *testing.T) accResp
	status int
	err    string
	code   int
	// reason is a part of error_description that says which check failed.
	reason string
	// suberror is the suberror Entra adds, if any.
	suberror string
}

func (m accMistake) run(t *testing.T) accEntraError {
	t.Helper()
	r := m.send(t)
	if m.code == 0 {
		accWantSuccess(t, r)
		return accEntraError{}
	}
	e := accWantError(t, r, m.status, m.err, m.code)
	if !strings.Contains(e.ErrorDescription, m.reason) {
		t.Errorf("error_description %q does not contain %q", e.ErrorDescription, m.reason)
	}
	if e.SubError != m.suberror {
		t.Errorf("suberror = %q, want %q", e.SubError, m.suberror)
	}
	return e
}

func TestEntraMistakes(t *testing.T) {
	t.Parallel()
	// The expired certificate of the second tenant's app, and its key.
	now := time.Now()
	expiredCert, expiredKey, err := pki.SelfSigned("CN=middle", now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	env := accStart(t, fakeentra.Config{ExtraTenants: []*fakeentra.Tenant{accFabrikamTenant(pki.CertPEM(expiredCert))}})
	srv := env.srv
	ep := env.tokenEndpoint(fakeentra.DemoTenantID, 2)
	gw := accLoadCred(t, srv, "gateway")
	gwID := fakeentra.DemoGatewayClientID

	// A certificate made from the gateway's key but never uploaded (a renewal
	// someone forgot to register).
	unregistered, err := pki.SelfSignedWithKey("gateway renewed", gw.key, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}

	// obo asks, as the gateway with its certificate, for scope on behalf of
	// the user whose token is assertion.
	obo := func(t *testing.T, assertion, scope string) accResp {
		t.Helper()
		ca := accClientAssertion(t, gw, gwID, ep, nil)
		return env.post(t, ep, accCertForm(gwID, ca, accOBOFields(assertion, scope)...), nil)
	}
	// clientCredentials asks, as the gateway with its certificate, for scope.
	clientCredentials := func(t *testing.T, scope string) accResp {
		t.Helper()
		ca := accClientAssertion(t, gw, gwID, ep, nil)
		return env.post(t, ep, accCertForm(gwID, ca, "grant_type", "client_credentials", "scope", scope), nil)
	}
	// password signs a user in with the demo frontend (a public client).
	password := func(t *testing.T, endpoint, clientID, username, scope string, extra ...string) accResp {
		t.Helper()
		f := accForm(append([]string{"grant_type", "password", "client_id", clientID,
			"username", username, "password", fakeentra.DemoPassword, "scope", scope}, extra...)...)
		return env.post(t, endpoint, f, nil)
	}
	userToken := func(t *testing.T, username, scope string, opt fakeentra.UserTokenOptions) string {
		t.Helper()
		tok, err := srv.UserToken(username, scope, opt)
		if err != nil {
			t.Fatalf("UserToken(%s, %s): %v", username, scope, err)
		}
		return tok
	}
	accessToken := func(t *testing.T, r accResp) string {
		t.Helper()
		at, _ := accWantSuccess(t, r)["access_token"].(string)
		return at
	}
	aliceToken := func(t *testing.T) string {
		t.Helper()
		return userToken(t, accAlice, accGatewayScope, fakeentra.UserTokenOptions{})
	}

	t.Run("user assertion", func(t *testing.T) {
		const orders = "api://orders-api/Orders.Read"
		// selfSigned re-signs alice's genuine claims with the gateway's own
		// certificate key: the seed question's token.
		selfSigned := func(t *testing.T, kid string) string {
			t.Helper()
			claims := testkit.JWTClaims(t, aliceToken(t))
			return testkit.SignJWT(t, gw.key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
		}
		for _, m := range []accMistake{
			{
				name: "genuine user token (control)",
				send: func(t *testing.T) accResp { return obo(t, aliceToken(t), orders) },
			},
			{
				// The original question: "AADSTS50013 ... The key was not found".
				name:   "self-signed with the app's certificate key, kid is the manifest keyId",
				send:   func(t *testing.T) accResp { return obo(t, selfSigned(t, accGUID(t)), orders) },
				status: http.StatusBadRequest, err: "invalid_grant", code: 50013,
				reason: "Assertion failed signature validation. [Reason - The key was not found.",
			},
			{
				name:   "self-signed with the app's certificate key, kid copied from a tenant token",
				send:   func(t *testing.T) accResp { return obo(t, selfSigned(t, srv.SigningKeyID()), orders) },
				status: http.StatusBadRequest, err: "invalid_grant", code: 50013,
				reason: "The provided signature value did not match the expected signature value",
			},
			{
				name: "app-only token for the gateway itself",
				send: func(t *testing.T) accResp {
					return obo(t, accessToken(t, clientCredentials(t, "api://obo-gateway/.default")), orders)
				},
				status: http.StatusBadRequest, err: "unauthorized_client", code: 7000114,
				reason: "is not allowed to make application on-behalf-of calls",
			},
			{
				name: "app-only token for another app",
				send: func(t *testing.T) accResp {
					return obo(t, accessToken(t, clientCredentials(t, "api://orders-api/.default")), orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 500131,
				reason: "Assertion audience does not match the Client app presenting the assertion",
			},
			{
				name: "user token for another audience",
				send: func(t *testing.T) accResp {
					return obo(t, userToken(t, accAlice, orders, fakeentra.UserTokenOptions{}), orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 500131,
				reason: "The audience in the assertion was '" + fakeentra.DemoOrdersClientID + "'",
			},
			{
				name: "ID token instead of the access token",
				send: func(t *testing.T) accResp {
					m := accWantSuccess(t, password(t, ep, fakeentra.DemoFrontendClientID, accAlice, accGatewayScope+" openid profile"))
					idt, _ := m["id_token"].(string)
					if idt == "" {
						t.Fatal("password grant with openid returned no id_token")
					}
					return obo(t, idt, orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 500131,
				reason: "The audience in the assertion was '" + fakeentra.DemoFrontendClientID + "'",
			},
			{
				name: "payload tampered (scp widened), signature kept",
				send: func(t *testing.T) accResp {
					segs := strings.Split(aliceToken(t), ".")
					claims := testkit.JWTClaims(t, strings.Join(segs, "."))
					claims["scp"] = "access_as_user Directory.ReadWrite.All"
					raw, err := json.Marshal(claims)
					if err != nil {
						t.Fatal(err)
					}
					segs[1] = accB64.EncodeToString(raw)
					return obo(t, strings.Join(segs, "."), orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 50013,
				reason: "The provided signature value did not match the expected signature value",
			},
			{
				name: "signature corrupted",
				send: func(t *testing.T) accResp {
					segs := strings.Split(aliceToken(t), ".")
					sig, err := accB64.DecodeString(segs[2])
					if err != nil {
						t.Fatal(err)
					}
					sig[len(sig)/2] ^= 0x01
					segs[2] = accB64.EncodeToString(sig)
					return obo(t, strings.Join(segs, "."), orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 50013,
				reason: "The provided signature value did not match the expected signature value",
			},
			{
				name: "expired user token",
				send: func(t *testing.T) accResp {
					return obo(t, userToken(t, accAlice, accGatewayScope, fakeentra.UserTokenOptions{Lifetime: -time.Hour}), orders)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 500133,
				reason: "Assertion is not within its valid time range.",
			},
			{
				// Entra takes only the compact serialisation: claims beside
				// the signed parts of a JSON serialisation are never read.
				name: "JWS JSON serialisation around a genuine token",
				send: func(t *testing.T) accResp {
					return obo(t, testkit.JWSJSONForgery(t, aliceToken(t), map[string]any{
						"aud": gwID, "oid": fakeentra.DemoBobObjectID, "iss": "https://login.microsoftonline.com/x/v2.0",
					}, false), orders)
				},
				status: http.StatusBadRequest, err: "invalid_request", code: 50027,
				reason: "JWT token is invalid or malformed",
			},
			{
				name: "genuine token with padded segments",
				send: func(t *testing.T) accResp {
					return obo(t, testkit.Respell(t, aliceToken(t), base64.URLEncoding), orders)
				},
				status: http.StatusBadRequest, err: "invalid_request", code: 50027,
				reason: "JWT token is invalid or malformed",
			},
			{
				name: "genuine token with a line break inside",
				send: func(t *testing.T) accResp {
					tok := aliceToken(t)
					return obo(t, tok[:40]+"\r\n"+tok[40:], orders)
				},
				status: http.StatusBadRequest, err: "invalid_request", code: 50027,
				reason: "JWT token is invalid or malformed",
			},
			{
				name:   "Authorization header value with its Bearer prefix",
				send:   func(t *testing.T) accResp { return obo(t, "Bearer "+aliceToken(t), orders) },
				status: http.StatusBadRequest, err: "invalid_request", code: 50027,
				reason: "JWT token is invalid or malformed",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("client assertion", func(t *testing.T) {
		// send presents a client assertion, built the documented way then
		// edited, on a client-credentials request.
		send := func(aud string, edit func(h, c map[string]any)) func(t *testing.T) accResp {
			return func(t *testing.T) accResp {
				ca := accClientAssertion(t, gw, gwID, aud, edit)
				return env.post(t, ep, accCertForm(gwID, ca, "grant_type", "client_credentials", "scope", "api://orders-api/.default"), nil)
			}
		}
		sha256Of := func(der []byte) []byte { h := sha256.Sum256(der); return h[:] }
		sha1Of := func(der []byte) []byte { h := sha1.Sum(der); return h[:] } //nolint:gosec
		keyID := accGUID(t)                                                   // a manifest keyCredentials keyId
		for _, m := range []accMistake{
			{name: "RS256 with x5t#S256 (control)", send: send(ep, nil)},
			{
				name: "PS256 with x5t#S256, as MSAL sends it",
				send: send(ep, func(h, _ map[string]any) { h["alg"] = "PS256" }),
			},
			{
				name: "RS256 with x5t (SHA-1), the older header",
				send: send(ep, func(h, _ map[string]any) { delete(h, "x5t#S256"); h["x5t"] = accX5t(gw.cert) }),
			},
			{
				name: "aud is the v1 token endpoint",
				send: send(env.tokenEndpoint(fakeentra.DemoTenantID, 1), nil),
			},
			{
				name:   "kid is the manifest keyId, no thumbprint",
				send:   send(ep, func(h, _ map[string]any) { delete(h, "x5t#S256"); h["kid"] = keyID }),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "[Reason - The key was not found., Thumbprint of key used by client: '" + keyID + "'",
			},
			{
				name:   "no thumbprint header at all",
				send:   send(ep, func(h, _ map[string]any) { delete(h, "x5t#S256") }),
				status: http.StatusBadRequest, err: "invalid_request", code: 50027,
				reason: "No certificate thumbprint specified in token header",
			},
			{
				name:   "x5t#S256 of a certificate never uploaded",
				send:   send(ep, func(h, _ map[string]any) { h["x5t#S256"] = accX5tS256(unregistered) }),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The key was not found.",
			},
			{
				name:   "x5t#S256 in hex instead of base64",
				send:   send(ep, func(h, _ map[string]any) { h["x5t#S256"] = hex.EncodeToString(sha256Of(gw.cert.Raw)) }),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The key was not found.",
			},
			{
				name: "x5t is the portal's hex thumbprint",
				send: send(ep, func(h, _ map[string]any) {
					delete(h, "x5t#S256")
					h["x5t"] = accHexThumbprintSHA1(gw.cert)
				}),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The key was not found.",
			},
			{
				name: "SHA-1 value in the x5t#S256 header",
				send: send(ep, func(h, _ map[string]any) {
					h["x5t#S256"] = base64.StdEncoding.EncodeToString(sha1Of(gw.cert.Raw))
				}),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The key was not found.",
			},
			{
				name: "x5c carries another certificate than the thumbprint names",
				send: send(ep, func(h, _ map[string]any) {
					h["x5c"] = []string{base64.StdEncoding.EncodeToString(unregistered.Raw)}
				}),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The key was not found.",
			},
			{
				name: "signed by another key than the certificate's",
				send: func(t *testing.T) accResp {
					other := accCred{cert: gw.cert, key: expiredKey}
					ca := accClientAssertion(t, other, gwID, ep, nil)
					return env.post(t, ep, accCertForm(gwID, ca, "grant_type", "client_credentials", "scope", "api://orders-api/.default"), nil)
				},
				status: http.StatusUnauthorized, err: "invalid_client", code: 700027,
				reason: "The provided signature value did not match the expected signature value",
			},
			{
				name:   "aud is the authority, not the token endpoint",
				send:   send(srv.Authority(), nil),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700023,
				reason: "The audience was '" + srv.Authority() + "'",
			},
			{
				name:   "aud is Entra's public token endpoint",
				send:   send("https://login.microsoftonline.com/"+fakeentra.DemoTenantID+"/oauth2/v2.0/token", nil),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700023,
				reason: "Client assertion audience claim does not match",
			},
			{
				name:   "sub is the service principal's object ID",
				send:   send(ep, func(_, c map[string]any) { c["sub"] = srv.Tenant().App("gateway").ObjectID }),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700021,
				reason: "Client assertion application identifier doesn't match 'client_id' parameter",
			},
			{
				name: "iss and sub name another app",
				send: send(ep, func(_, c map[string]any) {
					c["iss"], c["sub"] = fakeentra.DemoOrdersClientID, fakeentra.DemoOrdersClientID
				}),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700021,
				reason: "doesn't match 'client_id' parameter",
			},
			{
				name: "client assertion expired",
				send: send(ep, func(_, c map[string]any) {
					c["nbf"], c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
				}),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700024,
				reason: "Client assertion is not within its valid time range.",
			},
			{
				name: "registered certificate expired",
				send: func(t *testing.T) accResp {
					fabEP := env.tokenEndpoint(accFabTenantID, 2)
					ca := accClientAssertion(t, accCred{cert: expiredCert, key: expiredKey}, accFabMiddleID, fabEP, nil)
					return env.post(t, fabEP, accCertForm(accFabMiddleID, ca, "grant_type", "client_credentials", "scope", "api://reports-api/.default"), nil)
				},
				status: http.StatusUnauthorized, err: "invalid_client", code: 1000502,
				reason: "The provided certificate is not within its specified validity window.",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("client identity", func(t *testing.T) {
		send := func(clientID, secret string) func(t *testing.T) accResp {
			return func(t *testing.T) accResp {
				return env.post(t, ep, accForm("grant_type", "client_credentials", "client_id", clientID,
					"client_secret", secret, "scope", "api://orders-api/.default"), nil)
			}
		}
		unknown := accGUID(t)
		for _, m := range []accMistake{
			{name: "right secret (control)", send: send(gwID, fakeentra.DemoGatewaySecret)},
			{
				name: "client not in the tenant", send: send(unknown, fakeentra.DemoGatewaySecret),
				status: http.StatusBadRequest, err: "unauthorized_client", code: 700016,
				reason: "Application with identifier '" + unknown + "' was not found in the directory",
			},
			{
				name: "wrong secret", send: send(gwID, "demo-gateway-secret-old"),
				status: http.StatusUnauthorized, err: "invalid_client", code: 7000215,
				reason: "Invalid client secret provided.",
			},
			{
				name: "secret sent by a public client", send: send(fakeentra.DemoFrontendClientID, "anything"),
				status: http.StatusUnauthorized, err: "invalid_client", code: 700025,
				reason: "Client is public",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("scope", func(t *testing.T) {
		oboScope := func(scope string) func(t *testing.T) accResp {
			return func(t *testing.T) accResp { return obo(t, aliceToken(t), scope) }
		}
		for _, m := range []accMistake{
			{name: "named scope (control)", send: oboScope("api://orders-api/Orders.Read api://orders-api/Orders.Write")},
			{name: ".default (control)", send: oboScope("api://orders-api/.default")},
			{
				name: "missing dot in .default", send: oboScope("api://orders-api/default"),
				status: http.StatusBadRequest, err: "invalid_scope", code: 70011,
				reason: "The scope api://orders-api/default is not valid",
			},
			{
				name:   "missing dot in .default, client credentials",
				send:   func(t *testing.T) accResp { return clientCredentials(t, "api://orders-api/default") },
				status: http.StatusBadRequest, err: "invalid_scope", code: 1002012,
				reason: "Client credential flows must have a scope value with /.default",
			},
			{
				name: "unknown resource", send: oboScope("api://nope/.default"),
				status: http.StatusBadRequest, err: "invalid_resource", code: 500011,
				reason: "The resource principal named api://nope was not found",
			},
			{
				name: "two resources", send: oboScope("api://orders-api/Orders.Read api://hr-api/HR.Read"),
				status: http.StatusBadRequest, err: "invalid_request", code: 28000,
				reason: "contains more than one resource",
			},
			{
				name: ".default mixed with a named scope", send: oboScope("api://orders-api/.default api://orders-api/Orders.Read"),
				status: http.StatusBadRequest, err: "invalid_scope", code: 70011,
				reason: "'.default' scope can't be combined with resource-specific scopes",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("grant", func(t *testing.T) {
		for _, m := range []accMistake{
			{
				name: "RFC 8693 token exchange",
				send: func(t *testing.T) accResp {
					ca := accClientAssertion(t, gw, gwID, ep, nil)
					return env.post(t, ep, accCertForm(gwID, ca,
						"grant_type", accGrantTokenExchange,
						"subject_token", aliceToken(t),
						"subject_token_type", "urn:ietf:params:oauth:token-type:access_token",
						"scope", "api://orders-api/.default"), nil)
				},
				status: http.StatusBadRequest, err: "unsupported_grant_type", code: 70003,
				reason: "The app requested an unsupported grant type '" + accGrantTokenExchange + "'",
			},
			{
				name: "jwt-bearer without requested_token_use",
				send: func(t *testing.T) accResp {
					ca := accClientAssertion(t, gw, gwID, ep, nil)
					return env.post(t, ep, accCertForm(gwID, ca, "grant_type", accGrantJWTBearer,
						"assertion", aliceToken(t), "scope", "api://orders-api/.default"), nil)
				},
				status: http.StatusBadRequest, err: "invalid_request", code: 90014,
				reason: "requested_token_use",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("user", func(t *testing.T) {
		fabEP := env.tokenEndpoint(accFabTenantID, 2)
		for _, m := range []accMistake{
			{
				name:   "user never consented to the downstream API",
				send:   func(t *testing.T) accResp { return obo(t, aliceToken(t), "api://inventory-api/Inventory.Read") },
				status: http.StatusBadRequest, err: "invalid_grant", code: 65001,
				reason:   "The user or administrator has not consented to use the application with ID '" + gwID + "'",
				suberror: "consent_required",
			},
			{
				name: "disabled user signs in",
				send: func(t *testing.T) accResp {
					return password(t, fabEP, accFabFrontendID, accCarol, "api://fabrikam-middle/access_as_user")
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 50057,
				reason: "The user account is disabled.",
			},
			{
				name: "disabled user's token on behalf of",
				send: func(t *testing.T) accResp {
					tok := userToken(t, accCarol, "api://fabrikam-middle/access_as_user", fakeentra.UserTokenOptions{TenantID: accFabTenantID})
					return env.post(t, fabEP, accForm(append(accOBOFields(tok, "api://reports-api/Reports.Read"),
						"client_id", accFabMiddleID, "client_secret", accFabSecret)...), nil)
				},
				status: http.StatusBadRequest, err: "invalid_grant", code: 50057,
				reason: "The user account is disabled.",
			},
		} {
			t.Run(m.name, func(t *testing.T) { m.run(t) })
		}
	})

	t.Run("MFA required downstream, then step-up", func(t *testing.T) {
		const hr = "api://hr-api/HR.Read"
		e := accMistake{
			send:   func(t *testing.T) accResp { return obo(t, aliceToken(t), hr) },
			status: http.StatusBadRequest, err: "invalid_grant", code: 50076,
			reason:   "you must use multi-factor authentication to access '" + fakeentra.DemoHRClientID + "'",
			suberror: "basic_action",
		}.run(t)
		var challenge struct {
			AccessToken struct {
				Capolids struct {
					Essential bool     `json:"essential"`
					Values    []string `json:"values"`
				} `json:"capolids"`
			} `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(e.Claims), &challenge); err != nil {
			t.Fatalf("claims %q is not JSON: %v", e.Claims, err)
		}
		if c := challenge.AccessToken.Capolids; !c.Essential || len(c.Values) != 1 || !accGUIDPattern.MatchString(c.Values[0]) {
			t.Fatalf("claims %q: want access_token.capolids essential with one policy GUID", e.Claims)
		}

		// Claims that name no policy of the tenant satisfy nothing.
		other := strings.Replace(e.Claims, challenge.AccessToken.Capolids.Values[0], accGUID(t), 1)
		plain := accWantSuccess(t, password(t, ep, fakeentra.DemoFrontendClientID, accAlice, accGatewayScope, "claims", other))
		at, _ := plain["access_token"].(string)
		if amr := accStrings(testkit.JWTClaims(t, at), "amr"); slices.Contains(amr, "mfa") {
			t.Errorf("amr with claims naming an unknown policy = %v, want no mfa", amr)
		}
		accWantError(t, obo(t, at, hr), http.StatusBadRequest, "invalid_grant", 50076)

		// The user signs in again with the challenge (the local stand-in for
		// MSAL.js's interactive step-up): the new token carries mfa.
		stepped := accWantSuccess(t, password(t, ep, fakeentra.DemoFrontendClientID, accAlice, accGatewayScope, "claims", e.Claims))
		at, _ = stepped["access_token"].(string)
		if amr := accStrings(testkit.JWTClaims(t, at), "amr"); !slices.Contains(amr, "mfa") {
			t.Fatalf("amr after step-up = %v, want mfa", amr)
		}
		r := accWantSuccess(t, obo(t, at, hr))
		hrToken, _ := r["access_token"].(string)
		hrClaims := testkit.JWTClaims(t, hrToken)
		accWantClaims(t, hrClaims, map[string]string{
			"ver": "1.0", "aud": "api://hr-api", "oid": fakeentra.DemoAliceObjectID, "scp": "HR.Read",
			"appid": gwID,
		})
		if amr := accStrings(hrClaims, "amr"); !slices.Contains(amr, "mfa") {
			t.Errorf("amr of the downstream token = %v, want mfa carried over", amr)
		}
	})

	t.Run("v1 endpoint with resource", func(t *testing.T) {
		v1 := env.tokenEndpoint(fakeentra.DemoTenantID, 1)
		for _, tc := range []struct {
			name, resource string
			want           map[string]string
			wantRoles      []string
		}{
			{
				name: "v2 resource", resource: "api://orders-api",
				want:      map[string]string{"ver": "2.0", "aud": fakeentra.DemoOrdersClientID, "azp": gwID, "idtyp": "", "scp": ""},
				wantRoles: []string{"Orders.Read.All"},
			},
			{
				name: "v1 resource", resource: "api://hr-api",
				want: map[string]string{"ver": "1.0", "aud": "api://hr-api", "appid": gwID, "appidacr": "2", "scp": ""},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ca := accClientAssertion(t, gw, gwID, v1, nil)
				m := accWantSuccess(t, env.post(t, v1, accCertForm(gwID, ca, "grant_type", "client_credentials", "resource", tc.resource), nil))
				if m["resource"] != tc.resource {
					t.Errorf("resource = %v, want %s", m["resource"], tc.resource)
				}
				// v1 answers carry their numbers as strings.
				if _, ok := m["expires_in"].(string); !ok {
					t.Errorf("expires_in = %#v, want a string on the v1 endpoint", m["expires_in"])
				}
				at, _ := m["access_token"].(string)
				p := testkit.JWTClaims(t, at)
				accWantClaims(t, p, tc.want)
				if roles := accStrings(p, "roles"); !slices.Equal(roles, tc.wantRoles) {
					t.Errorf("roles = %v, want %v", roles, tc.wantRoles)
				}
			})
		}
	})
}
