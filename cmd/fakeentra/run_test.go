package main

// Tests of the binary's contract: the flags, the one JSON line printed once
// ready (its names are read by scripts and tests), the files it writes, and a
// clean exit on SIGINT/SIGTERM.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// readLine reads the first line of r, failing after a generous bound.
func readLine(t *testing.T, r io.Reader, what string) []byte {
	t.Helper()
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("%s: reading the JSON line: %v", what, res.err)
		}
		return res.line
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: no JSON line within two minutes", what)
		return nil
	}
}

// checkLine checks the JSON line's contract and returns it decoded. The
// users' passwords are compared, never printed.
func checkLine(t *testing.T, line []byte) fakeentra.Info {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("the ready line is not exactly one line")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("the ready line is not a JSON object: %v", err)
	}
	for _, k := range []string{"authority", "tenant_id", "token_endpoint", "jwks_uri", "issuer", "ca_file", "apps", "users"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the ready line lacks %q", k)
		}
	}
	var info fakeentra.Info
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("the ready line: %v", err)
	}

	if info.TenantID != fakeentra.DemoTenantID {
		t.Errorf("tenant_id %q, want the demo tenant %q", info.TenantID, fakeentra.DemoTenantID)
	}
	u, err := url.Parse(info.Authority)
	if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Path != "/"+info.TenantID {
		t.Fatalf("authority %q, want https://127.0.0.1:<port>/<tenant_id>", info.Authority)
	}
	for _, f := range []struct{ name, got, want string }{
		{"token_endpoint", info.TokenEndpoint, info.Authority + "/oauth2/v2.0/token"},
		{"jwks_uri", info.JWKSURI, info.Authority + "/discovery/v2.0/keys"},
		{"issuer", info.Issuer, info.Authority + "/v2.0"},
	} {
		if f.got != f.want {
			t.Errorf("%s %q, want %q", f.name, f.got, f.want)
		}
	}

	if !filepath.IsAbs(info.CAFile) {
		t.Errorf("ca_file %q is not an absolute path", info.CAFile)
	}
	caPEM, err := os.ReadFile(info.CAFile)
	if err != nil {
		t.Fatalf("ca_file: %v", err)
	}
	cas, err := pki.ParseCertsPEM(caPEM)
	if err != nil || len(cas) != 1 || !cas[0].IsCA {
		t.Fatalf("ca_file does not hold one CA certificate (err %v)", err)
	}

	gw, ok := info.Apps["gateway"]
	if !ok {
		t.Fatalf("apps has no gateway")
	}
	if gw.ClientID != fakeentra.DemoGatewayClientID || !slices.Equal(gw.IdentifierURIs, []string{"api://obo-gateway"}) ||
		!slices.Equal(gw.Scopes, []string{"access_as_user"}) {
		t.Errorf("apps.gateway %s %v %v, want %s [api://obo-gateway] [access_as_user]",
			gw.ClientID, gw.IdentifierURIs, gw.Scopes, fakeentra.DemoGatewayClientID)
	}
	certPEM, err := os.ReadFile(gw.CertificateFile)
	if err != nil {
		t.Fatalf("apps.gateway.certificate_file: %v", err)
	}
	if certs, err := pki.ParseCertsPEM(certPEM); err != nil || len(certs) != 1 {
		t.Fatalf("apps.gateway.certificate_file does not hold one certificate (err %v)", err)
	}
	fi, err := os.Stat(gw.KeyFile)
	if err != nil {
		t.Fatalf("apps.gateway.key_file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("apps.gateway.key_file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := tls.LoadX509KeyPair(gw.CertificateFile, gw.KeyFile); err != nil {
		t.Errorf("the gateway's certificate and key files are not a pair: %v", err)
	}
	if fe := info.Apps["frontend"]; fe.ClientID != fakeentra.DemoFrontendClientID || !fe.PublicClient || fe.KeyFile != "" {
		t.Errorf("apps.frontend %+v, want the public demo frontend without credentials", fe)
	}

	want := []struct{ user, oid string }{
		{"alice@contoso.test", fakeentra.DemoAliceObjectID},
		{"bob@contoso.test", fakeentra.DemoBobObjectID},
	}
	if len(info.Users) != len(want) {
		t.Fatalf("%d users, want %d", len(info.Users), len(want))
	}
	for i, w := range want {
		u := info.Users[i]
		if u.Username != w.user || u.ObjectID != w.oid {
			t.Errorf("users[%d] %s %s, want %s %s", i, u.Username, u.ObjectID, w.user, w.oid)
		}
		if u.Password != fakeentra.DemoPassword {
			t.Errorf("users[%d].password is not the demo password", i)
		}
	}
	return info
}

// clientFor trusts the tenant's CA file.
func clientFor(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("ca_file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("ca_file has no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// runInProcess calls run in a goroutine and returns the ready line and a
// channel that yields run's result.
func runInProcess(t *testing.T, ctx context.Context, args []string) ([]byte, <-chan error, *testkit.SyncBuffer) {
	t.Helper()
	pr, pw := io.Pipe()
	stderr := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, stderr)
		_ = pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()
	line := readLine(t, pr, "run")
	return line, done, stderr
}

func TestRunPrintsInfoAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir := t.TempDir()
	line, done, stderr := runInProcess(t, ctx, []string{"-addr", "127.0.0.1:0", "-dir", dir})
	info := checkLine(t, line)
	// The files' names are documented (README, docs/fakeentra.md) and
	// named in deploy/gateway.local.yaml: keep them.
	gw := info.Apps["gateway"]
	for _, f := range []struct{ name, got, want string }{
		{"ca_file", info.CAFile, filepath.Join(dir, "ca.pem")},
		{"apps.gateway.certificate_file", gw.CertificateFile, filepath.Join(dir, "gateway.crt.pem")},
		{"apps.gateway.key_file", gw.KeyFile, filepath.Join(dir, "gateway.key.pem")},
	} {
		if f.got != f.want {
			t.Errorf("%s %q, want %q", f.name, f.got, f.want)
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["sample_api_url"]; ok {
		t.Errorf("the ready line has sample_api_url without -sample-api")
	}

	c := clientFor(t, info.CAFile)
	resp, err := c.Get(info.Authority + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Issuer != info.Issuer || doc.TokenEndpoint != info.TokenEndpoint {
		t.Errorf("discovery: issuer %q token_endpoint %q (err %v), want the line's", doc.Issuer, doc.TokenEndpoint, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	c.CloseIdleConnections()
	if resp, err := c.Get(info.JWKSURI); err == nil {
		resp.Body.Close()
		t.Errorf("the tenant still answers after run returned (HTTP %d)", resp.StatusCode)
	}
	if s := stderr.String(); strings.Contains(s, `"level":"ERROR"`) {
		t.Errorf("stderr has errors: %s", s)
	}
}

func TestRunPathsAreAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	line, done, _ := runInProcess(t, ctx, []string{"-dir", "relative/fe"})
	var info fakeentra.Info
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("the ready line: %v", err)
	}
	gw := info.Apps["gateway"]
	for name, p := range map[string]string{"ca_file": info.CAFile, "certificate_file": gw.CertificateFile, "key_file": gw.KeyFile} {
		if !filepath.IsAbs(p) {
			t.Errorf("%s %q is relative: scripts run from elsewhere cannot find it", name, p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
}

func TestRunDefaultDirIsNewTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // run prints its line and returns at once
	var out bytes.Buffer
	if err := run(ctx, []string{}, &out, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	var info fakeentra.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("the ready line: %v", err)
	}
	if d := filepath.Dir(info.CAFile); filepath.Dir(d) != tmp || !strings.HasPrefix(filepath.Base(d), "fakeentra-") {
		t.Errorf("ca_file %q, want it in a new fakeentra-* directory under %s", info.CAFile, tmp)
	}
}

func TestRunTenantFile(t *testing.T) {
	dir := t.TempDir()
	tenant := filepath.Join(dir, "tenant.yaml")
	const tid = "3f1e2d4c-5b6a-4789-8abc-def012345678"
	yaml := "tenant_id: " + tid + "\ndomain: fabrikam.test\napps:\n  - name: svc\n    generate_certificate: true\n" +
		"users:\n  - username: carol@fabrikam.test\n    password: pw\n"
	if err := os.WriteFile(tenant, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-dir", dir, "-tenant", tenant}, &out, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	var info fakeentra.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("the ready line: %v", err)
	}
	if info.TenantID != tid || info.Apps["svc"].KeyFile != filepath.Join(dir, "svc.key.pem") ||
		len(info.Users) != 1 || info.Users[0].Username != "carol@fabrikam.test" {
		t.Errorf("the ready line does not describe the tenant file: tenant %s, svc %+v, %d users", info.TenantID, info.Apps["svc"], len(info.Users))
	}
}

func TestRunRejects(t *testing.T) {
	tmp := t.TempDir()
	unknownField := filepath.Join(tmp, "unknown-field.yaml")
	if err := os.WriteFile(unknownField, []byte("tenant_name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(tmp, "bad-policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("users:\n  - username: u@contoso.test\n    no_consent: [nope]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(tmp, "unreadable.yaml")
	if err := os.WriteFile(unreadable, []byte("domain: contoso.test\n"), 0o000); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    string
		wantStderr string // usage is printed for flag errors
		skip       string
	}{
		{name: "unknown flag", args: []string{"-port", "8443"}, wantErr: "flag provided but not defined: -port", wantStderr: "-tenant"},
		{name: "flag without value", args: []string{"-addr"}, wantErr: "flag needs an argument", wantStderr: "-addr"},
		{name: "bad bool", args: []string{"-v=maybe"}, wantErr: "invalid boolean value"},
		{name: "extra argument", args: []string{"serve"}, wantErr: `unexpected argument "serve"`},
		{name: "bad address", args: []string{"-addr", "127.0.0.1:notaport"}, wantErr: "listen"},
		{name: "missing tenant file", args: []string{"-tenant", filepath.Join(tmp, "absent.yaml")}, wantErr: "absent.yaml"},
		{name: "tenant file is a directory", args: []string{"-tenant", tmp}, wantErr: "read tenant file"},
		{name: "unreadable tenant file", args: []string{"-tenant", unreadable}, wantErr: "permission denied",
			skip: map[bool]string{true: "root reads files of any mode"}[os.Geteuid() == 0]},
		{name: "unknown field in tenant file", args: []string{"-tenant", unknownField}, wantErr: "field tenant_name not found"},
		{name: "unknown resource in a policy", args: []string{"-tenant", badPolicy}, wantErr: `unknown resource "nope"`},
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp.Error(), wantStderr: "-sample-api"},
		{name: "bad sample API address", args: []string{"-sample-api", "127.0.0.1:notaport"}, wantErr: "sample API: listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			// A cancelled context: should run wrongly succeed, it returns at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"-dir", t.TempDir()}, tc.args...)
			err := run(ctx, args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tc.args, err, tc.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("run printed a ready line although it failed")
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// TestBinary builds the real command and drives it as a script would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGTERM")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fakeentra")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("serves and exits cleanly on SIGTERM", func(t *testing.T) {
		cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-dir", t.TempDir())
		var stderr testkit.SyncBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-exited
			}
		})

		info := checkLine(t, readLine(t, stdout, "fakeentra"))
		c := clientFor(t, info.CAFile)
		form := url.Values{
			"grant_type": {"password"},
			"client_id":  {info.Apps["frontend"].ClientID},
			"username":   {info.Users[0].Username},
			"password":   {info.Users[0].Password},
			"scope":      {"api://obo-gateway/access_as_user openid offline_access"},
		}
		resp, err := c.PostForm(info.TokenEndpoint, form)
		if err != nil {
			t.Fatalf("password grant: %v", err)
		}
		var tok struct {
			TokenType    string `json:"token_type"`
			Scope        string `json:"scope"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			IDToken      string `json:"id_token"`
			Error        string `json:"error"`
			Description  string `json:"error_description"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("password grant: HTTP %d (decode %v): %s %.200s", resp.StatusCode, err, tok.Error, tok.Description)
		}
		if tok.TokenType != "Bearer" || strings.Count(tok.AccessToken, ".") != 2 || tok.RefreshToken == "" || tok.IDToken == "" {
			t.Errorf("token response: token_type %q, access token a JWS %v, refresh token %v, ID token %v; want Bearer and all three",
				tok.TokenType, strings.Count(tok.AccessToken, ".") == 2, tok.RefreshToken != "", tok.IDToken != "")
		}
		if !slices.Contains(strings.Fields(tok.Scope), "api://obo-gateway/access_as_user") {
			t.Errorf("scope %q lacks api://obo-gateway/access_as_user", tok.Scope)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v, want code 0; stderr: %s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("fakeentra did not exit within 30s of SIGTERM")
		}
		if s := stderr.String(); s != "" {
			t.Errorf("stderr not empty at the default log level: %s", s)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			args       []string
			code       int
			wantStderr string
		}{
			{name: "help", args: []string{"-h"}, code: 0, wantStderr: "-tenant"},
			{name: "unknown flag", args: []string{"-port", "1"}, code: 1, wantStderr: "fakeentra: flag provided but not defined: -port"},
			{name: "missing tenant file", args: []string{"-tenant", filepath.Join(t.TempDir(), "absent.yaml")}, code: 1, wantStderr: "fakeentra: read tenant file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"-dir", t.TempDir()}, tc.args...)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatalf("run: %v", err)
				}
				if code != tc.code {
					t.Errorf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
				}
				if !strings.Contains(stderr.String(), tc.wantStderr) {
					t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
				}
				if tc.code == 0 && strings.Contains(stderr.String(), "help requested") {
					t.Errorf("stderr reports an error for -h: %q", stderr.String())
				}
				if strings.Contains(stderr.String(), "fakeentra: fakeentra:") {
					t.Errorf("stderr repeats the program name: %q", stderr.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout %q, want nothing", stdout.String())
				}
			})
		}
	})
}
