package auth

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/obo-gateway/obo-gateway/internal/lru"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// ValidatorConfig configures a Validator.
type ValidatorConfig struct {
	// Keys finds signing keys. Required.
	Keys KeySet
	// Metadata gives the issuer templates (from Discover). Required.
	Metadata Metadata
	// TenantID is the gateway's home tenant. Required.
	TenantID string
	// AllowedTenants are further tenants whose tokens are accepted
	// (multi-tenant apps, guests' home tenants).
	AllowedTenants []string
	// ClientID is the gateway's application (client) ID, the audience of v2 tokens. Required.
	ClientID string
	// Audiences are further accepted audiences: the App ID URIs (api://…).
	// They are accepted from the home tenant only: an App ID URI is unique
	// within one tenant, and any other tenant's admin can register an app
	// with the same URI. Tokens of AllowedTenants must name the gateway by
	// its client ID (or api://<client ID>, when listed here).
	Audiences []string
	// Leeway tolerates clock skew on exp, nbf and iat; default 1 minute.
	Leeway time.Duration
	// CacheBudget bounds, in bytes, the cache of tokens already verified: a
	// token seen again is not verified again with RSA until its exp, unless
	// its signing key has left the key set. 0 disables the cache.
	CacheBudget int64
	Now         func() time.Time
	Metrics     *Metrics
	// Tracer records a span per validation (Middleware); nil records none.
	Tracer *tracing.Tracer
}

// Validator validates Entra access tokens meant for this gateway. It is
// safe for concurrent use.
type Validator struct {
	cfg     ValidatorConfig
	tenants map[string]bool
	// home and global are the audiences accepted from the home tenant and
	// from the others, trimmed of a trailing '/'.
	home, global map[string]bool
	verified     *lru.LRU[verified] // nil when CacheBudget is 0
	// One copy of the strings, scope lists and common claims that repeat
	// across users (tenant, issuer, client, scopes), so that cached
	// principals do not each keep their own; nShared bounds all three.
	strs    interner[string]
	scopes  interner[[]string]
	commons interner[*commonClaims]
	nShared atomic.Int32
	// holder is Keys as a keyHolder, or nil: resolved once, not per hit.
	holder keyHolder
}

// maxShared bounds the shared values: they are few in practice, but they
// come from tokens, so a flood of odd values must not grow memory.
const maxShared = 4096

// interner keeps one copy per key of values that repeat across tokens. Its
// keys are copied, so that no key keeps a whole token alive.
type interner[V any] struct{ m sync.Map }

// get returns the value kept for key, or keeps and returns newValue() while
// *n is below maxShared (beyond it, newValue() is returned unkept).
func (in *interner[V]) get(n *atomic.Int32, key string, newValue func() V) V {
	if got, ok := in.m.Load(key); ok {
		return got.(V)
	}
	val := newValue()
	if n.Load() >= maxShared {
		return val
	}
	if got, loaded := in.m.LoadOrStore(strings.Clone(key), val); loaded {
		return got.(V)
	}
	n.Add(1)
	return val
}

// share returns a shared copy of s.
func (v *Validator) share(s string) string {
	if s == "" {
		return s
	}
	// Cloned: a substring would keep the whole token alive.
	return v.strs.get(&v.nShared, s, func() string { return strings.Clone(s) })
}

// shareFields returns the shared, read-only scope list of a scp value.
func (v *Validator) shareFields(scp string) []string {
	return v.scopes.get(&v.nShared, scp, func() []string {
		fields := strings.Fields(scp)
		for i := range fields {
			fields[i] = v.share(fields[i])
		}
		return fields
	})
}

// verified is a cached validation, kept small because there is one per
// user: what differs per user (oid, sub, exp) is held in the entry, and what
// users share (tenant, issuer, app, signing key, scopes, roles) is one
// shared value, behind one pointer. pub is the key that signed the token.
type verified struct {
	objectID, subject string
	expiresAt         time.Time
	common            *commonClaims
	pub               *rsa.PublicKey
}

// commonClaims are the parts of a Principal that many users share.
type commonClaims struct {
	kid, x5t, keyID                               string
	tenantID, clientID, issuer, audience, version string
	scopes, roles                                 []string
	appOnly                                       bool
}

// cacheable returns what the verified-token cache keeps of p.
func (v *Validator) cacheable(p *Principal, pub *rsa.PublicKey) verified {
	c := commonClaims{
		kid: p.kid, x5t: p.x5t, keyID: p.KeyID, tenantID: p.TenantID, clientID: p.ClientID,
		issuer: p.Issuer, audience: p.Audience, version: p.Version,
		scopes: p.Scopes, roles: p.Roles, appOnly: p.AppOnly,
	}
	// oid and sub in one allocation: one object less per user.
	both := p.ObjectID + p.Subject
	return verified{
		objectID: both[:len(p.ObjectID)], subject: both[len(p.ObjectID):], expiresAt: p.ExpiresAt,
		common: v.shareCommon(c), pub: pub,
	}
}

// principal rebuilds the Principal of a cached validation for raw.
func (e *verified) principal(raw string, hash [32]byte) *Principal {
	c := e.common
	return &Principal{
		raw: raw, tokenHash: hash, kid: c.kid, x5t: c.x5t,
		ObjectID: e.objectID, TenantID: c.tenantID, Subject: e.subject, ClientID: c.clientID,
		Issuer: c.issuer, Audience: c.audience, Version: c.version, KeyID: c.keyID,
		Scopes: c.scopes, Roles: c.roles, AppOnly: c.appOnly, ExpiresAt: e.expiresAt,
	}
}

// shareCommon returns a shared copy of c (its strings are shared already),
// within the same bound as the shared strings.
func (v *Validator) shareCommon(c commonClaims) *commonClaims {
	key := strings.Join([]string{c.kid, c.x5t, c.keyID, c.tenantID, c.clientID, c.issuer, c.audience, c.version,
		strings.Join(c.scopes, " "), strings.Join(c.roles, "\x00"), strconv.FormatBool(c.appOnly)}, "\x01")
	return v.commons.get(&v.nShared, key, func() *commonClaims { return &c })
}

// keyHolder is implemented by key sets that can tell, without fetching,
// whether they still hold a key.
type keyHolder interface {
	holds(kid, x5t string, pub *rsa.PublicKey) bool
}

// verifiedSize is what a verified entry costs beyond lru.EntryOverhead: the
// entry's value (72 bytes), its oid and sub (one string of about 80 bytes),
// and the allocator's rounding.
const verifiedSize = 160

// maxTokenBytes bounds what is parsed; Entra tokens are a few KiB even with groups.
const maxTokenBytes = 16 << 10

// NewValidator checks cfg and returns a Validator.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.Keys == nil || cfg.TenantID == "" || cfg.ClientID == "" || cfg.Metadata.IssuerV2Template == "" {
		return nil, errors.New("auth: ValidatorConfig needs Keys, Metadata, TenantID and ClientID")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Validator{cfg: cfg, tenants: map[string]bool{}, home: map[string]bool{}, global: map[string]bool{}}
	v.holder, _ = cfg.Keys.(keyHolder)
	for _, t := range append([]string{cfg.TenantID}, cfg.AllowedTenants...) {
		v.tenants[strings.ToLower(t)] = true
	}
	clientID := strings.ToLower(cfg.ClientID)
	v.home[clientID], v.global[clientID] = true, true
	for _, a := range cfg.Audiences {
		a = audienceKey(a)
		v.home[a] = true
		if strings.EqualFold(a, "api://"+cfg.ClientID) {
			v.global[a] = true
		}
	}
	if cfg.CacheBudget > 0 {
		v.verified = lru.New[verified](lru.Config{Budget: cfg.CacheBudget, Now: cfg.Now})
	}
	return v, nil
}

// SameAudience reports whether a token's aud value names the audience a, by
// the rule the validator compares them with (audienceKey).
func SameAudience(aud, a string) bool { return audienceKey(aud) == audienceKey(a) }

// audienceKey is how audiences are compared: exactly, as Entra writes them,
// but for one trailing '/' (as Microsoft.IdentityModel allows) and for the
// case of a client ID (a GUID).
func audienceKey(a string) string {
	a = strings.TrimSuffix(a, "/")
	if isGUID(a) {
		return strings.ToLower(a)
	}
	return a
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// Validate checks a raw bearer token, in the order of the Check constants:
// the compact serialisation only, RS256 signature by a key of the tenant's
// set over exactly the bytes received, claims from that signed payload
// only, exp/nbf/iat within the leeway, tid allowed, iss the v1 or v2 issuer
// of that tid, aud this gateway, and an access token of a kind Entra
// issues (delegated or app-only). Errors are *TokenError. The returned
// Principal is the caller's, but its Scopes and Roles slices are shared with
// other principals: callers must not modify them.
func (v *Validator) Validate(ctx context.Context, raw string) (*Principal, error) {
	// Hashed once per request: the verified-token cache and the downstream
	// token cache (through Principal.TokenHash) both key on it.
	// The string's bytes are hashed in place: []byte(raw) would copy the
	// token (a kilobyte or more) on every request. Sum256 does not write.
	k := lru.Key(sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))))
	if v.verified != nil {
		if e, ok := v.verified.Get(k); ok {
			if v.holder == nil || v.holder.holds(e.common.kid, e.common.x5t, e.pub) {
				v.cfg.Metrics.validatedCached()
				// The cache keeps no token: this request's header holds it.
				p := e.principal(raw, k)
				p.FromCache = true
				return p, nil
			}
			v.verified.Remove(k) // its signing key left the key set
		}
	}
	p, pub, te := v.validate(ctx, raw, nil)
	if te != nil {
		result := "invalid"
		if te.Status == http.StatusServiceUnavailable {
			result = "unavailable" // could not be checked: says nothing against the token
		}
		v.cfg.Metrics.validated(result, te.Reason)
		return nil, te
	}
	v.cfg.Metrics.validated("valid", "")
	p.tokenHash = k
	if v.verified != nil {
		v.verified.Add(k, v.cacheable(p, pub), verifiedSize, p.ExpiresAt)
	}
	return p, nil
}
