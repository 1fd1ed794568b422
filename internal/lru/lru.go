// Package lru is a sharded cache bounded by an estimate of its memory, with
// an expiry per entry: the store behind the downstream-token cache and the
// cache of verified inbound tokens.
package lru

import (
	"container/list"
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Key is a cache key: a SHA-256 sum, so its first bytes pick a shard evenly.
type Key [32]byte

// EntryOverhead estimates the bytes an entry costs beyond its value's own
// size: the map slot, the list element and the entry struct.
const EntryOverhead = 224

// Config configures an LRU.
type Config struct {
	// Budget bounds the estimated bytes held; least recently used entries are
	// evicted beyond it. Required.
	Budget int64
	// Shards splits the cache so lookups on different cores do not contend;
	// default 16 × GOMAXPROCS, rounded up to a power of two.
	Shards int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// OnEvict, if set, is called (outside any lock) for each entry removed
	// to make room ("capacity") or found expired ("expired").
	OnEvict func(reason string)
}

// LRU is a sharded cache bounded by an estimate of its memory, with an
// expiry per entry. Keys are SHA-256 sums, so their first bytes pick the
// shard evenly. It is safe for concurrent use; a Get costs a map lookup
// under one shard's lock, whatever the number of entries.
type LRU[V any] struct {
	shards  []lruShard[V]
	mask    uint64
	now     func() time.Time
	onEvict func(string)
	entries atomic.Int64
	bytes   atomic.Int64
}

type lruShard[V any] struct {
	mu     sync.Mutex
	items  map[Key]*list.Element
	order  list.List // front = most recently used
	bytes  int64
	budget int64
}

type lruEntry[V any] struct {
	key     Key
	val     V
	size    int64
	expires time.Time
}

// New returns an empty cache.
func New[V any](cfg Config) *LRU[V] {
	n := cfg.Shards
	if n <= 0 {
		n = 16 * runtime.GOMAXPROCS(0)
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &LRU[V]{shards: make([]lruShard[V], n), mask: uint64(n - 1), now: cfg.Now, onEvict: cfg.OnEvict}
	per := max(cfg.Budget/int64(n), 1)
	for i := range c.shards {
		c.shards[i].items = map[Key]*list.Element{}
		c.shards[i].budget = per
	}
	return c
}

func (c *LRU[V]) shard(k Key) *lruShard[V] {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])&c.mask]
}

// Get returns the value of k if present and not expired.
func (c *LRU[V]) Get(k Key) (V, bool) {
	s := c.shard(k)
	now := c.now()
	s.mu.Lock()
	el, ok := s.items[k]
	if !ok {
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !now.Before(e.expires) {
		c.removeLocked(s, el)
		s.mu.Unlock()
		c.evicted("expired")
		var zero V
		return zero, false
	}
	s.order.MoveToFront(el)
	v := e.val
	s.mu.Unlock()
	return v, true
}

// Add stores v under k until expires; size is the value's own bytes
// (EntryOverhead is added). An entry larger than a shard's budget is not stored.
func (c *LRU[V]) Add(k Key, v V, size int64, expires time.Time) {
	size += EntryOverhead
	s := c.shard(k)
	if size > s.budget || !c.now().Before(expires) {
		return
	}
	evicted := 0
	s.mu.Lock()
	if el, ok := s.items[k]; ok {
		c.removeLocked(s, el)
	}
	e := &lruEntry[V]{key: k, val: v, size: size, expires: expires}
	s.items[k] = s.order.PushFront(e)
	s.bytes += size
	c.entries.Add(1)
	c.bytes.Add(size)
	for s.bytes > s.budget {
		c.removeLocked(s, s.order.Back())
		evicted++
	}
	s.mu.Unlock()
	for range evicted {
		c.evicted("capacity")
	}
}

// Remove deletes k.
func (c *LRU[V]) Remove(k Key) {
	s := c.shard(k)
	s.mu.Lock()
	if el, ok := s.items[k]; ok {
		c.removeLocked(s, el)
	}
	s.mu.Unlock()
}

func (c *LRU[V]) removeLocked(s *lruShard[V], el *list.Element) {
	e := s.order.Remove(el).(*lruEntry[V])
	delete(s.items, e.key)
	s.bytes -= e.size
	c.entries.Add(-1)
	c.bytes.Add(-e.size)
}

func (c *LRU[V]) evicted(reason string) {
	if c.onEvict != nil {
		c.onEvict(reason)
	}
}

// Len is the number of entries held (expired ones included until found).
func (c *LRU[V]) Len() int { return int(c.entries.Load()) }

// Bytes is the estimated memory held.
func (c *LRU[V]) Bytes() int64 { return c.bytes.Load() }
