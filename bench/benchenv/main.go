// Command benchenv is the environment of bench/run.sh: it starts the local
// Entra-compatible tenant in-process (fakeentra: the demo tenant, with the
// gateway's registration on v2 tokens and loop detection off, benchTenant),
// a lean upstream API that answers every request with the same small JSON
// body, and a control listener that mints user tokens on demand. Once
// ready it prints one JSON line (see envInfo) on stdout, then serves until
// SIGINT or SIGTERM.
//
// The control listener (loopback, plain HTTP) serves
//
//	GET /tokens?n=N   N fresh, distinct user tokens for the gateway
//	                  (api://obo-gateway/access_as_user), one per line,
//	                  alternating between the tenant's users; each is a new
//	                  token (its own uti, aio, …), as a new sign-in would give.
//
// The tokens are minted in-process (fakeentra.Server.UserToken): the same
// claims and signature as the password grant's, without its HTTP round trip.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// UpstreamBody is what the upstream answers to every request, on every path.
const UpstreamBody = `{"ok":true,"service":"bench-upstream","items":[1,2,3]}`

// userScope is what a frontend asks for to call the gateway.
const userScope = "api://obo-gateway/access_as_user"

// envInfo is the JSON line benchenv prints once ready.
type envInfo struct {
	BaseURL       string `json:"base_url"` // the tenant's https://host:port (controls under /_fakeentra/)
	Authority     string `json:"authority"`
	TenantID      string `json:"tenant_id"`
	TokenEndpoint string `json:"token_endpoint"`
	Issuer        string `json:"issuer"`
	CAFile        string `json:"ca_file"`
	// The gateway's app registration.
	GatewayClientID string   `json:"gateway_client_id"`
	GatewayURIs     []string `json:"gateway_identifier_uris"`
	GatewayCertFile string   `json:"gateway_certificate_file"`
	GatewayKeyFile  string   `json:"gateway_key_file"`
	GatewaySecret   string   `json:"gateway_secret"`
	// DownstreamScope is the route's On-Behalf-Of scope (the orders API).
	DownstreamScope string `json:"downstream_scope"`
	UserScope       string `json:"user_scope"`
	UpstreamURL     string `json:"upstream_url"`
	UpstreamBody    string `json:"upstream_body"`
	ControlURL      string `json:"control_url"`
	// Tokens are a few fresh user tokens (alice, bob, alice, …).
	Tokens []string `json:"tokens"`
	Users  []string `json:"users"`
	PID    int      `json:"pid"`
}

func main() {
	dir := flag.String("dir", "", "directory for the tenant's CA and the gateway's credential (required)")
	ntok := flag.Int("tokens", 4, "user tokens to include in the JSON line")
	flag.Parse()
	if *dir == "" {
		log.Fatal("benchenv: -dir is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *ntok); err != nil {
		log.Fatal("benchenv: ", err)
	}
}

func run(ctx context.Context, dir string, ntok int) error {
	tenant, err := fakeentra.Start(ctx, fakeentra.Config{Tenant: benchTenant(), Dir: dir})
	if err != nil {
		return fmt.Errorf("local tenant: %w", err)
	}
	defer tenant.Close()
	fe := tenant.Info()
	var users []string
	for _, u := range fe.Users {
		users = append(users, u.Username)
	}

	upstream, upURL, err := serve(upstreamHandler())
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer upstream.Close()
	control, ctlURL, err := serve(controlHandler(tenant, users))
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	defer control.Close()

	toks := make([]string, 0, ntok)
	for i := range ntok {
		t, err := tenant.UserToken(users[i%len(users)], userScope, fakeentra.UserTokenOptions{})
		if err != nil {
			return err
		}
		toks = append(toks, t)
	}
	gw := fe.Apps["gateway"]
	info := envInfo{
		BaseURL: tenant.URL(), Authority: fe.Authority, TenantID: fe.TenantID,
		TokenEndpoint: fe.TokenEndpoint, Issuer: fe.Issuer, CAFile: fe.CAFile,
		GatewayClientID: gw.ClientID, GatewayURIs: gw.IdentifierURIs,
		GatewayCertFile: gw.CertificateFile, GatewayKeyFile: gw.KeyFile, GatewaySecret: fakeentra.DemoGatewaySecret,
		DownstreamScope: "api://orders-api/Orders.Read", UserScope: userScope,
		UpstreamURL: upURL, UpstreamBody: UpstreamBody, ControlURL: ctlURL,
		Tokens: toks, Users: users, PID: os.Getpid(),
	}
	line, err := json.Marshal(info)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", line)
	<-ctx.Done()
	return nil
}

// benchTenant is the demo tenant with two changes for the bench:
//
//   - the gateway's registration accepts v2 access tokens
//     (accessTokenAcceptedVersion: 2 in its manifest), as oauth2-proxy's
//     Entra ID guide asks: the user token every target is given is then one
//     that oauth2-proxy, configured with the tenant's v2.0 issuer, validates
//     too (the demo registration leaves the version null, which gives v1
//     tokens, issued on the tenant's second origin). The gateway accepts
//     either.
//   - loop detection (AADSTS50196) is off: the bench's thousands of
//     "distinct users" are fresh tokens of the tenant's two users, so their
//     exchanges ask for the same (client, user, resource, scopes) far more
//     than 100 times in 5 minutes, which Entra would refuse as a loop.
func benchTenant() *fakeentra.Tenant {
	t := fakeentra.DemoTenant()
	for _, a := range t.Apps {
		if a.Name == "gateway" {
			a.AccessTokenVersion = 2
		}
	}
	t.LoopDetection = &fakeentra.LoopDetection{MaxRequests: -1}
	return t
}

// serve starts h on a free loopback port.
func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

// upstreamHandler answers every request with UpstreamBody: the cheapest
// honest API, so that the measurements are of what sits in front of it.
func upstreamHandler() http.Handler {
	body := []byte(UpstreamBody)
	ctype := []string{"application/json"}
	clen := []string{strconv.Itoa(len(body))}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = ctype
		h["Content-Length"] = clen
		_, _ = w.Write(body)
	})
}

func controlHandler(tenant *fakeentra.Server, users []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tokens", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > 1_000_000 {
			http.Error(w, "n: a number from 1 to 1000000", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		if err := mint(r.Context(), tenant, users, n, w); err != nil {
			// The status is gone; a short answer tells the client.
			log.Print("benchenv: minting tokens: ", err)
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// mint writes n fresh user tokens, one per line, signed by all cores.
func mint(ctx context.Context, tenant *fakeentra.Server, users []string, n int, w http.ResponseWriter) error {
	jobs := make(chan int)
	out := make(chan string, 256)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t, err := tenant.UserToken(users[i%len(users)], userScope, fakeentra.UserTokenOptions{})
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					continue // keep draining jobs so the producer never blocks
				}
				out <- t
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	bw := bufio.NewWriterSize(w, 64<<10)
	written := 0
	for t := range out {
		bw.WriteString(t)
		bw.WriteByte('\n')
		written++
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	if written != n {
		return fmt.Errorf("wrote %d of %d tokens", written, n)
	}
	return nil
}
