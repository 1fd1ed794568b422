package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestOutcomeOfASuccess(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*") // the gateway owns CORS
			w.Header().Set("Access-Control-Expose-Headers", "X-Secret-Header")
			w.Header().Set("X-Kept", "1")
			w.WriteHeader(http.StatusTeapot)
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
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
		if o.Status != http.StatusTeapot || o.Err != "" || o.Duration <= 0 {
			t.Errorf("outcome = %+v, want 418, no error and a duration", o)
		}
	})
}

func TestContextValues(t *testing.T) {
	ctx := context.Background()
	if f := FromContext(ctx); f.token() != "" || f.secretValue() != "" {
		t.Error("an empty context carries values")
	}
	f := &Forward{}
	f.SetSecret("the-users-secret-token")
	f.SetUpstreamToken("the-downstream-token")
	ctx = NewContext(ctx, f)
	if g := FromContext(ctx); g != f || g.token() != "the-downstream-token" || g.secretValue() != "the-users-secret-token" {
		t.Error("values lost")
	}
	if got := redacted("s").String(); got != "REDACTED" {
		t.Errorf("a token prints as %q", got)
	}
	// However a Forward is printed or logged, the tokens stay out.
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "forward", f, "value", *f)
	for _, s := range []string{fmt.Sprint(f), fmt.Sprintf("%+v", *f), fmt.Sprintf("%#v", f), fmt.Sprint(ctx), logs.String()} {
		if strings.Contains(s, "token") {
			t.Errorf("a printed Forward shows a token: %s", s)
		}
	}
}
