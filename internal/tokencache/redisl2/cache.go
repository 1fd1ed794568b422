// Package redisl2 is the gateway's shared second-level token cache: an
// implementation of tokencache.L2 on Redis, so that replicas do not each
// ask Entra for the same user's downstream token.
//
// Values are encrypted with AES-256-GCM under keys from a Keyring, bound to
// their Redis key; Redis keys are the configured prefix and the hex of the
// tokencache.Key, never anything derived from a token. Every call is
// bounded by Config.Timeout, and a circuit breaker stops asking a Redis
// that does not answer, so a dead or slow Redis costs a request at most one
// timeout while the breaker is closed and nothing once it is open.
package redisl2

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultKeyPrefix       = "obo-gateway:"
	DefaultTimeout         = 50 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
)

// ErrUnavailable is returned without asking Redis while the circuit
// breaker is open.
var ErrUnavailable = errors.New("redisl2: unavailable: Redis failed repeatedly, not asking it until the breaker's cooldown ends")

// Config configures a Cache. Only Addr and Keys are required.
type Config struct {
	// Addr is Redis's host:port. Required.
	Addr string
	// Username and Password authenticate to Redis (AUTH / ACL); empty
	// means none. Config's String and LogValue redact the password.
	Username, Password string
	// DB is the Redis database number.
	DB int
	// TLS, if not nil, is used for the connection; its ServerName
	// defaults to Addr's host. nil means plain TCP.
	TLS *tls.Config
	// KeyPrefix starts every Redis key; "" means DefaultKeyPrefix.
	KeyPrefix string
	// Timeout bounds each Get, Set and Ping as a whole, including dialling,
	// writing and reading; 0 means DefaultTimeout. Must not be negative.
	Timeout time.Duration
	// Keys encrypt and decrypt the stored values. Required.
	Keys *Keyring
	// After BreakerFailures consecutive failures (0 means
	// DefaultBreakerFailures) Get and Set return ErrUnavailable without
	// asking Redis for BreakerCooldown (0 means DefaultBreakerCooldown);
	// then one call goes through as a probe, and its success closes the
	// breaker. Neither may be negative.
	BreakerFailures int
	BreakerCooldown time.Duration
	// Metrics, if not nil, records requests and their durations.
	Metrics *Metrics
	// Logger receives one warning when the breaker opens, one info when it
	// closes, and a warning for each stored value that cannot be decrypted
	// (naming its key ID only). nil discards.
	Logger *slog.Logger
	// Now is the clock the breaker uses; nil means time.Now.
	Now func() time.Time

	// dialer, if not nil, replaces the network dialer (for tests).
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// String describes the configuration with the password redacted.
func (c Config) String() string {
	return fmt.Sprintf("redisl2.Config{Addr: %s, Username: %q, Password: %s, DB: %d, TLS: %t, KeyPrefix: %q, Timeout: %s, Keys: %v, BreakerFailures: %d, BreakerCooldown: %s}",
		c.Addr, c.Username, redacted(c.Password), c.DB, c.TLS != nil, c.KeyPrefix, c.Timeout, c.Keys, c.BreakerFailures, c.BreakerCooldown)
}

// LogValue describes the configuration with the password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)),
		slog.Int("db", c.DB),
		slog.Bool("tls", c.TLS != nil),
		slog.String("key_prefix", c.KeyPrefix),
		slog.Duration("timeout", c.Timeout),
		slog.Any("keys", c.Keys),
		slog.Int("breaker_failures", c.BreakerFailures),
		slog.Duration("breaker_cooldown", c.BreakerCooldown),
	)
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// Cache is a tokencache.L2 on Redis. It is safe for concurrent use.
type Cache struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	keys    *Keyring
	breaker breaker
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	addr    string
}

var _ tokencache.L2 = (*Cache)(nil)

// New validates cfg and returns a Cache. It does not contact Redis:
// connections are made on first use, so the gateway starts while Redis is
// down (use Ping to check it). Close it when done.
func New(cfg Config) (*Cache, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("redisl2: Addr is required")
	case cfg.Keys == nil:
		return nil, errors.New("redisl2: Keys is required")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("redisl2: Timeout %s is negative", cfg.Timeout)
	case cfg.BreakerFailures < 0:
		return nil, fmt.Errorf("redisl2: BreakerFailures %d is negative", cfg.BreakerFailures)
	case cfg.BreakerCooldown < 0:
		return nil, fmt.Errorf("redisl2: BreakerCooldown %s is negative", cfg.BreakerCooldown)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("redisl2: Addr %q is not host:port: %w", cfg.Addr, err)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerCooldown == 0 {
		cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dial := cfg.dialer
	if dial == nil {
		dial = netDialer(cfg.Timeout, cfg.TLS)
	}
	client := redis.NewClient(&redis.Options{
		Addr:     cfg.Addr,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		// Our dialer does TLS itself, bounded by the context (go-redis's
		// own TLS dial ignores it); TLSConfig is set for go-redis's
		// benefit only.
		TLSConfig: cfg.TLS,
		Dialer:    dial,
		// GET and SET need nothing of RESP3; RESP2 keeps push
		// notifications and their processing out of the way.
		Protocol:                 2,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DisableIdentity:          true, // no CLIENT SETINFO round trip per connection
		// Every wait is bounded by Timeout, and nothing is tried twice: a
		// retry would double the wait. In go-redis, MaxRetries 0 means
		// "default (3)"; -1 disables retries. DialerRetries <= 0 means
		// "default (5)"; 1 is a single attempt.
		DialTimeout:           cfg.Timeout,
		ReadTimeout:           cfg.Timeout,
		WriteTimeout:          cfg.Timeout,
		PoolTimeout:           cfg.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
	})
	return &Cache{
		client:  client,
		prefix:  cfg.KeyPrefix,
		timeout: cfg.Timeout,
		keys:    cfg.Keys,
		breaker: breaker{threshold: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown},
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		now:     cfg.Now,
		addr:    cfg.Addr,
	}, nil
}

// netDialer dials TCP, and TLS over it when tlsCfg is not nil, both bounded
// by the context and by timeout.
func netDialer(timeout time.Duration, tlsCfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if tlsCfg == nil {
		return nd.DialContext
	}
	td := &tls.Dialer{NetDialer: nd, Config: tlsCfg}
	return td.DialContext
}

// redisKey is where k is stored: the prefix and the hex of k.
func (c *Cache) redisKey(k tokencache.Key) string {
	return c.prefix + hex.EncodeToString(k[:])
}

// Get returns the entry stored under k. A miss, including a value that
// cannot be decrypted (unknown key ID, failed authentication, malformed),
// is (Entry{}, false, nil). An error means Redis did not answer within
// the timeout or failed; it is ErrUnavailable, returned at once, while the
// breaker is open.
func (c *Cache) Get(ctx context.Context, k tokencache.Key) (tokencache.Entry, bool, error) {
	t, ok := c.breaker.allow(c.now())
	if !ok {
		c.metrics.request(opGet, resultSkipped)
		return tokencache.Entry{}, false, ErrUnavailable
	}
	rk := c.redisKey(k)
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	v, err := c.client.Get(cctx, rk).Bytes()
	c.metrics.observe(opGet, time.Since(start))
	if errors.Is(err, redis.Nil) {
		c.succeeded(t)
		c.metrics.request(opGet, resultMiss)
		return tokencache.Entry{}, false, nil
	}
	if err != nil {
		c.failed(ctx, t, err)
		c.metrics.request(opGet, resultError)
		return tokencache.Entry{}, false, fmt.Errorf("redisl2: get: %w", err)
	}
	c.succeeded(t)
	e, err := c.keys.open(rk, v)
	if err != nil {
		var oe *openError
		errors.As(err, &oe)
		// Another replica may hold a newer keyring: leave the value for it;
		// ours is overwritten when the caller stores a fresh token.
		c.log.Warn("redisl2: cached value cannot be decrypted; treating it as a miss",
			slog.String("reason", oe.Reason), slog.String("key_id", oe.KeyID))
		c.metrics.request(opGet, resultUndecryptable)
		return tokencache.Entry{}, false, nil
	}
	c.metrics.request(opGet, resultHit)
	return e, true, nil
}

// Set stores e under k, encrypted with the keyring's current key, to
// expire in ttl, in whole milliseconds rounded down (SET PX). A ttl under
// a millisecond stores nothing and returns nil. An error means Redis did
// not answer within the timeout or failed; it is ErrUnavailable, returned
// at once, while the breaker is open.
func (c *Cache) Set(ctx context.Context, k tokencache.Key, e tokencache.Entry, ttl time.Duration) error {
	ms := ttl.Milliseconds()
	if ms <= 0 {
		return nil
	}
	t, ok := c.breaker.allow(c.now())
	if !ok {
		c.metrics.request(opSet, resultSkipped)
		return ErrUnavailable
	}
	rk := c.redisKey(k)
	v, err := c.keys.seal(rk, e)
	if err != nil {
		c.breaker.abandoned(t)
		c.metrics.request(opSet, resultError)
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	// SET key value PX ms, spelled out: go-redis's Set picks EX for whole
	// seconds and logs on its own for sub-millisecond TTLs.
	err = c.client.Do(cctx, "set", rk, v, "px", ms).Err()
	c.metrics.observe(opSet, time.Since(start))
	if err != nil {
		c.failed(ctx, t, err)
		c.metrics.request(opSet, resultError)
		return fmt.Errorf("redisl2: set: %w", err)
	}
	c.succeeded(t)
	c.metrics.request(opSet, resultStored)
	return nil
}

// Ping asks Redis for PING within the timeout, for readiness checks and
// the doctor. It bypasses the breaker and records no metrics.
func (c *Cache) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisl2: ping %s: %w", c.addr, err)
	}
	return nil
}

// Close closes the connections to Redis. Calls after Close fail.
func (c *Cache) Close() error {
	if err := c.client.Close(); err != nil {
		return fmt.Errorf("redisl2: close: %w", err)
	}
	return nil
}

func (c *Cache) succeeded(t ticket) {
	if c.breaker.succeeded(t) {
		c.log.Info("redisl2: Redis answers again; using the shared token cache", slog.String("addr", c.addr))
	}
}

// failed records a failed call; parent is the caller's context, whose end
// means the caller gave up, which says nothing about Redis.
func (c *Cache) failed(parent context.Context, t ticket, err error) {
	if parent.Err() != nil {
		c.breaker.abandoned(t)
		return
	}
	if c.breaker.failed(t, c.now()) {
		c.log.Warn("redisl2: Redis failing; skipping the shared token cache until it answers again",
			slog.String("addr", c.addr),
			slog.Int("consecutive_failures", c.breaker.threshold),
			slog.Duration("retry_after", c.breaker.cooldown),
			slog.String("error", err.Error()))
	}
}
