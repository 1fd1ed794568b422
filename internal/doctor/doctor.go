// Package doctor checks a gateway configuration the way an operator would,
// and says what to fix: first offline (the file, the certificate or the
// federated credential's assertion, the routes' scopes, risky settings),
// then online against the tenant (OIDC discovery, signing keys, a
// client-credentials token proving the credential, each route's downstream
// API), the upstreams and Redis.
//
// Each finding is a Check with a status (PASS, WARN or FAIL), a detail, and
// for WARN and FAIL a fix in words a developer acts on. Nothing printed ever
// holds a token, a password or key material.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// Status is a check's verdict.
type Status string

// The verdicts.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Check is one finding.
type Check struct {
	// ID is stable and machine-readable: "certificate/validity",
	// "route/orders/upstream", "config/entra.tenant_id".
	ID string `json:"id"`
	// Name is what the check looks at, in words.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is what was found (it may span lines).
	Detail string `json:"detail"`
	// Fix says what to do; empty for PASS.
	Fix string `json:"fix"`
}

// Summary counts the checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Total is the number of checks.
func (s Summary) Total() int { return s.Pass + s.Warn + s.Fail }

// Report is every check, in the order they ran, and their counts.
type Report struct {
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
}

// Options configure Run.
type Options struct {
	// ConfigPath is the configuration file. Required.
	ConfigPath string
	// Environ is the environment, "NAME=value" entries as os.Environ gives
	// them: its variables override the file exactly as for gateway serve
	// (config.Load), one set to "" clearing its setting, and an
	// OBO_GATEWAY_ROUTE_* variable that names no route of the file fails
	// (config/env/<VAR>). Nil is an empty environment.
	Environ []string
	// Offline skips every check that needs the network: Entra (discovery,
	// signing keys, tokens), the upstreams and Redis.
	Offline bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// UpstreamTimeout bounds the request to each upstream; default 5s.
	UpstreamTimeout time.Duration
	// RedisTimeout bounds the PING of the shared cache; default 2s.
	RedisTimeout time.Duration
	// OnCheck, when set, is called with each check as soon as it is known,
	// in order (to print progressively).
	OnCheck func(Check)

	// dial, when set, replaces the network dialer of every client (tests
	// count dials).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// expiryWarning is how close to its end a certificate gets a WARN.
const expiryWarning = 30 * 24 * time.Hour

// Run checks the configuration at opts.ConfigPath: offline checks first,
// then, unless opts.Offline, online ones. It stops after the configuration
// check when the configuration does not load: the other checks need it.
func Run(ctx context.Context, opts Options) *Report {
	r := newRunner(opts)
	r.run(ctx)
	return r.rep
}

// newRunner applies the defaults of opts.
func newRunner(opts Options) *runner {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 5 * time.Second
	}
	if opts.RedisTimeout <= 0 {
		opts.RedisTimeout = 2 * time.Second
	}
	return &runner{opts: opts, rep: &Report{Checks: []Check{}}, ids: map[string]int{}}
}

// runner holds what the checks learn from each other.
type runner struct {
	opts Options
	rep  *Report
	ids  map[string]int

	cfg  *config.Config
	cert *obo.Certificate // nil when it does not load
	// assertion is the federated credential's source (entra.credential
	// workload_identity or managed_identity), nil for a certificate.
	assertion clients.AssertionSource
	// fed is what the federated credential's checks learnt; nil for a
	// certificate.
	fed    *federated
	online *online
}

func (r *runner) run(ctx context.Context) {
	if !r.checkConfig() {
		return
	}
	// Offline.
	r.checkCAFile()
	if isFederated(r.cfg.Entra) {
		r.checkFederated()
	} else {
		r.checkCertificate()
	}
	for i := range r.cfg.Routes {
		r.checkRouteScopes(&r.cfg.Routes[i])
	}
	r.checkSettings()
	if r.opts.Offline {
		return
	}
	// Online; stop early when ctx ends (Ctrl-C).
	r.online = r.newOnline()
	if r.fed != nil && r.fed.kind == config.CredentialManagedIdentity && r.fed.usable {
		r.checkManagedIdentityToken(ctx)
	}
	if r.checkAuthority(ctx) && ctx.Err() == nil {
		r.checkCredentialAndResources(ctx)
	}
	for i := range r.cfg.Routes {
		if ctx.Err() != nil {
			return
		}
		r.checkUpstream(ctx, &r.cfg.Routes[i])
	}
	if ctx.Err() == nil {
		r.checkRedis(ctx)
	}
}

// add records a check, keeping IDs unique ("#2" for a second one).
func (r *runner) add(c Check) {
	if c.Status == Pass {
		c.Fix = ""
	}
	if n := r.ids[c.ID]; n > 0 {
		r.ids[c.ID] = n + 1
		c.ID = fmt.Sprintf("%s#%d", c.ID, n+1)
	} else {
		r.ids[c.ID] = 1
	}
	r.rep.Checks = append(r.rep.Checks, c)
	switch c.Status {
	case Pass:
		r.rep.Summary.Pass++
	case Warn:
		r.rep.Summary.Warn++
	default:
		r.rep.Summary.Fail++
	}
	if r.opts.OnCheck != nil {
		r.opts.OnCheck(c)
	}
}

func (r *runner) pass(id, name, detail string) {
	r.add(Check{ID: id, Name: name, Status: Pass, Detail: detail})
}

func (r *runner) warn(id, name, detail, fix string) {
	r.add(Check{ID: id, Name: name, Status: Warn, Detail: detail, Fix: fix})
}

func (r *runner) fail(id, name, detail, fix string) {
	r.add(Check{ID: id, Name: name, Status: Fail, Detail: detail, Fix: fix})
}

// WriteJSON writes the report as one JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// WriteText writes every check and the summary as WriteCheck and
// WriteSummary do.
func (rep *Report) WriteText(w io.Writer) {
	for _, c := range rep.Checks {
		WriteCheck(w, c)
	}
	WriteSummary(w, rep.Summary)
}

// WriteCheck writes one check for a terminal:
//
//	PASS  certificate: loaded gateway.pem …
//	      more detail
//	      fix: …
func WriteCheck(w io.Writer, c Check) {
	const indent = "      "
	lines := strings.Split(strings.TrimRight(c.Detail, "\n"), "\n")
	fmt.Fprintf(w, "%-4s  %s: %s\n", c.Status, c.Name, lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
	if c.Fix != "" {
		fix := strings.Split(strings.TrimRight(c.Fix, "\n"), "\n")
		fmt.Fprintf(w, "%sfix: %s\n", indent, fix[0])
		for _, l := range fix[1:] {
			fmt.Fprintf(w, "%s     %s\n", indent, l)
		}
	}
}

// WriteSummary writes the closing count.
func WriteSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "\n%s: %d passed, %s, %d failed\n", plural(s.Total(), "check"), s.Pass, plural(s.Warn, "warning"), s.Fail)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
