// Command benchtool holds the small measuring tools of bench/run.sh. Each
// subcommand prints one JSON line on stdout (latencies in milliseconds):
//
//	benchtool freeport                      a free loopback TCP port
//	benchtool wrkparse FILE                 requests/s, p50/p99 and errors of a `wrk --latency` output
//	benchtool metric URL NAME[{filter}]...  the sum of a Prometheus metric's samples (whose labels contain filter)
//	benchtool rate  -url U -token T -rate R -duration D
//	                                        open-loop load at a constant rate: every latency recorded, exact percentiles
//	benchtool users -url U -control C -n N -c K
//	                                        N distinct fresh user tokens, one first request each, K at a time
//	benchtool burst -url U -control C -n N  N concurrent requests released at once with one fresh token
//	benchtool tokens -control C -n N        N fresh tokens, one per line (for wrk scripts)
//	benchtool goproxy -listen A -upstream U a bare httputil.ReverseProxy (the gateway's
//	                                        transport, no authentication): a reference target
//	benchtool syncproxy -listen A -upstream U
//	                                        the gateway's proxy on its fast leg (proxy.LegFast)
//	                                        and nothing else: the bare synchronous-leg reference
//	benchtool minsync -listen A -upstream U the least a synchronous leg can do (no header rules,
//	                                        no timeouts, no failure handling): a floor, not a proxy
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/obo-gateway/obo-gateway/internal/proxy"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: benchtool freeport|wrkparse|metric|rate|users|burst|tokens|goproxy|syncproxy|minsync ...")
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "freeport":
		err = freeport()
	case "wrkparse":
		err = wrkparse(args)
	case "metric":
		err = metric(args)
	case "rate":
		err = rate(args)
	case "users":
		err = users(args)
	case "burst":
		err = burst(args)
	case "tokens":
		err = tokensCmd(args)
	case "goproxy":
		err = goproxy(args)
	case "syncproxy":
		err = syncproxy(args)
	case "minsync":
		err = minsync(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fatalf("benchtool %s: %v", os.Args[1], err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

func freeport() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// ---- wrk output ----

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reTotal    = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(ms|s|m)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSockErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	rePct      = regexp.MustCompile(`(?m)^\s+(50|75|90|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	unitMillis = map[string]float64{"us": 0.001, "ms": 1, "s": 1000, "m": 60000}
)

type wrkResult struct {
	RPS          float64 `json:"rps"`
	Requests     int64   `json:"requests"`
	P50          float64 `json:"p50_ms"`
	P75          float64 `json:"p75_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Non2xx       int64   `json:"non2xx"`
	SocketErrors int64   `json:"socket_errors"`
	// Errors is non-2xx/3xx responses plus socket errors: a run with any is not clean.
	Errors int64 `json:"errors"`
}

func wrkparse(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: wrkparse FILE")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	s := string(b)
	var r wrkResult
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%s: no Requests/sec line: is this wrk output?", args[0])
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := reTotal.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSockErr.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.SocketErrors += n
		}
	}
	pcts := rePct.FindAllStringSubmatch(s, -1)
	if len(pcts) < 4 {
		return fmt.Errorf("%s: no latency distribution: was wrk run with --latency?", args[0])
	}
	for _, p := range pcts {
		v, _ := strconv.ParseFloat(p[2], 64)
		v *= unitMillis[p[3]]
		switch p[1] {
		case "50":
			r.P50 = v
		case "75":
			r.P75 = v
		case "90":
			r.P90 = v
		case "99":
			r.P99 = v
		}
	}
	r.Errors = r.Non2xx + r.SocketErrors
	return printJSON(r)
}

// ---- Prometheus text ----

// metric prints {"NAME{filter}": sum, ...}: the sum of the samples of each
// metric whose label set contains filter (e.g. result="success"), 0 if none.
func metric(args []string) error {
	if len(args) < 2 {
		return errors.New(`usage: metric URL NAME[{label="value",...}]...`)
	}
	resp, err := httpClient(10*time.Second, 4).Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	out := map[string]float64{}
	for _, q := range args[1:] {
		name, filter, _ := strings.Cut(q, "{")
		filters := strings.Split(strings.TrimSuffix(filter, "}"), ",")
		sum := 0.0
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
				continue
			}
			rest := line[len(name):]
			labels := ""
			switch {
			case strings.HasPrefix(rest, "{"):
				end := strings.LastIndex(rest, "}")
				if end < 0 {
					continue
				}
				labels, rest = rest[1:end], rest[end+1:]
			case strings.HasPrefix(rest, " "):
			default:
				continue // another metric sharing the prefix
			}
			ok := true
			for _, f := range filters {
				if f != "" && !strings.Contains(labels, f) {
					ok = false
				}
			}
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				sum += v
			}
		}
		out[q] = sum
	}
	return printJSON(out)
}

// ---- HTTP helpers ----

func httpClient(timeout time.Duration, conns int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get sends one GET with the bearer token and reads the whole answer.
func get(c *http.Client, url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// fetchTokens gets n fresh user tokens from benchenv's control listener.
func fetchTokens(control string, n int) ([]string, error) {
	resp, err := httpClient(10*time.Minute, 1).Get(fmt.Sprintf("%s/tokens?n=%d", strings.TrimSuffix(control, "/"), n))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("tokens: %s: %s", resp.Status, b)
	}
	toks := make([]string, 0, n)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(toks) != n {
		return nil, fmt.Errorf("tokens: got %d of %d", len(toks), n)
	}
	return toks, nil
}

func tokensCmd(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ContinueOnError)
	control := fs.String("control", "", "benchenv control URL")
	n := fs.Int("n", 1, "tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	toks, err := fetchTokens(*control, *n)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for _, t := range toks {
		w.WriteString(t + "\n")
	}
	return w.Flush()
}

// ---- latency statistics ----

type latencyStats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// stats computes exact percentiles (nearest rank) of ds.
func stats(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latencyStats{
		Count: len(s), P50: rank(50), P90: rank(90), P99: rank(99), P999: rank(99.9),
		Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s))),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/1e3) / 1e3 }

// ---- open-loop constant rate ----

type rateResult struct {
	URL          string  `json:"url"`
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"` // requests sent / time to send them
	Sent         int     `json:"sent"`
	OK           int64   `json:"ok"`
	Non2xx       int64   `json:"non2xx"`
	Errors       int64   `json:"errors"` // transport errors and timeouts
	// NotOK counts the answers other than 2xx by status ("503": 12), so
	// that shedding under overload is told from failures.
	NotOK   map[string]int `json:"not_ok,omitempty"`
	Latency latencyStats   `json:"latency"`
	// Lateness is how late requests left against their schedule (the
	// generator's own lag on a busy machine); latency is timed from the
	// actual send.
	Lateness latencyStats `json:"lateness"`
}

func rate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	token := fs.String("token", "", "bearer token")
	perSec := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up at the same rate, not recorded")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	conns := fs.Int("conns", 64, "connections to the target at most; a request finding them all busy waits for one (its wait counts in its latency)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *perSec <= 0 || *conns <= 0 {
		return errors.New("-url, a positive -rate and a positive -conns are required")
	}
	c := &fasthttp.Client{
		MaxConnsPerHost:          *conns,
		MaxConnWaitTimeout:       *timeout,
		ReadTimeout:              *timeout,
		WriteTimeout:             *timeout,
		MaxIdleConnDuration:      90 * time.Second,
		NoDefaultUserAgentHeader: true,
	}
	if *warm > 0 {
		openLoop(c, *url, *token, *perSec, *warm, *timeout)
	}
	r := openLoop(c, *url, *token, *perSec, *dur, *timeout)
	return printJSON(r)
}

// openLoop sends requests at a constant rate regardless of how many are in
// flight (one goroutine each), and records every latency, from the moment
// the request is handed to the client: a wait for a free connection
// counts. The connections are bounded (-conns), as wrk2's are: without a
// bound, the client opens a connection for every request that finds the
// others busy, about a thousand in the first half second against a target
// that has not yet warmed up, which measures a connection storm rather
// than the latency at a rate. It sends with
// fasthttp's client rather than net/http's: on two shared cores the sender
// competes with the target for CPU, and net/http's client costs about as
// much per request as the proxy being measured (its transport hands every
// request to a connection's goroutines), so the target would get well
// under the load's share of the machine that wrk, written in C, leaves it.
func openLoop(c *fasthttp.Client, url, token string, perSec float64, dur, timeout time.Duration) rateResult {
	n := int(perSec * dur.Seconds())
	interval := time.Duration(float64(time.Second) / perSec)
	lat := make([]time.Duration, n)
	late := make([]time.Duration, n)
	codes := make([]int, n)
	var ok, non2xx, errs atomic.Int64
	var wg sync.WaitGroup
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	start := time.Now().Add(20 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		late[i] = max(time.Since(at), 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			t0 := time.Now()
			err := c.DoTimeout(req, resp, timeout)
			lat[i] = time.Since(t0)
			switch code := resp.StatusCode(); {
			case err != nil:
				errs.Add(1)
			case code >= 200 && code < 300:
				ok.Add(1)
			default:
				non2xx.Add(1)
				codes[i] = code
			}
		}()
	}
	sendTime := time.Since(start)
	wg.Wait()
	var notOK map[string]int
	for _, code := range codes {
		if code != 0 {
			if notOK == nil {
				notOK = map[string]int{}
			}
			notOK[strconv.Itoa(code)]++
		}
	}
	return rateResult{
		URL: url, TargetRate: perSec, AchievedRate: math.Round(float64(n) / sendTime.Seconds()),
		Sent: n, OK: ok.Load(), Non2xx: non2xx.Load(), Errors: errs.Load(), NotOK: notOK,
		Latency: stats(lat), Lateness: stats(late),
	}
}

// ---- distinct users (cold path, cache fill) ----

type usersResult struct {
	URL         string         `json:"url"`
	Users       int            `json:"users"`
	Concurrency int            `json:"concurrency"`
	OK          int64          `json:"ok"`
	Non2xx      int64          `json:"non2xx"`
	Errors      int64          `json:"errors"`
	Statuses    map[string]int `json:"statuses"`
	WallSeconds float64        `json:"wall_s"`
	PerSecond   float64        `json:"per_s"` // first requests (so exchanges) completed per second
	Latency     latencyStats   `json:"latency"`
	MintSeconds float64        `json:"mint_s"` // time to get the tokens (not part of the measurement)
}

func users(args []string) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	control := fs.String("control", "", "benchenv control URL (tokens)")
	n := fs.Int("n", 500, "distinct users (fresh tokens)")
	conc := fs.Int("c", 16, "requests in flight")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0 := time.Now()
	toks, err := fetchTokens(*control, *n)
	if err != nil {
		return err
	}
	mint := time.Since(t0)
	c := httpClient(*timeout, *conc)
	lat := make([]time.Duration, len(toks))
	codes := make([]int, len(toks))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(toks) {
					return
				}
				t := time.Now()
				code, err := get(c, *url, toks[i])
				lat[i] = time.Since(t)
				if err != nil {
					code = -1
				}
				codes[i] = code
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	r := usersResult{URL: *url, Users: len(toks), Concurrency: *conc, Statuses: map[string]int{},
		WallSeconds: round3(wall.Seconds()), PerSecond: math.Round(float64(len(toks))/wall.Seconds()*10) / 10,
		Latency: stats(lat), MintSeconds: round3(mint.Seconds())}
	countCodes(codes, &r.OK, &r.Non2xx, &r.Errors, r.Statuses)
	return printJSON(r)
}

func countCodes(codes []int, ok, non2xx, errs *int64, statuses map[string]int) {
	for _, c := range codes {
		switch {
		case c < 0:
			*errs++
			statuses["error"]++
		case c >= 200 && c < 300:
			*ok++
			statuses[strconv.Itoa(c)]++
		default:
			*non2xx++
			statuses[strconv.Itoa(c)]++
		}
	}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// ---- burst ----

type burstResult struct {
	URL      string         `json:"url"`
	N        int            `json:"n"`
	OK       int64          `json:"ok"`
	Non2xx   int64          `json:"non2xx"`
	Errors   int64          `json:"errors"`
	Statuses map[string]int `json:"statuses"`
	// Spread is the time between the first and the last request leaving.
	SpreadMS float64      `json:"spread_ms"`
	Latency  latencyStats `json:"latency"`
}

func burst(args []string) error {
	fs := flag.NewFlagSet("burst", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	control := fs.String("control", "", "benchenv control URL (tokens)")
	n := fs.Int("n", 200, "concurrent requests")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	toks, err := fetchTokens(*control, 1)
	if err != nil {
		return err
	}
	c := httpClient(*timeout, *n)
	// Open n connections first (an unauthenticated request each, answered
	// 401 without any exchange), so the burst is not spread by dialling.
	var wg sync.WaitGroup
	for range *n {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = get(c, *url, "") }()
	}
	wg.Wait()

	release := make(chan struct{})
	lat := make([]time.Duration, *n)
	sent := make([]time.Time, *n)
	codes := make([]int, *n)
	var ready sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, *url, nil)
			req.Header.Set("Authorization", "Bearer "+toks[0])
			ready.Done()
			<-release
			sent[i] = time.Now()
			resp, err := c.Do(req)
			if err != nil {
				codes[i] = -1
				lat[i] = time.Since(sent[i])
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = time.Since(sent[i])
			codes[i] = resp.StatusCode
		}()
	}
	ready.Wait()
	close(release)
	wg.Wait()
	first, last := sent[0], sent[0]
	for _, t := range sent {
		if t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	r := burstResult{URL: *url, N: *n, Statuses: map[string]int{}, SpreadMS: ms(last.Sub(first)), Latency: stats(lat)}
	countCodes(codes, &r.OK, &r.Non2xx, &r.Errors, r.Statuses)
	return printJSON(r)
}

// ---- reference proxies ----

// goproxy serves a bare httputil.ReverseProxy to upstream with the
// gateway's upstream transport: what Go's net/http costs as a reverse proxy
// on this machine, without anything the gateway adds.
func goproxy(args []string) error {
	listen, u, err := referenceFlags("goproxy", args)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: proxy.NewTransport(proxy.TransportConfig{}),
	}
	return serveReference(listen, rp)
}

// syncproxy serves the gateway's proxy on its fast leg (proxy.LegFast: the
// request written and the answer read on a pooled keep-alive HTTP/1.1
// connection in the handler's goroutine), with the gateway's upstream
// transport and nothing before it: no token, no authentication, no
// routing, metrics or access log. What the proxying alone costs on the
// fast leg: the bare synchronous-leg reference.
func syncproxy(args []string) error {
	listen, u, err := referenceFlags("syncproxy", args)
	if err != nil {
		return err
	}
	h := proxy.New(proxy.Config{Transport: proxy.NewTransport(proxy.TransportConfig{})}).
		Handler(proxy.Route{Name: "bench", PathPrefix: "/", Upstream: u, Leg: proxy.LegFast})
	return serveReference(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Forward(w, r, proxy.Forward{}) // the zero Forward: no upstream token, no secret
	}))
}

// minsync serves the least a synchronous upstream leg can do: the request
// line and the client's headers written as they came on a pooled
// keep-alive connection, the answer read with http.ReadResponse and copied
// back, in the handler's goroutine; no header rules, no forwarding
// headers, no timeouts, no failure handling, no request body. Not a proxy
// to use: the floor against which the cost of the fast leg's rules is
// read (docs/performance.md).
func minsync(args []string) error {
	listen, u, err := referenceFlags("minsync", args)
	if err != nil {
		return err
	}
	type conn struct {
		c  net.Conn
		br *bufio.Reader
		bw *bufio.Writer
	}
	var mu sync.Mutex
	var idle []*conn
	bufs := sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	return serveReference(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		var c *conn
		if n := len(idle); n > 0 {
			c, idle = idle[n-1], idle[:n-1]
		}
		mu.Unlock()
		if c == nil {
			nc, err := net.Dial("tcp", u.Host)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			c = &conn{c: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
		}
		c.bw.WriteString(r.Method + " " + r.URL.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
		for k, vv := range r.Header {
			for _, v := range vv {
				c.bw.WriteString(k + ": " + v + "\r\n")
			}
		}
		c.bw.WriteString("\r\n")
		resp, err := func() (*http.Response, error) {
			if err := c.bw.Flush(); err != nil {
				return nil, err
			}
			return http.ReadResponse(c.br, r)
		}()
		if err != nil {
			c.c.Close()
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		for k, vv := range resp.Header {
			w.Header()[k] = vv
		}
		w.WriteHeader(resp.StatusCode)
		bp := bufs.Get().(*[]byte)
		_, err = io.CopyBuffer(w, resp.Body, *bp)
		bufs.Put(bp)
		resp.Body.Close()
		if err != nil || resp.Close {
			c.c.Close()
			return
		}
		mu.Lock()
		idle = append(idle, c)
		mu.Unlock()
	}))
}

// referenceFlags parses the flags of a reference proxy: -listen and an
// absolute -upstream URL.
func referenceFlags(name string, args []string) (string, *url.URL, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	upstream := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(*upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("-upstream %q: an absolute http or https URL is required", *upstream)
	}
	return *listen, u, nil
}

// serveReference serves h on listen with the same net/http server settings
// for every reference proxy, so that they differ only in their upstream leg.
func serveReference(listen string, h http.Handler) error {
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.ListenAndServe()
}
