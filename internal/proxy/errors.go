package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
)

// Kinds of upstream failure, for reqlog.Upstream.Err and the errors metric.
const (
	kindTimeout  = "timeout"
	kindConnect  = "connect"
	kindCanceled = "canceled"
	kindOther    = "other"
)

// StatusClientClosedRequest is the status recorded (never sent) when the
// client gave up before the upstream answered, after nginx's 499.
const StatusClientClosedRequest = 499

// classify maps an upstream failure to its kind and status. ctx is the
// inbound request's context.
func classify(ctx context.Context, err error) (kind string, status int) {
	var netErr net.Error
	switch {
	case errors.Is(err, errTooManyInformational):
		return kindOther, http.StatusBadGateway
	case errors.Is(ctx.Err(), context.Canceled):
		return kindCanceled, StatusClientClosedRequest
	case errors.Is(err, errTimeout):
		return kindTimeout, http.StatusGatewayTimeout
	case isConnectError(err): // before the timeouts: a dial timeout is a connect failure
		return kindConnect, http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return kindTimeout, http.StatusGatewayTimeout
	}
	return kindOther, http.StatusBadGateway
}

// isConnectError reports a failure to reach the upstream at all: DNS, TCP
// connect (including its timeout), an HTTP proxy, or the TLS handshake.
func isConnectError(err error) bool {
	var (
		opErr      *net.OpError
		dnsErr     *net.DNSError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect"):
		return true
	case errors.As(err, &dnsErr), errors.As(err, &verifyErr), errors.As(err, &recordErr),
		errors.As(err, &alertErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidErr):
		return true
	}
	return false
}

// errorHandler is the ReverseProxy.ErrorHandler for rt: it records the
// failure, logs its detail for the operator, and answers the client a JSON
// body without it. A client that gave up gets nothing: it is gone.
func (p *Proxy) errorHandler(rt Route) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		ctx := r.Context()
		g := guardOf(w)
		if berr := g.bodyFailure(); berr != nil {
			// Answered even when the server canceled the request for the
			// failed read: a slow client is still there to read a 408.
			p.clientBodyFailed(w, r, rt, g, berr)
			return
		}
		if rl := (*RetryLaterError)(nil); errors.As(err, &rl) {
			w.Header().Set("Retry-After", rl.retryAfter())
			if rl.Shed != "" {
				g.failed(0, "shed")
				reqlog.From(w).SetShed(rl.Shed)
				apierror.Write(w, r, http.StatusServiceUnavailable, "temporarily_unavailable",
					"the gateway is obtaining tokens for as many new sessions as it may; retry shortly")
				return
			}
			g.failed(0, "token_unavailable")
			apierror.Write(w, r, http.StatusServiceUnavailable, "temporarily_unavailable",
				"the identity provider is unavailable or throttling; retry later")
			return
		}
		kind, status := classify(ctx, err)
		g.failed(status, kind)
		p.metrics.failed(rt.Name, kind)
		level := slog.LevelWarn
		if kind == kindCanceled {
			level = slog.LevelInfo // clients leaving is routine
		}
		p.log.LogAttrs(ctx, level, "proxy: upstream request failed",
			slog.String("route", rt.Name),
			slog.String("upstream", rt.Upstream.Host),
			slog.String("method", r.Method),
			slog.String("kind", kind),
			slog.Int("status", status),
			slog.String("error", err.Error()),
			slog.String("request_id", reqid.FromContext(ctx)),
		)
		switch status {
		case StatusClientClosedRequest:
			// Nobody reads it; written so that the access log and the
			// metrics count the request as the client's giving up, not as
			// net/http's implicit 200.
			w.WriteHeader(StatusClientClosedRequest)
			return
		case http.StatusGatewayTimeout:
			apierror.Write(w, r, status, "gateway_timeout", "the upstream service did not answer in time")
		default:
			if kind == kindConnect {
				apierror.Write(w, r, status, "bad_gateway", "the upstream service could not be reached")
			} else {
				apierror.Write(w, r, status, "bad_gateway", "the upstream service failed to answer")
			}
		}
	}
}

// clientBodyFailed answers a request whose body could not be read from the
// client: 413 past its size bound, 408 past its read deadline, 400 when it
// broke off. The connection is closed after the answer: the rest of the
// body, if any, is not worth waiting for.
func (p *Proxy) clientBodyFailed(w http.ResponseWriter, r *http.Request, rt Route, g *guardWriter, err error) {
	var (
		tooLarge *http.MaxBytesError
		status   int
		code     string
		reason   string
		desc     string
	)
	switch {
	case errors.As(err, &tooLarge):
		status, code, reason = http.StatusRequestEntityTooLarge, "payload_too_large", metrics.ReasonBodyTooLarge
		desc = "the request body is larger than this API accepts (" + strconv.FormatInt(tooLarge.Limit, 10) + " bytes)"
	case errors.Is(err, os.ErrDeadlineExceeded):
		status, code, reason = http.StatusRequestTimeout, "request_timeout", metrics.ReasonBodyTimeout
		desc = "the request body did not arrive in time"
	default:
		status, code, reason = http.StatusBadRequest, "invalid_request", metrics.ReasonBodyBroken
		desc = "the request body could not be read"
	}
	g.failed(0, reason)
	reqlog.From(w).SetRefused(reason)
	p.refusals.Refused(reason)
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "proxy: request body failed",
		slog.String("route", rt.Name), slog.String("reason", reason), slog.String("error", err.Error()),
		slog.String("request_id", reqid.FromContext(r.Context())))
	w.Header().Set("Connection", "close")
	apierror.Write(w, r, status, code, desc)
}
