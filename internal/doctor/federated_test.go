package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// fedScenario is what a federated credential case runs and expects. Check
// IDs are exact here: "credential" is not "credential/kind".
type fedScenario struct {
	path    string
	environ []string
	offline bool
	dialer  *countingDialer
	want    []expect
	// absent are exact IDs no check may have.
	absent []string
	// failures and warnings are the exact counts of FAILs and WARNs.
	failures, warnings int
	// secrets must appear nowhere in the report (text or JSON).
	secrets []string
}

// certificateIDs are the certificate's checks: not applicable without one.
var certificateIDs = []string{"certificate/load", "certificate/validity", "certificate/identity"}

// withWorkloadIdentity replaces the certificate with the token file at path.
func withWorkloadIdentity(path string) func(*config.Config) {
	return func(c *config.Config) {
		c.Entra.Credential = config.CredentialWorkloadIdentity
		c.Entra.Certificate = config.Certificate{}
		c.Entra.WorkloadIdentity.TokenFile = path
	}
}

// withManagedIdentity replaces the certificate with the managed identity
// of clientID ("" for the system-assigned one).
func withManagedIdentity(clientID string) func(*config.Config) {
	return func(c *config.Config) {
		c.Entra.Credential = config.CredentialManagedIdentity
		c.Entra.Certificate = config.Certificate{}
		c.Entra.ManagedIdentity.ClientID = clientID
	}
}

// tokenFile writes a service-account token of the local cluster issuer for
// namespace/name, as the kubelet projects it, and returns the file and the
// token (to check that no report shows it).
func (e *testEnv) tokenFile(t *testing.T, namespace, name string, opt fakeentra.ServiceAccountTokenOptions) (path, token string) {
	t.Helper()
	tok, err := e.srv.ServiceAccountToken("", namespace, name, opt)
	if err != nil {
		t.Fatalf("ServiceAccountToken: %v", err)
	}
	return writeTokenFile(t, tok), tok
}

func writeTokenFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// azCreate is the start of the command the doctor prints for the gateway app.
const azCreate = "az ad app federated-credential create --id " + fakeentra.DemoGatewayClientID + " --parameters '"

func TestDoctorWorkloadIdentity(t *testing.T) {
	t.Parallel()
	const ns, sa = "obo-gateway", "obo-gateway"
	tests := []struct {
		name  string
		setup func(t *testing.T) fedScenario
	}{
		{"token file of the trusted service account passes", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, tok := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{})
			iss := e.srv.ClusterIssuerURL("")
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), secrets: []string{tok, strings.Split(tok, ".")[2]}, want: []expect{
				{"config", Pass, nil},
				{"credential/kind", Pass, []string{"entra.credential \"workload_identity\"", "AKS workload identity", "no certificate: the certificate checks (certificate/load, certificate/validity, certificate/identity) do not apply"}},
				{"credential/token-file", Pass, []string{"entra.workload_identity.token_file \"" + path + "\" (", "a JWT (the token itself is never shown)",
					"iss " + iss, "sub " + fakeentra.DemoServiceAccount, "aud api://AzureADTokenExchange", "exp "}},
				{"credential/token-expiry", Pass, []string{"in 60 minutes", "the kubelet rewrites the token file"}},
				{"credential/token-audience", Pass, []string{"aud api://AzureADTokenExchange: the token-exchange audience"}},
				{"credential/token-subject", Pass, []string{"service account obo-gateway of namespace obo-gateway"}},
				{"authority/discovery", Pass, nil},
				{"credential", Pass, []string{"Entra accepted the workload identity's service-account token (iss " + iss + ", sub " + fakeentra.DemoServiceAccount + ") as a federated credential of app " + fakeentra.DemoGatewayClientID, "api://orders-api/.default"}},
				{"route/orders/resource", Pass, []string{"api://orders-api is registered"}},
				{"route/hr/resource", Pass, nil},
			}, absent: certificateIDs}
		}},
		{"token file named by AZURE_FEDERATED_TOKEN_FILE", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{})
			return fedScenario{
				path:    e.write(t, withWorkloadIdentity(path), func(c *config.Config) { c.Entra.WorkloadIdentity.TokenFile = "" }),
				environ: []string{"AZURE_FEDERATED_TOKEN_FILE=" + path},
				want: []expect{
					{"credential/token-file", Pass, []string{"entra.workload_identity.token_file \"" + path + "\" (env AZURE_FEDERATED_TOKEN_FILE)"}},
					{"credential", Pass, nil},
				}, absent: certificateIDs}
		}},
		{"offline reads the token file and makes no request", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), offline: true, dialer: &countingDialer{}, want: []expect{
				{"credential/kind", Pass, nil},
				{"credential/token-file", Pass, []string{"sub " + fakeentra.DemoServiceAccount}},
				{"credential/token-expiry", Pass, nil},
			}, absent: append([]string{"credential", "authority/discovery"}, certificateIDs...)}
		}},
		{"token file missing", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			missing := filepath.Join(t.TempDir(), "azure-identity-token")
			return fedScenario{path: e.write(t, withWorkloadIdentity(missing)), failures: 1, want: []expect{
				{"config/entra.workload_identity.token_file", Fail, []string{"cannot read \"" + missing + "\"",
					"label the pod azure.workload.identity/use: \"true\"", "AZURE_FEDERATED_TOKEN_FILE"}},
			}, absent: []string{"config", "credential/kind", "credential/token-file", "credential"}}
		}},
		{"token file that is not a JWT", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path := writeTokenFile(t, "this is no token\n")
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, want: []expect{
				{"credential/kind", Pass, nil},
				{"credential/token-file", Fail, []string{path, "not a JWT", "will not run", "the file must hold the projected service-account token"}},
				{"authority/discovery", Pass, nil},
			}, absent: []string{"credential/token-expiry", "credential/token-audience", "credential", "route/orders/resource"}}
		}},
		{"expired token", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{IssuedAt: time.Now().Add(-2 * time.Hour), Lifetime: time.Hour})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, want: []expect{
				{"credential/token-file", Pass, []string{"sub " + fakeentra.DemoServiceAccount}},
				{"credential/token-expiry", Fail, []string{"expired at", "60 minutes ago", "AADSTS700024", "will not run", "not being rewritten"}},
				{"credential/token-subject", Pass, nil},
			}, absent: []string{"credential", "route/orders/resource"}}
		}},
		{"token about to expire", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{IssuedAt: time.Now().Add(-58 * time.Minute), Lifetime: time.Hour})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), warnings: 1, want: []expect{
				{"credential/token-expiry", Warn, []string{"in 2 minutes", "not being rewritten"}},
				{"credential", Pass, nil},
			}}
		}},
		{"service account the app does not trust", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, "another", fakeentra.ServiceAccountTokenOptions{})
			iss := e.srv.ClusterIssuerURL("")
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, want: []expect{
				{"credential/token-subject", Pass, []string{"service account another of namespace obo-gateway"}},
				{"credential", Fail, []string{"AADSTS700213", "sub system:serviceaccount:obo-gateway:another",
					"has the subject system:serviceaccount:obo-gateway:another: create this one",
					"\nsubject system:serviceaccount:obo-gateway:another\n",
					azCreate + `{"name":"aks-obo-gateway-another","issuer":"` + iss + `","subject":"system:serviceaccount:obo-gateway:another","audiences":["api://AzureADTokenExchange"]}'`}},
			}, absent: []string{"route/orders/resource"}}
		}},
		{"subject differing only in case", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			const sub = "system:serviceaccount:obo-gateway:OBO-Gateway"
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{Subject: sub})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, warnings: 1, want: []expect{
				{"credential/token-subject", Warn, []string{"is not of the form system:serviceaccount:<namespace>:<name>"}},
				{"credential", Fail, []string{"AADSTS7002138", "the subject differs only in case", "case-sensitively",
					`"subject":"` + sub + `"`, azCreate}},
			}}
		}},
		{"issuer the app does not trust", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			const iss = "https://oidc.prod-aks.azure.com/3f1c2b4a-0000-4000-8000-000000000000/"
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{Issuer: iss})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, want: []expect{
				{"credential/token-file", Pass, []string{"iss " + iss}},
				{"credential", Fail, []string{"AADSTS700211", "no federated identity credential of app " + fakeentra.DemoGatewayClientID + " has the issuer " + iss,
					"oidcIssuerProfile.issuerUrl", "\nissuer " + iss + "\n",
					azCreate + `{"name":"aks-obo-gateway-obo-gateway","issuer":"` + iss + `","subject":"` + fakeentra.DemoServiceAccount + `","audiences":["api://AzureADTokenExchange"]}'`}},
			}}
		}},
		{"audience other than the token exchange's", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{Audiences: []string{"api://my-cluster"}})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, warnings: 1, want: []expect{
				{"credential/token-audience", Warn, []string{"aud api://my-cluster is not api://AzureADTokenExchange", "AADSTS700212"}},
				{"credential", Fail, []string{"AADSTS700212", "set its audience to api://my-cluster", `"audiences":["api://my-cluster"]`}},
			}}
		}},
		{"app without any federated credential", func(t *testing.T) fedScenario {
			tn := fakeentra.DemoTenant()
			tn.App("gateway").FederatedCredentials = nil
			e := startEnv(t, tn)
			path, _ := e.tokenFile(t, ns, sa, fakeentra.ServiceAccountTokenOptions{})
			return fedScenario{path: e.write(t, withWorkloadIdentity(path)), failures: 1, want: []expect{
				{"credential", Fail, []string{"AADSTS70021", "has no federated identity credential for this assertion: create this one",
					`"subject":"` + fakeentra.DemoServiceAccount + `"`, azCreate}},
			}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runFedScenario(t, tc.setup(t))
		})
	}
}

// The managed identity's tests set IDENTITY_ENDPOINT and IDENTITY_HEADER,
// which MSAL reads from the process: they run one at a time. MSAL's managed
// identity client caches tokens in a package-global cache keyed by client
// ID: each case has an identity of its own.
func TestDoctorManagedIdentity(t *testing.T) {
	// tenant is the demo tenant with the managed identities, the gateway
	// app trusting those of trusted.
	tenant := func(trusted []string, mis ...*fakeentra.ManagedIdentity) *fakeentra.Tenant {
		tn := fakeentra.DemoTenant()
		tn.ManagedIdentities = append(tn.ManagedIdentities, mis...)
		for _, name := range trusted {
			gw := tn.App("gateway")
			gw.FederatedCredentials = append(gw.FederatedCredentials, fakeentra.FederatedCredential{Name: name, ManagedIdentity: name})
		}
		return tn
	}
	// endpoint points MSAL at the local tenant's identity endpoint.
	endpoint := func(t *testing.T, e *testEnv) {
		u, secret := e.srv.ManagedIdentityEndpoint()
		t.Setenv("IDENTITY_ENDPOINT", u)
		t.Setenv("IDENTITY_HEADER", secret)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) fedScenario
	}{
		{"user-assigned identity the app trusts passes", func(t *testing.T) fedScenario {
			const clientID, objectID = "d0c70000-0001-4e5f-8a9b-0c1d2e3f4a01", "d0c70000-0002-4e5f-8a9b-0c1d2e3f4a02"
			e := startEnv(t, tenant([]string{"doctor-identity"}, &fakeentra.ManagedIdentity{Name: "doctor-identity", ClientID: clientID, ObjectID: objectID}))
			endpoint(t, e)
			u, secret := e.srv.ManagedIdentityEndpoint()
			iss := e.srv.IssuerV2(e.srv.TenantID())
			return fedScenario{path: e.write(t, withManagedIdentity(clientID)), secrets: []string{secret}, want: []expect{
				{"credential/kind", Pass, []string{"entra.credential \"managed_identity\"", "a managed identity's token", "do not apply"}},
				{"credential/managed-identity", Pass, []string{"the user-assigned identity entra.managed_identity.client_id \"" + clientID + "\" (",
					"token audience api://AzureADTokenExchange (the default for 127.0.0.1)", "App Service's, IDENTITY_ENDPOINT " + u + " (IDENTITY_HEADER set)"}},
				{"credential/managed-identity-token", Pass, []string{"iss " + iss, "sub " + objectID + " (the identity's object ID, its oid)", "aud api://AzureADTokenExchange", "exp "}},
				{"credential", Pass, []string{"Entra accepted the managed identity's token (iss " + iss + ", sub " + objectID + ") as a federated credential of app " + fakeentra.DemoGatewayClientID}},
				{"route/orders/resource", Pass, nil},
			}, absent: append([]string{"credential/token-file"}, certificateIDs...)}
		}},
		{"identity the app does not trust", func(t *testing.T) fedScenario {
			const clientID, objectID = "d0c70000-0003-4e5f-8a9b-0c1d2e3f4a03", "d0c70000-0004-4e5f-8a9b-0c1d2e3f4a04"
			e := startEnv(t, tenant(nil, &fakeentra.ManagedIdentity{Name: "stranger-identity", ClientID: clientID, ObjectID: objectID}))
			endpoint(t, e)
			iss := e.srv.IssuerV2(e.srv.TenantID())
			return fedScenario{path: e.write(t, withManagedIdentity(clientID)), failures: 1, want: []expect{
				{"credential/managed-identity-token", Pass, []string{"sub " + objectID}},
				{"credential", Fail, []string{"AADSTS700213", "has the subject " + objectID + ": create this one",
					azCreate + `{"name":"obo-gateway-managed-identity","issuer":"` + iss + `","subject":"` + objectID + `","audiences":["api://AzureADTokenExchange"]}'`}},
			}}
		}},
		{"identity unknown to the endpoint", func(t *testing.T) fedScenario {
			const clientID = "d0c70000-0005-4e5f-8a9b-0c1d2e3f4a05"
			e := startEnv(t, nil)
			endpoint(t, e)
			return fedScenario{path: e.write(t, withManagedIdentity(clientID)), failures: 1, want: []expect{
				{"credential/managed-identity", Pass, nil},
				{"credential/managed-identity-token", Fail, []string{"no token of the identity with client ID " + clientID, "Unable to load the proper Managed Identity", "were not run", "assign the identity with client ID " + clientID}},
				{"authority/discovery", Pass, nil},
			}, absent: []string{"credential", "route/orders/resource"}}
		}},
		{"client ID of the app instead of the identity's, offline", func(t *testing.T) fedScenario {
			e := startEnv(t, nil)
			return fedScenario{path: e.write(t, withManagedIdentity(fakeentra.DemoGatewayClientID)), offline: true, failures: 1, want: []expect{
				{"credential/managed-identity", Fail, []string{"is the app registration's client ID", "the managed identity's own Client ID"}},
			}, absent: []string{"credential/managed-identity-token", "credential"}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runFedScenario(t, tc.setup(t))
		})
	}
}

// runFedScenario runs the doctor and holds its report to sc, with exact IDs.
func runFedScenario(t *testing.T, sc fedScenario) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := Options{ConfigPath: sc.path, Environ: sc.environ, Offline: sc.offline}
	if sc.dialer != nil {
		opts.dial = sc.dialer.dial
	}
	rep := Run(ctx, opts)
	out := text(rep)
	t.Logf("report:\n%s", out)
	ids := map[string]Check{}
	for _, c := range rep.Checks {
		ids[c.ID] = c
	}
	for _, w := range sc.want {
		c, ok := ids[w.id]
		if !ok {
			t.Errorf("no check %s", w.id)
			continue
		}
		if c.Status != w.status {
			t.Errorf("%s: status %s, want %s (%s)\nfix: %s", c.ID, c.Status, w.status, c.Detail, c.Fix)
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
		if c, ok := ids[a]; ok {
			t.Errorf("unexpected check %s (%s)", c.ID, c.Status)
		}
	}
	if rep.Summary.Fail != sc.failures || rep.Summary.Warn != sc.warnings {
		t.Errorf("%d failures and %d warnings, want %d and %d", rep.Summary.Fail, rep.Summary.Warn, sc.failures, sc.warnings)
	}
	if sc.dialer != nil && sc.dialer.n.Load() != 0 {
		t.Errorf("offline: %d network dials", sc.dialer.n.Load())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, s := range sc.secrets {
		if strings.Contains(out+js.String(), s) {
			t.Errorf("the report shows a secret (%.8s…)", s)
		}
	}
	checkSummary(t, rep)
}
