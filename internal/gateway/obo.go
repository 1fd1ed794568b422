package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

// exchange is the middleware of a route that gets the downstream token
// On-Behalf-Of the validated user, or answers the frontend why it cannot.
// On routes without downstream scopes nothing is exchanged and no
// Authorization header goes upstream. It runs behind accessLog, whose
// requestInfo carries the principal to the log and the Forward to the proxy.
func (g *Gateway) exchange(rt config.Route) func(http.Handler) http.Handler {
	request := func(p *auth.Principal, claims string) obo.Request {
		return obo.Request{
			Assertion: p.Token(), AssertionSHA256: p.TokenHash(), TenantID: p.TenantID,
			Scopes: rt.DownstreamScopes, Route: rt.Name, Claims: claims,
		}
	}
	// A downstream claims challenge (CAE, conditional access): one new
	// exchange with those claims, then the proxy replays the request. Made
	// once per route, not per request: the replayed request's context
	// carries its principal.
	retry := func(ctx context.Context, claims string) (string, error) {
		p := auth.FromContext(ctx)
		if p == nil {
			return "", errors.New("gateway: no validated principal for the claims retry")
		}
		tok, err := g.tokens.Exchange(ctx, request(p, claims))
		if errors.Is(err, tokencache.ErrBusy) {
			g.refusals.Shed(metrics.LimitExchanges)
			return "", fmt.Errorf("%w: %w", proxy.ErrRetryLater, err)
		}
		return tok.AccessToken, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := auth.FromContext(r.Context())
			info := infoFrom(r.Context())
			info.principal = p
			f := &info.forward
			f.SetSecret(p.Token())
			if len(rt.DownstreamScopes) > 0 {
				tok, err := g.tokens.Exchange(r.Context(), request(p, ""))
				if err != nil {
					g.oboFailed(w, r, rt, p, err)
					return
				}
				f.SetUpstreamToken(tok.AccessToken)
				f.SetClaimsRetry(retry)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// oboFailed answers a failed exchange by class and logs what the operator
// needs: the AADSTS code, the hint, and Entra's trace and correlation IDs.
func (g *Gateway) oboFailed(w http.ResponseWriter, r *http.Request, rt config.Route, p *auth.Principal, err error) {
	if r.Context().Err() != nil {
		// The client gave up while the exchange ran: not Entra's failure.
		g.log.Info("client went away during the on-behalf-of exchange", "route", rt.Name, "principal", p)
		w.WriteHeader(proxy.StatusClientClosedRequest)
		return
	}
	if errors.Is(err, tokencache.ErrBusy) {
		// The gateway's own bound (limits.max_concurrent_exchanges), not
		// Entra's answer: the user's token is fine, the exchange waits.
		g.refusals.Shed(metrics.LimitExchanges)
		g.log.Warn("on-behalf-of exchange shed: too many in progress", "route", rt.Name, "principal", p)
		edge.Shed(w, r, "the gateway is obtaining tokens for as many new sessions as it may; retry shortly")
		return
	}
	var oe *obo.Error
	if !errors.As(err, &oe) {
		oe = &obo.Error{Err: err, Code: "msal_error"}
	}
	class := oe.Class()
	attrs := []any{
		"route", rt.Name, "class", string(class), "error_code", oe.CodeLabel(), "error", oe.Code,
		"suberror", oe.SubError, "entra_status", oe.Status, "trace_id", oe.TraceID,
		"correlation_id", oe.CorrelationID, "hint", oe.Hint(), "principal", p,
	}
	if oe.Err != nil {
		attrs = append(attrs, "detail", oe.Err.Error())
	}
	if oe.Description != "" {
		// Entra's own words (no tokens or secrets): the operator's best clue
		// for a code the catalogue does not know.
		attrs = append(attrs, "entra_description", oe.Description)
	}
	level := g.log.Info
	if class == obo.ClassGateway || class == obo.ClassUnavailable {
		level = g.log.Error
	}
	level("on-behalf-of exchange failed", attrs...)

	switch {
	case class == obo.ClassInteraction && oe.Claims == "":
		// No challenge to pass on: the user must sign in again interactively.
		w.Header().Set("WWW-Authenticate", `Bearer realm="obo-gateway", error="invalid_token", error_description="interactive sign-in required"`)
		apierror.Write(w, r, http.StatusUnauthorized, "interaction_required",
			"the downstream API requires the user to sign in again interactively; acquire a new token interactively and retry")
		return
	}
	// Status and error code come from the catalogue's class mapping (the
	// same that docs/troubleshooting.md shows); each class adds its headers
	// and words.
	body := apierror.Body{Error: class.ClientError()}
	switch class {
	case obo.ClassInteraction:
		body.Claims = base64.StdEncoding.EncodeToString([]byte(oe.Claims))
		w.Header().Set("WWW-Authenticate", `Bearer realm="obo-gateway", authorization_uri="`+g.authority+
			`/oauth2/v2.0/authorize", error="insufficient_claims", claims="`+body.Claims+`"`)
		body.Description = "the downstream API requires more from the user (e.g. multi-factor authentication): acquire a new token with these claims (MSAL.js: claims request parameter) and retry"
	case obo.ClassInvalidAssertion:
		w.Header().Set("WWW-Authenticate", `Bearer realm="obo-gateway", error="invalid_token", error_description="the token cannot be exchanged for the downstream API; acquire a new token"`)
		body.Description = "the token cannot be exchanged for the downstream API (Entra ID refused it): acquire a new token for this API"
	case obo.ClassConsent:
		body.Description = "the user has not consented to let this API call " + resourceOf(rt) + " on their behalf: sign the user in interactively to grant consent (or ask an admin to grant it), then retry"
	case obo.ClassUser:
		body.Description = "the user's account cannot be used (it is disabled or blocked)"
	case obo.ClassUnavailable:
		retry := 5
		if oe.RetryAfter > 0 {
			retry = int((oe.RetryAfter.Seconds()) + 0.999)
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		body.Description = "the identity provider is unavailable or throttling; retry later"
	default:
		body.Description = "the gateway could not obtain a token for the upstream API; the operator has been alerted (quote the request_id)"
	}
	apierror.WriteBody(w, r, class.Status(), body)
}
func resourceOf(rt config.Route) string {
	if res := rt.Resource(); res != "" {
		return res
	}
	return "the downstream API"
}
