package fakeentra

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// The claims request parameter (OpenID Connect Core §5.5) as Entra evaluates
// it on the token endpoint: clients pass back the claims of a challenge
// (conditional access, continuous access evaluation, authentication
// contexts) and declare their capabilities (xms_cc). Entra refuses a claims
// parameter that is not a JSON object, satisfies what the user's sign-in
// satisfies, and otherwise answers the interaction error with the claims to
// send back after an interactive sign-in.

// claimsRequest is a parsed claims parameter.
type claimsRequest struct {
	raw string
	// acrs are the authentication contexts asked for (access_token.acrs).
	acrs []string
	// capolids are conditional-access policy IDs asked for (a challenge's
	// access_token.capolids or, in older answers, polids).
	capolids []string
	// capabilities are the client capabilities declared (access_token.xms_cc).
	capabilities []string
}

// claimValue is one member of access_token in a claims request: "value" or
// "values" ("Values" in old polids challenges), with "essential".
type claimValue struct {
	Essential bool            `json:"essential"`
	Value     json.RawMessage `json:"value"`
	Values    json.RawMessage `json:"values"`
	ValuesOld json.RawMessage `json:"Values"`
}

// strings returns the member's values, which must be strings.
func (v claimValue) strings() ([]string, bool) {
	var out []string
	if len(v.Value) > 0 && string(v.Value) != "null" {
		var s string
		if json.Unmarshal(v.Value, &s) != nil {
			return nil, false
		}
		out = append(out, s)
	}
	for _, raw := range []json.RawMessage{v.Values, v.ValuesOld} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var ss []string
		if json.Unmarshal(raw, &ss) != nil {
			return nil, false
		}
		out = append(out, ss...)
	}
	return out, true
}

// parseClaims reads a claims parameter; "" is no claims request. A value
// that is not a JSON object, or whose access_token (or id_token) member is
// not one, or whose acrs, capolids, polids or xms_cc values are not strings,
// is refused as Entra refuses it.
func parseClaims(raw string) (*claimsRequest, *aadError) {
	if raw == "" {
		return &claimsRequest{}, nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &top) != nil || top == nil {
		return nil, errInvalidClaims()
	}
	c := &claimsRequest{raw: raw}
	for name, member := range top {
		var m map[string]json.RawMessage
		if json.Unmarshal(member, &m) != nil || (m == nil && string(member) != "null") {
			return nil, errInvalidClaims()
		}
		if name != "access_token" {
			continue // id_token and userinfo requests: nothing to decide here
		}
		for claim, val := range m {
			var v claimValue
			if json.Unmarshal(val, &v) != nil {
				if string(val) == "null" {
					continue
				}
				return nil, errInvalidClaims()
			}
			var dst *[]string
			switch claim {
			case "acrs":
				dst = &c.acrs
			case "capolids", "polids":
				dst = &c.capolids
			case "xms_cc":
				dst = &c.capabilities
			default:
				continue // nbf (CAE), and claims the tenant does not decide on
			}
			vals, ok := v.strings()
			if !ok {
				return nil, errInvalidClaims()
			}
			*dst = append(*dst, vals...)
		}
	}
	return c, nil
}

// signIn is the evidence of how the user signed in, kept as Entra keeps it:
// inside the token, opaque to clients (in aio), not in a claim that real v2
// tokens lack. Tokens obtained On-Behalf-Of and by refresh carry on the
// evidence of the sign-in they descend from.
type signIn struct {
	AMR  []string `json:"amr"`            // pwd, mfa
	ACRS []string `json:"acrs,omitempty"` // authentication contexts satisfied
	// AuthTime is the Unix time of the interactive sign-in.
	AuthTime int64 `json:"at"`
}

func (si signIn) mfa() bool { return slices.Contains(si.AMR, "mfa") }

// sealSignIn and openSignIn make the evidence an opaque aio value: AES-GCM
// under a key of this server's, so that no client can forge it and a
// token signed elsewhere (a forgery signed with the tenant's key through
// SignToken, or another tenant's) carries none.
func (s *Server) sealSignIn(si signIn) string {
	plain, _ := json.Marshal(si)
	nonce := randomBytes(12)
	return b64.EncodeToString(append(nonce, s.aioAEAD.Seal(nil, nonce, plain, nil)...))
}

func (s *Server) openSignIn(aio string) (signIn, bool) {
	b, err := b64.DecodeString(aio)
	if err != nil || len(b) < 12 {
		return signIn{}, false
	}
	plain, err := s.aioAEAD.Open(nil, b[:12], b[12:], nil)
	if err != nil {
		return signIn{}, false
	}
	var si signIn
	return si, json.Unmarshal(plain, &si) == nil
}

func newAEAD() cipher.AEAD {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return aead
}

// AuthContext is a conditional-access authentication context of the tenant
// (Protected actions, Authentication contexts): an ID an API asks for in a
// claims challenge (acrs), and what a sign-in needs to satisfy it.
type AuthContext struct {
	ID string `yaml:"id" json:"id"`
	// RequireMFA: a policy targeting the context requires multifactor
	// authentication. Without it the context is satisfied by any sign-in.
	RequireMFA bool `yaml:"require_mfa" json:"require_mfa"`
}

// policyID is the ID of the MFA policy of a resource, as its challenges name
// it (capolids).
func policyID(resource *App) string {
	h := sha256.Sum256([]byte("mfa-policy:" + resource.ClientID))
	return formatGUID(h[:16])
}

// mfaChallenge is the claims challenge for the MFA policy on a resource,
// shaped like Entra's conditional-access challenges.
func mfaChallenge(resource *App) string {
	return `{"access_token":{"capolids":{"essential":true,"values":["` + policyID(resource) + `"]}}}`
}

// acrsChallenge is the claims challenge for authentication contexts.
func acrsChallenge(ids []string) string {
	if len(ids) == 1 {
		return `{"access_token":{"acrs":{"essential":true,"value":"` + ids[0] + `"}}}`
	}
	b, _ := json.Marshal(map[string]any{"access_token": map[string]any{"acrs": map[string]any{"essential": true, "values": ids}}})
	return string(b)
}

// asksForMFA reports whether a claims request asks for what needs MFA in
// tenant t: an MFA policy of any resource (the challenge of a downstream
// API's policy, raised on an OBO call, comes back on the user's sign-in for
// the middle tier, as MSAL.js sends it), or an authentication context that
// requires MFA.
func (c *claimsRequest) asksForMFA(t *Tenant) bool {
	for _, a := range t.Apps {
		if slices.ContainsFunc(c.capolids, func(id string) bool { return strings.EqualFold(id, policyID(a)) }) {
			return true
		}
	}
	for _, id := range c.acrs {
		if ac := t.authContext(id); ac != nil && ac.RequireMFA {
			return true
		}
	}
	return false
}

// decide applies the tenant's policies for user and resource, and the
// authentication contexts of the claims request, to a sign-in: the contexts
// the token may carry (acrs), or the interaction error, with the claims to
// send back, when the sign-in falls short.
func (t *Tenant) decide(user *User, resource *App, c *claimsRequest, si signIn) ([]string, *aadError) {
	if user.mfaRequiredFor(t, resource) && !si.mfa() {
		return nil, errMFA(user, resource.ClientID, mfaChallenge(resource))
	}
	var missing []string
	for _, id := range c.acrs {
		if ac := t.authContext(id); ac != nil && ac.RequireMFA && !si.mfa() {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, errMFA(user, resource.ClientID, acrsChallenge(missing))
	}
	acrs := slices.Clone(c.acrs)
	slices.Sort(acrs)
	return slices.Compact(acrs), nil
}

func (t *Tenant) authContext(id string) *AuthContext {
	for i := range t.AuthContexts {
		if t.AuthContexts[i].ID == id {
			return &t.AuthContexts[i]
		}
	}
	return nil
}

func errInvalidClaims() *aadError {
	return newErr(http.StatusBadRequest, "invalid_request", 90100,
		"The claims parameter is empty or not valid: it must be a JSON object (OpenID Connect Core 1.0, 5.5).")
}
