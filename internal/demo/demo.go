// Package demo runs the whole flow on loopback with one command: the local
// tenant (fakeentra), a sample downstream API and the gateway configured
// against them, and tells the developer what to try.
package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/gateway"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/sampleapi"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// Options configure the demo.
type Options struct {
	// Listen and AdminListen are the gateway's addresses; default 127.0.0.1:0.
	Listen, AdminListen string
	// Dir receives the tenant's CA, the gateway's credential and config; default a new temporary directory.
	Dir string
	// JSON prints one JSON line once ready instead of the instructions.
	JSON bool
	// Credential is how the gateway proves itself to the local tenant:
	// "certificate" (the default), "workload_identity" (a service-account
	// token of the tenant's cluster issuer, in a file the demo rewrites as
	// the kubelet does) or "managed_identity" (the tenant's managed identity
	// endpoint, through MSAL's managed identity client).
	Credential string
	Version    string
	Logger     *slog.Logger
	// Environ is the process environment ("NAME=value"): its OpenTelemetry
	// variables (OTEL_*) apply to the demo's gateway, so that
	// OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on; no other variable does.
	Environ []string
}

// Info is the demo's JSON line. Its keys are a contract: acceptance tests
// and scripts drive the demo through them.
type Info struct {
	GatewayURL       string               `json:"gateway_url"`
	AdminURL         string               `json:"admin_url"`
	UpstreamURL      string               `json:"upstream_url"`
	Authority        string               `json:"authority"`
	TokenEndpoint    string               `json:"token_endpoint"`
	CAFile           string               `json:"ca_file"`
	TenantID         string               `json:"tenant_id"`
	FrontendClientID string               `json:"frontend_client_id"`
	Scope            string               `json:"scope"`
	Routes           map[string]string    `json:"routes"`
	Users            []fakeentra.UserInfo `json:"users"`
	ConfigFile       string               `json:"config_file"`
	// SPAURL is the sample SPA (MSAL.js), on its own loopback origin.
	SPAURL string `json:"spa_url"`
	// AccessToken is a fresh token for the first user, for the curl line.
	AccessToken string `json:"access_token"`
	// Traces is where the gateway exports its traces (OTLP), when the
	// OTEL_* variables turned tracing on; absent otherwise.
	Traces string `json:"traces,omitempty"`
}

// Scope is what a frontend asks for to call the demo gateway.
const Scope = "api://obo-gateway/access_as_user"

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, opt Options, stdout io.Writer) error {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	if opt.AdminListen == "" {
		opt.AdminListen = "127.0.0.1:0"
	}
	if opt.Dir == "" {
		d, err := os.MkdirTemp("", "obo-gateway-demo-")
		if err != nil {
			return err
		}
		// Generated keys and certificates are of no use after the demo.
		defer os.RemoveAll(d)
		opt.Dir = d
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	demoTenant := fakeentra.DemoTenant()
	if opt.Credential == config.CredentialManagedIdentity {
		// MSAL's managed identity client caches tokens process-wide by
		// client ID: a second demo in one process (tests) must not get the
		// first one's token, signed by another tenant's keys.
		// Empty IDs: the tenant makes new ones at its start.
		if mi := demoTenant.ManagedIdentity("gateway-identity"); mi != nil {
			mi.ClientID, mi.ObjectID = "", ""
		}
		// MSAL reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the process
		// at every request: they are the demo's until it returns, then
		// what they were. (So one managed-identity demo at a time per
		// process.)
		defer restoreEnv("IDENTITY_ENDPOINT", "IDENTITY_HEADER")()
	}
	tenant, err := fakeentra.Start(ctx, fakeentra.Config{Tenant: demoTenant, Dir: opt.Dir, Logger: opt.Logger.With("component", "fakeentra")})
	if err != nil {
		return fmt.Errorf("demo: local tenant: %w", err)
	}
	defer tenant.Close()

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: sample API: %w", err)
	}
	upstream := &http.Server{Handler: sampleapi.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(upLn) }()
	defer upstream.Close()
	upURL := "http://" + upLn.Addr().String()

	// The sample SPA, on its own origin: http://localhost:<port>, which
	// matches the frontend's SPA redirect URI (Entra ignores the port of a
	// localhost redirect URI) and is a secure context for MSAL.js.
	spaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: sample SPA: %w", err)
	}
	defer spaLn.Close()
	spaOrigin := fmt.Sprintf("http://localhost:%d", spaLn.Addr().(*net.TCPAddr).Port)

	fe := tenant.Info()
	credential, err := demoCredential(ctx, opt, tenant, fe)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(opt.Dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(opt, fe, upURL, credential, spaOrigin)), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath, otelOnly(opt.Environ))
	if err != nil {
		return fmt.Errorf("demo: generated configuration: %w", err)
	}
	reg := metrics.NewRegistry(opt.Version)
	gw, err := gateway.New(ctx, cfg, gateway.Deps{Logger: opt.Logger, Registry: reg, Version: opt.Version})
	if err != nil {
		return err
	}

	ready := make(chan gateway.Addrs, 1)
	errc := make(chan error, 1)
	go func() { errc <- gw.Serve(ctx, func(a gateway.Addrs) { ready <- a }) }()
	var addrs gateway.Addrs
	select {
	case addrs = <-ready:
	case err := <-errc:
		return err
	}
	if err := waitReady(ctx, gw); err != nil {
		return err
	}
	user := fe.Users[0]
	tok, err := passwordToken(ctx, tenant.HTTPClient(), fe.TokenEndpoint, fe.Apps["frontend"].ClientID, user.Username, user.Password)
	if err != nil {
		return fmt.Errorf("demo: token for %s: %w", user.Username, err)
	}
	info := Info{
		GatewayURL: "http://" + addrs.API, AdminURL: "http://" + addrs.Admin, UpstreamURL: upURL,
		Authority: fe.Authority, TokenEndpoint: fe.TokenEndpoint, CAFile: fe.CAFile, TenantID: fe.TenantID,
		FrontendClientID: fe.Apps["frontend"].ClientID, Scope: Scope,
		Routes: map[string]string{}, Users: fe.Users, ConfigFile: cfgPath, AccessToken: tok,
		SPAURL: spaOrigin + "/",
	}
	for _, r := range cfg.Routes {
		info.Routes[r.Name] = r.PathPrefix
	}
	au, err := url.Parse(fe.Authority)
	if err != nil {
		return fmt.Errorf("demo: authority: %w", err)
	}
	spa := &http.Server{Handler: spaHandler(SPAConfig{
		ClientID: info.FrontendClientID, Authority: fe.Authority, AuthorityHost: au.Host, Scope: Scope,
		GatewayURL: info.GatewayURL,
		Routes:     map[string]string{"orders": "/orders/items", "hr": "/hr/payslips", "inventory": "/inventory/stock"},
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = spa.Serve(spaLn) }()
	defer spa.Close()
	if tc := cfg.Tracing.Tracer(""); tc.Enabled() {
		info.Traces = cmp.Or(tc.TracesEndpoint, tc.Endpoint) + " (OTLP " + cmp.Or(tc.Protocol, tracing.ProtocolHTTP) + ")"
	}
	if opt.JSON {
		line, _ := json.Marshal(info)
		fmt.Fprintf(stdout, "%s\n", line)
	} else {
		printInstructions(stdout, info)
	}
	err = <-errc
	return err
}

func waitReady(ctx context.Context, gw *gateway.Gateway) error {
	deadline := time.Now().Add(15 * time.Second)
	for gw.Ready() != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: gateway not ready: %w", gw.Ready())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// demoCredential prepares the gateway's credential of opt.Credential and
// returns its configuration (the lines under entra:).
func demoCredential(ctx context.Context, opt Options, tenant *fakeentra.Server, fe fakeentra.Info) (string, error) {
	gw := fe.Apps["gateway"]
	switch opt.Credential {
	case "", config.CredentialCertificate:
		return fmt.Sprintf("  certificate:\n    path: %s\n    key_path: %s\n", gw.CertificateFile, gw.KeyFile), nil
	case config.CredentialWorkloadIdentity:
		// As AKS workload identity: a projected service-account token the
		// kubelet rewrites well before it expires (here every half hour).
		path := filepath.Join(opt.Dir, "azure-identity-token")
		write := func() error {
			tok, err := tenant.ServiceAccountToken("", "obo-gateway", "obo-gateway", fakeentra.ServiceAccountTokenOptions{})
			if err != nil {
				return err
			}
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}
		if err := write(); err != nil {
			return "", fmt.Errorf("demo: service-account token: %w", err)
		}
		go func() {
			t := time.NewTicker(30 * time.Minute)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := write(); err != nil {
						opt.Logger.Error("demo: rewriting the service-account token", "error", err)
					}
				}
			}
		}()
		return fmt.Sprintf("  credential: workload_identity\n  workload_identity:\n    token_file: %s   # %s, rewritten every 30 minutes\n",
			path, fakeentra.DemoServiceAccount), nil
	case config.CredentialManagedIdentity:
		// MSAL's managed identity client finds App Service's endpoint from
		// the process's environment: the demo is the process.
		u, secret := tenant.ManagedIdentityEndpoint()
		if err := os.Setenv("IDENTITY_ENDPOINT", u); err != nil {
			return "", err
		}
		if err := os.Setenv("IDENTITY_HEADER", secret); err != nil {
			return "", err
		}
		return fmt.Sprintf("  credential: managed_identity   # the local tenant's identity endpoint: IDENTITY_ENDPOINT=%s\n  managed_identity:\n    client_id: %s   # gateway-identity, user-assigned\n",
			u, tenant.Tenant().ManagedIdentity("gateway-identity").ClientID), nil
	}
	return "", fmt.Errorf("demo: credential %q: use certificate, workload_identity or managed_identity", opt.Credential)
}

func configYAML(opt Options, fe fakeentra.Info, upstream, credential, spaOrigin string) string {
	gw := fe.Apps["gateway"]
	host := fe.Authority[:strings.LastIndex(fe.Authority, "/")]
	return fmt.Sprintf(`# Generated by "gateway demo": the gateway against the local tenant (fakeentra).
listen: %q
admin_listen: %q
shutdown_grace: 5s
entra:
  tenant_id: %s
  client_id: %s
  authority_host: %s
  instance_discovery: false
  audiences: [%s]
  ca_file: %s
%scors:
  allowed_origins: [%q, "http://localhost:3000", "http://127.0.0.1:3000"]   # the sample SPA, and yours
routes:
  - name: orders        # consented: the happy path
    path_prefix: /orders
    upstream: %s/orders
    strip_prefix: true
    downstream_scopes: [api://orders-api/Orders.Read]
    required_scopes: [access_as_user]
  - name: hr            # the downstream requires MFA for alice: a claims challenge
    path_prefix: /hr
    upstream: %s/hr
    strip_prefix: true
    downstream_scopes: [api://hr-api/.default]
    required_scopes: [access_as_user]
  - name: inventory     # nobody consented: consent_required
    path_prefix: /inventory
    upstream: %s/inventory
    strip_prefix: true
    downstream_scopes: [api://inventory-api/.default]
    required_scopes: [access_as_user]
`, opt.Listen, opt.AdminListen, fe.TenantID, gw.ClientID, host, strings.Join(gw.IdentifierURIs, ", "),
		fe.CAFile, credential, spaOrigin, upstream, upstream, upstream)
}

// passwordToken gets a user token as a frontend would (public client,
// password grant), over plain HTTP: the demo does not use the gateway's code.
func passwordToken(ctx context.Context, c *http.Client, endpoint, clientID, user, password string) (string, error) {
	form := url.Values{
		"grant_type": {"password"}, "client_id": {clientID}, "username": {user}, "password": {password},
		"scope": {Scope + " openid profile offline_access"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if body.AccessToken == "" {
		return "", errors.New(body.Error + ": " + body.Description)
	}
	return body.AccessToken, nil
}

func printInstructions(w io.Writer, in Info) {
	u := in.Users[0]
	fmt.Fprintf(w, `OBO Gateway demo is running (Ctrl-C to stop).

  gateway      %s
  admin        %s/metrics  %s/readyz
  sample API   %s
  local tenant %s  (CA: %s)
  config       %s
  sample SPA   %s  (MSAL.js; a browser must trust the tenant's CA: README, "The sample SPA")
  traces       %s

A token for %s (valid for at least an hour), and the gateway:

  export GATEWAY=%s
  export TOKEN=%s

Try:

  curl -s  $GATEWAY/orders/items    -H "Authorization: Bearer $TOKEN"   # 200: the sample API shows the token it got: aud = orders API, oid = %s's
  curl -si $GATEWAY/hr/payslips     -H "Authorization: Bearer $TOKEN"   # 401 insufficient_claims: the HR API needs MFA (a claims challenge)
  curl -si $GATEWAY/inventory/stock -H "Authorization: Bearer $TOKEN"   # 403 consent_required
  curl -si $GATEWAY/orders/items                                        # 401: no token

Get another token (users: %s; password %s):

  export TOKEN=$(curl -s --cacert %s %s \
    -d grant_type=password -d client_id=%s \
    -d username=%s --data-urlencode 'password=%s' \
    --data-urlencode 'scope=%s openid offline_access' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
`, in.GatewayURL, in.AdminURL, in.AdminURL, in.UpstreamURL, in.Authority, in.CAFile, in.ConfigFile, in.SPAURL,
		cmp.Or(in.Traces, "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)"),
		u.Username, in.GatewayURL, in.AccessToken, u.Username,
		userList(in.Users), u.Password,
		in.CAFile, in.TokenEndpoint, in.FrontendClientID, u.Username, u.Password, in.Scope)
}

func userList(us []fakeentra.UserInfo) string {
	var names []string
	for _, u := range us {
		names = append(names, u.Username)
	}
	return strings.Join(names, ", ")
}

// otelOnly is the OTEL_* entries of environ: the demo's configuration is
// its own, but tracing is the operator's to turn on.
func otelOnly(environ []string) []string {
	out := []string{}
	for _, kv := range environ {
		if strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}

// restoreEnv returns a function that puts the variables back as they are
// now: set to their values, or unset.
func restoreEnv(names ...string) func() {
	type was struct {
		v  string
		ok bool
	}
	saved := map[string]was{}
	for _, n := range names {
		v, ok := os.LookupEnv(n)
		saved[n] = was{v, ok}
	}
	return func() {
		for n, w := range saved {
			if w.ok {
				_ = os.Setenv(n, w.v)
			} else {
				_ = os.Unsetenv(n)
			}
		}
	}
}
