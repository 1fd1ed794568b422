package main

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// The SDK's own lines reach the JSON log without their key/values (which
// can quote an environment variable's value), at most one a minute, and
// its info and debug lines not at all.
func TestOTelSink(t *testing.T) {
	var buf testkit.SyncBuffer
	l := &otelLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	s := otelSink{l}
	if s.Enabled(4) || !s.Enabled(1) {
		t.Error("the sink should keep errors and warnings only")
	}
	s.Error(errors.New("bad header"), "escape header value", "value", "s3cr3t-api-key")
	s.Info(1, "second line within the minute", "value", "s3cr3t-api-key")
	out := buf.String()
	if !strings.Contains(out, "escape header value: bad header") || !strings.Contains(out, `"level":"WARN"`) {
		t.Errorf("log %q, want the SDK's message at warn", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("the SDK's key/values reached the log: %s", out)
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("%d lines within a minute, want 1: %s", n, out)
	}
}
