package testkit

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	done := b.WaitFor("second")
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("first", "n", 1)
	select {
	case <-done:
		t.Fatal("WaitFor fired on another message")
	default:
	}
	log.Info("second")
	log.Info("first", "n", 2)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WaitFor did not fire")
	}
	if n := len(b.Lines(t)); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	if got := b.All(t, "first"); len(got) != 2 || got[1]["n"] != 2.0 {
		t.Errorf("All(first) = %v", got)
	}
	if got := b.Only(t, "second"); got["msg"] != "second" {
		t.Errorf("Only(second) = %v", got)
	}
}

func TestClosedAddr(t *testing.T) {
	addr := ClosedAddr(t)
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", addr)
	}
}
