// Package opsmonitor holds no code, only tests: they keep the operations
// material in step with the gateway. The Grafana dashboard
// (deploy/grafana/obo-gateway.json), the Prometheus alerting rules
// (deploy/prometheus/obo-gateway-rules.yaml and their promtool unit tests)
// and the metric reference of docs/operations.md are checked against the
// live /metrics of a gateway running on loopback (against the local tenant,
// fakeentra, over HTTPS) and against a real Prometheus scraping it: a
// gateway with a certificate, and one without (workload identity) for the
// credential's own metrics, readiness and alerts.
//
// The tests that need Prometheus skip where it is not installed
// (apt-get install prometheus), and fail instead when CI=true.
package opsmonitor
