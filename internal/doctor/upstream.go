package doctor

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// checkUpstream sends one HEAD request, without credentials, to a route's
// upstream: any HTTP answer proves it reachable.
func (r *runner) checkUpstream(ctx context.Context, rt *config.Route) {
	id, name := "route/"+rt.Name+"/upstream", "route "+rt.Name+": upstream"
	timeout := min(r.opts.UpstreamTimeout, rt.Timeout.D())
	p, ok := r.online.probes[rt.Upstream]
	if !ok {
		p = r.probe(ctx, rt.Upstream, timeout)
		r.online.probes[rt.Upstream] = p
	}
	if p.err == nil {
		r.pass(id, name, fmt.Sprintf("HEAD %s answered %s in %s (any answer proves it reachable; no credentials were sent)",
			rt.Upstream, p.status, p.elapsed.Round(time.Millisecond)))
		return
	}
	f := classifyNet(p.err)
	r.fail(id, name, fmt.Sprintf("%s: %s (%s)", rt.Upstream, f.class, f.cause), upstreamFix(f, rt, timeout))
}

func (r *runner) probe(ctx context.Context, upstream string, timeout time.Duration) probeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, upstream, nil)
	if err != nil {
		return probeResult{err: err}
	}
	start := time.Now()
	resp, err := r.online.upstream.Do(req)
	if err != nil {
		return probeResult{err: err}
	}
	resp.Body.Close()
	return probeResult{status: resp.Status, elapsed: time.Since(start)}
}

func upstreamFix(f netFailure, rt *config.Route, timeout time.Duration) string {
	where := fmt.Sprintf("routes[].upstream of route %s (%s)", rt.Name, config.RouteEnvVar(rt.Name, "UPSTREAM"))
	switch f.kind {
	case netRefused:
		return "nothing listens there: start the API, or correct the host and port in " + where
	case netDNS:
		return "the host name does not resolve from here: correct it in " + where + " (in Kubernetes, the Service's name: service.namespace.svc.cluster.local), or check this machine's DNS"
	case netTimeout:
		return fmt.Sprintf("nothing answered within %s: a firewall or network policy dropping the traffic, or the API is stuck; check the address in %s", timeout, where)
	case netTLSUnknownAuthority:
		return "the upstream's certificate is not signed by a CA of the system's trust store, which is what the gateway trusts for upstreams: have it issued by a trusted CA or add the CA to the trust store of the gateway's image"
	case netTLSHostname:
		return "the upstream's certificate does not name this host: use the host name its certificate names in " + where
	case netTLSExpired:
		return "the upstream's certificate has expired (or is not yet valid): renew it on the upstream"
	case netTLS:
		return "the TLS handshake fails: if the API speaks plain HTTP on this port, write http:// instead of https:// in " + where
	case netUnreachable, netReset:
		return "the network path to the upstream is broken: check routing, firewalls and network policies, and the address in " + where
	}
	return "check the address in " + where + " and the network path to it"
}
