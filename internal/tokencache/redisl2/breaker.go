package redisl2

import (
	"sync"
	"time"
)

// breaker is a consecutive-failure circuit breaker. Closed, every call
// goes through; after threshold consecutive failures it opens and refuses
// calls for cooldown; then it lets one call through as a probe: success
// closes it, failure opens it for another cooldown. It is safe for
// concurrent use.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	failures int // consecutive, while closed
	open     bool
	until    time.Time // while open: no probe before this
	probing  bool      // while open: a probe is in flight
}

// ticket is what allow hands a call that may go ahead; the call reports
// its outcome with it.
type ticket struct{ probe bool }

// allow reports whether a call may go to Redis now.
func (b *breaker) allow(now time.Time) (ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return ticket{}, true
	}
	if b.probing || now.Before(b.until) {
		return ticket{}, false
	}
	b.probing = true
	return ticket{probe: true}, true
}

// succeeded records that Redis answered. It reports whether that closed
// the breaker.
func (b *breaker) succeeded(t ticket) (closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
	if t.probe {
		b.probing = false
	}
	if !b.open {
		return false
	}
	// Any answer, the probe's or a straggler's from before the breaker
	// opened, shows Redis is back.
	b.open, b.probing = false, false
	return true
}

// failed records that Redis did not answer. It reports whether that
// opened a closed breaker (a failed probe re-opens it without reporting).
func (b *breaker) failed(t ticket, now time.Time) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		if t.probe {
			b.probing = false
			b.until = now.Add(b.cooldown)
		}
		// A straggler admitted before the breaker opened changes nothing.
		return false
	}
	b.failures++
	if b.failures < b.threshold {
		return false
	}
	b.open, b.probing, b.until, b.failures = true, false, now.Add(b.cooldown), 0
	return true
}

// abandoned records a call whose caller gave up before Redis answered:
// it says nothing about Redis, but a probe frees its slot so the next
// call can probe.
func (b *breaker) abandoned(t ticket) {
	if !t.probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}
