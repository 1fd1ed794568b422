package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/doctor"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// doctorEnv is a local tenant and an upstream for the doctor's tests.
type doctorEnv struct {
	srv      *fakeentra.Server
	upstream string
}

func startDoctorEnv(t *testing.T) *doctorEnv {
	t.Helper()
	srv := fakeentratest.Start(t, fakeentra.Config{})
	up := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(up.Close)
	return &doctorEnv{srv: srv, upstream: up.URL}
}

// doctorConfig writes a configuration for the local tenant; authority,
// certFile and keyFile replace the healthy values when not empty.
func (e *doctorEnv) doctorConfig(t *testing.T, authority, certFile, keyFile string) string {
	t.Helper()
	gw := e.srv.Info().Apps["gateway"]
	if authority == "" {
		authority = e.srv.URL()
	}
	if certFile == "" {
		certFile, keyFile = gw.CertificateFile, gw.KeyFile
	}
	return configtest.Write(t, &config.Config{
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		Entra: config.Entra{
			TenantID:      e.srv.TenantID(),
			ClientID:      fakeentra.DemoGatewayClientID,
			AuthorityHost: authority,
			CAFile:        e.srv.CAFile(),
			Audiences:     []string{"api://obo-gateway"},
			Certificate:   config.Certificate{Path: certFile, KeyPath: keyFile},
		},
		Routes: []config.Route{
			{Name: "orders", PathPrefix: "/orders", Upstream: e.upstream, DownstreamScopes: []string{"api://orders-api/.default"}},
			{Name: "hr", PathPrefix: "/hr", Upstream: e.upstream, DownstreamScopes: []string{"api://hr-api/HR.Read"}},
		},
	})
}

func TestDoctorCommand(t *testing.T) {
	t.Parallel()
	e := startDoctorEnv(t)
	healthy := e.doctorConfig(t, "", "", "")
	// A certificate the gateway app does not know.
	cert, key, err := pki.SelfSigned("CN=stranger", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	strangerCert, _ := pki.WriteFile(dir, "stranger.crt.pem", pki.CertPEM(cert), 0o644)
	strangerKey, _ := pki.WriteFile(dir, "stranger.key.pem", pki.KeyPEM(key), 0o600)
	unregistered := e.doctorConfig(t, "", strangerCert, strangerKey)
	unreachable := e.doctorConfig(t, "https://"+testkit.ClosedAddr(t), "", "")
	sha1Hex := doctor.ThumbprintsOf(cert).SHA1Hex

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string   // "" for success
		stdout  []string // in stdout
		absent  []string // not in stdout
		json    bool
	}{
		{name: "healthy", args: []string{"-config", healthy}, stdout: []string{
			"PASS  configuration:", "PASS  certificate identity:", "PASS  authority:", "PASS  signing keys:",
			"PASS  client credential:", "PASS  route orders: downstream API:", "PASS  route hr: upstream:", " 0 warnings, 0 failed",
		}, absent: []string{"WARN", "FAIL"}},
		{name: "config from OBO_GATEWAY_CONFIG", env: map[string]string{"OBO_GATEWAY_CONFIG": healthy}, stdout: []string{"0 failed"}},
		{name: "certificate not registered", args: []string{"-config", unregistered}, wantErr: "doctor: 1 of ", stdout: []string{
			"FAIL  client credential:",
			"fix: this certificate is not registered on app " + fakeentra.DemoGatewayClientID + ": upload " + strangerCert +
				" in the app registration's Certificates & secrets (thumbprint " + sha1Hex + ")",
		}},
		{name: "json, healthy", args: []string{"-json", "-config", healthy}, json: true},
		{name: "json, failing", args: []string{"-config", unregistered, "-json"}, wantErr: "checks failed", json: true},
		{name: "offline makes no request", args: []string{"-offline", "-config", unreachable},
			stdout: []string{"offline checks only", "PASS  certificate:", "0 failed"},
			absent: []string{"authority:", "client credential:", "downstream API:", "upstream:", "FAIL"}},
		{name: "online, authority unreachable", args: []string{"-config", unreachable}, wantErr: "doctor: 1 of ",
			stdout: []string{"FAIL  authority: cannot reach", "connection refused"}},
		{name: "no -config", args: nil, wantErr: "doctor: -config FILE or OBO_GATEWAY_CONFIG is required"},
		{name: "stray argument", args: []string{"-config", healthy, "extra"}, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			var environ []string
			for k, v := range tc.env {
				environ = append(environ, k+"="+v)
			}
			err := run(ctx, append([]string{"doctor"}, tc.args...), environ, nil, &stdout, &stderr)
			out := stdout.String()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v\n%s%s", err, out, stderr.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q\n%s", err, tc.wantErr, out)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(out, s) {
					t.Errorf("stdout has %q:\n%s", s, out)
				}
			}
			if tc.json {
				checkDoctorJSON(t, out, err)
			}
		})
	}
}

// checkDoctorJSON checks that out is one JSON document whose summary
// counts its checks, and that the error says how many failed.
func checkDoctorJSON(t *testing.T, out string, err error) {
	t.Helper()
	var doc struct {
		Checks []struct {
			ID, Name, Status, Detail, Fix string
		} `json:"checks"`
		Summary struct{ Pass, Warn, Fail int } `json:"summary"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if derr := dec.Decode(&doc); derr != nil {
		t.Fatalf("not the JSON document: %v\n%s", derr, out)
	}
	if dec.More() {
		t.Errorf("more than one JSON document:\n%s", out)
	}
	var pass, warn, fail int
	for _, c := range doc.Checks {
		switch c.Status {
		case "PASS":
			pass++
		case "WARN":
			warn++
		case "FAIL":
			fail++
		default:
			t.Errorf("check %s: status %q", c.ID, c.Status)
		}
		if c.ID == "" || c.Name == "" || c.Detail == "" || (c.Status != "PASS") == (c.Fix == "") {
			t.Errorf("check %+v: id, name and detail are required, and a fix exactly for WARN and FAIL", c)
		}
	}
	if doc.Summary.Pass != pass || doc.Summary.Warn != warn || doc.Summary.Fail != fail {
		t.Errorf("summary %+v, counted %d/%d/%d", doc.Summary, pass, warn, fail)
	}
	if fail == 0 && err != nil || fail > 0 && err == nil {
		t.Errorf("%d failures, error %v", fail, err)
	}
	if err != nil {
		if m := regexp.MustCompile(`(\d+) of (\d+) checks failed`).FindStringSubmatch(err.Error()); m == nil ||
			m[1] != fmt.Sprint(fail) || m[2] != fmt.Sprint(len(doc.Checks)) {
			t.Errorf("error %q for %d failures of %d checks", err, fail, len(doc.Checks))
		}
	}
}

// gateway doctor on a gateway without a certificate: the workload
// identity's token file is checked, and a service account the app does
// not trust gets the federated credential to create.
func TestDoctorCommandWorkloadIdentity(t *testing.T) {
	t.Parallel()
	e := startDoctorEnv(t)
	config := func(t *testing.T, name string) string {
		t.Helper()
		tok, err := e.srv.ServiceAccountToken("", "obo-gateway", name, fakeentra.ServiceAccountTokenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		file, err := pki.WriteFile(t.TempDir(), "azure-identity-token", []byte(tok), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return configtest.Write(t, &config.Config{
			Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
			Entra: config.Entra{
				TenantID: e.srv.TenantID(), ClientID: fakeentra.DemoGatewayClientID,
				AuthorityHost: e.srv.URL(), CAFile: e.srv.CAFile(), Audiences: []string{"api://obo-gateway"},
				Credential:       config.CredentialWorkloadIdentity,
				WorkloadIdentity: config.WorkloadIdentity{TokenFile: file},
			},
			Routes: []config.Route{{Name: "orders", PathPrefix: "/orders", Upstream: e.upstream, DownstreamScopes: []string{"api://orders-api/.default"}}},
		})
	}
	for _, tc := range []struct {
		name, serviceAccount, wantErr string
		stdout                        []string
	}{
		{name: "trusted service account", serviceAccount: "obo-gateway", stdout: []string{
			"PASS  credential kind:", "PASS  workload identity token file:", "sub " + fakeentra.DemoServiceAccount,
			"PASS  client credential: Entra accepted the workload identity's service-account token", " 0 warnings, 0 failed",
		}},
		{name: "service account the app does not trust", serviceAccount: "another", wantErr: "doctor: 1 of ", stdout: []string{
			"FAIL  client credential: Entra answered HTTP 401 invalid_client: AADSTS700213",
			"az ad app federated-credential create --id " + fakeentra.DemoGatewayClientID + ` --parameters '{"name":"aks-obo-gateway-another","issuer":"` +
				e.srv.ClusterIssuerURL("") + `","subject":"system:serviceaccount:obo-gateway:another","audiences":["api://AzureADTokenExchange"]}'`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, []string{"doctor", "-config", config(t, tc.serviceAccount)}, nil, nil, &stdout, &stderr)
			out := stdout.String()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v\n%s%s", err, out, stderr.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q\n%s", err, tc.wantErr, out)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if strings.Contains(out, "  certificate") { // "PASS  certificate validity:"…
				t.Errorf("certificate checks without a certificate:\n%s", out)
			}
		})
	}
}
