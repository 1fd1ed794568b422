package fakeentra

// Federated identity credentials: apps that accept, as their client
// assertion, a token of another issuer (a Kubernetes cluster's service
// accounts, a managed identity), and the cluster issuers the local tenant
// plays, with their discovery documents, keys and tokens.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// TokenExchangeAudience is the default audience of federated identity
	// credentials, and the resource a managed identity asks for to get a
	// token usable as one.
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// LocalClusterIssuer is the name of the cluster issuer every server plays.
	LocalClusterIssuer = "local"
	// maxFederatedCredentials is Entra's limit per app.
	maxFederatedCredentials = 20
)

// Record.Credential values: how the client proved itself.
const (
	CredentialNone        = "none"
	CredentialSecret      = "secret"
	CredentialCertificate = "certificate"
	CredentialFederated   = "federated"
)

// validIssuerName reports whether name can be a cluster issuer's path
// segment: letters, digits, '-', '_' and '.', but not "." or "..".
func validIssuerName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// prepareManagedIdentities fills the identities' IDs and checks them.
func (t *Tenant) prepareManagedIdentities() error {
	seen := map[string]bool{}
	system := 0
	for _, m := range t.ManagedIdentities {
		if m.Name == "" {
			return fmt.Errorf("fakeentra: every managed identity needs a name")
		}
		if m.ClientID == "" {
			m.ClientID = newGUID()
		}
		if m.ObjectID == "" {
			m.ObjectID = newGUID()
		}
		if !isGUID(m.ClientID) || !isGUID(m.ObjectID) {
			return fmt.Errorf("fakeentra: managed identity %q: client_id and object_id must be GUIDs", m.Name)
		}
		for _, k := range []string{"name:" + m.Name, "id:" + strings.ToLower(m.ClientID), "id:" + strings.ToLower(m.ObjectID)} {
			if seen[k] {
				return fmt.Errorf("fakeentra: managed identity %q: duplicate name, client_id or object_id", m.Name)
			}
			seen[k] = true
		}
		if t.App(m.ClientID) != nil || t.App(m.Name) != nil {
			return fmt.Errorf("fakeentra: managed identity %q: an app has its name or client_id", m.Name)
		}
		if m.SystemAssigned {
			system++
		}
	}
	if system > 1 {
		return fmt.Errorf("fakeentra: %d system-assigned managed identities: a host has at most one", system)
	}
	return nil
}

// ManagedIdentity finds a managed identity by name, client ID or object ID.
func (t *Tenant) ManagedIdentity(ref string) *ManagedIdentity {
	for _, m := range t.ManagedIdentities {
		if m.Name == ref || strings.EqualFold(m.ClientID, ref) || strings.EqualFold(m.ObjectID, ref) {
			return m
		}
	}
	return nil
}

// prepareFederated checks an app's federated credentials as Microsoft
// Graph does (a name unique in the app, an issuer, a subject, exactly one
// audience, at most 20 credentials) and fills the defaults.
func (t *Tenant) prepareFederated(a *App) error {
	if len(a.FederatedCredentials) > maxFederatedCredentials {
		return fmt.Errorf("fakeentra: app %q has %d federated credentials: Entra allows %d", a.Name, len(a.FederatedCredentials), maxFederatedCredentials)
	}
	names := map[string]bool{}
	for i := range a.FederatedCredentials {
		f := &a.FederatedCredentials[i]
		where := fmt.Sprintf("fakeentra: app %q: federated credential %q", a.Name, f.Name)
		if f.Name == "" {
			return fmt.Errorf("fakeentra: app %q: every federated credential needs a name", a.Name)
		}
		if names[strings.ToLower(f.Name)] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		names[strings.ToLower(f.Name)] = true
		sources := 0
		for _, v := range []string{f.Issuer, f.ClusterIssuer, f.ManagedIdentity} {
			if v != "" {
				sources++
			}
		}
		if sources != 1 {
			return fmt.Errorf("%s: give exactly one of issuer, cluster_issuer and managed_identity", where)
		}
		switch {
		case f.ManagedIdentity != "":
			m := t.ManagedIdentity(f.ManagedIdentity)
			if m == nil {
				return fmt.Errorf("%s: no managed identity %q in the tenant", where, f.ManagedIdentity)
			}
			if f.Subject != "" && f.Subject != m.ObjectID {
				return fmt.Errorf("%s: subject %q is not the object ID of managed identity %q", where, f.Subject, m.Name)
			}
			f.Subject = m.ObjectID
		case f.ClusterIssuer != "":
			if f.ClusterIssuer != LocalClusterIssuer && !slices.Contains(t.ClusterIssuers, f.ClusterIssuer) {
				return fmt.Errorf("%s: cluster issuer %q is neither %q nor among the tenant's cluster_issuers", where, f.ClusterIssuer, LocalClusterIssuer)
			}
		}
		if f.Subject == "" {
			return fmt.Errorf("%s: needs a subject", where)
		}
		switch len(f.Audiences) {
		case 0:
			f.Audiences = []string{TokenExchangeAudience}
		case 1:
		default:
			return fmt.Errorf("%s: audiences holds one value in Entra, not %d", where, len(f.Audiences))
		}
		f.issuer = f.Issuer
	}
	return nil
}

// resolveFederated fills the issuers that depend on the server's address:
// those of credentials naming a cluster issuer or a managed identity.
func (s *Server) resolveFederated() {
	for _, t := range s.tenants {
		for _, a := range t.Apps {
			for i := range a.FederatedCredentials {
				f := &a.FederatedCredentials[i]
				switch {
				case f.ClusterIssuer != "":
					f.issuer = s.ClusterIssuerURL(f.ClusterIssuer)
				case f.ManagedIdentity != "":
					f.issuer = s.IssuerV2(t.TenantID)
				}
			}
		}
	}
}

// IssuerURL is the credential's issuer: Issuer, or the URL of the cluster
// issuer or tenant it names once the server has started.
func (f FederatedCredential) IssuerURL() string {
	if f.issuer != "" {
		return f.issuer
	}
	return f.Issuer
}

// clusterIssuer is a Kubernetes service-account token issuer the local
// tenant plays (an AKS cluster's OIDC issuer). Its key is made at first use.
type clusterIssuer struct {
	name string
	url  string // with a trailing slash, as AKS issuers have one

	once sync.Once
	key  *rsa.PrivateKey
	kid  string
	err  error
}

func (c *clusterIssuer) signer() (*rsa.PrivateKey, string, error) {
	c.once.Do(func() {
		c.key, c.err = rsa.GenerateKey(rand.Reader, 2048)
		if c.err == nil {
			c.kid = keyIDOf(&c.key.PublicKey)
		}
	})
	return c.key, c.kid, c.err
}

// keyIDOf is the kid Kubernetes gives a service-account signing key:
// base64url of the SHA-256 of its PKIX DER.
func keyIDOf(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return b64.EncodeToString(h[:])
}

// startClusterIssuers makes the cluster issuers of every tenant (and
// "local") and routes their discovery document and keys.
func (s *Server) startClusterIssuers(mux *http.ServeMux) {
	s.clusters = map[string]*clusterIssuer{}
	names := []string{LocalClusterIssuer}
	for _, t := range s.tenants {
		names = append(names, t.ClusterIssuers...)
	}
	for _, name := range names {
		if s.clusters[name] != nil {
			continue // two tenants may trust one cluster
		}
		c := &clusterIssuer{name: name, url: s.baseURL + "/_cluster/" + name + "/"}
		s.clusters[name] = c
		// Concrete paths: a {name} wildcard would overlap the tenants' routes.
		mux.HandleFunc("GET /_cluster/"+name+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{
				"issuer":                                c.url,
				"jwks_uri":                              c.url + "openid/v1/jwks",
				"response_types_supported":              []string{"id_token"},
				"subject_types_supported":               []string{"public"},
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
		})
		mux.HandleFunc("GET /_cluster/"+name+"/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
			key, kid, err := c.signer()
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "no signing key"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
				"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
				"n": b64.EncodeToString(key.N.Bytes()),
				"e": b64.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
			}}})
		})
	}
}

// ClusterIssuerURL is the issuer URL of the named cluster issuer ("" or
// "local" for the one every server plays), https://host:port/_cluster/<name>/
// (with the trailing slash AKS issuers have), or "" when the server plays
// no such issuer. Its discovery document is at
// <url>.well-known/openid-configuration, its keys at <url>openid/v1/jwks.
func (s *Server) ClusterIssuerURL(name string) string {
	if name == "" {
		name = LocalClusterIssuer
	}
	if c := s.clusters[name]; c != nil {
		return c.url
	}
	return ""
}

// ServiceAccountTokenOptions shape a token from ServiceAccountToken. The
// zero value makes the token a pod gets for Entra workload identity.
type ServiceAccountTokenOptions struct {
	// Audiences are the token's aud; default [api://AzureADTokenExchange].
	Audiences []string
	// Lifetime runs from IssuedAt to exp; default 1 hour.
	Lifetime time.Duration
	// IssuedAt is the token's iat and nbf; zero is now. Earlier than
	// Lifetime ago makes an expired token; later than now, one not yet valid.
	IssuedAt time.Time
	// Issuer overrides the iss claim (the issuer's key still signs).
	Issuer string
	// Subject overrides the sub claim.
	Subject string
	// SigningKey signs with another key than the issuer's, one its key
	// set does not hold; the kid is then that key's own, unless KeyID is set.
	SigningKey *rsa.PrivateKey
	// KeyID overrides the kid header.
	KeyID string
}

// ServiceAccountToken mints a projected service-account token of the named
// cluster issuer ("" for "local") for namespace/name, as the kubelet
// writes it for a pod: RS256 with the issuer's kid, iss, sub
// system:serviceaccount:<namespace>:<name>, aud (an array), iat, nbf, exp,
// jti and the kubernetes.io claim.
func (s *Server) ServiceAccountToken(issuer, namespace, name string, opt ServiceAccountTokenOptions) (string, error) {
	if issuer == "" {
		issuer = LocalClusterIssuer
	}
	c := s.clusters[issuer]
	if c == nil {
		return "", fmt.Errorf("fakeentra: no cluster issuer %q", issuer)
	}
	if namespace == "" || name == "" {
		return "", fmt.Errorf("fakeentra: a service account needs a namespace and a name")
	}
	key, kid, err := c.signer()
	if err != nil {
		return "", fmt.Errorf("fakeentra: cluster issuer %q: %w", issuer, err)
	}
	if opt.SigningKey != nil {
		key, kid = opt.SigningKey, keyIDOf(&opt.SigningKey.PublicKey)
	}
	if opt.KeyID != "" {
		kid = opt.KeyID
	}
	aud := opt.Audiences
	if len(aud) == 0 {
		aud = []string{TokenExchangeAudience}
	}
	lifetime := opt.Lifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	iat := opt.IssuedAt
	if iat.IsZero() {
		iat = s.now()
	}
	iss, sub := c.url, "system:serviceaccount:"+namespace+":"+name
	if opt.Issuer != "" {
		iss = opt.Issuer
	}
	if opt.Subject != "" {
		sub = opt.Subject
	}
	claims := map[string]any{
		"iss": iss, "sub": sub, "aud": aud,
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(lifetime).Unix(),
		"jti": newGUID(),
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]string{"name": name, "uid": newGUID()},
		},
	}
	return signRS256(key, map[string]any{"kid": kid}, claims)
}

// isFederated reports whether a client assertion is a federated one: its
// issuer is not the client. An assertion whose iss is another GUID is a
// certificate assertion naming the wrong client (700021); a federated
// credential's issuer is a URL.
func isFederated(p *jwtParts, app *App) bool {
	iss := p.claimString("iss")
	return iss != "" && !strings.EqualFold(iss, app.ClientID) && !isGUID(iss)
}

// verifyFederatedAssertion checks a federated client assertion as Entra
// does: the app has federated credentials (70021), one of them names its
// issuer (700211);
// a key of that issuer signed it (7000272, or 700027 for a signature that
// does not verify); it is in date (700024); a credential of that issuer
// names its subject, exactly (700213, or 7002138 when only the case
// differs); and that credential names its audience (700212).
func (s *Server) verifyFederatedAssertion(app *App, p *jwtParts) *aadError {
	iss := p.claimString("iss")
	if len(app.FederatedCredentials) == 0 {
		return errFederatedNoRecord(iss, p.claimString("sub"), strings.Join(p.claimStrings("aud"), ", "))
	}
	var fics []FederatedCredential
	for _, f := range app.FederatedCredentials {
		if f.IssuerURL() == iss {
			fics = append(fics, f)
		}
	}
	// An issuer the tenant cannot fetch keys from has no usable record either.
	pub, known := s.federatedKey(iss, p)
	if len(fics) == 0 || !known {
		return errFederatedIssuer(iss)
	}
	kid := p.headerString("kid")
	if kid == "" {
		kid = p.headerString("x5t")
	}
	if pub == nil {
		return errFederatedKeyNotFound(kid, iss)
	}
	if p.headerString("alg") != "RS256" || p.verify(pub) != nil {
		return errFederatedBadSignature(kid, iss)
	}
	now := s.now()
	exp, hasExp := p.claimTime("exp")
	nbf, hasNbf := p.claimTime("nbf")
	if !hasExp || now.After(time.Unix(exp, 0).Add(clockSkew)) || (hasNbf && now.Add(clockSkew).Before(time.Unix(nbf, 0))) {
		entraTime := func(v int64, ok bool) string {
			if !ok {
				return "(absent)"
			}
			return time.Unix(v, 0).UTC().Format(entraTimeFormat)
		}
		return errFederatedTime(now.UTC().Format(entraTimeFormat), entraTime(nbf, hasNbf), entraTime(exp, hasExp))
	}
	if t := s.tenantOfIssuer(iss); t != nil {
		// A token the tenant issued is a federated credential only as a
		// managed identity's app-only token: never a user's access token.
		// (idtyp is an optional claim: a user's token is told by its scp,
		// and by its pairwise sub, which an app-only token's oid equals.)
		if p.claimString("scp") != "" || p.claimString("sub") != p.claimString("oid") || p.claimString("oid") == "" {
			return errFederatedNotAppOnly()
		}
		if t.managedIdentityByObjectID(p.claimString("oid")) == nil {
			return errFederatedAADIssued()
		}
	}
	sub := p.claimString("sub")
	var bySubject []FederatedCredential
	folded := false
	for _, f := range fics {
		switch {
		case f.Subject == sub:
			bySubject = append(bySubject, f)
		case strings.EqualFold(f.Subject, sub):
			folded = true
		}
	}
	if len(bySubject) == 0 {
		if folded {
			return errFederatedSubjectCase(sub)
		}
		return errFederatedSubject(sub)
	}
	aud := p.claimStrings("aud")
	for _, f := range bySubject {
		for _, a := range aud {
			if slices.Contains(f.Audiences, a) {
				return nil
			}
		}
	}
	return errFederatedAudience(strings.Join(aud, ", "))
}

// entraTimeFormat is how Entra writes times in error descriptions.
const entraTimeFormat = "2006-01-02T15:04:05.0000000Z"

// federatedKey finds the key that signed a federated assertion: known
// reports whether the tenant can read iss's keys at all (a cluster issuer
// it plays, or a served tenant, whose tokens managed identities present);
// pub is nil when none of them has the assertion's kid.
func (s *Server) federatedKey(iss string, p *jwtParts) (pub *rsa.PublicKey, known bool) {
	for _, c := range s.clusters {
		if c.url != iss {
			continue
		}
		key, kid, err := c.signer()
		if err != nil || p.headerString("kid") != kid {
			return nil, true
		}
		return &key.PublicKey, true
	}
	if s.tenantOfIssuer(iss) != nil {
		if k := s.keys.lookup(p.headerString("kid"), p.headerString("x5t")); k != nil {
			return &k.key.PublicKey, true
		}
		return nil, true
	}
	return nil, false
}

// managedIdentityByObjectID is the tenant's managed identity whose object
// (principal) ID is oid, or nil.
func (t *Tenant) managedIdentityByObjectID(oid string) *ManagedIdentity {
	for _, m := range t.ManagedIdentities {
		if oid != "" && strings.EqualFold(m.ObjectID, oid) {
			return m
		}
	}
	return nil
}
