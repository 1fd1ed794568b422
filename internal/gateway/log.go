package gateway

import (
	"log"
	"log/slog"
)

// slogLogger routes net/http's server errors (TLS handshakes, bad requests) to slog at debug.
func slogLogger(l *slog.Logger) *log.Logger { return slog.NewLogLogger(l.Handler(), slog.LevelDebug) }
