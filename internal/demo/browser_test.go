package demo_test

// The sample SPA in a real browser: Debian's chromium, headless, driven by
// chromedp, signs alice in with MSAL.js against the local tenant and calls
// the three demo routes through the gateway, handling the claims challenge
// (MFA step) and consent_required (consent page) as MSAL.js users do.
//
//	CI=true go test -race -count=1 -run TestBrowser -v ./internal/demo
//	UPDATE_SCREENSHOTS=1 go test -count=1 -run TestBrowser ./internal/demo   # rewrites docs/frontend/*.png

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/obo-gateway/obo-gateway/internal/demo"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/sampleapi"
)

// findChromium returns the path of a Chromium or Chrome binary, or "".
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startDemo runs the demo in-process and returns its JSON line.
func startDemo(t *testing.T) demo.Info {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := demo.Run(ctx, demo.Options{JSON: true, Version: "test"}, pw)
		pw.CloseWithError(errors.Join(err, io.EOF))
		errc <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("demo: %v", err)
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the demo printed no JSON line")
		}
		line = l
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not start within 60s")
	}
	var info demo.Info
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("demo JSON line: %v\n%s", err, line)
	}
	if info.SPAURL == "" {
		t.Fatalf("demo JSON line has no spa_url: %s", line)
	}
	return info
}

func TestBrowserSampleSPA(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium binary (looked for chromium, chromium-browser, google-chrome; or set CHROMIUM): CI must run the browser test (.ci/run installs Debian's chromium)")
		}
		t.Skip("no chromium binary found (apt-get install chromium, or set CHROMIUM=/path/to/chrome): skipping the real-browser test of the sample SPA")
	}
	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "frontend")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	info := startDemo(t)
	alice := info.Users[0]

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		// The local tenant's certificate is signed by its own CA (ca_file).
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1000, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	// Start the browser on a context without a deadline (it lives as long
	// as the context of the first Run); the steps run under one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()

	n := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			n++
			buf, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name)), buf, 0o644)
		})
	}
	ready := `body[data-ready="true"]`
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			log, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage:\n%s", step, err, log)
		}
	}
	// answer checks the route's status once the SPA is back, and that the
	// sample API got alice's token for the downstream API: aud its client
	// ID (v2 tokens) or its identifier URI (v1 tokens, as hr-api's).
	answer := func(route, clientID, identifierURI string) {
		t.Helper()
		status, body := text("#status-"+route), text("#body-"+route)
		if status != "200" {
			t.Fatalf("%s: status %q, want 200; body:\n%s\nlog:\n%s", route, status, body, text("#log"))
		}
		var got sampleapi.Echo
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: the sample API's answer: %v\n%s", route, err, body)
		}
		if aud := got.Claims["aud"]; got.Claims["oid"] != alice.ObjectID || (aud != clientID && aud != identifierURI) {
			t.Errorf("%s: the sample API got a token with oid %v, aud %v; want alice's (%s) for %s", route, got.Claims["oid"], aud, alice.ObjectID, identifierURI)
		}
	}

	run("open the SPA", chromedp.Navigate(info.SPAURL), chromedp.WaitVisible(chromedp.CSS(ready)), shot("spa"))

	run("sign in",
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), alice.Username),
		chromedp.SetValue(chromedp.CSS("#password"), alice.Password),
		shot("sign-in"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(ready)),
	)
	if got := text("#account"); got != alice.Username {
		t.Fatalf("signed in as %q, want %s; log:\n%s", got, alice.Username, text("#log"))
	}
	run("signed in", shot("signed-in"))

	run("orders",
		chromedp.Click(chromedp.CSS("#call-orders")),
		chromedp.Poll[chromedp.Void](`document.getElementById("status-orders").textContent !== "not called"`),
		chromedp.ScrollIntoView(chromedp.CSS("#call-orders")),
		shot("orders"),
	)
	answer("orders", fakeentra.DemoOrdersClientID, "api://orders-api")

	run("HR: claims challenge, MFA step",
		chromedp.Click(chromedp.CSS("#call-hr")),
		chromedp.WaitVisible(chromedp.CSS("#otc")),
		chromedp.SetValue(chromedp.CSS("#otc"), fakeentra.DemoMFACode),
		shot("mfa"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(ready)),
		chromedp.ScrollIntoView(chromedp.CSS("#call-hr")),
		shot("hr"),
	)
	answer("hr", fakeentra.DemoHRClientID, "api://hr-api")

	run("inventory: consent",
		chromedp.Click(chromedp.CSS("#call-inventory")),
		chromedp.WaitVisible(chromedp.CSS("#accept")),
		shot("consent"),
		chromedp.Click(chromedp.CSS("#accept")),
		chromedp.WaitVisible(chromedp.CSS(ready)),
		chromedp.ScrollIntoView(chromedp.CSS("#call-inventory")),
		shot("inventory"),
	)
	answer("inventory", fakeentra.DemoInventoryID, "api://inventory-api")
}
