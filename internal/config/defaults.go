package config

import (
	"net/url"
	"strings"
	"time"
)

// The defaults, documented in docs/configuration.md.
const (
	defaultListen                 = ":8080"
	defaultAdminListen            = ":9090"
	defaultShutdownGrace          = 20 * time.Second
	defaultLogLevel               = "info"
	defaultAuthorityHost          = "https://login.microsoftonline.com"
	defaultClockSkew              = time.Minute
	defaultTokenTimeout           = 10 * time.Second
	defaultKeysRefreshInterval    = time.Hour
	defaultKeysMinRefreshInterval = 30 * time.Second
	defaultRouteTimeout           = 30 * time.Second
	defaultCORSMaxAge             = 10 * time.Minute
	defaultCacheMemoryBudget      = 64 * MiB
	defaultVerifiedTokensBudget   = 32 * MiB
	defaultCacheRefreshMargin     = 5 * time.Minute
	defaultRedisTimeout           = 50 * time.Millisecond

	defaultMaxConnections         = 2048
	defaultMaxInFlight            = 512
	defaultMaxConcurrentExchanges = 16
	defaultMaxQueuedExchanges     = 256
	defaultExchangeQueueTimeout   = 2 * time.Second
	defaultReadHeaderTimeout      = 10 * time.Second
	defaultBodyTimeout            = 30 * time.Second
	defaultIdleTimeout            = 120 * time.Second
	defaultMaxHeaderBytes         = 64 * KiB
	defaultMaxBodyBytes           = 10 * MiB
)

// applyDefaults fills what neither the file nor the environment set. A zero
// duration counts as unset. It also normalises: a trailing "/" is dropped
// from the authority host, and a tls section with neither file is removed
// (TLS is nil exactly when the API listener serves plain HTTP), and so is a
// cache.redis section without an address (Redis is nil exactly when there is
// no shared cache).
func (c *Config) applyDefaults() {
	setDefault(&c.Listen, defaultListen)
	setDefault(&c.AdminListen, defaultAdminListen)
	setDefault(&c.LogLevel, defaultLogLevel)
	setDefault(&c.ShutdownGrace, Duration(defaultShutdownGrace))
	if c.TLS != nil && c.TLS.CertFile == "" && c.TLS.KeyFile == "" {
		c.TLS = nil
	}

	e := &c.Entra
	e.AuthorityHost = strings.TrimRight(e.AuthorityHost, "/")
	setDefault(&e.AuthorityHost, defaultAuthorityHost)
	if e.InstanceDiscovery == nil {
		on := isMicrosoftAuthorityHost(e.AuthorityHost)
		e.InstanceDiscovery = &on
	}
	setDefault(&e.Credential, CredentialCertificate)
	setDefault(&e.ClockSkew, Duration(defaultClockSkew))
	setDefault(&e.TokenTimeout, Duration(defaultTokenTimeout))
	setDefault(&e.KeysRefreshInterval, Duration(defaultKeysRefreshInterval))
	setDefault(&e.KeysMinRefreshInterval, Duration(defaultKeysMinRefreshInterval))

	l := &c.Limits
	setDefault(&l.MaxConnections, defaultMaxConnections)
	setDefault(&l.MaxInFlight, defaultMaxInFlight)
	setDefault(&l.MaxConcurrentExchanges, defaultMaxConcurrentExchanges)
	setDefault(&l.MaxQueuedExchanges, defaultMaxQueuedExchanges)
	setDefault(&l.ExchangeQueueTimeout, Duration(defaultExchangeQueueTimeout))
	setDefault(&l.ReadHeaderTimeout, Duration(defaultReadHeaderTimeout))
	setDefault(&l.BodyTimeout, Duration(defaultBodyTimeout))
	setDefault(&l.IdleTimeout, Duration(defaultIdleTimeout))
	setDefault(&l.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDefault(&l.MaxBodyBytes, defaultMaxBodyBytes)

	for i := range c.Routes {
		rt := &c.Routes[i]
		setDefault(&rt.Timeout, Duration(defaultRouteTimeout))
		setDefault(&rt.MaxBodyBytes, l.MaxBodyBytes)
		setDefault(&rt.BodyTimeout, l.BodyTimeout)
	}
	setDefault(&c.CORS.MaxAge, Duration(defaultCORSMaxAge))

	k := &c.Cache
	setDefault(&k.MemoryBudget, defaultCacheMemoryBudget)
	setDefault(&k.VerifiedTokensBudget, defaultVerifiedTokensBudget)
	setDefault(&k.RefreshMargin, Duration(defaultCacheRefreshMargin))
	if k.Redis != nil && k.Redis.Address == "" {
		k.Redis = nil
	}
	if r := k.Redis; r != nil {
		setDefault(&r.Timeout, Duration(defaultRedisTimeout))
		// The first entry's ID, when it is one; Validate reports bad entries.
		setDefault(&r.EncryptionKeyID, firstKeyID(r.EncryptionKeys))
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// isMicrosoftAuthorityHost reports whether authorityHost (a URL such as
// https://login.microsoftonline.us) is one of Microsoft's Entra hosts, in
// any cloud: those are the hosts instance discovery knows. It decides on
// the URL's host, never on a part of the text.
func isMicrosoftAuthorityHost(authorityHost string) bool {
	u, err := url.Parse(authorityHost)
	return err == nil && IsMicrosoftHost(u.Hostname())
}

// ciamSuffix ends the hosts of Microsoft Entra External ID tenants
// (contoso.ciamlogin.com).
const ciamSuffix = ".ciamlogin.com"

// IsMicrosoftHost reports whether host (a host name, no scheme or port) is
// one of Entra ID's authority hosts, in any cloud: the public cloud, US
// Government, China (21Vianet), and Entra External ID's
// <tenant>.ciamlogin.com. The comparison is of the whole name, in any
// case, a final dot allowed.
func IsMicrosoftHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch h {
	case "login.microsoftonline.com", "login.microsoft.com", "login.windows.net",
		"login.microsoftonline.us", "login-us.microsoftonline.com", "login.usgovcloudapi.net",
		"login.partner.microsoftonline.cn", "login.chinacloudapi.cn":
		return true
	}
	label := strings.TrimSuffix(h, ciamSuffix)
	return len(label) < len(h) && label != "" && !strings.Contains(label, ".")
}
