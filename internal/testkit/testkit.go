// Package testkit holds the helpers that the tests of several packages
// share: a log buffer safe for concurrent writers, a settable clock, the
// gateway's JSON error body and metric values read back, JWTs signed by
// hand, and a loopback address nothing listens on. Only tests import it. It
// holds nothing of the gateway's or the local tenant's logic, so either may
// use it.
package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer for loggers and child processes written from
// several goroutines. For JSON log lines (slog's JSONHandler) it decodes
// them, and lets a test wait for one without sleeping. Its zero value is
// ready to use.
type SyncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write; nil until someone waits
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// snapshot returns the text so far and a channel closed at the next write.
func (s *SyncBuffer) snapshot() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.b.String(), s.changed
}

// Record is one JSON log line.
type Record map[string]any

// Str is the string at key k, or "" if there is none.
func (r Record) Str(k string) string {
	v, _ := r[k].(string)
	return v
}

// Num is the number at key k as an int, or 0 if there is none.
func (r Record) Num(k string) int {
	v, _ := r[k].(float64)
	return int(v)
}

// Msg matches the records whose message is msg.
func Msg(msg string) func(Record) bool {
	return func(r Record) bool { return r.Str("msg") == msg }
}

// decode returns the JSON objects among the complete lines of text, and
// the other lines that are not blank: text that is not a JSON object, and
// a last line not yet ended.
func decode(text string) (recs []Record, other []string) {
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var r Record
		if !strings.HasSuffix(line, "\n") || json.Unmarshal([]byte(line), &r) != nil || r == nil {
			other = append(other, strings.TrimSuffix(line, "\n"))
			continue
		}
		recs = append(recs, r)
	}
	return recs, other
}

// Records returns the JSON lines written so far. It skips the other lines
// (a usage text, a line still being written), so it reads a stream that
// is not all JSON; Lines is for one that is.
func (s *SyncBuffer) Records() []Record {
	recs, _ := decode(s.String())
	return recs
}

// Find returns the JSON lines written so far that match pred, skipping
// other lines as Records does.
func (s *SyncBuffer) Find(pred func(Record) bool) []Record {
	var out []Record
	for _, r := range s.Records() {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

// Wait returns the first JSON line that matches pred, written before the
// call or after: it waits for writes, without polling, until one matches,
// stop is closed (nil for never) or timeout passes, and then returns an
// error. It skips lines that are not JSON, as Records does. It does not
// touch a testing.T, so a goroutine may call it.
func (s *SyncBuffer) Wait(timeout time.Duration, stop <-chan struct{}, pred func(Record) bool) (Record, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		text, changed := s.snapshot()
		recs, _ := decode(text)
		for _, r := range recs {
			if pred(r) {
				return r, nil
			}
		}
		select {
		case <-changed:
		case <-stop:
			// One last look: the line may have come with the stop.
			if found := s.Find(pred); len(found) > 0 {
				return found[0], nil
			}
			return nil, errors.New("stopped before the log line was written")
		case <-timer.C:
			return nil, fmt.Errorf("no such log line within %v", timeout)
		}
	}
}

// Lines decodes the lines written so far, failing t unless every one is a
// JSON object ended by a newline: for a logger that writes nothing else.
func (s *SyncBuffer) Lines(t testing.TB) []Record {
	t.Helper()
	recs, other := decode(s.String())
	if len(other) > 0 {
		t.Fatalf("log line %q is not a JSON object ended by a newline", other[0])
	}
	return recs
}

// All returns the JSON lines with message msg, failing t as Lines does.
func (s *SyncBuffer) All(t testing.TB, msg string) []Record {
	t.Helper()
	var found []Record
	for _, l := range s.Lines(t) {
		if Msg(msg)(l) {
			found = append(found, l)
		}
	}
	return found
}

// Only returns the single JSON line with message msg, failing t if there
// is not exactly one, or as Lines does.
func (s *SyncBuffer) Only(t testing.TB, msg string) Record {
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
