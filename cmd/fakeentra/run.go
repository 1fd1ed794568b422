package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/sampleapi"
)

// readyLine is the JSON line printed once ready: the tenant's Info and,
// with -sample-api, the sample API's URL. Its names are a contract.
type readyLine struct {
	fakeentra.Info
	// SampleAPIURL is http://host:port of the sample API, "" without -sample-api.
	SampleAPIURL string `json:"sample_api_url,omitempty"`
}

// run parses flags, starts the tenant (and the sample API with
// -sample-api), prints one JSON line on stdout, and serves until ctx is
// done. Logs go to stderr as JSON.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeentra", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	dir := fs.String("dir", "", "directory for the tenant's files, written at each start: ca.pem (its CA), <app>.crt.pem and <app>.key.pem (the credential of each app that generates one, e.g. gateway); created; default: a new temporary directory, removed on exit")
	tenantFile := fs.String("tenant", "", "tenant file (YAML); default: the demo tenant")
	sampleAPI := fs.String("sample-api", "", "also serve the demo's sample downstream API on this address (host:port, e.g. 127.0.0.1:8081): it answers every request with what it received, the claims of its token included, and verifies nothing")
	verbose := fs.Bool("v", false, "log every token request to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var line readyLine
	if *sampleAPI != "" {
		// Listen first: a busy port fails before any file is written.
		ln, err := net.Listen("tcp", *sampleAPI)
		if err != nil {
			return fmt.Errorf("sample API: %w", err)
		}
		srv := &http.Server{Handler: sampleapi.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		line.SampleAPIURL = "http://" + urlHost(ln.Addr())
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
	line.Info = srv.Info()
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// urlHost renders a listener's address as a URL's host, 127.0.0.1 for the
// unspecified address (a listener on ":8081" is reached on loopback too).
func urlHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}
