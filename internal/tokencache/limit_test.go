package tokencache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// MaxConcurrent exchanges run at once, MaxQueued wait up to QueueTimeout,
// the rest fail with ErrBusy at once; cache hits never wait; requests for
// one token share one place.
func TestExchangeLimit(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now, started: make(chan struct{}, 16), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	c, err := NewOBO(OBOConfig{Next: x, Budget: 1 << 20, Metrics: NewMetrics(reg), Now: clock.Now,
		MaxConcurrent: 2, MaxQueued: 1, QueueTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A cached user, before the burst.
	close(x.release)
	if _, err := c.Exchange(ctx, req("cached")); err != nil {
		t.Fatal(err)
	}
	<-x.started
	x.release = make(chan struct{})

	// Two exchanges take the places; a third request for one of the same
	// tokens joins it rather than taking a place.
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i, u := range []string{"u1", "u2"} {
		wg.Go(func() { _, results[i] = c.Exchange(ctx, req(u)) })
		<-x.started
	}
	wg.Go(func() { _, results[2] = c.Exchange(ctx, req("u1")) })
	// The fourth waits in the queue (one place).
	wg.Go(func() { _, results[3] = c.Exchange(ctx, req("u3")) })
	deadline := time.Now().Add(10 * time.Second)
	for testkit.GaugeValue(t, reg, "obo_gateway_obo_exchanges_queued", nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fourth exchange did not queue")
		}
		time.Sleep(time.Millisecond)
	}
	if v := testkit.GaugeValue(t, reg, "obo_gateway_obo_exchanges_in_progress", nil); v != 2 {
		t.Errorf("in progress = %v, want 2", v)
	}
	// The queue is full: the fifth fails at once.
	if _, err := c.Exchange(ctx, req("u4")); !errors.Is(err, ErrBusy) {
		t.Errorf("fifth exchange: %v, want ErrBusy", err)
	}
	// A hit is answered while all this waits.
	hit := make(chan error, 1)
	go func() { _, err := c.Exchange(ctx, req("cached")); hit <- err }()
	select {
	case err := <-hit:
		if err != nil {
			t.Errorf("hit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cache hit waited behind the exchanges")
	}

	close(x.release)
	<-x.started // the queued one ran
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if n := x.calls.Load(); n != 4 { // cached, u1, u2, u3
		t.Errorf("%d exchanges, want 4", n)
	}
}

func TestExchangeQueueTimeout(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	x := &fakeExchanger{lifetime: time.Hour, now: clock.Now, started: make(chan struct{}, 16), release: make(chan struct{})}
	c, err := NewOBO(OBOConfig{Next: x, Budget: 1 << 20, Now: clock.Now, MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Exchange(context.Background(), req("first")); done <- err }()
	<-x.started
	if _, err := c.Exchange(context.Background(), req("second")); !errors.Is(err, ErrBusy) {
		t.Errorf("second exchange: %v, want ErrBusy after the queue timeout", err)
	}
	close(x.release)
	if err := <-done; err != nil {
		t.Error(err)
	}
	// The place is free again.
	if _, err := c.Exchange(context.Background(), req("third")); err != nil {
		t.Errorf("third exchange: %v", err)
	}
}

func TestNewOBORefusesNegativeLimits(t *testing.T) {
	for _, cfg := range []OBOConfig{{MaxConcurrent: -1}, {MaxQueued: -1}, {QueueTimeout: -1}} {
		cfg.Next, cfg.Budget = &fakeExchanger{}, 1<<20
		if _, err := NewOBO(cfg); err == nil {
			t.Errorf("NewOBO(%+v) accepted a negative limit", cfg)
		}
	}
}
