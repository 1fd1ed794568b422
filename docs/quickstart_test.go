package docs

// The README's quick start, run as a newcomer runs it: the demo, then the
// four curl lines as written, each held to what its comment promises.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// demoNames are the names the curl comments give the demo tenant's
// identities, and the claim values they stand for.
var demoNames = map[string]string{
	"orders API": fakeentra.DemoOrdersClientID,
	"alice":      fakeentra.DemoAliceObjectID,
}

// curlLine is one line of the README's curl block.
type curlLine struct {
	n       int    // the README's line
	command string // as written, before the comment
	comment string // after the #
	status  int    // the comment's leading number
	code    string // the error code the comment names after the status, if any
	claims  map[string]string
}

// quickStart is what the README's quick start tells a newcomer to run.
type quickStart struct {
	demoArgs []string // after `go run ./cmd/gateway`
	curls    []curlLine
}

var (
	goRunGatewayRE = regexp.MustCompile(`^go run \./cmd/gateway(( +\S+)*)$`)
	curlCommentRE  = regexp.MustCompile(`^(curl\s.*?)\s+#\s*(.*)$`)
	statusRE       = regexp.MustCompile(`^(\d{3})\b:?\s*(.*)$`)
	errorCodeRE    = regexp.MustCompile(`^([a-z]+(?:_[a-z]+)+)\b`)
	claimRE        = regexp.MustCompile(`\b([a-z_]+) = ([^,;]+?)\s*(?:[,;]|$)`)
	exportRE       = map[string]*regexp.Regexp{
		"GATEWAY": regexp.MustCompile(`(?m)^\s*export GATEWAY=(https?://\S+)\s*$`),
		"TOKEN":   regexp.MustCompile(`(?m)^\s*export TOKEN=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$`),
	}
)

// readQuickStart finds the quick start's commands in the README: the sh
// block that runs the demo, and the block of curl lines.
func readQuickStart(t *testing.T, readme page) quickStart {
	t.Helper()
	from, to, ok := readme.section("Quick start")
	if !ok {
		t.Fatal("README.md has no section \"Quick start…\": this test runs its commands; update the test with the README")
	}
	var qs quickStart
	var found bool
	for _, b := range readme.blocks(from, to) {
		for _, l := range b.lines {
			if m := goRunGatewayRE.FindStringSubmatch(strings.TrimSpace(l.text)); m != nil && !found {
				qs.demoArgs, found = strings.Fields(m[1]), true
			}
		}
		if b.info != "sh" || !strings.HasPrefix(strings.TrimSpace(b.lines[0].text), "curl ") {
			continue
		}
		for _, l := range b.lines {
			qs.curls = append(qs.curls, parseCurlLine(t, readme.name, l))
		}
	}
	if !found || len(qs.demoArgs) == 0 || qs.demoArgs[0] != "demo" {
		t.Fatalf("README.md:%d: the quick start has no ```sh block with `go run ./cmd/gateway demo…`", from)
	}
	if len(qs.curls) == 0 {
		t.Fatalf("README.md:%d: the quick start has no ```sh block of curl lines", from)
	}
	return qs
}

// parseCurlLine reads one curl line and what its comment promises:
// `# 401 insufficient_claims: …` is status 401 with that error code;
// `# 200: … aud = orders API, oid = alice` names claims the sample API shows.
func parseCurlLine(t *testing.T, name string, l line) curlLine {
	t.Helper()
	m := curlCommentRE.FindStringSubmatch(strings.TrimSpace(l.text))
	if m == nil {
		t.Fatalf("%s:%d: a curl line without a `# <status>…` comment: %s", name, l.n, l.text)
	}
	c := curlLine{n: l.n, command: m[1], comment: m[2], claims: map[string]string{}}
	s := statusRE.FindStringSubmatch(c.comment)
	if s == nil {
		t.Fatalf("%s:%d: the comment %q does not start with the status the line gets", name, l.n, c.comment)
	}
	c.status, _ = strconv.Atoi(s[1])
	if e := errorCodeRE.FindStringSubmatch(s[2]); e != nil {
		c.code = e[1]
	}
	for _, cm := range claimRE.FindAllStringSubmatch(s[2], -1) {
		c.claims[cm[1]] = cm[2]
	}
	return c
}

// The README's quick start, run for real: the demo as the README starts
// it, the two export lines it promises, and each curl line as written.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	needCurl(t)
	readme := readPage(t, "README.md")
	qs := readQuickStart(t, readme)
	bin := binaries(t)

	demo := start(t, nil, filepath.Join(bin, "gateway"), qs.demoArgs...)
	vars := demo.waitFor(t, "the two lines `export GATEWAY=…` and `export TOKEN=…` the README promises", startTimeout,
		func(out string) ([]string, bool) {
			var vs []string
			for _, name := range []string{"GATEWAY", "TOKEN"} {
				m := exportRE[name].FindStringSubmatch(out)
				if m == nil {
					return nil, false
				}
				vs = append(vs, name+"="+m[1])
			}
			return vs, true
		})
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GATEWAY=") || strings.HasPrefix(kv, "TOKEN=")
	})
	env = append(env, vars...)

	for _, c := range qs.curls {
		t.Run(fmt.Sprintf("README.md:%d", c.n), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", c.command)
			cmd.Dir, cmd.Env = root, env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", c.command, err, out, stderr.String())
			}
			checkCurl(t, c, string(out))
		})
	}

	// The demo prints the same curl lines, for those who do not read the
	// README first.
	printed := demo.waitFor(t, fmt.Sprintf("the README's %d curl lines", len(qs.curls)), startTimeout,
		func(out string) ([]string, bool) {
			var ls []string
			for _, l := range strings.Split(out, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "curl ") && curlCommentRE.MatchString(l) {
					ls = append(ls, l)
				}
			}
			return ls, len(ls) >= len(qs.curls)
		})
	if len(printed) != len(qs.curls) {
		t.Errorf("the demo prints %d curl lines, the README %d: keep internal/demo's instructions and README.md in step\ndemo:\n%s",
			len(printed), len(qs.curls), strings.Join(printed, "\n"))
		return
	}
	for i, p := range printed {
		c := parseCurlLine(t, "the demo's output", line{n: i + 1, text: p})
		if strings.Join(strings.Fields(c.command), " ") != strings.Join(strings.Fields(qs.curls[i].command), " ") || c.status != qs.curls[i].status {
			t.Errorf("README.md:%d: the demo prints\n\t%s\nwhere the README has\n\t%s %s\nkeep internal/demo's instructions and README.md in step",
				qs.curls[i].n, p, qs.curls[i].command, "# "+qs.curls[i].comment)
		}
	}
}

// checkCurl holds curl's output to what the line's comment promises.
func checkCurl(t *testing.T, c curlLine, out string) {
	t.Helper()
	status, body := 0, out
	if strings.HasPrefix(out, "HTTP/") {
		head, rest, _ := strings.Cut(out, "\r\n\r\n")
		body = rest
		if f := strings.Fields(head); len(f) > 1 {
			status, _ = strconv.Atoi(f[1])
		}
		if status != c.status {
			t.Errorf("README.md:%d: %s\nanswered %d; its comment promises %d (%s)\n%s", c.n, c.command, status, c.status, c.comment, out)
		}
	} else if c.status != http.StatusOK {
		t.Errorf("README.md:%d: %s prints no status (no -i), and its comment promises %d", c.n, c.command, c.status)
	}
	if c.code != "" {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != c.code {
			t.Errorf("README.md:%d: %s\nanswered the error %q; its comment promises %s\n%s", c.n, c.command, e.Error, c.code, out)
		}
	}
	if c.status != http.StatusOK {
		return
	}
	// A 200 is the sample API's echo of the downstream token it received.
	var echo struct {
		Claims map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Claims == nil {
		t.Fatalf("README.md:%d: %s\nis not the sample API's JSON with the claims it received (%v):\n%s", c.n, c.command, err, out)
	}
	for claim, name := range c.claims {
		want, ok := demoNames[name]
		if !ok {
			t.Errorf("README.md:%d: the comment names %s = %s, which this test does not know: add it to demoNames", c.n, claim, name)
			continue
		}
		if got := fmt.Sprint(echo.Claims[claim]); got != want {
			t.Errorf("README.md:%d: the sample API shows %s = %s; the comment promises %s (%s)", c.n, claim, got, name, want)
		}
	}
}

// needCurl skips the test when curl is not installed, or fails it under
// CI=true, where .ci/run installs it.
func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		const msg = "curl not installed: apt-get install curl (the README's quick start uses it; CI installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// `gateway demo -json` prints the keys the README lists, and the admin URL
// serves what the README says it does.
func TestREADMEDemoJSON(t *testing.T) {
	t.Parallel()
	readme := readPage(t, "README.md")
	keysRE := regexp.MustCompile("`gateway demo -json` prints one JSON line instead \\(([^)]*)\\)")
	adminRE := regexp.MustCompile("Metrics are on the admin URL \\(([^)]*)\\)")
	var text strings.Builder
	for _, l := range readme.lines {
		if l.fence == "" {
			text.WriteString(l.text + " ")
		}
	}
	codes := func(s string) []string {
		var out []string
		for _, m := range inlineCodeRE.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	km, am := keysRE.FindStringSubmatch(text.String()), adminRE.FindStringSubmatch(text.String())
	if km == nil || am == nil {
		t.Fatal("README.md no longer says \"`gateway demo -json` prints one JSON line instead (`key`, …)\" and \"Metrics are on the admin URL (`/path`, …)\": update this test with the README")
	}
	documented, paths := codes(km[1]), codes(am[1])

	demo := start(t, nil, filepath.Join(binaries(t), "gateway"), "demo", "-json")
	first := demo.waitFor(t, "a JSON line", startTimeout, func(out string) ([]string, bool) {
		l, _, ok := strings.Cut(out, "\n")
		return []string{l}, ok
	})[0]
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(first), &got); err != nil {
		t.Fatalf("gateway demo -json printed no JSON line: %v\n%s", err, first)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, documented) {
		t.Errorf("gateway demo -json prints the keys\n\t%s\nthe README lists\n\t%s\n(README.md: \"`gateway demo -json` prints one JSON line instead (…)\")",
			strings.Join(keys, ", "), strings.Join(documented, ", "))
	}
	var admin string
	if err := json.Unmarshal(got["admin_url"], &admin); err != nil || admin == "" {
		t.Fatalf("gateway demo -json: no admin_url: %s", first)
	}
	client := &http.Client{Timeout: runTimeout}
	for _, p := range paths {
		resp, err := client.Get(strings.TrimSuffix(admin, "/") + p)
		if err != nil {
			t.Errorf("the admin URL's %s: %v", p, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the admin URL's %s answered %d, want 200", p, resp.StatusCode)
		}
	}
}
