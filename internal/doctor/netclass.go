package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// netKind is what went wrong reaching a host.
type netKind int

const (
	netOther netKind = iota
	netDNS
	netRefused
	netTimeout
	netReset
	netUnreachable
	netTLSUnknownAuthority
	netTLSHostname
	netTLSExpired
	netTLS
)

// netFailure is a classified network error.
type netFailure struct {
	kind netKind
	// class names the kind in words, e.g. "connection refused".
	class string
	// cause is the innermost error worth showing (no URL query, no body).
	cause string
}

func (f netFailure) isTLS() bool { return f.kind >= netTLSUnknownAuthority }

// classifyNet says what kind of network failure err is.
func classifyNet(err error) netFailure {
	cause := innermost(err)
	var (
		dnsErr     *net.DNSError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		verifyErr  *tls.CertificateVerificationError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return netFailure{netDNS, "DNS: host " + dnsErr.Name + " not found", cause}
		}
		return netFailure{netDNS, "DNS lookup of " + dnsErr.Name + " failed", cause}
	case errors.As(err, &unknownCA):
		return netFailure{netTLSUnknownAuthority, "TLS: certificate signed by an unknown authority", cause}
	case errors.As(err, &hostErr):
		return netFailure{netTLSHostname, "TLS: the server's certificate is for another host name", cause}
	case errors.As(err, &invalidErr):
		if invalidErr.Reason == x509.Expired {
			return netFailure{netTLSExpired, "TLS: the server's certificate has expired or is not yet valid", cause}
		}
		return netFailure{netTLS, "TLS: the server's certificate is not valid", cause}
	case errors.As(err, &verifyErr):
		return netFailure{netTLS, "TLS: the server's certificate could not be verified", cause}
	case errors.As(err, &recordErr), strings.Contains(cause, "server gave HTTP response to HTTPS client"):
		return netFailure{netTLS, "TLS handshake failed: the server does not speak TLS on this port (plain HTTP?)", cause}
	case errors.As(err, &alertErr):
		return netFailure{netTLS, "TLS handshake refused by the server", cause}
	case errors.Is(err, syscall.ECONNREFUSED):
		return netFailure{netRefused, "connection refused", cause}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return netFailure{netReset, "connection reset", cause}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return netFailure{netUnreachable, "host unreachable", cause}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return netFailure{netTimeout, "timed out", cause}
	case strings.Contains(cause, "tls:") || strings.Contains(cause, "x509:"):
		return netFailure{netTLS, "TLS handshake failed", cause}
	}
	return netFailure{netOther, "network error", cause}
}

// innermost returns the message of the most specific error in err's chain
// worth showing: the *net.OpError, else the *url.Error's cause, else err.
func innermost(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// entraNetFix says what to do when Entra cannot be reached.
func entraNetFix(f netFailure, host string) string {
	switch {
	case f.kind == netTLSUnknownAuthority:
		return "something between this machine and " + host + " presents a certificate the system does not trust: a TLS-inspecting egress proxy? Put its CA certificate (PEM) in entra.ca_file (OBO_GATEWAY_ENTRA_CA_FILE)"
	case f.isTLS():
		return "the TLS connection to " + host + " fails: check entra.authority_host, and whether an egress proxy intercepts TLS (its CA then belongs in entra.ca_file)"
	case f.kind == netDNS:
		return "check entra.authority_host (AZURE_AUTHORITY_HOST) for a typo, and this machine's DNS; the Entra hosts are https://login.microsoftonline.com (public), https://login.microsoftonline.us (US Government), https://login.partner.microsoftonline.cn (China)"
	case f.kind == netRefused:
		return "nothing listens there: check entra.authority_host (AZURE_AUTHORITY_HOST), e.g. https://login.microsoftonline.com; if egress must go through a proxy, set HTTPS_PROXY"
	case f.kind == netTimeout:
		return "nothing answered in time: allow egress to " + host + " on port 443 (firewall, network policy), or set HTTPS_PROXY if egress goes through a proxy"
	default:
		return "allow egress to " + host + " (firewall, network policy, HTTPS_PROXY for an egress proxy), and check entra.authority_host"
	}
}
