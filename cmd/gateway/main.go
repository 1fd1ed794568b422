// Command gateway is OBO Gateway: an API gateway for APIs protected by
// Microsoft Entra ID that validates the caller's token, exchanges it
// On-Behalf-Of for the route's downstream API, and proxies the request.
//
//	gateway serve -config FILE   run the gateway
//	gateway demo                 run it against a local tenant and a sample API
//	gateway doctor -config FILE  check a configuration against the tenant
//	gateway inspect TOKEN|-      explain a token
//	gateway version
//
// "gateway help" lists every command with its flags; "gateway COMMAND -h"
// shows one.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	routeOTelInternals(os.Stderr)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(os.Stderr, err))
}

// The exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed: the gateway could not start, a doctor check failed
	exitUsage = 2 // a mistake in the command line: its usage is on stderr
)

// exitStatus writes err, when there is one, as the last line of stderr,
// prefixed "gateway: " once (an error of package gateway, which starts so
// itself, is not prefixed again), and returns the exit status: exitOK for
// nil, exitUsage for a mistake in the command line (a *usageError, whose
// usage run has written already), exitError for any other.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	for strings.HasPrefix(msg, "gateway: ") {
		msg = strings.TrimPrefix(msg, "gateway: ")
	}
	fmt.Fprintln(stderr, "gateway: "+msg)
	if _, ok := errors.AsType[*usageError](err); ok {
		return exitUsage
	}
	return exitError
}
