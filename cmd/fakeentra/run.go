package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// run parses flags, starts the tenant, prints its Info as one JSON line on
// stdout, and serves until ctx is done. Logs go to stderr as JSON.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeentra", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	dir := fs.String("dir", "", "directory for the CA certificate and generated credentials (created; default: a new temporary directory)")
	tenantFile := fs.String("tenant", "", "tenant file (YAML); default: the demo tenant")
	verbose := fs.Bool("v", false, "log every token request to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "fakeentra-")
		if err != nil {
			return err
		}
		// A directory we made holds only this run's keys: remove it on exit.
		defer os.RemoveAll(d)
		*dir = d
	}
	// The JSON line's paths must not depend on the working directory.
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	*dir = abs
	cfg := fakeentra.Config{Dir: *dir, Addr: *addr}
	if *tenantFile != "" {
		t, err := fakeentra.LoadTenant(*tenantFile)
		if err != nil {
			return err
		}
		cfg.Tenant = t
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := fakeentra.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	line, err := json.Marshal(srv.Info())
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
