package auth

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Principal is a validated caller: who the token says it is. It holds the raw
// token for the On-Behalf-Of exchange, reachable only through Token.
type Principal struct {
	raw       string
	tokenHash [32]byte // SHA-256 of raw
	kid, x5t  string   // the signing key's header values, to re-check it is still published

	ObjectID string // oid: the user's (or, app-only, the service principal's) object ID
	TenantID string // tid
	Subject  string // sub
	ClientID string // azp (v2) or appid (v1): the app the token was issued to
	Issuer   string
	Audience string // the audience that matched
	Version  string // "1.0" or "2.0"
	KeyID    string // kid (or x5t) of the signing key
	Scopes   []string
	Roles    []string
	// AppOnly is true for tokens from client credentials (no scp): they have no
	// user, so they cannot be exchanged On-Behalf-Of.
	AppOnly bool
	// FromCache is true when the verified-token cache answered: the
	// signature was checked on an earlier request. (Beside AppOnly, in its
	// padding: it costs no byte.)
	FromCache bool
	ExpiresAt time.Time
	// Grant is what satisfied the route's policy (set by Middleware).
	Grant Grant
}

// Token returns the token exactly as received, to be passed as the OBO
// assertion. It must never be logged or sent upstream.
func (p *Principal) Token() string { return p.raw }

// TokenHash is the SHA-256 of Token(): what caches key on, so they need
// not hash the token again.
func (p *Principal) TokenHash() [32]byte { return p.tokenHash }

// HasScope reports whether the token carries the delegated scope.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// HasRole reports whether the token carries the app role.
func (p *Principal) HasRole(r string) bool { return slices.Contains(p.Roles, r) }

// Format prints identifiers only, whatever the verb (%v, %+v, %#v, %s):
// fmt would otherwise print the unexported raw token.
func (p Principal) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "auth.Principal{oid=%s tid=%s azp=%s kid=%s ver=%s scp=%v roles=%v app_only=%t exp=%s}",
		p.ObjectID, p.TenantID, p.ClientID, p.KeyID, p.Version, p.Scopes, p.Roles, p.AppOnly, p.ExpiresAt.UTC().Format(time.RFC3339))
}

// LogValue implements slog.LogValuer: identifiers only, never the token.
func (p *Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("oid", p.ObjectID),
		slog.String("tid", p.TenantID),
		slog.String("azp", p.ClientID),
		slog.String("kid", p.KeyID),
		slog.Bool("app_only", p.AppOnly),
	)
}

type principalKey struct{}

// FromContext returns the request's validated principal, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
