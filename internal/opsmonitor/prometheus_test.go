package opsmonitor

// A real Prometheus (Debian's package) for the tests: started on a random
// loopback port with a generated configuration, killed when the test ends;
// and promtool.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	promStartTimeout = 30 * time.Second // Prometheus answering /-/ready
	promAttempts     = 3                // ports tried when another process takes ours first
	pollEvery        = 250 * time.Millisecond
	promJob          = "obo-gateway"
)

// requireTool returns the path of an installed Prometheus binary. Where it is
// not installed the test skips, or fails when CI=true (CI installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed: apt-get install prometheus (Debian's package provides prometheus and promtool)", name)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true: failing instead of skipping")
	}
	t.Skip(msg)
	return ""
}

// prometheus is a running Prometheus.
type prometheus struct {
	url    string
	client *http.Client
	log    *testkit.SyncBuffer
}

// promConfig scrapes target's /metrics every second and evaluates the rules
// of rulesFile every second.
func promConfig(target, rulesFile string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %q
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, rulesFile, promJob, target)
}

// startPrometheus starts bin scraping target (host:port) with the rules of
// rulesFile, and more command-line flags, and waits until it is ready.
func startPrometheus(t *testing.T, bin, target, rulesFile string, flags ...string) *prometheus {
	t.Helper()
	abs, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(promConfig(target, abs)), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastLog string
	for attempt := range promAttempts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		p := &prometheus{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}, log: &testkit.SyncBuffer{}}
		cmd := exec.Command(bin, append([]string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}, flags...)...)
		cmd.Stdout, cmd.Stderr = p.log, p.log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		stop := func() {
			_ = cmd.Process.Kill() // our own child, by its PID
			<-exited
		}
		ok := p.waitReady(exited)
		if ok {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("Prometheus's log:\n%s", p.log.String())
				}
			})
			return p
		}
		stop()
		lastLog = p.log.String()
		if !strings.Contains(lastLog, "address already in use") {
			break
		}
	}
	t.Fatalf("Prometheus did not become ready within %v; its log:\n%s", promStartTimeout, lastLog)
	return nil
}

// waitReady polls /-/ready until it answers 200, the process exits or the
// start timeout passes.
func (p *prometheus) waitReady(exited <-chan struct{}) bool {
	deadline := time.Now().Add(promStartTimeout)
	for time.Now().Before(deadline) {
		resp, err := p.client.Get(p.url + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(pollEvery):
		}
	}
	return false
}

// apiResponse is the envelope of Prometheus's HTTP API.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// errBadQuery is a query Prometheus refuses: retrying will not help.
var errBadQuery = errors.New("prometheus refused the query")

func (p *prometheus) get(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	u := p.url + path
	if params != nil {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, not JSON: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		if r.ErrorType == "bad_data" {
			return nil, fmt.Errorf("%w: %s", errBadQuery, r.Error)
		}
		return nil, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// query runs an instant query and returns how many series (or values) it
// returned.
func (p *prometheus) query(ctx context.Context, expr string) (int, error) {
	data, err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, err
	}
	switch d.ResultType {
	case "vector", "matrix":
		var series []json.RawMessage
		if err := json.Unmarshal(d.Result, &series); err != nil {
			return 0, err
		}
		return len(series), nil
	default: // scalar, string: always a value
		return 1, nil
	}
}

// ruleGroup is a group of /api/v1/rules.
type ruleGroup struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Rules []struct {
		Name           string `json:"name"`
		Query          string `json:"query"`
		Type           string `json:"type"`
		Health         string `json:"health"`
		LastError      string `json:"lastError"`
		LastEvaluation string `json:"lastEvaluation"`
	} `json:"rules"`
}

func (p *prometheus) rules(ctx context.Context) ([]ruleGroup, error) {
	data, err := p.get(ctx, "/api/v1/rules", nil)
	if err != nil {
		return nil, err
	}
	var d struct {
		Groups []ruleGroup `json:"groups"`
	}
	err = json.Unmarshal(data, &d)
	return d.Groups, err
}

// probe is a query that must return data.
type probe struct {
	what, expr string
}

// pollProbes queries each probe until it returns data or the deadline
// passes, and reports the probes that never did. A query Prometheus refuses
// fails at once.
func (p *prometheus) pollProbes(t *testing.T, deadline time.Time, probes []probe) {
	t.Helper()
	left := map[int]bool{}
	for i := range probes {
		left[i] = true
	}
	lastErr := map[int]error{}
	for {
		for i := range probes {
			if !left[i] {
				continue
			}
			ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(5*time.Second))
			n, err := p.query(ctx, probes[i].expr)
			cancel()
			switch {
			case errors.Is(err, errBadQuery):
				t.Errorf("%s: %v\n  query: %s", probes[i].what, err, probes[i].expr)
				delete(left, i)
			case err != nil:
				lastErr[i] = err
			case n > 0:
				t.Logf("ok (%d series): %s", n, probes[i].what)
				delete(left, i)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery) // polling Prometheus until the data appears
	}
	for i := range probes {
		if left[i] {
			t.Errorf("%s: no data by the deadline (last error: %v)\n  query: %s", probes[i].what, lastErr[i], probes[i].expr)
		}
	}
}

// promtool runs promtool with args (and stdin), and returns its combined output.
func promtool(bin string, stdin []byte, dir string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// hostPort returns the host:port of a URL.
func hostPort(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, port, err := net.SplitHostPort(pu.Host); err != nil || port == "" {
		t.Fatalf("%s has no port", u)
	} else if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("%s: port %q", u, port)
	}
	return pu.Host
}
