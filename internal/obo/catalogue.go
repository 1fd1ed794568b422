package obo

import "net/http"

// Class groups OBO failures by who must act, which decides the frontend's answer.
type Class string

// Classes of OBO failure.
const (
	// ClassInteraction: the user must satisfy a policy (MFA, conditional
	// access): 401 insufficient_claims with the claims challenge.
	ClassInteraction Class = "interaction_required"
	// ClassConsent: the user (or an admin) must consent: 403 consent_required.
	ClassConsent Class = "consent_required"
	// ClassInvalidAssertion: the user's token cannot be exchanged (expired,
	// wrong audience, app-only): 401 invalid_token; the frontend gets a new token.
	ClassInvalidAssertion Class = "invalid_assertion"
	// ClassUser: the account is blocked: 403 access_denied.
	ClassUser Class = "user_blocked"
	// ClassGateway: the gateway's own credential or configuration is wrong:
	// 502, and the operator must act.
	ClassGateway Class = "gateway_config"
	// ClassUnavailable: Entra is throttling, failing or unreachable: 503 with Retry-After.
	ClassUnavailable Class = "unavailable"
)

// Status is the HTTP status the frontend gets for the class.
func (c Class) Status() int {
	switch c {
	case ClassInteraction, ClassInvalidAssertion:
		return http.StatusUnauthorized
	case ClassConsent, ClassUser:
		return http.StatusForbidden
	case ClassUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadGateway
	}
}

func (c Class) hint() string {
	switch c {
	case ClassInteraction:
		return "the user must satisfy a conditional-access policy; the frontend gets the claims challenge"
	case ClassConsent:
		return "the user or an admin must consent to the downstream API's delegated permission for the gateway app"
	case ClassInvalidAssertion:
		return "the user's token cannot be exchanged; the frontend must get a new token for the gateway"
	case ClassUnavailable:
		return "Entra ID is throttling, failing or unreachable; requests are answered 503 with Retry-After"
	default:
		return "the gateway's credential or configuration was refused by Entra ID; see the AADSTS code"
	}
}

// CatalogueEntry is what the gateway knows of one AADSTS code on the OBO path.
type CatalogueEntry struct {
	Class Class
	// Hint tells the operator what to fix.
	Hint string
}

// catalogue maps the AADSTS codes the OBO path can meet to their class and
// the operator's hint. Classes follow error/suberror/claims where Entra sends
// them; the code refines the hint.
var catalogue = map[int]CatalogueEntry{
	50013:   {ClassInvalidAssertion, "the user assertion failed validation (signature, key not found, or audience): the frontend must send a token Entra issued for the gateway's app (aud = its client ID or App ID URI), passed unchanged"},
	500131:  {ClassInvalidAssertion, "the user assertion's audience is not the gateway's app: the frontend must request a token for the gateway's scope"},
	500133:  {ClassInvalidAssertion, "the user assertion has expired: the frontend must get a fresh token"},
	7000114: {ClassInvalidAssertion, "the assertion is an app-only token: OBO needs a user's delegated token"},
	50027:   {ClassGateway, "a JWT sent to Entra is malformed: check the gateway certificate credential (the client assertion needs an x5t#S256 header)"},
	50057:   {ClassUser, "the user's account is disabled"},
	65001:   {ClassConsent, "consent missing: grant admin consent for the gateway app's delegated permission on the downstream API, or let the user consent"},
	50076:   {ClassInteraction, "MFA required by conditional access on the downstream API: the claims challenge is passed to the frontend"},
	50079:   {ClassInteraction, "MFA registration required by conditional access: the claims challenge is passed to the frontend"},
	53003:   {ClassInteraction, "blocked by conditional access: the claims challenge is passed to the frontend"},
	700016:  {ClassGateway, "the gateway's client ID is not an app of this tenant: check client_id and tenant_id (AZURE_CLIENT_ID, AZURE_TENANT_ID)"},
	700027:  {ClassGateway, "the gateway's certificate is not registered on its app (or its thumbprint does not match): upload the certificate in the app registration's Certificates & secrets"},
	700024:  {ClassGateway, "the client assertion or the gateway's certificate is outside its validity: check the certificate dates and the machine clock"},
	1000502: {ClassGateway, "the gateway's certificate has expired or is not yet valid: rotate it"},
	7000214: {ClassGateway, "the gateway's certificate has been revoked: rotate it"},
	7000215: {ClassGateway, "the client secret is wrong: use the secret's value, not its ID"},
	7000222: {ClassGateway, "the client secret has expired: create a new one"},
	7000218: {ClassGateway, "no client credential was sent: configure the gateway's certificate"},
	700021:  {ClassGateway, "the client assertion's iss/sub do not match the client ID"},
	700023:  {ClassGateway, "the client assertion's audience is not this tenant's token endpoint: check authority_host and tenant_id"},
	70011:   {ClassGateway, "a downstream scope is invalid: use <App ID URI>/.default or <App ID URI>/<scope> (note the dot in /.default)"},
	1002012: {ClassGateway, "a downstream scope is invalid for this flow: use <App ID URI>/.default"},
	28000:   {ClassGateway, "a route's downstream scopes name more than one resource: one route, one downstream API"},
	700022:  {ClassGateway, "a route's downstream scopes name more than one resource: one route, one downstream API"},
	500011:  {ClassGateway, "the downstream API (resource) is not found in the tenant: check the route's downstream scopes and that the API is registered in this tenant"},
	70003:   {ClassGateway, "unsupported grant type: Entra does not implement RFC 8693 token exchange; OBO uses the jwt-bearer grant"},
	90002:   {ClassGateway, "the tenant was not found: check tenant_id and authority_host"},
	90038:   {ClassGateway, "cross-cloud request: the authority host does not match the tenant's cloud"},
	50020:   {ClassInvalidAssertion, "the user is not a member of the tenant the exchange went to"},
	90072:   {ClassInvalidAssertion, "the user's account does not exist in the tenant the exchange went to"},
	50196:   {ClassUnavailable, "Entra detected a request loop: too many identical token requests; the gateway's token cache should absorb them"},
	90033:   {ClassUnavailable, "Entra reported a transient error"},
}

// Lookup returns the catalogue entry of an AADSTS code.
func Lookup(code int) (CatalogueEntry, bool) {
	e, ok := catalogue[code]
	return e, ok
}
