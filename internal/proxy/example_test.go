package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/proxy"
)

func ExampleProxy_Handler() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", r.URL.RequestURI(), r.Header.Get("Authorization"))
	}))
	defer api.Close()
	upstream, _ := url.Parse(api.URL + "/api")

	transport := proxy.NewTransport(proxy.TransportConfig{})
	defer transport.CloseIdleConnections()
	p := proxy.New(proxy.Config{Transport: transport})
	orders := p.Handler(proxy.Route{
		Name:        "orders",
		PathPrefix:  "/orders",
		Upstream:    upstream,
		StripPrefix: true,
		Timeout:     10 * time.Second,
	})

	// In the gateway, the auth and On-Behalf-Of middleware set these.
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := &proxy.Forward{}
		f.SetSecret("the-users-token")
		f.SetUpstreamToken("token-for-the-orders-api")
		orders.ServeHTTP(w, r.WithContext(proxy.NewContext(r.Context(), f)))
	}))
	defer gateway.Close()

	req, _ := http.NewRequest(http.MethodGet, gateway.URL+"/orders/42?access_token=the-users-token&page=2", nil)
	req.Header.Set("Authorization", "Bearer the-users-token")
	resp, err := gateway.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	// Output:
	// /api/42?page=2 Bearer token-for-the-orders-api
}
