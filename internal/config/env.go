package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// EnvVar documents one environment variable that overrides a setting.
type EnvVar struct {
	// Name is the variable, e.g. AZURE_TENANT_ID. Route variables are
	// patterns: OBO_GATEWAY_ROUTE_<NAME>_UPSTREAM, where <NAME> is the
	// route's name upper-cased with '-' written '_'.
	Name string
	// Field is the YAML path it sets, e.g. entra.tenant_id or routes[].upstream.
	Field string
	// Description says what the value is and how it is written.
	Description string
}

// routeEnvPrefix starts every route variable.
const routeEnvPrefix = "OBO_GATEWAY_ROUTE_"

// EnvVars lists every environment variable Load reads, in the order of the
// file's settings. The result is a fresh slice.
func EnvVars() []EnvVar {
	var vs []EnvVar
	for _, s := range envSettings() {
		vs = append(vs, s.EnvVar)
	}
	for _, s := range routeEnvSettings() {
		vs = append(vs, EnvVar{
			Name:        routeEnvPrefix + "<NAME>_" + s.suffix,
			Field:       "routes[]." + s.field,
			Description: s.description,
		})
	}
	return vs
}

// Environment is what Parse and Load read the environment variables from,
// in one of four forms:
//
//   - []string, "NAME=value" entries as os.Environ gives them (the first
//     of a name counts, as for os.Getenv): how gateway serve, doctor and
//     inspect read it.
//   - map[string]string, for tests: the same.
//   - func(string) (string, bool), such as os.LookupEnv.
//   - func(string) string, such as os.Getenv, for tests.
//
// In the first three, a variable set to "" is set: it clears its setting,
// which is left unset (its zero value) as if the file did not set it, so
// that the default applies. A getenv function cannot tell a variable set
// to "" from one unset: with it, an empty value counts as unset.
//
// A list and a map can be listed: with them, Load and ValidateWith report
// an OBO_GATEWAY_ROUTE_* variable that names no route of the file
// (KindUnknownVariable, as CheckEnviron does), and the problem of a file
// without routes names the route variables set. The functions cannot be
// listed, and such a variable goes unnoticed.
type Environment interface {
	[]string | map[string]string | func(string) (string, bool) | func(string) string
}

// environment is an Environment in one form.
type environment struct {
	lookup func(string) (string, bool)
	// names are the variables set, in order, when they can be listed.
	names  []string
	listed bool
}

// environmentOf reads env in whichever form it comes.
func environmentOf[E Environment](env E) environment {
	switch env := any(env).(type) {
	case []string:
		vars := make(map[string]string, len(env))
		var names []string
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if _, seen := vars[k]; !ok || k == "" || seen {
				continue
			}
			vars[k] = v
			names = append(names, k)
		}
		return environment{lookup: lookupIn(vars), names: names, listed: true}
	case map[string]string:
		names := slices.Sorted(maps.Keys(env))
		return environment{lookup: lookupIn(env), names: names, listed: true}
	case func(string) (string, bool):
		if env == nil {
			return environment{lookup: lookupIn(nil)}
		}
		return environment{lookup: env}
	case func(string) string:
		if env == nil {
			return environment{lookup: lookupIn(nil)}
		}
		return environment{lookup: func(k string) (string, bool) {
			v := env(k)
			return v, v != ""
		}}
	}
	panic("unreachable: Environment has four forms")
}

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// envSetting is one variable of the top-level table.
type envSetting struct {
	EnvVar
	set func(c *Config, value string) error
}

// routeEnvSetting is one field of a route, set by
// OBO_GATEWAY_ROUTE_<NAME>_<suffix>.
type routeEnvSetting struct {
	suffix      string
	field       string // below routes[i]
	description string
	set         func(r *Route, value string) error
}

// envSettings is the table of top-level variables: the Azure SDK's names
// where they exist, OBO_GATEWAY_<YAML PATH> otherwise.
func envSettings() []envSetting {
	tls := func(c *Config) *ServerTLS {
		if c.TLS == nil {
			c.TLS = &ServerTLS{}
		}
		return c.TLS
	}
	redis := func(c *Config) *Redis {
		if c.Cache.Redis == nil {
			c.Cache.Redis = &Redis{}
		}
		return c.Cache.Redis
	}
	return []envSetting{
		{EnvVar{"OBO_GATEWAY_LISTEN", "listen", "address of the API listener, host:port"},
			setString(func(c *Config) *string { return &c.Listen })},
		{EnvVar{"OBO_GATEWAY_ADMIN_LISTEN", "admin_listen", "address of /metrics, /healthz and /readyz, host:port"},
			setString(func(c *Config) *string { return &c.AdminListen })},
		{EnvVar{"OBO_GATEWAY_ADMIN_PPROF", "admin_pprof", "serve /debug/pprof/ on the admin listener: true, false, 1 or 0"},
			setBool(func(c *Config) *bool { return &c.AdminPprof })},
		{EnvVar{"OBO_GATEWAY_TLS_CERT_FILE", "tls.cert_file", "PEM certificate (chain) of the API listener"},
			setString(func(c *Config) *string { return &tls(c).CertFile })},
		{EnvVar{"OBO_GATEWAY_TLS_KEY_FILE", "tls.key_file", "PEM private key of the API listener"},
			setString(func(c *Config) *string { return &tls(c).KeyFile })},

		{EnvVar{"AZURE_TENANT_ID", "entra.tenant_id", "Directory (tenant) ID, a GUID"},
			setString(func(c *Config) *string { return &c.Entra.TenantID })},
		{EnvVar{"AZURE_CLIENT_ID", "entra.client_id", "Application (client) ID of the gateway's app registration, a GUID"},
			setString(func(c *Config) *string { return &c.Entra.ClientID })},
		{EnvVar{"AZURE_AUTHORITY_HOST", "entra.authority_host", "Entra host URL, e.g. https://login.microsoftonline.us"},
			setString(func(c *Config) *string { return &c.Entra.AuthorityHost })},
		{EnvVar{"OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY", "entra.instance_discovery", "validate the authority host with Entra: true, false, 1 or 0"},
			setBoolPtr(func(c *Config) **bool { return &c.Entra.InstanceDiscovery })},
		{EnvVar{"OBO_GATEWAY_ENTRA_AUDIENCES", "entra.audiences", "App ID URIs accepted as aud, comma-separated"},
			setList(func(c *Config) *[]string { return &c.Entra.Audiences })},
		{EnvVar{"OBO_GATEWAY_ENTRA_ALLOWED_TENANTS", "entra.allowed_tenants", "further tenant IDs whose users are accepted, comma-separated"},
			setList(func(c *Config) *[]string { return &c.Entra.AllowedTenants })},
		{EnvVar{"OBO_GATEWAY_ENTRA_CLIENT_CAPABILITIES", "entra.client_capabilities", "client capabilities declared to Entra, comma-separated, e.g. cp1"},
			setList(func(c *Config) *[]string { return &c.Entra.ClientCapabilities })},
		{EnvVar{"OBO_GATEWAY_ENTRA_CLOCK_SKEW", "entra.clock_skew", "leeway on exp, nbf and iat, e.g. 1m"},
			setDuration(func(c *Config) *Duration { return &c.Entra.ClockSkew })},
		{EnvVar{"OBO_GATEWAY_ENTRA_CREDENTIAL", "entra.credential", "the gateway's credential: certificate, workload_identity or managed_identity"},
			setString(func(c *Config) *string { return &c.Entra.Credential })},
		{EnvVar{"AZURE_FEDERATED_TOKEN_FILE", "entra.workload_identity.token_file", "the workload identity's projected service-account token file"},
			setString(func(c *Config) *string { return &c.Entra.WorkloadIdentity.TokenFile })},
		{EnvVar{"OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_CLIENT_ID", "entra.managed_identity.client_id", "client ID of the user-assigned managed identity; unset: system-assigned"},
			setString(func(c *Config) *string { return &c.Entra.ManagedIdentity.ClientID })},
		{EnvVar{"OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_AUDIENCE", "entra.managed_identity.audience", "token-exchange audience of the managed identity's token, e.g. api://AzureADTokenExchange"},
			setString(func(c *Config) *string { return &c.Entra.ManagedIdentity.Audience })},
		{EnvVar{"AZURE_CLIENT_CERTIFICATE_PATH", "entra.certificate.path", "PEM or PFX file of the gateway's certificate credential"},
			setString(func(c *Config) *string { return &c.Entra.Certificate.Path })},
		{EnvVar{"OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH", "entra.certificate.key_path", "separate PEM private key file, when the key is not in the certificate file"},
			setString(func(c *Config) *string { return &c.Entra.Certificate.KeyPath })},
		{EnvVar{"AZURE_CLIENT_CERTIFICATE_PASSWORD", "entra.certificate.password", "password of an encrypted key or PFX file"},
			setString(func(c *Config) *string { return &c.Entra.Certificate.Password })},
		{EnvVar{"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "entra.certificate.send_x5c", "send the certificate chain (x5c) for subject name + issuer authentication: true, false, 1 or 0"},
			setBool(func(c *Config) *bool { return &c.Entra.Certificate.SendX5C })},
		{EnvVar{"OBO_GATEWAY_ENTRA_CA_FILE", "entra.ca_file", "PEM CA certificates trusted for Entra's TLS, besides the system's"},
			setString(func(c *Config) *string { return &c.Entra.CAFile })},
		{EnvVar{"OBO_GATEWAY_ENTRA_TOKEN_TIMEOUT", "entra.token_timeout", "bound on one OBO exchange, e.g. 10s"},
			setDuration(func(c *Config) *Duration { return &c.Entra.TokenTimeout })},
		{EnvVar{"OBO_GATEWAY_ENTRA_KEYS_REFRESH_INTERVAL", "entra.keys_refresh_interval", "background refresh of Entra's signing keys, e.g. 1h"},
			setDuration(func(c *Config) *Duration { return &c.Entra.KeysRefreshInterval })},
		{EnvVar{"OBO_GATEWAY_ENTRA_KEYS_MIN_REFRESH_INTERVAL", "entra.keys_min_refresh_interval", "least time between refreshes caused by unknown key IDs, e.g. 30s"},
			setDuration(func(c *Config) *Duration { return &c.Entra.KeysMinRefreshInterval })},

		{EnvVar{"OBO_GATEWAY_CORS_ALLOWED_ORIGINS", "cors.allowed_origins", "browser origins allowed, comma-separated, or *"},
			setList(func(c *Config) *[]string { return &c.CORS.AllowedOrigins })},
		{EnvVar{"OBO_GATEWAY_CORS_ALLOWED_HEADERS", "cors.allowed_headers", "request headers allowed besides Authorization and Content-Type, comma-separated"},
			setList(func(c *Config) *[]string { return &c.CORS.AllowedHeaders })},
		{EnvVar{"OBO_GATEWAY_CORS_MAX_AGE", "cors.max_age", "how long browsers may cache a preflight, e.g. 10m"},
			setDuration(func(c *Config) *Duration { return &c.CORS.MaxAge })},

		{EnvVar{"OBO_GATEWAY_CACHE_MEMORY_BUDGET", "cache.memory_budget", "bound on the in-memory cache of downstream tokens, e.g. 64MiB"},
			setByteSize(func(c *Config) *ByteSize { return &c.Cache.MemoryBudget })},
		{EnvVar{"OBO_GATEWAY_CACHE_VERIFIED_TOKENS_BUDGET", "cache.verified_tokens_budget", "bound on the cache of inbound tokens already verified, e.g. 32MiB"},
			setByteSize(func(c *Config) *ByteSize { return &c.Cache.VerifiedTokensBudget })},
		{EnvVar{"OBO_GATEWAY_CACHE_REFRESH_MARGIN", "cache.refresh_margin", "how long before it expires a cached token is dropped, e.g. 5m"},
			setDuration(func(c *Config) *Duration { return &c.Cache.RefreshMargin })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_ADDRESS", "cache.redis.address", "host:port of the Redis shared by the replicas"},
			setString(func(c *Config) *string { return &redis(c).Address })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_USERNAME", "cache.redis.username", "Redis ACL user name"},
			setString(func(c *Config) *string { return &redis(c).Username })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_PASSWORD", "cache.redis.password", "Redis password"},
			setString(func(c *Config) *string { return &redis(c).Password })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_DB", "cache.redis.db", "Redis database number, e.g. 0"},
			setInt(func(c *Config) *int { return &redis(c).DB })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_TLS", "cache.redis.tls", "connect to Redis over TLS: true, false, 1 or 0"},
			setBool(func(c *Config) *bool { return &redis(c).TLS })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_CA_FILE", "cache.redis.ca_file", "PEM CA certificates trusted for Redis's TLS, besides the system's"},
			setString(func(c *Config) *string { return &redis(c).CAFile })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_TIMEOUT", "cache.redis.timeout", "bound on each Redis call, e.g. 50ms"},
			setDuration(func(c *Config) *Duration { return &redis(c).Timeout })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS", "cache.redis.encryption_keys", "AES-256 keys of the shared cache, kid:base64 of 32 random bytes, comma-separated"},
			setString(func(c *Config) *string { return &redis(c).EncryptionKeys })},
		{EnvVar{"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEY_ID", "cache.redis.encryption_key_id", "ID of the key new values are encrypted with, one of the encryption keys"},
			setString(func(c *Config) *string { return &redis(c).EncryptionKeyID })},

		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_CONNECTIONS", "limits.max_connections", "bound on the API listener's open connections, e.g. 2048"},
			setInt(func(c *Config) *int { return &c.Limits.MaxConnections })},
		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_IN_FLIGHT", "limits.max_in_flight", "bound on the requests being served by all routes, e.g. 512"},
			setInt(func(c *Config) *int { return &c.Limits.MaxInFlight })},
		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_CONCURRENT_EXCHANGES", "limits.max_concurrent_exchanges", "bound on the On-Behalf-Of exchanges in progress, e.g. 16"},
			setInt(func(c *Config) *int { return &c.Limits.MaxConcurrentExchanges })},
		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_QUEUED_EXCHANGES", "limits.max_queued_exchanges", "bound on the exchanges waiting for a place, e.g. 256"},
			setInt(func(c *Config) *int { return &c.Limits.MaxQueuedExchanges })},
		{EnvVar{"OBO_GATEWAY_LIMITS_EXCHANGE_QUEUE_TIMEOUT", "limits.exchange_queue_timeout", "bound on a new user's wait for an exchange place, e.g. 2s"},
			setDuration(func(c *Config) *Duration { return &c.Limits.ExchangeQueueTimeout })},
		{EnvVar{"OBO_GATEWAY_LIMITS_READ_HEADER_TIMEOUT", "limits.read_header_timeout", "bound on the arrival of a request's headers, e.g. 10s"},
			setDuration(func(c *Config) *Duration { return &c.Limits.ReadHeaderTimeout })},
		{EnvVar{"OBO_GATEWAY_LIMITS_BODY_TIMEOUT", "limits.body_timeout", "bound on the arrival of a request's body, e.g. 30s"},
			setDuration(func(c *Config) *Duration { return &c.Limits.BodyTimeout })},
		{EnvVar{"OBO_GATEWAY_LIMITS_IDLE_TIMEOUT", "limits.idle_timeout", "idle keep-alive connections are closed after, e.g. 120s"},
			setDuration(func(c *Config) *Duration { return &c.Limits.IdleTimeout })},
		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_HEADER_BYTES", "limits.max_header_bytes", "bound on a request's headers, e.g. 64KiB"},
			setByteSize(func(c *Config) *ByteSize { return &c.Limits.MaxHeaderBytes })},
		{EnvVar{"OBO_GATEWAY_LIMITS_MAX_BODY_BYTES", "limits.max_body_bytes", "default bound on request bodies, e.g. 10MiB"},
			setByteSize(func(c *Config) *ByteSize { return &c.Limits.MaxBodyBytes })},

		{EnvVar{"OBO_GATEWAY_TRUSTED_PROXIES", "trusted_proxies", "CIDRs or IPs of proxies whose X-Forwarded-* headers are believed, comma-separated"},
			setList(func(c *Config) *[]string { return &c.TrustedProxies })},
		// OpenTelemetry's own variables, as every SDK reads them: the
		// generic OTEL_EXPORTER_OTLP_* first, so that the traces-specific
		// one wins when both are set.
		{EnvVar{"OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.endpoint", "OTLP base endpoint; turns tracing on, e.g. http://otel-collector:4318"},
			setString(func(c *Config) *string { return &c.Tracing.Endpoint })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tracing.traces_endpoint", "OTLP traces endpoint, used as it is; turns tracing on"},
			setString(func(c *Config) *string { return &c.Tracing.TracesEndpoint })},
		{EnvVar{"OTEL_EXPORTER_OTLP_PROTOCOL", "tracing.protocol", "OTLP protocol: http/protobuf or grpc"},
			setString(func(c *Config) *string { return &c.Tracing.Protocol })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "tracing.protocol", "OTLP protocol of traces: http/protobuf or grpc"},
			setString(func(c *Config) *string { return &c.Tracing.Protocol })},
		{EnvVar{"OTEL_EXPORTER_OTLP_HEADERS", "tracing.headers", "headers of each export, key=value,key2=value2"},
			setOTelHeaders},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "tracing.headers", "headers of each traces export, key=value,key2=value2"},
			setOTelHeaders},
		{EnvVar{"OTEL_EXPORTER_OTLP_TIMEOUT", "tracing.timeout", "bound on one export, in whole milliseconds, e.g. 10000"},
			setParsed(func(c *Config) *Duration { return &c.Tracing.Timeout }, parseMillis)},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "tracing.timeout", "bound on one traces export, in whole milliseconds, e.g. 10000"},
			setParsed(func(c *Config) *Duration { return &c.Tracing.Timeout }, parseMillis)},
		{EnvVar{"OTEL_EXPORTER_OTLP_INSECURE", "tracing.insecure", "gRPC without TLS to an endpoint without a scheme: true or false"},
			setBool(func(c *Config) *bool { return &c.Tracing.Insecure })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_INSECURE", "tracing.insecure", "gRPC without TLS for traces: true or false"},
			setBool(func(c *Config) *bool { return &c.Tracing.Insecure })},
		{EnvVar{"OTEL_EXPORTER_OTLP_CERTIFICATE", "tracing.ca_file", "PEM CA certificates trusted for the collector's TLS"},
			setString(func(c *Config) *string { return &c.Tracing.CAFile })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "tracing.ca_file", "PEM CA certificates trusted for the traces collector's TLS"},
			setString(func(c *Config) *string { return &c.Tracing.CAFile })},
		{EnvVar{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "tracing.client_certificate", "PEM certificate the gateway presents to the collector (mutual TLS)"},
			setString(func(c *Config) *string { return &c.Tracing.ClientCertificate })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "tracing.client_certificate", "PEM certificate the gateway presents to the traces collector (mutual TLS)"},
			setString(func(c *Config) *string { return &c.Tracing.ClientCertificate })},
		{EnvVar{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "tracing.client_key", "PEM private key of the client certificate"},
			setString(func(c *Config) *string { return &c.Tracing.ClientKey })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "tracing.client_key", "PEM private key of the traces client certificate"},
			setString(func(c *Config) *string { return &c.Tracing.ClientKey })},
		{EnvVar{"OTEL_EXPORTER_OTLP_COMPRESSION", "tracing.compression", "export compression: gzip or none"},
			setString(func(c *Config) *string { return &c.Tracing.Compression })},
		{EnvVar{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "tracing.compression", "traces export compression: gzip or none"},
			setString(func(c *Config) *string { return &c.Tracing.Compression })},
		{EnvVar{"OTEL_TRACES_SAMPLER", "tracing.sampler", "sampler, e.g. parentbased_always_on or parentbased_traceidratio"},
			setString(func(c *Config) *string { return &c.Tracing.Sampler })},
		{EnvVar{"OTEL_TRACES_SAMPLER_ARG", "tracing.sampler_arg", "ratio of the ratio samplers, e.g. 0.1"},
			setString(func(c *Config) *string { return &c.Tracing.SamplerArg })},
		{EnvVar{"OTEL_SERVICE_NAME", "tracing.service_name", "service.name of the spans, e.g. obo-gateway"},
			setString(func(c *Config) *string { return &c.Tracing.ServiceName })},
		{EnvVar{"OTEL_RESOURCE_ATTRIBUTES", "tracing.resource_attributes", "more resource attributes, key=value,..."},
			setString(func(c *Config) *string { return &c.Tracing.ResourceAttributes })},
		{EnvVar{"OTEL_TRACES_EXPORTER", "tracing.exporter", "otlp, or none to turn tracing off"},
			setString(func(c *Config) *string { return &c.Tracing.Exporter })},
		{EnvVar{"OTEL_SDK_DISABLED", "tracing.disabled", "true turns tracing off"},
			setBool(func(c *Config) *bool { return &c.Tracing.Disabled })},

		{EnvVar{"OBO_GATEWAY_SHUTDOWN_GRACE", "shutdown_grace", "drain time for in-flight requests on SIGTERM, e.g. 20s"},
			setDuration(func(c *Config) *Duration { return &c.ShutdownGrace })},
		{EnvVar{"OBO_GATEWAY_LOG_LEVEL", "log_level", "debug, info, warn or error"},
			setString(func(c *Config) *string { return &c.LogLevel })},
	}
}

// routeEnvSettings is the table of route fields settable by
// OBO_GATEWAY_ROUTE_<NAME>_<suffix>. The name itself is not: it is the key.
func routeEnvSettings() []routeEnvSetting {
	return []routeEnvSetting{
		{"PATH_PREFIX", "path_prefix", "path prefix the route matches, e.g. /orders",
			setString(func(r *Route) *string { return &r.PathPrefix })},
		{"UPSTREAM", "upstream", "base URL of the upstream API",
			setString(func(r *Route) *string { return &r.Upstream })},
		{"STRIP_PREFIX", "strip_prefix", "remove the path prefix before forwarding: true, false, 1 or 0",
			setBool(func(r *Route) *bool { return &r.StripPrefix })},
		{"DOWNSTREAM_SCOPES", "downstream_scopes", "scopes of the OBO exchange, comma-separated, e.g. api://orders-api/.default",
			setList(func(r *Route) *[]string { return &r.DownstreamScopes })},
		{"REQUIRED_SCOPES", "required_scopes", "delegated scopes a user token needs (one of), comma-separated",
			setList(func(r *Route) *[]string { return &r.RequiredScopes })},
		{"REQUIRED_ROLES", "required_roles", "app roles every token needs (one of): a user's and an app's, comma-separated",
			setList(func(r *Route) *[]string { return &r.RequiredRoles })},
		{"TIMEOUT", "timeout", "bound on the upstream exchange until the response headers, e.g. 30s",
			setDuration(func(r *Route) *Duration { return &r.Timeout })},
		{"MAX_BODY_BYTES", "max_body_bytes", "bound on the request body, e.g. 10MiB",
			setByteSize(func(r *Route) *ByteSize { return &r.MaxBodyBytes })},
		{"BODY_TIMEOUT", "body_timeout", "bound on the arrival of the request body, e.g. 30s",
			setDuration(func(r *Route) *Duration { return &r.BodyTimeout })},
		{"MAX_IN_FLIGHT", "max_in_flight", "bound on the route's requests in flight, 0 for the global one only",
			setInt(func(r *Route) *int { return &r.MaxInFlight })},
		{"WEBSOCKET", "websocket", "let requests upgrade to WebSocket: true, false, 1 or 0",
			setBool(func(r *Route) *bool { return &r.WebSocket })},
		{"COOKIES", "cookies", "forward Cookie and pass back Set-Cookie: true, false, 1 or 0",
			setBool(func(r *Route) *bool { return &r.Cookies })},
		{"PROXY_LEG", "proxy_leg", "the way to the upstream: auto, fast or standard",
			setString(func(r *Route) *string { return &r.ProxyLeg })},
	}
}

// RouteEnvVar is the environment variable of a route's setting, e.g.
// RouteEnvVar("orders-api", "UPSTREAM") = OBO_GATEWAY_ROUTE_ORDERS_API_UPSTREAM.
func RouteEnvVar(route, suffix string) string {
	return routeEnvPrefix + routeEnvName(route) + "_" + suffix
}

// routeEnvName is how a route's name is written in its variables:
// upper-cased, '-' as '_'.
func routeEnvName(name string) string {
	return strings.ReplaceAll(strings.ToUpper(name), "-", "_")
}

// applyEnv applies every variable lookup reports set, recording in from
// the YAML path each one sets, and returns all the bad values at once,
// each a *FieldError naming its variable. A variable set to "" clears its
// setting: the setting is left unset (its zero value), as if the file did
// not set it, and the default applies.
func (c *Config) applyEnv(lookup func(string) (string, bool), from map[string]string) []*FieldError {
	var errs []*FieldError
	apply := func(field, name string, set func(string) error) {
		v, ok := lookup(name)
		if !ok || (v == "" && strings.HasPrefix(name, "OTEL_")) {
			// OpenTelemetry's variables follow its specification: empty
			// is unset (the gateway's own clear their setting).
			return
		}
		from[field] = name
		if err := set(v); err != nil {
			// Only the setters of booleans, numbers, durations, sizes and
			// the tracing headers fail; only the headers are a secret.
			value := v
			if field == "tracing.headers" {
				value = redacted // may hold a collector's API key
			}
			errs = append(errs, &FieldError{Kind: KindWrongType, Field: field, EnvVar: name, FromEnv: true, Value: value, Problem: err.Error()})
		}
	}
	for _, s := range envSettings() {
		apply(s.Field, s.Name, func(v string) error { return s.set(c, v) })
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		for _, s := range routeEnvSettings() {
			apply(fmt.Sprintf("routes[%d].%s", i, s.field), RouteEnvVar(r.Name, s.suffix), func(v string) error { return s.set(r, v) })
		}
	}
	return errs
}

// envFields maps the YAML path of every setting a variable sets to the
// variable: entra.tenant_id to AZURE_TENANT_ID, routes[0].upstream to
// OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM (routes with a valid name only).
func (c *Config) envFields() map[string]string {
	m := map[string]string{}
	for _, s := range envSettings() {
		m[s.Field] = s.Name
	}
	for i, r := range c.Routes {
		if !routeNameRE.MatchString(r.Name) {
			continue
		}
		for _, s := range routeEnvSettings() {
			m[fmt.Sprintf("routes[%d].%s", i, s.field)] = RouteEnvVar(r.Name, s.suffix)
		}
	}
	return m
}

// CheckEnviron reports every OBO_GATEWAY_ROUTE_* variable set in environ
// ("NAME=value" entries, as from os.Environ; one set to "" included) that
// sets no field of a route of c: a route variable naming no route, or a
// misspelt field. Load and ValidateWith make the same check when the
// environment is a list or a map (see Environment); a lookup function
// cannot list the variables. The error joins a *FieldError of
// KindUnknownVariable per variable; none shows a value.
func (c *Config) CheckEnviron(environ []string) error {
	problems := c.unknownRouteVars(routeVarsOf(environmentOf(environ).names))
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// unknownRouteVars returns a problem for each of vars (route variables
// set) that sets no field of a route of c.
func (c *Config) unknownRouteVars(vars []string) []*FieldError {
	known := map[string]bool{}
	names := make([]string, 0, len(c.Routes))
	for _, r := range c.Routes {
		names = append(names, r.Name)
		for _, s := range routeEnvSettings() {
			known[RouteEnvVar(r.Name, s.suffix)] = true
		}
	}
	var errs []*FieldError
	for _, name := range vars {
		if known[name] {
			continue
		}
		errs = append(errs, &FieldError{Kind: KindUnknownVariable, EnvVar: name, FromEnv: true,
			Problem: fmt.Sprintf("names no route field: route variables are %s<NAME>_<FIELD>, NAME one of the routes in the file (%s) upper-cased with '-' as '_', FIELD one of %s; a route is defined in the file, a variable only overrides one of its fields",
				routeEnvPrefix, strings.Join(names, ", "), strings.Join(routeEnvSuffixes(), ", "))})
	}
	return errs
}

// routeVarsOf returns the route variables among names, in order.
func routeVarsOf(names []string) []string {
	var vars []string
	for _, n := range names {
		if strings.HasPrefix(n, routeEnvPrefix) {
			vars = append(vars, n)
		}
	}
	return vars
}

// routeNameOf guesses the route a route variable is meant for, from its
// <NAME> (lower-cased, the longest field suffix taken off): "orders" for
// OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX. "" when it has no known suffix.
func routeNameOf(variable string) string {
	rest := strings.TrimPrefix(variable, routeEnvPrefix)
	best := ""
	for _, s := range routeEnvSuffixes() {
		if strings.HasSuffix(rest, "_"+s) && len(s) > len(best) {
			best = s
		}
	}
	if best == "" || len(rest) == len(best)+1 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(rest, "_"+best))
}

func routeEnvSuffixes() []string {
	var ss []string
	for _, s := range routeEnvSettings() {
		ss = append(ss, s.suffix)
	}
	return ss
}

// The setters below parse a variable's value into the field that field
// returns; "" sets the zero value, which the defaults read as unset. The
// returned errors do not repeat the value of a string setting, so a
// password cannot reach them.

func setString[T any](field func(*T) *string) func(*T, string) error {
	return func(t *T, v string) error {
		*field(t) = v
		return nil
	}
}

func setList[T any](field func(*T) *[]string) func(*T, string) error {
	return func(t *T, v string) error {
		*field(t) = splitList(v)
		return nil
	}
}

// setParsed is a setter of a value parse reads; "" sets the zero value.
func setParsed[T, V any](field func(*T) *V, parse func(string) (V, error)) func(*T, string) error {
	return func(t *T, v string) error {
		if v == "" {
			var zero V
			*field(t) = zero
			return nil
		}
		x, err := parse(v)
		if err != nil {
			return err
		}
		*field(t) = x
		return nil
	}
}

func setBool[T any](field func(*T) *bool) func(*T, string) error {
	return setParsed(field, parseBool)
}

func setBoolPtr[T any](field func(*T) **bool) func(*T, string) error {
	return setParsed(field, func(v string) (*bool, error) {
		b, err := parseBool(v)
		return &b, err
	})
}

func setDuration[T any](field func(*T) *Duration) func(*T, string) error {
	return setParsed(field, parseDuration)
}

func setInt[T any](field func(*T) *int) func(*T, string) error {
	return setParsed(field, func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number, e.g. 0", v)
		}
		return n, nil
	})
}

func setByteSize[T any](field func(*T) *ByteSize) func(*T, string) error {
	return setParsed(field, parseByteSize)
}

// splitList splits a comma-separated value, trimming spaces and dropping
// empty items.
func splitList(v string) []string {
	var items []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: write true, false, 1 or 0", v)
}

// setOTelHeaders sets tracing.headers from one of its two variables,
// checked here, each: the exporters read both variables from the process
// themselves, and the one the other overrides must not reach them unparsable
// (they would log its value).
func setOTelHeaders(c *Config, v string) error {
	if err := tracing.CheckHeaders(v); err != nil {
		return err
	}
	c.Tracing.Headers = v
	return nil
}

// parseMillis reads a timeout as OpenTelemetry's variables write it: a
// whole number of milliseconds (the exporters read the same variable
// themselves, and would complain of any other form).
func parseMillis(s string) (Duration, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
		return Duration(time.Duration(n) * time.Millisecond), nil
	}
	return 0, fmt.Errorf("%q is not a timeout: write whole milliseconds, e.g. 10000", s)
}
