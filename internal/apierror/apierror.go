// Package apierror writes the gateway's JSON error bodies. Every error the
// gateway answers itself has the same shape, so frontends can handle them
// in one place:
//
//	{"error":"invalid_token","error_description":"the token has expired","request_id":"…"}
//
// Descriptions are written for the caller and never carry a token, a secret
// or internal detail; the detail goes to the operator's log.
package apierror

import (
	"encoding/json"
	"net/http"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// Body is the JSON error body.
type Body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
	// Claims is the claims challenge JSON, for insufficient_claims answers.
	Claims string `json:"claims,omitempty"`
}

// Write answers status with a JSON error body.
func Write(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	WriteBody(w, r, status, Body{Error: code, Description: description})
}

// WriteBody answers status with b, filling in the request ID.
func WriteBody(w http.ResponseWriter, r *http.Request, status int, b Body) {
	if b.RequestID == "" {
		b.RequestID = reqid.FromContext(r.Context())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(b)
}
