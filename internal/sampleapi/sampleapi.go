// Package sampleapi is the demo's downstream API: it answers every request
// with what it received, so a developer can see the token the gateway sent.
// It does not validate the token (that is the gateway's job in the demo);
// it only decodes it to show its claims.
package sampleapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Echo is the JSON the sample API answers.
type Echo struct {
	Path   string `json:"path"`
	Method string `json:"method"`
	Query  string `json:"query,omitempty"`
	// Claims are the claims of the bearer token received (not verified).
	Claims map[string]any `json:"claims,omitempty"`
	// TokenSHA256 is the hex SHA-256 of the bearer token received, so a test
	// can compare it with the caller's token without the API echoing it.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	// Headers are the names of the request headers received, sorted.
	Headers []string `json:"headers"`
	// Authorization tells whether an Authorization header came, and its
	// scheme: "none", the scheme ("Bearer"), or "malformed" when the header
	// has no "<scheme> <credentials>" shape (then it may be a bare token, so
	// it is not echoed).
	Authorization string `json:"authorization"`
}

// Handler returns the sample API.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := Echo{Path: r.URL.Path, Method: r.Method, Query: r.URL.RawQuery, Authorization: "none"}
		for name := range r.Header {
			e.Headers = append(e.Headers, name)
		}
		sort.Strings(e.Headers)
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, tok, ok := strings.Cut(auth, " ")
			switch {
			case !ok:
				e.Authorization = "malformed"
			case strings.EqualFold(scheme, "Bearer"):
				e.Authorization = scheme
				sum := sha256.Sum256([]byte(tok))
				e.TokenSHA256 = hex.EncodeToString(sum[:])
				e.Claims = decodeClaims(tok)
			default:
				e.Authorization = scheme
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
}

func decodeClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	if json.Unmarshal(data, &c) != nil {
		return nil
	}
	return c
}
