package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHopByHopHeaders(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testHopByHopHeaders(t, leg) })
}

func testHopByHopHeaders(t *testing.T, leg Leg) {
	up, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Bar")
		h.Set("X-Bar", "hop")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("X-Keep", "end-to-end")
		_, _ = io.WriteString(w, "ok")
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp, _ := g.raw(t, "GET /orders/1 HTTP/1.1\r\n"+
		"Host: gw.example\r\n"+
		"Connection: close, X-Foo\r\n"+
		"X-Foo: listed-in-connection\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: trailers, deflate\r\n"+
		"Trailer: X-Checksum\r\n"+
		"Upgrade: h2c\r\n"+ // not listed in Connection: not an upgrade
		"traceparent: "+traceparent+"\r\n"+
		"tracestate: vendor=opaque\r\n"+
		"X-Request-Id: client-id-1\r\n"+
		"\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}

	got := receive(t, seen).Header
	for _, name := range []string{"X-Foo", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Trailer", "Upgrade", "Connection"} {
		if v, ok := got[name]; ok {
			t.Errorf("hop-by-hop %s = %q reached the upstream", name, v)
		}
	}
	want := map[string]string{
		"Te":           "trailers", // ReverseProxy keeps only this one
		"Traceparent":  traceparent,
		"Tracestate":   "vendor=opaque",
		"X-Request-Id": requestID, // the request's ID (its context's), whatever the client sent
	}
	for name, w := range want {
		if v := got.Values(name); len(v) != 1 || v[0] != w {
			t.Errorf("%s = %q, want %q", name, v, w)
		}
	}
	if v, ok := resp.Header["X-Bar"]; ok {
		t.Errorf("response header X-Bar = %q, listed in Connection, reached the client", v)
	}
	if v := resp.Header.Get("X-Keep"); v != "end-to-end" {
		t.Errorf("response X-Keep = %q, want it kept", v)
	}
}

// A protocol upgrade (WebSocket) on a route that allows it is relayed as
// ReverseProxy defines it, with the route timeout's body wrapper in the
// path. A fast route hands it to the standard leg.
func TestUpgrade(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testUpgrade(t, leg) })
}

func testUpgrade(t *testing.T, leg Leg) {
	up, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	})
	rt := ordersRoute(mustURL(t, up.URL))
	rt.Timeout = time.Minute
	rt.WebSocket = true
	g := newGateway(t, rt, setup{leg: leg, crossLeg: true})

	conn, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = io.WriteString(conn, "GET /orders/ws HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Authorization: Bearer "+userToken+"\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("read %q, %v; want the upstream's echo", line, err)
	}

	got := receive(t, seen)
	if got.Header.Get("Connection") != "Upgrade" || got.Header.Get("Authorization") != "Bearer "+downstreamToken {
		t.Errorf("upstream headers = %v, want Connection: Upgrade and the downstream token", got.Header)
	}
	if strings.Contains(got.Dump, userToken) {
		t.Error("the user's token reached the upstream")
	}
	conn.Close()
	if o := g.outcome(t); o.Status != http.StatusSwitchingProtocols {
		t.Errorf("outcome = %+v, want status 101", o)
	}
	if n := g.dials(LegFast); n != 0 {
		t.Errorf("the fast leg opened %d connections for an upgrade", n)
	}
}

// A 64 MiB request body flows through without being buffered: the upstream
// receives its start while the client has sent only the first MiB.
func TestRequestBodyIsStreamed(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testRequestBodyIsStreamed(t, leg) })
}

func testRequestBodyIsStreamed(t *testing.T, leg Leg) {
	const (
		total = 64 << 20
		chunk = 1 << 20
	)
	started := make(chan struct{})
	received := make(chan int64, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			if n == 0 && k > 0 {
				close(started)
			}
			n += int64(k)
			if err != nil {
				break
			}
		}
		received <- n
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(up.Close)
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})

	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := func() error {
			data := bytes.Repeat([]byte("x"), chunk)
			if _, err := pw.Write(data); err != nil {
				return err
			}
			select {
			case <-started:
			case <-time.After(30 * time.Second): // a failsafe, not a wait
				return errors.New("the upstream received nothing while the client was still sending: the body was buffered")
			}
			for n := chunk; n < total; n += chunk {
				if _, err := pw.Write(data); err != nil {
					return err
				}
			}
			return nil
		}()
		pw.CloseWithError(err) // nil: EOF
		sent <- err
	}()

	req, _ := http.NewRequest(http.MethodPut, g.URL+"/orders/upload", pr)
	resp, _ := g.do(t, req)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status = %d, want 204", resp.StatusCode)
	}
	if n := <-received; n != total {
		t.Errorf("upstream received %d bytes, want %d", n, total)
	}
}

// Server-sent events are flushed as they come, and the route timeout,
// stopped when the headers arrived, does not cut the stream.
func TestServerSentEventsAreFlushed(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
			if i == 3 {
				return
			}
			// Wait until the test has read this event through the proxy.
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	clock := newFakeClock()
	rt := ordersRoute(mustURL(t, up.URL))
	rt.Timeout = 5 * time.Second
	rt.Leg = LegStandard // the fake clock drives the standard leg's route timer
	g := newGateway(t, rt, setup{tweak: func(p *Proxy) { p.afterFunc = clock.afterFunc }})

	resp, err := g.client.Get(g.URL + "/orders/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	timer := clock.next(t)
	if timer.d != rt.Timeout {
		t.Errorf("timer set for %v, want the route timeout %v", timer.d, rt.Timeout)
	}
	events := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := events.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: read %q, %v", i, line, err)
		}
		if blank, _ := events.ReadString('\n'); blank != "\n" {
			t.Fatalf("event %d: no blank line after it, read %q", i, blank)
		}
		if i == 1 && timer.fire() {
			t.Fatal("the route timer was still running after the response headers arrived")
		}
		if i < 3 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
		t.Errorf("after the last event: %q, %v; want a clean end", rest, err)
	}
	if o := g.outcome(t); o.Status != http.StatusOK || o.Err != "" {
		t.Errorf("outcome = %+v, want 200 and no error", o)
	}
}

// A route timeout bounds the wait for the response headers only: a stream
// that goes on after it has passed is not cut. The test above drives the
// standard leg's timer with a fake clock; this one runs both legs on real
// time, as the fast leg bounds the wait with the connection's deadline.
func TestStreamOutlivesRouteTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	forEachLeg(t, func(t *testing.T, leg Leg) {
		read := make(chan struct{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			_, _ = io.WriteString(w, "data: event 1\n\n")
			if rc.Flush() != nil {
				return
			}
			select {
			case <-read:
			case <-r.Context().Done():
				return
			}
			// The route timeout passes, twice over, while the stream is
			// quiet.
			select {
			case <-time.After(2 * timeout):
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "data: event 2\n\n")
		}))
		t.Cleanup(up.Close)
		rt := ordersRoute(mustURL(t, up.URL))
		rt.Timeout = timeout
		g := newGateway(t, rt, setup{leg: leg})

		resp, err := g.client.Get(g.URL + "/orders/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		events := bufio.NewReader(resp.Body)
		if line, err := events.ReadString('\n'); err != nil || line != "data: event 1\n" {
			t.Fatalf("first event: read %q, %v", line, err)
		}
		_, _ = events.ReadString('\n')
		close(read)
		rest, err := io.ReadAll(events)
		if err != nil || string(rest) != "data: event 2\n\n" {
			t.Errorf("after the route timeout: read %q, %v; want the second event and a clean end", rest, err)
		}
		if o := g.outcome(t); o.Status != http.StatusOK || o.Err != "" {
			t.Errorf("outcome = %+v, want 200 and no error", o)
		}
	})
}
