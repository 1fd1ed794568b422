package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// validate makes the checks of Validate on raw and returns the principal
// and the key that signed the token. Every failure is a *TokenError, typed
// so: an error of another kind cannot pass for a valid token.
//
// With ex nil (Validate) it stops at the first failure. With ex (Explain)
// it records every check it can make and goes on past failures where the
// later checks can still be made, returning the claimed principal and the
// first failure.
func (v *Validator) validate(ctx context.Context, raw string, ex *Explanation) (*Principal, *rsa.PublicKey, *TokenError) {
	payload, key, hdr, te := verifyCompact(ctx, v.cfg.Keys, raw, ex)
	if te != nil && ex == nil {
		return nil, nil, te
	}
	if payload == nil || ex == nil && key == nil {
		// Nothing readable to check further (Explain), or nothing verified.
		if ex == nil || ex.Err == nil {
			return nil, nil, invalid(ReasonMalformed, "the token's payload is not base64url", nil)
		}
		return nil, nil, ex.Err
	}

	c, te := readClaims(payload)
	unverified := ""
	if key == nil {
		unverified = " (unverified: the signature was not verified)"
	}
	if ex.record(CheckClaims, "the payload is a JSON object of claims"+unverified, te) {
		return nil, nil, te
	}
	if te != nil {
		return nil, nil, ex.Err
	}
	ex.setKind(c)

	msg, te := v.checkTime(c)
	if ex.record(CheckTime, msg, te) {
		return nil, nil, te
	}
	msg, te = v.checkTenant(c)
	if ex.record(CheckTenant, msg, te) {
		return nil, nil, te
	}
	msg, te = v.checkIssuer(c)
	if ex.record(CheckIssuer, msg, te) {
		return nil, nil, te
	}
	aud, msg, te := v.checkAudience(c)
	if ex.record(CheckAudience, msg, te) {
		return nil, nil, te
	}
	appOnly, msg, te := checkKind(c)
	if ex.record(CheckKind, msg, te) {
		return nil, nil, te
	}

	kid, x5t := v.share(hdr.Kid), v.share(hdr.X5t)
	p := &Principal{
		raw: raw, TenantID: v.share(c.tid), Issuer: v.share(c.tok.Issuer()), KeyID: kid, kid: kid, x5t: x5t,
		ObjectID:  c.oid,
		Subject:   c.tok.Subject(),
		Version:   v.share(c.ver),
		ExpiresAt: c.tok.Expiration(),
		Audience:  v.share(aud),
		AppOnly:   appOnly,
	}
	if p.KeyID == "" {
		p.KeyID = x5t
	}
	if p.ClientID = c.azp; p.ClientID == "" {
		p.ClientID = c.appid
	}
	p.ClientID = v.share(p.ClientID)
	if c.scp != "" {
		p.Scopes = v.shareFields(c.scp)
	}
	for _, r := range c.roles {
		p.Roles = append(p.Roles, v.share(r))
	}
	if ex != nil {
		return p, key, ex.Err
	}
	return p, key, nil
}

// record notes a check's outcome in ex and reports whether validation must
// stop: only Validate (ex nil) stops at a failure.
func (ex *Explanation) record(name, passMsg string, te *TokenError) (stop bool) {
	switch {
	case te == nil:
		ex.pass(name, "%s", passMsg)
		return false
	case ex == nil:
		return true
	}
	ex.fail(name, te)
	return false
}

// headerCheck is the key provider of jws.Verify: jwx calls it with the
// protected header it parsed, once, before verifying. It refuses what
// Entra never signs and finds the tenant's key the header names.
type headerCheck struct {
	keys KeySet
	hdr  Header
	read bool        // jwx parsed a header and called FetchKeys
	te   *TokenError // the header was refused
	key  *rsa.PublicKey
}

func (hc *headerCheck) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	hc.read = true
	hc.hdr = Header{Alg: h.Algorithm().String(), Kid: h.KeyID(), X5t: h.X509CertThumbprint()}
	_, hc.hdr.Nonce = h.Get("nonce")
	_, crit := h.Get(jws.CriticalKey)
	_, b64 := h.Get("b64")
	switch {
	case hc.hdr.Nonce:
		// Microsoft Graph tokens carry a nonce header and verify only for Graph.
		hc.te = invalid(ReasonAudience, "the token is a Microsoft Graph token; request a token for this API instead", nil)
	case h.Algorithm() != jwa.RS256:
		hc.te = invalid(ReasonAlgorithm, "the token must be signed with RS256", fmt.Errorf("alg %q", hc.hdr.Alg))
	case crit || b64:
		// Entra uses no JWS extension; b64=false would make the signed
		// payload something other than the base64url segment.
		hc.te = invalid(ReasonMalformed, "the token's header carries a JWS extension (crit or b64) Entra never uses", nil)
	}
	if hc.te != nil {
		return hc.te
	}
	key, err := hc.keys.Key(ctx, hc.hdr.Kid, hc.hdr.X5t)
	if err != nil {
		return err
	}
	hc.key = key
	sink.Key(jwa.RS256, key)
	return nil
}

// verifyCompact makes the first three checks: the compact form, the header
// and the signature (with jwx, compact form only, by a key of keys). It
// returns the payload that was verified with the key that verified it. For
// Explain it returns the payload unverified (key nil) when the signature
// could not be checked or did not verify, so that the claims can still be
// explained.
func verifyCompact(ctx context.Context, keys KeySet, raw string, ex *Explanation) ([]byte, *rsa.PublicKey, Header, *TokenError) {
	if msg := checkCompact(raw); msg != "" {
		te := invalid(ReasonMalformed, msg, nil)
		ex.fail(CheckFormat, te)
		return nil, nil, Header{}, te
	}
	ex.pass(CheckFormat, "the JWS compact serialisation: three unpadded base64url parts")
	hc := &headerCheck{keys: keys}
	payload, err := jws.Verify([]byte(raw), jws.WithCompact(), jws.WithKeyProvider(hc), jws.WithContext(ctx))
	if ex != nil && hc.read {
		h := hc.hdr
		ex.Header = &h
	}
	if err == nil {
		ex.pass(CheckHeader, "alg RS256, no JWS extension, no Graph nonce")
		ex.pass(CheckSignature, "verified with the tenant's key %s", keyName(hc.hdr))
		return payload, hc.key, hc.hdr, nil
	}
	var te *TokenError
	switch {
	case !hc.read:
		te = invalid(ReasonMalformed, "the token's header is not a JSON object of JOSE parameters", err)
		ex.fail(CheckHeader, te)
		return nil, nil, hc.hdr, te
	case hc.te != nil:
		ex.fail(CheckHeader, hc.te)
		ex.notChecked(CheckSignature, "not checked: the header was refused")
		return unverifiedPayload(raw, ex), nil, hc.hdr, hc.te
	}
	ex.pass(CheckHeader, "alg RS256, no JWS extension, no Graph nonce")
	var ku *KeysUnavailableError
	switch {
	case errors.Is(err, ErrNoKeySet) && ex != nil:
		ex.notChecked(CheckSignature, "not checked: no key set was given")
		return unverifiedPayload(raw, ex), nil, hc.hdr, nil
	case errors.Is(err, ErrUnknownKey):
		te = invalid(ReasonUnknownKey, "the token is not signed by a key of the tenant", fmt.Errorf("%s: %w", keyName(hc.hdr), ErrUnknownKey))
	case errors.As(err, &ku):
		te = &TokenError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Reason: ku.reason(),
			Description: "the tenant's signing keys cannot be read now, so the token cannot be checked; retry shortly",
			RetryAfter:  ku.RetryAfter, Err: err}
	case hc.key == nil:
		// The key set failed otherwise (a cancelled request, a broken set):
		// the token could not be checked, which says nothing against it.
		te = &TokenError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Reason: ReasonKeysNotReady,
			Description: "the tenant's signing keys are not available yet; retry shortly", Err: err}
	default:
		te = invalid(ReasonSignature, "the token signature is invalid", fmt.Errorf("key %s: %w", keyName(hc.hdr), err))
	}
	ex.fail(CheckSignature, te)
	return unverifiedPayload(raw, ex), nil, hc.hdr, te
}

// unverifiedPayload decodes the payload segment for Explain only; the
// gateway never reads claims it did not verify (nil without ex).
func unverifiedPayload(raw string, ex *Explanation) []byte {
	if ex == nil {
		return nil
	}
	_, rest, _ := strings.Cut(raw, ".")
	seg, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil
	}
	return b
}

func keyName(h Header) string {
	if h.Kid != "" {
		return "kid " + h.Kid
	}
	if h.X5t != "" {
		return "x5t " + h.X5t
	}
	return "(no kid or x5t)"
}

// claimSet is the signed payload as the checks read it.
type claimSet struct {
	tok                                   jwt.Token
	tid, oid, ver, azp, appid, idtyp, scp string
	roles                                 []string
	nonce                                 bool
}

// readClaims decodes the payload with jwx, holding each claim the gateway
// reads to the type Entra gives it.
func readClaims(payload []byte) (*claimSet, *TokenError) {
	// json.Valid refuses what a streaming decoder would stop short of
	// (data after the object), so that the claims are the whole payload.
	if !json.Valid(payload) {
		return nil, invalid(ReasonMalformed, "the token's payload is not JSON", nil)
	}
	tok := jwt.New()
	if err := json.Unmarshal(payload, tok); err != nil {
		return nil, invalid(ReasonMalformed, "the token's payload is not a JSON object of claims of the registered types", err)
	}
	c := &claimSet{tok: tok}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"tid", &c.tid}, {"oid", &c.oid}, {"ver", &c.ver}, {"azp", &c.azp}, {"appid", &c.appid}, {"idtyp", &c.idtyp}, {"scp", &c.scp}} {
		val, ok := tok.Get(f.name)
		if !ok {
			continue
		}
		s, isString := val.(string)
		if !isString {
			return nil, invalid(ReasonMalformed, "the token's "+f.name+" claim is not a string", nil)
		}
		*f.dst = s
	}
	if val, ok := tok.Get("roles"); ok {
		list, isList := val.([]any)
		if !isList {
			return nil, invalid(ReasonMalformed, "the token's roles claim is not a list of strings", nil)
		}
		for _, r := range list {
			s, isString := r.(string)
			if !isString {
				return nil, invalid(ReasonMalformed, "the token's roles claim is not a list of strings", nil)
			}
			c.roles = append(c.roles, s)
		}
	}
	_, c.nonce = tok.Get("nonce")
	return c, nil
}

func (v *Validator) checkTime(c *claimSet) (string, *TokenError) {
	err := jwt.Validate(c.tok,
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	)
	switch {
	case err == nil:
		return "expires at " + c.tok.Expiration().UTC().Format(time.RFC3339) + ", within the clock skew allowed (" + v.cfg.Leeway.String() + ")", nil
	case errors.Is(err, jwt.ErrTokenExpired()):
		exp := c.tok.Expiration()
		return "", invalid(ReasonExpired, "the token has expired", fmt.Errorf("exp %s, %s ago, beyond the %s clock skew allowed",
			exp.UTC().Format(time.RFC3339), v.cfg.Now().Sub(exp).Truncate(time.Second), v.cfg.Leeway))
	case errors.Is(err, jwt.ErrTokenNotYetValid()), errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return "", invalid(ReasonNotYetValid, "the token is not valid yet", fmt.Errorf("%w, beyond the %s clock skew allowed", err, v.cfg.Leeway))
	}
	return "", invalid(ReasonMalformed, "the token lacks required claims", err)
}

func (v *Validator) checkTenant(c *claimSet) (string, *TokenError) {
	if c.tid == "" || !v.tenants[strings.ToLower(c.tid)] {
		return "", invalid(ReasonTenant, "the token's tenant is not allowed", fmt.Errorf("tid %q", c.tid))
	}
	if strings.EqualFold(c.tid, v.cfg.TenantID) {
		return "tid " + c.tid + ": the home tenant", nil
	}
	return "tid " + c.tid + ": an allowed tenant", nil
}

func (v *Validator) checkIssuer(c *claimSet) (string, *TokenError) {
	iss := c.tok.Issuer()
	v2, v1 := v.cfg.Metadata.Issuers(c.tid)
	switch {
	case iss == "":
	case iss == v2:
		return iss + " is the tenant's v2 issuer", nil
	case iss == v1:
		return iss + " is the tenant's v1 issuer", nil
	}
	return "", invalid(ReasonIssuer, "the token's issuer is not the tenant's", fmt.Errorf("iss %q for tid %q (expected %s or %s)", iss, c.tid, v2, v1))
}

// checkAudience returns the audience that names this gateway: any of its
// audiences for the home tenant, only its global names for the others.
func (v *Validator) checkAudience(c *claimSet) (string, string, *TokenError) {
	accepted := v.home
	foreign := !strings.EqualFold(c.tid, v.cfg.TenantID)
	if foreign {
		accepted = v.global
	}
	auds := c.tok.Audience()
	for _, a := range auds {
		if accepted[audienceKey(a)] {
			return a, a + " names this gateway", nil
		}
	}
	if foreign {
		for _, a := range auds {
			if v.home[audienceKey(a)] {
				return "", "", invalid(ReasonAudience, "the token is not meant for this API (audience mismatch)",
					fmt.Errorf("aud %q is an App ID URI, accepted from the home tenant only: a token of tenant %s must name the gateway by its client ID", a, c.tid))
			}
		}
	}
	return "", "", invalid(ReasonAudience, "the token is not meant for this API (audience mismatch)", fmt.Errorf("aud %q", auds))
}

// checkKind tells the kinds of access token Entra issues for an API, as
// Microsoft.Identity.Web does: delegated tokens carry scp; app-only tokens
// carry roles, no scp, and idtyp app or oid equal to sub. Anything else
// signed by the tenant (an ID token, a token of another shape) is not an
// access token for this API.
func checkKind(c *claimSet) (appOnly bool, msg string, te *TokenError) {
	kind := func(detail string) *TokenError {
		return invalid(ReasonTokenKind, "the token is not an access token for this API", errors.New(detail))
	}
	switch {
	case c.nonce:
		return false, "", kind("a nonce claim: an ID token, proof of a sign-in to the frontend; send the access token the frontend gets for this API")
	case c.idtyp != "" && c.idtyp != "app" && c.idtyp != "user":
		return false, "", kind(fmt.Sprintf("idtyp %q is neither app nor user", c.idtyp))
	case c.scp == "" && len(c.roles) == 0:
		return false, "", kind("neither scp nor roles: an ID token or another token signed by the tenant; send the access token the frontend gets for this API")
	case c.idtyp == "app" && c.scp != "":
		return false, "", kind("idtyp app with scp: app-only tokens carry no delegated scopes")
	case c.idtyp == "user" && c.scp == "":
		return false, "", kind("idtyp user without scp")
	case c.scp != "":
		return false, "delegated (a user's token): scp " + c.scp, nil
	case c.idtyp == "app":
		return true, "app-only (idtyp app): roles " + strings.Join(c.roles, " "), nil
	case c.oid != "" && c.oid == c.tok.Subject():
		return true, "app-only (roles, no scp, oid = sub): roles " + strings.Join(c.roles, " "), nil
	}
	return false, "", kind("roles without scp, but oid differs from sub: neither a user's nor an app's token as Entra issues them")
}
