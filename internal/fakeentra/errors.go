package fakeentra

import (
	"fmt"
	"net/http"
)

// aadError is an answer of the token endpoint that Entra would give as an
// error: its HTTP status, OAuth error, AADSTS code and text.
type aadError struct {
	Status   int
	Error    string
	Code     int
	Message  string
	SubError string
	// Claims is the claims challenge (a JSON string) for interaction_required.
	Claims string
}

func (e *aadError) String() string { return fmt.Sprintf("AADSTS%d: %s", e.Code, e.Message) }

// errorBody is the JSON shape of Entra's token-endpoint errors.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	SubError         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

func newErr(status int, oauthErr string, code int, format string, args ...any) *aadError {
	return &aadError{Status: status, Error: oauthErr, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The catalogue of Entra answers the local tenant gives. Texts follow Entra's
// wording, so that tools that match on them behave as against Entra.

func errUnsupportedGrant(grant string) *aadError {
	return newErr(http.StatusBadRequest, "unsupported_grant_type", 70003,
		"The app requested an unsupported grant type '%s'.", grant)
}

func errMissingParam(name string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 900144,
		"The request body must contain the following parameter: '%s'.", name)
}

func errUnknownClient(clientID, tenant string) *aadError {
	return newErr(http.StatusBadRequest, "unauthorized_client", 700016,
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant)
}

func errNeedCredential() *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 7000218,
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errPublicClientCredential() *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700025,
		"Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
}

func errBadSecret(clientID string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)
}

func errMalformedJWT() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
}

func errNoThumbprint() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 50027,
		"JWT token is invalid or malformed. [Reason - No certificate thumbprint specified in token header: the client assertion needs an x5t#S256 (or x5t) header.]")
}

func errAssertionKeyNotFound(clientID, thumb string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700027,
		"Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/%s'].", thumb, clientID, clientID)
}

func errAssertionBadSignature(clientID, thumb, found string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700027,
		"Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s', Found key '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]", thumb, found, clientID)
}

func errSubjectNotAuthorized(subject string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700030,
		"Invalid certificate - subject name in certificate is not authorized. SubjectNames/SubjectAlternativeNames (up to 10) in token certificate are: %s", subject)
}

func errAssertionTime(now, nbf, exp string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700024,
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.", now, nbf, exp)
}

// errCertificateOutOfValidity is Entra's answer to an assertion signed with a
// registered certificate that has expired or is not yet valid (it used to
// be 700024, which now says the assertion's own dates are wrong).
func errCertificateOutOfValidity(clientID, thumb, found string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 1000502,
		"The provided certificate is not within its specified validity window. Thumbprint of key used by client: '%s', Found key '%s' registered on app '%s'.", thumb, found, clientID)
}

func errAssertionAudience(aud, want string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700023,
		"Client assertion audience claim does not match Realm issuer. The audience was '%s'; it must be the token endpoint '%s'.", aud, want)
}

func errAssertionSubject(clientID string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700021,
		"Client assertion application identifier doesn't match 'client_id' parameter. The iss and sub claims must both be '%s'.", clientID)
}

// Federated credentials. Entra's answers as users report them; the link
// is the one today's answers carry.
const wifDocs = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

// errFederatedNoRecord is Entra's first, general answer, which it still
// gives an app that has no federated credential at all.
func errFederatedNoRecord(iss, sub, aud string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 70021,
		"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. %s", iss, sub, aud, wifDocs)
}

func errFederatedIssuer(iss string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700211,
		"No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", iss, wifDocs)
}

// errFederatedNotAppOnly is Entra's answer to a token it issued, presented
// as a federated credential, that is not app-only (a user's access token).
// Source: MicrosoftDocs/azure-docs issue 109083.
func errFederatedNotAppOnly() *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700229,
		"Only app-only tokens may be used as Federated Identity Credentials for AAD issuer.")
}

// errFederatedAADIssued is Entra's answer to an app-only token it issued,
// presented as a federated credential, that is not a managed identity's.
// Source: MicrosoftDocs/azure-docs issue 90276.
func errFederatedAADIssued() *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700222,
		"AAD-issued tokens may not be used for federated identity flows.")
}

func errFederatedSubject(sub string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700213,
		"No matching federated identity record found for presented assertion subject '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", sub, wifDocs)
}

// errFederatedSubjectCase is Entra's answer since it matches subjects
// case-sensitively (2024-2025): a subject that matches but for its case.
func errFederatedSubjectCase(sub string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 7002138,
		"No matching federated identity record found for presented assertion subject '%s'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. See documentation at: %s. See breaking change notification and remediation at: https://learn.microsoft.com/en-us/entra/identity-platform/reference-breaking-changes#august-2024.", sub, wifDocs)
}

func errFederatedAudience(aud string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700212,
		"No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", aud, wifDocs)
}

func errFederatedKeyNotFound(kid, iss string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 7000272,
		"The certificate with identifier %s used to sign the federated credential could not be found in the metadata of identity provider %s. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.", kid, iss)
}

// errFederatedBadSignature: the issuer publishes the kid, but the
// signature does not verify with that key (Entra's wording for a client
// assertion whose signature does not verify).
func errFederatedBadSignature(kid, iss string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700027,
		"Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Key identifier used by client: '%s', issuer '%s']", kid, iss)
}

// errFederatedTime is 700024 as Entra words it for a federated assertion,
// with its times (seven decimals) and its link.
func errFederatedTime(now, nbf, exp string) *aadError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700024,
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .", now, nbf, exp)
}

func errOBOKeyNotFound(thumb string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50013,
		"Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '%s']", thumb)
}

func errOBOBadSignature(thumb, found string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50013,
		"Assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s', Found key '%s']", thumb, found)
}

func errOBOIssuer(iss string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50013,
		"Assertion failed signature validation. [Reason - The issuer '%s' is not this tenant's.]", iss)
}

// errOBOAudience is AADSTS500131: the assertion is a token for another
// audience than the app that presents it (Entra once answered 50013).
func errOBOAudience(aud, clientID, name string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 500131,
		"Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%s' and the expected audience is '%s' or one of the Application Uris of this application with App ID '%s'(%s). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion.", aud, clientID, clientID, name)
}

func errOBOExpired(now, exp string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 500133,
		"Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.", now, exp)
}

func errOBOAppOnly(clientID string) *aadError {
	return newErr(http.StatusBadRequest, "unauthorized_client", 7000114,
		"Application '%s' is not allowed to make application on-behalf-of calls.", clientID)
}

func errUserDisabled() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50057,
		"The user account is disabled. The account has been disabled by an administrator.")
}

func errUserNotFound(user, tenant string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50034,
		"The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", tenant)
}

func errBadPassword() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50126,
		"Error validating credentials due to invalid username or password.")
}

func errConsent(clientID, name string) *aadError {
	e := newErr(http.StatusBadRequest, "invalid_grant", 65001,
		"The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", clientID, name)
	e.SubError = "consent_required"
	return e
}

// errMFA is the interaction error of a conditional-access policy the
// user's sign-in did not satisfy: AADSTS50076 as invalid_grant with the
// basic_action suberror (as Entra sends it today), or AADSTS50079,
// interaction_required, when the user must first register for MFA.
func errMFA(user *User, resourceID, claims string) *aadError {
	if user.MFANotRegistered {
		e := newErr(http.StatusBadRequest, "interaction_required", 50079,
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", resourceID)
		e.SubError = "basic_action"
		e.Claims = claims
		return e
	}
	e := newErr(http.StatusBadRequest, "invalid_grant", 50076,
		"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resourceID)
	e.SubError = "basic_action"
	e.Claims = claims
	return e
}

func errScopeInvalid(scope string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_scope", 70011,
		"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)
}

func errScopeDefaultMixed(scopes string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_scope", 70011,
		"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid. static scope limit exceeded: '.default' scope can't be combined with resource-specific scopes.", scopes)
}

func errScopeNoResource() *aadError {
	return newErr(http.StatusBadRequest, "invalid_scope", 70011,
		"The provided value for the input parameter 'scope' is not valid. The request names no resource: ask for '<resource>/.default' or '<resource>/<scope>'.")
}

func errScopeManyResources(scopes string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 28000,
		"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scopes)
}

func errUnknownResource(resource, tenant string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_resource", 500011,
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenant)
}

func errClientCredentialsScope(scope string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_scope", 1002012,
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
}

func errBadRequestedTokenUse() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 90014,
		"The required field 'requested_token_use' is missing from the credential: the jwt-bearer grant needs requested_token_use=on_behalf_of.")
}

func errBadRefreshToken() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 9002313,
		"Invalid request. Request is malformed or invalid: the refresh token is unknown, expired or was issued to another client.")
}

func errBadAssertionType() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 90023,
		"Invalid client_assertion_type: it must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.")
}

// errLoop is Entra's loop detection: the same token asked for too often in
// a short time (HTTP 400, unlike throttling's plain-text 429).
func errLoop() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 50196,
		"The server terminated an operation because it encountered a client request loop. Please contact your app vendor.")
}

func errServer() *aadError {
	return newErr(http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
		"A transient error has occurred. Please try again.")
}

// The authorization endpoint's and the authorization code grant's answers.
// Their sources are listed in docs/fakeentra.md (The authorization endpoint).

func errRedirectMismatch(redirectURI, clientID string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 50011,
		"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", redirectURI, clientID)
}

func errNoReplyAddress() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 900971, "No reply address provided.")
}

func errNoRegisteredReplyAddress() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 500113, "No reply address is registered for the application.")
}

func errUnsupportedResponseType(rt string) *aadError {
	return newErr(http.StatusBadRequest, "unsupported_response_type", 70005,
		"The application returned an unsupported response type '%s'. The local tenant issues authorization codes only: response_type=code.", rt)
}

func errUnsupportedResponseMode(mode string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 70007,
		"The application returned an unsupported value of 'response_mode' when requesting a token: '%s'.", mode)
}

func errInvalidParameter(name string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 90100,
		"The parameter '%s' is empty or not valid.", name)
}

func errCodeChallengeSize() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
}

func errLoginRequired() *aadError {
	return newErr(http.StatusBadRequest, "login_required", 50058,
		"A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Azure AD.")
}

func errConsentDeclined() *aadError {
	return newErr(http.StatusBadRequest, "access_denied", 65004, "User declined to consent to access the app.")
}

func errFlowExpired() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 50089,
		"Authentication failed due to flow token expired. Start the sign-in again from the application.")
}

func errBadCode() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
}

func errCodeOtherTenant() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 700005,
		"Provided Authorization Code is intended to use against other tenant, thus rejected.")
}

func errCodeRedeemed() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 54005,
		"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
}

func errCodeExpired() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 70008,
		"The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
}

func errReplyAddressMismatch(got, want string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50011,
		"The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", got, want)
}

func errVerifierMissing() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 50148,
		"The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
}

func errVerifierMismatch() *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 501481,
		"The Code_Verifier does not match the code_challenge supplied in the authorization request.")
}

func errSPANeedsPKCE() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 9002325,
		"Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
}

func errCrossOriginNotSPA(origin string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 9002326,
		"Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '%s'.", origin)
}

func errSPANeedsOrigin() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 9002327,
		"Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.")
}

func errSPARefreshExpired(issued string) *aadError {
	return newErr(http.StatusBadRequest, "invalid_grant", 700084,
		"The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which can't be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on %s.", issued)
}
