package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/cors"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
	"github.com/obo-gateway/obo-gateway/internal/urlpath"
)

var (
	guidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	routeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// maxClockSkew bounds entra.clock_skew: more would accept tokens long expired.
const maxClockSkew = 5 * time.Minute

// Options adjust ValidateWith. The zero Options is Validate.
type Options struct {
	// Source places each problem: at the file's line of the value, or on
	// the variable it came from (see Parse). Nil: problems name the
	// setting, and the variable that sets it, only.
	Source *Source
	// SkipFiles leaves the files the settings name unopened
	// (entra.certificate.path and key_path, entra.ca_file, tls.cert_file and
	// key_file, cache.redis.ca_file): only whether they are given where
	// required is checked. For checking a configuration away from the
	// machine it runs on.
	SkipFiles bool
	// Unused names the settings the caller does without, each a setting
	// as EnvVars and docs/configuration.md write it (entra.ca_file) or a
	// section (entra.certificate): a problem with one of them, a required
	// one missing included, is returned among the ignored ones instead of
	// failing the validation.
	Unused []string
}

// Validate checks c as Parse leaves it (defaults applied) and returns
// every problem at once, joined with errors.Join; each is a *FieldError
// naming the setting by its YAML path, the variable that sets it, and the
// fix. It checks that the files named exist and can be read, not what they
// hold. No message contains the certificate password, the Redis password
// or encryption key material.
func (c *Config) Validate() error {
	_, err := c.ValidateWith(Options{})
	return err
}

// ValidateWith is Validate as opts adjust it. err joins the problems that
// count; ignored lists, in order, those of the settings opts.Unused names.
func (c *Config) ValidateWith(opts Options) (ignored []*FieldError, err error) {
	p := &problems{skipFiles: opts.SkipFiles}
	var routeVars []string // the route variables set, when they can be listed
	if src := opts.Source; src != nil && src.listed {
		routeVars = src.routeVars
	}
	c.validateListeners(p)
	c.validateEntra(p)
	c.validateRoutes(p, routeVars)
	if len(c.Routes) > 0 {
		// Without routes, the problem of the routes names the variables.
		p.list = append(p.list, c.unknownRouteVars(routeVars)...)
	}
	c.validateCORS(p)
	c.validateCache(p)
	c.validateLimits(p)
	for i, s := range c.TrustedProxies {
		if _, err := parseTrustedProxy(s); err != nil {
			p.addValue(fmt.Sprintf("trusted_proxies[%d]", i), s, "%v", err)
		}
	}
	c.validateTracing(p)
	if c.ShutdownGrace < 0 {
		p.addValue("shutdown_grace", c.ShutdownGrace.String(), "must not be negative (%s); e.g. 20s", c.ShutdownGrace)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.addValue("log_level", c.LogLevel, "%q is not a level: use debug, info, warn or error", c.LogLevel)
	}

	envs := c.envFields()
	var errs []error
	for _, e := range p.list {
		locate(e, envs, opts.Source)
		if unused(opts.Unused, e.Setting()) {
			ignored = append(ignored, e)
			continue
		}
		errs = append(errs, e)
	}
	return ignored, errors.Join(errs...)
}

// unused reports whether setting is one of names, or in a section of them.
func unused(names []string, setting string) bool {
	for _, n := range names {
		if setting == n || strings.HasPrefix(setting, n+".") || strings.HasPrefix(setting, n+"[") {
			return true
		}
	}
	return false
}

// problems collects what Validate finds.
type problems struct {
	list      []*FieldError
	skipFiles bool // Options.SkipFiles
}

// add reports a problem with field.
func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// addValue reports a problem with field whose value v is safe to show.
func (p *problems) addValue(field, v, format string, args ...any) {
	p.list = append(p.list, &FieldError{Field: field, Value: v, Problem: fmt.Sprintf(format, args...)})
}

func (c *Config) validateListeners(p *problems) {
	apiHost, apiPort, apiOK := checkListen(p, "listen", "OBO_GATEWAY_LISTEN", c.Listen)
	admHost, admPort, admOK := checkListen(p, "admin_listen", "OBO_GATEWAY_ADMIN_LISTEN", c.AdminListen)
	if apiOK && admOK && apiPort == admPort && apiPort != "0" && sameHost(apiHost, admHost) {
		p.addValue("admin_listen", c.AdminListen, "%q is the address of listen (%q): the admin endpoints need their own port, e.g. :9090", c.AdminListen, c.Listen)
	}
	if t := c.TLS; t != nil && (t.CertFile != "" || t.KeyFile != "") {
		switch {
		case t.CertFile == "":
			p.add("tls.cert_file", "required when tls.key_file is set: give both files, or neither to serve plain HTTP")
		case t.KeyFile == "":
			p.add("tls.key_file", "required when tls.cert_file is set: give both files, or neither to serve plain HTTP")
		}
		checkReadable(p, "tls.cert_file", t.CertFile)
		checkReadable(p, "tls.key_file", t.KeyFile)
	}
}

// checkListen checks a host:port listen address; port 0 picks a free port.
func checkListen(p *problems, field, env, addr string) (host, port string, ok bool) {
	if addr == "" {
		p.add(field, "required: set %s or %s to host:port, e.g. :8080 or 127.0.0.1:8080", field, env)
		return "", "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.addValue(field, addr, "%q is not host:port: write e.g. :8080, 0.0.0.0:8080 or [::1]:8080", addr)
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addValue(field, addr, "%q: the port must be a number from 0 to 65535", addr)
		return "", "", false
	}
	return host, port, true
}

// sameHost reports whether two listen hosts can collide on one port: equal,
// or either is every interface.
func sameHost(a, b string) bool {
	everywhere := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return a == b || everywhere(a) || everywhere(b)
}

func (c *Config) validateEntra(p *problems) {
	e := &c.Entra
	switch t := e.TenantID; {
	case t == "":
		p.add("entra.tenant_id", "required: set entra.tenant_id or AZURE_TENANT_ID to the Directory (tenant) ID GUID from the app registration's Overview page")
	case isMultiTenantAlias(t):
		p.addValue("entra.tenant_id", t, "%q is not a tenant: OBO exchanges go to the gateway's own tenant, so set its Directory (tenant) ID GUID (the app registration's Overview page); to accept users of other tenants, list their IDs in entra.allowed_tenants", t)
	case !guidRE.MatchString(t):
		p.addValue("entra.tenant_id", t, "%q is not a GUID: set the Directory (tenant) ID GUID from the app registration's Overview page (not the domain name)", t)
	}
	switch id := e.ClientID; {
	case id == "":
		p.add("entra.client_id", "required: set entra.client_id or AZURE_CLIENT_ID to the Application (client) ID GUID from the app registration's Overview page")
	case !guidRE.MatchString(id):
		p.addValue("entra.client_id", id, "%q is not a GUID: set the Application (client) ID GUID from the app registration's Overview page (an App ID URI such as api://… belongs in entra.audiences)", id)
	}
	for i, t := range e.AllowedTenants {
		field := fmt.Sprintf("entra.allowed_tenants[%d]", i)
		switch {
		case isMultiTenantAlias(t):
			p.addValue(field, t, "%q is not a tenant: list the Directory (tenant) ID GUID of each tenant whose users are accepted", t)
		case !guidRE.MatchString(t):
			p.addValue(field, t, "%q is not a GUID: list the Directory (tenant) ID GUID of each tenant whose users are accepted", t)
		}
	}
	if checkAuthorityHost(p, e.AuthorityHost) && e.InstanceDiscovery != nil && *e.InstanceDiscovery && !isMicrosoftAuthorityHost(e.AuthorityHost) {
		// On by default only for Microsoft's hosts: it was set.
		p.addValue("entra.instance_discovery", "true", "on for %s, a host Entra does not know: MSAL would ask login.microsoftonline.com to validate it, and every exchange would fail; remove the setting (entra.instance_discovery or OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY), whose default is off for hosts other than Microsoft's, or set it to false", hostOf(e.AuthorityHost))
	}
	for i, a := range e.Audiences {
		field := fmt.Sprintf("entra.audiences[%d]", i)
		switch {
		case guidRE.MatchString(a):
			p.addValue(field, a, "%q is a GUID: the client ID is accepted as audience already (entra.client_id); entra.audiences lists App ID URIs such as api://obo-gateway", a)
		case !isAbsoluteURI(a):
			p.addValue(field, a, "%q is not an absolute URI: write the App ID URI from the app registration's Expose an API page, e.g. api://obo-gateway or https://gateway.contoso.com", a)
		}
	}
	for i, c := range e.ClientCapabilities {
		if c != "cp1" {
			p.addValue(fmt.Sprintf("entra.client_capabilities[%d]", i), c, "%q is not a capability Entra knows: the only one is cp1 (continuous access evaluation)", c)
		}
	}
	if e.ClockSkew < 0 || e.ClockSkew.D() > maxClockSkew {
		p.addValue("entra.clock_skew", e.ClockSkew.String(), "%s is out of range: use 0 to 5m (default 1m)", e.ClockSkew)
	}
	if e.TokenTimeout <= 0 {
		p.addValue("entra.token_timeout", e.TokenTimeout.String(), "must be positive (%s); e.g. 10s", e.TokenTimeout)
	}
	if e.KeysRefreshInterval <= 0 {
		p.addValue("entra.keys_refresh_interval", e.KeysRefreshInterval.String(), "must be positive (%s); e.g. 1h", e.KeysRefreshInterval)
	}
	if e.KeysMinRefreshInterval <= 0 {
		p.addValue("entra.keys_min_refresh_interval", e.KeysMinRefreshInterval.String(), "must be positive (%s); e.g. 30s", e.KeysMinRefreshInterval)
	} else if e.KeysRefreshInterval > 0 && e.KeysMinRefreshInterval > e.KeysRefreshInterval {
		p.addValue("entra.keys_min_refresh_interval", e.KeysMinRefreshInterval.String(), "%s is longer than entra.keys_refresh_interval (%s): it bounds refreshes between the regular ones", e.KeysMinRefreshInterval, e.KeysRefreshInterval)
	}

	switch e.Credential {
	case "", CredentialCertificate: // "" before defaults
		// The password is never checked nor printed: the obo package opens the file.
		if e.Certificate.Path == "" {
			p.add("entra.certificate.path", "required: set entra.certificate.path or AZURE_CLIENT_CERTIFICATE_PATH to the PEM or PFX file of the certificate uploaded to the app registration (Certificates & secrets); without a certificate, set entra.credential to workload_identity or managed_identity")
		} else {
			checkReadable(p, "entra.certificate.path", e.Certificate.Path)
		}
		if e.Certificate.KeyPath != "" {
			checkReadable(p, "entra.certificate.key_path", e.Certificate.KeyPath)
		}
	case CredentialWorkloadIdentity:
		if e.WorkloadIdentity.TokenFile == "" {
			p.add("entra.workload_identity.token_file", "required for entra.credential workload_identity: AZURE_FEDERATED_TOKEN_FILE is set by the AKS workload identity webhook in pods labelled azure.workload.identity/use: \"true\" whose service account is annotated azure.workload.identity/client-id; or set entra.workload_identity.token_file")
		} else {
			checkReadable(p, "entra.workload_identity.token_file", e.WorkloadIdentity.TokenFile)
		}
	case CredentialManagedIdentity:
		if id := e.ManagedIdentity.ClientID; id != "" && !guidRE.MatchString(id) {
			p.addValue("entra.managed_identity.client_id", id, "%q is not a GUID: set the client ID of the user-assigned managed identity (its Overview page), or leave it unset for the system-assigned identity", id)
		}
		if a := e.ManagedIdentity.Audience; a != "" && !isAbsoluteURI(a) {
			p.addValue("entra.managed_identity.audience", a, "%q is not an absolute URI: the token-exchange audience is api://AzureADTokenExchange in the public cloud; leave it unset for the cloud's default", a)
		}
	default:
		p.addValue("entra.credential", e.Credential, "%q is not a credential kind: use certificate (the default), workload_identity or managed_identity", e.Credential)
	}
	if e.Credential != "" && e.Credential != CredentialCertificate && (e.Certificate.Path != "" || e.Certificate.KeyPath != "") {
		p.addValue("entra.certificate.path", e.Certificate.Path, "is set, but entra.credential is %s: the certificate would not be used; remove entra.certificate (or AZURE_CLIENT_CERTIFICATE_PATH), or set entra.credential to certificate", e.Credential)
	}
	if e.CAFile != "" {
		checkReadable(p, "entra.ca_file", e.CAFile)
	}
}

func isMultiTenantAlias(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// checkAuthorityHost checks entra.authority_host, and reports whether it is
// a good one.
func checkAuthorityHost(p *problems, host string) bool {
	const field = "entra.authority_host"
	u, err := url.Parse(host)
	switch {
	case host == "":
		p.add(field, "required: e.g. https://login.microsoftonline.com (the default)")
	case err != nil || u.Host == "":
		p.addValue(field, host, "%q is not a URL: write https://host, e.g. https://login.microsoftonline.com or https://login.microsoftonline.us", host)
	case u.Scheme != "https":
		p.addValue(field, host, "%q: Entra is reached over https only: write https://%s", host, u.Host)
	case u.Path != "" && u.Path != "/":
		p.addValue(field, host, "%q has a path: the authority host is https://host[:port] only; put the tenant in entra.tenant_id (write https://%s)", host, u.Host)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		p.addValue(field, host, "%q: write https://host[:port] only, e.g. https://%s", host, u.Host)
	default:
		return true
	}
	return false
}

// hostOf is the host of an authority host URL Validate accepts.
func hostOf(authorityHost string) string {
	u, err := url.Parse(authorityHost)
	if err != nil {
		return authorityHost
	}
	return u.Hostname()
}

// validateRoutes checks the routes; routeVars are the route variables set
// in the environment, when it can be listed.
func (c *Config) validateRoutes(p *problems, routeVars []string) {
	if len(c.Routes) == 0 {
		p.add("routes", "%s", noRoutesProblem(routeVars))
	}
	names := map[string]int{}    // name → index
	envNames := map[string]int{} // routeEnvName → index
	prefixes := map[string]int{} // path_prefix → index
	for i := range c.Routes {
		r := &c.Routes[i]
		at := func(f string) string { return fmt.Sprintf("routes[%d].%s", i, f) }

		switch {
		case r.Name == "":
			p.add(at("name"), "required: a short label for metrics and logs, e.g. orders")
		case !routeNameRE.MatchString(r.Name):
			p.addValue(at("name"), r.Name, "%q: use lowercase letters, digits, '-' and '_', starting with a letter or digit", r.Name)
		case r.Name == unmatchedRoute:
			p.addValue(at("name"), r.Name, "%q is the label of requests no route matched: choose another name", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				p.addValue(at("name"), r.Name, "%q is also the name of routes[%d]: names must be unique", r.Name, j)
			} else if j, dup := envNames[routeEnvName(r.Name)]; dup {
				p.addValue(at("name"), r.Name, "%q and %q (routes[%d]) share the variables %s%s_*: rename one", r.Name, c.Routes[j].Name, j, routeEnvPrefix, routeEnvName(r.Name))
			}
			names[r.Name] = i
			envNames[routeEnvName(r.Name)] = i
		}

		if msg := pathPrefixProblem(r.PathPrefix); msg != "" {
			p.addValue(at("path_prefix"), r.PathPrefix, "%s", msg)
		} else if j, dup := prefixes[r.PathPrefix]; dup {
			p.addValue(at("path_prefix"), r.PathPrefix, "%q is also the path_prefix of routes[%d]: each prefix belongs to one route", r.PathPrefix, j)
		} else {
			prefixes[r.PathPrefix] = i
		}

		if msg := upstreamProblem(r.Upstream); msg != "" {
			p.addValue(at("upstream"), shownURL(r.Upstream), "%s", msg)
		}
		checkDownstreamScopes(p, at("downstream_scopes"), r.DownstreamScopes)
		for j, s := range r.RequiredScopes {
			f := fmt.Sprintf("%s[%d]", at("required_scopes"), j)
			switch {
			case s == "" || strings.ContainsAny(s, " \t,"):
				p.addValue(f, s, "%q: write one scope name per list item", s)
			case strings.Contains(s, "/"):
				p.addValue(f, s, "%q: a token's scp claim holds bare scope names: write %q", s, s[strings.LastIndex(s, "/")+1:])
			}
		}
		for j, role := range r.RequiredRoles {
			if role == "" || strings.ContainsAny(role, " \t,") {
				p.addValue(fmt.Sprintf("%s[%d]", at("required_roles"), j), role, "%q: write one app role value per list item", role)
			}
		}
		if r.Timeout <= 0 {
			p.addValue(at("timeout"), r.Timeout.String(), "must be positive (%s); e.g. 30s (the default)", r.Timeout)
		}
		checkRange(p, at("max_body_bytes"), r.MaxBodyBytes, minBodyBytes, maxBodyBytes, "the limits.max_body_bytes default")
		checkRange(p, at("body_timeout"), r.BodyTimeout.D(), minBodyTimeout, maxBodyTimeout, "the limits.body_timeout default")
		switch r.ProxyLeg {
		case "", "auto", "fast", "standard":
		default:
			p.addValue(at("proxy_leg"), r.ProxyLeg, "%q is not a proxy leg: use auto (the default), fast (HTTP/1.1 on the gateway's own connections) or standard (net/http's Transport: HTTP/2, HTTP proxies)", r.ProxyLeg)
		}
		if r.MaxInFlight < 0 || (c.Limits.MaxInFlight > 0 && r.MaxInFlight > c.Limits.MaxInFlight) {
			p.addValue(at("max_in_flight"), strconv.Itoa(r.MaxInFlight), "%d is out of range: use 0 (only limits.max_in_flight applies) to limits.max_in_flight (%d)", r.MaxInFlight, c.Limits.MaxInFlight)
		}
	}
	// Prefixes that only case, or trailing dots, tell apart: a
	// case-insensitive upstream (IIS, ASP.NET) would read one as the other.
	for i := range c.Routes {
		for j := i + 1; j < len(c.Routes); j++ {
			a, b := c.Routes[i].PathPrefix, c.Routes[j].PathPrefix
			if pathPrefixProblem(a) != "" || pathPrefixProblem(b) != "" || a == b {
				continue
			}
			if (urlpath.HasPrefixFold(a, b) && !urlpath.HasPrefix(a, b)) || (urlpath.HasPrefixFold(b, a) && !urlpath.HasPrefix(b, a)) {
				p.addValue(fmt.Sprintf("routes[%d].path_prefix", j), b, "%q and %q (routes[%d]) differ only in case, trailing dots or a format suffix (.json): a lenient upstream would read one as the other; spell them alike or apart", b, a, i)
			}
		}
	}
	c.checkUpstreamOverlap(p)
}

// noRoutesProblem says what to do about a configuration without routes,
// naming the route variables set (routeVars), which cannot make one.
func noRoutesProblem(routeVars []string) string {
	const required = "at least one route is required (name, path_prefix, upstream): routes are defined in the file"
	if len(routeVars) == 0 {
		return required + "; a variable " + routeEnvPrefix + "<NAME>_<FIELD> only overrides a field of a route the file defines"
	}
	var names []string
	for _, v := range routeVars {
		if n := routeNameOf(v); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	add := "add the routes to the file"
	switch len(names) {
	case 0:
	case 1:
		add = "add the route " + names[0] + " to the file (routes: with name, path_prefix and upstream)"
	default:
		add = "add the routes " + strings.Join(names, ", ") + " to the file (routes: with name, path_prefix and upstream)"
	}
	return fmt.Sprintf("%s, and the variables set (%s) only override the fields of a route the file defines: %s", required, strings.Join(routeVars, ", "), add)
}

// checkUpstreamOverlap refuses two routes with different policies whose
// requests can reach the same paths of one upstream. The router keeps
// routes apart by their gateway paths; that keeps them apart upstream only
// while each upstream path has one gateway path. Routes that forward the path
// as it is onto the same base path keep that (the router's nesting decides
// upstream too); a route that strips its prefix or has another base path
// maps its requests elsewhere, and must then not reach into another route's
// upstream paths: /public (strip_prefix) onto https://h/ would serve
// /public/admin/users as https://h/admin/users, the path of an /admin route
// that asks for more.
func (c *Config) checkUpstreamOverlap(p *problems) {
	type space struct {
		origin, base, reach string // reach: the upstream path prefix every request of the route lies under
		ok                  bool
	}
	spaceOf := func(r *Route) space {
		u, err := url.Parse(r.Upstream)
		if err != nil || upstreamProblem(r.Upstream) != "" || pathPrefixProblem(r.PathPrefix) != "" {
			return space{}
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		base := "/" + strings.Trim(u.Path, "/")
		reach := base
		if !r.StripPrefix {
			reach = strings.TrimSuffix(base, "/") + r.PathPrefix
		}
		return space{origin: u.Scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port, base: base, reach: reach, ok: true}
	}
	for i := range c.Routes {
		for j := i + 1; j < len(c.Routes); j++ {
			a, b := &c.Routes[i], &c.Routes[j]
			sa, sb := spaceOf(a), spaceOf(b)
			if !sa.ok || !sb.ok || sa.origin != sb.origin || samePolicy(a, b) {
				continue
			}
			if !a.StripPrefix && !b.StripPrefix && sa.base == sb.base {
				continue // the gateway path is the upstream path: the router decides
			}
			if urlpath.HasPrefixFold(sa.reach, sb.reach) || urlpath.HasPrefixFold(sb.reach, sa.reach) {
				p.addValue(fmt.Sprintf("routes[%d].upstream", j), shownURL(b.Upstream), "routes %q and %q reach the same paths of %s (%s and %s) with different scopes, roles or downstream scopes: one route's requests could be served as the other's paths; give them separate upstream paths, or forward both without strip_prefix onto one base path so that the router keeps them apart", b.Name, a.Name, sa.origin, sb.reach, sa.reach)
			}
		}
	}
}

// samePolicy reports routes that ask the same of a token and exchange it
// for the same downstream scopes: reaching one's upstream paths through the
// other grants nothing more.
func samePolicy(a, b *Route) bool {
	same := func(x, y []string) bool {
		x, y = slices.Clone(x), slices.Clone(y)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	}
	return same(a.RequiredScopes, b.RequiredScopes) && same(a.RequiredRoles, b.RequiredRoles) &&
		same(a.DownstreamScopes, b.DownstreamScopes)
}

// unmatchedRoute labels the requests no route matched, in metrics and logs.
const unmatchedRoute = "unmatched"

// The bounds of the limits.
const (
	minBodyBytes      = ByteSize(1)
	maxBodyBytes      = 64 * GiB
	minBodyTimeout    = time.Second
	maxBodyTimeout    = time.Hour
	minHeaderBytes    = 4 * KiB
	maxHeaderBytes    = MiB
	maxConnections    = 1 << 20
	maxExchanges      = 1024
	maxQueued         = 1 << 20
	minQueueTimeout   = 10 * time.Millisecond
	maxQueueTimeout   = time.Minute
	minServerTimeout  = time.Second
	maxServerTimeouts = time.Hour
)

func (c *Config) validateLimits(p *problems) {
	l := &c.Limits
	checkRange(p, "limits.max_connections", l.MaxConnections, 1, maxConnections, "default 2048")
	checkRange(p, "limits.max_in_flight", l.MaxInFlight, 1, maxConnections, "default 512")
	checkRange(p, "limits.max_concurrent_exchanges", l.MaxConcurrentExchanges, 1, maxExchanges, "default 16")
	checkRange(p, "limits.max_queued_exchanges", l.MaxQueuedExchanges, 1, maxQueued, "default 256")
	checkRange(p, "limits.exchange_queue_timeout", l.ExchangeQueueTimeout.D(), minQueueTimeout, maxQueueTimeout, "default 2s")
	checkRange(p, "limits.read_header_timeout", l.ReadHeaderTimeout.D(), minServerTimeout, maxServerTimeouts, "default 10s")
	checkRange(p, "limits.body_timeout", l.BodyTimeout.D(), minBodyTimeout, maxBodyTimeout, "default 30s")
	checkRange(p, "limits.idle_timeout", l.IdleTimeout.D(), minServerTimeout, maxServerTimeouts, "default 120s")
	checkRange(p, "limits.max_header_bytes", l.MaxHeaderBytes, minHeaderBytes, maxHeaderBytes, "default 64KiB")
	checkRange(p, "limits.max_body_bytes", l.MaxBodyBytes, minBodyBytes, maxBodyBytes, "default 10MiB")
}

// checkRange reports v outside lo..hi, printing the values as the
// configuration writes them.
func checkRange[T interface {
	~int | ~int64
}](p *problems, field string, v, lo, hi T, def string) {
	if v >= lo && v <= hi {
		return
	}
	show := func(x T) string {
		switch x := any(x).(type) {
		case time.Duration:
			return x.String()
		case ByteSize:
			return x.String()
		default:
			return fmt.Sprint(x)
		}
	}
	p.addValue(field, show(v), "%s is out of range: use %s to %s (%s)", show(v), show(lo), show(hi), def)
}

// pathPrefixProblem says what is wrong with a route's path prefix, or "".
func pathPrefixProblem(pp string) string {
	switch {
	case pp == "":
		return "required: the path the route serves, e.g. /orders (or / for everything)"
	case !strings.HasPrefix(pp, "/"):
		return fmt.Sprintf("%q must start with '/': write /%s", pp, pp)
	case strings.ContainsAny(pp, "?#*"):
		return fmt.Sprintf("%q: a prefix is a plain path, matched at a segment boundary: no '?', '#' or '*'", pp)
	case strings.Contains(pp, ".."):
		return fmt.Sprintf("%q must not contain '..'", pp)
	case pp != "/" && strings.HasSuffix(pp, "/"):
		return fmt.Sprintf("%q: drop the trailing '/' (write %s): /orders matches /orders and /orders/1 already", pp, strings.TrimRight(pp, "/"))
	case !urlpath.IsLiteral(pp):
		return fmt.Sprintf("%q: a prefix is written with letters, digits, '/' and -._~!$&'()+,=:@ only (no '%%', ';', '\\', braces, spaces or non-ASCII characters): requests are routed on their canonical path, in which these appear only encoded or are refused", pp)
	case !urlpath.IsCanonical(pp):
		return fmt.Sprintf("%q has an empty or dot segment: write each segment once, e.g. /orders/admin", pp)
	}
	return ""
}

// upstreamProblem says what is wrong with an upstream URL, or "". It never
// prints a password in the URL.
func upstreamProblem(up string) string {
	if up == "" {
		return "required: the base URL of the API, e.g. https://orders.internal.example.com"
	}
	u, err := url.Parse(up)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "is not an absolute URL: write http(s)://host[:port][/base/path], e.g. https://orders.internal.example.com"
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q: the scheme must be http or https", shown)
	case u.User != nil:
		return fmt.Sprintf("%q: remove the user information: the gateway authenticates upstream with the OBO token", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Sprintf("%q: an upstream has no query or fragment: write the base URL only", shown)
	}
	return ""
}

// checkDownstreamScopes checks a route's OBO scopes (see AnalyzeScopes).
func checkDownstreamScopes(p *problems, field string, scopes []string) {
	for _, sp := range AnalyzeScopes(scopes).Problems {
		if sp.Index < 0 {
			p.add(field, "%s: %s", sp.Detail, sp.Fix)
			continue
		}
		p.addValue(fmt.Sprintf("%s[%d]", field, sp.Index), scopes[sp.Index], "%s: %s", sp.Detail, sp.Fix)
	}
}

// splitScope splits "<resource>/<scope>" at the last '/'; ok is false when
// there is no resource (a bare scope, or a bare URI like api://orders-api).
func splitScope(s string) (resource, scope string, ok bool) {
	i := strings.LastIndex(s, "/")
	if i <= 0 || strings.HasSuffix(s[:i], ":/") {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

func isOIDCScope(s string) bool {
	switch strings.ToLower(s) {
	case "openid", "profile", "offline_access", "email":
		return true
	}
	return false
}

// isAbsoluteURI reports whether s is a URI with a scheme and an authority
// or opaque part: api://obo-gateway, https://graph.microsoft.com, urn:x.
func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

func (c *Config) validateCORS(p *problems) {
	origins := c.CORS.AllowedOrigins
	for i, o := range origins {
		field := fmt.Sprintf("cors.allowed_origins[%d]", i)
		if o == "*" {
			if len(origins) > 1 {
				p.add(field, "\"*\" allows every origin: list it alone, or list exact origins")
			}
			continue
		}
		// The configuration's own, stricter words first (lower case, no
		// "null"), then the rule the CORS middleware itself applies.
		if msg := originProblem(o); msg != "" {
			p.addValue(field, o, "%s", msg)
		} else if err := cors.CheckOrigin(o); err != nil {
			p.addValue(field, o, "%v", err)
		}
	}
	for i, h := range c.CORS.AllowedHeaders {
		if err := cors.CheckHeaderName(h); err != nil {
			p.addValue(fmt.Sprintf("cors.allowed_headers[%d]", i), h, "%v", err)
		}
	}
	if c.CORS.MaxAge < 0 {
		p.addValue("cors.max_age", c.CORS.MaxAge.String(), "must not be negative (%s); e.g. 10m", c.CORS.MaxAge)
	}
}

// originProblem says what is wrong with a CORS origin, or "". An origin is
// what browsers send: scheme://host[:port], lower-case, no path.
func originProblem(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Sprintf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com, or \"*\"", o)
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil:
		return fmt.Sprintf("%q: an origin has no path: write %s://%s", o, u.Scheme, u.Host)
	case o != strings.ToLower(o):
		return fmt.Sprintf("%q: browsers send origins in lower case: write %s", o, strings.ToLower(o))
	}
	return ""
}

// parseTrustedProxy reads a CIDR or a single IP (as a /32 or /128).
func parseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: write e.g. 10.0.0.0/8 or fd00::/8", s)
		}
		return pfx.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an IP address (192.0.2.10)", s)
	}
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// The bounds of the cache settings.
const (
	minCacheBudget        = MiB
	maxCacheBudget        = 64 * GiB
	minCacheRefreshMargin = time.Minute
	maxCacheRefreshMargin = 30 * time.Minute
	minRedisTimeout       = time.Millisecond
	maxRedisTimeout       = 5 * time.Second
)

func (c *Config) validateCache(p *problems) {
	k := &c.Cache
	checkBudget(p, "cache.memory_budget", k.MemoryBudget, defaultCacheMemoryBudget)
	checkBudget(p, "cache.verified_tokens_budget", k.VerifiedTokensBudget, defaultVerifiedTokensBudget)
	if m := k.RefreshMargin.D(); m < minCacheRefreshMargin || m > maxCacheRefreshMargin {
		p.addValue("cache.refresh_margin", k.RefreshMargin.String(), "%s is out of range: use 1m to 30m (default 5m)", k.RefreshMargin)
	}
	if k.Redis != nil {
		k.Redis.validate(p)
	}
}

func checkBudget(p *problems, field string, b, def ByteSize) {
	if b >= minCacheBudget && b <= maxCacheBudget {
		return
	}
	hint := ""
	if b > 0 && b < minCacheBudget {
		hint = "; a plain number counts bytes"
	}
	p.addValue(field, b.String(), "%s is out of range: use %s to %s (default %s)%s", b, minCacheBudget, maxCacheBudget, def, hint)
}

// validate checks the shared cache's settings. No message contains the
// password or key material.
func (r *Redis) validate(p *problems) {
	if msg := redisAddressProblem(r.Address); msg != "" {
		p.add("cache.redis.address", "%s", msg)
	}
	if r.DB < 0 {
		p.addValue("cache.redis.db", strconv.Itoa(r.DB), "must not be negative (%d): Redis numbers its databases from 0", r.DB)
	}
	if r.CAFile != "" {
		if !r.TLS {
			p.addValue("cache.redis.ca_file", r.CAFile, "set, but cache.redis.tls is false: the CA file is trusted for TLS to Redis; set cache.redis.tls: true (OBO_GATEWAY_CACHE_REDIS_TLS), or remove ca_file")
		}
		checkReadable(p, "cache.redis.ca_file", r.CAFile)
	}
	if t := r.Timeout.D(); t < minRedisTimeout || t > maxRedisTimeout {
		p.addValue("cache.redis.timeout", r.Timeout.String(), "%s is out of range: use 1ms to 5s (default 50ms): a slow cache must not hold up requests", r.Timeout)
	}

	const keysField = "cache.redis.encryption_keys"
	if strings.TrimSpace(r.EncryptionKeys) == "" {
		p.add(keysField, "required when cache.redis.address is set: the shared cache holds users' downstream tokens: set cache.redis.encryption_keys (OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS) to kid:base64 of 32 random bytes, e.g. `k1:$(head -c32 /dev/urandom | base64)`")
		return
	}
	_, ids, msgs := parseEncryptionKeys(r.EncryptionKeys)
	for _, msg := range msgs {
		p.add(keysField, "%s", msg)
	}
	if len(msgs) > 0 {
		return // the key ID cannot be checked against entries that are wrong
	}
	switch id := r.EncryptionKeyID; {
	case id == "":
		p.add("cache.redis.encryption_key_id", "required: name the key new values are encrypted with, one of %s", strings.Join(ids, ", "))
	case !keyIDRE.MatchString(id):
		p.add("cache.redis.encryption_key_id", "is not a key ID: write one of %s (the part before ':' of an entry of %s)", strings.Join(ids, ", "), keysField)
	case !slices.Contains(ids, id):
		p.add("cache.redis.encryption_key_id", "%q is not among the key IDs of %s (%s): name the key new values are encrypted with", id, keysField, strings.Join(ids, ", "))
	}
}

// redisAddressProblem says what is wrong with a Redis address, or "". It
// never prints an address that could hold a password.
func redisAddressProblem(addr string) string {
	const eg = "e.g. redis.internal:6379"
	switch {
	case addr == "":
		return "required: set cache.redis.address or OBO_GATEWAY_CACHE_REDIS_ADDRESS to host:port, " + eg + " (without an address there is no shared cache: remove the section)"
	case strings.Contains(addr, "://"):
		return "is a URL: write host:port only, " + eg + ", and set cache.redis.tls, username, password and db apart"
	case strings.Contains(addr, "@"):
		return "contains '@': write host:port only, " + eg + "; the user and password go in cache.redis.username and cache.redis.password"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Sprintf("%q is not host:port: write %s or [fd00::1]:6379", addr, eg)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: the port must be a number from 1 to 65535, e.g. 6379", addr)
	}
	return ""
}

// keyIDRE is what an encryption key ID looks like.
var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// encryptionKeySize is the size of an AES-256 key.
const encryptionKeySize = 32

// keyEntry is one entry of encryption_keys, cut at its first ':' and trimmed.
type keyEntry struct {
	kid, key string
	hasKID   bool // the entry has a ':'
	empty    bool // nothing between two commas
}

// splitKeyEntries splits encryption_keys into its comma-separated entries;
// none when it is blank.
func splitKeyEntries(s string) []keyEntry {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var entries []keyEntry
	for e := range strings.SplitSeq(s, ",") {
		kid, key, ok := strings.Cut(strings.TrimSpace(e), ":")
		entries = append(entries, keyEntry{strings.TrimSpace(kid), strings.TrimSpace(key), ok, strings.TrimSpace(e) == ""})
	}
	return entries
}

// firstKeyID returns the ID of the first entry of encryption_keys, or ""
// when it has none or not a valid one.
func firstKeyID(s string) string {
	if entries := splitKeyEntries(s); len(entries) > 0 && entries[0].hasKID && keyIDRE.MatchString(entries[0].kid) {
		return entries[0].kid
	}
	return ""
}

// parseEncryptionKeys reads encryption_keys, "kid:BASE64,kid2:BASE64": keys
// by ID, the IDs in order, and what is wrong with each bad entry (none when
// all are good). Its messages never contain a key, nor an ID unless it is a
// valid one (a misplaced key cannot be one: std base64 of 32 bytes has 44
// characters).
func parseEncryptionKeys(s string) (keys map[string][]byte, ids []string, msgs []string) {
	const generate = "generate a key with `head -c32 /dev/urandom | base64`"
	entries := splitKeyEntries(s)
	if len(entries) == 0 {
		return nil, nil, []string{"no key: write kid:base64 of 32 random bytes, e.g. `k1:$(head -c32 /dev/urandom | base64)`"}
	}
	keys = map[string][]byte{}
	seen := map[string]int{} // key ID → entry number
	for i, e := range entries {
		at := fmt.Sprintf("entry %d of %d", i+1, len(entries))
		switch {
		case e.empty:
			msgs = append(msgs, at+" is empty: remove the extra ','")
			continue
		case !e.hasKID:
			msgs = append(msgs, at+" has no key ID: write kid:base64, e.g. k1:<base64 of 32 random bytes>, entries separated by ','")
			continue
		case !keyIDRE.MatchString(e.kid):
			msgs = append(msgs, at+": the key ID before ':' must be 1 to 32 letters, digits, '_' or '-' (write kid:base64)")
			continue
		}
		at = fmt.Sprintf("%s (key ID %q)", at, e.kid)
		if j, dup := seen[e.kid]; dup {
			msgs = append(msgs, fmt.Sprintf("%s: the key ID is also the ID of entry %d: IDs must be unique (rotate by adding a key with a new ID)", at, j))
			continue
		}
		seen[e.kid] = i + 1
		key, err := base64.StdEncoding.Strict().DecodeString(e.key)
		switch {
		case e.key == "":
			msgs = append(msgs, at+": no key after ':'; "+generate)
		case err != nil:
			msgs = append(msgs, at+": the key is not standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding); "+generate)
		case len(key) != encryptionKeySize:
			msgs = append(msgs, fmt.Sprintf("%s: the key is %d bytes, want %d (AES-256); %s", at, len(key), encryptionKeySize, generate))
		default:
			keys[e.kid] = key
			ids = append(ids, e.kid)
		}
	}
	return keys, ids, msgs
}

// checkReadable checks that a configured file can be opened for reading,
// unless the options skip files.
func checkReadable(p *problems, field, path string) {
	if path == "" || p.skipFiles {
		return
	}
	unreadable := func(err error, format string, args ...any) {
		p.list = append(p.list, &FieldError{Kind: KindUnreadableFile, Field: field, Value: path, Err: err, Problem: fmt.Sprintf(format, args...)})
	}
	f, err := os.Open(path)
	if err != nil {
		unreadable(err, "cannot read %q: %v", path, pathErrReason(err))
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		unreadable(nil, "%q is a directory: name the file", path)
	}
}

// shownURL is an upstream URL as a problem may show it: with any password
// redacted, or "" when it is not a URL with a host (the password would not
// be where Redacted looks for it).
func shownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return ""
	}
	return u.Redacted()
}

// validateTracing checks the tracing settings with the tracing package's
// own rules, naming each bad setting.
func (c *Config) validateTracing(p *problems) {
	t := c.Tracing
	if t.CAFile != "" {
		checkReadable(p, "tracing.ca_file", t.CAFile)
	}
	if t.ClientCertificate != "" {
		checkReadable(p, "tracing.client_certificate", t.ClientCertificate)
	}
	if t.ClientKey != "" {
		checkReadable(p, "tracing.client_key", t.ClientKey)
	}
	switch t.Exporter {
	case "", "otlp", "none":
	default:
		p.addValue("tracing.exporter", t.Exporter, "%q is not supported: use otlp or none", t.Exporter)
	}
	tc := t.settings("")
	if !t.Tracer("").Enabled() {
		// Off: check what would be used when it is turned on, but not the
		// endpoint, which is what turns it on.
		tc.Endpoint, tc.TracesEndpoint = "", ""
	}
	// The values a problem may show: never the headers (they may hold a
	// credential), endpoints without what could be one.
	values := map[string]string{
		"headers": redactedIfSet(t.Headers), "endpoint": redactedURL(t.Endpoint), "traces_endpoint": redactedURL(t.TracesEndpoint),
		"protocol": t.Protocol, "sampler": t.Sampler, "sampler_arg": t.SamplerArg, "compression": t.Compression,
		"resource_attributes": t.ResourceAttributes, "timeout": t.Timeout.String(), "client_certificate": t.ClientCertificate,
	}
	err := tc.Validate()
	for _, e := range unjoin(err) {
		var se *tracing.SettingError
		if !errors.As(e, &se) {
			continue
		}
		field := "tracing." + se.Setting
		value := values[se.Setting]
		p.addValue(field, value, "%v", se.Err)
	}
}

// unjoin is the errors errors.Join joined, or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// redactedURL is a URL without what could be a credential: its user
// information, its query and its fragment (a collector's API key is
// sometimes passed as a query parameter).
func redactedURL(raw string) string {
	parse := raw
	if !strings.Contains(raw, "://") {
		// host:port, as gRPC endpoints are written: "user:pw@host:4317"
		// would otherwise read as a URL of scheme "user".
		parse = "//" + raw
	}
	u, err := url.Parse(parse)
	switch {
	case err != nil && strings.ContainsAny(raw, "@?#"):
		return redacted
	case err != nil:
		return raw
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		u.RawQuery = redacted
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	if parse != raw {
		return strings.TrimPrefix(u.String(), "//")
	}
	return u.String()
}
