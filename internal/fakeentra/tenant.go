package fakeentra

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// Tenant describes a directory: its apps (registrations and their service
// principals) and its users. It is what a tenant file holds.
type Tenant struct {
	TenantID string `yaml:"tenant_id" json:"tenant_id"`
	// Domain is the users' UPN suffix, answered by user-realm discovery.
	Domain string `yaml:"domain" json:"domain"`
	// TokenLifetime is the lifetime of access tokens; Entra's default is
	// 60-90 minutes. Anything of 5 minutes or less makes MSAL reject the token.
	// TokenLifetime is the lifetime of access tokens. Unset, each token gets
	// a random one between 60 and 90 minutes, as Entra's default policy gives.
	// Anything of 5 minutes or less makes MSAL reject the token.
	TokenLifetime Duration `yaml:"token_lifetime" json:"token_lifetime"`
	Apps          []*App   `yaml:"apps" json:"apps"`
	Users         []*User  `yaml:"users" json:"users"`
	// AuthContexts are the tenant's conditional-access authentication
	// contexts (acrs) and what each requires.
	AuthContexts []AuthContext `yaml:"auth_contexts" json:"auth_contexts,omitempty"`
	// LoopDetection refuses a token asked for too often (AADSTS50196);
	// nil takes the default, 100 identical successful requests in 5 minutes.
	LoopDetection *LoopDetection `yaml:"loop_detection" json:"loop_detection,omitempty"`
	// ClusterIssuers name further Kubernetes service-account issuers the
	// server plays (see ClusterIssuerURL), besides "local", which it always
	// serves. Names are path segments: letters, digits, '-', '_' and '.'.
	ClusterIssuers []string `yaml:"cluster_issuers" json:"cluster_issuers,omitempty"`
	// ManagedIdentities are the tenant's managed identities, whose tokens
	// the server's managed identity endpoint hands out (see
	// Server.ManagedIdentityEndpoint). At most one is system-assigned.
	ManagedIdentities []*ManagedIdentity `yaml:"managed_identities" json:"managed_identities,omitempty"`
}

// ManagedIdentity is a managed identity of the tenant: a service principal
// without credentials, whose tokens the host's identity endpoint issues.
type ManagedIdentity struct {
	// Name is how the tenant file refers to it (and the last segment of
	// its Azure resource ID).
	Name string `yaml:"name" json:"name"`
	// ClientID is its client (application) ID. Generated when empty.
	ClientID string `yaml:"client_id" json:"client_id"`
	// ObjectID is its principal (object) ID: the oid and sub of its tokens.
	// Generated when empty.
	ObjectID string `yaml:"object_id" json:"object_id"`
	// SystemAssigned marks the host's system-assigned identity, the one
	// answered when a request names none. User-assigned otherwise.
	SystemAssigned bool `yaml:"system_assigned" json:"system_assigned,omitempty"`
}

// FederatedCredential is a federated identity credential of an app (the
// portal's "Federated credentials", Microsoft Graph's
// federatedIdentityCredential): the app accepts, as its client assertion,
// a token of Issuer about Subject for one of Audiences. Issuer and subject
// are compared exactly, case included, as Entra compares them.
type FederatedCredential struct {
	// Name is unique among the app's federated credentials.
	Name string `yaml:"name" json:"name"`
	// Issuer is the trusted issuer's URL, exactly as the tokens' iss.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Subject is the tokens' sub, e.g. system:serviceaccount:<ns>:<name>.
	Subject string `yaml:"subject" json:"subject"`
	// Audiences holds the one audience the tokens must carry; default
	// api://AzureADTokenExchange. Entra takes a single value.
	Audiences []string `yaml:"audiences" json:"audiences"`
	// ClusterIssuer, instead of Issuer, names a cluster issuer served by
	// the local tenant ("local", or one of Tenant.ClusterIssuers): Issuer
	// is then its URL, known once the server listens.
	ClusterIssuer string `yaml:"cluster_issuer" json:"cluster_issuer,omitempty"`
	// ManagedIdentity, instead of Issuer and Subject, names a managed
	// identity of the tenant: Issuer is then the tenant's v2 issuer and
	// Subject the identity's object ID (the portal's "Managed identity"
	// scenario).
	ManagedIdentity string `yaml:"managed_identity" json:"managed_identity,omitempty"`

	issuer string // the issuer URL, resolved at start
}

// LoopDetection is Entra's guard against clients asking for the same token
// over and over (no cache, a retry loop): beyond MaxRequests identical
// successful requests (client, user, resource, scopes, claims) within
// Window, the next are refused with AADSTS50196 until the window moves on.
type LoopDetection struct {
	// MaxRequests is the bound; a negative value turns detection off.
	MaxRequests int      `yaml:"max_requests" json:"max_requests"`
	Window      Duration `yaml:"window" json:"window"`
}

// App is an app registration with its service principal.
type App struct {
	Name     string `yaml:"name" json:"name"`
	ClientID string `yaml:"client_id" json:"client_id"`
	// ObjectID is the service principal's object ID: the oid and sub of its
	// app-only tokens. Generated when empty.
	ObjectID       string   `yaml:"object_id" json:"object_id"`
	IdentifierURIs []string `yaml:"identifier_uris" json:"identifier_uris"`
	// Scopes are the delegated permissions the app exposes (e.g. access_as_user).
	Scopes []string `yaml:"scopes" json:"scopes"`
	// AppRoles are the application permissions the app exposes.
	AppRoles []string `yaml:"app_roles" json:"app_roles"`
	// PublicClient apps (SPAs, mobile, CLIs) have no credential and may use
	// the password grant.
	PublicClient bool `yaml:"public_client" json:"public_client"`
	// Certificates registered on the app (the portal's "Certificates").
	Certificates []CertificateRef `yaml:"certificates" json:"certificates"`
	// GenerateCertificate makes the tenant create a certificate and key for
	// this app at start-up and write them to the tenant's directory.
	GenerateCertificate bool `yaml:"generate_certificate" json:"generate_certificate"`
	// Secrets are client secrets (the portal's "Client secrets").
	Secrets []string `yaml:"secrets" json:"-"`
	// AccessTokenVersion is the manifest's accessTokenAcceptedVersion for
	// tokens issued to this app as a resource: 1 or 2. Unset (null in the
	// manifest, as for every new registration) means 1: v1 tokens, whose aud
	// is the App ID URI and whose iss is the STS host.
	AccessTokenVersion int `yaml:"access_token_version" json:"access_token_version"`
	// OptionalClaims are the optional access-token claims the app asks for
	// as a resource (Token configuration); the tenant knows "idtyp".
	OptionalClaims []string `yaml:"optional_claims" json:"optional_claims,omitempty"`
	// TrustedCertificateSubjects turn on subject name and issuer (SNI)
	// authentication: a client assertion whose x5c chain leads to the
	// tenant's CA and whose leaf has one of these subjects (e.g.
	// "CN=gateway.contoso.test") is trusted without a registered thumbprint.
	TrustedCertificateSubjects []string `yaml:"trusted_certificate_subjects" json:"trusted_certificate_subjects,omitempty"`
	// Permissions are the API permissions this app holds on other apps,
	// admin-consented: delegated scopes and application roles.
	Permissions []Permission `yaml:"permissions" json:"permissions"`
	// FederatedCredentials are the app's federated identity credentials:
	// tokens of other issuers (a cluster's service accounts, managed
	// identities) it accepts as client assertions.
	FederatedCredentials []FederatedCredential `yaml:"federated_credentials" json:"federated_credentials,omitempty"`
	// RedirectURIs are the app's redirect URIs by platform (the portal's
	// Authentication blade, the manifest's replyUrlsWithType): where the
	// authorization endpoint may send the user back.
	RedirectURIs RedirectURIs `yaml:"redirect_uris" json:"redirect_uris,omitempty"`

	certs []*x509.Certificate
	// generated credentials, when GenerateCertificate is set
	certFile, keyFile string
}

// RedirectURIs are an app's redirect URIs, by platform. The platform
// decides how a code sent there may be redeemed: an SPA's only
// cross-origin (from the browser, with an Origin header) and with PKCE, the
// others only from a server or a native app (no Origin header).
type RedirectURIs struct {
	// SPA: the "Single-page application" platform (type Spa).
	SPA []string `yaml:"spa" json:"spa,omitempty"`
	// Web: the "Web" platform (type Web).
	Web []string `yaml:"web" json:"web,omitempty"`
	// PublicClient: the "Mobile and desktop applications" platform
	// (type InstalledClient).
	PublicClient []string `yaml:"public_client" json:"public_client,omitempty"`
}

// CertificateRef is a certificate registered on an app: inline PEM or a file.
type CertificateRef struct {
	PEM  string `yaml:"pem" json:"pem,omitempty"`
	File string `yaml:"file" json:"file,omitempty"`
}

// Permission is an API permission of a client app on a resource app.
type Permission struct {
	// Resource names the resource app: its name, client ID or an identifier URI.
	Resource string   `yaml:"resource" json:"resource"`
	Scopes   []string `yaml:"scopes" json:"scopes"`
	Roles    []string `yaml:"roles" json:"roles"`
}

// User is a member of the directory.
type User struct {
	Username    string `yaml:"username" json:"username"`
	Password    string `yaml:"password" json:"password"`
	ObjectID    string `yaml:"object_id" json:"object_id"`
	DisplayName string `yaml:"display_name" json:"display_name"`
	Disabled    bool   `yaml:"disabled" json:"disabled"`
	// NoConsent lists resources (name, client ID or identifier URI) this user
	// has not consented to: delegated tokens for them fail with AADSTS65001.
	NoConsent []string `yaml:"no_consent" json:"no_consent"`
	// MFARequired lists resources whose conditional access policy requires
	// MFA for this user: tokens for them need "mfa" in the assertion's amr,
	// else AADSTS50076 with a claims challenge.
	MFARequired []string `yaml:"mfa_required" json:"mfa_required"`
	// MFANotRegistered: the user has not registered any MFA method, so a
	// policy requiring MFA answers AADSTS50079 (interaction_required) and the
	// sign-in cannot complete MFA.
	MFANotRegistered bool `yaml:"mfa_not_registered" json:"mfa_not_registered,omitempty"`
	// AppRoles are the user's app-role assignments (Enterprise applications
	// → Users and groups): the user's tokens for a resource carry, in roles,
	// those of its roles that the resource exposes.
	AppRoles []RoleAssignment `yaml:"app_roles" json:"app_roles,omitempty"`
}

// RoleAssignment assigns a user app roles of a resource app.
type RoleAssignment struct {
	// Resource names the resource app: its name, client ID or an identifier URI.
	Resource string   `yaml:"resource" json:"resource"`
	Roles    []string `yaml:"roles" json:"roles"`
}

// Duration is a time.Duration that reads "90m" style strings from YAML.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 90m: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// LoadTenant reads a tenant file. Relative certificate paths are relative to the file.
func LoadTenant(path string) (*Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fakeentra: read tenant file: %w", err)
	}
	var t Tenant
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("fakeentra: tenant file %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, a := range t.Apps {
		for i, c := range a.Certificates {
			if c.File != "" && !filepath.IsAbs(c.File) {
				a.Certificates[i].File = filepath.Join(base, c.File)
			}
		}
	}
	return &t, nil
}

// prepare fills defaults, generates what was asked for into dir, and checks
// the tenant for mistakes that would make tests confusing.
func (t *Tenant) prepare(dir string, now time.Time) error {
	if t.TenantID == "" {
		t.TenantID = newGUID()
	}
	if !isGUID(t.TenantID) {
		return fmt.Errorf("fakeentra: tenant_id %q is not a GUID", t.TenantID)
	}
	if t.Domain == "" {
		t.Domain = "contoso.test"
	}
	if t.TokenLifetime != 0 && time.Duration(t.TokenLifetime) <= 5*time.Minute {
		return errors.New("fakeentra: token_lifetime must be over 5m: MSAL rejects tokens that expire within 5 minutes")
	}
	seen := map[string]bool{}
	for _, a := range t.Apps {
		if a.Name == "" {
			return errors.New("fakeentra: every app needs a name")
		}
		if a.ClientID == "" {
			a.ClientID = newGUID()
		}
		if a.ObjectID == "" {
			a.ObjectID = newGUID()
		}
		if seen[a.ClientID] || seen[a.Name] {
			return fmt.Errorf("fakeentra: app %q: duplicate name or client_id", a.Name)
		}
		seen[a.ClientID], seen[a.Name] = true, true
		switch a.AccessTokenVersion {
		case 0:
			a.AccessTokenVersion = 1 // null in the manifest
		case 1, 2:
		default:
			return fmt.Errorf("fakeentra: app %q: access_token_version must be 1 or 2", a.Name)
		}
		for _, c := range a.Certificates {
			data := []byte(c.PEM)
			if c.File != "" {
				var err error
				if data, err = os.ReadFile(c.File); err != nil {
					return fmt.Errorf("fakeentra: app %q: %w", a.Name, err)
				}
			}
			certs, err := pki.ParseCertsPEM(data)
			if err != nil {
				return fmt.Errorf("fakeentra: app %q: %w", a.Name, err)
			}
			a.certs = append(a.certs, certs[0])
		}
		if err := a.RedirectURIs.check(); err != nil {
			return fmt.Errorf("fakeentra: app %q: %w", a.Name, err)
		}
		if a.GenerateCertificate {
			if dir == "" {
				return fmt.Errorf("fakeentra: app %q: generate_certificate needs a directory to write to", a.Name)
			}
			if err := a.generateCertificate(dir, now); err != nil {
				return err
			}
		}
	}
	for _, u := range t.Users {
		if u.Username == "" {
			return errors.New("fakeentra: every user needs a username")
		}
		if u.ObjectID == "" {
			u.ObjectID = newGUID()
		}
		if u.DisplayName == "" {
			u.DisplayName = strings.SplitN(u.Username, "@", 2)[0]
		}
		for _, r := range append(append([]string{}, u.NoConsent...), u.MFARequired...) {
			if t.resource(r) == nil {
				return fmt.Errorf("fakeentra: user %q names unknown resource %q", u.Username, r)
			}
		}
	}
	for _, a := range t.Apps {
		for _, p := range a.Permissions {
			if t.resource(p.Resource) == nil {
				return fmt.Errorf("fakeentra: app %q has a permission on unknown resource %q", a.Name, p.Resource)
			}
		}
	}
	if err := t.prepareManagedIdentities(); err != nil {
		return err
	}
	for _, name := range t.ClusterIssuers {
		if !validIssuerName(name) {
			return fmt.Errorf("fakeentra: cluster issuer %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	for _, a := range t.Apps {
		if err := t.prepareFederated(a); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) generateCertificate(dir string, now time.Time) error {
	cert, key, err := pki.SelfSigned(a.Name, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		return err
	}
	return a.addGenerated(dir, cert, key)
}

func (a *App) addGenerated(dir string, cert *x509.Certificate, key *rsa.PrivateKey) error {
	var err error
	if a.certFile, err = pki.WriteFile(dir, a.Name+".crt.pem", pki.CertPEM(cert), 0o644); err != nil {
		return err
	}
	if a.keyFile, err = pki.WriteFile(dir, a.Name+".key.pem", pki.KeyPEM(key), 0o600); err != nil {
		return err
	}
	a.certs = append(a.certs, cert)
	return nil
}

// CertificateFile and KeyFile are the PEM files written for an app with
// GenerateCertificate, or "".
func (a *App) CertificateFile() string { return a.certFile }

// KeyFile: see CertificateFile.
func (a *App) KeyFile() string { return a.keyFile }

// App finds an app by name or client ID.
func (t *Tenant) App(nameOrID string) *App {
	for _, a := range t.Apps {
		if a.Name == nameOrID || strings.EqualFold(a.ClientID, nameOrID) {
			return a
		}
	}
	return nil
}

// User finds a user by username (case-insensitive) or object ID.
func (t *Tenant) User(nameOrID string) *User {
	for _, u := range t.Users {
		if strings.EqualFold(u.Username, nameOrID) || strings.EqualFold(u.ObjectID, nameOrID) {
			return u
		}
	}
	return nil
}

// resource finds an app by name, client ID or identifier URI. Identifier URIs
// match without regard to case or a trailing slash, as Entra matches them.
func (t *Tenant) resource(id string) *App {
	if a := t.App(id); a != nil {
		return a
	}
	norm := strings.TrimSuffix(strings.ToLower(id), "/")
	for _, a := range t.Apps {
		for _, u := range a.IdentifierURIs {
			if strings.TrimSuffix(strings.ToLower(u), "/") == norm {
				return a
			}
		}
	}
	return nil
}

// refersTo reports whether ref names app a by name, client ID or identifier URI.
func (t *Tenant) refersTo(ref string, a *App) bool { return t.resource(ref) == a }

func (u *User) noConsentFor(t *Tenant, a *App) bool {
	for _, r := range u.NoConsent {
		if t.refersTo(r, a) {
			return true
		}
	}
	return false
}

// rolesFor are the user's roles on resource a that a exposes.
func (u *User) rolesFor(t *Tenant, a *App) []string {
	var roles []string
	for _, ra := range u.AppRoles {
		if !t.refersTo(ra.Resource, a) {
			continue
		}
		for _, r := range ra.Roles {
			if containsFold(a.AppRoles, r) {
				roles = append(roles, r)
			}
		}
	}
	return roles
}

func (u *User) mfaRequiredFor(t *Tenant, a *App) bool {
	for _, r := range u.MFARequired {
		if t.refersTo(r, a) {
			return true
		}
	}
	return false
}

// permission returns the client's permission entry on resource a, or nil.
func (t *Tenant) permission(client, a *App) *Permission {
	for i, p := range client.Permissions {
		if t.refersTo(p.Resource, a) {
			return &client.Permissions[i]
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
