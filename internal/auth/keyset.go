package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/sync/singleflight"
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

func snapshotOf(set jwk.Set, now time.Time) (*keySnapshot, error) {
	s := &keySnapshot{byID: map[string]*rsa.PublicKey{}, fetchedAt: now}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		var pub rsa.PublicKey
		if k.KeyType() != "RSA" || k.Raw(&pub) != nil {
			continue // Entra publishes only RSA keys; ignore anything else
		}
		if kid := k.KeyID(); kid != "" {
			s.byID["kid:"+kid] = &pub
		}
		if x5t := k.X509CertThumbprint(); x5t != "" {
			s.byID["x5t:"+x5t] = &pub
		}
		s.count++
	}
	if s.count == 0 {
		return nil, errors.New("auth: key set holds no RSA key")
	}
	return s, nil
}

// holds reports whether the snapshot still has the key pub under kid/x5t.
func (s *keySnapshot) holds(kid, x5t string, pub *rsa.PublicKey) bool {
	k := s.lookup(kid, x5t)
	// The same snapshot answers with the same pointer (the common case, no
	// allocation); after a refresh, compare the keys themselves.
	return k != nil && (k == pub || k.Equal(pub))
}

// StaticKeySet is a fixed key set, for tests and for examining tokens offline.
type StaticKeySet struct{ snap *keySnapshot }

// NewStaticKeySet indexes set.
func NewStaticKeySet(set jwk.Set) (*StaticKeySet, error) {
	s, err := snapshotOf(set, time.Now())
	if err != nil {
		return nil, err
	}
	return &StaticKeySet{snap: s}, nil
}

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

	mu         sync.Mutex
	lastForced time.Time
}

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
	snap, err := snapshotOf(set, ks.cfg.Now())
	if err != nil {
		return err
	}
	ks.current.Store(snap)
	ks.cfg.Metrics.keysRefreshed(snap.count, snap.fetchedAt)
	return nil
}

func (ks *RemoteKeySet) refreshFailed(err error) {
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
		if !ks.allowForcedRefresh() {
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
	if s == nil {
		return nil, ErrKeysUnavailable
	}
	if k := s.lookup(kid, x5t); k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

func (ks *RemoteKeySet) allowForcedRefresh() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.cfg.Now()
	if !ks.lastForced.IsZero() && now.Sub(ks.lastForced) < ks.cfg.MinRefreshInterval {
		return false
	}
	ks.lastForced = now
	return true
}
