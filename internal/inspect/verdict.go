package inspect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/auth"
)

// Check results, Check.Result: the gateway validator's.
const (
	Pass       = auth.Pass
	Fail       = auth.Fail
	NotChecked = auth.NotChecked
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
	// Status is the HTTP status the route answers a refused policy with
	// (401 or 403), and Reason the gateway's reason label for it.
	Status  int    `json:"status,omitempty"`
	Reason  string `json:"reason,omitempty"`
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
	// Code is stable: not_jwt, not_compact, jwe, unsigned, algorithm, app_only, id_token,
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

// gatewayVerdict is the gateway validator's own checks (ex, from
// auth.Validator.Explain), with a hint added where a setting would change
// the answer, and each route's policy (auth.Policy.Check, as the route's
// middleware applies it) on the principal the token claims.
func gatewayVerdict(r *Report, ex *auth.Explanation, verr error, g *Gateway) *GatewayVerdict {
	v := &GatewayVerdict{Config: g.Name, Issuers: issuersInfo(g.Issuers)}
	var tid string
	if r.Tenant != nil {
		tid = r.Tenant.ID
	}
	if tid != "" {
		v.Issuers.V2, v.Issuers.V1 = g.Issuers.Issuers(tid)
	}
	if verr != nil {
		v.Checks = append(v.Checks, Check{Name: "configuration", Result: Fail, Reason: string(auth.ReasonMalformed),
			Message: "the validator cannot be built from this configuration: " + verr.Error()})
	}
	for _, c := range ex.Checks {
		ck := Check{Name: c.Name, Result: c.Result, Reason: string(c.Reason), Message: c.Message}
		if c.Result == Fail {
			ck.Message += hint(c, r, g)
		}
		if c.Name == auth.CheckSignature && c.Result == NotChecked && c.Message == "not checked: no key set was given" {
			ck.Message = "not checked: pass -jwks FILE, the tenant's key set (" + g.Issuers.JWKSURI + ")"
		}
		if c.Name == auth.CheckIssuer && c.Result == Fail && g.Issuers.IssuerV1Template == "" && r.Issuer != nil && r.Issuer.Shape == "v1" {
			// The validator ran without the v1 issuer (discovery was not
			// read): it cannot say whether this one is the tenant's.
			ck.Result, ck.Reason = NotChecked, ""
			ck.Message = "the v1 issuer is unknown (" + g.Issuers.Source + "): " + c.Message
		}
		v.Checks = append(v.Checks, ck)
	}
	v.decide()
	for _, rt := range g.Routes {
		d := routeDecision(rt, ex.Claimed)
		d.Allowed = v.Accepted && d.PolicyAllows
		v.Routes = append(v.Routes, d)
	}
	return v
}

// hint says which setting would change a failed check's answer.
func hint(c auth.Check, r *Report, g *Gateway) string {
	switch c.Reason {
	case auth.ReasonTenant:
		if r.Tenant != nil && r.Tenant.ID != "" {
			return "; to accept its users (guests' home tenants, multi-tenant apps), add " + r.Tenant.ID + " to entra.allowed_tenants"
		}
	case auth.ReasonAudience:
		if c.Name == auth.CheckAudience {
			return "; the gateway accepts " + strings.Join(append([]string{g.ClientID}, g.Audiences...), " or ") +
				" (App ID URIs from its home tenant only)"
		}
	case auth.ReasonIssuer:
		return "; a token of another cloud or authority host, or not Entra's"
	}
	return ""
}

// routeDecision applies the route's policy, as the route's middleware does,
// to the principal the token claims (nil: its claims could not be read).
func routeDecision(rt Route, p *auth.Principal) RouteDecision {
	d := RouteDecision{Name: rt.Name, PathPrefix: rt.PathPrefix, Exchanges: rt.Resource}
	if p == nil {
		d.Status, d.Message = 401, "the token's claims cannot be read"
		return d
	}
	if _, te := rt.Policy.Check(p); te != nil {
		d.Status, d.Reason, d.Message = te.Status, string(te.Reason), te.Description
		if te.Err != nil {
			d.Message += " (" + te.Err.Error() + ")"
		}
		return d
	}
	d.PolicyAllows = true
	var parts []string
	if pol := rt.Policy; len(pol.Scopes) > 0 && !p.AppOnly {
		parts = append(parts, "scp meets required_scopes ("+strings.Join(pol.Scopes, ", ")+")")
	}
	if pol := rt.Policy; len(pol.Roles) > 0 {
		parts = append(parts, "roles meet required_roles ("+strings.Join(pol.Roles, ", ")+")")
	}
	if len(parts) == 0 {
		parts = append(parts, "any valid user token")
	}
	d.Message = strings.Join(parts, "; ")
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
			if (rt.Resource != "") == exchanging && len(rt.Policy.Scopes) > 0 {
				return resource, strings.TrimSuffix(resource, "/") + "/" + rt.Policy.Scopes[0]
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
	// An assertion for another audience: AADSTS500131 today (Entra answered
	// 50013 before; older tenants and documents still say so).
	audienceCodes := []int{500131, 50013}

	switch r.Signature.Status {
	case SigUnsigned:
		add("unsigned", "unsigned token (alg "+orNone(h.Alg)+"): Entra accepts only assertions it signed", 50013)
	case SigAlgorithm:
		add("algorithm", r.Signature.Message, 50013)
	}

	switch r.Kind {
	case KindApp:
		add("app_only", "app-only token from client credentials: OBO needs the user's token (the access token the frontend got for "+scope+" with the user signed in)", 7000114, 500131, 50013)
	case KindIDToken:
		add("id_token", fmt.Sprintf("this is an ID token (aud = the frontend's client ID %s, no scp): send the access token, the one the frontend gets for %s", audValues(r.Audience), scope), audienceCodes...)
	case KindClientAssertion:
		add("client_assertion", "this is a client assertion (aud = a token endpoint): a client's proof of identity, not a user's token; send the user's access token for "+scope, audienceCodes...)
	}

	if r.Kind != KindIDToken && r.Kind != KindClientAssertion {
		switch k := r.Audience.Kind; {
		case k == AudGraph:
			add("graph_audience", fmt.Sprintf("audience is Microsoft Graph: the frontend must request a token for %s (scope %s)", resource, scope), audienceCodes...)
		case k == AudNone:
			add("no_audience", "no aud claim: Entra cannot tell whom the token is for", audienceCodes...)
		case k == AudGatewayClientID || k == AudGatewayAppIDURI, k == AudGatewaySPN:
			// AudGatewaySPN is Entra's own way of naming the gateway's app:
			// the exchange takes it; the gateway's audience check does not
			// (its verdict says so).
		case opt.Gateway != nil || k == AudMicrosoftAPI:
			add("other_audience", fmt.Sprintf("audience is %s (%s), not the gateway: the frontend must request a token for %s (scope %s)",
				audValues(r.Audience), r.Audience.Values[0].Description, resource, scope), audienceCodes...)
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
