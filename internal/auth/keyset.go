package auth

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/sync/singleflight"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// KeySet finds the public key that signed a token. Implementations are safe
// for concurrent use.
type KeySet interface {
	// Key returns the RSA key with the given kid, or with the given x5t
	// thumbprint when the token has no kid (old v1 tokens).
	Key(ctx context.Context, kid, x5t string) (*rsa.PublicKey, error)
}

// ErrUnknownKey means no key of the set has the token's kid (or x5t).
var ErrUnknownKey = errors.New("auth: signing key not found in the tenant's key set")

// keySnapshot is one fetched key set, indexed for lookups.
type keySnapshot struct {
	byID      map[string]*rsa.PublicKey // by kid and by x5t
	names     []string                  // "kid …" or "x5t …", for messages
	count     int
	fetchedAt time.Time
}

func (s *keySnapshot) lookup(kid, x5t string) *rsa.PublicKey {
	if kid != "" {
		return s.byID["kid:"+kid]
	}
	if x5t != "" {
		return s.byID["x5t:"+x5t]
	}
	return nil
}

// snapshotOf indexes the RSA keys of set; notes say, in words, which keys
// were skipped and why.
func snapshotOf(set jwk.Set, now time.Time) (s *keySnapshot, notes []string, err error) {
	s = &keySnapshot{byID: map[string]*rsa.PublicKey{}, fetchedAt: now}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		var pub rsa.PublicKey
		switch {
		case k.KeyType() != "RSA":
			// Entra publishes only RSA keys; ignore anything else.
			notes = append(notes, fmt.Sprintf("key %d (kid %q) skipped: kty %s (Entra signs with RSA keys)", i+1, k.KeyID(), k.KeyType()))
			continue
		case k.Raw(&pub) != nil:
			notes = append(notes, fmt.Sprintf("key %d (kid %q) skipped: not a usable RSA public key", i+1, k.KeyID()))
			continue
		}
		kid, x5t := k.KeyID(), k.X509CertThumbprint()
		if kid != "" {
			s.byID["kid:"+kid] = &pub
		}
		if x5t != "" {
			s.byID["x5t:"+x5t] = &pub
		}
		if kid == "" && x5t == "" {
			notes = append(notes, fmt.Sprintf("key %d has neither kid nor x5t: no token can name it", i+1))
		}
		s.names = append(s.names, keyName(Header{Kid: kid, X5t: x5t}))
		s.count++
	}
	if s.count == 0 {
		return nil, notes, errors.New("auth: key set holds no RSA key")
	}
	return s, notes, nil
}

// holds reports whether the snapshot still has the key pub under kid/x5t.
func (s *keySnapshot) holds(kid, x5t string, pub *rsa.PublicKey) bool {
	k := s.lookup(kid, x5t)
	// The same snapshot answers with the same pointer (the common case, no
	// allocation); after a refresh, compare the keys themselves.
	return k != nil && (k == pub || k.Equal(pub))
}

// StaticKeySet is a fixed key set, for tests and for examining tokens offline.
type StaticKeySet struct {
	snap *keySnapshot
	// Notes say which keys of the set were skipped, and why.
	Notes []string
}

// NewStaticKeySet indexes set.
func NewStaticKeySet(set jwk.Set) (*StaticKeySet, error) {
	s, notes, err := snapshotOf(set, time.Now())
	if err != nil {
		return nil, err
	}
	return &StaticKeySet{snap: s, Notes: notes}, nil
}

// ParseKeySet reads a saved key set, as the gateway reads the tenant's
// jwks_uri: a JWKS document ({"keys": […]}), a single JWK, or PEM
// certificates (each key named, as Entra names its keys, by the base64url
// SHA-1 thumbprint of its certificate, as kid and x5t). It fails when no
// RSA key can be read.
func ParseKeySet(data []byte) (*StaticKeySet, error) {
	trimmed := bytes.TrimSpace(data)
	var set jwk.Set
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		certs, err := pki.ParseCertsPEM(trimmed)
		if err != nil {
			return nil, fmt.Errorf("auth: key set: %w", err)
		}
		set = jwk.NewSet()
		for _, c := range certs {
			k, err := jwk.FromRaw(c.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("auth: key set: certificate %s: %w", c.Subject, err)
			}
			thumb := base64.RawURLEncoding.EncodeToString(pki.ThumbprintSHA1(c))
			_ = k.Set(jwk.KeyIDKey, thumb)
			_ = k.Set(jwk.X509CertThumbprintKey, thumb)
			_ = set.AddKey(k)
		}
	case bytes.HasPrefix(trimmed, []byte("{")):
		var doc struct {
			Keys json.RawMessage `json:"keys"`
			Kty  string          `json:"kty"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("auth: key set: not JSON: %w", err)
		}
		if doc.Keys == nil && doc.Kty == "" {
			return nil, errors.New("auth: key set: no \"keys\": save the key set (jwks_uri, e.g. https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys), not the OpenID configuration")
		}
		var err error
		if set, err = jwk.Parse(trimmed); err != nil {
			return nil, fmt.Errorf("auth: key set: %w", err)
		}
	default:
		return nil, errors.New("auth: key set: neither JWKS JSON nor PEM certificates")
	}
	return NewStaticKeySet(set)
}

// Names lists the set's keys ("kid …", or "x5t …" for keys without a kid),
// sorted, for messages.
func (s *StaticKeySet) Names() []string {
	names := slices.Clone(s.snap.names)
	slices.Sort(names)
	return names
}

// NoKeySet holds no keys: Explain with it checks everything but the
// signature (gateway inspect without a key set).
type NoKeySet struct{}

// Key implements KeySet: always ErrNoKeySet.
func (NoKeySet) Key(context.Context, string, string) (*rsa.PublicKey, error) { return nil, ErrNoKeySet }

func (s *StaticKeySet) holds(kid, x5t string, pub *rsa.PublicKey) bool {
	return s.snap.holds(kid, x5t, pub)
}

// Key implements KeySet.
func (s *StaticKeySet) Key(_ context.Context, kid, x5t string) (*rsa.PublicKey, error) {
	if k := s.snap.lookup(kid, x5t); k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// RemoteKeySetConfig configures a RemoteKeySet.
type RemoteKeySetConfig struct {
	// URL is the jwks_uri from discovery. Required.
	URL string
	// HTTPClient fetches the key set; it must have a timeout. Required.
	HTTPClient *http.Client
	// RefreshInterval is the background refresh period; default 1h.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two refreshes caused by
	// unknown kids, so that forged kids cannot turn into traffic to Entra;
	// default 30s.
	MinRefreshInterval time.Duration
	// Logger gets refresh failures; nil discards.
	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// RemoteKeySet is the tenant's signing keys, fetched from the jwks_uri with
// jwx's jwk.Cache, refreshed in the background, and refreshed on an unknown
// kid at most once per MinRefreshInterval, with concurrent requests sharing
// one fetch. A failed refresh keeps the keys already held. Lookups read an
// atomic snapshot and never wait for a fetch in progress, except for an
// unknown kid.
type RemoteKeySet struct {
	cfg     RemoteKeySetConfig
	cache   *jwk.Cache
	current atomic.Pointer[keySnapshot]
	sf      singleflight.Group

	// failing is true from a failed fetch (background or forced) until the
	// next successful one: an unknown kid then cannot be told from a key the
	// set would hold now, so it is "cannot check", not "bad token".
	failing atomic.Bool

	mu         sync.Mutex
	lastForced time.Time
}

// retryAfterFailure is the least time between forced refreshes while the
// key set cannot be fetched: short, so that tokens signed by a new key are
// served soon after Entra answers again, and still bounded.
const retryAfterFailure = 5 * time.Second

type errSink func(error)

func (f errSink) Error(err error) { f(err) }

// NewRemoteKeySet registers the key set and starts loading it in the
// background, retrying until it succeeds or ctx ends; Ready reports when
// keys are held. Background refreshes stop when ctx ends.
func NewRemoteKeySet(ctx context.Context, cfg RemoteKeySetConfig) (*RemoteKeySet, error) {
	if cfg.URL == "" || cfg.HTTPClient == nil {
		return nil, errors.New("auth: RemoteKeySetConfig needs URL and HTTPClient")
	}
	if cfg.HTTPClient.Timeout == 0 {
		return nil, errors.New("auth: RemoteKeySetConfig.HTTPClient needs a timeout")
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ks := &RemoteKeySet{cfg: cfg}
	window := cfg.RefreshInterval / 4
	window = max(time.Second, min(window, 15*time.Minute))
	ks.cache = jwk.NewCache(ctx, jwk.WithRefreshWindow(window), jwk.WithErrSink(errSink(ks.refreshFailed)))
	err := ks.cache.Register(cfg.URL,
		jwk.WithHTTPClient(cfg.HTTPClient),
		jwk.WithRefreshInterval(cfg.RefreshInterval),
		jwk.WithPostFetcher(jwk.PostFetchFunc(func(_ string, set jwk.Set) (jwk.Set, error) {
			if err := ks.store(set); err != nil {
				return nil, err // the cache keeps the previous set
			}
			return set, nil
		})),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: register key set: %w", err)
	}
	go ks.initialLoad(ctx)
	return ks, nil
}

func (ks *RemoteKeySet) initialLoad(ctx context.Context) {
	backoff := 250 * time.Millisecond
	for {
		if _, err := ks.cache.Refresh(ctx, ks.cfg.URL); err == nil {
			return
		} else if ctx.Err() != nil {
			return
		} else {
			ks.refreshFailed(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (ks *RemoteKeySet) store(set jwk.Set) error {
	snap, _, err := snapshotOf(set, ks.cfg.Now())
	if err != nil {
		return err
	}
	ks.current.Store(snap)
	ks.failing.Store(false)
	ks.cfg.Metrics.keysRefreshed(snap.count, snap.fetchedAt)
	return nil
}

func (ks *RemoteKeySet) refreshFailed(err error) {
	ks.failing.Store(true)
	ks.cfg.Metrics.keysRefreshFailed()
	ks.cfg.Logger.Warn("signing key refresh failed; keeping the keys held", "jwks_uri", ks.cfg.URL, "error", err)
}

func (ks *RemoteKeySet) holds(kid, x5t string, pub *rsa.PublicKey) bool {
	s := ks.current.Load()
	return s != nil && s.holds(kid, x5t, pub)
}

// Ready reports whether a key set is held.
func (ks *RemoteKeySet) Ready() bool { return ks.current.Load() != nil }

// FetchedAt is when the key set held was fetched (zero if none).
func (ks *RemoteKeySet) FetchedAt() time.Time {
	if s := ks.current.Load(); s != nil {
		return s.fetchedAt
	}
	return time.Time{}
}

// Key implements KeySet.
func (ks *RemoteKeySet) Key(ctx context.Context, kid, x5t string) (*rsa.PublicKey, error) {
	if s := ks.current.Load(); s != nil {
		if k := s.lookup(kid, x5t); k != nil {
			return k, nil
		}
	}
	// Unknown kid: Entra may have rotated its keys. Refresh, shared with
	// concurrent callers and at most once per MinRefreshInterval.
	ch := ks.sf.DoChan("refresh", func() (any, error) {
		if ks.forcedRefreshWait() > 0 {
			return nil, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.cfg.HTTPClient.Timeout)
		defer cancel()
		_, err := ks.cache.Refresh(fctx, ks.cfg.URL)
		if err != nil {
			ks.refreshFailed(err)
		}
		return nil, err
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := ks.current.Load()
	if s != nil {
		if k := s.lookup(kid, x5t); k != nil {
			return k, nil
		}
	}
	if s == nil || ks.failing.Load() {
		return nil, &KeysUnavailableError{Loaded: s != nil, RetryAfter: max(time.Second, ks.nextForcedRefresh())}
	}
	return nil, ErrUnknownKey
}

// forcedRefreshWait returns 0 and claims the refresh when one caused by an
// unknown kid may run now; otherwise how long until one may.
func (ks *RemoteKeySet) forcedRefreshWait() time.Duration {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if wait := ks.waitLocked(); wait > 0 {
		return wait
	}
	ks.lastForced = ks.cfg.Now()
	return 0
}

// nextForcedRefresh is how long until a refresh caused by an unknown kid may run.
func (ks *RemoteKeySet) nextForcedRefresh() time.Duration {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.waitLocked()
}

func (ks *RemoteKeySet) waitLocked() time.Duration {
	if ks.lastForced.IsZero() {
		return 0
	}
	interval := ks.cfg.MinRefreshInterval
	if ks.failing.Load() {
		interval = min(interval, retryAfterFailure)
	}
	return interval - ks.cfg.Now().Sub(ks.lastForced)
}
