package doctor

// The gateway without a certificate: entra.credential workload_identity
// (AKS workload identity's projected service-account token) or
// managed_identity (a managed identity's token), each a federated identity
// credential of the app registration. The doctor reads the assertion the
// gateway would send, through the gateway's own source (clients.Assertion,
// package fedcred), shows what Entra will compare (issuer, subject,
// audience, dates), and when Entra refuses it, prints the federated
// credential that would match.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fedcred"
	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// tokenExpiryWarning is how close to its end a workload identity token
// gets a WARN. The kubelet rewrites a projected token once 80% of its
// lifetime has passed (about 12 minutes before the end of AKS's one-hour
// tokens): one this close to its end is no longer being rewritten.
const tokenExpiryWarning = 5 * time.Minute

// federated is what the doctor learns of a federated credential.
type federated struct {
	kind string // config.CredentialWorkloadIdentity or config.CredentialManagedIdentity
	// claims are those of the assertion read (the token file's, the
	// managed identity's token), when one was; never the token.
	claims     fedcred.Claims
	haveClaims bool
	// usable: an assertion can be had, so Entra's verdict is worth asking.
	usable bool
}

// what names the assertion in messages.
func (f *federated) what() string {
	if f.kind == config.CredentialManagedIdentity {
		return "managed identity's token"
	}
	return "workload identity's service-account token"
}

// isFederated reports whether the gateway proves itself with a federated
// credential rather than a certificate.
func isFederated(e config.Entra) bool {
	return e.Credential == config.CredentialWorkloadIdentity || e.Credential == config.CredentialManagedIdentity
}

// setting writes a setting with where it was set: entra.x "v" (gateway.yaml:4).
func (r *runner) setting(path, value string) string {
	return clients.Setting{Name: path, Value: value, Origin: r.cfg.Entra.Origin(path)}.String()
}

// checkFederated replaces the certificate checks: it says which credential
// the gateway uses, builds its assertion source as the gateway does, and
// checks what can be checked offline.
func (r *runner) checkFederated() {
	e := r.cfg.Entra
	r.fed = &federated{kind: e.Credential}
	const id, name = "credential/kind", "credential kind"
	how := "AKS workload identity: the pod's projected service-account token (entra.workload_identity) is the client assertion"
	if e.Credential == config.CredentialManagedIdentity {
		how = "a managed identity's token (entra.managed_identity) is the client assertion"
	}
	src, err := clients.Assertion(e, nil)
	if err != nil {
		r.fail(id, name, fmt.Sprintf("%s: %v", r.setting("entra.credential", e.Credential), err),
			"correct entra.managed_identity (docs/configuration.md)")
		return
	}
	r.assertion = src
	r.pass(id, name, fmt.Sprintf("%s: %s, matched by a federated identity credential of app %s; no certificate: the certificate checks (certificate/load, certificate/validity, certificate/identity) do not apply",
		r.setting("entra.credential", e.Credential), how, e.ClientID))
	switch e.Credential {
	case config.CredentialWorkloadIdentity:
		r.checkTokenFile(src)
	case config.CredentialManagedIdentity:
		r.checkManagedIdentitySettings()
	}
}

// checkTokenFile reads the workload identity's token file as the gateway
// does for every assertion, and judges the token's claims.
func (r *runner) checkTokenFile(src clients.AssertionSource) {
	const id, name = "credential/token-file", "workload identity token file"
	path := r.cfg.Entra.WorkloadIdentity.TokenFile
	where := r.setting("entra.workload_identity.token_file", path)
	tf, ok := src.(interface {
		Check() (fedcred.Claims, error)
	})
	if !ok {
		r.fail(id, name, where+": the gateway's assertion source cannot be checked", "report this: the doctor and the gateway disagree on the workload identity's source")
		return
	}
	claims, err := tf.Check()
	var fe *fedcred.Error
	if err != nil && errors.As(err, &fe) && fe.Reason == "expired" {
		// The gateway refuses it, and says why below: show what it holds.
		if data, rerr := os.ReadFile(path); rerr == nil {
			claims, err = fedcred.ParseClaims(strings.TrimSpace(string(data)))
		}
	}
	if err != nil {
		reason, cause := "unreadable", err.Error()
		if errors.As(err, &fe) {
			reason, cause = fe.Reason, fe.Err.Error()
		}
		fix := "the file is projected into the pod by AKS workload identity's webhook: label the pod azure.workload.identity/use: \"true\", annotate its service account azure.workload.identity/client-id: " + r.cfg.Entra.ClientID + ", and restart the pod; AZURE_FEDERATED_TOKEN_FILE then names it (usually /var/run/secrets/azure/tokens/azure-identity-token)"
		switch reason {
		case "unreadable":
			if errors.Is(err, os.ErrPermission) {
				fix = "let the gateway's user read " + path + ": the projected volume's defaultMode, or the pod's securityContext.fsGroup"
			}
		case "empty":
			fix = "the kubelet writes the token into the file: " + fix
		case "not_a_jwt":
			fix = "the file must hold the projected service-account token exactly as the kubelet writes it (a JWT: three base64url parts separated by dots): does entra.workload_identity.token_file (AZURE_FEDERATED_TOKEN_FILE) name another file? " + fix
		}
		r.fail(id, name, fmt.Sprintf("%s: %s%s", where, cause, r.willNotRun()), fix)
		return
	}
	r.fed.claims, r.fed.haveClaims = claims, true
	r.pass(id, name, where+": a JWT (the token itself is never shown)\n"+claimLines(claims))

	usable := r.checkTokenExpiry(claims)
	r.checkTokenAudience(claims)
	r.checkTokenSubject(claims)
	r.fed.usable = usable
}

// willNotRun is appended to an offline failure that keeps the online
// credential check from running.
func (r *runner) willNotRun() string {
	if r.opts.Offline {
		return ""
	}
	return "\n(the client credential and downstream API checks need it and will not run)"
}

// claimLines writes what Entra compares of an assertion, one per line.
func claimLines(c fedcred.Claims) string {
	exp := "(none)"
	if !c.Expiry.IsZero() {
		exp = c.Expiry.UTC().Format(time.RFC3339)
	}
	return strings.Join([]string{
		"iss " + orNone(c.Issuer),
		"sub " + orNone(c.Subject),
		"aud " + orNone(strings.Join(c.Audiences, ", ")),
		"exp " + exp,
	}, "\n")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// checkTokenExpiry judges the token's dates against the clock; it reports
// whether Entra could accept them.
func (r *runner) checkTokenExpiry(c fedcred.Claims) bool {
	const id, name = "credential/token-expiry", "workload identity token validity"
	now := r.opts.Now()
	path := r.cfg.Entra.WorkloadIdentity.TokenFile
	rewritten := "the kubelet rewrites the token file once 80% of the token's lifetime has passed, and the gateway reads it again for every assertion"
	stale := "the file is not being rewritten: it must be the projected volume of a running pod (the workload identity webhook mounts it at /var/run/secrets/azure/tokens), not a copy; restart the pod, and check that it is labelled azure.workload.identity/use: \"true\""
	switch {
	case c.Expiry.IsZero():
		r.fail(id, name, "the token has no exp claim: Entra refuses an assertion without one (AADSTS700024)"+r.willNotRun(), "the file must hold a projected service-account token, which always has an exp: "+stale)
		return false
	case !now.Before(c.Expiry):
		r.fail(id, name, fmt.Sprintf("the token in %s expired at %s (%s ago): the gateway refuses to send it, Entra would answer AADSTS700024%s", path, c.Expiry.UTC().Format(time.RFC3339), roundDuration(now.Sub(c.Expiry)), r.willNotRun()),
			stale+"; if this machine's clock is wrong (it says "+now.UTC().Format(time.RFC3339)+"), correct it")
		return false
	case !c.NotBefore.IsZero() && c.NotBefore.After(now.Add(time.Minute)):
		r.fail(id, name, fmt.Sprintf("the token is not valid before %s (in %s): Entra would answer AADSTS700024%s", c.NotBefore.UTC().Format(time.RFC3339), roundDuration(c.NotBefore.Sub(now)), r.willNotRun()),
			"this machine's clock ("+now.UTC().Format(time.RFC3339)+") is behind the cluster's: correct it with NTP")
		return false
	case c.Expiry.Sub(now) < tokenExpiryWarning:
		r.warn(id, name, fmt.Sprintf("the token expires at %s, in %s: %s, so this close to its end it has not been", c.Expiry.UTC().Format(time.RFC3339), roundDuration(c.Expiry.Sub(now)), rewritten), stale)
		return true
	}
	r.pass(id, name, fmt.Sprintf("expires at %s, in %s (%s)", c.Expiry.UTC().Format(time.RFC3339), roundDuration(c.Expiry.Sub(now)), rewritten))
	return true
}

// checkTokenAudience compares the token's aud with the cloud's
// token-exchange audience.
func (r *runner) checkTokenAudience(c fedcred.Claims) {
	const id, name = "credential/token-audience", "workload identity token audience"
	want := fedcred.Audience(r.cfg.Entra.AuthorityHost)
	aud := strings.Join(c.Audiences, ", ")
	if slices.Contains(c.Audiences, want) {
		r.pass(id, name, fmt.Sprintf("aud %s: the token-exchange audience of %s's cloud, the default of a federated credential", aud, hostOf(r.cfg.Entra.AuthorityHost)))
		return
	}
	r.warn(id, name, fmt.Sprintf("aud %s is not %s, the token-exchange audience of %s's cloud: Entra accepts it only if the federated credential names it as its audience (else AADSTS700212)", orNone(aud), want, hostOf(r.cfg.Entra.AuthorityHost)),
		fmt.Sprintf("the workload identity webhook projects the token with aud %s: if the pod spec projects its own (serviceAccountToken.audience), use %s there, or name the same audience in the federated credential", want, want))
}

// serviceAccountRE is a Kubernetes service account's subject:
// system:serviceaccount:<namespace>:<name>, lower case as Kubernetes
// names are.
var serviceAccountRE = regexp.MustCompile(`^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$`)

// checkTokenSubject checks that the token is a service account's.
func (r *runner) checkTokenSubject(c fedcred.Claims) {
	const id, name = "credential/token-subject", "workload identity token subject"
	if m := serviceAccountRE.FindStringSubmatch(c.Subject); m != nil {
		r.pass(id, name, fmt.Sprintf("sub %s: service account %s of namespace %s; the federated credential's subject must be exactly this (Entra compares it case-sensitively)", c.Subject, m[3], m[1]))
		return
	}
	r.warn(id, name, fmt.Sprintf("sub %s is not of the form system:serviceaccount:<namespace>:<name>, a Kubernetes service account's", orNone(c.Subject)),
		"AKS workload identity's token names the pod's service account: check that the file is the projected service-account token; the federated credential's subject must be exactly the token's sub")
}

// checkManagedIdentitySettings says which managed identity's token the
// gateway asks for, for which audience, and from which endpoint.
func (r *runner) checkManagedIdentitySettings() {
	const id, name = "credential/managed-identity", "managed identity"
	e := r.cfg.Entra
	m := e.ManagedIdentity
	who := "the system-assigned identity (entra.managed_identity.client_id unset)"
	if m.ClientID != "" {
		who = "the user-assigned identity " + r.setting("entra.managed_identity.client_id", m.ClientID)
	}
	def := fedcred.Audience(e.AuthorityHost)
	aud := def + " (the default for " + hostOf(e.AuthorityHost) + ")"
	if m.Audience != "" {
		aud = r.setting("entra.managed_identity.audience", m.Audience)
	}
	detail := fmt.Sprintf("%s, token audience %s\nidentity endpoint: %s", who, aud, managedIdentitySource())
	switch {
	case m.ClientID != "" && strings.EqualFold(m.ClientID, e.ClientID):
		r.fail(id, name, detail+"\nentra.managed_identity.client_id is the app registration's client ID (entra.client_id)",
			"entra.client_id is the gateway app's Application (client) ID; entra.managed_identity.client_id (OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_CLIENT_ID) is the managed identity's own Client ID (its Overview page), or unset for the system-assigned identity")
		return
	case m.Audience != "" && m.Audience != def:
		r.warn(id, name, detail+"\n"+m.Audience+" is not "+def+", the token-exchange audience of this cloud",
			"remove entra.managed_identity.audience (OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_AUDIENCE) to use "+def+", unless the federated credential names this audience")
	default:
		r.pass(id, name, detail)
	}
	r.fed.usable = true
}

// managedIdentitySource says where MSAL's managed identity client will ask
// for the token (it reads the process's environment), never the secret.
func managedIdentitySource() string {
	src, err := managedidentity.GetSource()
	if err != nil {
		return "unknown: " + err.Error()
	}
	switch src {
	case managedidentity.AppService:
		return "App Service's, IDENTITY_ENDPOINT " + os.Getenv("IDENTITY_ENDPOINT") + " (IDENTITY_HEADER set)"
	case managedidentity.ServiceFabric:
		return "Service Fabric's, IDENTITY_ENDPOINT " + os.Getenv("IDENTITY_ENDPOINT")
	case managedidentity.AzureArc:
		return "Azure Arc's, IDENTITY_ENDPOINT " + os.Getenv("IDENTITY_ENDPOINT")
	case managedidentity.CloudShell, managedidentity.AzureML:
		return string(src) + "'s, MSI_ENDPOINT " + os.Getenv("MSI_ENDPOINT")
	}
	return "the instance metadata service (IMDS, http://169.254.169.254) of the VM, scale set or AKS node"
}

// checkManagedIdentityToken gets one token through the gateway's own
// source and shows what Entra will compare.
func (r *runner) checkManagedIdentityToken(ctx context.Context) {
	const id, name = "credential/managed-identity-token", "managed identity token"
	e := r.cfg.Entra
	ctx, cancel := context.WithTimeout(ctx, r.online.timeout)
	defer cancel()
	tok, err := r.assertion.Assertion(ctx)
	if err != nil {
		r.fed.usable = false
		cause := err.Error()
		var fe *fedcred.Error
		if errors.As(err, &fe) {
			cause = fe.Err.Error()
		}
		who := "the system-assigned identity"
		if e.ManagedIdentity.ClientID != "" {
			who = "the identity with client ID " + e.ManagedIdentity.ClientID
		}
		r.fail(id, name, fmt.Sprintf("no token of %s from %s: %s\n(the client credential and downstream API checks need it and were not run)", who, managedIdentitySource(), cause),
			"assign "+who+" to the resource the gateway runs on (VM, scale set, App Service, Container App), and check entra.managed_identity.client_id (OBO_GATEWAY_ENTRA_MANAGED_IDENTITY_CLIENT_ID); outside Azure there is no managed identity: use entra.credential workload_identity or certificate")
		return
	}
	c, err := fedcred.ParseClaims(tok)
	if err != nil {
		r.fed.usable = false
		r.fail(id, name, "the identity endpoint answered a token that is not a JWT: "+err.Error(),
			"something other than the managed identity endpoint answers at "+managedIdentitySource())
		return
	}
	r.fed.claims, r.fed.haveClaims = c, true
	left := ""
	if !c.Expiry.IsZero() {
		left = fmt.Sprintf(" (in %s)", roundDuration(c.Expiry.Sub(r.opts.Now())))
	}
	r.pass(id, name, fmt.Sprintf("token of the managed identity from %s (the token itself is never shown)\niss %s\nsub %s (the identity's object ID, its oid)\naud %s\nexp %s%s",
		managedIdentitySource(), orNone(c.Issuer), orNone(c.Subject), orNone(strings.Join(c.Audiences, ", ")),
		c.Expiry.UTC().Format(time.RFC3339), left))
}

// federatedProblem says what to do when Entra refuses the federated
// assertion; ok is false for a refusal that is not about it.
func (r *runner) federatedProblem(oe *obo.Error) (detail, fix string, ok bool) {
	e := r.cfg.Entra
	f := r.fed
	c := f.claims
	code := oe.AADSTS()
	switch code {
	case 70021, 700211, 700212, 700213, 7002138, 700024, 7000272, 700027:
	default:
		return "", "", false
	}
	detail = describeEntra(oe)
	if f.haveClaims {
		detail += "\nthe assertion, the " + f.what() + ":\n" + claimLines(c)
	}
	fic := r.federatedCredentialToCreate()
	switch code {
	case 70021:
		fix = fmt.Sprintf("app %s has no federated identity credential for this assertion: create this one%s", e.ClientID, fic)
	case 700211:
		fix = fmt.Sprintf("no federated identity credential of app %s has the issuer %s", e.ClientID, orNone(c.Issuer))
		if f.kind == config.CredentialWorkloadIdentity {
			fix += " (for AKS, the cluster's OIDC issuer URL exactly as az aks show --query oidcIssuerProfile.issuerUrl prints it, trailing / included)"
		}
		fix += ": create this one, or correct the issuer of yours" + fic
	case 700213:
		fix = fmt.Sprintf("no federated identity credential of app %s with issuer %s has the subject %s: create this one", e.ClientID, orNone(c.Issuer), orNone(c.Subject))
		if f.kind == config.CredentialWorkloadIdentity {
			fix += " (or run the pod under the service account your credential names)"
		}
		fix += fic
	case 7002138:
		fix = fmt.Sprintf("a federated identity credential of app %s has the subject %s but in another case: the subject differs only in case, and Entra compares it case-sensitively; correct its subject to exactly %s, or create this one%s", e.ClientID, orNone(c.Subject), orNone(c.Subject), fic)
	case 700212:
		fix = fmt.Sprintf("the federated identity credential of app %s with issuer %s and subject %s names another audience than the assertion's (%s): set its audience to %s, or create this one%s",
			e.ClientID, orNone(c.Issuer), orNone(c.Subject), orNone(strings.Join(c.Audiences, ", ")), ficAudience(c, e.AuthorityHost), fic)
	case 700024:
		now := r.opts.Now().UTC().Format(time.RFC3339)
		fix = "Entra finds the assertion out of its validity: this machine's clock says " + now + " (compare it with an NTP source)"
		if f.kind == config.CredentialWorkloadIdentity {
			fix += "; the token file must be rewritten by the kubelet (a projected volume of a running pod, not a copy)"
		}
		fix += "; the federated identity credential itself matches"
	case 7000272, 700027:
		fix = "Entra could not verify the assertion's signature with its issuer's published keys"
		if f.kind == config.CredentialWorkloadIdentity {
			fix += ": the cluster's service-account signing key was rotated, or the federated credential's issuer URL (" + orNone(c.Issuer) + ") is another cluster's; check that the issuer serves the key (<issuer>/openid/v1/jwks)"
		}
	}
	return detail, fix, true
}

// ficAudience is the audience of the federated credential to create: the
// cloud's token-exchange audience if the assertion has it, else its first.
func ficAudience(c fedcred.Claims, authorityHost string) string {
	want := fedcred.Audience(authorityHost)
	if slices.Contains(c.Audiences, want) || len(c.Audiences) == 0 {
		return want
	}
	return c.Audiences[0]
}

// federatedCredentialToCreate writes the federated identity credential
// that matches the assertion read, and the az command that creates it;
// "" when no assertion was read.
func (r *runner) federatedCredentialToCreate() string {
	f := r.fed
	if !f.haveClaims {
		return ""
	}
	c := f.claims
	e := r.cfg.Entra
	name := "obo-gateway-managed-identity"
	if m := serviceAccountRE.FindStringSubmatch(c.Subject); m != nil {
		name = "aks-" + m[1] + "-" + strings.ReplaceAll(m[3], ".", "-")
	} else if f.kind == config.CredentialWorkloadIdentity {
		name = "obo-gateway-workload-identity"
	}
	aud := ficAudience(c, e.AuthorityHost)
	params := struct {
		Name      string   `json:"name"`
		Issuer    string   `json:"issuer"`
		Subject   string   `json:"subject"`
		Audiences []string `json:"audiences"`
	}{name, c.Issuer, c.Subject, []string{aud}}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(params)
	return fmt.Sprintf(":\nissuer %s\nsubject %s\naudience %s\naz ad app federated-credential create --id %s --parameters '%s'",
		c.Issuer, c.Subject, aud, e.ClientID, strings.TrimSpace(b.String()))
}
