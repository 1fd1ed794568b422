package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/demo"
	"github.com/obo-gateway/obo-gateway/internal/gateway"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  gateway serve -config FILE                         run the gateway (settings: docs/configuration.md)
  gateway demo [-json]                               run the gateway against a local tenant and a sample API
  gateway doctor -config FILE [-json] [-offline]     check a configuration, its certificate and the tenant (docs/doctor.md)
  gateway inspect [-config FILE] [-jwks FILE] [-at TIME] [-json] TOKEN|-
                                                     explain a token and whether it can be exchanged (docs/inspect.md)
  gateway version                                    print the version
`

// run is the whole program: main only adds the process's signals,
// arguments, environment and output streams. The environment comes as a
// list (os.Environ) rather than a getenv function so that a variable naming
// a route that does not exist can be reported instead of ignored.
func run(ctx context.Context, args []string, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, environ, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], getenv, stdout, stderr)
	case "inspect":
		return runInspect(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, environ []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("OBO_GATEWAY_CONFIG"), "configuration file (YAML); env OBO_GATEWAY_CONFIG")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve: -config FILE is required (see deploy/gateway.example.yaml)")
	}
	cfg, err := config.Load(*path, getenv)
	if err == nil {
		err = cfg.CheckEnviron(environ)
	}
	if err != nil {
		return configProblems(*path, err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	routeRedisLogs(log)
	log.Info("starting", "version", version, "config", *path, "tenant_id", cfg.Entra.TenantID, "client_id", cfg.Entra.ClientID)
	gw, err := gateway.New(ctx, cfg, gateway.Deps{Logger: log, Registry: metrics.NewRegistry(version)})
	if err != nil {
		return err
	}
	return gw.Serve(ctx, nil)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON line once ready (for scripts and tests)")
	listen := fs.String("listen", "127.0.0.1:0", "gateway API address")
	admin := fs.String("admin-listen", "127.0.0.1:0", "gateway admin address (/metrics, /healthz, /readyz)")
	dir := fs.String("dir", "", "directory for the tenant's CA, credentials and the gateway config (default: a new temporary directory)")
	verbose := fs.Bool("v", false, "log requests to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	log := newLogger(stderr, level)
	routeRedisLogs(log)
	return demo.Run(ctx, demo.Options{
		Listen: *listen, AdminListen: *admin, Dir: *dir, JSON: *asJSON, Version: version,
		Logger: log,
	}, stdout)
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
