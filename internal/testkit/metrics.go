package testkit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CounterValue returns the value of the counter series name{labels} that g
// gathers. labels are all the series' labels, nil for a series without
// any; it fails t if g has no such series, or the metric is no counter.
func CounterValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	return series(t, g, name, dto.MetricType_COUNTER, labels).GetCounter().GetValue()
}

// GaugeValue is CounterValue for a gauge.
func GaugeValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	return series(t, g, name, dto.MetricType_GAUGE, labels).GetGauge().GetValue()
}

// HistogramCount returns the number of observations of the histogram
// series name{labels}, failing t as CounterValue does.
func HistogramCount(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	return series(t, g, name, dto.MetricType_HISTOGRAM, labels).GetHistogram().GetSampleCount()
}

// series returns the series of the metric name, of type typ, whose labels
// are exactly labels.
func series(t testing.TB, g prometheus.Gatherer, name string, typ dto.MetricType, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if mf.GetType() != typ {
			t.Fatalf("%s is a %v, want a %v", name, mf.GetType(), typ)
		}
		var have []string
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return m
			}
			have = append(have, seriesName(name, got))
		}
		t.Fatalf("no series %s; %s has %s", seriesName(name, labels), name, strings.Join(have, ", "))
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// seriesName writes a series as the exposition format does: name{k="v",…}.
func seriesName(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		pairs = append(pairs, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}
