package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// Kinds of upstream failure, for Outcome.Err and the errors metric.
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
		kind, status := classify(ctx, err)
		if o := outcomeFrom(ctx); o != nil {
			o.UpstreamStatus = status
			o.Err = kind
		}
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
