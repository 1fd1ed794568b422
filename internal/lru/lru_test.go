package lru

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func key(i int) Key { return sha256.Sum256([]byte(fmt.Sprint(i))) }

func TestGetAddExpire(t *testing.T) {
	c0 := testkit.NewClock(time.Unix(1000, 0))
	var reasons []string
	c := New[string](Config{Budget: 1 << 20, Shards: 4, Now: c0.Now, OnEvict: func(r string) { reasons = append(reasons, r) }})
	c.Add(key(1), "one", 3, c0.Now().Add(time.Minute))
	if v, ok := c.Get(key(1)); !ok || v != "one" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if _, ok := c.Get(key(2)); ok {
		t.Error("a missing key was found")
	}
	c0.Advance(time.Minute)
	if _, ok := c.Get(key(1)); ok {
		t.Error("an expired entry was returned")
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after expiry Len=%d Bytes=%d", c.Len(), c.Bytes())
	}
	if len(reasons) != 1 || reasons[0] != "expired" {
		t.Errorf("evictions = %v", reasons)
	}
	c.Add(key(3), "past", 1, c0.Now().Add(-time.Second))
	if c.Len() != 0 {
		t.Error("an already expired entry was stored")
	}
	c.Add(key(4), "a", 1, c0.Now().Add(time.Hour))
	c.Add(key(4), "b", 1, c0.Now().Add(time.Hour))
	if v, _ := c.Get(key(4)); v != "b" || c.Len() != 1 {
		t.Errorf("replace: %q, Len %d", v, c.Len())
	}
	c.Remove(key(4))
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Remove Len=%d Bytes=%d", c.Len(), c.Bytes())
	}
}

func TestBudgetEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Unix(1000, 0)
	var evicted int
	// One shard, room for exactly 10 entries of 100 bytes.
	c := New[int](Config{Budget: 10 * (100 + EntryOverhead), Shards: 1, Now: func() time.Time { return now }, OnEvict: func(string) { evicted++ }})
	for i := range 10 {
		c.Add(key(i), i, 100, now.Add(time.Hour))
	}
	c.Get(key(0)) // 0 becomes the most recently used: 1 is now the oldest
	c.Add(key(10), 10, 100, now.Add(time.Hour))
	if _, ok := c.Get(key(1)); ok {
		t.Error("the least recently used entry survived")
	}
	if _, ok := c.Get(key(0)); !ok {
		t.Error("a recently used entry was evicted")
	}
	if c.Len() != 10 || evicted != 1 || c.Bytes() > 10*(100+EntryOverhead) {
		t.Errorf("Len=%d evicted=%d Bytes=%d", c.Len(), evicted, c.Bytes())
	}
	c.Add(key(99), 99, 1<<20, now.Add(time.Hour))
	if _, ok := c.Get(key(99)); ok {
		t.Error("an entry larger than the budget was stored")
	}
}

func TestShardsRoundToPowerOfTwo(t *testing.T) {
	if n := len(New[int](Config{Budget: 1, Shards: 5}).shards); n != 8 {
		t.Errorf("shards = %d, want 8", n)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](Config{Budget: 1 << 16})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := key(g*10000 + i%300)
				c.Add(k, i, 64, time.Now().Add(time.Hour))
				c.Get(k)
				if i%7 == 0 {
					c.Remove(k)
				}
			}
		}()
	}
	wg.Wait()
	if c.Bytes() > 1<<16 {
		t.Errorf("Bytes %d over budget", c.Bytes())
	}
}

// BenchmarkGet shows a hit costs the same with 100 entries as with 100,000.
func BenchmarkGet(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c := New[string](Config{Budget: 1 << 30})
			keys := make([]Key, n)
			for i := range keys {
				keys[i] = key(i)
				c.Add(keys[i], "token", 1300, time.Now().Add(time.Hour))
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := c.Get(keys[i%n]); !ok {
						b.Fatal("miss")
					}
					i += 7919
				}
			})
		})
	}
}

// Two keys that share their map slot (bytes 8 to 16) and shard (the first
// 8 bytes) but differ elsewhere must never answer for each other.
func TestMapSlotCollision(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string](Config{Budget: 1 << 20, Shards: 1, Now: func() time.Time { return now }})
	k1, k2 := key(1), key(1)
	k2[31] ^= 0xff
	c.Add(k1, "one", 3, now.Add(time.Hour))
	if v, ok := c.Get(k2); ok {
		t.Fatalf("Get(k2) = %q: a colliding key answered for another", v)
	}
	c.Remove(k2)
	if v, ok := c.Get(k1); !ok || v != "one" {
		t.Fatalf("Remove(k2) removed k1: Get(k1) = %q, %v", v, ok)
	}
	c.Add(k2, "two", 3, now.Add(time.Hour))
	if v, ok := c.Get(k2); !ok || v != "two" {
		t.Errorf("Get(k2) = %q, %v after Add(k2)", v, ok)
	}
	if _, ok := c.Get(k1); ok {
		t.Error("k1 still answers after k2 took its slot")
	}
	if c.Len() != 1 || c.Bytes() != 3+EntryOverhead {
		t.Errorf("Len=%d Bytes=%d, want 1 entry of %d bytes", c.Len(), c.Bytes(), 3+EntryOverhead)
	}
}
