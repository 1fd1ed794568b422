package inspect

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/auth"
)

// Check results, Check.Result.
const (
	Pass       = "pass"
	Fail       = "fail"
	NotChecked = "not_checked"
)

// GatewayVerdict says whether the gateway would accept the token, check by
// check in the order the gateway makes them, and route by route.
type GatewayVerdict struct {
	// Config names the configuration (its file).
	Config string `json:"config"`
	// Accepted is true when no check failed. Unchecked lists the checks
	// that could not be made (the signature, without a key set): then the
	// gateway accepts the token only if they pass.
	Accepted  bool     `json:"accepted"`
	Unchecked []string `json:"unchecked,omitempty"`
	// Reason is the first failed check's reason as the gateway logs it
	// ("token refused", reason=...) and counts it in its metrics.
	Reason  string          `json:"reason,omitempty"`
	Checks  []Check         `json:"checks"`
	Issuers IssuersInfo     `json:"issuers"`
	Routes  []RouteDecision `json:"routes,omitempty"`
}

// Check is one check the gateway makes.
type Check struct {
	Name string `json:"name"`
	// Result is Pass, Fail or NotChecked.
	Result string `json:"result"`
	// Reason is the gateway's reason label for a failure (auth.Reason).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// IssuersInfo is what the gateway accepts as iss for the token's tenant.
type IssuersInfo struct {
	V2     string `json:"v2,omitempty"`
	V1     string `json:"v1,omitempty"`
	Source string `json:"source"`
}

// RouteDecision is what one route would do with the token.
type RouteDecision struct {
	Name       string `json:"name"`
	PathPrefix string `json:"path_prefix"`
	// Allowed is true when the token is accepted and meets the route's policy.
	Allowed bool `json:"allowed"`
	// PolicyAllows is the route's policy alone, as if the token were valid.
	PolicyAllows bool `json:"policy_allows"`
	// Status is the HTTP status the route answers a refused policy with (401 or 403).
	Status  int    `json:"status,omitempty"`
	Message string `json:"message"`
	// Exchanges is the downstream API the route exchanges the token for.
	Exchanges string `json:"exchanges,omitempty"`
}

// OBOVerdict says whether the token can serve as the assertion of an
// On-Behalf-Of exchange, and if not, why.
type OBOVerdict struct {
	// Usable is true when no problem was found. Unchecked lists what could
	// not be checked (the signature without a key set, the audience
	// without a gateway configuration).
	Usable    bool      `json:"usable"`
	Problems  []Finding `json:"problems,omitempty"`
	Unchecked []string  `json:"unchecked,omitempty"`
}

// Finding is one problem, in words a developer acts on.
type Finding struct {
	// Code is stable: not_jwt, jwe, unsigned, algorithm, app_only, id_token,
	// client_assertion, graph_audience, other_audience, no_audience,
	// expired, not_yet_valid, no_expiry, unknown_key, bad_signature,
	// tenant_mismatch, b2c.
	Code    string `json:"code"`
	Message string `json:"message"`
	// AADSTS are the codes Entra answers an exchange with this problem.
	AADSTS []int `json:"aadsts,omitempty"`
}

func issuersInfo(is Issuers) IssuersInfo {
	return IssuersInfo{V2: is.IssuerV2Template, V1: is.IssuerV1Template, Source: is.Source}
}

// decide sets Accepted, Unchecked and Reason from the checks.
func (v *GatewayVerdict) decide() {
	v.Accepted, v.Unchecked, v.Reason = true, nil, ""
	for _, c := range v.Checks {
		switch c.Result {
		case Fail:
			if v.Accepted {
				v.Reason = c.Reason
			}
			v.Accepted = false
		case NotChecked:
			v.Unchecked = append(v.Unchecked, c.Name)
		}
	}
}

// gatewayVerdict makes the gateway's checks (internal/auth's Validator and
// Policy) on the decoded token.
func gatewayVerdict(r *Report, c claims, opt Options) *GatewayVerdict {
	g := opt.Gateway
	v := &GatewayVerdict{Config: g.Name, Issuers: issuersInfo(g.Issuers)}
	tid := c.str("tid")
	iv2, iv1 := g.Issuers.Issuers(tid)
	if tid != "" {
		v.Issuers.V2, v.Issuers.V1 = iv2, iv1
	}
	add := func(name, result string, reason auth.Reason, format string, args ...any) {
		ck := Check{Name: name, Result: result, Message: fmt.Sprintf(format, args...)}
		if result == Fail {
			ck.Reason = string(reason)
		}
		v.Checks = append(v.Checks, ck)
	}
	h := r.Header

	if h.Nonce {
		add("graph_token", Fail, auth.ReasonAudience, "the header carries a nonce: a Microsoft Graph token, refused before anything else (\"request a token for this API instead\")")
	}
	if h.Alg == "RS256" {
		add("algorithm", Pass, "", "RS256")
	} else {
		add("algorithm", Fail, auth.ReasonAlgorithm, "alg %s: the gateway accepts only RS256", orNone(h.Alg))
	}

	switch s := r.Signature; s.Status {
	case SigVerified:
		add("signature", Pass, "", "%s", s.Message)
	case SigNotChecked:
		add("signature", NotChecked, "", "not checked: pass -jwks FILE, the tenant's key set (%s)", g.Issuers.JWKSURI)
	case SigUnknownKey:
		add("signature", Fail, auth.ReasonUnknownKey, "not signed by a key of the tenant: %s", s.Message)
	case SigUnsigned, SigAlgorithm:
		add("signature", Fail, auth.ReasonAlgorithm, "%s", s.Message)
	default:
		add("signature", Fail, auth.ReasonSignature, "%s", s.Message)
	}

	skew := g.ClockSkew
	at := opt.At
	exp, hasExp := c.unix("exp")
	nbf, hasNbf := c.unix("nbf")
	iat, hasIat := c.unix("iat")
	switch {
	case !hasExp:
		add("time", Fail, auth.ReasonMalformed, "no exp claim: the gateway requires one")
	case !at.Before(time.Unix(exp, 0).Add(skew)):
		add("time", Fail, auth.ReasonExpired, "%s, beyond the %s clock skew allowed", r.Times.Expires.Relative, skew)
	case hasNbf && at.Add(skew).Before(time.Unix(nbf, 0)):
		add("time", Fail, auth.ReasonNotYetValid, "%s, beyond the %s clock skew allowed", r.Times.NotBefore.Relative, skew)
	case hasIat && at.Add(skew).Before(time.Unix(iat, 0)):
		add("time", Fail, auth.ReasonNotYetValid, "%s, beyond the %s clock skew allowed", r.Times.IssuedAt.Relative, skew)
	default:
		add("time", Pass, "", "%s (clock skew allowed: %s)", r.Times.Expires.Relative, skew)
	}

	switch {
	case tid == "":
		add("tenant", Fail, auth.ReasonTenant, "no tid claim")
	case r.Tenant.Gateway == "not allowed":
		add("tenant", Fail, auth.ReasonTenant, "tid %s is neither the gateway's tenant (%s) nor in entra.allowed_tenants: add it there to accept its users (guests' home tenants, multi-tenant apps)", tid, g.TenantID)
	default:
		add("tenant", Pass, "", "tid %s: the gateway's %s", tid, r.Tenant.Gateway)
	}

	iss := c.str("iss")
	switch {
	case tid == "":
		add("issuer", Fail, auth.ReasonIssuer, "no tid, so no issuer to expect")
	case iss != "" && iss == iv2:
		add("issuer", Pass, "", "%s is the tenant's v2 issuer", iss)
	case iss != "" && iss == iv1:
		add("issuer", Pass, "", "%s is the tenant's v1 issuer", iss)
	case iv1 == "" && iss != iv2:
		add("issuer", NotChecked, "", "%s is not the v2 issuer %s, and the v1 issuer is unknown (%s)", orNone(iss), iv2, g.Issuers.Source)
	default:
		add("issuer", Fail, auth.ReasonIssuer, "%s is neither %s (v2) nor %s (v1): a token of another cloud or authority host, or not Entra's", orNone(iss), iv2, orNone(iv1))
	}

	if k := r.Audience.Kind; k == AudGatewayClientID || k == AudGatewayAppIDURI {
		add("audience", Pass, "", "%s", gatewayAudienceValue(r.Audience).Description)
	} else {
		add("audience", Fail, auth.ReasonAudience, "aud %s is not this gateway: it accepts %s", audValues(r.Audience), strings.Join(append([]string{g.ClientID}, g.Audiences...), " or "))
	}
	v.decide()

	appOnly := c.str("idtyp") == "app" || len(r.Scopes) == 0
	what := "an app-only token"
	if appOnly && r.Kind != KindApp {
		what = "no scp, so the gateway takes it for an app-only token"
	}
	for _, rt := range g.Routes {
		d := routeDecision(rt, appOnly, what, r.Scopes, r.Roles)
		d.Allowed = v.Accepted && d.PolicyAllows
		v.Routes = append(v.Routes, d)
	}
	return v
}

func gatewayAudienceValue(a *Audience) AudienceValue {
	for _, v := range a.Values {
		if v.Kind == a.Kind {
			return v
		}
	}
	return AudienceValue{}
}

func audValues(a *Audience) string {
	if len(a.Values) == 0 {
		return "(none)"
	}
	var vs []string
	for _, v := range a.Values {
		vs = append(vs, v.Value)
	}
	return strings.Join(vs, ", ")
}

// routeDecision applies a route's policy as auth.Policy does: app-only
// tokens (idtyp app, or no scp) need one of the route's roles and a route
// that exchanges no token; user tokens need one of its scopes, if it lists
// any. appOnlyWhat names an app-only token in the messages.
func routeDecision(rt Route, appOnly bool, appOnlyWhat string, scopes, roles []string) RouteDecision {
	d := RouteDecision{Name: rt.Name, PathPrefix: rt.PathPrefix, Exchanges: rt.Resource}
	refuse := func(status int, format string, args ...any) RouteDecision {
		d.Status, d.Message = status, fmt.Sprintf(format, args...)
		return d
	}
	has := func(have, want []string) bool {
		return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(have, w) })
	}
	d.PolicyAllows = true
	switch {
	case appOnly && rt.Resource != "":
		d.PolicyAllows = false
		return refuse(http.StatusUnauthorized, "%s: this route calls %s On-Behalf-Of a user and needs a user's token", appOnlyWhat, rt.Resource)
	case appOnly && len(rt.RequiredRoles) == 0:
		d.PolicyAllows = false
		return refuse(http.StatusForbidden, "%s: this route lists no required_roles, so it admits no app-only token", appOnlyWhat)
	case appOnly && !has(roles, rt.RequiredRoles):
		d.PolicyAllows = false
		return refuse(http.StatusForbidden, "lacks an app role this route requires (one of %s; the token has %s)", strings.Join(rt.RequiredRoles, ", "), orNone(strings.Join(roles, ", ")))
	case appOnly:
		d.Message = "app role " + strings.Join(roles, ", ") + " meets required_roles"
	case len(rt.RequiredScopes) > 0 && !has(scopes, rt.RequiredScopes):
		d.PolicyAllows = false
		return refuse(http.StatusForbidden, "lacks a scope this route requires (one of %s; the token has %s)", strings.Join(rt.RequiredScopes, ", "), orNone(strings.Join(scopes, " ")))
	case len(rt.RequiredScopes) > 0:
		d.Message = "scp meets required_scopes (" + strings.Join(rt.RequiredScopes, ", ") + ")"
	default:
		d.Message = "any valid user token"
	}
	if rt.Resource != "" {
		d.Message += "; exchanged On-Behalf-Of for " + rt.Resource
	}
	return d
}

// gatewayTarget is what the frontend must ask for to call the gateway:
// its App ID URI (or api://<client ID>) and its scope.
func gatewayTarget(g *Gateway) (resource, scope string) {
	if g == nil {
		return "api://<gateway>", "api://<gateway>/access_as_user"
	}
	resource = "api://" + g.ClientID
	if len(g.Audiences) > 0 {
		resource = g.Audiences[0]
	}
	name := "access_as_user"
	for _, exchanging := range []bool{true, false} {
		for _, rt := range g.Routes {
			if (rt.Resource != "") == exchanging && len(rt.RequiredScopes) > 0 {
				return resource, strings.TrimSuffix(resource, "/") + "/" + rt.RequiredScopes[0]
			}
		}
	}
	return resource, strings.TrimSuffix(resource, "/") + "/" + name
}

// oboVerdict says whether the token can be an OBO assertion for the gateway.
func oboVerdict(r *Report, opt Options) OBOVerdict {
	var v OBOVerdict
	add := func(code, msg string, aadsts ...int) {
		v.Problems = append(v.Problems, Finding{Code: code, Message: msg, AADSTS: aadsts})
	}
	resource, scope := gatewayTarget(opt.Gateway)
	h := r.Header

	switch r.Signature.Status {
	case SigUnsigned:
		add("unsigned", "unsigned token (alg "+orNone(h.Alg)+"): Entra accepts only assertions it signed", 50013)
	case SigAlgorithm:
		add("algorithm", r.Signature.Message, 50013)
	}

	switch r.Kind {
	case KindApp:
		add("app_only", "app-only token from client credentials: OBO needs the user's token (the access token the frontend got for "+scope+" with the user signed in)", 7000114, 50013)
	case KindIDToken:
		add("id_token", fmt.Sprintf("this is an ID token (aud = the frontend's client ID %s, no scp): send the access token, the one the frontend gets for %s", audValues(r.Audience), scope), 50013)
	case KindClientAssertion:
		add("client_assertion", "this is a client assertion (aud = a token endpoint): a client's proof of identity, not a user's token; send the user's access token for "+scope, 50013)
	}

	if r.Kind != KindIDToken && r.Kind != KindClientAssertion {
		switch k := r.Audience.Kind; {
		case k == AudGraph:
			add("graph_audience", fmt.Sprintf("audience is Microsoft Graph: the frontend must request a token for %s (scope %s)", resource, scope), 50013)
		case k == AudNone:
			add("no_audience", "no aud claim: Entra cannot tell whom the token is for", 50013)
		case k == AudGatewayClientID || k == AudGatewayAppIDURI, k == AudGatewaySPN:
			// AudGatewaySPN is Entra's own way of naming the gateway's app:
			// the exchange takes it; the gateway's audience check does not
			// (its verdict says so).
		case opt.Gateway != nil || k == AudMicrosoftAPI:
			add("other_audience", fmt.Sprintf("audience is %s (%s), not the gateway: the frontend must request a token for %s (scope %s)",
				audValues(r.Audience), r.Audience.Values[0].Description, resource, scope), 50013)
		default:
			v.Unchecked = append(v.Unchecked, "audience: whether "+audValues(r.Audience)+" is the gateway (pass -config FILE)")
		}
	}

	if t := r.Times; t != nil {
		switch t.Status {
		case TimeExpired:
			add("expired", t.Expires.Relative+": Entra answers AADSTS500133 (assertion expired): the frontend must send a fresh token (MSAL's acquireTokenSilent renews it)", 500133)
		case TimeNotYetValid:
			add("not_yet_valid", t.NotBefore.Relative+": Entra refuses it until then: check the clocks of the machines involved")
		case TimeNoExpiry:
			add("no_expiry", "no exp claim: Entra's tokens always have one", 50013)
		}
	}

	switch s := r.Signature; s.Status {
	case SigUnknownKey:
		msg := fmt.Sprintf("signed by a key that is not the tenant's (%s): a self-signed or foreign token — Entra answers AADSTS50013 'The key was not found'", keyNotFound(h, s))
		if guidRE.MatchString(h.Kid) {
			msg += "; a GUID kid is typically an app registration's keyCredentials keyId: the token was signed with an app's own key, not by Entra"
		}
		add("unknown_key", msg, 50013)
	case SigInvalid:
		add("bad_signature", "the signature does not verify with the tenant's key "+s.KeyID+": the token was altered (or re-signed) after Entra issued it — Entra answers AADSTS50013 (signature validation failed)", 50013)
	case SigNotChecked:
		v.Unchecked = append(v.Unchecked, "signature: pass -jwks FILE, the tenant's key set")
	}

	if t := r.Tenant; t != nil && t.MatchesIssuer != nil && !*t.MatchesIssuer {
		add("tenant_mismatch", fmt.Sprintf("iss names tenant %s but tid is %s: Entra never issues such a token; it was edited", r.Issuer.Tenant, t.ID), 50013)
	}
	if r.Issuer.Cloud == "Azure AD B2C" {
		add("b2c", "an Azure AD B2C token: B2C does not support On-Behalf-Of")
	}
	v.Usable = len(v.Problems) == 0
	return v
}

func keyNotFound(h *Header, s *Signature) string {
	name := "kid " + h.Kid
	if h.Kid == "" {
		name = "x5t " + h.X5t
	}
	return name + " not in the key set " + s.KeySet
}

// addNotes records what else a developer should know.
func (r *Report) addNotes(c claims, opt Options) {
	note := func(format string, args ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, args...)) }
	h := r.Header
	if guidRE.MatchString(h.Kid) && r.Signature.Status != SigUnknownKey {
		note("kid %s is a GUID: Entra names its signing keys by their certificate's thumbprint (27 base64url characters), never by a GUID; a GUID is typically an app registration's keyCredentials keyId, so this token was probably signed by your own code, not by Entra", h.Kid)
	}
	if h.Kid == "" && h.X5t != "" {
		note("the header has x5t but no kid (older v1 tokens): its key is looked up by x5t")
	}
	switch {
	case r.Version == "2.0" && r.Issuer.Shape == "v1", r.Version == "1.0" && r.Issuer.Shape == "v2":
		note("ver %s but the issuer has the v%s shape: not a token Entra issued as is", r.Version, r.Issuer.Shape[1:])
	}
	if r.Client != nil && r.Client.IsGateway && r.Kind == KindUser &&
		r.Audience.Kind != AudGatewayClientID && r.Audience.Kind != AudGatewayAppIDURI {
		note("issued to the gateway itself (%s = its client ID) for %s: a downstream token from an On-Behalf-Of exchange, what upstreams receive, not what the gateway accepts", r.Client.Claim, audValues(r.Audience))
	}
	if r.Issuer.Cloud != "" && opt.Gateway == nil && strings.HasPrefix(r.Issuer.Cloud, "not a Microsoft host") {
		note("the issuer's host is not Microsoft's: pass -config to compare it with the gateway's authority host")
	}
	if slices.Contains(r.AMR, "mfa") {
		note("amr has mfa: the user did multi-factor authentication at sign-in")
	}
	if xms := c.strs("xms_cc"); slices.Contains(xms, "cp1") {
		note("xms_cc has cp1: the client declared it handles claims challenges (continuous access evaluation)")
	}
}
