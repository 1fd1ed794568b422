package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Metadata is what the gateway needs from a tenant's OIDC discovery: where
// the signing keys are, and the issuers of v1 and v2 tokens as templates
// with "{tenantid}" in place of the tenant ID.
type Metadata struct {
	JWKSURI          string
	IssuerV2Template string
	IssuerV1Template string
	// TokenEndpoint is the tenant's v2 token endpoint (the v2 document's
	// token_endpoint), where the exchanges go; "" when the document has none.
	TokenEndpoint string
}

// Issuers returns the v2 and v1 issuers for a tenant.
func (m Metadata) Issuers(tenantID string) (v2, v1 string) {
	return strings.ReplaceAll(m.IssuerV2Template, "{tenantid}", tenantID),
		strings.ReplaceAll(m.IssuerV1Template, "{tenantid}", tenantID)
}

// Discover reads the tenant's v2 and v1 OpenID configurations under
// authorityHost (e.g. https://login.microsoftonline.com). client must have a
// timeout. Entra's v1 issuer lives on another host (sts.windows.net), which is
// why both documents are read rather than one issuer being derived.
func Discover(ctx context.Context, client *http.Client, authorityHost, tenantID string) (Metadata, error) {
	v2, err := getBody(ctx, client, DiscoveryURL(authorityHost, tenantID, true))
	if err != nil {
		return Metadata{}, err
	}
	v1, err := getBody(ctx, client, DiscoveryURL(authorityHost, tenantID, false))
	if err != nil {
		return Metadata{}, err
	}
	return ParseDiscovery(tenantID, v2, v1)
}

// DiscoveryURL is the address of the tenant's v2 (or v1) OpenID configuration.
func DiscoveryURL(authorityHost, tenantID string, v2 bool) string {
	base := strings.TrimSuffix(authorityHost, "/") + "/" + tenantID
	if v2 {
		return base + "/v2.0/.well-known/openid-configuration"
	}
	return base + "/.well-known/openid-configuration"
}

// ParseDiscovery makes the Metadata of tenantID from its v2 and v1 OpenID
// configurations, for a caller that fetched them itself (gateway doctor).
func ParseDiscovery(tenantID string, v2doc, v1doc []byte) (Metadata, error) {
	var v2, v1 struct {
		Issuer        string `json:"issuer"`
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(v2doc, &v2); err != nil {
		return Metadata{}, fmt.Errorf("auth: discovery of tenant %s: v2 document: %w", tenantID, err)
	}
	if err := json.Unmarshal(v1doc, &v1); err != nil {
		return Metadata{}, fmt.Errorf("auth: discovery of tenant %s: v1 document: %w", tenantID, err)
	}
	if v2.JWKSURI == "" || v2.Issuer == "" || v1.Issuer == "" {
		return Metadata{}, fmt.Errorf("auth: discovery of tenant %s: issuer or jwks_uri missing", tenantID)
	}
	tmpl := func(iss string) (string, error) {
		if strings.Contains(iss, "{tenantid}") {
			return iss, nil
		}
		if !strings.Contains(iss, tenantID) {
			return "", fmt.Errorf("auth: discovery of tenant %s: issuer %q does not name the tenant", tenantID, iss)
		}
		return strings.ReplaceAll(iss, tenantID, "{tenantid}"), nil
	}
	m := Metadata{JWKSURI: v2.JWKSURI, TokenEndpoint: v2.TokenEndpoint}
	var err error
	if m.IssuerV2Template, err = tmpl(v2.Issuer); err != nil {
		return Metadata{}, err
	}
	if m.IssuerV1Template, err = tmpl(v1.Issuer); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

func getBody(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: discovery: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("auth: discovery %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: discovery %s: HTTP %d: %.200s", url, resp.StatusCode, body)
	}
	return body, nil
}
