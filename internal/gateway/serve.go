package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/edge"
)

// Addrs are the listeners' actual addresses (useful with port 0).
type Addrs struct {
	API   string // host:port
	Admin string
	TLS   bool
}

// Serve listens on the configured addresses and serves until ctx ends, then
// drains: /readyz turns 503 at once, new connections are refused, and
// in-flight requests get up to shutdown_grace to finish. ready is called
// once both listeners are up.
func (g *Gateway) Serve(ctx context.Context, ready func(Addrs)) error {
	defer func() {
		for _, c := range g.closers {
			_ = c()
		}
	}()
	apiLn, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", g.cfg.AdminListen)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("gateway: admin_listen: %w", err)
	}
	lim := g.cfg.Limits
	// No ReadTimeout or WriteTimeout: they would cut server-sent event
	// streams and WebSockets. Bodies have their own deadline (the edge's).
	api := &http.Server{
		Handler:           g.api,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		MaxHeaderBytes:    int(lim.MaxHeaderBytes),
		ErrorLog:          slogLogger(g.log),
	}
	// The connections beyond limits.max_connections get one 503 each, on a
	// server of their own that keeps nothing open for long.
	excess := &http.Server{
		Handler:           edge.ExcessHandler(),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       2 * time.Second, // bounds the drain of a body it never reads
		WriteTimeout:      2 * time.Second,
		MaxHeaderBytes:    int(lim.MaxHeaderBytes),
		ErrorLog:          slogLogger(g.log),
	}
	excess.SetKeepAlivesEnabled(false)
	admin := &http.Server{Handler: g.admin, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slogLogger(g.log)}
	addrs := Addrs{API: apiLn.Addr().String(), Admin: adminLn.Addr().String()}
	apiConns, excessConns := g.edge.Listen(apiLn)

	errc := make(chan error, 3)
	serve := func(s *http.Server, ln net.Listener) error { return s.Serve(ln) }
	if t := g.cfg.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			apiLn.Close()
			adminLn.Close()
			return fmt.Errorf("gateway: tls: %w", err)
		}
		api.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		excess.TLSConfig = api.TLSConfig.Clone()
		addrs.TLS = true
		serve = func(s *http.Server, ln net.Listener) error { return s.ServeTLS(ln, "", "") }
	}
	go func() { errc <- serve(api, apiConns) }()
	go func() {
		if err := serve(excess, excessConns); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	go func() { errc <- admin.Serve(adminLn) }()
	g.log.Info("gateway listening", "api", addrs.API, "admin", addrs.Admin, "routes", len(g.cfg.Routes))
	if ready != nil {
		ready(addrs)
	}

	defer excess.Close()
	select {
	case err := <-errc:
		api.Close()
		admin.Close()
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	g.ready.Drain()
	grace := g.cfg.ShutdownGrace.D()
	g.log.Info("shutting down: draining in-flight requests", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err = api.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("grace period over: closing the remaining connections")
		api.Close()
	}
	admin.Close()
	g.log.Info("gateway stopped")
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}
