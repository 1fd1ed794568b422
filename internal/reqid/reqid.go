// Package reqid gives every request an ID: the client's X-Request-Id when it
// is sane, otherwise a new random one. The ID is echoed in the response and
// logged, so a frontend developer can quote it to an operator.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header is the request and response header carrying the ID.
const Header = "X-Request-Id"

type ctxKey struct{}

// FromContext returns the request's ID, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Prepare accepts a client's X-Request-Id of up to 128 visible ASCII
// characters (so it cannot inject into logs or headers) or makes one, sets it
// on the request (so the upstream sees it) and on the response, and returns
// it for the caller to put in the context with NewContext, together with its
// own values: the request is copied once rather than once per middleware.
func Prepare(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get(Header)
	if !valid(id) {
		id = New()
	}
	// Set, not only when replaced: a second X-Request-Id header the client
	// sent must not reach the upstream unchecked. One slice for both maps
	// (Header is canonical): neither is appended to in place (an append to
	// a full slice copies it).
	v := []string{id}
	r.Header[Header] = v
	w.Header()[Header] = v[:1:1]
	return id
}

// New returns a random 128-bit ID in hex.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func valid(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
