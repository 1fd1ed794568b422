package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The request side of the proxy: what goes upstream of a client's request.
// Both legs apply these rules, so that an upstream sees the same request
// whichever leg carried it: the fast leg in its one pass over the client's
// headers (requestHeaders), the httputil leg on ReverseProxy's copy of them
// (rewrite).

// hopHeaders are the hop-by-hop headers, as httputil.ReverseProxy drops
// them (RFC 9110, section 7.6.1), canonical.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopHeader reports a hop-by-hop header, ignoring case.
func isHopHeader(name string) bool {
	for _, h := range hopHeaders {
		if len(name) == len(h) && strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// namedInConnection reports a header the client named in Connection, which
// is hop-by-hop too.
func namedInConnection(conn []string, name string) bool {
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// requestRules decide, for one request, which of the client's headers go
// upstream.
type requestRules struct {
	secret  string   // the user's token: no header holding it goes upstream
	cookies bool     // the route forwards Cookie
	trusted bool     // the peer is a trusted proxy: its X-Forwarded-* are kept
	conn    []string // the client's Connection values
	traced  bool     // the gateway sends its own traceparent and tracestate
}

// keep reports whether the client's header name (with values vals) goes
// upstream as it is. The fast leg then adds what the gateway sets itself:
// Host, X-Forwarded-*, X-Request-Id, Authorization, Te: trailers and the
// body's framing.
func (rr *requestRules) keep(name string, vals []string) bool {
	switch {
	case isHopHeader(name), namedInConnection(rr.conn, name):
		return false
	case headerNameIs(name, "content-length"), headerNameIs(name, "host"):
		return false // the leg frames the body itself
	case headerNameIs(name, "x-forwarded-for"), headerNameIs(name, "x-forwarded-host"), headerNameIs(name, "x-forwarded-proto"):
		return false // set by forwardedHeaders, from the client's only behind a trusted proxy
	case isOverrideHeader(name):
		return false // before the forwarding headers: X-Forwarded-Prefix is both, and never kept
	case isForwardingHeader(name):
		return rr.trusted && !headerNameIs(name, "forwarded") && !holdsSecret(name, vals, rr.secret)
	case !rr.cookies && (headerNameIs(name, "cookie") || headerNameIs(name, "cookie2")):
		return false
	case headerNameIs(name, "authorization"):
		return false
	case rr.traced && (headerNameIs(name, "traceparent") || headerNameIs(name, "tracestate")):
		return false
	}
	return !holdsSecret(name, vals, rr.secret)
}

// holdsSecret reports a header whose name or a value contains secret.
func holdsSecret(name string, vals []string, secret string) bool {
	if secret == "" {
		return false
	}
	// Canonicalisation changes the case of header names, so a name is
	// compared without case; only a name as long as the token (a kilobyte
	// or more) can hold it, so this costs nothing per request.
	if containsFold(name, secret) {
		return true
	}
	for _, v := range vals {
		if strings.Contains(v, secret) {
			return true
		}
	}
	return false
}

// forwarded are the X-Forwarded-* values of a request: from the
// connection, or, behind a trusted proxy, the client's with the peer
// appended, as httputil.ProxyRequest.SetXForwarded sets them.
type forwarded struct {
	forIP     string   // the peer's address
	priorFor  []string // a trusted proxy's X-Forwarded-For, to which the peer is appended
	host      []string // X-Forwarded-Host values
	proto     string   // X-Forwarded-Proto, when not from a trusted proxy
	protoKept []string // a trusted proxy's X-Forwarded-Proto
}

func forwardedOf(in *http.Request, trusted bool) forwarded {
	var f forwarded
	if ip, _, err := splitHostPort(in.RemoteAddr); err == nil {
		f.forIP = ip
	}
	f.proto = "http"
	if in.TLS != nil {
		f.proto = "https"
	}
	if trusted {
		f.priorFor = in.Header["X-Forwarded-For"]
		f.host = in.Header["X-Forwarded-Host"]
		f.protoKept = in.Header["X-Forwarded-Proto"]
	}
	return f
}

// splitHostPort is net.SplitHostPort for a RemoteAddr, which net/http
// always sets as ip:port.
func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", errNoPort
	}
	host, port = addr[:i], addr[i+1:]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoPort = errString("proxy: remote address without a port")

// upstreamURL is the request target upstream of in's URL (already stripped
// of the route's prefix when it strips): the upstream's base path joined to
// the path, the upstream's query before the request's, scrubbed of the
// user's token, as httputil.ProxyRequest.SetURL joins them.
func upstreamURL(up *url.URL, inPath, inRawPath, inQuery, secret string) (path, rawPath, rawQuery string) {
	path, rawPath = joinURLPath(up, inPath, inRawPath)
	q := scrubQuery(inQuery, secret)
	switch {
	case up.RawQuery == "" || q == "":
		rawQuery = up.RawQuery + q
	default:
		rawQuery = up.RawQuery + "&" + q
	}
	return path, rawPath, rawQuery
}

// joinURLPath joins a's path and b's with one slash between, keeping the
// escapes of either (httputil's, which ReverseProxy's SetURL uses).
func joinURLPath(a *url.URL, bPath, bRawPath string) (path, rawpath string) {
	if a.RawPath == "" && bRawPath == "" {
		return singleJoiningSlash(a.Path, bPath), ""
	}
	apath, bpath := a.EscapedPath(), bRawPath
	if bpath == "" {
		bpath = escapePath(bPath)
	}
	aslash, bslash := strings.HasSuffix(apath, "/"), strings.HasPrefix(bpath, "/")
	switch {
	case aslash && bslash:
		return a.Path + bPath[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + bPath, apath + "/" + bpath
	}
	return a.Path + bPath, apath + bpath
}

func singleJoiningSlash(a, b string) string {
	aslash, bslash := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

// upgradeType is the protocol a request asks to upgrade to, as
// ReverseProxy reads it: Upgrade, when Connection lists "upgrade".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// isOverrideHeader reports the request headers some frameworks take as the
// real path or method of a request (IIS URL Rewrite, Symfony, Zend, Spring's
// ForwardedHeaderFilter, ASP.NET's and Express's method override), so a
// client could reach, upstream, a path or method the gateway's route did not
// decide on. Compared ignoring case, '_' as '-'.
func isOverrideHeader(name string) bool {
	if len(name) < len("x-http-method") || (name[0] != 'X' && name[0] != 'x') {
		return false // every one starts with X-: most headers end here
	}
	for _, o := range overrideHeaders {
		if headerNameIs(name, o) {
			return true
		}
	}
	return false
}

var overrideHeaders = []string{
	"x-original-url", "x-rewrite-url", "x-original-uri", "x-original-path",
	"x-forwarded-path", "x-forwarded-uri", "x-forwarded-url", "x-forwarded-prefix",
	"x-envoy-original-path", "x-http-method-override", "x-http-method", "x-method-override",
}

// isForwardingHeader reports the headers a client could use to pose as a
// proxy: Forwarded, X-Forwarded-* and X-Real-Ip. Underscores count as
// hyphens because some upstream stacks (CGI, WSGI) treat them alike.
func isForwardingHeader(name string) bool {
	// Compared in place: this runs for every header of every request.
	return headerNameIs(name, "forwarded") || headerNameIs(name, "x-real-ip") ||
		(len(name) >= len("x-forwarded-") && headerNameIs(name[:len("x-forwarded-")], "x-forwarded-"))
}

// headerNameIs reports whether name is want (lower case, hyphens) ignoring
// ASCII case and counting '_' as '-'.
func headerNameIs(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// scrubHeaders drops every Authorization header and, when secret is set,
// every header whose name or any value contains it.
func scrubHeaders(h http.Header, secret string) {
	for name, vals := range h {
		if strings.EqualFold(name, "Authorization") || holdsSecret(name, vals, secret) {
			delete(h, name)
		}
	}
}

// containsFold reports whether s contains substr, ignoring case, without
// allocating. Header names and tokens are ASCII, so windows of substr's
// length in bytes are enough.
func containsFold(s, substr string) bool {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

// scrubQuery drops the access_token parameter, the parameters that do not
// parse (as ReverseProxy drops them: a ';' among them), and, when secret is
// set, every parameter whose name or value contains it. The others keep
// their order and their encoding.
func scrubQuery(raw, secret string) string {
	if raw == "" {
		return raw
	}
	drop := false
	for pair := range strings.SplitSeq(raw, "&") {
		if dropParam(pair, secret) {
			drop = true
			break
		}
	}
	if !drop {
		return raw // the common case, without allocating
	}
	var b strings.Builder
	first := true
	for pair := range strings.SplitSeq(raw, "&") {
		if dropParam(pair, secret) {
			continue
		}
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(pair)
	}
	return b.String()
}

func dropParam(pair, secret string) bool {
	if pair == "" {
		return false
	}
	if strings.IndexByte(pair, ';') >= 0 {
		return true // ReverseProxy's cleanQueryParams drops these
	}
	rawKey, rawVal, _ := strings.Cut(pair, "=")
	key, err1 := url.QueryUnescape(rawKey)
	val, err2 := url.QueryUnescape(rawVal)
	if err1 != nil || err2 != nil {
		return true // ReverseProxy already drops these; be sure
	}
	if strings.EqualFold(key, "access_token") {
		return true
	}
	return secret != "" && (strings.Contains(key, secret) || strings.Contains(val, secret) || strings.Contains(pair, secret))
}
