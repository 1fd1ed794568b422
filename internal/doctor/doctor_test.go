package doctor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// expect is a check the report must hold: one whose ID starts with id, with
// the status, and every string of contains in its detail or fix.
type expect struct {
	id       string
	status   Status
	contains []string
}

// scenario is what a case runs and expects.
type scenario struct {
	path    string
	offline bool
	dialer  *countingDialer
	want    []expect
	// absent are ID prefixes no check may have.
	absent []string
	// allPass: every check passes.
	allPass bool
	// failures is the exact number of FAILs, when >= 0.
	failures int
}

// onlineIDs are the IDs of the checks that need the network.
var onlineIDs = []string{"authority/", "credential", "route/orders/resource", "route/orders/upstream"}

func TestDoctorAgainstLocalTenant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) scenario
	}{
		{"healthy configuration passes everything", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			return scenario{path: e.write(t), allPass: true, want: []expect{
				{"config", Pass, []string{"loads and validates"}},
				{"certificate/load", Pass, []string{"RSA 2048-bit"}},
				{"certificate/validity", Pass, []string{"days left"}},
				{"certificate/identity", Pass, []string{"SHA-1 hex", "x5t#S256"}},
				{"authority/discovery", Pass, []string{e.srv.TenantID()}},
				{"authority/keys", Pass, []string{"RSA signing key"}},
				{"credential", Pass, []string{"Entra accepted the certificate", "api://orders-api/.default"}},
				{"route/orders/resource", Pass, []string{"api://orders-api is registered"}},
				{"route/hr/resource", Pass, []string{"api://hr-api"}},
				{"route/inventory/resource", Pass, nil},
				{"route/public/scopes", Pass, []string{"no On-Behalf-Of exchange"}},
				{"route/orders/upstream", Pass, []string{"404"}},
				{"route/public/upstream", Pass, nil},
			}}
		}},
		{"send_x5c on, certificate chain sent", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			return scenario{path: e.write(t, func(c *config.Config) { c.Entra.Certificate.SendX5C = true }), allPass: true, want: []expect{
				{"certificate/load", Pass, []string{"send_x5c on"}},
				{"credential", Pass, nil},
			}}
		}},
		{"certificate not registered on the app", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			certFile, keyFile, cert, _ := credential(t, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
			th := ThumbprintsOf(cert)
			msg := "this certificate is not registered on app " + fakeentra.DemoGatewayClientID + ": upload " + certFile +
				" in the app registration's Certificates & secrets (thumbprint " + th.SHA1Hex + ")"
			return scenario{path: e.write(t, withCredential(certFile, keyFile)), failures: 1, want: []expect{
				{"certificate/load", Pass, nil},
				{"certificate/identity", Pass, []string{th.SHA1Hex, th.SHA1Base64, th.X5T, th.X5TS256, th.SHA256Hex}},
				// Entra's message quotes the thumbprint MSAL sent (x5t#S256) in
				// hex, one of the forms the doctor prints.
				{"credential", Fail, []string{"AADSTS700027", msg, "'" + strings.ToUpper(th.SHA256Hex) + "'"}},
			}, absent: []string{"route/orders/resource"}}
		}},
		{"client ID of no app in the tenant", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			const wrong = "0f0f0f0f-1111-4222-8333-444444444444"
			return scenario{path: e.write(t, func(c *config.Config) { c.Entra.ClientID = wrong }), failures: 1, want: []expect{
				{"authority/discovery", Pass, nil},
				{"credential", Fail, []string{"AADSTS700016", "the client ID " + wrong + " is not an app in tenant " + e.srv.TenantID()}},
			}, absent: []string{"route/orders/resource"}}
		}},
		{"tenant that does not exist", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			const wrong = "9d1c6a7e-2b3f-4c5d-8e9f-0a1b2c3d4e5f"
			return scenario{path: e.write(t, func(c *config.Config) { c.Entra.TenantID = wrong }), failures: 1, want: []expect{
				{"authority/discovery", Fail, []string{"tenant " + wrong + " not found", "AADSTS90002", "entra.tenant_id"}},
			}, absent: []string{"authority/keys", "credential", "route/orders/resource"}}
		}},
		{"scope without the dot of .default, offline already", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			routes := []config.Route{route("orders", e.upstream, "api://orders-api/default")}
			return scenario{path: e.write(t, func(c *config.Config) { c.Routes = routes }), offline: true, failures: 1, want: []expect{
				{"config/routes[0].downstream_scopes[0]", Fail, []string{"did you mean api://orders-api/.default?", "AADSTS70011"}},
			}, absent: []string{"certificate/", "route/"}}
		}},
		{"downstream API not in the tenant", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			// First, so that the credential is proven with the gateway's own app instead.
			routes := append([]config.Route{route("nope", e.upstream, "api://nope/.default")}, e.healthyRoutes()...)
			return scenario{path: e.write(t, func(c *config.Config) { c.Routes = routes }), failures: 1, want: []expect{
				{"route/nope/scopes", Pass, nil},
				{"credential", Pass, []string{fakeentra.DemoGatewayClientID + "/.default"}},
				{"route/nope/resource", Fail, []string{"the downstream API api://nope is not registered in tenant " + e.srv.TenantID(), "AADSTS500011"}},
				{"route/orders/resource", Pass, nil},
			}}
		}},
		{"expired certificate", func(t *testing.T) scenario {
			certFile, keyFile, cert, _ := credential(t, time.Now().AddDate(-1, 0, 0), time.Now().Add(-48*time.Hour))
			e := startEnv(t, tenantWithGatewayCert(cert))
			return scenario{path: e.write(t, withCredential(certFile, keyFile)), failures: 2, want: []expect{
				{"certificate/validity", Fail, []string{"expired at", "2 days ago"}},
				{"credential", Fail, []string{"AADSTS1000502", "clock"}},
			}}
		}},
		{"certificate expiring in 10 days", func(t *testing.T) scenario {
			certFile, keyFile, cert, _ := credential(t, time.Now().Add(-time.Hour), time.Now().Add(10*24*time.Hour))
			e := startEnv(t, tenantWithGatewayCert(cert))
			return scenario{path: e.write(t, withCredential(certFile, keyFile)), failures: 0, want: []expect{
				{"certificate/validity", Warn, []string{"in 10 days", "rotate"}},
				{"credential", Pass, nil},
			}}
		}},
		{"upstream on a closed port", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			closed := "http://" + testkit.ClosedAddr(t)
			return scenario{path: e.write(t, func(c *config.Config) { c.Routes[0].Upstream = closed }), failures: 1, want: []expect{
				{"route/orders/upstream", Fail, []string{"connection refused", "nothing listens there"}},
				{"route/hr/upstream", Pass, nil},
			}}
		}},
		{"offline makes no network request", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			d := &countingDialer{}
			closed := "https://" + testkit.ClosedAddr(t)
			return scenario{
				path:    e.write(t, func(c *config.Config) { c.Entra.AuthorityHost = closed }),
				offline: true, dialer: d, allPass: true,
				want:   []expect{{"certificate/load", Pass, nil}, {"route/orders/scopes", Pass, nil}},
				absent: onlineIDs,
			}
		}},
		{"authority on a closed port, online", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			closed := "https://" + testkit.ClosedAddr(t)
			return scenario{path: e.write(t, func(c *config.Config) { c.Entra.AuthorityHost = closed }), failures: 1, want: []expect{
				{"authority/discovery", Fail, []string{"connection refused", "nothing listens there", "entra.authority_host"}},
			}, absent: []string{"credential", "route/orders/resource"}}
		}},
		{"TLS not trusted: no ca_file for the local tenant", func(t *testing.T) scenario {
			e := startEnv(t, nil)
			return scenario{path: e.write(t, func(c *config.Config) { c.Entra.CAFile = "" }), failures: 1, want: []expect{
				{"authority/discovery", Fail, []string{"unknown authority", "entra.ca_file"}},
			}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := tc.setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			opts := Options{ConfigPath: sc.path, Offline: sc.offline}
			if sc.dialer != nil {
				opts.dial = sc.dialer.dial
			}
			var streamed []Check
			opts.OnCheck = func(c Check) { streamed = append(streamed, c) }
			rep := Run(ctx, opts)
			out := text(rep)
			t.Logf("report:\n%s", out)

			if len(streamed) != len(rep.Checks) {
				t.Errorf("OnCheck saw %d checks, the report has %d", len(streamed), len(rep.Checks))
			}
			for _, w := range sc.want {
				got := byID(rep, w.id)
				if len(got) == 0 {
					t.Errorf("no check %s", w.id)
					continue
				}
				c := got[0]
				if c.Status != w.status {
					t.Errorf("%s: status %s, want %s (%s)", c.ID, c.Status, w.status, c.Detail)
				}
				for _, s := range w.contains {
					if !strings.Contains(c.Detail+"\n"+c.Fix, s) {
						t.Errorf("%s: detail and fix lack %q:\n%s\nfix: %s", c.ID, s, c.Detail, c.Fix)
					}
				}
				if c.Status != Pass && c.Fix == "" {
					t.Errorf("%s: %s without a fix", c.ID, c.Status)
				}
			}
			for _, a := range sc.absent {
				if got := byID(rep, a); len(got) > 0 {
					t.Errorf("unexpected check %s (%s)", got[0].ID, got[0].Status)
				}
			}
			if sc.allPass && (rep.Summary.Warn != 0 || rep.Summary.Fail != 0) {
				t.Errorf("want every check to pass, got %+v", rep.Summary)
			}
			if !sc.allPass && rep.Summary.Fail != sc.failures {
				t.Errorf("%d failures, want %d", rep.Summary.Fail, sc.failures)
			}
			if sc.dialer != nil && sc.dialer.n.Load() != 0 {
				t.Errorf("offline: %d network dials", sc.dialer.n.Load())
			}
			checkSummary(t, rep)
		})
	}
}

// checkSummary checks that the summary counts the checks, and that the
// JSON document says the same.
func checkSummary(t *testing.T, rep *Report) {
	t.Helper()
	var s Summary
	for _, c := range rep.Checks {
		switch c.Status {
		case Pass:
			s.Pass++
		case Warn:
			s.Warn++
		case Fail:
			s.Fail++
		default:
			t.Errorf("%s: status %q", c.ID, c.Status)
		}
	}
	if s != rep.Summary {
		t.Errorf("summary %+v, counted %+v", rep.Summary, s)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Checks  []map[string]any `json:"checks"`
		Summary map[string]int   `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, buf.String())
	}
	if len(doc.Checks) != len(rep.Checks) || doc.Summary["pass"] != s.Pass || doc.Summary["warn"] != s.Warn || doc.Summary["fail"] != s.Fail {
		t.Errorf("JSON summary %v for %d checks, counted %+v", doc.Summary, len(doc.Checks), s)
	}
	for _, c := range doc.Checks {
		for _, k := range []string{"id", "name", "status", "detail", "fix"} {
			if _, ok := c[k]; !ok {
				t.Errorf("JSON check %v lacks %q", c["id"], k)
			}
		}
	}
	ids := map[string]bool{}
	for _, c := range rep.Checks {
		if ids[c.ID] {
			t.Errorf("duplicate ID %s", c.ID)
		}
		ids[c.ID] = true
	}
}

// The doctor's promise: nothing it prints holds a password or key material,
// whether the check that reads it passes or fails.
func TestReportHoldsNoSecrets(t *testing.T) {
	e := startEnv(t, nil)
	const certPassword, redisPassword = "s3cr3t-cert-password", "s3cr3t-redis-password"
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	key2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	closed := testkit.ClosedAddr(t) // the shared cache: nothing listens there
	for name, edit := range map[string]func(*config.Config){
		"all valid": func(c *config.Config) {
			c.Cache.Redis = &config.Redis{Address: closed, Password: redisPassword,
				EncryptionKeys: "k1:" + key + ",k2:" + key2, EncryptionKeyID: "k1"}
		},
		"certificate password on an unencrypted key": func(c *config.Config) {
			c.Entra.Certificate.Password = certPassword
			c.Cache.Redis = &config.Redis{Address: closed, Password: redisPassword,
				EncryptionKeys: "k1:" + key, EncryptionKeyID: "k1"}
		},
		"bad values": func(c *config.Config) {
			c.Entra.Certificate.Password = certPassword
			c.Cache.Redis = &config.Redis{Address: closed, Password: redisPassword,
				EncryptionKeys: key + ",k2:" + key2 + "x", EncryptionKeyID: "k9"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			for _, offline := range []bool{true, false} {
				rep := run(t, e.write(t, edit), offline)
				var js bytes.Buffer
				if err := rep.WriteJSON(&js); err != nil {
					t.Fatal(err)
				}
				out := text(rep) + js.String()
				if len(rep.Checks) == 0 {
					t.Fatal("no checks ran")
				}
				for _, secret := range []string{certPassword, redisPassword, key, key2, key2[:20]} {
					if strings.Contains(out, secret) {
						t.Errorf("offline=%v: the report shows a secret (%.6s…):\n%s", offline, secret, text(rep))
					}
				}
			}
		})
	}
}
