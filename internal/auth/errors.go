package auth

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Reason is why a token was refused: a bounded set, used as a metric label
// and in logs.
type Reason string

// Reasons a token is refused.
const (
	ReasonMissing     Reason = "missing"       // no Authorization: Bearer header
	ReasonMalformed   Reason = "malformed"     // not a compact JWS / bad header
	ReasonAlgorithm   Reason = "algorithm"     // not RS256
	ReasonUnknownKey  Reason = "unknown_key"   // kid not in the tenant's key set, even after a refresh
	ReasonSignature   Reason = "signature"     // signature does not verify
	ReasonExpired     Reason = "expired"       // exp in the past (beyond leeway)
	ReasonNotYetValid Reason = "not_yet_valid" // nbf/iat in the future (beyond leeway)
	ReasonIssuer      Reason = "issuer"        // not an issuer of an allowed tenant
	ReasonTenant      Reason = "tenant"        // tid not allowed or not the issuer's
	ReasonAudience    Reason = "audience"      // not meant for this gateway
	ReasonTokenKind   Reason = "token_kind"    // signed by the tenant, but not an access token of a kind Entra issues for an API (an ID token)
	ReasonScope       Reason = "scope"         // lacks the route's scopes
	ReasonRole        Reason = "role"          // lacks the route's app roles
	ReasonAppOnly     Reason = "app_only"      // app-only token on a route that needs a user
	// ReasonKeysNotReady: no key set loaded yet (start-up), so no token can be checked.
	ReasonKeysNotReady Reason = "keys_unavailable"
	// ReasonKeysRefreshFailed: the token names a key the set held does not
	// have, and the set cannot be refreshed now: it cannot be checked.
	ReasonKeysRefreshFailed Reason = "keys_refresh_failed"
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
	// RetryAfter, for a 503, is when the token may be checked again.
	RetryAfter time.Duration
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

// ErrKeysUnavailable means the signing keys cannot be read now: none has
// been loaded yet, or the token names a key the set held lacks and the set
// cannot be refreshed. Errors of type *KeysUnavailableError match it.
var ErrKeysUnavailable = errors.New("auth: signing keys not available")

// ErrNoKeySet is answered by a key set that holds no keys by design (gateway
// inspect without -jwks): Explain leaves the signature unchecked; Validate
// refuses the token as unverifiable (503, never 401).
var ErrNoKeySet = errors.New("auth: no key set to check signatures with")

// KeysUnavailableError says that a token's key cannot be looked up now.
type KeysUnavailableError struct {
	// Loaded is true when a key set is held but lacks the token's key and
	// could not be refreshed; false when none was ever loaded.
	Loaded bool
	// RetryAfter is when the next fetch of the key set may be tried.
	RetryAfter time.Duration
	// Err is the last fetch's failure, if known.
	Err error
}

func (e *KeysUnavailableError) Error() string {
	what := "auth: signing keys not loaded yet"
	if e.Loaded {
		what = "auth: the token's key is not in the key set held, and the key set cannot be refreshed"
	}
	if e.Err != nil {
		what += ": " + e.Err.Error()
	}
	return what
}

func (e *KeysUnavailableError) Unwrap() error { return e.Err }

// Is makes the error match ErrKeysUnavailable.
func (e *KeysUnavailableError) Is(target error) bool { return target == ErrKeysUnavailable }

func (e *KeysUnavailableError) reason() Reason {
	if e.Loaded {
		return ReasonKeysRefreshFailed
	}
	return ReasonKeysNotReady
}
