package main

// The messages docs/configuration.md, docs/doctor.md and docs/inspect.md
// quote are made here, by the commands that print them, and looked up in
// the pages: a message changed in the code fails this test until the page
// quotes it again.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

func readPage(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeSpanRE is an inline code span of Markdown, between single backquotes.
var codeSpanRE = regexp.MustCompile("`([^`\n]+)`")

// quotes reports whether a Markdown page quotes msg: whole, or in a code
// span cut short with "…" after at least 24 characters of it.
func quotes(page, msg string) bool {
	if strings.Contains(page, msg) {
		return true
	}
	for _, m := range codeSpanRE.FindAllStringSubmatch(page, -1) {
		if cut, ok := strings.CutSuffix(m[1], "…"); ok && len(cut) >= 24 && strings.HasPrefix(msg, cut) {
			return true
		}
	}
	return false
}

// writeCredential writes gateway.pem (the certificate and its key) and
// gateway.key (the key again) to dir.
func writeCredential(t *testing.T, dir string) {
	t.Helper()
	cert, key, err := pki.SelfSigned("CN=obo-gateway", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.WriteFile(dir, "gateway.pem", append(pki.CertPEM(cert), pki.KeyPEM(key)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.WriteFile(dir, "gateway.key", pki.KeyPEM(key), 0o600); err != nil {
		t.Fatal(err)
	}
}

// docsBase is a valid configuration file for the pages' examples, with
// the certificate of writeCredential, by line:
//
//	1 entra:  2 tenant_id  3 client_id  4 certificate:  5 path
//	6 routes:  7-10 orders (10: its scopes)  11-13 hr
const docsBase = `entra:
  tenant_id: 6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34
  client_id: 0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95
  certificate:
    path: gateway.pem
routes:
  - name: orders
    path_prefix: /orders
    upstream: https://orders.internal.example.com
    downstream_scopes: [api://orders-api/.default]
  - name: hr
    path_prefix: /hr
    upstream: https://hr.internal.example.com
`

// TestConfigurationPageQuotesServe: what serve says of each mistake
// docs/configuration.md describes, run on a file named gateway.yaml in the
// working directory, is what the page quotes.
func TestConfigurationPageQuotesServe(t *testing.T) {
	page := readPage(t, "configuration.md")
	t.Chdir(t.TempDir())
	writeCredential(t, ".")
	routes := strings.Index(docsBase, "routes:")
	for _, tc := range []struct {
		name    string
		content string
		environ []string
	}{
		{"unknown key", strings.Replace(docsBase, "tenant_id:", "tenantid:", 1), nil},
		{"a scope with its dot missing", docsBase + "    downstream_scopes: [api://orders-api/default]\n", nil},
		{"a tenant from the environment", docsBase, []string{"AZURE_TENANT_ID=common"}},
		{"a duration without a unit", docsBase, []string{"OBO_GATEWAY_ROUTE_ORDERS_TIMEOUT=30"}},
		{"several problems", strings.NewReplacer(
			"tenant_id: 6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34", "tenant_id: contoso.onmicrosoft.com",
			"path: gateway.pem", "path: /etc/obo-gateway/gateway.pem",
			"[api://orders-api/.default]", "[api://orders-api/default]").Replace(docsBase), nil},
		{"instance discovery for a host Entra does not know",
			strings.Replace(docsBase, "  certificate:", "  authority_host: https://127.0.0.1:8443\n  instance_discovery: true\n  certificate:", 1), nil},
		{"routes from variables only", docsBase[:routes],
			[]string{"OBO_GATEWAY_ROUTE_ORDERS_PATH_PREFIX=/orders", "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=https://orders.internal.example.com"}},
		{"a route variable naming no route", docsBase, []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing.internal.example.com"}},
		{"the key in two files", strings.Replace(docsBase, "    path: gateway.pem\n", "    path: gateway.pem\n    key_path: gateway.key\n", 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile("gateway.yaml", []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runMain(t, []string{"serve", "-config", "gateway.yaml"}, tc.environ)
			if r.code != exitError {
				t.Fatalf("exit status %d\n%s", r.code, r.stderr)
			}
			msg := strings.TrimSuffix(r.errorOf(), "\n")
			if strings.Contains(msg, "\n") {
				// Several problems: the page shows the whole text.
				if !strings.Contains(page, msg) {
					t.Errorf("docs/configuration.md does not show what serve says:\n%s", msg)
				}
				return
			}
			if !quotes(page, msg) && !quotes(page, strings.TrimPrefix(msg, "gateway: ")) {
				t.Errorf("docs/configuration.md does not quote what serve says:\n%s", msg)
			}
		})
	}
}

// TestDoctorPageQuotesTheDoctor: the reports docs/doctor.md shows of
// configurations that fail are the doctor's, run on files in
// /tmp/doctor-demo (a temporary directory, named so in the output).
func TestDoctorPageQuotesTheDoctor(t *testing.T) {
	page := readPage(t, "doctor.md")
	dir := t.TempDir()
	writeCredential(t, dir)
	shown := func(s string) string { return strings.ReplaceAll(s, dir, "/tmp/doctor-demo") }
	base := strings.Replace(docsBase, "path: gateway.pem", "path: "+filepath.Join(dir, "gateway.pem"), 1)
	for _, tc := range []struct {
		name, file, content string
		args                []string
		environ             []string
		only                string // the part of the report shown, from this line to its check's end; "" for all
	}{
		{name: "validation", file: "broken.yaml", content: strings.NewReplacer(
			"tenant_id: 6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34", "tenant_id: contoso.onmicrosoft.com",
			"client_id: 0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95", "client_id: api://obo-gateway",
			"path_prefix: /orders", "path_prefix: /orders/",
			"upstream: https://orders.internal.example.com", "upstream: orders.internal.example.com",
			"[api://orders-api/.default]", "[api://orders-api/default]").Replace(base)},
		{name: "a misspelt key", file: "misspelt.yaml", content: strings.Replace(base, "tenant_id:", "tenantid:", 1)},
		{name: "a scope with its dot missing", file: "typo.yaml", content: strings.Replace(base, "[api://orders-api/.default]", "[api://orders-api/default]", 1)},
		{name: "a route variable naming no route", file: "gateway.yaml", content: base,
			environ: []string{"OBO_GATEWAY_ROUTE_BILLING_UPSTREAM=https://billing.internal.example.com"}},
		{name: "instance discovery for a host Entra does not know", file: "local.yaml",
			content: strings.Replace(base, "  certificate:", "  authority_host: https://127.0.0.1:9443\n  instance_discovery: true\n  certificate:", 1)},
		{name: "the key in two files", file: "gateway.yaml", args: []string{"-offline"},
			content: strings.Replace(base, "gateway.pem\n", "gateway.pem\n    key_path: "+filepath.Join(dir, "gateway.key")+"\n", 1),
			only:    "FAIL  certificate:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runMain(t, append(append([]string{"doctor"}, tc.args...), "-config", path), tc.environ)
			if r.code != exitError {
				t.Fatalf("exit status %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			report := shown(r.stdout)
			if tc.only != "" {
				report = checkText(t, report, tc.only)
			}
			if !strings.Contains(page, report) {
				t.Errorf("docs/doctor.md does not show what the doctor says:\n%s", report)
			}
		})
	}
}

// checkText is the check of report that starts with the line first: that
// line, and the lines of its detail and fix (indented).
func checkText(t *testing.T, report, first string) string {
	t.Helper()
	i := strings.Index(report, first)
	if i < 0 {
		t.Fatalf("no %q in:\n%s", first, report)
	}
	lines := strings.SplitAfter(report[i:], "\n")
	n := 1
	for n < len(lines) && strings.HasPrefix(lines[n], "      ") {
		n++
	}
	return strings.Join(lines[:n], "")
}

// TestPagesShowTheSynopses: each command's page shows its command line as
// its flags make it.
func TestPagesShowTheSynopses(t *testing.T) {
	for page, name := range map[string]string{"doctor.md": "doctor", "inspect.md": "inspect"} {
		c, _ := lookupCommand(name)
		fs, _ := c.flags(&invocation{})
		if text, s := readPage(t, page), c.synopsis(fs); !strings.Contains(text, s) {
			t.Errorf("docs/%s does not show the synopsis %q", page, s)
		}
	}
}
