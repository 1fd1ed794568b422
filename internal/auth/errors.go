package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason is why a token was refused: a bounded set, used as a metric label
// and in logs.
type Reason string

// Reasons a token is refused.
const (
	ReasonMissing      Reason = "missing"       // no Authorization: Bearer header
	ReasonMalformed    Reason = "malformed"     // not a compact JWS / bad header
	ReasonAlgorithm    Reason = "algorithm"     // not RS256
	ReasonUnknownKey   Reason = "unknown_key"   // kid not in the tenant's key set, even after a refresh
	ReasonSignature    Reason = "signature"     // signature does not verify
	ReasonExpired      Reason = "expired"       // exp in the past (beyond leeway)
	ReasonNotYetValid  Reason = "not_yet_valid" // nbf/iat in the future (beyond leeway)
	ReasonIssuer       Reason = "issuer"        // not an issuer of an allowed tenant
	ReasonTenant       Reason = "tenant"        // tid not allowed or not the issuer's
	ReasonAudience     Reason = "audience"      // not meant for this gateway
	ReasonScope        Reason = "scope"         // lacks the route's scopes or roles
	ReasonAppOnly      Reason = "app_only"      // app-only token on a route that needs a user
	ReasonKeysNotReady Reason = "keys_unavailable"
)

// TokenError is a refused token: what the client is told (RFC 6750 error
// code and a short description) and why, for logs and metrics. The
// description never contains the token.
type TokenError struct {
	// Status is 401 for invalid_token, 403 for insufficient_scope, 503 when
	// the signing keys could not be loaded at all.
	Status int
	// Code is the RFC 6750 error code: "" (no credentials), "invalid_request",
	// "invalid_token" or "insufficient_scope".
	Code        string
	Reason      Reason
	Description string
	// Scope lists the scopes that would satisfy the route, for insufficient_scope.
	Scope string
	// Err is the underlying cause, for logs only.
	Err error
}

func (e *TokenError) Error() string {
	msg := fmt.Sprintf("auth: %s: %s", e.Reason, e.Description)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *TokenError) Unwrap() error { return e.Err }

func invalid(reason Reason, desc string, err error) *TokenError {
	return &TokenError{Status: http.StatusUnauthorized, Code: "invalid_token", Reason: reason, Description: desc, Err: err}
}

// ErrKeysUnavailable means no signing key set has been loaded yet.
var ErrKeysUnavailable = errors.New("auth: signing keys not loaded")
