package doctor

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2"
)

// maxQuietSkew is the clock skew beyond which the doctor warns.
const maxQuietSkew = 2 * time.Minute

// checkSettings looks for settings that load but deserve a second look.
func (r *runner) checkSettings() {
	e := r.cfg.Entra
	host := hostOf(e.AuthorityHost)
	on := e.InstanceDiscovery != nil && *e.InstanceDiscovery
	// On for another host fails the configuration check (config refuses
	// it), so it never reaches here.
	const idID, idName = "settings/instance_discovery", "instance discovery"
	switch ms := config.IsMicrosoftHost(host); {
	case ms && !on:
		r.warn(idID, idName, fmt.Sprintf("off for %s, a Microsoft host: MSAL neither validates the authority nor learns its aliases", host),
			"remove entra.instance_discovery (OBO_GATEWAY_ENTRA_INSTANCE_DISCOVERY): the default is on for Microsoft's hosts; turn it off only for a host Entra does not know")
	case on:
		r.pass(idID, idName, "on for "+host+": MSAL validates the authority with Entra")
	default:
		r.pass(idID, idName, "off for "+host+", a host Entra does not know (a local tenant): MSAL reads its discovery document directly")
	}

	const skID, skName = "settings/clock_skew", "clock skew"
	if skew := e.ClockSkew.D(); skew > maxQuietSkew {
		r.warn(skID, skName, fmt.Sprintf("entra.clock_skew is %s: tokens are accepted up to %s after they expire", e.ClockSkew, e.ClockSkew),
			"keep entra.clock_skew at 1m (the default) or less, and keep the clock right with NTP: a large leeway lets expired and stolen tokens through for that long")
	} else {
		r.pass(skID, skName, fmt.Sprintf("%s of leeway on exp, nbf and iat", e.ClockSkew))
	}

	const atID, atName = "settings/allowed_tenants", "tenants"
	if len(e.AllowedTenants) > 0 {
		r.warn(atID, atName, fmt.Sprintf("tokens of tenants %s are accepted besides %s: their On-Behalf-Of exchanges go to the token's own tenant (tid), not to %s", strings.Join(e.AllowedTenants, ", "), e.TenantID, e.TenantID),
			"in each allowed tenant, the gateway app (multi-tenant) and every downstream API need a service principal with admin consent for the delegated permissions: this doctor checks the home tenant only")
	} else {
		r.pass(atID, atName, "single tenant: only tokens of tenant "+e.TenantID+" are accepted, and exchanged there")
	}

	const auID, auName = "settings/audiences", "audiences"
	if len(e.Audiences) == 0 {
		r.warn(auID, auName, fmt.Sprintf("only tokens with aud %s (the client ID, as in v2 tokens) are accepted; v1 tokens carry the App ID URI as aud and would be refused", e.ClientID),
			"if a frontend may get v1 tokens (the gateway manifest's accessTokenAcceptedVersion is null or 1), list the App ID URI in entra.audiences, e.g. api://obo-gateway; with accessTokenAcceptedVersion 2, v2 tokens only, this is fine")
	} else {
		r.pass(auID, auName, fmt.Sprintf("tokens with aud %s (v2) or %s (v1) are accepted", e.ClientID, strings.Join(e.Audiences, ", ")))
	}

	if rd := r.cfg.Cache.Redis; rd == nil {
		r.pass("cache/redis", "shared cache (Redis)", "none: each replica caches the tokens it gets itself")
	} else if r.opts.Offline {
		if desc, err := redisDescription(rd); err != nil {
			r.fail("cache/redis", "shared cache (Redis)", err.Error(), "correct cache.redis.encryption_keys and encryption_key_id (docs/configuration.md)")
		} else {
			r.pass("cache/redis", "shared cache (Redis)", desc+" (not contacted: -offline)")
		}
	}
}

func redisDescription(rd *config.Redis) (string, error) {
	kr, err := redisl2.ParseKeyring(rd.EncryptionKeys, rd.EncryptionKeyID)
	if err != nil {
		return "", err
	}
	tlsNote := "plain TCP"
	if rd.TLS {
		tlsNote = "TLS"
	}
	return fmt.Sprintf("%s over %s, database %d, encryption keys %s (current %s)",
		rd.Address, tlsNote, rd.DB, strings.Join(kr.IDs(), ", "), kr.Current()), nil
}

// redisConfig is the gateway's own configuration of its shared cache
// (clients.Redis), with the doctor's bound when it is longer: a first
// connection may take a TLS handshake more than the gateway's steady state.
func (r *runner) redisConfig() (redisl2.Config, error) {
	rcfg, err := clients.Redis(r.cfg.Cache.Redis)
	if err != nil {
		return rcfg, err
	}
	rcfg.Timeout = max(r.opts.RedisTimeout, rcfg.Timeout)
	return rcfg, nil
}

// checkRedis PINGs the shared cache, as the gateway's readiness would.
func (r *runner) checkRedis(ctx context.Context) {
	rd := r.cfg.Cache.Redis
	if rd == nil {
		return
	}
	const id, name = "cache/redis", "shared cache (Redis)"
	const still = "requests still work without it: each replica then exchanges tokens itself (more exchanges, no failed requests)"
	desc, err := redisDescription(rd)
	if err != nil {
		r.fail(id, name, err.Error(), "correct cache.redis.encryption_keys and encryption_key_id (docs/configuration.md)")
		return
	}
	rcfg, err := r.redisConfig()
	if err != nil {
		r.fail(id, name, fmt.Sprintf("%s: cache.redis.ca_file %s holds no readable PEM certificate", desc, rd.CAFile),
			"name a PEM file of the CA that signed Redis's certificate in cache.redis.ca_file")
		return
	}
	timeout := rcfg.Timeout
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Dial first, to classify a network failure without go-redis (which
	// logs failed dials to the process's stderr).
	dial := r.opts.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	conn, err := dial(pctx, "tcp", rd.Address)
	if err != nil {
		f := classifyNet(err)
		r.fail(id, name, fmt.Sprintf("%s: %s (%s)", desc, f.class, f.cause),
			"start Redis or correct cache.redis.address (OBO_GATEWAY_CACHE_REDIS_ADDRESS); "+still)
		return
	}
	conn.Close()

	c, err := redisl2.New(rcfg)
	if err != nil {
		r.fail(id, name, fmt.Sprintf("%s: %v", desc, err), "correct cache.redis (docs/configuration.md)")
		return
	}
	defer c.Close()
	// The second PING, on the connection the first one opened, is the
	// steady state the gateway's timeout must cover.
	err = c.Ping(pctx)
	start := time.Now()
	if err == nil {
		err = c.Ping(pctx)
	}
	elapsed := time.Since(start).Round(time.Microsecond)
	if err != nil {
		msg := err.Error()
		fix := "check cache.redis (address, tls, username, password, db); " + still
		switch {
		case strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "invalid password"), strings.Contains(msg, "invalid username"):
			fix = "Redis refuses the credentials: set cache.redis.username and OBO_GATEWAY_CACHE_REDIS_PASSWORD to an ACL user of Redis; " + still
		case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"), strings.Contains(msg, "first record does not look like a TLS handshake"):
			fix = "the TLS connection to Redis fails: set cache.redis.tls to what Redis speaks, and cache.redis.ca_file to the CA of its certificate; " + still
		case strings.Contains(msg, "DB index"), strings.Contains(msg, "invalid DB"):
			fix = "Redis has no such database: correct cache.redis.db; " + still
		}
		r.fail(id, name, fmt.Sprintf("%s: PING failed: %s", desc, msg), fix)
		return
	}
	if rd.Timeout.D() < elapsed {
		r.warn(id, name, fmt.Sprintf("%s: PONG in %s, more than cache.redis.timeout (%s)", desc, elapsed, rd.Timeout),
			"the gateway gives up on Redis after cache.redis.timeout: raise it (up to 5s) or bring Redis closer; "+still)
		return
	}
	r.pass(id, name, fmt.Sprintf("%s: PONG in %s", desc, elapsed))
}
