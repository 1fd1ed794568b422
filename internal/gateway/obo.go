package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// exchanges is the On-Behalf-Of step of the request path: each route's
// middleware, and its hook for the upstream's claims challenges.
type exchanges struct {
	tokens    TokenSource
	refusals  *metrics.Refusals
	log       *slog.Logger
	authority string // https://host/<tenant>, for claims challenges
	tracer    *tracing.Tracer
}

// token gets the downstream token for rt, in a span of its own: where it
// came from (L1, L2, an exchange) and, on failure, Entra's code and IDs.
// The calls to Entra an exchange makes are the span's children (MSAL's
// requests carry ctx).
func (x *exchanges) token(ctx context.Context, rt config.Route, resource string, p *auth.Principal, claims string) (obo.Token, error) {
	ctx, span := x.tracer.Start(ctx, "downstream token", trace.SpanKindInternal)
	tok, err := x.tokens.Exchange(ctx, exchangeRequest(rt, p, claims))
	if span.IsRecording() {
		traceToken(span, rt.Name, resource, tok, err)
	}
	span.End()
	return tok, err
}

// traceToken records the outcome of a downstream token on its span: never
// the token.
func traceToken(span trace.Span, route, resource string, tok obo.Token, err error) {
	span.SetAttributes(tracing.AttrRoute.String(route), tracing.AttrDownstreamRes.String(resource))
	if err == nil {
		span.SetAttributes(tracing.AttrTokenSource.String(tok.Source))
		return
	}
	var oe *obo.Error
	switch {
	case errors.Is(err, tokencache.ErrBusy):
		span.SetAttributes(tracing.AttrShed.String(metrics.LimitExchanges))
		span.SetStatus(codes.Error, "exchange shed: too many in progress")
	case errors.As(err, &oe):
		span.SetAttributes(tracing.AttrTokenSource.String(obo.SourceExchange), tracing.AttrEntraErrorCode.String(oe.CodeLabel()))
		// Entra's answer (or a header of whatever stood in its way): made
		// valid and bounded, as every string from the network.
		if oe.CorrelationID != "" {
			span.SetAttributes(tracing.AttrEntraCorrelation.String(tracing.Clean(oe.CorrelationID)))
		}
		if oe.TraceID != "" {
			span.SetAttributes(tracing.AttrEntraTraceID.String(tracing.Clean(oe.TraceID)))
		}
		span.SetStatus(codes.Error, "exchange failed: "+string(oe.Class()))
	default:
		span.SetStatus(codes.Error, "exchange failed")
	}
}

// exchangeRequest is the exchange of p's token for rt's downstream scopes.
func exchangeRequest(rt config.Route, p *auth.Principal, claims string) obo.Request {
	return obo.Request{
		Assertion: p.Token(), AssertionSHA256: p.TokenHash(), TenantID: p.TenantID,
		Scopes: rt.DownstreamScopes, Route: rt.Name, Claims: claims,
	}
}

// forward gets the downstream token On-Behalf-Of the validated user, or
// answers the frontend why it cannot, and hands the route's proxy the token
// to send and the user's token, which it must not send. On routes without
// downstream scopes nothing is exchanged and no Authorization header goes
// upstream. It runs behind auth.Middleware, which put the principal in the
// request context, and ends the route's chain.
func (x *exchanges) forward(rt config.Route, to *proxy.RouteHandler) http.Handler {
	exchange, resource := len(rt.DownstreamScopes) > 0, rt.Resource()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		if p == nil {
			// A chain built without auth.Middleware in front: fail closed
			// rather than forward an unauthenticated request.
			x.log.Error("gateway: no validated principal before the exchange", "route", rt.Name)
			apierror.Write(w, r, http.StatusInternalServerError, "internal_error", "the gateway failed to answer; quote the request_id")
			return
		}
		var f proxy.Forward
		f.SetSecret(p.Token())
		if exchange {
			tok, err := x.token(r.Context(), rt, resource, p, "")
			if err != nil {
				x.failed(w, r, rt, p, err)
				return
			}
			reqlog.From(w).SetDownstream(reqlog.Downstream{Resource: resource, Source: tok.Source, Exchange: tok.Took})
			f.SetUpstreamToken(tok.AccessToken)
		}
		to.Forward(w, r, f)
	})
}

// claimsRetry is rt's answer to a downstream claims challenge (CAE,
// conditional access): one new exchange with those claims, for the proxy to
// replay the request with. The replayed request's context carries its
// principal. An exchange the gateway sheds, or that Entra cannot answer
// now, is a proxy.RetryLaterError: the client gets 503 and Retry-After.
func (x *exchanges) claimsRetry(rt config.Route) proxy.ClaimsRetry {
	resource := rt.Resource()
	return func(ctx context.Context, claims string) (string, error) {
		p := auth.FromContext(ctx)
		if p == nil {
			return "", errors.New("gateway: no validated principal for the claims retry")
		}
		tok, err := x.token(ctx, rt, resource, p, claims)
		var oe *obo.Error
		switch {
		case errors.Is(err, tokencache.ErrBusy):
			x.refusals.Shed(metrics.LimitExchanges)
			return "", &proxy.RetryLaterError{Shed: metrics.LimitExchanges, Err: err}
		case errors.As(err, &oe) && oe.Class() == obo.ClassUnavailable:
			// Entra throttles or fails: as for the first exchange, 503
			// with its Retry-After, not a challenge the user would step
			// up for in vain.
			x.log.WarnContext(ctx, "on-behalf-of exchange for a claims challenge failed: Entra unavailable",
				"route", rt.Name, "error_code", oe.CodeLabel(), "entra_status", oe.Status, "entra_trace_id", oe.TraceID, "principal", p)
			return "", &proxy.RetryLaterError{After: oe.RetryAfter, Err: err}
		}
		return tok.AccessToken, err
	}
}

// failed answers a failed exchange by class and logs what the operator
// needs: the AADSTS code, the hint, and Entra's trace and correlation IDs.
func (x *exchanges) failed(w http.ResponseWriter, r *http.Request, rt config.Route, p *auth.Principal, err error) {
	if r.Context().Err() != nil {
		// The client gave up while the exchange ran: not Entra's failure.
		x.log.InfoContext(r.Context(), "client went away during the on-behalf-of exchange", "route", rt.Name, "principal", p)
		w.WriteHeader(proxy.StatusClientClosedRequest)
		return
	}
	if errors.Is(err, tokencache.ErrBusy) {
		// The gateway's own bound (limits.max_concurrent_exchanges), not
		// Entra's answer: the user's token is fine, the exchange waits.
		x.refusals.Shed(metrics.LimitExchanges)
		reqlog.From(w).SetShed(metrics.LimitExchanges)
		x.log.WarnContext(r.Context(), "on-behalf-of exchange shed: too many in progress", "route", rt.Name, "principal", p)
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
		"suberror", oe.SubError, "entra_status", oe.Status, "entra_trace_id", oe.TraceID,
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
	level := x.log.InfoContext
	if class == obo.ClassGateway || class == obo.ClassUnavailable {
		level = x.log.ErrorContext
	}
	level(r.Context(), "on-behalf-of exchange failed", attrs...)

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
		w.Header().Set("WWW-Authenticate", `Bearer realm="obo-gateway", authorization_uri="`+x.authority+
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
