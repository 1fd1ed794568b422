package redisl2

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := &breaker{threshold: 3, cooldown: 5 * time.Second}
	mustAllow := func(now time.Time) ticket {
		t.Helper()
		tk, ok := b.allow(now)
		if !ok {
			t.Fatalf("allow(%s) refused", now.Sub(t0))
		}
		return tk
	}
	mustRefuse := func(now time.Time) {
		t.Helper()
		if _, ok := b.allow(now); ok {
			t.Fatalf("allow(%s) allowed", now.Sub(t0))
		}
	}

	// A success in between resets the count.
	b.failed(mustAllow(t0), t0)
	b.failed(mustAllow(t0), t0)
	b.succeeded(mustAllow(t0))
	b.failed(mustAllow(t0), t0)
	if opened := b.failed(mustAllow(t0), t0); opened {
		t.Fatal("opened after 2 consecutive failures")
	}
	// A straggler admitted while closed...
	straggler := mustAllow(t0)
	if opened := b.failed(mustAllow(t0), t0); !opened {
		t.Fatal("not opened after 3 consecutive failures")
	}
	// ...failing after the breaker opened changes nothing.
	if opened := b.failed(straggler, t0); opened {
		t.Fatal("a straggler's failure reported opening again")
	}
	mustRefuse(t0)
	mustRefuse(t0.Add(5*time.Second - 1))

	// After the cooldown one probe goes through; others wait for it.
	t1 := t0.Add(5 * time.Second)
	probe := mustAllow(t1)
	mustRefuse(t1)
	// The probe's caller gave up: the next call may probe.
	b.abandoned(probe)
	probe = mustAllow(t1)
	// The probe fails: another cooldown, without reporting an opening.
	if opened := b.failed(probe, t1); opened {
		t.Fatal("a failed probe reported opening")
	}
	mustRefuse(t1)
	mustRefuse(t1.Add(5*time.Second - 1))

	// The next probe succeeds: closed.
	t2 := t1.Add(5 * time.Second)
	if closed := b.succeeded(mustAllow(t2)); !closed {
		t.Fatal("a successful probe did not close the breaker")
	}
	mustAllow(t2)
	if closed := b.succeeded(mustAllow(t2)); closed {
		t.Fatal("closed twice")
	}
	// And it counts from zero again.
	b.failed(mustAllow(t2), t2)
	b.failed(mustAllow(t2), t2)
	mustAllow(t2)
}
