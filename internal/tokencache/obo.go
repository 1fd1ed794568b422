// Package tokencache keeps the downstream tokens the gateway has already
// paid for: one On-Behalf-Of exchange per (user token, scopes) however many
// requests miss at once, a bounded in-memory cache (L1), and an optional
// encrypted cache shared by replicas (L2).
package tokencache

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/obo-gateway/obo-gateway/internal/lru"
	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// Exchanger performs On-Behalf-Of exchanges; *obo.Exchanger is one.
type Exchanger interface {
	Exchange(ctx context.Context, req obo.Request) (obo.Token, error)
}

// OBOConfig configures an OBO cache.
type OBOConfig struct {
	// Next performs the exchanges the cache cannot answer. Required.
	Next Exchanger
	// Budget bounds the memory of the in-memory cache (L1), in bytes. Required.
	Budget int64
	// RefreshMargin: an entry is dropped this long before its token expires,
	// so an upstream never gets a token about to expire. Default 5m.
	RefreshMargin time.Duration
	// L2 is an optional cache shared by replicas.
	L2 L2
	// L2WriteTimeout bounds the background write of a new token to L2; default 1s.
	L2WriteTimeout time.Duration
	// ExchangeTimeout bounds a shared exchange, which runs on after the
	// request that started it gives up; default 30s (Next has its own bound too).
	ExchangeTimeout time.Duration
	// MaxConcurrent bounds the exchanges with Entra in progress at once
	// (after L1 and L2 missed; requests sharing an exchange count once), so
	// that a burst of new users cannot push Entra into throttling the whole
	// gateway. Zero means no bound. Hits never wait for it.
	MaxConcurrent int
	// MaxQueued bounds the exchanges waiting for one of the MaxConcurrent
	// places; one more fails at once with ErrBusy. Default 16 × MaxConcurrent.
	MaxQueued int
	// QueueTimeout bounds the wait for a place; then the exchange fails
	// with ErrBusy. Default 2s.
	QueueTimeout time.Duration
	Metrics      *Metrics
	Now          func() time.Time
}

// The token sources the cache reports in obo.Token.Source, besides the
// exchanger's own (obo.SourceExchange).
const (
	SourceL1 = "l1" // this replica's cache
	SourceL2 = "l2" // the cache shared by the replicas
	// SourceExchangeShared: an exchange made for a concurrent request
	// for the same token and scopes, joined.
	SourceExchangeShared = "exchange_shared"
)

// ErrBusy is the error of an exchange that found MaxConcurrent exchanges in
// progress and could not wait for one to end: the caller should answer 503
// with Retry-After, not blame Entra or the user's token.
var ErrBusy = errors.New("tokencache: too many On-Behalf-Of exchanges in progress")

// OBO is a cache in front of an Exchanger: a hit costs a hash and a map
// lookup; concurrent misses for the same key share one exchange, whose
// result or error reaches every waiter; a waiter that gives up does not
// cancel the exchange for the others. Errors are not cached.
type OBO struct {
	cfg   OBOConfig
	l1    *lru.LRU[Entry]
	group singleflight.Group
	slots *semaphore // nil without MaxConcurrent
}

// NewOBO returns an empty cache.
func NewOBO(cfg OBOConfig) (*OBO, error) {
	if cfg.Next == nil || cfg.Budget <= 0 {
		return nil, errors.New("tokencache: OBOConfig needs Next and a positive Budget")
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = 5 * time.Minute
	}
	if cfg.L2WriteTimeout <= 0 {
		cfg.L2WriteTimeout = time.Second
	}
	if cfg.ExchangeTimeout <= 0 {
		cfg.ExchangeTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConcurrent < 0 || cfg.MaxQueued < 0 || cfg.QueueTimeout < 0 {
		return nil, errors.New("tokencache: negative MaxConcurrent, MaxQueued or QueueTimeout")
	}
	c := &OBO{cfg: cfg}
	if cfg.MaxConcurrent > 0 {
		if cfg.MaxQueued == 0 {
			cfg.MaxQueued = 16 * cfg.MaxConcurrent
		}
		if cfg.QueueTimeout == 0 {
			cfg.QueueTimeout = 2 * time.Second
		}
		c.cfg = cfg
		c.slots = newSemaphore(cfg.MaxConcurrent, cfg.MaxQueued, cfg.QueueTimeout)
		cfg.Metrics.observeExchanges(c.slots)
	}
	c.l1 = lru.New[Entry](lru.Config{Budget: cfg.Budget, Now: cfg.Now, OnEvict: func(reason string) {
		cfg.Metrics.evicted(reason)
	}})
	cfg.Metrics.observe(c.l1)
	return c, nil
}

// KeyOf is the cache key of an exchange: SHA-256 over the SHA-256 of the
// user's token, the tenant, the sorted scopes and the claims.
func KeyOf(req obo.Request) Key {
	at := req.AssertionSHA256
	if at == ([32]byte{}) {
		at = sha256.Sum256([]byte(req.Assertion))
	}
	scopes := req.Scopes
	if !canonical(scopes) {
		scopes = slices.Clone(scopes)
		for i := range scopes {
			scopes[i] = strings.ToLower(scopes[i])
		}
		slices.Sort(scopes)
	}
	// One buffer, on the stack for the usual sizes, hashed once: this runs
	// on every request.
	var buf [512]byte
	b := append(buf[:0], at[:]...)
	b = append(b, 0)
	b = append(b, strings.ToLower(req.TenantID)...)
	b = append(b, 0)
	for i, s := range scopes {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	b = append(b, 0)
	b = append(b, req.Claims...)
	return Key(sha256.Sum256(b))
}

// canonical reports scopes already lower-case and sorted, as a route's
// configured scopes usually are: then KeyOf needs no sorted copy.
func canonical(scopes []string) bool {
	for i, s := range scopes {
		if strings.ToLower(s) != s || (i > 0 && scopes[i-1] > s) {
			return false
		}
	}
	return true
}

// Exchange answers from the cache or performs (or joins) the exchange.
func (c *OBO) Exchange(ctx context.Context, req obo.Request) (obo.Token, error) {
	k := KeyOf(req)
	if e, ok := c.l1.Get(k); ok {
		c.cfg.Metrics.lookup("l1", "hit")
		return obo.Token{AccessToken: e.AccessToken, ExpiresOn: e.ExpiresOn, Source: SourceL1}, nil
	}
	c.cfg.Metrics.lookup("l1", "miss")
	return c.miss(ctx, k, req)
}

// miss performs or joins the exchange for k. Apart from Exchange, so that
// the key escapes to the heap (in the closure) on misses only.
func (c *OBO) miss(ctx context.Context, k Key, req obo.Request) (obo.Token, error) {
	leader := false // set by the flight's function, which only the leader's call runs
	ch := c.group.DoChan(string(k[:]), func() (any, error) {
		leader = true
		// Detached from the first caller: its giving up must not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ExchangeTimeout)
		defer cancel()
		return c.fill(fctx, k, req)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return obo.Token{}, res.Err
		}
		if res.Shared {
			c.cfg.Metrics.shared()
		}
		tok := res.Val.(obo.Token)
		if !leader && tok.Source == obo.SourceExchange {
			// The receive on ch orders the flight's write of leader before
			// this read.
			tok.Source = SourceExchangeShared
		}
		return tok, nil
	case <-ctx.Done():
		return obo.Token{}, ctx.Err()
	}
}

// fill resolves a miss: L2, then the exchange; a new token goes to L1 and,
// in the background, to L2.
func (c *OBO) fill(ctx context.Context, k Key, req obo.Request) (obo.Token, error) {
	// Again: a caller that missed L1 just before an exchange for the same key
	// ended, and joined no flight, finds its token here.
	if e, ok := c.l1.Get(k); ok {
		return obo.Token{AccessToken: e.AccessToken, ExpiresOn: e.ExpiresOn, Source: SourceL1}, nil
	}
	if c.cfg.L2 != nil {
		e, ok, err := c.cfg.L2.Get(ctx, k)
		switch {
		case err != nil:
			c.cfg.Metrics.lookup("l2", "error")
		case ok && c.usable(e):
			c.cfg.Metrics.lookup("l2", "hit")
			c.store(k, e)
			return obo.Token{AccessToken: e.AccessToken, ExpiresOn: e.ExpiresOn, Source: SourceL2}, nil
		default:
			c.cfg.Metrics.lookup("l2", "miss")
		}
	}
	if c.slots != nil {
		if !c.slots.acquire(ctx) {
			return obo.Token{}, ErrBusy
		}
		defer c.slots.release()
	}
	tok, err := c.cfg.Next.Exchange(ctx, req)
	if err != nil {
		return obo.Token{}, err
	}
	e := Entry{AccessToken: tok.AccessToken, ExpiresOn: tok.ExpiresOn}
	if ttl := c.store(k, e); ttl > 0 && c.cfg.L2 != nil {
		go func() {
			wctx, cancel := context.WithTimeout(context.Background(), c.cfg.L2WriteTimeout)
			defer cancel()
			if err := c.cfg.L2.Set(wctx, k, e, ttl); err != nil {
				c.cfg.Metrics.lookup("l2", "set_error")
			}
		}()
	}
	return tok, nil
}

// usable reports whether e outlives the refresh margin.
func (c *OBO) usable(e Entry) bool {
	return c.cfg.Now().Add(c.cfg.RefreshMargin).Before(e.ExpiresOn)
}

// store puts e in L1 until its expiry minus the margin, and returns that TTL
// (0 when the token is too close to expiry to cache).
func (c *OBO) store(k Key, e Entry) time.Duration {
	until := e.ExpiresOn.Add(-c.cfg.RefreshMargin)
	ttl := until.Sub(c.cfg.Now())
	if ttl <= 0 {
		return 0
	}
	c.l1.Add(k, e, int64(len(e.AccessToken)), until)
	return ttl
}

// Len is the number of tokens held in L1.
func (c *OBO) Len() int { return c.l1.Len() }
