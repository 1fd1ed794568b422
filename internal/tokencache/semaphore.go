package tokencache

import (
	"context"
	"sync/atomic"
	"time"
)

// semaphore bounds the exchanges in progress, with a bounded queue and a
// bounded wait. It is safe for concurrent use.
type semaphore struct {
	slots     chan struct{}
	waiting   atomic.Int64
	maxQueued int64
	timeout   time.Duration
}

func newSemaphore(n, maxQueued int, timeout time.Duration) *semaphore {
	return &semaphore{slots: make(chan struct{}, n), maxQueued: int64(maxQueued), timeout: timeout}
}

// acquire takes a place, waiting at most the timeout, and not at all when
// maxQueued others wait already. It reports whether it got one.
func (s *semaphore) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.waiting.Add(1) > s.maxQueued {
		s.waiting.Add(-1)
		return false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *semaphore) release() { <-s.slots }

func (s *semaphore) inProgress() int { return len(s.slots) }

func (s *semaphore) queued() int64 { return s.waiting.Load() }
