// Package testkit holds the helpers that the tests of several packages
// share: a log buffer safe for concurrent writers, and a loopback address
// nothing listens on. Only tests import it. It holds nothing of the
// gateway's or the local tenant's logic, so either may use it.
package testkit

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer for loggers and child processes written from
// several goroutines. For JSON log lines (slog's JSONHandler) it can decode
// them and signal when a message is logged.
type SyncBuffer struct {
	mu       sync.Mutex
	b        bytes.Buffer
	watchers map[string]chan struct{}
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for msg, ch := range s.watchers {
		if bytes.Contains(p, []byte(`"msg":`+quote(msg))) {
			close(ch)
			delete(s.watchers, msg)
		}
	}
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor returns a channel closed when a JSON line with message msg is
// written after the call.
func (s *SyncBuffer) WaitFor(msg string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchers == nil {
		s.watchers = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	s.watchers[msg] = ch
	return ch
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Lines decodes the JSON lines written so far.
func (s *SyncBuffer) Lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// All returns the JSON lines with message msg.
func (s *SyncBuffer) All(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range s.Lines(t) {
		if l["msg"] == msg {
			found = append(found, l)
		}
	}
	return found
}

// Only returns the single JSON line with message msg, failing t if there
// is not exactly one.
func (s *SyncBuffer) Only(t testing.TB, msg string) map[string]any {
	t.Helper()
	found := s.All(t, msg)
	if len(found) != 1 {
		t.Fatalf("%d log lines %q, want 1; logs:\n%s", len(found), msg, s)
	}
	return found[0]
}

// ClosedAddr returns a loopback address nothing listens on: connecting to it
// is refused.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
