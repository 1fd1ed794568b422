package main

import (
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
)

// routeOTelInternals sends what the OpenTelemetry SDK reports through its
// process-wide hooks (its error handler and its logger: an export that
// failed, a variable it could not read) to w as JSON lines at warn, at most
// one a minute, message only: the SDK's key/values can quote an
// environment variable's value (a collector's API key). main calls it once,
// for the process; run does not, as a process may hold several gateways
// (the tests do), each of which logs its own export failures.
func routeOTelInternals(w io.Writer) {
	log := slog.New(slog.NewJSONHandler(w, nil)).With("component", "opentelemetry")
	l := &otelLog{log: log}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { l.warn("tracing: " + err.Error()) }))
	otel.SetLogger(logr.New(otelSink{l}))
}

// otelLog writes at most one line a minute.
type otelLog struct {
	log  *slog.Logger
	last atomic.Int64 // unix nanoseconds of the last line
}

func (l *otelLog) warn(msg string) {
	now := time.Now().UnixNano()
	if prev := l.last.Load(); now-prev < int64(time.Minute) || !l.last.CompareAndSwap(prev, now) {
		return
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	l.log.Warn(msg, "note", "at most one such line a minute")
}

// otelSink is a logr sink that keeps the SDK's errors and warnings (V(1))
// and drops its info and debug lines, and every key/value.
type otelSink struct{ l *otelLog }

func (otelSink) Init(logr.RuntimeInfo)  {}
func (otelSink) Enabled(level int) bool { return level <= 1 }
func (s otelSink) Info(level int, msg string, _ ...any) {
	if level <= 1 {
		s.l.warn("tracing: " + msg)
	}
}
func (s otelSink) Error(err error, msg string, _ ...any) {
	text := "tracing: " + msg
	if err != nil {
		text += ": " + err.Error()
	}
	s.l.warn(text)
}
func (s otelSink) WithValues(...any) logr.LogSink { return s }
func (s otelSink) WithName(string) logr.LogSink   { return s }
