// Package lru is a sharded cache bounded by an estimate of its memory, with
// an expiry per entry: the store behind the downstream-token cache and the
// cache of verified inbound tokens.
package lru

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync"
	"time"
)

// Key is a cache key: a SHA-256 sum, so its first bytes pick a shard evenly.
type Key [32]byte

// EntryOverhead estimates the bytes an entry costs beyond its value's own
// size: the entry's links, key, expiry and size (64 bytes) and its map slot
// (16 bytes, and free slots: a map is between 7/16 and 7/8 full).
const EntryOverhead = 96

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
//
// An entry is one object: the recency list is threaded through the entries
// (no separate list element), and the map is keyed by 8 bytes of the key
// (the entry holds all 32, compared on every hit). Every object a cached
// user costs is one more for each garbage collection to mark.
type LRU[V any] struct {
	shards  []lruShard[V]
	mask    uint64
	now     func() time.Time
	onEvict func(string)
}

type lruShard[V any] struct {
	mu     sync.Mutex
	items  map[uint64]*lruEntry[V]
	head   lruEntry[V] // sentinel: head.next is the most recently used, head.prev the least
	bytes  int64
	budget int64
}

type lruEntry[V any] struct {
	prev, next *lruEntry[V]
	key        Key
	expires    int64 // Unix nanoseconds
	size       int64
	val        V
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
		s := &c.shards[i]
		s.items = map[uint64]*lruEntry[V]{}
		s.budget = per
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

// shard picks the shard with the key's first 8 bytes; mapKey, the slot in
// it, with the next 8.
func (c *LRU[V]) shard(k Key) *lruShard[V] {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])&c.mask]
}

func mapKey(k Key) uint64 { return binary.LittleEndian.Uint64(k[8:16]) }

// Get returns the value of k if present and not expired.
func (c *LRU[V]) Get(k Key) (V, bool) {
	s := c.shard(k)
	now := c.now().UnixNano()
	s.mu.Lock()
	e, ok := s.items[mapKey(k)]
	if !ok || e.key != k {
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	if now >= e.expires {
		c.removeLocked(s, e)
		s.mu.Unlock()
		c.evicted("expired")
		var zero V
		return zero, false
	}
	s.unlink(e)
	s.pushFront(e)
	v := e.val
	s.mu.Unlock()
	return v, true
}

// Add stores v under k until expires; size is the value's own bytes
// (EntryOverhead is added). An entry larger than a shard's budget is not
// stored. An entry whose map slot another key holds (8 equal bytes out of 32:
// about one chance in 10^19 per pair) replaces it.
func (c *LRU[V]) Add(k Key, v V, size int64, expires time.Time) {
	size += EntryOverhead
	s := c.shard(k)
	if size > s.budget || !c.now().Before(expires) {
		return
	}
	evicted := 0
	e := &lruEntry[V]{key: k, val: v, size: size, expires: expires.UnixNano()}
	s.mu.Lock()
	if old, ok := s.items[mapKey(k)]; ok {
		c.removeLocked(s, old)
	}
	s.items[mapKey(k)] = e
	s.pushFront(e)
	s.bytes += size
	for s.bytes > s.budget {
		c.removeLocked(s, s.head.prev)
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
	if e, ok := s.items[mapKey(k)]; ok && e.key == k {
		c.removeLocked(s, e)
	}
	s.mu.Unlock()
}

func (s *lruShard[V]) pushFront(e *lruEntry[V]) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *lruShard[V]) unlink(e *lruEntry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *LRU[V]) removeLocked(s *lruShard[V], e *lruEntry[V]) {
	s.unlink(e)
	delete(s.items, mapKey(e.key))
	s.bytes -= e.size
}

func (c *LRU[V]) evicted(reason string) {
	if c.onEvict != nil {
		c.onEvict(reason)
	}
}

// Len is the number of entries held (expired ones included until found).
// It is summed over the shards: read at scrape time, not kept in a counter
// that every Add on every core would write.
func (c *LRU[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

// Bytes is the estimated memory held.
func (c *LRU[V]) Bytes() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}
