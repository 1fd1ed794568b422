package auth

import (
	"context"
	"fmt"
)

// The checks a Validator makes, in the order it makes them. Validate stops
// at the first that fails; Explain makes them all that can be made.
const (
	CheckFormat    = "format"     // the JWS compact serialisation, canonical base64url
	CheckHeader    = "header"     // alg RS256, no crit or b64, no Graph nonce
	CheckSignature = "signature"  // by a key of the tenant's set, over exactly the bytes received
	CheckClaims    = "claims"     // the signed payload is a JSON object of claims of Entra's types
	CheckTime      = "time"       // exp present; exp, nbf, iat within the leeway
	CheckTenant    = "tenant"     // tid the home tenant or an allowed one
	CheckIssuer    = "issuer"     // iss the v2 or v1 issuer of that tid
	CheckAudience  = "audience"   // aud this gateway (App ID URIs only for the home tenant)
	CheckKind      = "token_kind" // an access token: delegated (scp) or app-only (roles)
)

// Check results.
const (
	Pass       = "pass"
	Fail       = "fail"
	NotChecked = "not_checked"
)

// Check is one check made on a token.
type Check struct {
	Name string `json:"name"`
	// Result is Pass, Fail or NotChecked.
	Result string `json:"result"`
	// Reason is the metric and log reason of a failure.
	Reason  Reason `json:"reason,omitempty"`
	Message string `json:"message"`
}

// Explanation is every check of a token, for a person asking why the
// gateway accepts or refuses it (gateway inspect).
type Explanation struct {
	// Checks are in the order the gateway makes them. After a failed
	// signature check the later checks are made on the unverified payload,
	// to say all that is wrong at once; they decide nothing.
	Checks []Check
	// Err is the first failure, exactly as Validate returns it; nil when no
	// check failed.
	Err *TokenError
	// Claimed is who the payload claims the token is for. It is trusted
	// only when Accepted is true.
	Claimed *Principal
	// Header is the token's protected header, decoded by the validator
	// (nil when the token is not a compact JWS). Never trusted on its own.
	Header *Header
	// Kind is what the token_kind check makes of the payload, and
	// KindReason why; "" when the payload could not be read.
	Kind       TokenKind
	KindReason string
}

// TokenKind is the kind of token a payload is, by the token_kind check.
type TokenKind string

// Token kinds.
const (
	KindDelegated TokenKind = "delegated" // a user's token (scp)
	KindAppOnly   TokenKind = "app_only"  // an app's token (roles, idtyp app or oid = sub)
	KindNone      TokenKind = "none"      // not an access token for an API
)

// setKind records the kind of c.
func (e *Explanation) setKind(c *claimSet) {
	if e == nil {
		return
	}
	appOnly, msg, te := checkKind(c)
	switch {
	case te != nil:
		e.Kind, e.KindReason = KindNone, te.Err.Error()
	case appOnly:
		e.Kind, e.KindReason = KindAppOnly, msg
	default:
		e.Kind, e.KindReason = KindDelegated, msg
	}
}

// ExplainSignature makes only the checks that need no gateway
// configuration, the first three of Validate (format, header, signature,
// with keys; NoKeySet leaves the signature unchecked), and reads the
// payload's kind: for explaining a token without a configuration.
func ExplainSignature(ctx context.Context, keys KeySet, raw string) *Explanation {
	ex := &Explanation{}
	payload, _, _, te := verifyCompact(ctx, keys, raw, ex)
	if payload != nil {
		if c, cte := readClaims(payload); cte == nil {
			ex.setKind(c)
		}
	}
	if te != nil && ex.Err == nil {
		ex.Err = te
	}
	return ex
}

// Header is what a validation read of a token's protected header.
type Header struct {
	Alg, Kid, X5t string
	Nonce         bool
}

// Accepted reports whether every check was made and passed: only then
// does Validate accept the token.
func (e *Explanation) Accepted() bool {
	if e.Err != nil {
		return false
	}
	for _, c := range e.Checks {
		if c.Result != Pass {
			return false
		}
	}
	return len(e.Checks) > 0
}

// Explain makes the validator's checks on raw, the checks Validate makes
// and in the same order, and reports each. It bypasses the verified-token
// cache and records no metrics. A key set that answers ErrNoKeySet leaves
// the signature NotChecked.
func (v *Validator) Explain(ctx context.Context, raw string) *Explanation {
	ex := &Explanation{}
	p, _, te := v.validate(ctx, raw, ex)
	if te != nil && ex.Err == nil {
		ex.Err = te
	}
	if p != nil {
		ex.Claimed = p
	}
	return ex
}

// pass records a passed check; nil-safe, so that Validate records nothing.
func (e *Explanation) pass(name, format string, args ...any) {
	if e != nil {
		e.Checks = append(e.Checks, Check{Name: name, Result: Pass, Message: fmt.Sprintf(format, args...)})
	}
}

// fail records a failed check and keeps the first failure.
func (e *Explanation) fail(name string, te *TokenError) {
	if e == nil {
		return
	}
	msg := te.Description
	if te.Err != nil {
		msg += " (" + te.Err.Error() + ")"
	}
	e.Checks = append(e.Checks, Check{Name: name, Result: Fail, Reason: te.Reason, Message: msg})
	if e.Err == nil {
		e.Err = te
	}
}

func (e *Explanation) notChecked(name, msg string) {
	if e != nil {
		e.Checks = append(e.Checks, Check{Name: name, Result: NotChecked, Message: msg})
	}
}
