package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/demo"
	"github.com/obo-gateway/obo-gateway/internal/gateway"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

// run is the whole program: main only adds the process's signals,
// arguments, environment and output streams, and turns the error into the
// exit status (exitStatus). The environment comes as a list (os.Environ)
// rather than a getenv function so that a variable set to "" can clear a
// setting of the file, and a variable naming a route that does not exist
// can be reported instead of ignored.
//
// Every command follows one convention: -h, -help or --help prints its
// usage on stdout and succeeds; a mistake in the command line (an unknown
// command or flag, a bad flag value, a missing or stray argument) prints
// the usage on stderr and returns a *usageError.
func run(ctx context.Context, args []string, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	x := &invocation{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		return x.badUsage(x.usage(), errors.New("a command is required"))
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		switch {
		case len(rest) == 0:
			fmt.Fprint(stdout, x.usage())
			return nil
		case len(rest) > 1:
			return x.badUsage(x.usage(), fmt.Errorf("help: one command at a time, not %q", strings.Join(rest, " ")))
		}
		c, ok := lookupCommand(rest[0])
		if !ok {
			return x.badUsage(x.usage(), fmt.Errorf("help: unknown command %q", rest[0]))
		}
		fs, _ := c.flags(x)
		fmt.Fprint(stdout, c.usage(fs))
		return nil
	}
	c, ok := lookupCommand(name)
	if !ok {
		return x.badUsage(x.usage(), fmt.Errorf("unknown command %q", name))
	}
	return c.run(ctx, x, rest)
}

// invocation is what a command gets of the process: its environment,
// as a list (os.Environ), and its standard streams.
type invocation struct {
	environ        []string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// getenv returns the value of the variable name in the environment, ""
// when it is not set (the first entry counts, as for os.Getenv).
func (x *invocation) getenv(name string) string {
	for _, kv := range x.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// usageError is a mistake in the command line: an unknown command or
// flag, a bad flag value, a missing or stray argument. run has written the
// usage to stderr; exitStatus exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef makes a *usageError; a command's run returns it, and run adds the
// command's usage.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// badUsage writes usage to stderr and returns err as a *usageError.
func (x *invocation) badUsage(usage string, err error) error {
	fmt.Fprint(x.stderr, usage)
	if _, ok := errors.AsType[*usageError](err); ok {
		return err
	}
	return &usageError{err}
}

// command is one subcommand of gateway.
type command struct {
	name string
	// required are the flags the synopsis shows as required (without
	// brackets): the command fails without them.
	required []string
	// args names what follows the flags, e.g. "TOKEN|-"; "" for nothing.
	args string
	// summary says what the command does, in one line.
	summary string
	// about says more, for "gateway COMMAND -h" only; "" for nothing.
	about string
	// define declares the command's flags on fs and returns what runs the
	// command with the arguments left once they are parsed. It is the one
	// place a flag is declared: run parses with it, and the usage texts
	// list what it declared.
	define func(fs *flag.FlagSet, x *invocation) func(ctx context.Context, args []string) error
}

// commands are the subcommands of gateway, in the order help lists them.
func commands() []command {
	return []command{
		{name: "serve", required: []string{"config"}, define: defineServe,
			summary: "run the gateway (its settings: docs/configuration.md)"},
		{name: "demo", define: defineDemo,
			summary: "run the gateway against a local tenant and a sample API, on loopback"},
		{name: "doctor", required: []string{"config"}, define: defineDoctor,
			summary: "check a configuration, its certificate, the tenant, the upstreams and Redis, and say what to fix (docs/doctor.md)"},
		{name: "inspect", args: "TOKEN|-", define: defineInspect, about: inspectAbout,
			summary: "explain a token and whether it can be exchanged (docs/inspect.md)"},
		{name: "version", define: defineVersion,
			summary: "print the version"},
	}
}

func lookupCommand(name string) (command, bool) {
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands()[i], true
}

// flags declares the command's flags on a new FlagSet, which prints
// nothing itself, and returns it with what runs the command.
func (c command) flags(x *invocation) (*flag.FlagSet, func(context.Context, []string) error) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs, c.define(fs, x)
}

// run parses args and runs the command: -h prints its usage on stdout, a
// mistake in the command line prints it on stderr.
func (c command) run(ctx context.Context, x *invocation, args []string) error {
	fs, runCommand := c.flags(x)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(x.stdout, c.usage(fs))
		return nil
	case err != nil:
		err = &usageError{fmt.Errorf("%s: %w", c.name, err)}
	default:
		err = runCommand(ctx, fs.Args())
	}
	if _, ok := errors.AsType[*usageError](err); ok {
		return x.badUsage(c.usage(fs), err)
	}
	return err
}

// synopsis is the command line of the command: gateway doctor -config
// FILE [-json] [-offline].
func (c command) synopsis(fs *flag.FlagSet) string {
	parts := []string{"gateway", c.name}
	fs.VisitAll(func(f *flag.Flag) {
		s := "-" + f.Name
		if name, _ := flag.UnquoteUsage(f); name != "" {
			s += " " + name
		}
		if !slices.Contains(c.required, f.Name) {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	})
	if c.args != "" {
		parts = append(parts, c.args)
	}
	return strings.Join(parts, " ")
}

// usage is what "gateway COMMAND -h" prints.
func (c command) usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s.\n", c.synopsis(fs), upperFirst(c.summary))
	if c.about != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.about, "\n"))
	}
	if d := flagDefaults(fs); d != "" {
		fmt.Fprintf(&b, "\nflags:\n%s", d)
	}
	fmt.Fprintf(&b, "\n%s\n", exitStatuses)
	return b.String()
}

// exitStatuses ends every usage text.
const exitStatuses = `Exit status: 0 done; 1 failed (the gateway could not start, a doctor check
failed, a file could not be read); 2 a mistake in the command line, with the
usage on stderr. Errors are the last line of stderr, prefixed "gateway: ".`

// usage is what "gateway help" prints: every command, with all its flags.
func (x *invocation) usage() string {
	var b strings.Builder
	b.WriteString(`usage: gateway COMMAND [flags] [arguments]

OBO Gateway validates the Entra ID tokens of its callers, exchanges them
On-Behalf-Of for each route's downstream API, and proxies the requests.

commands:
`)
	for _, c := range commands() {
		fs, _ := c.flags(x)
		fmt.Fprintf(&b, "\n  %s\n      %s\n", c.synopsis(fs), c.summary)
		if d := flagDefaults(fs); d != "" {
			b.WriteString(indent(d, "    "))
		}
	}
	fmt.Fprintf(&b, "\n\"gateway COMMAND -h\" (or -help, --help) shows one command's usage.\n%s\n", exitStatuses)
	return b.String()
}

// flagDefaults is fs.PrintDefaults's text.
func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

func indent(text, prefix string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func defineServe(fs *flag.FlagSet, x *invocation) func(context.Context, []string) error {
	path := fs.String("config", x.getenv("OBO_GATEWAY_CONFIG"), "the configuration `FILE` (YAML), with the environment over it; env OBO_GATEWAY_CONFIG")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("serve: unexpected argument %q", args[0])
		}
		if *path == "" {
			return usagef("serve: -config FILE or OBO_GATEWAY_CONFIG is required (start from deploy/gateway.example.yaml; docs/configuration.md describes every setting)")
		}
		return serve(ctx, *path, x)
	}
}

// serve runs the gateway until ctx ends.
func serve(ctx context.Context, path string, x *invocation) error {
	cfg, err := config.Load(path, x.environ)
	if err != nil {
		return configProblems(path, err)
	}
	log := newLogger(x.stderr, cfg.LogLevel)
	routeRedisLogs(log)
	log.Info("starting", "version", version, "config", path, "tenant_id", cfg.Entra.TenantID, "client_id", cfg.Entra.ClientID)
	gw, err := gateway.New(ctx, cfg, gateway.Deps{Logger: log, Registry: metrics.NewRegistry(version), Version: version})
	if err != nil {
		return err
	}
	return gw.Serve(ctx, nil)
}

func defineDemo(fs *flag.FlagSet, x *invocation) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print one JSON line once ready (for scripts and tests)")
	listen := fs.String("listen", "127.0.0.1:0", "the `address` of the gateway's API listener (host:port)")
	admin := fs.String("admin-listen", "127.0.0.1:0", "the `address` of the gateway's admin listener (/metrics, /healthz, /readyz)")
	dir := fs.String("dir", "", "write the tenant's CA, the credentials and the gateway's configuration to `DIR` (default: a new temporary directory)")
	verbose := fs.Bool("v", false, "log requests to stderr")
	credential := fs.String("credential", config.CredentialCertificate, "how the gateway proves itself to the local tenant: `certificate`, workload_identity (a service-account token file the demo rewrites, as the kubelet does) or managed_identity (the tenant's managed identity endpoint)")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("demo: unexpected argument %q", args[0])
		}
		switch *credential {
		case config.CredentialCertificate, config.CredentialWorkloadIdentity, config.CredentialManagedIdentity:
		default:
			return usagef("demo: -credential %q: use certificate, workload_identity or managed_identity", *credential)
		}
		level := "warn"
		if *verbose {
			level = "info"
		}
		log := newLogger(x.stderr, level)
		routeRedisLogs(log)
		return demo.Run(ctx, demo.Options{
			Listen: *listen, AdminListen: *admin, Dir: *dir, JSON: *asJSON, Version: version,
			Credential: *credential, Logger: log, Environ: x.environ,
		}, x.stdout)
	}
}

func defineVersion(fs *flag.FlagSet, x *invocation) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("version: unexpected argument %q", args[0])
		}
		fmt.Fprintln(x.stdout, version)
		return nil
	}
}

// routeRedisLogs sends go-redis's own messages (connection failures, at
// most a few per outage) to the gateway's log as JSON at warn. go-redis only
// offers a process-wide logger, which is why this lives here and not in the
// cache package.
func routeRedisLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log.With("component", "redis")})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
