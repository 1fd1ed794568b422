package main

// The README's "Run it locally against the local tenant" run for real: the
// tenant started with the README's flags (its addresses moved to free
// ports), deploy/gateway.local.yaml served by the gateway, the README's
// token command, and the README's calls with the answers its comments
// promise.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/gateway"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/sampleapi"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	readmePath     = "../../README.md"
	localExample   = "../../deploy/gateway.local.yaml"
	localSection   = "## Run it locally against the local tenant"
	serveLocalLine = "go run ./cmd/gateway serve -config deploy/gateway.local.yaml"
)

// localSteps is what the README's local section tells the reader to run.
type localSteps struct {
	feFlags map[string]string // the fakeentra command's flags
	// The token command: its URL, --cacert and form.
	tokenURL, caCert string
	form             url.Values
	gatewayURL       string // export GATEWAY=
	calls            []localCall
}

// localCall is one curl line: a path, with or without the token, and the
// status its comment promises.
type localCall struct {
	path      string
	withToken bool
	code      int
	line      string
}

// readLocalSteps reads the README's local section.
func readLocalSteps(t *testing.T) localSteps {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, localSection)
	if i < 0 {
		t.Fatalf("README has no section %q", localSection)
	}
	sec := text[i+len(localSection):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var s localSteps

	m := regexp.MustCompile(`go run \./cmd/fakeentra ([^\n]+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatal("the README's local section has no `go run ./cmd/fakeentra` command")
	}
	args := strings.Fields(m[1])
	if len(args)%2 != 0 {
		t.Fatalf("fakeentra command %q: want -flag value pairs", m[0])
	}
	s.feFlags = map[string]string{}
	for k := 0; k < len(args); k += 2 {
		s.feFlags[args[k]] = args[k+1]
	}
	if !strings.Contains(sec, serveLocalLine) {
		t.Errorf("the README's local section does not say %q", serveLocalLine)
	}

	// The token command: from "export TOKEN=$(curl" to its closing ")".
	start := strings.Index(sec, "export TOKEN=$(curl")
	if start < 0 {
		t.Fatal("the README's local section has no `export TOKEN=$(curl …)`")
	}
	end := regexp.MustCompile(`\n\s*export GATEWAY=`).FindStringIndex(sec[start:])
	if end == nil {
		t.Fatal("the README's local section has no `export GATEWAY=` after the token command")
	}
	cmd := sec[start : start+end[0]]
	if m := regexp.MustCompile(`(https://\S+/oauth2/v2\.0/token)`).FindStringSubmatch(cmd); m != nil {
		s.tokenURL = m[1]
	}
	if m := regexp.MustCompile(`--cacert (\S+)`).FindStringSubmatch(cmd); m != nil {
		s.caCert = m[1]
	}
	s.form = url.Values{}
	for _, m := range regexp.MustCompile(`(?:-d ([^\s']+)|--data-urlencode '([^']*)')`).FindAllStringSubmatch(cmd, -1) {
		kv := m[1] + m[2]
		k, v, _ := strings.Cut(kv, "=")
		s.form.Add(k, v)
	}
	if s.tokenURL == "" || s.caCert == "" || len(s.form) == 0 {
		t.Fatalf("the token command %q lacks its URL, --cacert or form", cmd)
	}
	if !strings.Contains(cmd, `sed -E 's/.*"access_token":"([^"]+)".*/\1/'`) {
		t.Errorf("the token command does not extract access_token with the demo's sed: %q", cmd)
	}
	if m := regexp.MustCompile(`export GATEWAY=(\S+)`).FindStringSubmatch(sec); m != nil {
		s.gatewayURL = m[1]
	}
	callRE := regexp.MustCompile(`curl -si? +\$GATEWAY(\S+)( +-H "Authorization: Bearer \$TOKEN")? +# (\d{3})`)
	for _, m := range callRE.FindAllStringSubmatch(sec, -1) {
		code, _ := strconv.Atoi(m[3])
		s.calls = append(s.calls, localCall{path: m[1], withToken: m[2] != "", code: code, line: m[0]})
	}
	if len(s.calls) == 0 {
		t.Fatal("the README's local section calls nothing through $GATEWAY")
	}
	return s
}

// TestLocalExample is the README's local run, on free ports.
func TestLocalExample(t *testing.T) {
	steps := readLocalSteps(t)
	for _, f := range []string{"-addr", "-dir", "-sample-api"} {
		if steps.feFlags[f] == "" {
			t.Fatalf("the README's fakeentra command has no %s: %v", f, steps.feFlags)
		}
	}
	if len(steps.feFlags) != 3 {
		t.Errorf("the README's fakeentra command has flags %v, want -addr, -dir and -sample-api only", steps.feFlags)
	}
	feAddr, feDir, sampleAddr := steps.feFlags["-addr"], steps.feFlags["-dir"], steps.feFlags["-sample-api"]
	example, err := os.ReadFile(localExample)
	if err != nil {
		t.Fatal(err)
	}
	// The file and the README agree on the addresses and the directory.
	for _, want := range []string{
		"authority_host: https://" + feAddr + "\n",
		"ca_file: " + feDir + "/ca.pem\n",
		"path: " + feDir + "/gateway.crt.pem\n",
		"key_path: " + feDir + "/gateway.key.pem\n",
		"upstream: http://" + sampleAddr + "/",
	} {
		if !strings.Contains(string(example), want) {
			t.Errorf("%s does not contain %q, which the README's fakeentra command implies", localExample, want)
		}
	}
	if steps.caCert != feDir+"/ca.pem" {
		t.Errorf("the token command trusts %q, want %s/ca.pem", steps.caCert, feDir)
	}
	if want := "https://" + feAddr + "/" + fakeentra.DemoTenantID + "/oauth2/v2.0/token"; steps.tokenURL != want {
		t.Errorf("the token command posts to %q, want the demo tenant's endpoint %q", steps.tokenURL, want)
	}

	// From here on, the working directory is the reader's repository root:
	// fakeentra's -dir and the file's paths are relative to it.
	root := t.TempDir()
	t.Chdir(root)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	line, feDone, feStderr := runInProcess(t, ctx, []string{"-addr", "127.0.0.1:0", "-dir", feDir, "-sample-api", "127.0.0.1:0"})
	var ready readyLine
	if err := json.Unmarshal(line, &ready); err != nil {
		t.Fatalf("the ready line: %v", err)
	}
	authority, err := url.Parse(ready.Authority)
	if err != nil || ready.SampleAPIURL == "" {
		t.Fatalf("the ready line has authority %q and sample_api_url %q", ready.Authority, ready.SampleAPIURL)
	}
	for _, f := range []string{"ca.pem", "gateway.crt.pem", "gateway.key.pem"} {
		if _, err := os.Stat(filepath.Join(feDir, f)); err != nil {
			t.Errorf("fakeentra -dir %s did not write %s: %v", feDir, f, err)
		}
	}

	// The file, with only its two fixed ports moved to the ones in use.
	text := strings.ReplaceAll(string(example), "https://"+feAddr, "https://"+authority.Host)
	text = strings.ReplaceAll(text, "http://"+sampleAddr, ready.SampleAPIURL)
	cfgPath := filepath.Join("deploy", "gateway.local.yaml")
	if err := os.MkdirAll("deploy", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, _, err := config.Parse(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if steps.gatewayURL != "http://"+parsed.Listen {
		t.Errorf("the README exports GATEWAY=%s, but %s listens on %s", steps.gatewayURL, localExample, parsed.Listen)
	}
	// The gateway's listeners on free ports too, through the environment.
	env := map[string]string{"OBO_GATEWAY_LISTEN": "127.0.0.1:0", "OBO_GATEWAY_ADMIN_LISTEN": "127.0.0.1:0"}
	cfg, err := config.Load(cfgPath, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s does not load against the running tenant:\n%v", localExample, err)
	}
	if cfg.Entra.InstanceDiscovery == nil || *cfg.Entra.InstanceDiscovery {
		t.Errorf("instance discovery is on for %s: the local tenant is not a host Entra knows", cfg.Entra.AuthorityHost)
	}

	var logs testkit.SyncBuffer
	gw, err := gateway.New(ctx, cfg, gateway.Deps{
		Logger:   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: metrics.NewRegistry("test"),
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	addrs := make(chan gateway.Addrs, 1)
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Serve(ctx, func(a gateway.Addrs) { addrs <- a }) }()
	var gwURL string
	select {
	case a := <-addrs:
		gwURL = "http://" + a.API
	case err := <-gwDone:
		t.Fatalf("gateway: %v\n%s", err, logs.String())
	}
	waitReady(t, gw)

	// The README's token command.
	tc := clientFor(t, steps.caCert)
	resp, err := tc.PostForm(ready.TokenEndpoint, steps.form)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("the README's token command: HTTP %d (decode %v): %s %.200s", resp.StatusCode, err, tok.Error, tok.Description)
	}
	if got := steps.form.Get("username"); got != "alice@contoso.test" {
		t.Errorf("the README's token is for %q, want alice@contoso.test", got)
	}

	// The README's calls, each with the answer its comment promises.
	c := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	seen := map[string]bool{}
	for _, call := range steps.calls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gwURL+call.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if call.withToken {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", call.line, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", call.line, err)
		}
		if resp.StatusCode != call.code {
			t.Errorf("%s: HTTP %d, want %d: %.300s", call.line, resp.StatusCode, call.code, body)
			continue
		}
		route := strings.SplitN(strings.TrimPrefix(call.path, "/"), "/", 2)[0]
		switch {
		case route == "orders" && call.withToken:
			seen["orders"] = true
			checkOrdersEcho(t, body, tok.AccessToken)
		case route == "hr":
			seen["hr"] = true
			if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_claims"`) || !strings.Contains(h, `claims="`) {
				t.Errorf("%s: WWW-Authenticate %q, want a claims challenge", call.line, h)
			}
			if e := testkit.ErrorBody(t, resp.Header, body)["error"]; e != "insufficient_claims" {
				t.Errorf("%s: error %q, want insufficient_claims", call.line, e)
			}
		case route == "inventory":
			seen["inventory"] = true
			if e := testkit.ErrorBody(t, resp.Header, body)["error"]; e != "consent_required" {
				t.Errorf("%s: error %q, want consent_required", call.line, e)
			}
		case !call.withToken:
			seen["no token"] = true
		}
	}
	for _, want := range []string{"orders", "hr", "inventory", "no token"} {
		if !seen[want] {
			t.Errorf("the README's local section does not call %s", want)
		}
	}

	cancel()
	for name, done := range map[string]<-chan error{"gateway": gwDone, "fakeentra": feDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s after cancel: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of its context's end", name)
		}
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s\nfakeentra log:\n%s", logs.String(), feStderr.String())
	}
}

// checkOrdersEcho checks what the sample API received through the orders
// route: a token for the orders API on alice's behalf, not alice's own.
func checkOrdersEcho(t *testing.T, body []byte, userToken string) {
	t.Helper()
	var e sampleapi.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("orders: the sample API's answer is not its echo: %v: %.300s", err, body)
	}
	sum := sha256.Sum256([]byte(userToken))
	switch {
	case e.Path != "/orders/items":
		t.Errorf("orders: the sample API got path %q, want /orders/items", e.Path)
	case e.Authorization != "Bearer" || e.TokenSHA256 == "":
		t.Errorf("orders: the sample API got Authorization %q, want a bearer token", e.Authorization)
	case e.TokenSHA256 == hex.EncodeToString(sum[:]):
		t.Errorf("orders: the sample API got alice's own token")
	case e.Claims["aud"] != fakeentra.DemoOrdersClientID || e.Claims["oid"] != fakeentra.DemoAliceObjectID || e.Claims["scp"] != "Orders.Read":
		t.Errorf("orders: the downstream token has aud %v, oid %v, scp %v; want the orders API's (%s), alice's (%s), Orders.Read",
			e.Claims["aud"], e.Claims["oid"], e.Claims["scp"], fakeentra.DemoOrdersClientID, fakeentra.DemoAliceObjectID)
	}
}

// waitReady polls the gateway's readiness: its signing keys come from the
// tenant once it has started.
func waitReady(t *testing.T, gw *gateway.Gateway) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for gw.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway is not ready after 30s: %v", gw.Ready())
		}
		<-tick.C
	}
}

func TestRunSampleAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	line, done, _ := runInProcess(t, ctx, []string{"-dir", t.TempDir(), "-sample-api", "127.0.0.1:0"})
	info := checkLine(t, line)
	var ready readyLine
	if err := json.Unmarshal(line, &ready); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ready.SampleAPIURL)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Path != "" {
		t.Fatalf("sample_api_url %q, want http://127.0.0.1:<port>", ready.SampleAPIURL)
	}
	if info.Authority == "" {
		t.Fatal("the tenant's fields are missing beside sample_api_url")
	}

	c := &http.Client{Timeout: 30 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready.SampleAPIURL+"/orders/items?x=1", nil)
	req.Header.Set("Authorization", "Bearer a.b.c")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("sample API: %v", err)
	}
	var e sampleapi.Echo
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || e.Path != "/orders/items" || e.Query != "x=1" || e.Authorization != "Bearer" {
		t.Errorf("sample API: HTTP %d (decode %v) %+v, want its echo of GET /orders/items?x=1", resp.StatusCode, err, e)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
	c.CloseIdleConnections()
	if resp, err := c.Get(ready.SampleAPIURL + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("the sample API still answers after run returned (HTTP %d)", resp.StatusCode)
	}
}

func TestRunSampleAPIAddressBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "fe")
	err = run(t.Context(), []string{"-dir", dir, "-sample-api", ln.Addr().String()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "sample API: listen") {
		t.Fatalf("run with a busy -sample-api address = %v, want a sample API listen error", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run wrote %s although the sample API could not listen (stat: %v)", dir, err)
	}
}
