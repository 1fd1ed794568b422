package fakeentra

import (
	"encoding/json"
	"net/http"
	"strings"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfig(2))
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.handleOpenIDConfig(1))
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleKeys(2))
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.handleKeys(1))
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken(2))
	mux.HandleFunc("POST /{tenant}/oauth2/token", s.handleToken(1))
	mux.HandleFunc("OPTIONS /{tenant}/oauth2/v2.0/token", s.handleTokenPreflight)
	mux.HandleFunc("OPTIONS /{tenant}/oauth2/token", s.handleTokenPreflight)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.handleAuthorize(2))
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", s.handleAuthorize(2))
	mux.HandleFunc("GET /{tenant}/oauth2/authorize", s.handleAuthorize(1))
	mux.HandleFunc("POST /{tenant}/oauth2/authorize", s.handleAuthorize(1))
	mux.HandleFunc("POST /{tenant}/login", s.handleSignInStep)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/logout", s.handleLogout)
	mux.HandleFunc("GET /{tenant}/oauth2/logout", s.handleLogout)
	mux.HandleFunc("GET /{tenant}/discovery/instance", s.handleInstanceDiscovery)
	mux.HandleFunc("GET /common/UserRealm/{user}", s.handleUserRealm)
	mux.HandleFunc("GET /common/userrealm/{user}", s.handleUserRealm)
	s.controlRoutes(mux)
	s.startClusterIssuers(mux)
	return mux
}

// discoveryTenant resolves the {tenant} path segment for discovery endpoints:
// a served tenant, or common/organizations (templated issuer, shared keys).
func (s *Server) discoveryTenant(w http.ResponseWriter, r *http.Request) (id string, ok bool) {
	ref := r.PathValue("tenant")
	switch strings.ToLower(ref) {
	case "common", "organizations":
		return "{tenantid}", true
	}
	t := s.tenantByRef(ref)
	if t == nil {
		s.writeError(w, r, newErr(http.StatusBadRequest, "invalid_tenant", 90002,
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", ref))
		return "", false
	}
	return t.TenantID, true
}

func (s *Server) handleOpenIDConfig(ver int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, "discovery") {
			return
		}
		allowAnyOrigin(w)
		tid, ok := s.discoveryTenant(w, r)
		if !ok {
			return
		}
		// For common and organizations only the issuer is a template; the
		// endpoints keep the alias, as in Entra's documents.
		base := s.baseURL + "/" + tid
		if tid == "{tenantid}" {
			base = s.baseURL + "/" + strings.ToLower(r.PathValue("tenant"))
		}
		doc := map[string]any{
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"request_uri_parameter_supported":       false,
			"tenant_region_scope":                   "WW",
			"cloud_instance_name":                   "microsoftonline.com",
			"cloud_graph_host_name":                 "graph.windows.net",
			"msgraph_host":                          "graph.microsoft.com",
		}
		if tid == "{tenantid}" {
			doc["tenant_region_scope"] = nil // no tenant, no region (Entra's common and organizations documents)
		}
		if ver == 2 {
			doc["issuer"] = s.IssuerV2(tid)
			doc["authorization_endpoint"] = base + "/oauth2/v2.0/authorize"
			doc["token_endpoint"] = base + "/oauth2/v2.0/token"
			doc["jwks_uri"] = base + "/discovery/v2.0/keys"
			doc["end_session_endpoint"] = base + "/oauth2/v2.0/logout"
			doc["device_authorization_endpoint"] = base + "/oauth2/v2.0/devicecode"
		} else {
			doc["issuer"] = s.IssuerV1(tid)
			doc["authorization_endpoint"] = base + "/oauth2/authorize"
			doc["token_endpoint"] = base + "/oauth2/token"
			doc["jwks_uri"] = base + "/discovery/keys"
			doc["end_session_endpoint"] = base + "/oauth2/logout"
		}
		writeJSON(w, http.StatusOK, doc)
	}
}

func (s *Server) handleKeys(ver int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, "keys") {
			return
		}
		allowAnyOrigin(w)
		tid, ok := s.discoveryTenant(w, r)
		if !ok {
			return
		}
		issuer := ""
		if ver == 2 {
			// Entra's v2 keys carry the issuer they sign for.
			issuer = s.baseURL + "/" + tid + "/v2.0"
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": s.keys.jwks(issuer)})
	}
}

// handleInstanceDiscovery answers MSAL's instance discovery the way Entra
// does for its own hosts: this host is its own, only alias.
func (s *Server) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	host := strings.TrimPrefix(s.baseURL, "https://")
	authz := r.URL.Query().Get("authorization_endpoint")
	tenant := s.TenantID()
	if authz != "" {
		// https://host/<tenant>/oauth2/v2.0/authorize
		parts := strings.Split(strings.TrimPrefix(authz, "https://"), "/")
		if len(parts) > 1 && parts[1] != "" {
			tenant = parts[1]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.baseURL + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host, "preferred_cache": host, "aliases": []string{host},
		}},
	})
}

// handleUserRealm answers MSAL's user-realm discovery for the password grant:
// every served domain is managed (no federation).
func (s *Server) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	domain := user
	if i := strings.LastIndex(user, "@"); i >= 0 {
		domain = user[i+1:]
	}
	if s.tenantByRef(domain) == nil {
		writeJSON(w, http.StatusOK, map[string]any{
			"ver": "1.0", "account_type": "Unknown", "domain_name": domain,
			"cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline",
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ver": "1.0", "account_type": "Managed", "domain_name": domain,
		"cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline",
	})
}

// allowAnyOrigin lets browsers read a public document (discovery, keys),
// as Entra does: MSAL.js fetches them from the page.
func allowAnyOrigin(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
