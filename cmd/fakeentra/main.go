// Command fakeentra runs a local Entra-compatible tenant over HTTPS on
// loopback, for tests, demos and frontend development without a tenant.
//
//	fakeentra -addr 127.0.0.1:0 -dir DIR [-tenant FILE]
//
// Once ready it prints one JSON line (authority, tenant_id, token_endpoint,
// jwks_uri, ca_file, apps, users) and serves until SIGINT or SIGTERM.
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
