package fakeentra

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"
)

// mintAccess signs an access token shaped like Entra's, v1 or v2 according to
// the resource's accepted token version.
func (s *Server) mintAccess(g grant, now time.Time, lifetime time.Duration) (string, error) {
	res := g.sr.resource
	tid := g.tenant.TenantID
	c := map[string]any{
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"tid": tid,
		"uti": b64.EncodeToString(randomBytes(16)),
		"rh":  "0.AAAA" + b64.EncodeToString(randomBytes(12)) + ".",
	}
	if g.claims != nil && len(g.claims.capabilities) > 0 {
		// Entra marks tokens for clients that handle claims challenges (CAE).
		c["xms_cc"] = g.claims.capabilities
	}
	if g.user != nil {
		// How the user signed in, opaque to clients, as Entra keeps it.
		c["aio"] = s.sealSignIn(g.signIn)
		if len(g.signIn.ACRS) > 0 {
			c["acrs"] = g.signIn.ACRS
		}
	} else {
		c["aio"] = b64.EncodeToString(randomBytes(24))
	}
	var header map[string]any // v1 tokens name the key twice, as Entra's do
	if res.AccessTokenVersion == 1 {
		header = map[string]any{"x5t": true}
		c["ver"] = "1.0"
		c["iss"] = s.IssuerV1(tid)
		c["aud"] = g.sr.resourceID
		c["appid"] = g.client.ClientID
		c["appidacr"] = string(g.method)
	} else {
		c["ver"] = "2.0"
		c["iss"] = s.IssuerV2(tid)
		c["aud"] = res.ClientID
		c["azp"] = g.client.ClientID
		c["azpacr"] = string(g.method)
	}
	idtyp := slices.Contains(res.OptionalClaims, "idtyp") // an optional claim, only when the resource asks
	if g.user == nil {
		c["oid"] = g.client.ObjectID
		c["sub"] = g.client.ObjectID
		if idtyp {
			c["idtyp"] = "app"
		}
		if len(g.roles) > 0 {
			c["roles"] = g.roles
		}
		if res.AccessTokenVersion == 1 {
			c["idp"] = s.IssuerV1(tid)
		}
	} else {
		u := g.user
		c["oid"] = u.ObjectID
		c["sub"] = pairwiseSub(u.ObjectID, res.ClientID)
		c["name"] = u.DisplayName
		c["scp"] = strings.Join(g.scopes, " ")
		if idtyp {
			c["idtyp"] = "user"
		}
		if roles := u.rolesFor(g.tenant, res); len(roles) > 0 {
			c["roles"] = roles
		}
		if res.AccessTokenVersion == 1 {
			// v1 tokens carry amr; v2 access tokens do not.
			c["amr"] = g.signIn.AMR
			c["upn"] = u.Username
			c["unique_name"] = u.Username
			c["acr"] = "1"
		} else {
			c["preferred_username"] = u.Username
		}
	}
	return s.sign(c, header)
}

// mintID signs a v2 ID token for the client.
func (s *Server) mintID(g grant, now time.Time, lifetime time.Duration) (string, error) {
	u := g.user
	c := map[string]any{
		"aud": g.client.ClientID, "iss": s.IssuerV2(g.tenant.TenantID),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(lifetime).Unix(),
		"name": u.DisplayName, "oid": u.ObjectID, "preferred_username": u.Username,
		"sub": pairwiseSub(u.ObjectID, g.client.ClientID), "tid": g.tenant.TenantID, "ver": "2.0",
		"uti": b64.EncodeToString(randomBytes(16)),
	}
	if g.nonce != "" {
		c["nonce"] = g.nonce
	}
	return s.sign(c, nil)
}

// pairwiseSub is Entra's per-application subject: stable for a user and app,
// different across apps.
func pairwiseSub(oid, appID string) string {
	h := sha256.Sum256([]byte(oid + "|" + appID))
	return b64.EncodeToString(h[:])[:43]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// SignToken signs arbitrary claims with the tenant's current signing key (and
// its kid), for tests that need tokens the token endpoint would not issue:
// expired ones, other audiences, odd shapes. Header entries override the defaults.
func (s *Server) SignToken(claims map[string]any, header map[string]any) (string, error) {
	return s.sign(claims, header)
}

// sign signs claims with the current signing key, read once, so that the
// kid (and, when header asks for it with "x5t": true, the x5t) names the
// key that signed even while the key rotates. Header entries override the
// defaults.
func (s *Server) sign(claims, header map[string]any) (string, error) {
	k := s.keys.signer()
	h := map[string]any{"typ": "JWT", "kid": k.kid}
	for name, v := range header {
		h[name] = v
	}
	if h["x5t"] == true {
		h["x5t"] = k.kid
	}
	return signRS256(k.key, h, claims)
}

// UserTokenOptions shape a token from UserToken.
type UserTokenOptions struct {
	// Client is the app the token is issued to (azp/appid); default "frontend".
	Client string
	// Lifetime overrides the tenant's token lifetime; negative makes an expired token.
	Lifetime time.Duration
	// MFA records a sign-in with multifactor authentication (in the
	// token's aio, and in amr for a v1 token).
	MFA bool
	// ACRS are authentication contexts the token satisfies (acrs).
	ACRS []string
	// TenantID selects a served tenant; default the primary.
	TenantID string
}

// UserToken issues a delegated access token for a user directly, as the
// password grant would, without the policy checks: a shortcut for tests.
// scope is one resource's scopes, e.g. "api://obo-gateway/access_as_user".
func (s *Server) UserToken(username, scope string, opt UserTokenOptions) (string, error) {
	t := s.tenants[0]
	if opt.TenantID != "" {
		if t = s.tenantByRef(opt.TenantID); t == nil {
			return "", fmt.Errorf("fakeentra: no tenant %s", opt.TenantID)
		}
	}
	if opt.Client == "" {
		opt.Client = "frontend"
	}
	client := t.App(opt.Client)
	user := t.User(username)
	if client == nil || user == nil {
		return "", fmt.Errorf("fakeentra: no client %q or user %q in tenant %s", opt.Client, username, t.TenantID)
	}
	req := &tokenRequest{tenant: t, ver: 2, form: func(k string) string {
		if k == "scope" {
			return scope
		}
		return ""
	}}
	sr, aerr := s.parseScopes(req)
	if aerr != nil {
		return "", fmt.Errorf("fakeentra: %s", aerr)
	}
	scopes := sr.named
	if sr.isDefault {
		scopes = sr.resource.Scopes
	}
	si := signIn{AMR: []string{"pwd"}, ACRS: opt.ACRS}
	if opt.MFA {
		si.AMR = append(si.AMR, "mfa")
	}
	lifetime := t.lifetime()
	if opt.Lifetime != 0 {
		lifetime = opt.Lifetime
	}
	now := s.now()
	if lifetime < 0 {
		now = now.Add(2 * lifetime)
		lifetime = -lifetime
	}
	si.AuthTime = now.Unix()
	g := grant{tenant: t, client: client, method: authPublic, user: user, sr: sr, scopes: scopes, signIn: si}
	return s.mintAccess(g, now, lifetime)
}
