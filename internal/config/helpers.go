package config

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
)

// redacted replaces a secret wherever the configuration is shown.
const redacted = "REDACTED"

// Resource returns the downstream resource of the route's scopes, the part
// before the last '/' (api://orders-api for api://orders-api/.default), or
// "" when the route exchanges no token. Validate makes all scopes of a route
// name one resource.
func (r *Route) Resource() string {
	if len(r.DownstreamScopes) == 0 {
		return ""
	}
	resource, _, _ := splitScope(r.DownstreamScopes[0])
	return resource
}

// TrustedProxyPrefixes returns trusted_proxies as prefixes, a single IP as a
// /32 or /128, host bits cleared. Entries Validate would reject are skipped.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parseTrustedProxy(s); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Redacted returns a deep copy of c to log or print, with
// entra.certificate.password replaced by "REDACTED" when set.
func (c *Config) Redacted() *Config {
	r := *c
	if c.TLS != nil {
		t := *c.TLS
		r.TLS = &t
	}
	if c.Entra.InstanceDiscovery != nil {
		on := *c.Entra.InstanceDiscovery
		r.Entra.InstanceDiscovery = &on
	}
	r.Entra.Audiences = slices.Clone(c.Entra.Audiences)
	r.Entra.AllowedTenants = slices.Clone(c.Entra.AllowedTenants)
	r.Entra.Certificate.Password = redactedIfSet(c.Entra.Certificate.Password)
	r.Routes = slices.Clone(c.Routes)
	for i := range r.Routes {
		rt := &r.Routes[i]
		rt.DownstreamScopes = slices.Clone(rt.DownstreamScopes)
		rt.RequiredScopes = slices.Clone(rt.RequiredScopes)
		rt.RequiredRoles = slices.Clone(rt.RequiredRoles)
	}
	r.CORS.AllowedOrigins = slices.Clone(c.CORS.AllowedOrigins)
	r.CORS.AllowedHeaders = slices.Clone(c.CORS.AllowedHeaders)
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	return &r
}

func redactedIfSet(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

// String shows the certificate settings with the password redacted, so
// that printing a Config with %v or %+v cannot reveal it.
func (c Certificate) String() string {
	return "{path:" + c.Path + " key_path:" + c.KeyPath + " password:" + redactedIfSet(c.Password) +
		" send_x5c:" + strconv.FormatBool(c.SendX5C) + "}"
}

// GoString is String, for %#v.
func (c Certificate) GoString() string { return c.String() }

// LogValue logs the certificate settings with the password redacted.
func (c Certificate) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("path", c.Path),
		slog.String("key_path", c.KeyPath),
		slog.String("password", redactedIfSet(c.Password)),
		slog.Bool("send_x5c", c.SendX5C),
	)
}

// MarshalJSON writes the certificate settings with the password redacted,
// so that a Config logged by a JSON handler cannot reveal it.
func (c Certificate) MarshalJSON() ([]byte, error) {
	type plain Certificate // without the methods
	p := plain(c)
	p.Password = redactedIfSet(p.Password)
	return json.Marshal(p)
}
