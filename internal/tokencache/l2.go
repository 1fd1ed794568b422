package tokencache

import (
	"context"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/lru"
)

// Key identifies a cached downstream token: the SHA-256 over the SHA-256 of
// the user's token, the sorted downstream scopes, the tenant and any claims.
// It reveals nothing of the token.
type Key = lru.Key

// Entry is a cached downstream token.
type Entry struct {
	AccessToken string
	// ExpiresOn is the downstream token's own expiry.
	ExpiresOn time.Time
}

// L2 is a second-level cache shared by the gateway's replicas (Redis).
// Implementations bound every call by their own timeout and must be safe
// for concurrent use. A miss is (Entry{}, false, nil); an error means the
// cache could not answer, and the caller carries on without it.
type L2 interface {
	Get(ctx context.Context, k Key) (Entry, bool, error)
	// Set stores e until ttl elapses.
	Set(ctx context.Context, k Key, e Entry, ttl time.Duration) error
}
