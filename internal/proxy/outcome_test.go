package proxy

import (
	"context"
	"net/http"
	"testing"
)

func TestOutcomeOfASuccess(t *testing.T) {
	up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // the gateway owns CORS
		w.Header().Set("Access-Control-Expose-Headers", "X-Secret-Header")
		w.Header().Set("X-Kept", "1")
		w.WriteHeader(http.StatusTeapot)
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{})
	resp, _ := g.get(t, "/orders/1")
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d, want the upstream's 418", resp.StatusCode)
	}
	for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("upstream %s = %q reached the client", name, v)
		}
	}
	if resp.Header.Get("X-Kept") != "1" {
		t.Error("an ordinary upstream header was dropped")
	}
	o := g.outcome(t)
	if o.UpstreamStatus != http.StatusTeapot || o.Err != "" || o.UpstreamDuration <= 0 {
		t.Errorf("outcome = %+v, want 418, no error and a duration", o)
	}
}

func TestContextValues(t *testing.T) {
	ctx := context.Background()
	if upstreamTokenFrom(ctx) != "" || secretFrom(ctx) != "" || outcomeFrom(ctx) != nil {
		t.Error("an empty context carries values")
	}
	ctx = WithUpstreamToken(WithSecret(ctx, "s"), "t")
	ctx, o := WithOutcome(ctx)
	if upstreamTokenFrom(ctx) != "t" || secretFrom(ctx) != "s" || outcomeFrom(ctx) != o {
		t.Error("values lost")
	}
	if got := redacted("s").String(); got != "REDACTED" {
		t.Errorf("a token prints as %q", got)
	}
}
