package config

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"

	"github.com/obo-gateway/obo-gateway/internal/auth"
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

// Policy is what the route demands of a valid token, as the gateway
// enforces it and gateway inspect explains it: required_scopes and
// required_roles as auth.Policy combines them, and a user's token wherever
// the route exchanges it On-Behalf-Of.
func (r *Route) Policy() auth.Policy {
	return auth.Policy{Scopes: r.RequiredScopes, Roles: r.RequiredRoles, RequireUser: len(r.DownstreamScopes) > 0}
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

// Keys parses encryption_keys ("kid:BASE64,kid2:BASE64", each the standard
// base64 of 32 random bytes) into the AES-256 keys by key ID, as Validate
// does. EncryptionKeyID names the one new values are encrypted with; the
// others only decrypt. The error joins a *FieldError per bad entry and never
// shows a key.
func (r *Redis) Keys() (map[string][]byte, error) {
	const field = "cache.redis.encryption_keys"
	if r == nil {
		return nil, &FieldError{Field: "cache.redis", Problem: "no shared cache is configured"}
	}
	keys, _, msgs := parseEncryptionKeys(r.EncryptionKeys)
	if len(msgs) > 0 {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			errs[i] = &FieldError{Field: field, Problem: m}
		}
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// Redacted returns a deep copy of c to log or print, with
// entra.certificate.password, cache.redis.password and
// cache.redis.encryption_keys replaced by "REDACTED" when set.
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
	r.Entra.ClientCapabilities = slices.Clone(c.Entra.ClientCapabilities)
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
	if c.Cache.Redis != nil {
		rd := c.Cache.Redis.redacted()
		r.Cache.Redis = &rd
	}
	r.Tracing = c.Tracing.redacted()
	return &r
}

// redacted returns a copy of r with the password and the keys redacted.
func (r Redis) redacted() Redis {
	r.Password = redactedIfSet(r.Password)
	r.EncryptionKeys = redactedIfSet(r.EncryptionKeys)
	return r
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

// String shows the shared cache's settings with the password and the
// encryption keys redacted, so that printing a Config cannot reveal them.
func (r Redis) String() string {
	r = r.redacted()
	return "{address:" + r.Address + " username:" + r.Username + " password:" + r.Password +
		" db:" + strconv.Itoa(r.DB) + " tls:" + strconv.FormatBool(r.TLS) + " ca_file:" + r.CAFile +
		" timeout:" + r.Timeout.String() + " encryption_keys:" + r.EncryptionKeys +
		" encryption_key_id:" + r.EncryptionKeyID + "}"
}

// GoString is String, for %#v.
func (r Redis) GoString() string { return r.String() }

// LogValue logs the shared cache's settings with the password and the
// encryption keys redacted.
func (r Redis) LogValue() slog.Value {
	r = r.redacted()
	return slog.GroupValue(
		slog.String("address", r.Address),
		slog.String("username", r.Username),
		slog.String("password", r.Password),
		slog.Int("db", r.DB),
		slog.Bool("tls", r.TLS),
		slog.String("ca_file", r.CAFile),
		slog.String("timeout", r.Timeout.String()),
		slog.String("encryption_keys", r.EncryptionKeys),
		slog.String("encryption_key_id", r.EncryptionKeyID),
	)
}

// MarshalJSON writes the shared cache's settings with the password and the
// encryption keys redacted, so that a Config logged by a JSON handler cannot
// reveal them.
func (r Redis) MarshalJSON() ([]byte, error) {
	type plain Redis // without the methods
	return json.Marshal(plain(r.redacted()))
}

// redacted returns a copy of t with the headers (which may hold a
// collector's API key) and any credentials in the endpoints redacted.
func (t Tracing) redacted() Tracing {
	t.Headers = redactedIfSet(t.Headers)
	t.Endpoint = redactedURL(t.Endpoint)
	t.TracesEndpoint = redactedURL(t.TracesEndpoint)
	return t
}

// String prints the tracing settings with the headers redacted.
func (t Tracing) String() string {
	t = t.redacted()
	return "{endpoint:" + t.Endpoint + " traces_endpoint:" + t.TracesEndpoint + " protocol:" + t.Protocol +
		" headers:" + t.Headers + " timeout:" + t.Timeout.String() + " insecure:" + strconv.FormatBool(t.Insecure) +
		" ca_file:" + t.CAFile + " compression:" + t.Compression + " sampler:" + t.Sampler + " sampler_arg:" + t.SamplerArg +
		" service_name:" + t.ServiceName + " resource_attributes:" + t.ResourceAttributes + " exporter:" + t.Exporter +
		" disabled:" + strconv.FormatBool(t.Disabled) + "}"
}

// GoString is String, for %#v.
func (t Tracing) GoString() string { return t.String() }

// MarshalJSON writes the tracing settings with the headers and the
// endpoints' credentials redacted, so that a Config logged by a JSON
// handler cannot reveal them.
func (t Tracing) MarshalJSON() ([]byte, error) {
	type plain Tracing // without the methods
	return json.Marshal(plain(t.redacted()))
}

// LogValue logs the tracing settings with the headers redacted.
func (t Tracing) LogValue() slog.Value {
	t = t.redacted()
	return slog.GroupValue(
		slog.String("endpoint", t.Endpoint), slog.String("traces_endpoint", t.TracesEndpoint),
		slog.String("protocol", t.Protocol), slog.String("headers", t.Headers),
		slog.String("sampler", t.Sampler), slog.String("service_name", t.ServiceName),
		slog.Bool("disabled", t.Disabled),
	)
}
