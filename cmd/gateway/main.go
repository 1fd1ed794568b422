// Command gateway is OBO Gateway: an API gateway for APIs protected by
// Microsoft Entra ID that validates the caller's token, exchanges it
// On-Behalf-Of for the route's downstream API, and proxies the request.
//
//	gateway serve -config FILE   run the gateway
//	gateway demo [-json]         run it against a local tenant and a sample API
//	gateway version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
