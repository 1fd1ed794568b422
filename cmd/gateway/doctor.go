package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/obo-gateway/obo-gateway/internal/doctor"
)

// defineDoctor is "gateway doctor -config FILE [-json] [-offline]": it
// checks the configuration offline, then against the tenant, the upstreams
// and Redis, printing each check as PASS, WARN or FAIL with the fix. It
// fails (exit status 1) when a check fails. See docs/doctor.md.
func defineDoctor(fs *flag.FlagSet, x *invocation) func(context.Context, []string) error {
	path := fs.String("config", x.getenv("OBO_GATEWAY_CONFIG"), "the configuration `FILE` (YAML), with the environment over it as for serve; env OBO_GATEWAY_CONFIG")
	asJSON := fs.Bool("json", false, "print one JSON document: {checks:[{id,name,status,detail,fix}], summary:{pass,warn,fail}}")
	offline := fs.Bool("offline", false, "check only what needs no network: no request to Entra, the upstreams or Redis")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("doctor: unexpected argument %q", args[0])
		}
		if *path == "" {
			return usagef("doctor: -config FILE or OBO_GATEWAY_CONFIG is required")
		}
		opts := doctor.Options{ConfigPath: *path, Environ: x.environ, Offline: *offline}
		if !*asJSON {
			mode := "offline and online checks"
			if *offline {
				mode = "offline checks only (-offline): no request to Entra, the upstreams or Redis"
			}
			fmt.Fprintf(x.stdout, "gateway doctor: %s, %s\n\n", *path, mode)
			opts.OnCheck = func(c doctor.Check) { doctor.WriteCheck(x.stdout, c) }
		}
		rep := doctor.Run(ctx, opts)
		if *asJSON {
			if err := rep.WriteJSON(x.stdout); err != nil {
				return fmt.Errorf("doctor: %w", err)
			}
		} else {
			doctor.WriteSummary(x.stdout, rep.Summary)
		}
		if n := rep.Summary.Fail; n > 0 {
			return fmt.Errorf("doctor: %d of %d checks failed", n, rep.Summary.Total())
		}
		return nil
	}
}
