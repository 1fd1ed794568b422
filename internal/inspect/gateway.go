package inspect

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
)

// Gateway is what inspect needs of a gateway's configuration to tell
// whether the gateway would accept a token, and on which routes.
type Gateway struct {
	// Name labels the configuration in the report (its file name).
	Name           string
	TenantID       string
	ClientID       string
	Audiences      []string // App ID URIs accepted besides ClientID
	AllowedTenants []string
	ClockSkew      time.Duration
	// Issuers are the tenant's issuer templates, as the gateway finds them
	// (see ResolveIssuers).
	Issuers Issuers
	Routes  []Route
}

// Route is what a route demands of a token.
type Route struct {
	Name, PathPrefix string
	// Resource is the downstream API the route exchanges the token for; ""
	// when it exchanges none.
	Resource string
	// Policy is the route's policy as the gateway builds it (config.Route.Policy).
	Policy auth.Policy
}

// GatewayOf extracts from a loaded configuration what inspect needs;
// issuers come from ResolveIssuers.
func GatewayOf(name string, cfg *config.Config, issuers Issuers) *Gateway {
	e := cfg.Entra
	g := &Gateway{
		Name: name, TenantID: e.TenantID, ClientID: e.ClientID,
		Audiences: e.Audiences, AllowedTenants: e.AllowedTenants, ClockSkew: e.ClockSkew.D(),
		Issuers: issuers,
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		g.Routes = append(g.Routes, Route{Name: r.Name, PathPrefix: r.PathPrefix, Resource: r.Resource(), Policy: r.Policy()})
	}
	return g
}

// validator is the gateway's validator for this configuration, with keys
// and its clock at at: the one rulebook inspect reports.
func (g *Gateway) validator(keys auth.KeySet, at time.Time) (*auth.Validator, error) {
	return auth.NewValidator(auth.ValidatorConfig{
		Keys: keys, Metadata: g.Issuers.Metadata, TenantID: g.TenantID, AllowedTenants: g.AllowedTenants,
		ClientID: g.ClientID, Audiences: g.Audiences, Leeway: g.ClockSkew, Now: func() time.Time { return at },
	})
}

// Issuers are a tenant's v2 and v1 issuers as templates with "{tenantid}"
// (auth.Metadata), and how they were found. An empty template is unknown.
type Issuers struct {
	auth.Metadata
	// Source says how the templates were found, in words.
	Source string
}

// publicCloudHost is Microsoft's public cloud, whose issuers are known
// without asking: v2 https://login.microsoftonline.com/<tid>/v2.0, v1
// https://sts.windows.net/<tid>/.
const publicCloudHost = "login.microsoftonline.com"

// ResolveIssuers finds the issuers the gateway accepts for a tenant under
// authorityHost. For Microsoft's public cloud they are computed, offline.
// For any other host (a sovereign cloud, the local tenant) they come from
// the host's OIDC discovery, as the gateway reads it, when client is not
// nil (client must have a timeout); without client, or when discovery
// fails, the v2 issuer is taken as https://<host>/<tid>/v2.0 and the v1
// issuer is left unknown, with Source saying why.
func ResolveIssuers(ctx context.Context, client *http.Client, authorityHost, tenantID string) Issuers {
	host := strings.TrimSuffix(authorityHost, "/")
	if u, err := url.Parse(host); err == nil && strings.EqualFold(u.Host, publicCloudHost) {
		return Issuers{
			Metadata: auth.Metadata{
				JWKSURI:          host + "/" + tenantID + "/discovery/v2.0/keys",
				IssuerV2Template: host + "/{tenantid}/v2.0",
				IssuerV1Template: "https://sts.windows.net/{tenantid}/",
			},
			Source: "computed for Microsoft's public cloud (no network)",
		}
	}
	guessed := Issuers{Metadata: auth.Metadata{
		JWKSURI:          host + "/" + tenantID + "/discovery/v2.0/keys",
		IssuerV2Template: host + "/{tenantid}/v2.0",
	}}
	if client == nil {
		guessed.Source = "guessed for " + host + " without discovery (-offline): the v1 issuer is unknown"
		return guessed
	}
	md, err := auth.Discover(ctx, client, host, tenantID)
	if err != nil {
		guessed.Source = "guessed for " + host + ": discovery failed (" + err.Error() + "), so the v1 issuer is unknown"
		return guessed
	}
	return Issuers{Metadata: md, Source: "from " + host + "'s OIDC discovery, as the gateway reads it"}
}
