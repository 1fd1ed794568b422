package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// online holds the clients of the online checks.
type online struct {
	entra    *http.Client // Entra: system roots plus entra.ca_file
	upstream *http.Client // upstreams: the gateway's upstream transport, no redirects
	timeout  time.Duration

	msal    *confidential.Client
	msalErr error
	tokens  map[string]tokenResult // by resource
	probes  map[string]probeResult // by upstream URL
}

// tokenResult is the answer to a client-credentials request.
type tokenResult struct {
	token string
	err   *obo.Error
}

type probeResult struct {
	status  string
	elapsed time.Duration
	err     error
}

func (r *runner) newOnline() *online {
	e := r.cfg.Entra
	o := &online{timeout: e.TokenTimeout.D(), tokens: map[string]tokenResult{}, probes: map[string]probeResult{}}

	// The gateway's own clients (package clients), so that what the doctor
	// finds is what the gateway will meet.
	entra, err := clients.Entra(e, r.opts.dial)
	if err != nil {
		// checkCAFile reported the file: go on with the system's CAs.
		e.CAFile = ""
		entra, _ = clients.Entra(e, r.opts.dial)
	}
	o.entra = entra
	o.upstream = &http.Client{
		Transport:     clients.Upstream(r.opts.dial),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return o
}

// get fetches url from Entra, returning the status and up to 1 MiB of body.
// The call is bounded by entra.token_timeout: the doctor reports a slow
// Entra rather than waiting out the client's own, longer bound.
func (o *online) get(ctx context.Context, u string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := o.entra.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// oidcDoc is what the doctor reads of a discovery document.
type oidcDoc struct {
	Issuer            string `json:"issuer"`
	JWKSURI           string `json:"jwks_uri"`
	TokenEndpoint     string `json:"token_endpoint"`
	CloudInstanceName string `json:"cloud_instance_name"`
	TenantRegionScope string `json:"tenant_region_scope"`
}

// notRun is appended to a failure that keeps later checks from running.
const notRun = "\n(the client credential and downstream API checks need it and were not run)"

// checkAuthority reads the tenant's OIDC discovery documents and signing
// keys. It reports whether the tenant answered, so that token requests are
// worth making.
func (r *runner) checkAuthority(ctx context.Context) bool {
	const id, name = "authority/discovery", "authority"
	e := r.cfg.Entra
	host, tenant := e.AuthorityHost, e.TenantID
	hostName := hostOf(host)
	v2URL := auth.DiscoveryURL(host, tenant, true)

	status, body, err := r.online.get(ctx, v2URL)
	if err != nil {
		f := classifyNet(err)
		r.fail(id, name, fmt.Sprintf("cannot reach %s: %s (%s)%s", host, f.class, f.cause, notRun), entraNetFix(f, hostName))
		return false
	}
	if status != http.StatusOK {
		oe := &obo.Error{Status: status}
		if obo.ParseErrorBody(body, oe) && oe.AADSTS() == 90002 {
			r.fail(id, name, fmt.Sprintf("tenant %s not found at %s: %s%s", tenant, host, describeEntra(oe), notRun), tenantNotFoundFix(tenant, hostName))
			return false
		}
		what := describeEntra(oe)
		if oe.Code == "" {
			what = fmt.Sprintf("HTTP %d: %.200s", status, strings.TrimSpace(string(body)))
		}
		r.fail(id, name, fmt.Sprintf("%s answered %s%s", v2URL, what, notRun),
			"entra.authority_host must be Entra's host (https://login.microsoftonline.com, or a national cloud's), not a portal or proxy URL; and entra.tenant_id the Directory (tenant) ID GUID")
		return false
	}
	var doc oidcDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		r.fail(id, name, fmt.Sprintf("%s is not an OpenID configuration (%v)%s", v2URL, err, notRun),
			"entra.authority_host must be Entra's host, e.g. https://login.microsoftonline.com: something else answers there")
		return false
	}
	// The v2 document is in hand: fetch only the v1 one, and let the
	// gateway's own parser judge both.
	v1URL := auth.DiscoveryURL(host, tenant, false)
	v1Status, v1Body, err := r.online.get(ctx, v1URL)
	if err == nil && v1Status != http.StatusOK {
		err = fmt.Errorf("%s answered HTTP %d: %.200s", v1URL, v1Status, strings.TrimSpace(string(v1Body)))
	}
	var meta auth.Metadata
	if err == nil {
		meta, err = auth.ParseDiscovery(tenant, body, v1Body)
	}
	if err != nil {
		r.fail(id, name, fmt.Sprintf("the gateway cannot use the discovery documents: %v%s", err, notRun),
			"the tenant's v2 and v1 OpenID configurations must both answer, each with an issuer naming the tenant and a jwks_uri: check entra.authority_host and entra.tenant_id")
		return false
	}
	v2, v1 := meta.Issuers(tenant)
	detail := strings.Join([]string{
		fmt.Sprintf("OIDC discovery v2 and v1 of tenant %s answer at %s", tenant, host),
		"issuers (accepted in tokens): " + v2 + " (v2), " + v1 + " (v1)",
		"token endpoint: " + doc.TokenEndpoint,
		"jwks_uri: " + meta.JWKSURI,
	}, "\n")
	cloud, docCloud := cloudOfHost(hostName), strings.ToLower(doc.CloudInstanceName)
	switch {
	case cloud != "" && docCloud != "" && cloud != docCloud:
		r.fail(id, name, fmt.Sprintf("tenant %s is in the %s cloud, but entra.authority_host %s is the %s cloud's\n%s", tenant, docCloud, host, cloud, detail),
			fmt.Sprintf("set entra.authority_host (AZURE_AUTHORITY_HOST) to https://login.%s: Entra refuses a confidential client across clouds (AADSTS90038)", docCloud))
	case doc.TokenEndpoint != "" && !strings.EqualFold(hostOf(doc.TokenEndpoint), hostName) && cloud == "":
		r.warn(id, name, fmt.Sprintf("the token endpoint %s is not on the authority host %s\n%s", doc.TokenEndpoint, host, detail),
			"set entra.authority_host to the host the tenant's discovery document names, so that MSAL accepts its issuer")
	default:
		r.pass(id, name, detail)
	}
	r.checkKeys(ctx, meta.JWKSURI)
	return true
}

// checkKeys fetches the tenant's signing keys, as the gateway does to verify tokens.
func (r *runner) checkKeys(ctx context.Context, jwksURI string) {
	const id, name = "authority/keys", "signing keys"
	status, body, err := r.online.get(ctx, jwksURI)
	if err != nil {
		f := classifyNet(err)
		r.fail(id, name, fmt.Sprintf("cannot fetch %s: %s (%s)", jwksURI, f.class, f.cause), entraNetFix(f, hostOf(jwksURI)))
		return
	}
	if status != http.StatusOK {
		r.fail(id, name, fmt.Sprintf("%s answered HTTP %d: %.200s", jwksURI, status, strings.TrimSpace(string(body))),
			"the jwks_uri of the discovery document must serve the signing keys: check egress to it (a proxy answering instead?)")
		return
	}
	set, err := jwk.Parse(body)
	if err != nil {
		r.fail(id, name, fmt.Sprintf("%s is not a JSON Web Key Set: %v", jwksURI, err),
			"the jwks_uri must serve Entra's keys: check what answers at that address (a proxy or captive portal?)")
		return
	}
	var kids []string
	rsaKeys, withAlg := 0, 0
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyType() != jwa.RSA {
			continue
		}
		rsaKeys++
		if k.KeyID() != "" {
			kids = append(kids, k.KeyID())
		}
		if k.Algorithm().String() != "" {
			withAlg++
		}
	}
	if _, err := auth.NewStaticKeySet(set); err != nil || len(kids) == 0 {
		r.fail(id, name, fmt.Sprintf("%s holds %d key(s), %d RSA with a kid: the gateway can verify no token", jwksURI, set.Len(), len(kids)),
			"the tenant's jwks_uri must list RSA keys with a kid: check that entra.authority_host is Entra's host")
		return
	}
	alg := "none carries alg, as Entra publishes them: the gateway infers RS256 from the key"
	if withAlg > 0 {
		alg = fmt.Sprintf("%d carry alg", withAlg)
	}
	r.pass(id, name, fmt.Sprintf("%d RSA signing key(s) at %s, kid %s; %s\n(the app's own certificate never appears here: that is normal)",
		rsaKeys, jwksURI, strings.Join(kids, ", "), alg))
}

// msalClient is MSAL's confidential client for the gateway's certificate
// or assertion source, built by the obo package as the gateway builds it.
func (r *runner) msalClient() (*confidential.Client, error) {
	o := r.online
	if o.msal != nil || o.msalErr != nil {
		return o.msal, o.msalErr
	}
	c, err := obo.NewClient(r.msalConfig(), r.cert)
	if err != nil {
		o.msalErr = err
		return nil, err
	}
	o.msal = &c
	return o.msal, nil
}

// msalConfig is the MSAL client's configuration, the gateway's own
// (clients.OBO).
func (r *runner) msalConfig() obo.Config {
	return clients.OBO(r.cfg.Entra, r.cert, r.assertion, r.online.entra)
}

// token asks for an app-only token for resource/.default, once per resource.
func (r *runner) token(ctx context.Context, resource string) tokenResult {
	if tr, ok := r.online.tokens[resource]; ok {
		return tr
	}
	client, err := r.msalClient()
	if err != nil {
		return tokenResult{err: &obo.Error{Code: "msal_error", Err: err}}
	}
	ctx, cancel := context.WithTimeout(ctx, r.online.timeout)
	defer cancel()
	var tr tokenResult
	res, err := client.AcquireTokenByCredential(ctx, []string{resource + "/.default"})
	if err != nil {
		tr.err = entraError(ctx, err)
	} else {
		tr.token = res.AccessToken
	}
	r.online.tokens[resource] = tr
	return tr
}

// scopeRefusal reports whether Entra refused the resource or the scope,
// not the credential.
func scopeRefusal(e *obo.Error) bool {
	switch e.AADSTS() {
	case 500011, 70011, 1002012, 28000, 700022:
		return true
	}
	return false
}

// checkCredentialAndResources proves the credential (the certificate, or
// the federated credential's assertion) with a client-credentials token,
// then checks each route's downstream API.
func (r *runner) checkCredentialAndResources(ctx context.Context) {
	if r.cert == nil && (r.fed == nil || !r.fed.usable) {
		return // certificate/load, or the federated credential's checks, failed and said so
	}
	e := r.cfg.Entra
	const id, name = "credential", "client credential"
	probe, probeRoute := "", ""
	for _, rt := range r.cfg.Routes {
		if res := rt.Resource(); res != "" {
			probe, probeRoute = res, rt.Name
			break
		}
	}
	if probe == "" {
		probe = e.ClientID // the gateway's own app: it exists if the client does
	}
	used := probe
	tr := r.token(ctx, probe)
	if tr.err != nil && scopeRefusal(tr.err) && probe != e.ClientID {
		// The first route's resource is the problem (its own check says
		// so): prove the credential with the gateway's own app instead.
		used = e.ClientID
		tr = r.token(ctx, used)
	}
	if tr.err != nil {
		detail, fix := r.credentialProblem(tr.err, probeRoute)
		r.fail(id, name, detail+"\n(the downstream API checks need an accepted credential and were not run)", fix)
		return
	}
	if r.fed != nil {
		accepted := "Entra accepted the " + r.fed.what()
		if c := r.fed.claims; r.fed.haveClaims {
			accepted += fmt.Sprintf(" (iss %s, sub %s)", orNone(c.Issuer), orNone(c.Subject))
		}
		r.pass(id, name, fmt.Sprintf("%s as a federated credential of app %s: app-only token for %s/.default issued%s",
			accepted, e.ClientID, used, tokenSummary(tr.token)))
	} else {
		t := ThumbprintsOf(r.cert.Leaf())
		r.pass(id, name, fmt.Sprintf("Entra accepted the certificate (x5t#S256 %s) for app %s: app-only token for %s/.default issued%s",
			t.X5TS256, e.ClientID, used, tokenSummary(tr.token)))
	}

	for i := range r.cfg.Routes {
		rt := &r.cfg.Routes[i]
		if res := rt.Resource(); res != "" {
			r.resourceVerdict(rt, res, r.token(ctx, res))
		}
	}
}

// credentialProblem says why Entra refused the client-credentials request
// and what to do.
func (r *runner) credentialProblem(oe *obo.Error, route string) (detail, fix string) {
	e := r.cfg.Entra
	host := hostOf(e.AuthorityHost)
	if oe.Status == 0 {
		switch {
		case oe.Timeout:
			return fmt.Sprintf("Entra's token endpoint did not answer within entra.token_timeout (%s)", e.TokenTimeout),
				entraNetFix(netFailure{kind: netTimeout}, host)
		case oe.CodeLabel() == "credential":
			fix = "the gateway could not get its client assertion: see the checks above (credential/…)"
			if r.fed != nil && r.fed.kind == config.CredentialWorkloadIdentity {
				fix = "the token file cannot be used now (rewritten or removed since it was checked?): run the doctor again; in Kubernetes, the pod must be labelled azure.workload.identity/use: \"true\" and its service account annotated azure.workload.identity/client-id"
			}
			return "no client assertion: " + oe.Err.Error(), fix
		case oe.Code == "msal_error":
			fix = "MSAL could not use the tenant's answers: check entra.authority_host and entra.instance_discovery"
			if strings.Contains(oe.Err.Error(), "does not match authority") {
				fix = "the discovery document's issuer is on another host than entra.authority_host: set entra.authority_host to the issuer's host"
			}
			return "MSAL: " + oe.Err.Error(), fix
		default:
			f := classifyNet(oe.Err)
			return fmt.Sprintf("cannot reach the token endpoint: %s (%s)", f.class, f.cause), entraNetFix(f, host)
		}
	}
	if r.fed != nil {
		if detail, fix, ok := r.federatedProblem(oe); ok {
			return detail, fix
		}
	}
	detail = describeEntra(oe)
	hint := func(code int, fallback string) string {
		if entry, ok := obo.Lookup(code); ok && entry.Hint != "" {
			return entry.Hint
		}
		return fallback
	}
	switch code := oe.AADSTS(); code {
	case 700027, 700024, 1000502, 7000214:
		if r.cert == nil {
			fix = hint(code, oe.Hint())
			break
		}
		fix = r.certificateFix(code)
	case 700016:
		fix = fmt.Sprintf("the client ID %s is not an app in tenant %s: set entra.client_id (AZURE_CLIENT_ID) to the Application (client) ID of the gateway's app registration (its Overview page), and entra.tenant_id (AZURE_TENANT_ID) to the Directory (tenant) ID on the same page",
			e.ClientID, e.TenantID)
	case 7000215, 7000222:
		fix = hint(code, "") + "; the gateway authenticates with a client assertion only (its certificate's, or its federated credential's): remove any client secret from the request path (a proxy adding one?)"
	case 7000218:
		fix = "Entra received no client credential: the gateway sends a client assertion (signed with its certificate, or its federated credential's token); something between it and Entra (a proxy rewriting the body?) removed it"
	case 90002:
		fix = tenantNotFoundFix(e.TenantID, host)
	case 90038:
		fix = hint(code, "") + ": set entra.authority_host to the tenant's cloud (https://login.microsoftonline.us for US Government, https://login.partner.microsoftonline.cn for China)"
	case 500011:
		fix = fmt.Sprintf("the resource of route %s is not in the tenant: see that route's downstream API check", route)
	case 70011, 1002012:
		fix = "a scope is malformed: " + hint(code, "use <App ID URI>/.default")
	default:
		fix = hint(code, oe.Hint())
	}
	return detail, fix
}

// resourceVerdict reports whether a route's downstream API exists in the
// tenant, from a client-credentials answer for <resource>/.default.
func (r *runner) resourceVerdict(rt *config.Route, resource string, tr tokenResult) {
	id, name := "route/"+rt.Name+"/resource", "route "+rt.Name+": downstream API"
	tenant := r.cfg.Entra.TenantID
	if tr.err == nil {
		r.pass(id, name, fmt.Sprintf("%s is registered in tenant %s: app-only token issued%s", resource, tenant, tokenSummary(tr.token)))
		return
	}
	oe := tr.err
	field := fmt.Sprintf("routes[].downstream_scopes of route %s (%s)", rt.Name, config.RouteEnvVar(rt.Name, "DOWNSTREAM_SCOPES"))
	if oe.Status == 0 {
		detail, fix := r.credentialProblem(oe, rt.Name)
		r.fail(id, name, detail, fix)
		return
	}
	switch code := oe.AADSTS(); code {
	case 500011:
		r.fail(id, name, fmt.Sprintf("the downstream API %s is not registered in tenant %s (AADSTS500011)\n%s", resource, tenant, describeEntra(oe)),
			fmt.Sprintf("write the API's App ID URI (its app registration's Expose an API page) or its Application (client) ID in %s, or register the API in tenant %s", field, tenant))
	case 70011, 1002012, 28000, 700022:
		hint := "use <App ID URI>/.default or <App ID URI>/<scope>"
		if entry, ok := obo.Lookup(code); ok {
			hint = entry.Hint
		}
		r.fail(id, name, fmt.Sprintf("Entra refuses the scope %s/.default (AADSTS%d)\n%s", resource, code, describeEntra(oe)), hint+" in "+field)
	case 501051:
		r.pass(id, name, fmt.Sprintf("%s exists in tenant %s: Entra answered AADSTS501051 (app-only access needs an app role assignment; On-Behalf-Of is delegated and does not)", resource, tenant))
	default:
		r.warn(id, name, fmt.Sprintf("could not confirm that %s exists: %s", resource, describeEntra(oe)), oe.Hint())
	}
}

// tokenSummary shows the audience and roles of an access token, never the token.
func tokenSummary(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Aud   any      `json:"aud"`
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	s := fmt.Sprintf(" (aud %v", c.Aud)
	if len(c.Roles) > 0 {
		s += ", roles " + strings.Join(c.Roles, ", ")
	} else {
		s += ", no app roles: fine, On-Behalf-Of tokens carry the user's delegated scopes"
	}
	return s + ")"
}

func tenantNotFoundFix(tenant, host string) string {
	fix := fmt.Sprintf("check entra.tenant_id (AZURE_TENANT_ID): %s must be the Directory (tenant) ID on the app registration's Overview page", tenant)
	if cloud := cloudOfHost(host); cloud != "" {
		fix += fmt.Sprintf("; if the tenant is in a national cloud, entra.authority_host must be that cloud's (now %s): https://login.microsoftonline.us (US Government), https://login.partner.microsoftonline.cn (China)", host)
	}
	return fix
}

// hostOf returns the host of a URL ("" if it has none).
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Hostname())
}

// cloudOfHost names the cloud of a Microsoft Entra host as discovery
// documents do (cloud_instance_name), or "" for other hosts.
func cloudOfHost(host string) string {
	switch strings.ToLower(host) {
	case "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net":
		return "microsoftonline.com"
	case "login.microsoftonline.us", "login-us.microsoftonline.com", "login.usgovcloudapi.net":
		return "microsoftonline.us"
	case "login.partner.microsoftonline.cn", "login.chinacloudapi.cn":
		return "partner.microsoftonline.cn"
	}
	return ""
}

// certificateFix says what to do when Entra refuses the certificate.
func (r *runner) certificateFix(code int) string {
	e := r.cfg.Entra
	leaf := r.cert.Leaf()
	t := ThumbprintsOf(leaf)
	var fix string
	switch code {
	case 700027:
		fix = fmt.Sprintf("this certificate is not registered on app %s: upload %s in the app registration's Certificates & secrets (thumbprint %s)",
			e.ClientID, e.Certificate.Path, t.SHA1Hex) + uploadHint(e.Certificate.Path)
	case 700024, 1000502:
		now := r.opts.Now().UTC()
		fix = fmt.Sprintf("Entra finds the client assertion or the certificate out of its validity: this machine's clock says %s (compare it with an NTP source), and the certificate is valid from %s to %s; if it has expired, make a new one and upload it",
			now.Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	case 7000214:
		fix = "the certificate (thumbprint " + t.SHA1Hex + ") has been revoked: make a new one, upload it and configure it"
	}
	return fix
}
