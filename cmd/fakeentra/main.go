// Command fakeentra runs a local Entra-compatible tenant over HTTPS on
// loopback, for tests, demos and frontend development without a tenant.
//
//	fakeentra [-addr 127.0.0.1:0] [-dir DIR] [-tenant FILE] [-sample-api ADDR] [-v]
//
// Each start writes, to DIR, the tenant's CA certificate (ca.pem, which
// clients must trust) and the credential of each app that generates one
// (<app>.crt.pem and <app>.key.pem: gateway.crt.pem and gateway.key.pem for
// the demo tenant's gateway), all new: a client started earlier must read
// them again. With -sample-api it also serves the demo's downstream API
// (internal/sampleapi) on ADDR, over plain HTTP.
//
// Once ready it prints one JSON line (authority, tenant_id, token_endpoint,
// jwks_uri, issuer, issuer_v1, ca_file, apps, users, and sample_api_url with
// -sample-api) and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // -h: usage was printed; not a failure
	}
	if err != nil {
		// The package's errors already start with "fakeentra: "; say it once.
		fmt.Fprintln(os.Stderr, "fakeentra:", strings.TrimPrefix(err.Error(), "fakeentra: "))
		os.Exit(1)
	}
}
