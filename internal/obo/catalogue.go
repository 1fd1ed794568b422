package obo

import (
	"net/http"
	"slices"
	"strconv"
)

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

// ClientError is the error code the frontend gets in the JSON body (and, for
// 401s, in WWW-Authenticate per RFC 6750 and Entra's claims-challenge convention).
func (c Class) ClientError() string {
	switch c {
	case ClassInteraction:
		return "insufficient_claims"
	case ClassInvalidAssertion:
		return "invalid_token"
	case ClassConsent:
		return "consent_required"
	case ClassUser:
		return "access_denied"
	case ClassUnavailable:
		return "temporarily_unavailable"
	default:
		return "bad_gateway"
	}
}

// Retryable reports whether the same request may succeed later without
// anyone acting (the frontend retries after Retry-After).
func (c Class) Retryable() bool { return c == ClassUnavailable }

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
	Code  int
	Class Class
	// Meaning is what Entra says, in short.
	Meaning string
	// Hint tells the operator (and, through docs, the developer) what to fix.
	Hint string
}

// MetricLabel is the error_code label of obo_gateway_obo_exchanges_total for the code.
func (e CatalogueEntry) MetricLabel() string { return "AADSTS" + strconv.Itoa(e.Code) }

// catalogue lists the AADSTS codes the OBO path can meet with their class and
// the operator's hint. Classes follow error/suberror/claims where Entra sends
// them (Error.Class); the code refines the hint. docs/troubleshooting.md is
// generated from this table (go test ./internal/obo -run TestTroubleshootingDoc -update).
var catalogue = index([]CatalogueEntry{
	{50013, ClassInvalidAssertion, "Assertion failed signature validation (\"The key was not found\", signature mismatch) or its audience is not the calling app",
		"the user assertion failed validation: the frontend must send an access token Entra issued for the gateway's app (aud = its client ID or App ID URI), passed unchanged; never a self-signed token, an ID token, a Graph token or an app-only token"},
	{500131, ClassInvalidAssertion, "Assertion audience does not match the client app presenting the assertion",
		"the user assertion's audience is not the gateway's app: the frontend must request a token for the gateway's scope (api://<gateway>/access_as_user)"},
	{500133, ClassInvalidAssertion, "Assertion is not within its valid time range (expired)",
		"the user assertion has expired: the frontend must get a fresh token (MSAL.js acquireTokenSilent)"},
	{7000114, ClassInvalidAssertion, "Application is not allowed to make application on-behalf-of calls",
		"the assertion is an app-only token (client credentials): OBO needs a user's delegated token"},
	{50020, ClassInvalidAssertion, "User account from an identity provider does not exist in the tenant",
		"the user is not a member (or guest) of the tenant the exchange went to: check allowed_tenants and the user's tenant"},
	{90072, ClassInvalidAssertion, "User account does not exist in the tenant",
		"the user's account does not exist in the tenant the exchange went to: invite the user as a guest or exchange in the user's own tenant"},
	{50057, ClassUser, "The user account is disabled", "the user's account is disabled: nothing the gateway can fix"},
	{65001, ClassConsent, "The user or administrator has not consented to use the application",
		"consent missing: grant admin consent for the gateway app's delegated permission on the downstream API (API permissions → Grant admin consent), or let the user consent interactively"},
	{50076, ClassInteraction, "Multi-factor authentication required by conditional access",
		"MFA required by conditional access on the downstream API: the claims challenge is passed to the frontend, which must sign in again with it"},
	{50079, ClassInteraction, "The user is required to register for or use multi-factor authentication",
		"MFA registration required by conditional access: the claims challenge is passed to the frontend"},
	{53003, ClassInteraction, "Access blocked by conditional access policies",
		"blocked by conditional access: the claims challenge is passed to the frontend; the policy may not be satisfiable"},
	{27000, ClassGateway, "The gateway's client assertion is malformed (legacy)", "check the certificate credential"},
	{50027, ClassGateway, "JWT token is invalid or malformed (e.g. no thumbprint in the client assertion header)",
		"a JWT sent to Entra is malformed: the client assertion needs an x5t#S256 (or x5t) header, not a kid; MSAL Go sends it when built with the certificate"},
	{700016, ClassGateway, "Application with the client ID was not found in the directory",
		"the gateway's client ID is not an app of this tenant: check entra.client_id and entra.tenant_id (AZURE_CLIENT_ID, AZURE_TENANT_ID)"},
	{700027, ClassGateway, "Client assertion contains an invalid signature (\"The key was not found\")",
		"the gateway's certificate is not registered on its app, or its thumbprint does not match: upload the certificate in the app registration's Certificates & secrets (gateway doctor prints its thumbprints)"},
	{700030, ClassGateway, "Invalid certificate: the subject name in the certificate is not authorized",
		"subject name and issuer authentication: the certificate's subject is not among those the app registration trusts (trustedCertificateSubjects in its manifest), or its chain does not lead to a CA Entra trusts"},
	{90100, ClassGateway, "A request parameter (here the claims) is empty or not valid",
		"Entra could not read a request parameter; for the claims parameter, a downstream API's claims challenge was malformed or mangled on its way: check the upstream's WWW-Authenticate"},
	{700024, ClassGateway, "Client assertion is not within its valid time range (or the certificate is out of date)",
		"the client assertion or the gateway's certificate is outside its validity: check the certificate dates and the machine clock"},
	{1000502, ClassGateway, "The provided certificate is not within its specified validity window",
		"the gateway's certificate, registered on its app, has expired or is not yet valid: rotate it (upload the new one next to the old, then replace the file)"},
	{7000214, ClassGateway, "The certificate has been revoked", "the gateway's certificate has been revoked: rotate it"},
	{70021, ClassGateway, "No matching federated identity record found for presented assertion",
		"the app registration has no federated identity credential for the gateway's assertion (entra.credential workload_identity or managed_identity): add one whose issuer, subject and audience are the assertion's; gateway doctor prints the exact one"},
	{700211, ClassGateway, "No matching federated identity record found for presented assertion issuer",
		"no federated identity credential of the app registration has the assertion's issuer: for AKS, the cluster's OIDC issuer URL exactly as az aks show --query oidcIssuerProfile.issuerUrl prints it (trailing / included); gateway doctor prints the credential to create"},
	{700212, ClassGateway, "No matching federated identity record found for presented assertion audience",
		"the assertion's audience is not the federated credential's: api://AzureADTokenExchange in the public cloud (entra.managed_identity.audience for a managed identity)"},
	{700213, ClassGateway, "No matching federated identity record found for presented assertion subject",
		"the assertion's subject is not the federated credential's: for AKS, system:serviceaccount:<namespace>:<service account> of the gateway's pod; for a managed identity, its object (principal) ID"},
	{7002138, ClassGateway, "No matching federated identity record found for presented assertion subject (it differs only in case)",
		"the federated credential's subject matches the assertion's only if case is ignored, and Entra compares it case-sensitively: correct its case"},
	{7000272, ClassGateway, "The key used to sign the federated assertion is not in the issuer's signing keys",
		"the assertion's signing key is not in its issuer's JWKS: the cluster's service-account signing key was rotated, or the issuer URL in the federated credential points to another cluster"},
	{7000215, ClassGateway, "Invalid client secret provided", "the client secret is wrong: use the secret's value, not its ID"},
	{7000222, ClassGateway, "The client secret has expired", "the client secret has expired: create a new one (or use a certificate)"},
	{7000218, ClassGateway, "The request body must contain 'client_assertion' or 'client_secret'",
		"no client credential was sent: configure the gateway's certificate"},
	{700021, ClassGateway, "Client assertion application identifier doesn't match 'client_id'",
		"the client assertion's iss/sub do not match the client ID: check entra.client_id"},
	{700023, ClassGateway, "Client assertion audience claim does not match Realm issuer",
		"the client assertion's audience is not this tenant's token endpoint: check entra.authority_host and entra.tenant_id (cloud and tenant must match)"},
	{70011, ClassGateway, "The provided value for the input parameter 'scope' is not valid",
		"a downstream scope is invalid: use <App ID URI>/.default or <App ID URI>/<scope> (note the dot in /.default; api://x/default is the classic typo)"},
	{1002012, ClassGateway, "Client credential flows must have a scope value with /.default",
		"a downstream scope is invalid for this flow: use <App ID URI>/.default"},
	{28000, ClassGateway, "The scope contains more than one resource",
		"a route's downstream scopes name more than one resource: one route, one downstream API"},
	{700022, ClassGateway, "The scope contains more than one resource", "a route's downstream scopes name more than one resource: one route, one downstream API"},
	{500011, ClassGateway, "The resource principal was not found in the tenant",
		"the downstream API (resource) is not registered in the tenant: check the route's downstream scopes and that the API's app is in this tenant"},
	{65005, ClassGateway, "The application does not list the requested resource among its required permissions",
		"add the downstream API's delegated permission to the gateway app (API permissions) and grant consent"},
	{70003, ClassGateway, "The app requested an unsupported grant type",
		"unsupported grant type: Entra does not implement RFC 8693 token exchange; OBO uses the jwt-bearer grant (the gateway always does)"},
	{90002, ClassGateway, "Tenant not found", "the tenant was not found: check entra.tenant_id and entra.authority_host"},
	{90038, ClassGateway, "Confidential client is not supported in cross-cloud requests",
		"cross-cloud request: the authority host does not match the tenant's cloud (e.g. login.microsoftonline.us for US Government)"},
	{50196, ClassUnavailable, "The server terminated an operation because it encountered a client request loop",
		"Entra detected a request loop: too many identical token requests; the gateway's token cache should absorb them — check the cache metrics"},
	{90033, ClassUnavailable, "A transient error has occurred", "Entra reported a transient error: retried by the frontend after Retry-After"},
})

func index(entries []CatalogueEntry) map[int]CatalogueEntry {
	m := make(map[int]CatalogueEntry, len(entries))
	for _, e := range entries {
		m[e.Code] = e
	}
	return m
}

// Lookup returns the catalogue entry of an AADSTS code.
func Lookup(code int) (CatalogueEntry, bool) {
	e, ok := catalogue[code]
	return e, ok
}

// Catalogue returns every entry, ordered by code.
func Catalogue() []CatalogueEntry {
	out := make([]CatalogueEntry, 0, len(catalogue))
	for _, e := range catalogue {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b CatalogueEntry) int { return a.Code - b.Code })
	return out
}
