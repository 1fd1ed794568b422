package tokencache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// fakeExchanger counts exchanges; each waits for release (when set) and
// answers a token that expires in lifetime.
type fakeExchanger struct {
	calls    atomic.Int32
	started  chan struct{} // receives once per exchange started (buffered)
	release  chan struct{} // closed to let exchanges finish; nil = at once
	err      error
	lifetime time.Duration
	now      func() time.Time
	sawCtx   chan context.Context
}

func (f *fakeExchanger) Exchange(ctx context.Context, req obo.Request) (obo.Token, error) {
	n := f.calls.Add(1)
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.sawCtx != nil {
		f.sawCtx <- ctx
	}
	if f.release != nil {
		<-f.release
	}
	if f.err != nil {
		return obo.Token{}, f.err
	}
	return obo.Token{AccessToken: fmt.Sprintf("downstream-%d-for-%s", n, req.Assertion), ExpiresOn: f.now().Add(f.lifetime),
		Source: obo.SourceExchange, Took: time.Millisecond}, nil
}

func newTestOBO(t *testing.T, next Exchanger, clock *testkit.Clock, l2 L2) (*OBO, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	c, err := NewOBO(OBOConfig{Next: next, Budget: 1 << 20, RefreshMargin: 5 * time.Minute, L2: l2, Metrics: m, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

// sameToken compares the token, not where it came from.
func sameToken(a, b obo.Token) bool {
	return a.AccessToken == b.AccessToken && a.ExpiresOn.Equal(b.ExpiresOn)
}

func req(user string) obo.Request {
	return obo.Request{Assertion: "token-of-" + user, TenantID: "t1", Scopes: []string{"api://orders/.default"}, Route: "orders"}
}

func TestHitAfterMissAndExpiryMinusMargin(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now}
	c, m := newTestOBO(t, x, clock, nil)
	ctx := context.Background()
	t1, err := c.Exchange(ctx, req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := c.Exchange(ctx, req("alice"))
	if !sameToken(t1, t2) || x.calls.Load() != 1 {
		t.Fatalf("second call: same=%v exchanges=%d; want a cache hit", sameToken(t1, t2), x.calls.Load())
	}
	if t1.Source != obo.SourceExchange || t2.Source != SourceL1 || t2.Took != 0 {
		t.Errorf("sources %q (took %v), %q (took %v); want exchange, then l1", t1.Source, t1.Took, t2.Source, t2.Took)
	}
	// Alive until 55 minutes (expiry minus the 5 minute margin), not after.
	clock.Advance(54 * time.Minute)
	if _, _ = c.Exchange(ctx, req("alice")); x.calls.Load() != 1 {
		t.Error("the entry died before expiry minus the margin")
	}
	clock.Advance(time.Minute)
	if _, _ = c.Exchange(ctx, req("alice")); x.calls.Load() != 2 {
		t.Error("the entry outlived expiry minus the margin")
	}
	if got := testutil.ToFloat64(m.l1Hit); got != 2 {
		t.Errorf("l1 hits = %v, want 2", got)
	}
}

func TestTokenTooCloseToExpiryIsNotCached(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: 4 * time.Minute, now: clock.Now}
	c, _ := newTestOBO(t, x, clock, nil)
	for range 3 {
		if _, err := c.Exchange(context.Background(), req("alice")); err != nil {
			t.Fatal(err)
		}
	}
	if x.calls.Load() != 3 || c.Len() != 0 {
		t.Errorf("exchanges=%d entries=%d; a token expiring within the margin must not be cached", x.calls.Load(), c.Len())
	}
}

func TestKeys(t *testing.T) {
	base := req("alice")
	hashed := base
	hashed.AssertionSHA256 = sha256.Sum256([]byte(base.Assertion))
	if KeyOf(hashed) != KeyOf(base) {
		t.Error("a caller-supplied assertion hash gives another key than hashing the assertion")
	}
	same := base
	same.Scopes = []string{"API://Orders/.default"}
	same.Route = "other-route"
	if KeyOf(base) != KeyOf(same) {
		t.Error("scope case or the route changed the key")
	}
	two := base
	two.Scopes = []string{"api://orders/Orders.Write", "api://orders/Orders.Read"}
	swapped := base
	swapped.Scopes = []string{"api://orders/Orders.Read", "api://orders/Orders.Write"}
	if KeyOf(two) != KeyOf(swapped) {
		t.Error("scope order changed the key")
	}
	for name, other := range map[string]obo.Request{
		"assertion": {Assertion: "token-of-bob", TenantID: "t1", Scopes: base.Scopes},
		"tenant":    {Assertion: base.Assertion, TenantID: "t2", Scopes: base.Scopes},
		"scopes":    {Assertion: base.Assertion, TenantID: "t1", Scopes: []string{"api://hr/.default"}},
		"claims":    {Assertion: base.Assertion, TenantID: "t1", Scopes: base.Scopes, Claims: `{"access_token":{}}`},
	} {
		if KeyOf(other) == KeyOf(base) {
			t.Errorf("a different %s gave the same key", name)
		}
	}
}

// TestKeyFormat pins how a key is made: replicas of two versions share the
// Redis cache during a rolling update, so a change of format is a change of
// every key (and must be deliberate).
func TestKeyFormat(t *testing.T) {
	at := sha256.Sum256([]byte("token-of-alice"))
	var in []byte
	in = append(in, at[:]...)
	in = append(in, 0)
	in = append(in, "tenant-1"...)
	in = append(in, 0)
	in = append(in, "api://a/x api://b/y"...)
	in = append(in, 0)
	in = append(in, `{"access_token":{"nbf":{"essential":true}}}`...)
	want := Key(sha256.Sum256(in))
	scopes := []string{"API://b/Y", "api://a/x"}
	got := KeyOf(obo.Request{Assertion: "token-of-alice", TenantID: "Tenant-1", Scopes: scopes, Claims: `{"access_token":{"nbf":{"essential":true}}}`})
	if got != want {
		t.Errorf("KeyOf = %x, want %x", got, want)
	}
	if scopes[0] != "API://b/Y" || scopes[1] != "api://a/x" {
		t.Errorf("KeyOf changed the caller's scopes: %q", scopes)
	}
}

func TestConcurrentMissesShareOneExchange(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now, started: make(chan struct{}, 100), release: make(chan struct{})}
	c, m := newTestOBO(t, x, clock, nil)
	const n = 50
	results := make(chan obo.Token, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Exchange(context.Background(), req("alice"))
			if err == nil {
				results <- tok
			}
		}()
	}
	<-x.started
	// Every waiter is parked behind the one exchange before it finishes.
	waitShared(t, func() bool { return testutil.ToFloat64(m.l1Miss) == n })
	close(x.release)
	wg.Wait()
	close(results)
	var first obo.Token
	count := 0
	sources := map[string]int{}
	for tok := range results {
		if count == 0 {
			first = tok
		}
		if !sameToken(tok, first) {
			t.Error("waiters got different tokens")
		}
		sources[tok.Source]++
		count++
	}
	if count != n || x.calls.Load() != 1 {
		t.Errorf("%d answers from %d exchanges; want %d from 1", count, x.calls.Load(), n)
	}
	// One request made the exchange; the others joined it.
	if sources[obo.SourceExchange] != 1 || sources[SourceExchangeShared] != n-1 {
		t.Errorf("sources %v, want 1 exchange and %d exchange_shared", sources, n-1)
	}
}

func TestSharedErrorReachesEveryWaiterAndIsNotCached(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	boom := &obo.Error{Status: 400, Code: "invalid_grant", Codes: []int{65001}}
	x := &fakeExchanger{now: clock.Now, err: boom, started: make(chan struct{}, 100), release: make(chan struct{})}
	c, m := newTestOBO(t, x, clock, nil)
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() { _, err := c.Exchange(context.Background(), req("alice")); errs <- err }()
	}
	<-x.started
	waitShared(t, func() bool { return testutil.ToFloat64(m.l1Miss) == n })
	close(x.release)
	for range n {
		if err := <-errs; !errors.Is(err, boom) {
			t.Errorf("waiter got %v, want the exchange's error", err)
		}
	}
	x.err = nil
	if _, err := c.Exchange(context.Background(), req("alice")); err != nil {
		t.Errorf("after a failure the next request still fails: %v", err)
	}
}

func TestWaiterGivingUpDoesNotCancelTheExchange(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now, started: make(chan struct{}, 1), release: make(chan struct{}),
		sawCtx: make(chan context.Context, 1)}
	c, _ := newTestOBO(t, x, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Exchange(ctx, req("alice")); first <- err }()
	<-x.started
	exCtx := <-x.sawCtx
	second := make(chan error, 1)
	go func() { _, err := c.Exchange(context.Background(), req("alice")); second <- err }()
	cancel() // the request that started the exchange gives up
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("the first caller got %v, want context.Canceled", err)
	}
	if exCtx.Err() != nil {
		t.Error("the exchange's context was cancelled with its first caller")
	}
	close(x.release)
	if err := <-second; err != nil {
		t.Errorf("the other waiter got %v", err)
	}
	if x.calls.Load() != 1 {
		t.Errorf("exchanges = %d, want 1", x.calls.Load())
	}
}

// waitShared polls a condition that becomes true once goroutines are parked
// (bounded; no fixed sleep decides the outcome).
func waitShared(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// memL2 is an in-memory L2 for the cache's own logic; the Redis L2 has its own tests.
type memL2 struct {
	mu      sync.Mutex
	m       map[Key]Entry
	ttl     map[Key]time.Duration
	err     error
	getN    int
	written chan Key
}

func (l *memL2) Get(_ context.Context, k Key) (Entry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.getN++
	if l.err != nil {
		return Entry{}, false, l.err
	}
	e, ok := l.m[k]
	return e, ok, nil
}

func (l *memL2) Set(_ context.Context, k Key, e Entry, ttl time.Duration) error {
	l.mu.Lock()
	if l.err == nil {
		l.m[k], l.ttl[k] = e, ttl
	}
	err := l.err
	l.mu.Unlock()
	if l.written != nil {
		l.written <- k
	}
	return err
}

func TestL2(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	l2 := &memL2{m: map[Key]Entry{}, ttl: map[Key]time.Duration{}, written: make(chan Key, 10)}
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now}
	replicaA, _ := newTestOBO(t, x, clock, l2)
	replicaB, mB := newTestOBO(t, x, clock, l2)

	tokA, err := replicaA.Exchange(context.Background(), req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	k := <-l2.written
	if l2.ttl[k] != 55*time.Minute {
		t.Errorf("L2 TTL = %v, want the token's lifetime minus the margin (55m)", l2.ttl[k])
	}
	tokB, err := replicaB.Exchange(context.Background(), req("alice"))
	if err != nil || !sameToken(tokB, tokA) || x.calls.Load() != 1 {
		t.Fatalf("replica B: same token=%v exchanges=%d err=%v; want the token from L2", sameToken(tokB, tokA), x.calls.Load(), err)
	}
	if tokB.Source != SourceL2 {
		t.Errorf("replica B's source %q, want l2", tokB.Source)
	}
	if got := testutil.ToFloat64(mB.lookups.WithLabelValues("l2", "hit")); got != 1 {
		t.Errorf("replica B l2 hits = %v", got)
	}

	// L2 down: requests carry on with exchanges and L1.
	l2.mu.Lock()
	l2.err = errors.New("redis: connection refused")
	l2.mu.Unlock()
	if _, err := replicaB.Exchange(context.Background(), req("bob")); err != nil {
		t.Fatalf("with L2 down: %v", err)
	}
	<-l2.written
	if _, err := replicaB.Exchange(context.Background(), req("bob")); err != nil || x.calls.Load() != 2 {
		t.Errorf("with L2 down the second request did not hit L1: exchanges=%d err=%v", x.calls.Load(), err)
	}
	if got := testutil.ToFloat64(mB.lookups.WithLabelValues("l2", "error")); got != 1 {
		t.Errorf("l2 errors = %v, want 1", got)
	}

	// An L2 entry too close to expiry is not used.
	stale := req("carol")
	l2.mu.Lock()
	l2.err = nil
	l2.m[KeyOf(stale)] = Entry{AccessToken: "stale", ExpiresOn: clock.Now().Add(time.Minute)}
	l2.mu.Unlock()
	tok, err := replicaA.Exchange(context.Background(), stale)
	if err != nil || tok.AccessToken == "stale" {
		t.Errorf("a stale L2 entry was served: %v %v", tok.AccessToken, err)
	}
}
