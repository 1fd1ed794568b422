package redisl2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2/redistest"
)

// testTimeout is the Cache's timeout in tests that do not test timing:
// generous, so a loaded CI machine running -race does not flake.
const testTimeout = 2 * time.Second

// harness is a Cache against its own redis-server, with a raw client to
// look behind it, a fresh registry, recorded logs, a fake clock and
// counters of network attempts.
type harness struct {
	srv    *redistest.Server
	cache  *Cache
	cfg    Config
	raw    *redis.Client
	reg    *prometheus.Registry
	logs   *logRecorder
	clock  *testkit.Clock
	dials  atomic.Int64 // dial attempts by the Cache
	sent   atomic.Int64 // commands the Cache sent
	keyB64 string       // the "k1" key in the default keyring
}

// newHarness starts redis-server and a Cache on it; opts adjust the
// Config before New.
func newHarness(t *testing.T, opts ...func(*Config)) *harness {
	t.Helper()
	h := &harness{srv: redistest.StartServer(t), reg: prometheus.NewRegistry(), logs: &logRecorder{}, clock: testkit.NewClock(time.Unix(1_700_000_000, 0))}
	h.keyB64 = newKeyB64(t)
	h.raw = redis.NewClient(&redis.Options{Addr: h.srv.Addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true, ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { h.raw.Close() })
	h.cfg = Config{
		Addr:    h.srv.Addr,
		Keys:    mustKeyring(t, "k1:"+h.keyB64, "k1"),
		Timeout: testTimeout,
		Metrics: NewMetrics(h.reg),
		Logger:  slog.New(h.logs),
		Now:     h.clock.Now,
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	next := netDialer(h.cfg.Timeout, nil)
	h.cfg.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
	h.cache = h.newCache(t, h.cfg)
	return h
}

// newCache makes another Cache, counting its commands with h's.
func (h *harness) newCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.client.AddHook(countHook{&h.sent})
	return c
}

// count is the requests_total counter for op and result.
func (h *harness) count(op, result string) int {
	return int(testutil.ToFloat64(h.cfg.Metrics.requests.WithLabelValues(op, result)))
}

func (h *harness) wantCounts(t *testing.T, want map[[2]string]int) {
	t.Helper()
	for _, op := range []string{opGet, opSet} {
		for _, r := range []string{resultHit, resultMiss, resultUndecryptable, resultStored, resultError, resultSkipped} {
			if got := h.count(op, r); got != want[[2]string{op, r}] {
				t.Errorf("requests_total{op=%q,result=%q} = %d, want %d", op, r, got, want[[2]string{op, r}])
			}
		}
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// logRecorder is a slog.Handler that keeps records as text lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, b.String())
	return nil
}

// matching returns the lines at level that contain s.
func (r *logRecorder) matching(level slog.Level, s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if strings.HasPrefix(l, level.String()+" ") && strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func (r *logRecorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// userKey is a cache key as the gateway derives it, from a fake token.
func userKey(token string) tokencache.Key {
	inner := sha256.Sum256([]byte(token))
	return tokencache.Key(sha256.Sum256(append(inner[:], "api://downstream/.default"...)))
}

func testEntry(token string) tokencache.Entry {
	return tokencache.Entry{AccessToken: token, ExpiresOn: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)}
}

func mustSet(t *testing.T, c *Cache, k tokencache.Key, e tokencache.Entry) {
	t.Helper()
	if err := c.Set(t.Context(), k, e, time.Hour); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

func wantHit(t *testing.T, c *Cache, k tokencache.Key, want tokencache.Entry) {
	t.Helper()
	got, ok, err := c.Get(t.Context(), k)
	if err != nil || !ok {
		t.Fatalf("Get = %+v, %t, %v; want a hit", got, ok, err)
	}
	if got.AccessToken != want.AccessToken || !got.ExpiresOn.Equal(want.ExpiresOn) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
}

func wantMiss(t *testing.T, c *Cache, k tokencache.Key) {
	t.Helper()
	got, ok, err := c.Get(t.Context(), k)
	if err != nil || ok || got != (tokencache.Entry{}) {
		t.Fatalf("Get = %+v, %t, %v; want a miss", got, ok, err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k, e := userKey("user-token-1"), testEntry("downstream-token-1")
	wantMiss(t, h.cache, k)
	mustSet(t, h.cache, k, e)
	wantHit(t, h.cache, k, e)

	// Overwrite; and an entry without expiry survives as one.
	e2 := tokencache.Entry{AccessToken: "downstream-token-2"}
	mustSet(t, h.cache, k, e2)
	got, ok, err := h.cache.Get(t.Context(), k)
	if err != nil || !ok || got.AccessToken != e2.AccessToken || !got.ExpiresOn.IsZero() {
		t.Fatalf("Get = %+v, %t, %v; want %+v", got, ok, err, e2)
	}

	if err := h.cache.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	h.wantCounts(t, map[[2]string]int{{opGet, resultMiss}: 1, {opGet, resultHit}: 2, {opSet, resultStored}: 2})
	if logs := h.logs.all(); logs != "" {
		t.Errorf("logged:\n%s", logs)
	}
}

func TestSetTTL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.KeyPrefix = "test:" })
	k := userKey("user-token")
	const ttl = 90 * time.Second
	if err := h.cache.Set(t.Context(), k, testEntry("tok"), ttl); err != nil {
		t.Fatal(err)
	}
	pttl, err := h.raw.PTTL(t.Context(), "test:"+hex.EncodeToString(k[:])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= ttl-10*time.Second || pttl > ttl {
		t.Errorf("PTTL = %s, want just under %s", pttl, ttl)
	}

	// Whole milliseconds, as PX: a second and a bit.
	k3 := userKey("third-user")
	if err := h.cache.Set(t.Context(), k3, testEntry("tok"), 1500*time.Millisecond+999*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if pttl, err := h.raw.PTTL(t.Context(), h.cache.redisKey(k3)).Result(); err != nil || pttl <= 500*time.Millisecond || pttl > 1500*time.Millisecond {
		t.Errorf("PTTL = %s, %v; want just under 1.5s", pttl, err)
	}

	// A ttl under a millisecond stores nothing and asks Redis nothing.
	sent := h.sent.Load()
	k2 := userKey("other-user")
	for _, ttl := range []time.Duration{0, -time.Second, time.Millisecond - 1} {
		if err := h.cache.Set(t.Context(), k2, testEntry("tok"), ttl); err != nil {
			t.Errorf("Set(ttl %s) = %v, want nil", ttl, err)
		}
	}
	if got := h.sent.Load(); got != sent {
		t.Errorf("Set with ttl <= 0 sent %d commands", got-sent)
	}
	wantMiss(t, h.cache, k2)
}

func TestStoredValueIsEncrypted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	token := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.downstream-payload.signature"
	k, e := userKey(token), testEntry(token)
	mustSet(t, h.cache, k, e)

	keys, err := h.raw.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	wantKey := "obo-gateway:" + hex.EncodeToString(k[:])
	if len(keys) != 1 || keys[0] != wantKey {
		t.Fatalf("Redis keys = %q, want [%q]", keys, wantKey)
	}
	raw, err := h.raw.Get(t.Context(), wantKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+8 <= len(token); i++ {
		if bytes.Contains(raw, []byte(token[i:i+8])) {
			t.Fatalf("stored value contains %q of the token", token[i:i+8])
		}
	}
	if raw[0] != formatV1 || raw[1] != 2 || string(raw[2:4]) != "k1" {
		t.Errorf("value header = % x, want version 1, key ID k1", raw[:4])
	}
	if want := 4 + nonceSize + expirySz + len(token) + 16; len(raw) != want {
		t.Errorf("value is %d bytes, want %d", len(raw), want)
	}
}

func TestValueUnderAnotherKeyIsAMiss(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ka, kb := userKey("alice"), userKey("mallory")
	mustSet(t, h.cache, ka, testEntry("alice-downstream-token"))
	raw, err := h.raw.Get(t.Context(), h.cache.redisKey(ka)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.raw.Set(t.Context(), h.cache.redisKey(kb), raw, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	wantMiss(t, h.cache, kb)
	h.wantCounts(t, map[[2]string]int{{opSet, resultStored}: 1, {opGet, resultUndecryptable}: 1})
	warns := h.logs.matching(slog.LevelWarn, "cannot be decrypted")
	if len(warns) != 1 || !strings.Contains(warns[0], "key_id=k1") || !strings.Contains(warns[0], "reason=authentication_failed") {
		t.Fatalf("warnings = %q, want one naming key_id=k1", warns)
	}
	logs := h.logs.all()
	if strings.Contains(logs, "alice-downstream-token") || strings.Contains(logs, hex.EncodeToString(raw[4:12])) || strings.Contains(logs, string(raw[4:12])) {
		t.Errorf("log holds the value: %s", logs)
	}
	// The value is left for a replica that can read it.
	if n, _ := h.raw.Exists(t.Context(), h.cache.redisKey(kb)).Result(); n != 1 {
		t.Error("the undecryptable value was deleted")
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k1, k2 := h.keyB64, newKeyB64(t)
	old, fresh := userKey("old-user"), userKey("new-user")
	oldEntry, freshEntry := testEntry("token-under-k1"), testEntry("token-under-k2")
	mustSet(t, h.cache, old, oldEntry) // h.cache: k1 only

	// Step 1 of a rotation: k2 becomes current; k1 still decrypts.
	cfg := h.cfg
	cfg.Keys = mustKeyring(t, "k1:"+k1+",k2:"+k2, "k2")
	rotated := h.newCache(t, cfg)
	wantHit(t, rotated, old, oldEntry)
	mustSet(t, rotated, fresh, freshEntry)
	raw, err := h.raw.Get(t.Context(), rotated.redisKey(fresh)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw[2:2+raw[1]]) != "k2" {
		t.Errorf("new value names key ID %q, want k2", raw[2:2+raw[1]])
	}
	wantHit(t, rotated, fresh, freshEntry)

	// A replica still on k1 alone cannot read k2's values: a miss.
	wantMiss(t, h.cache, fresh)
	if w := h.logs.matching(slog.LevelWarn, "key_id=k2"); len(w) != 1 || !strings.Contains(w[0], "reason=unknown_key_id") {
		t.Errorf("warnings = %q, want one for unknown key ID k2", w)
	}

	// Step 2: k1 is dropped; its values are misses.
	cfg.Keys = mustKeyring(t, "k2:"+k2, "k2")
	done := h.newCache(t, cfg)
	wantMiss(t, done, old)
	wantHit(t, done, fresh, freshEntry)
	if w := h.logs.matching(slog.LevelWarn, "key_id=k1"); len(w) != 1 || !strings.Contains(w[0], "reason=unknown_key_id") {
		t.Errorf("warnings = %q, want one for unknown key ID k1", w)
	}
	assertNoKeyMaterial(t, h.logs.all(), k1, k2)
}

func TestUndecryptableValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k1 := h.keyB64
	k := userKey("user")
	sealWith := func(spec, current string) []byte {
		v, err := mustKeyring(t, spec, current).seal(h.cache.redisKey(k), testEntry("the-token"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		value []byte
		log   string
	}{
		{"unknown key ID", sealWith("k7:"+newKeyB64(t), "k7"), "reason=unknown_key_id key_id=k7"},
		{"wrong key", sealWith("k1:"+newKeyB64(t), "k1"), "reason=authentication_failed key_id=k1"},
		{"not ours", []byte("the-token"), "reason=unsupported_version key_id="},
		{"truncated", sealWith("k1:"+k1, "k1")[:20], "reason=malformed key_id=k1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.raw.Set(t.Context(), h.cache.redisKey(k), tt.value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			wantMiss(t, h.cache, k)
			if got := h.count(opGet, resultUndecryptable); got != i+1 {
				t.Errorf("undecryptable = %d, want %d", got, i+1)
			}
			if w := h.logs.matching(slog.LevelWarn, tt.log); len(w) != 1 {
				t.Errorf("warnings with %q: %q; all logs:\n%s", tt.log, w, h.logs.all())
			}
		})
	}
	if strings.Contains(h.logs.all(), "the-token") {
		t.Errorf("logs hold the value:\n%s", h.logs.all())
	}
	// Our own value is fine again.
	mustSet(t, h.cache, k, testEntry("the-token"))
	wantHit(t, h.cache, k, testEntry("the-token"))
}

// TestRedisDown kills Redis under a Cache: calls fail, the breaker opens
// after BreakerFailures and then nothing touches the network; after the
// cooldown one probe goes out; once Redis is back a probe closes it.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	const failures, cooldown = 3, 5 * time.Second
	h := newHarness(t, func(c *Config) { c.BreakerFailures, c.BreakerCooldown = failures, cooldown })
	k, e := userKey("user"), testEntry("tok")
	mustSet(t, h.cache, k, e)
	wantHit(t, h.cache, k, e)

	h.srv.Stop()
	for i := range failures {
		var err error
		if i%2 == 0 {
			_, _, err = h.cache.Get(t.Context(), k)
		} else {
			err = h.cache.Set(t.Context(), k, e, time.Hour)
		}
		if err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d with Redis down = %v, want a Redis error", i+1, err)
		}
	}
	if w := h.logs.matching(slog.LevelWarn, "Redis failing"); len(w) != 1 {
		t.Fatalf("breaker warnings = %q, want one", w)
	}

	// Open: calls return ErrUnavailable without a dial or a command.
	wantSkipped := func(calls int) {
		t.Helper()
		dials, sent := h.dials.Load(), h.sent.Load()
		for range calls {
			if _, _, err := h.cache.Get(t.Context(), k); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Get with breaker open = %v, want ErrUnavailable", err)
			}
			if err := h.cache.Set(t.Context(), k, e, time.Hour); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Set with breaker open = %v, want ErrUnavailable", err)
			}
		}
		if d, s := h.dials.Load()-dials, h.sent.Load()-sent; d != 0 || s != 0 {
			t.Fatalf("with the breaker open: %d dials, %d commands; want none", d, s)
		}
	}
	wantSkipped(10)
	h.clock.Advance(cooldown - time.Nanosecond)
	wantSkipped(1)

	// Cooldown over, Redis still down: one probe, which fails, and the
	// breaker stays open for another cooldown, without another warning.
	h.clock.Advance(time.Nanosecond)
	sent := h.sent.Load()
	if _, _, err := h.cache.Get(t.Context(), k); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("probe with Redis down = %v, want a Redis error", err)
	}
	if h.sent.Load() != sent+1 {
		t.Fatalf("probe sent %d commands, want 1", h.sent.Load()-sent)
	}
	wantSkipped(3)
	if w := h.logs.matching(slog.LevelWarn, "Redis failing"); len(w) != 1 {
		t.Fatalf("breaker warnings = %q, want still one", w)
	}

	// Redis back (empty: no persistence): the next probe closes the breaker.
	h.srv.Restart(t)
	h.clock.Advance(cooldown)
	wantMiss(t, h.cache, k)
	mustSet(t, h.cache, k, e)
	wantHit(t, h.cache, k, e)
	if i := h.logs.matching(slog.LevelInfo, "Redis answers again"); len(i) != 1 {
		t.Fatalf("breaker infos = %q, want one", i)
	}
	if n := len(h.logs.matching(slog.LevelWarn, "")); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, h.logs.all())
	}
	h.wantCounts(t, map[[2]string]int{
		{opGet, resultHit}:     2,
		{opGet, resultMiss}:    1,
		{opGet, resultError}:   3, // two of the failures, and the probe
		{opGet, resultSkipped}: 14,
		{opSet, resultStored}:  2,
		{opSet, resultError}:   1,
		{opSet, resultSkipped}: 14,
	})
	if err := h.cache.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestRedisSlow pauses Redis: a Get gives up after the timeout with an
// error, and the error says it timed out. (Redis 7.0 postpones CLIENT
// UNPAUSE too, so the pause is short and left to end by itself.)
func TestRedisSlow(t *testing.T) {
	t.Parallel()
	const timeout, pause = 100 * time.Millisecond, 2 * time.Second
	h := newHarness(t, func(c *Config) { c.Timeout = timeout })
	k := userKey("user")
	mustSet(t, h.cache, k, testEntry("tok")) // a pooled connection, so the pause bites on GET

	if err := h.raw.ClientPause(t.Context(), pause).Err(); err != nil {
		t.Fatal(err)
	}
	// Redis would answer when the pause ends: an error means we gave up
	// first.
	_, _, err := h.cache.Get(t.Context(), k)
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with Redis paused = %v, want a timeout", err)
	}
	if !isTimeout(err) {
		t.Errorf("Get error %v is not a timeout", err)
	}
	// The raw client's PING waits out the pause.
	if err := h.raw.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	wantHit(t, h.cache, k, testEntry("tok"))
	h.wantCounts(t, map[[2]string]int{{opSet, resultStored}: 1, {opGet, resultError}: 1, {opGet, resultHit}: 1})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// TestCallerGivesUp: calls whose caller's context has ended fail, but say
// nothing about Redis, so they do not open the breaker.
func TestCallerGivesUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.BreakerFailures = 2 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	k := userKey("user")
	for range 5 {
		if _, _, err := h.cache.Get(ctx, k); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get with a cancelled context = %v, want context.Canceled", err)
		}
	}
	wantMiss(t, h.cache, k)
	if logs := h.logs.all(); logs != "" {
		t.Errorf("logged:\n%s", logs)
	}
}

func TestDurationMetric(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := userKey("user")
	mustSet(t, h.cache, k, testEntry("tok"))
	wantHit(t, h.cache, k, testEntry("tok"))
	wantMiss(t, h.cache, userKey("other"))
	want := `
# HELP obo_gateway_token_cache_l2_requests_total Requests to the shared (Redis) token cache, by operation (get, set) and result (hit, miss, undecryptable, stored, error, skipped).
# TYPE obo_gateway_token_cache_l2_requests_total counter
obo_gateway_token_cache_l2_requests_total{op="get",result="error"} 0
obo_gateway_token_cache_l2_requests_total{op="get",result="hit"} 1
obo_gateway_token_cache_l2_requests_total{op="get",result="miss"} 1
obo_gateway_token_cache_l2_requests_total{op="get",result="skipped"} 0
obo_gateway_token_cache_l2_requests_total{op="get",result="undecryptable"} 0
obo_gateway_token_cache_l2_requests_total{op="set",result="error"} 0
obo_gateway_token_cache_l2_requests_total{op="set",result="skipped"} 0
obo_gateway_token_cache_l2_requests_total{op="set",result="stored"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "obo_gateway_token_cache_l2_requests_total"); err != nil {
		t.Error(err)
	}
	const duration = "obo_gateway_token_cache_l2_duration_seconds"
	get := testkit.HistogramCount(t, h.reg, duration, map[string]string{"op": opGet})
	set := testkit.HistogramCount(t, h.reg, duration, map[string]string{"op": opSet})
	if get != 2 || set != 1 {
		t.Errorf("duration sample counts = get %d, set %d; want get 2, set 1", get, set)
	}
}

func TestNew(t *testing.T) {
	kr := mustKeyring(t, "k1:"+newKeyB64(t), "k1")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no addr", Config{Keys: kr}, "Addr is required"},
		{"bad addr", Config{Addr: "localhost", Keys: kr}, "not host:port"},
		{"no keys", Config{Addr: "127.0.0.1:6379"}, "Keys is required"},
		{"negative timeout", Config{Addr: "127.0.0.1:6379", Keys: kr, Timeout: -1}, "Timeout"},
		{"negative failures", Config{Addr: "127.0.0.1:6379", Keys: kr, BreakerFailures: -1}, "BreakerFailures"},
		{"negative cooldown", Config{Addr: "127.0.0.1:6379", Keys: kr, BreakerCooldown: -1}, "BreakerCooldown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}

	// Defaults; and New does not contact Redis (nothing listens on port 1).
	c, err := New(Config{Addr: "127.0.0.1:1", Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.prefix != DefaultKeyPrefix || c.timeout != DefaultTimeout || c.breaker.threshold != DefaultBreakerFailures || c.breaker.cooldown != DefaultBreakerCooldown {
		t.Errorf("defaults: prefix %q, timeout %s, breaker %d/%s", c.prefix, c.timeout, c.breaker.threshold, c.breaker.cooldown)
	}
	// go-redis normalises MaxRetries -1 (none) to 0 once the client is made.
	if opt := c.client.Options(); opt.MaxRetries != 0 || opt.DialerRetries != 1 || !opt.ContextTimeoutEnabled ||
		opt.DialTimeout != DefaultTimeout || opt.ReadTimeout != DefaultTimeout || opt.WriteTimeout != DefaultTimeout || opt.PoolTimeout != DefaultTimeout {
		t.Errorf("go-redis options not bounded by the timeout: %+v", opt)
	}
	if err := c.Ping(t.Context()); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
}

func TestConfigRedactsPassword(t *testing.T) {
	cfg := Config{Addr: "redis:6380", Username: "gw", Password: "hunter2-redis-password"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "redis", cfg)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %s", cfg, cfg, cfg), buf.String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "REDACTED") {
			t.Errorf("%q: password not redacted", s)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const workers, rounds = 16, 50
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := userKey(fmt.Sprintf("user-%d", i%5)) // shared between workers
				e := testEntry(fmt.Sprintf("token-%d", i%5))
				if err := h.cache.Set(t.Context(), k, e, time.Minute); err != nil {
					errs <- fmt.Errorf("worker %d: Set: %w", w, err)
					return
				}
				got, ok, err := h.cache.Get(t.Context(), k)
				if err != nil || !ok || got.AccessToken != e.AccessToken {
					errs <- fmt.Errorf("worker %d: Get = %+v, %t, %v", w, got, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h.wantCounts(t, map[[2]string]int{{opSet, resultStored}: workers * rounds, {opGet, resultHit}: workers * rounds})
}

// TestTLSAndPassword: the Cache speaks TLS, verifying the server by Addr's
// host, and authenticates; the wrong password, plain TCP or an untrusted
// certificate fail.
func TestTLSAndPassword(t *testing.T) {
	t.Parallel()
	ca, err := pki.NewCA("redisl2 test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(time.Hour) // 127.0.0.1, ::1, localhost
	if err != nil {
		t.Fatal(err)
	}
	const password = "redis-password-for-tests"
	srv := redistest.StartServerWith(t, redistest.Options{Password: password, TLS: &cert})
	kr := mustKeyring(t, "k1:"+newKeyB64(t), "k1")
	newCache := func(cfg Config) *Cache {
		t.Helper()
		cfg.Addr, cfg.Keys, cfg.Timeout = srv.Addr, kr, testTimeout
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	k, e := userKey("user"), testEntry("tok")

	good := newCache(Config{Password: password, TLS: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}})
	if err := good.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	mustSet(t, good, k, e)
	wantHit(t, good, k, e)

	// The default user with an explicit username works too.
	withUser := newCache(Config{Username: "default", Password: password, TLS: &tls.Config{RootCAs: ca.Pool()}})
	wantHit(t, withUser, k, e)

	for name, cfg := range map[string]Config{
		"wrong password": {Password: "nope", TLS: &tls.Config{RootCAs: ca.Pool()}},
		"no password":    {TLS: &tls.Config{RootCAs: ca.Pool()}},
		"plain TCP":      {Password: password},
		"untrusted CA":   {Password: password, TLS: &tls.Config{}},
		"wrong name":     {Password: password, TLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "redis.example.com"}},
	} {
		c := newCache(cfg)
		if _, _, err := c.Get(t.Context(), k); err == nil {
			t.Errorf("%s: Get succeeded", name)
		} else if strings.Contains(err.Error(), password) {
			t.Errorf("%s: error %q holds the password", name, err)
		}
	}
}
