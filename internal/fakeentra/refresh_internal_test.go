package fakeentra

import (
	"testing"
	"time"
)

// Refresh grants expire in the order they were issued, and are forgotten
// refreshGrace later: a long-running tenant does not keep every grant it
// ever issued.
func TestRefreshGrantsArePruned(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := &Server{refresh: map[string]*refreshGrant{}}
	issue := func(rt string, now time.Time) {
		s.refresh[rt] = &refreshGrant{expires: now.Add(refreshLifetime)}
		s.pruneRefreshLocked(rt, now)
	}
	issue("a", t0)
	issue("b", t0.Add(time.Minute))
	delete(s.refresh, "b") // redeemed or revoked elsewhere: only its order entry is left
	issue("c", t0.Add(2*time.Minute))
	if len(s.refresh) != 2 || len(s.refreshOrder) != 3 {
		t.Fatalf("before any expiry: %d grants, %d in order; want 2 and 3", len(s.refresh), len(s.refreshOrder))
	}
	issue("d", t0.Add(refreshLifetime+refreshGrace+90*time.Second)) // a and b are past their grace; c is not
	if _, ok := s.refresh["a"]; ok || len(s.refresh) != 2 || len(s.refreshOrder) != 2 || s.refreshOrder[0] != "c" {
		t.Errorf("after a's expiry: grants %v, order %v; want c and d", s.refresh, s.refreshOrder)
	}
}
