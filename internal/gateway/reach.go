package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// tokenEndpoint knows whether the gateway can reach Entra's token endpoint
// at all: one probe at start, another after a run of exchanges that got no
// answer, and probes with a growing pause while it cannot. Until a probe
// answers, readiness says why not: a gateway that cannot reach the token
// endpoint cannot serve a user whose token is not cached, and an operator
// should learn that from /readyz at deploy time, not from the first
// user's 503.
//
// Reached means any HTTP answer: the probe is a GET, which the token
// endpoint refuses (it takes POSTs), and that refusal is the proof. An
// Entra that answers 429 or 5xx is reached (unavailable, not unreachable),
// and stays ready: the users whose tokens are cached are still served.
type tokenEndpoint struct {
	url    string
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	gauge  prometheus.Gauge

	// failuresToProbe is how many exchanges in a row must get no answer
	// before a probe; pauseMin and pauseMax bound the pause between the
	// probes of an unreachable endpoint.
	failuresToProbe    int
	pauseMin, pauseMax time.Duration

	mu       sync.Mutex
	err      error     // nil: reached; else why not
	since    time.Time // when err began
	failures int       // exchanges in a row without an answer
	probing  bool
	ctx      context.Context
}

var errNotProbed = errors.New("not probed yet")

func newTokenEndpoint(ctx context.Context, url string, client *http.Client, log *slog.Logger, now func() time.Time, reg prometheus.Registerer) *tokenEndpoint {
	t := &tokenEndpoint{
		url: url, client: client, log: log, now: now,
		gauge: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "obo_gateway_entra_token_endpoint_reachable",
			Help: "1 when the last probe of Entra's token endpoint (at start, and after exchanges that got no answer) got an HTTP answer, else 0; /readyz is 503 while 0.",
		}),
		failuresToProbe: 3, pauseMin: 2 * time.Second, pauseMax: 30 * time.Second,
		err: errNotProbed, since: now(), ctx: ctx,
	}
	return t
}

// start probes in the background until the endpoint answers once.
func (t *tokenEndpoint) start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.startProbingLocked()
}

func (t *tokenEndpoint) startProbingLocked() {
	if t.probing {
		return
	}
	t.probing = true
	go t.probeUntilReached()
}

// Err is why the token endpoint is not known to be reachable, or nil.
func (t *tokenEndpoint) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.err {
	case nil:
		return nil
	case errNotProbed:
		return fmt.Errorf("Entra's token endpoint %s not probed yet", t.url)
	}
	return fmt.Errorf("cannot reach Entra's token endpoint %s since %s: %w", t.url, t.since.UTC().Format(time.RFC3339), t.err)
}

// probeUntilReached probes, then, while the endpoint cannot be reached,
// probes again after a pause that doubles up to pauseMax.
func (t *tokenEndpoint) probeUntilReached() {
	pause := t.pauseMin
	for {
		err := t.probe()
		t.mu.Lock()
		if err == nil {
			if t.err != nil && t.err != errNotProbed {
				t.log.Info("Entra's token endpoint is reachable again", "url", t.url, "unreachable_since", t.since)
			}
			t.err, t.failures, t.probing = nil, 0, false
			t.gauge.Set(1)
			t.mu.Unlock()
			return
		}
		if t.err == nil || t.err == errNotProbed {
			t.since = t.now()
			t.log.Error("cannot reach Entra's token endpoint: the gateway is not ready; exchanges for users without a cached token fail until it can",
				"url", t.url, "error", err.Error())
		}
		t.err = err
		t.gauge.Set(0)
		t.mu.Unlock()
		select {
		case <-t.ctx.Done():
			t.mu.Lock()
			t.probing = false
			t.mu.Unlock()
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, t.pauseMax)
	}
}

// probe sends one GET to the token endpoint; any HTTP answer is a success.
func (t *tokenEndpoint) probe() error {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// observe learns from an exchange's result: an answer from Entra (even a
// refusal) proves the endpoint reachable; a run of exchanges without one
// starts a probe.
func (t *tokenEndpoint) observe(err error) {
	var oe *obo.Error
	noAnswer := errors.As(err, &oe) && oe.Status == 0 && (oe.Timeout || oe.Unreachable() != "")
	t.mu.Lock()
	defer t.mu.Unlock()
	if !noAnswer {
		if err == nil || (oe != nil && oe.Status != 0) {
			t.failures = 0
		}
		return
	}
	t.failures++
	if t.failures >= t.failuresToProbe && t.err == nil {
		t.failures = 0
		t.startProbingLocked()
	}
}

// watchedExchanges passes exchanges to next and tells the token endpoint
// what came of them.
type watchedExchanges struct {
	next     TokenSource
	endpoint *tokenEndpoint
}

func (w watchedExchanges) Exchange(ctx context.Context, req obo.Request) (obo.Token, error) {
	tok, err := w.next.Exchange(ctx, req)
	if ctx.Err() == nil { // a caller that gave up says nothing about Entra
		w.endpoint.observe(err)
	}
	return tok, err
}
