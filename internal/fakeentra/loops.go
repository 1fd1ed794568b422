package fakeentra

import (
	"strings"
	"time"
)

// loopCounter remembers recent successful token requests by what they
// asked for, for Entra's loop detection (AADSTS50196). Guarded by Server.mu.
type loopCounter map[string][]time.Time

// loopKey is what makes two token requests "the same": client, user,
// resource, scopes and claims.
func loopKey(g grant) string {
	user := ""
	if g.user != nil {
		user = g.user.ObjectID
	}
	claims := ""
	if g.claims != nil {
		claims = g.claims.raw
	}
	return strings.Join([]string{g.tenant.TenantID, g.client.ClientID, user, g.sr.resource.ClientID,
		strings.Join(g.scopes, " "), claims}, "|")
}

// loopLimits are the tenant's loop detection bounds.
func (t *Tenant) loopLimits() (max int, window time.Duration) {
	max, window = 100, 5*time.Minute
	if ld := t.LoopDetection; ld != nil {
		if ld.MaxRequests != 0 {
			max = ld.MaxRequests
		}
		if ld.Window > 0 {
			window = time.Duration(ld.Window)
		}
	}
	return max, window
}

// looping records a request for g at now and reports whether it is one too
// many: more than the bound within the window.
func (s *Server) looping(g grant, now time.Time) bool {
	max, window := g.tenant.loopLimits()
	if max < 0 {
		return false
	}
	key := loopKey(g)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops == nil {
		s.loops = loopCounter{}
	}
	recent := s.loops[key][:0]
	for _, t := range s.loops[key] {
		if now.Sub(t) < window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= max {
		s.loops[key] = recent
		return true
	}
	s.loops[key] = append(recent, now)
	// Forget keys whose requests have all left the window, now and then.
	if len(s.loops) > 4096 {
		for k, ts := range s.loops {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= window {
				delete(s.loops, k)
			}
		}
	}
	return false
}
