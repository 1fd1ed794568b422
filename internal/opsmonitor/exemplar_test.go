package opsmonitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// TestLiveExemplars: with tracing on, a real Prometheus (exemplar storage
// on) scrapes the gateway's OpenMetrics exposition and stores exemplars
// that name the traces of the requests: a latency bucket leads to a trace.
func TestLiveExemplars(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	recv := tracingtest.Start(t)
	e := startEnvWith(t, false, func(c *config.Config) { c.Tracing.Endpoint = recv.HTTPEndpoint })

	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	traceID := hex.EncodeToString(b)
	for i := range 3 {
		req, err := http.NewRequest(http.MethodGet, e.apiURL+"/orders/items", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tokens["alice"])
		req.Header.Set("Traceparent", "00-"+traceID+"-"+strconv.FormatInt(int64(0x1000000000000000+i), 16)+"-01")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /orders/items: %d", resp.StatusCode)
		}
	}

	prom := startPrometheus(t, promBin, hostPort(t, e.adminURL), rulesFile, "--enable-feature=exemplar-storage")
	deadline := time.Now().Add(liveDeadline)
	for _, metric := range []string{
		"obo_gateway_http_request_duration_seconds_bucket",
		"obo_gateway_upstream_request_duration_seconds_bucket",
		"obo_gateway_obo_exchange_duration_seconds_bucket",
	} {
		var last string
		for {
			found, got, err := prom.exemplarOf(metric, traceID)
			if found {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = got
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus has no exemplar of trace %s on %s; last answer: %s", traceID, metric, last)
			}
			time.Sleep(pollEvery)
		}
	}
}

// exemplarOf reports whether Prometheus holds an exemplar of metric whose
// trace_id is traceID, and what it answered.
func (p *prometheus) exemplarOf(metric, traceID string) (bool, string, error) {
	now := time.Now()
	data, err := p.get(context.Background(), "/api/v1/query_exemplars", url.Values{
		"query": {metric}, "start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)},
	})
	if err != nil {
		return false, "", err
	}
	var series []struct {
		Exemplars []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	if err := json.Unmarshal(data, &series); err != nil {
		return false, string(data), err
	}
	for _, s := range series {
		for _, x := range s.Exemplars {
			if x.Labels["trace_id"] == traceID && len(x.Labels["span_id"]) == 16 {
				return true, "", nil
			}
		}
	}
	return false, string(data), nil
}
