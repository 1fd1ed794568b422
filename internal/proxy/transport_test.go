package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRouteTimeout(t *testing.T) {
	okResponse := func(r *http.Request, body io.ReadCloser) *http.Response {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: body, Request: r}
	}

	t.Run("fires before the headers", func(t *testing.T) {
		clock := newFakeClock()
		rt := &routeTransport{route: "orders", timeout: time.Second, afterFunc: clock.afterFunc,
			next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, context.Cause(r.Context())
			})}
		errc := make(chan error, 1)
		go func() {
			resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://up/", nil))
			if resp != nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		timer := clock.next(t)
		if timer.d != time.Second {
			t.Errorf("timer = %v, want the route timeout", timer.d)
		}
		timer.fire()
		if err := <-errc; !errors.Is(err, errTimeout) {
			t.Errorf("err = %v, want errTimeout", err)
		}
	})

	t.Run("stopped when the headers arrive; body close ends the request", func(t *testing.T) {
		clock := newFakeClock()
		var upstreamCtx context.Context
		rt := &routeTransport{route: "orders", timeout: time.Second, afterFunc: clock.afterFunc,
			next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				upstreamCtx = r.Context()
				return okResponse(r, io.NopCloser(strings.NewReader("streamed"))), nil
			})}
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://up/", nil))
		if err != nil {
			t.Fatal(err)
		}
		timer := clock.next(t)
		if !timer.wasStopped() {
			t.Error("the timer runs on after the headers arrived")
		}
		if upstreamCtx.Err() != nil {
			t.Fatal("the upstream request was canceled before its body was read")
		}
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "streamed" {
			t.Errorf("body = %q, %v", b, err)
		}
		resp.Body.Close()
		if !errors.Is(upstreamCtx.Err(), context.Canceled) || errors.Is(context.Cause(upstreamCtx), errTimeout) {
			t.Errorf("after Close: err %v cause %v, want canceled without the timeout cause", upstreamCtx.Err(), context.Cause(upstreamCtx))
		}
	})

	t.Run("fires as the headers arrive", func(t *testing.T) {
		clock := newFakeClock()
		body := &closeRecorder{Reader: strings.NewReader("late")}
		rt := &routeTransport{route: "orders", timeout: time.Second, afterFunc: clock.afterFunc,
			next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				clock.next(t).fire()
				return okResponse(r, body), nil
			})}
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://up/", nil))
		if !errors.Is(err, errTimeout) || resp != nil {
			t.Errorf("got %v, %v; want errTimeout", resp, err)
		}
		if !body.closed {
			t.Error("the late response's body was not closed")
		}
	})

	t.Run("a switched protocol stays writable", func(t *testing.T) {
		rt := &routeTransport{route: "orders", timeout: time.Second, afterFunc: timeAfterFunc,
			next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return okResponse(r, &rwBody{}), nil
			})}
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://up/", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
			t.Errorf("body %T is not writable", resp.Body)
		}
	})

	t.Run("no timeout", func(t *testing.T) {
		rt := &routeTransport{route: "orders", afterFunc: func(time.Duration, func()) stopper {
			t.Error("a timer was started for a route without a timeout")
			return nil
		}, next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if _, ok := r.Context().Deadline(); ok {
				t.Error("the upstream request has a deadline")
			}
			return okResponse(r, http.NoBody), nil
		})}
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://up/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

type rwBody struct{ closeRecorder }

func (*rwBody) Read([]byte) (int, error)    { return 0, io.EOF }
func (*rwBody) Write(b []byte) (int, error) { return len(b), nil }

func TestNewTransport(t *testing.T) {
	tr := NewTransport(TransportConfig{})
	if tr.MaxIdleConnsPerHost != 256 || tr.TLSHandshakeTimeout != 10*time.Second || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("defaults: %d idle per host, TLS %v, idle %v", tr.MaxIdleConnsPerHost, tr.TLSHandshakeTimeout, tr.IdleConnTimeout)
	}
	if !tr.DisableCompression || tr.Proxy == nil || tr.TLSClientConfig.MinVersion == 0 {
		t.Error("want compression left alone, the environment's proxy settings and a TLS minimum")
	}
	if tr == http.DefaultTransport {
		t.Error("NewTransport returned the global transport")
	}
	if !tr.Protocols.HTTP1() || !tr.Protocols.HTTP2() || tr.Protocols.UnencryptedHTTP2() {
		t.Errorf("protocols = %v, want HTTP/1 and HTTP/2 over TLS", tr.Protocols)
	}
	tr = NewTransport(TransportConfig{MaxIdleConnsPerHost: 8, TLSHandshakeTimeout: time.Second, IdleConnTimeout: time.Minute})
	if tr.MaxIdleConnsPerHost != 8 || tr.TLSHandshakeTimeout != time.Second || tr.IdleConnTimeout != time.Minute {
		t.Error("settings not applied")
	}
}

// An https upstream is spoken to in HTTP/2 on the standard leg, with the
// configured roots; in HTTP/1.1 on the fast leg, with the same roots.
func TestHTTP2Upstream(t *testing.T) {
	seen := make(chan recorded, 1)
	up := httptest.NewUnstartedServer(recordingHandler(seen, nil))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	tr := NewTransport(TransportConfig{RootCAs: roots})
	t.Cleanup(tr.CloseIdleConnections)

	for _, tc := range []struct {
		leg   Leg
		proto string
	}{{LegStandard, "HTTP/2.0"}, {LegFast, "HTTP/1.1"}} {
		rt := ordersRoute(mustURL(t, up.URL+"/api"))
		rt.Leg = tc.leg
		g := newGateway(t, rt, setup{cfg: Config{Transport: tr}})
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+userToken)
		if resp, body := g.do(t, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s leg: status = %d %s", tc.leg, resp.StatusCode, body)
		}
		got := receive(t, seen)
		if got.Proto != tc.proto {
			t.Errorf("%s leg: upstream protocol = %s, want %s", tc.leg, got.Proto, tc.proto)
		}
		if got.Header.Get("Authorization") != "Bearer "+downstreamToken || strings.Contains(got.Dump, userToken) {
			t.Errorf("%s leg: upstream saw Authorization %q", tc.leg, got.Header.Get("Authorization"))
		}
	}
}

func TestBufferPool(t *testing.T) {
	bp := newBufferPool()
	b := bp.Get()
	if len(b) != 32<<10 {
		t.Fatalf("len = %d, want 32 KiB", len(b))
	}
	bp.Put(b[:10]) // ReverseProxy may hand back a resliced buffer
	if b := bp.Get(); len(b) != 32<<10 {
		t.Errorf("len after reslice = %d, want 32 KiB", len(b))
	}
	bp.Put(make([]byte, 16)) // not ours: dropped
	if b := bp.Get(); len(b) != 32<<10 {
		t.Errorf("len = %d, want 32 KiB", len(b))
	}
}
