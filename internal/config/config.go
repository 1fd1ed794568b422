// Package config reads the gateway's configuration: a YAML file, then
// environment variables over it (the Azure SDK's names where they exist),
// then defaults (Parse), then a validation that names the field and the
// fix (Validate, ValidateWith; Load does both). Every problem is a
// *FieldError that says where the value came from: the file's line, or
// the variable.
//
// Only cmd/gateway knows every setting; each package gets its own small Config.
package config

import (
	"time"

	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// Config is the whole gateway configuration.
//
// Written as YAML (yaml.Marshal), a Config leaves out the settings it does
// not set (the tags' omitempty), so that the text reads back, through Load,
// as the same settings; an InstanceDiscovery set to false is written. Tests
// write their configurations so (internal/config/configtest).
//
// A Config made by Parse or Load also knows where each setting came from
// (Origin): compare two with Equal, not reflect.DeepEqual.
type Config struct {
	// Listen is the address of the API listener. Default ":8080".
	Listen string `yaml:"listen,omitempty"`
	// AdminListen is the address of /metrics, /healthz and /readyz. Default ":9090".
	AdminListen string `yaml:"admin_listen,omitempty"`
	// AdminPprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// the admin listener, for an operator who needs a heap or CPU profile.
	// Default off.
	AdminPprof bool `yaml:"admin_pprof,omitempty"`
	// TLS serves the API listener over HTTPS when set.
	TLS *ServerTLS `yaml:"tls,omitempty"`

	Entra Entra `yaml:"entra,omitempty"`
	// Routes map path prefixes to upstream APIs. At least one.
	Routes []Route `yaml:"routes,omitempty"`
	CORS   CORS    `yaml:"cors,omitempty"`
	Cache  Cache   `yaml:"cache,omitempty"`
	// Limits bound what clients can hold: connections, requests in flight,
	// bodies, headers and the exchanges they cause.
	Limits Limits `yaml:"limits,omitempty"`
	// TrustedProxies are the networks (CIDRs) of proxies in front of the
	// gateway whose X-Forwarded-For/-Proto/-Host are believed. Others' are replaced.
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// Tracing exports OpenTelemetry traces over OTLP; off unless an
	// endpoint is set. The standard OTEL_* variables set it.
	Tracing Tracing `yaml:"tracing,omitempty"`

	// ShutdownGrace bounds the drain of in-flight requests on SIGTERM. Default 20s.
	ShutdownGrace Duration `yaml:"shutdown_grace,omitempty"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level,omitempty"`

	// source is where the settings came from (Origin); nil when Parse
	// did not make the Config.
	source *Source
}

// Tracing is the OpenTelemetry trace export: each setting has the meaning
// of its standard OTEL_* variable, which overrides it.
type Tracing struct {
	// Endpoint is the OTLP base endpoint, e.g. http://otel-collector:4318
	// (http/protobuf: /v1/traces is appended) or http://otel-collector:4317
	// (grpc). Setting it (or TracesEndpoint) turns tracing on. Env
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string `yaml:"endpoint,omitempty"`
	// TracesEndpoint is the traces endpoint, used as it is. Env
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
	TracesEndpoint string `yaml:"traces_endpoint,omitempty"`
	// Protocol is http/protobuf (the default) or grpc. Env
	// OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL.
	Protocol string `yaml:"protocol,omitempty"`
	// Headers are sent with each export, key=value,key2=value2 (values
	// percent-encoded), e.g. a collector's API key. Redacted like the
	// passwords. Env OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS.
	Headers string `yaml:"headers,omitempty"`
	// Timeout bounds one export, its retries included. Default 10s. Env
	// OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (whole
	// milliseconds, as the specification writes them).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Insecure exports over gRPC without TLS to an endpoint written
	// without a scheme. Env OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_TRACES_INSECURE.
	Insecure bool `yaml:"insecure,omitempty"`
	// CAFile holds PEM CA certificates trusted for the collector's TLS,
	// besides the system's. Env OTEL_EXPORTER_OTLP_CERTIFICATE,
	// OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE.
	CAFile string `yaml:"ca_file,omitempty"`
	// Compression is gzip or none (the default). Env
	// OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION.
	Compression string `yaml:"compression,omitempty"`
	// Sampler is parentbased_always_on (the default: a trace the frontend
	// samples is recorded, and so is one the gateway starts),
	// parentbased_always_off, parentbased_traceidratio, always_on,
	// always_off or traceidratio. Env OTEL_TRACES_SAMPLER.
	Sampler string `yaml:"sampler,omitempty"`
	// SamplerArg is the ratio of the ratio samplers, 0 to 1. Env OTEL_TRACES_SAMPLER_ARG.
	SamplerArg string `yaml:"sampler_arg,omitempty"`
	// ServiceName is service.name. Default obo-gateway. Env OTEL_SERVICE_NAME.
	ServiceName string `yaml:"service_name,omitempty"`
	// ResourceAttributes are more resource attributes, key=value,...,
	// e.g. deployment.environment.name=prod. Env OTEL_RESOURCE_ATTRIBUTES.
	ResourceAttributes string `yaml:"resource_attributes,omitempty"`
	// ClientCertificate and ClientKey are PEM files of the certificate the
	// gateway presents to a collector that asks for one (mutual TLS), with
	// an https:// endpoint. Env OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
	// OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE; OTEL_EXPORTER_OTLP_CLIENT_KEY,
	// OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY.
	ClientCertificate string `yaml:"client_certificate,omitempty"`
	ClientKey         string `yaml:"client_key,omitempty"`
	// Exporter is otlp (the default) or none, which turns tracing off.
	// Env OTEL_TRACES_EXPORTER.
	Exporter string `yaml:"exporter,omitempty"`
	// Disabled turns tracing off whatever else is set. Env OTEL_SDK_DISABLED.
	Disabled bool `yaml:"disabled,omitempty"`
}

// Tracer is the tracing package's configuration of t, for a gateway of
// version: not Enabled when t is disabled or exports nowhere.
func (t Tracing) Tracer(version string) tracing.Config {
	if t.Disabled || t.Exporter == "none" {
		return tracing.Config{}
	}
	return t.settings(version)
}

// settings maps every setting to the tracing package's, on or off.
func (t Tracing) settings(version string) tracing.Config {
	return tracing.Config{
		Endpoint: t.Endpoint, TracesEndpoint: t.TracesEndpoint, Protocol: t.Protocol, Headers: t.Headers,
		Timeout: t.Timeout.D(), Insecure: t.Insecure, CAFile: t.CAFile, Compression: t.Compression,
		Sampler: t.Sampler, SamplerArg: t.SamplerArg, ServiceName: t.ServiceName, ServiceVersion: version,
		ResourceAttributes: t.ResourceAttributes, ClientCertificate: t.ClientCertificate, ClientKey: t.ClientKey,
	}
}

// ServerTLS is the API listener's certificate.
type ServerTLS struct {
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
}

// Entra is the gateway's identity in its tenant.
type Entra struct {
	// TenantID is the home tenant (GUID). Env AZURE_TENANT_ID. Required.
	TenantID string `yaml:"tenant_id,omitempty"`
	// ClientID is the gateway app's application (client) ID. Env AZURE_CLIENT_ID. Required.
	ClientID string `yaml:"client_id,omitempty"`
	// AuthorityHost is the Entra host. Env AZURE_AUTHORITY_HOST.
	// Default https://login.microsoftonline.com (sovereign clouds:
	// https://login.microsoftonline.us, https://login.partner.microsoftonline.cn).
	AuthorityHost string `yaml:"authority_host,omitempty"`
	// InstanceDiscovery asks Entra to validate the authority host. Default:
	// on for Microsoft's hosts, off for any other (the local tenant). On
	// for another host is refused: MSAL would ask login.microsoftonline.com
	// to validate a host it does not know, and every exchange would fail.
	InstanceDiscovery *bool `yaml:"instance_discovery,omitempty"`
	// Audiences are the App ID URIs accepted as aud besides ClientID (e.g. api://obo-gateway).
	Audiences []string `yaml:"audiences,omitempty"`
	// AllowedTenants are further tenants whose users' tokens are accepted
	// (multi-tenant apps, guests). Their exchanges go to their own tenant.
	AllowedTenants []string `yaml:"allowed_tenants,omitempty"`
	// ClientCapabilities are declared to Entra with every token request;
	// "cp1" says the gateway handles claims challenges (continuous access
	// evaluation), so Entra may issue long-lived CAE tokens for downstream APIs.
	ClientCapabilities []string `yaml:"client_capabilities,omitempty"`
	// ClockSkew is the leeway on exp, nbf and iat. Default 1m; at most 5m.
	ClockSkew Duration `yaml:"clock_skew,omitempty"`
	// Credential is how the gateway proves itself to Entra: "certificate"
	// (the default; entra.certificate), "workload_identity" (AKS workload
	// identity's service-account token, entra.workload_identity) or
	// "managed_identity" (a managed identity's token, entra.managed_identity),
	// the last two as federated credentials of the app registration.
	// Env OBO_GATEWAY_ENTRA_CREDENTIAL.
	Credential string `yaml:"credential,omitempty"`
	// Certificate is the gateway's client credential when Credential is
	// certificate.
	Certificate Certificate `yaml:"certificate,omitempty"`
	// WorkloadIdentity is the credential when Credential is workload_identity.
	WorkloadIdentity WorkloadIdentity `yaml:"workload_identity,omitempty"`
	// ManagedIdentity is the credential when Credential is managed_identity.
	ManagedIdentity ManagedIdentity `yaml:"managed_identity,omitempty"`
	// CAFile adds CA certificates (PEM) trusted for Entra's TLS (the local
	// tenant, or a TLS-inspecting egress proxy).
	CAFile string `yaml:"ca_file,omitempty"`
	// TokenTimeout bounds one OBO exchange. Default 10s.
	TokenTimeout Duration `yaml:"token_timeout,omitempty"`
	// KeysRefreshInterval is how often the signing keys are refreshed in the
	// background. Default 1h.
	KeysRefreshInterval Duration `yaml:"keys_refresh_interval,omitempty"`
	// KeysMinRefreshInterval is the least time between refreshes caused by
	// unknown key IDs. Default 30s.
	KeysMinRefreshInterval Duration `yaml:"keys_min_refresh_interval,omitempty"`

	// source is the whole configuration's (Entra.Origin), kept here too
	// because the clients made of this section get only it.
	source *Source
}

// Certificate locates the gateway's certificate credential.
type Certificate struct {
	// Path is a PEM file (certificate + RSA key, PKCS#1 or PKCS#8, optionally
	// encrypted) or a PFX/PKCS#12 file. Env AZURE_CLIENT_CERTIFICATE_PATH. Required.
	Path string `yaml:"path,omitempty"`
	// KeyPath is a separate PEM key file, when the key is not in Path.
	KeyPath string `yaml:"key_path,omitempty"`
	// Password opens an encrypted key or a PFX. Env AZURE_CLIENT_CERTIFICATE_PASSWORD.
	// Prefer the environment: a password in a file is a secret in a file.
	Password string `yaml:"password,omitempty"`
	// SendX5C sends the certificate chain with each assertion (subject name +
	// issuer authentication). Env AZURE_CLIENT_SEND_CERTIFICATE_CHAIN.
	SendX5C bool `yaml:"send_x5c,omitempty"`
}

// The kinds of entra.credential.
const (
	CredentialCertificate      = "certificate"
	CredentialWorkloadIdentity = "workload_identity"
	CredentialManagedIdentity  = "managed_identity"
)

// WorkloadIdentity locates AKS workload identity's token.
type WorkloadIdentity struct {
	// TokenFile is the projected service-account token, read again for
	// every assertion (the kubelet rewrites it). Env
	// AZURE_FEDERATED_TOKEN_FILE, which the workload identity webhook sets.
	// Required for workload_identity.
	TokenFile string `yaml:"token_file,omitempty"`
}

// ManagedIdentity says which managed identity's token is the assertion.
type ManagedIdentity struct {
	// ClientID is a user-assigned identity's client ID; empty means the
	// system-assigned identity. Env OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_CLIENT_ID.
	ClientID string `yaml:"client_id,omitempty"`
	// Audience is the token-exchange audience asked for. Default by cloud:
	// api://AzureADTokenExchange, api://AzureADTokenExchangeUSGov
	// (login.microsoftonline.us), api://AzureADTokenExchangeChina
	// (login.chinacloudapi.cn). Env OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_AUDIENCE.
	Audience string `yaml:"audience,omitempty"`
}

// Route maps a path prefix to an upstream API.
type Route struct {
	// Name labels metrics and logs: lowercase letters, digits, - and _. Required, unique.
	Name string `yaml:"name,omitempty"`
	// PathPrefix is matched at a path-segment boundary: /orders matches
	// /orders and /orders/1, not /ordersx. Required, starts with /.
	PathPrefix string `yaml:"path_prefix,omitempty"`
	// Upstream is the base URL of the API (http or https). Required.
	Upstream string `yaml:"upstream,omitempty"`
	// StripPrefix removes PathPrefix before forwarding.
	StripPrefix bool `yaml:"strip_prefix,omitempty"`
	// DownstreamScopes are exchanged for On-Behalf-Of: one resource, either
	// <app-id-uri>/.default or named scopes. Empty: no exchange, and no
	// Authorization header goes upstream.
	DownstreamScopes []string `yaml:"downstream_scopes,omitempty"`
	// RequiredScopes: a user token must carry at least one. Empty: any
	// valid user token for the gateway. App-only tokens carry no scopes:
	// they are admitted by RequiredRoles alone.
	RequiredScopes []string `yaml:"required_scopes,omitempty"`
	// RequiredRoles: app roles (the roles claim), one of which every token
	// must carry: a user's (Entra puts a user's app-role assignments in
	// roles) and an app's. Empty: no role needed from users, and no
	// app-only token admitted. On a route with DownstreamScopes they gate
	// users only: app-only tokens cannot be exchanged On-Behalf-Of. See
	// auth.Policy.
	RequiredRoles []string `yaml:"required_roles,omitempty"`
	// Timeout bounds the upstream exchange (until the response headers).
	// Default 30s. Streamed bodies are not cut by it.
	Timeout Duration `yaml:"timeout,omitempty"`
	// MaxBodyBytes bounds the request body (413 beyond). Default
	// limits.max_body_bytes.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes,omitempty"`
	// BodyTimeout bounds the time until the request body has arrived.
	// Default limits.body_timeout; set it longer for uploads.
	BodyTimeout Duration `yaml:"body_timeout,omitempty"`
	// MaxInFlight bounds the route's requests in flight (503 beyond), so
	// that a slow upstream cannot take every place of limits.max_in_flight.
	// Default 0: only the global limit.
	MaxInFlight int `yaml:"max_in_flight,omitempty"`
	// WebSocket lets requests upgrade to WebSocket. Default false: such a
	// request is answered 400. Other upgrades (h2c) are never forwarded.
	WebSocket bool `yaml:"websocket,omitempty"`
	// Cookies forwards the client's Cookie header and the upstream's
	// Set-Cookie. Default false: the gateway is one origin shared by every
	// upstream, and authenticates with bearer tokens.
	Cookies bool `yaml:"cookies,omitempty"`
	// ProxyLeg is the way to the upstream: "auto" (the default: "fast"
	// unless HTTP_PROXY/HTTPS_PROXY applies to the upstream), "fast"
	// (HTTP/1.1 on the gateway's own keep-alive connections) or "standard"
	// (net/http's Transport: HTTP/2 to https upstreams that offer it, HTTP
	// proxies). WebSocket upgrades take the standard leg either way.
	ProxyLeg string `yaml:"proxy_leg,omitempty"`
}

// Limits bound slow and greedy clients. docs/configuration.md explains how
// to size them; the defaults suit a pod of 2 cores and 512 MiB.
type Limits struct {
	// MaxConnections bounds the API listener's open connections; beyond it
	// a connection is answered 503 and closed. Default 2048.
	MaxConnections int `yaml:"max_connections,omitempty"`
	// MaxInFlight bounds the requests being served by all routes; beyond
	// it 503 with Retry-After. Default 512.
	MaxInFlight int `yaml:"max_in_flight,omitempty"`
	// MaxConcurrentExchanges bounds the On-Behalf-Of exchanges with Entra
	// in progress at once. Default 16.
	MaxConcurrentExchanges int `yaml:"max_concurrent_exchanges,omitempty"`
	// MaxQueuedExchanges bounds the exchanges waiting for a place; beyond
	// it 503 at once. Default 256.
	MaxQueuedExchanges int `yaml:"max_queued_exchanges,omitempty"`
	// ExchangeQueueTimeout bounds a new user's wait for an exchange place;
	// then 503. Default 2s.
	ExchangeQueueTimeout Duration `yaml:"exchange_queue_timeout,omitempty"`
	// ReadHeaderTimeout bounds the arrival of a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout,omitempty"`
	// BodyTimeout bounds the time from a request's arrival until its body
	// has arrived; the connection is closed when it passes. Default 30s.
	BodyTimeout Duration `yaml:"body_timeout,omitempty"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout,omitempty"`
	// MaxHeaderBytes bounds a request's headers (431 beyond). Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes,omitempty"`
	// MaxBodyBytes is the default of routes[].max_body_bytes. Default 10MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes,omitempty"`
}

// CORS lets browser frontends call the gateway.
type CORS struct {
	// AllowedOrigins are exact origins (https://app.example.com); "*" allows
	// any origin (credentials are never allowed). Empty: CORS off.
	AllowedOrigins []string `yaml:"allowed_origins,omitempty"`
	// AllowedHeaders are request headers allowed besides Authorization and
	// Content-Type.
	AllowedHeaders []string `yaml:"allowed_headers,omitempty"`
	// MaxAge is how long browsers may cache a preflight. Default 10m.
	MaxAge Duration `yaml:"max_age,omitempty"`
}

// Cache configures the token caches.
type Cache struct {
	// MemoryBudget bounds the in-memory cache of downstream tokens (L1). Default 64MiB.
	MemoryBudget ByteSize `yaml:"memory_budget,omitempty"`
	// VerifiedTokensBudget bounds the cache of inbound tokens already verified. Default 32MiB.
	VerifiedTokensBudget ByteSize `yaml:"verified_tokens_budget,omitempty"`
	// RefreshMargin: a cached token is dropped this long before it expires. Default 5m; 1m..30m.
	RefreshMargin Duration `yaml:"refresh_margin,omitempty"`
	// Redis is the optional cache shared by replicas (L2); nil or empty address = none.
	// Load leaves it nil when no address is set.
	Redis *Redis `yaml:"redis,omitempty"`
}

// Redis locates the shared cache. Values are encrypted with AES-256-GCM.
type Redis struct {
	// Address is host:port. Env OBO_GATEWAY_CACHE_REDIS_ADDRESS.
	Address string `yaml:"address,omitempty"`
	// Username is the ACL user, when not the default one.
	Username string `yaml:"username,omitempty"`
	// Password authenticates to Redis. Prefer env OBO_GATEWAY_CACHE_REDIS_PASSWORD:
	// a password in a file is a secret in a file. Redacted like the certificate password.
	Password string `yaml:"password,omitempty"`
	// DB is the database number. Default 0.
	DB int `yaml:"db,omitempty"`
	// TLS connects to Redis over TLS, trusting the system's CAs and CAFile.
	TLS bool `yaml:"tls,omitempty"`
	// CAFile adds CA certificates (PEM) trusted for Redis's TLS; only with TLS.
	CAFile string `yaml:"ca_file,omitempty"`
	// Timeout bounds each Redis call. Default 50ms; 1ms..5s.
	Timeout Duration `yaml:"timeout,omitempty"`
	// EncryptionKeys: "kid:BASE64,kid2:BASE64" (std base64 of 32 random bytes
	// each). Required with an address. Prefer env
	// OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS. Redacted in logs. See Keys.
	EncryptionKeys string `yaml:"encryption_keys,omitempty"`
	// EncryptionKeyID is the key ID new values are encrypted with; the others
	// only decrypt (rotation). Default: the first key's ID.
	EncryptionKeyID string `yaml:"encryption_key_id,omitempty"`
}

// ByteSize is a size written 64MiB, 512KiB, 1GiB or a plain number of bytes.
type ByteSize int64

// The binary units of ByteSize.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
)

// Duration is a time.Duration written as "30s", "5m" in YAML and in the environment.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
