package fakeentra

// Info is what the standalone binary prints once ready (one JSON line), and
// what tests and scripts read to find their way around the tenant. Its JSON
// names are a contract: keep them stable.
type Info struct {
	Authority     string `json:"authority"`
	TenantID      string `json:"tenant_id"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
	Issuer        string `json:"issuer"`
	// IssuerV1 is the issuer of the tenant's v1 tokens, on another origin
	// than the authority (Entra's https://sts.windows.net/<tid>/).
	IssuerV1 string             `json:"issuer_v1"`
	CAFile   string             `json:"ca_file"`
	Apps     map[string]AppInfo `json:"apps"`
	Users    []UserInfo         `json:"users"`
	// ClusterIssuers are the URLs of the cluster issuers played, by name.
	ClusterIssuers map[string]string `json:"cluster_issuers"`
	// IdentityEndpoint and IdentityHeader are the managed identity
	// endpoint's URL and secret: App Service's IDENTITY_ENDPOINT and
	// IDENTITY_HEADER.
	IdentityEndpoint string `json:"identity_endpoint"`
	IdentityHeader   string `json:"identity_header"`
	// ManagedIdentities are the tenant's managed identities, by name.
	ManagedIdentities map[string]ManagedIdentityInfo `json:"managed_identities,omitempty"`
}

// ManagedIdentityInfo describes a managed identity of the tenant.
type ManagedIdentityInfo struct {
	ClientID       string `json:"client_id"`
	ObjectID       string `json:"object_id"`
	SystemAssigned bool   `json:"system_assigned,omitempty"`
}

// AppInfo describes an app of the tenant.
type AppInfo struct {
	ClientID       string   `json:"client_id"`
	IdentifierURIs []string `json:"identifier_uris,omitempty"`
	Scopes         []string `json:"scopes,omitempty"`
	AppRoles       []string `json:"app_roles,omitempty"`
	PublicClient   bool     `json:"public_client,omitempty"`
	// CertificateFile and KeyFile are set for apps whose credential the
	// tenant generated.
	CertificateFile string `json:"certificate_file,omitempty"`
	KeyFile         string `json:"key_file,omitempty"`
	// AccessTokenVersion is the version of the tokens issued for the app
	// as a resource (1 unless its manifest asks for 2).
	AccessTokenVersion int `json:"access_token_version"`
	// RedirectURIs are the app's redirect URIs by platform, when it has any.
	RedirectURIs *RedirectURIs `json:"redirect_uris,omitempty"`
}

// UserInfo describes a user; the password is included on purpose: this is a
// local test tenant and the line is how developers learn how to sign in.
type UserInfo struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ObjectID string `json:"object_id"`
}

// Info describes the primary tenant.
func (s *Server) Info() Info {
	t := s.Tenant()
	in := Info{
		Authority:     s.Authority(),
		TenantID:      t.TenantID,
		TokenEndpoint: s.TokenEndpoint(),
		JWKSURI:       s.JWKSURI(),
		Issuer:        s.IssuerV2(t.TenantID),
		IssuerV1:      s.IssuerV1(t.TenantID),
		CAFile:        s.caFile,
		Apps:          map[string]AppInfo{},
	}
	for _, a := range t.Apps {
		ai := AppInfo{
			ClientID: a.ClientID, IdentifierURIs: a.IdentifierURIs, Scopes: a.Scopes, AppRoles: a.AppRoles,
			PublicClient: a.PublicClient, CertificateFile: a.certFile, KeyFile: a.keyFile,
			AccessTokenVersion: a.AccessTokenVersion,
		}
		if !a.RedirectURIs.empty() {
			ru := a.RedirectURIs
			ai.RedirectURIs = &ru
		}
		in.Apps[a.Name] = ai
	}
	for _, u := range t.Users {
		in.Users = append(in.Users, UserInfo{Username: u.Username, Password: u.Password, ObjectID: u.ObjectID})
	}
	in.ClusterIssuers = map[string]string{}
	for name, c := range s.clusters {
		in.ClusterIssuers[name] = c.url
	}
	in.IdentityEndpoint, in.IdentityHeader = s.ManagedIdentityEndpoint()
	for _, m := range t.ManagedIdentities {
		if in.ManagedIdentities == nil {
			in.ManagedIdentities = map[string]ManagedIdentityInfo{}
		}
		in.ManagedIdentities[m.Name] = ManagedIdentityInfo{ClientID: m.ClientID, ObjectID: m.ObjectID, SystemAssigned: m.SystemAssigned}
	}
	return in
}
