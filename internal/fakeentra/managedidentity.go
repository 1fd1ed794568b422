package fakeentra

// The managed identity endpoint: what App Service gives an app in
// IDENTITY_ENDPOINT and IDENTITY_HEADER, played on loopback, handing out
// tokens of the tenants' managed identities. MSAL's managed identity
// client (apps/managedidentity) uses it as its "AppService" source.

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// miAPIVersion is the App Service identity endpoint's API version, the
	// one MSAL sends.
	miAPIVersion = "2019-08-01"
	// miLifetime is a managed identity token's lifetime: about a day in Entra.
	miLifetime = 24 * time.Hour
)

// miEndpoint is the running managed identity endpoint.
type miEndpoint struct {
	srv    *http.Server
	url    string
	secret string
}

// checkSystemAssigned refuses more than one system-assigned identity
// across the served tenants: the endpoint plays one host.
func checkSystemAssigned(tenants []*Tenant) error {
	n := 0
	for _, t := range tenants {
		for _, m := range t.ManagedIdentities {
			if m.SystemAssigned {
				n++
			}
		}
	}
	if n > 1 {
		return errors.New("fakeentra: more than one system-assigned managed identity across the tenants: the identity endpoint plays one host")
	}
	return nil
}

func (s *Server) startManagedIdentityEndpoint() (*miEndpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeentra: managed identity endpoint: listen: %w", err)
	}
	e := &miEndpoint{
		url:    "http://" + ln.Addr().String() + "/msi/token",
		secret: hex.EncodeToString(randomBytes(16)),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/msi/token", s.handleManagedIdentity(e.secret))
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

// ManagedIdentityEndpoint is what App Service puts in IDENTITY_ENDPOINT
// and IDENTITY_HEADER: the endpoint's URL (plain HTTP on 127.0.0.1, as App
// Service's) and the secret every request must send in X-IDENTITY-HEADER.
// Set both variables and MSAL's managedidentity client uses it.
func (s *Server) ManagedIdentityEndpoint() (url, secret string) { return s.mi.url, s.mi.secret }

// miError is the endpoint's error body.
func miError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]any{
		"statusCode":    status,
		"message":       fmt.Sprintf(format, args...),
		"correlationId": newGUID(),
	})
}

// handleManagedIdentity answers GET ?api-version=2019-08-01&resource=R
// [&client_id=|&object_id=|&principal_id=|&mi_res_id=] with
// X-IDENTITY-HEADER: a token of the identity for R, shaped as App Service
// returns it (access_token, expires_on in epoch seconds as a string,
// resource, token_type, client_id).
func (s *Server) handleManagedIdentity(secret string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			miError(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
			return
		}
		hdr, sent := r.Header["X-Identity-Header"]
		switch {
		case !sent || len(hdr) != 1 || hdr[0] == "":
			miError(w, http.StatusBadRequest, "The X-IDENTITY-HEADER header is missing.")
			return
		case subtle.ConstantTimeCompare([]byte(hdr[0]), []byte(secret)) != 1:
			miError(w, http.StatusUnauthorized, "The X-IDENTITY-HEADER header is not the endpoint's secret.")
			return
		}
		q := r.URL.Query()
		if v := q.Get("api-version"); v != miAPIVersion {
			miError(w, http.StatusBadRequest, "api-version '%s' is not supported: use %s.", v, miAPIVersion)
			return
		}
		resource := q.Get("resource")
		if resource == "" {
			miError(w, http.StatusBadRequest, "The request must name a resource.")
			return
		}
		t, mi := s.selectManagedIdentity(q.Get("client_id"), q.Get("object_id")+q.Get("principal_id"), q.Get("mi_res_id"))
		if mi == nil {
			miError(w, http.StatusBadRequest, "Unable to load the proper Managed Identity.")
			return
		}
		now := s.now()
		tok, aerr := s.mintManagedIdentityToken(t, mi, resource, now)
		if aerr != nil {
			miError(w, aerr.Status, "%s", aerr.String())
			return
		}
		s.log.Info("managed identity token issued", "tenant", t.TenantID, "client_id", mi.ClientID, "resource", resource)
		writeJSON(w, http.StatusOK, map[string]string{
			"access_token": tok,
			"expires_on":   strconv.FormatInt(now.Add(miLifetime).Unix(), 10),
			"resource":     resource,
			"token_type":   "Bearer",
			"client_id":    mi.ClientID,
		})
	}
}

// selectManagedIdentity finds the identity a request names (by client ID,
// object ID or resource ID), or the system-assigned one when it names none.
func (s *Server) selectManagedIdentity(clientID, objectID, resourceID string) (*Tenant, *ManagedIdentity) {
	named := clientID != "" || objectID != "" || resourceID != ""
	for _, t := range s.tenants {
		for _, m := range t.ManagedIdentities {
			switch {
			case clientID != "" && strings.EqualFold(m.ClientID, clientID),
				objectID != "" && strings.EqualFold(m.ObjectID, objectID),
				resourceID != "" && strings.EqualFold(m.resourceID(t), resourceID),
				!named && m.SystemAssigned:
				return t, m
			}
		}
	}
	return nil, nil
}

// resourceID is the identity's Azure resource ID (made up, stable).
func (m *ManagedIdentity) resourceID(t *Tenant) string {
	return "/subscriptions/" + t.TenantID + "/resourcegroups/fakeentra/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + m.Name
}

// mintManagedIdentityToken issues the identity's app-only token for
// resource: for api://AzureADTokenExchange the v2 token that serves as a
// federated credential (iss the tenant's v2 issuer, sub = oid = the
// identity's object ID, aud the resource), else a token for one of the
// tenant's apps, shaped as the client-credentials grant shapes it.
func (s *Server) mintManagedIdentityToken(t *Tenant, mi *ManagedIdentity, resource string, now time.Time) (string, *aadError) {
	resource = strings.TrimSuffix(resource, "/.default")
	client := &App{Name: mi.Name, ClientID: mi.ClientID, ObjectID: mi.ObjectID}
	if strings.EqualFold(resource, TokenExchangeAudience) {
		c := map[string]any{
			"aud": TokenExchangeAudience, "iss": s.IssuerV2(t.TenantID),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(miLifetime).Unix(),
			"tid": t.TenantID, "oid": mi.ObjectID, "sub": mi.ObjectID,
			"azp": mi.ClientID, "azpacr": "2", "idtyp": "app", "ver": "2.0",
			"aio":       b64.EncodeToString(randomBytes(24)),
			"uti":       b64.EncodeToString(randomBytes(16)),
			"rh":        "0.AAAA" + b64.EncodeToString(randomBytes(12)) + ".",
			"xms_mirid": mi.resourceID(t),
		}
		tok, err := s.sign(c, nil)
		if err != nil {
			return "", errServer()
		}
		return tok, nil
	}
	app := t.resource(resource)
	if app == nil {
		return "", errUnknownResource(resource, t.TenantID)
	}
	g := grant{tenant: t, client: client, method: authCertificate,
		sr: &scopeRequest{resource: app, resourceID: resource, isDefault: true}}
	tok, err := s.mintAccess(g, now, miLifetime)
	if err != nil {
		return "", errServer()
	}
	return tok, nil
}
