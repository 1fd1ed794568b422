package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// failures is a testing.TB that records what would fail a test: Fatal
// ends the goroutine it runs in (fatal runs one), Error only records.
type failures struct {
	testing.TB
	fatal  string
	errors []string
}

func (f *failures) Helper() {}
func (f *failures) Fatal(args ...any) {
	f.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *failures) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *failures) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// run runs fn with a failures of its own, in a goroutine of its own.
func run(t *testing.T, fn func(tb testing.TB)) *failures {
	f := &failures{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

// fatal runs fn and returns the message it failed with, failing t if fn
// did not fail.
func fatal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := run(t, fn)
	if f.fatal == "" {
		t.Error("it did not fail")
	}
	return f.fatal
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("first", "n", 1)
	log.Info("second")
	log.Info("first", "n", 2)
	if n := len(b.Lines(t)); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	if got := b.All(t, "first"); len(got) != 2 || got[1]["n"] != 2.0 || got[1].Num("n") != 2 {
		t.Errorf("All(first) = %v", got)
	}
	if got := b.Only(t, "second"); got.Str("msg") != "second" {
		t.Errorf("Only(second) = %v", got)
	}
	if msg := fatal(t, func(tb testing.TB) { b.Only(tb, "first") }); !strings.Contains(msg, "2 log lines") {
		t.Errorf("Only(first) of two failed with %q", msg)
	}
}

// A stream that is not all JSON (a usage text, a line still being
// written): Records, Find and Wait skip the rest, Lines refuses it.
func TestSyncBufferMixed(t *testing.T) {
	var b SyncBuffer
	fmt.Fprintln(&b, "Usage of gateway:")
	fmt.Fprintln(&b, `{"msg":"a","n":1}`)
	fmt.Fprintln(&b, `["not","an","object"]`)
	fmt.Fprintln(&b, "null")
	fmt.Fprint(&b, `{"msg":"b"}`) // not ended yet
	if got := b.Records(); len(got) != 1 || got[0].Str("msg") != "a" || got[0].Num("n") != 1 {
		t.Errorf("Records = %v, want the one ended JSON object", got)
	}
	if got := b.Find(Msg("b")); len(got) != 0 {
		t.Errorf("Find(b) = %v, want nothing before the line ends", got)
	}
	if msg := fatal(t, func(tb testing.TB) { b.Lines(tb) }); !strings.Contains(msg, "Usage of gateway:") {
		t.Errorf("Lines failed with %q, want it to name the usage line", msg)
	}
	fmt.Fprintln(&b)
	if got := b.Find(Msg("b")); len(got) != 1 {
		t.Errorf("Find(b) = %v, want the line once ended", got)
	}
	var r Record
	if r.Str("msg") != "" || r.Num("n") != 0 || (Record{"n": "x"}).Num("n") != 0 || (Record{"s": 1.0}).Str("s") != "" {
		t.Error("Str and Num of a missing key or another type are not empty")
	}
}

func TestSyncBufferWait(t *testing.T) {
	t.Run("a line written before", func(t *testing.T) {
		var b SyncBuffer
		fmt.Fprintln(&b, `{"msg":"ready"}`)
		if r, err := b.Wait(time.Minute, nil, Msg("ready")); err != nil || r.Str("msg") != "ready" {
			t.Errorf("Wait = %v, %v", r, err)
		}
	})
	t.Run("a line written after, in pieces", func(t *testing.T) {
		var b SyncBuffer
		go func() {
			fmt.Fprintln(&b, "not JSON")
			fmt.Fprint(&b, `{"msg":"ready",`)
			fmt.Fprintln(&b, `"n":7}`)
		}()
		if r, err := b.Wait(time.Minute, nil, Msg("ready")); err != nil || r.Num("n") != 7 {
			t.Errorf("Wait = %v, %v", r, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		var b SyncBuffer
		fmt.Fprintln(&b, `{"msg":"other"}`)
		if r, err := b.Wait(time.Millisecond, nil, Msg("ready")); err == nil || !strings.Contains(err.Error(), "within") {
			t.Errorf("Wait = %v, %v; want a timeout", r, err)
		}
	})
	t.Run("stop", func(t *testing.T) {
		var b SyncBuffer
		stop := make(chan struct{})
		close(stop)
		if r, err := b.Wait(time.Minute, stop, Msg("ready")); err == nil || !strings.Contains(err.Error(), "stopped") {
			t.Errorf("Wait = %v, %v; want stopped", r, err)
		}
		fmt.Fprintln(&b, `{"msg":"ready"}`)
		if r, err := b.Wait(time.Minute, stop, Msg("ready")); err != nil || r == nil {
			t.Errorf("Wait after the line, stopped = %v, %v; want the line", r, err)
		}
	})
}

func TestClosedAddr(t *testing.T) {
	addr := ClosedAddr(t)
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", addr)
	}
}

func TestSignJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"RS256", "PS256"} {
		tok := SignJWT(t, key, map[string]any{"alg": alg, "kid": "k1"}, map[string]any{"sub": "s", "n": 1})
		if h := JWTHeader(t, tok); h["alg"] != alg || h["kid"] != "k1" {
			t.Errorf("%s: header %v", alg, h)
		}
		if c := JWTClaims(t, tok); c["sub"] != "s" || c["n"] != 1.0 {
			t.Errorf("%s: claims %v", alg, c)
		}
		input, sig, _ := strings.Cut(tok[strings.Index(tok, ".")+1:], ".")
		input = tok[:strings.Index(tok, ".")] + "." + input
		raw, err := base64.RawURLEncoding.DecodeString(sig)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(input))
		if alg == "RS256" {
			err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], raw)
		} else {
			err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			t.Errorf("%s: the signature does not verify: %v", alg, err)
		}
	}
}

func TestB64JSON(t *testing.T) {
	if got := B64JSON(t, map[string]any{"alg": "RS256"}); got != "eyJhbGciOiJSUzI1NiJ9" {
		t.Errorf("B64JSON = %s", got)
	}
}

func TestErrorBody(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	body := `{"error":"invalid_token","error_description":"the token has expired","request_id":"r1"}` + "\n"
	f := run(t, func(tb testing.TB) {
		b := ErrorBody(tb, jsonHeader, body)
		if b["error"] != "invalid_token" || b["error_description"] != "the token has expired" || b["request_id"] != "r1" {
			t.Errorf("ErrorBody = %v", b)
		}
		ErrorBody(tb, jsonHeader, []byte(body))
	})
	if f.fatal != "" || len(f.errors) != 0 {
		t.Errorf("a JSON error body failed: %q %q", f.fatal, f.errors)
	}
	for name, b := range map[string]string{
		"not JSON":        "upstream said no",
		"not all strings": `{"error":"x","status":500}`,
		"no error":        `{"error_description":"x"}`,
	} {
		if msg := fatal(t, func(tb testing.TB) { ErrorBody(tb, jsonHeader, b) }); !strings.Contains(msg, fmt.Sprintf("%q", b)) {
			t.Errorf("%s: failed with %q, want the body in it", name, msg)
		}
	}
	f = run(t, func(tb testing.TB) { ErrorBody(tb, http.Header{"Content-Type": {"text/plain"}}, body) })
	if f.fatal != "" || len(f.errors) != 1 || !strings.Contains(f.errors[0], "text/plain") {
		t.Errorf("a text/plain answer: fatal %q, errors %q; want one error naming the type", f.fatal, f.errors)
	}
}

func TestMetricValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"route", "code"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"route"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("orders", "200").Add(3)
	c.WithLabelValues("orders", "500").Inc()
	g.Set(2)
	h.WithLabelValues("orders").Observe(1)
	h.WithLabelValues("orders").Observe(2)
	h.WithLabelValues("hr")

	if v := CounterValue(t, reg, "c_total", map[string]string{"route": "orders", "code": "200"}); v != 3 {
		t.Errorf("c_total{orders,200} = %v, want 3", v)
	}
	if v := GaugeValue(t, reg, "g", nil); v != 2 {
		t.Errorf("g = %v, want 2", v)
	}
	if n := HistogramCount(t, reg, "h_seconds", map[string]string{"route": "orders"}); n != 2 {
		t.Errorf("h_seconds{orders} count = %d, want 2", n)
	}
	if n := HistogramCount(t, reg, "h_seconds", map[string]string{"route": "hr"}); n != 0 {
		t.Errorf("h_seconds{hr} count = %d, want 0", n)
	}
	for _, tc := range []struct {
		name string
		fn   func(tb testing.TB)
		want string
	}{
		{"labels a subset", func(tb testing.TB) { CounterValue(tb, reg, "c_total", map[string]string{"route": "orders"}) },
			`no series c_total{route="orders"}; c_total has c_total{code="200",route="orders"}, c_total{code="500",route="orders"}`},
		{"no such metric", func(tb testing.TB) { GaugeValue(tb, reg, "nope", nil) }, "no metric nope"},
		{"another type", func(tb testing.TB) { GaugeValue(tb, reg, "c_total", nil) }, "c_total is a COUNTER, want a GAUGE"},
	} {
		if msg := fatal(t, tc.fn); msg != tc.want {
			t.Errorf("%s: failed with %q, want %q", tc.name, msg, tc.want)
		}
	}
}

func TestClock(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	c := NewClock(start)
	if !c.Now().Equal(start) {
		t.Errorf("Now = %v, want %v", c.Now(), start)
	}
	c.Advance(time.Minute)
	if want := start.Add(time.Minute); !c.Now().Equal(want) {
		t.Errorf("Now after Advance = %v, want %v", c.Now(), want)
	}
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := string(ReadFile(t, path)); got != "content" {
		t.Errorf("ReadFile = %q", got)
	}
	if msg := fatal(t, func(tb testing.TB) { ReadFile(tb, path+".missing") }); !strings.Contains(msg, "f.missing") {
		t.Errorf("ReadFile of a missing file failed with %q", msg)
	}
}
