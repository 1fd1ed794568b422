package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
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
	api := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slogLogger(g.log),
	}
	admin := &http.Server{Handler: g.AdminHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slogLogger(g.log)}
	addrs := Addrs{API: apiLn.Addr().String(), Admin: adminLn.Addr().String()}

	errc := make(chan error, 2)
	if t := g.cfg.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			apiLn.Close()
			adminLn.Close()
			return fmt.Errorf("gateway: tls: %w", err)
		}
		api.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		addrs.TLS = true
		go func() { errc <- api.ServeTLS(apiLn, "", "") }()
	} else {
		go func() { errc <- api.Serve(apiLn) }()
	}
	go func() { errc <- admin.Serve(adminLn) }()
	g.log.Info("gateway listening", "api", addrs.API, "admin", addrs.Admin, "routes", len(g.cfg.Routes))
	if ready != nil {
		ready(addrs)
	}

	select {
	case err := <-errc:
		api.Close()
		admin.Close()
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	g.draining.Store(true)
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
