package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/obo-gateway/obo-gateway/internal/doctor"
)

// runDoctor is "gateway doctor -config FILE [-json] [-offline]": it checks
// the configuration offline, then against the tenant, the upstreams and
// Redis, printing each check as PASS, WARN or FAIL with the fix. It returns
// an error (a non-zero exit) when a check fails. See docs/doctor.md.
func runDoctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway doctor -config FILE [-json] [-offline]")
		fs.PrintDefaults()
	}
	path := fs.String("config", getenv("OBO_GATEWAY_CONFIG"), "configuration file (YAML); env OBO_GATEWAY_CONFIG")
	asJSON := fs.Bool("json", false, "print one JSON document: {checks:[{id,name,status,detail,fix}], summary:{pass,warn,fail}}")
	offline := fs.Bool("offline", false, "check only what needs no network: no request to Entra, the upstreams or Redis")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0))
	}
	if *path == "" {
		fs.Usage()
		return errors.New("doctor: -config FILE is required")
	}

	opts := doctor.Options{ConfigPath: *path, Getenv: getenv, Offline: *offline}
	if !*asJSON {
		mode := "offline and online checks"
		if *offline {
			mode = "offline checks only (-offline): no request to Entra, the upstreams or Redis"
		}
		fmt.Fprintf(stdout, "gateway doctor: %s, %s\n\n", *path, mode)
		opts.OnCheck = func(c doctor.Check) { doctor.WriteCheck(stdout, c) }
	}
	rep := doctor.Run(ctx, opts)
	if *asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			return fmt.Errorf("doctor: %w", err)
		}
	} else {
		doctor.WriteSummary(stdout, rep.Summary)
	}
	if n := rep.Summary.Fail; n > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", n, rep.Summary.Total())
	}
	return nil
}
