package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// Policy is what a route demands of a valid token. How its fields combine:
//
//   - a user's (delegated) token needs one of Scopes, when Scopes is set,
//     and one of Roles, when Roles is set (Entra puts a user's app-role
//     assignments in the roles claim of user tokens);
//   - an app-only token needs one of Roles: a route without Roles admits no
//     app-only token, and Scopes do not apply to it (it has none);
//   - RequireUser refuses app-only tokens whatever their roles: a route that
//     exchanges the token On-Behalf-Of needs a user's token.
//
// Every combination is allowed; with RequireUser, Roles gate users only.
type Policy struct {
	Scopes      []string
	Roles       []string
	RequireUser bool
}

// Grant is what satisfied a route's policy: the first of its scopes the
// token carries and the first of its roles, each empty when the policy
// asked for none (or, for Scope, for an app-only token, which has none).
// The access log and the trace record it, for audits.
type Grant struct{ Scope, Role string }

// String is "scp:<scope> roles:<role>", the parts present; "" for a route
// that asks for neither.
func (g Grant) String() string {
	switch {
	case g.Scope != "" && g.Role != "":
		return "scp:" + g.Scope + " roles:" + g.Role
	case g.Scope != "":
		return "scp:" + g.Scope
	case g.Role != "":
		return "roles:" + g.Role
	}
	return ""
}

// Check applies the policy to a valid principal: what satisfied it, or the
// refusal (401 app_only, 403 insufficient_scope) with what was missing in
// Err.
func (pol Policy) Check(p *Principal) (Grant, *TokenError) {
	var g Grant
	if p.AppOnly && pol.RequireUser {
		return g, &TokenError{Status: http.StatusUnauthorized, Code: "invalid_token", Reason: ReasonAppOnly,
			Description: "this is an app-only token (client credentials); this route calls its API On-Behalf-Of a user and needs a user's token"}
	}
	if !p.AppOnly && len(pol.Scopes) > 0 {
		i := slices.IndexFunc(pol.Scopes, p.HasScope)
		if i < 0 {
			return g, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope", Reason: ReasonScope,
				Description: "the token lacks a scope this route requires", Scope: strings.Join(pol.Scopes, " "),
				Err: fmt.Errorf("needs one of scp %s; the token has %s", strings.Join(pol.Scopes, ", "), orNone(strings.Join(p.Scopes, " ")))}
		}
		g.Scope = pol.Scopes[i]
	}
	if i := slices.IndexFunc(pol.Roles, p.HasRole); i >= 0 {
		g.Role = pol.Roles[i]
	}
	if (p.AppOnly || len(pol.Roles) > 0) && g.Role == "" {
		desc, detail := "the token lacks an app role this route requires", "needs one of roles "+orNone(strings.Join(pol.Roles, ", "))
		if p.AppOnly && len(pol.Roles) == 0 {
			desc = "this route admits no app-only token (it lists no required roles)"
		}
		// The roles are not put in WWW-Authenticate's scope: they are not
		// scopes a client can ask for.
		return g, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope", Reason: ReasonRole, Description: desc,
			Err: fmt.Errorf("%s; the token has %s", detail, orNone(strings.Join(p.Roles, ", ")))}
	}
	return g, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Middleware returns chi middleware that reads the bearer token from the
// Authorization header (only there), validates it, applies pol, and puts
// the Principal in the request context. A valid token's caller (oid, tid,
// client, and what admitted it) goes to the access log's record
// (reqlog), whether the route admits it or not. Refusals answer 401 or 403 with an
// RFC 6750 WWW-Authenticate header and a JSON body; the next handler is not
// called. log receives one line per refusal with the reason (never the token).
func Middleware(v *Validator, pol Policy, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := v.cfg.Tracer.Start(r.Context(), "token validation", trace.SpanKindInternal)
			raw, terr := bearerToken(r)
			var p *Principal
			if terr == nil {
				var err error
				p, err = v.Validate(ctx, raw)
				if err != nil && !errors.As(err, &terr) {
					terr = invalid(ReasonMalformed, "the token could not be validated", err)
				}
			} else {
				v.cfg.Metrics.validated("invalid", terr.Reason)
			}
			if terr == nil {
				if p.Grant, terr = pol.Check(p); terr != nil {
					// A valid token this route refuses (scope, role, app-only).
					v.cfg.Metrics.validated("refused", terr.Reason)
				}
			}
			if span.IsRecording() {
				traceValidation(span, p, terr)
			}
			span.End()
			if p != nil {
				// The access log names the caller of a valid token, also
				// when the route refuses it (an audit looks for those).
				rec := reqlog.From(w)
				rec.SetUser(p.ObjectID, p.TenantID)
				if terr == nil {
					rec.SetClient(p.ClientID, p.Grant.Scope, p.Grant.Role)
				} else {
					rec.SetClient(p.ClientID, "", "")
				}
			}
			if terr != nil {
				attrs := []any{"reason", string(terr.Reason), "status", terr.Status}
				if terr.Err != nil {
					attrs = append(attrs, "detail", terr.Err.Error())
				}
				if p != nil {
					attrs = append(attrs, "principal", p)
				}
				log.InfoContext(r.Context(), "token refused", attrs...)
				WriteError(w, r, terr)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}

// traceValidation records on the validation span what was decided:
// identifiers, never the token or its claim set.
func traceValidation(span trace.Span, p *Principal, terr *TokenError) {
	if p != nil {
		cache := "miss"
		if p.FromCache {
			cache = "hit"
		}
		span.SetAttributes(
			tracing.AttrTokenCache.String(cache),
			tracing.AttrTokenVersion.String(p.Version),
			tracing.AttrTokenKeyID.String(p.KeyID),
			tracing.AttrClientID.String(p.ClientID),
			tracing.AttrTenantID.String(p.TenantID),
		)
		if g := p.Grant.String(); g != "" {
			span.SetAttributes(tracing.AttrGrant.String(g))
		}
	}
	if terr != nil {
		span.SetAttributes(tracing.AttrTokenRefusal.String(string(terr.Reason)))
		if terr.Status == http.StatusServiceUnavailable {
			// Cannot check now: the gateway's failure, not the caller's.
			span.SetStatus(codes.Error, "the token could not be checked now")
		}
	}
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, *TokenError) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		desc := "send the access token in the Authorization header: Bearer <token>"
		if r.URL.Query().Has("access_token") {
			desc = "tokens in the query string are not accepted; " + desc
		}
		return "", &TokenError{Status: http.StatusUnauthorized, Reason: ReasonMissing, Description: desc}
	}
	if len(vals) > 1 {
		return "", &TokenError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: ReasonMalformed,
			Description: "more than one Authorization header"}
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", &TokenError{Status: http.StatusUnauthorized, Code: "invalid_request", Reason: ReasonMissing,
			Description: "the Authorization header must be: Bearer <token>"}
	}
	return tok, nil
}

// WriteError answers a token refusal: RFC 6750 WWW-Authenticate (error,
// error_description, scope) and a JSON body with the same fields.
func WriteError(w http.ResponseWriter, r *http.Request, e *TokenError) {
	params := []string{`realm="obo-gateway"`}
	if e.Code != "" && e.Code != "temporarily_unavailable" {
		params = append(params, `error="`+e.Code+`"`)
		if e.Description != "" {
			params = append(params, `error_description="`+quote(e.Description)+`"`)
		}
		if e.Scope != "" {
			params = append(params, `scope="`+quote(e.Scope)+`"`)
		}
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	}
	if e.Status == http.StatusServiceUnavailable {
		retry := 5
		if e.RetryAfter > 0 {
			retry = int(math.Ceil(e.RetryAfter.Seconds()))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	code := e.Code
	if code == "" {
		code = "unauthorized"
	}
	apierror.Write(w, r, e.Status, code, e.Description)
}

// quote escapes a value for an RFC 7230 quoted-string, dropping control characters.
func quote(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
