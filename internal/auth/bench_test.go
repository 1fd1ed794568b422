package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkValidateUncached is the cost of a token not seen before (the
// verified-token cache off): the form check, jwx's verification and the
// claims. Compare runs of one invocation; the machine is shared.
func BenchmarkValidateUncached(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	v := newTestValidator(b, now, nil)
	tok := sign(b, sharedKeys(b)[0], userClaims(now), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
