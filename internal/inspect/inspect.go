// Package inspect explains an Entra ID token to the developer debugging an
// On-Behalf-Of flow: what it is (v1 or v2, a user's or an app's, for which
// audience, scopes or roles, tenant, client, times), whether a given
// gateway configuration would accept it and on which routes, whether its
// signature verifies against a saved key set, and whether it can serve as
// an OBO assertion, and if not, why, in words the developer acts on.
//
// It decodes without trusting: nothing it reports about a token is
// trusted unless its signature verified. It never reports the token
// itself or its signature; the decoded claims are reported whole (it is
// the developer's own token).
package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/auth"
)

// Options configure Inspect.
type Options struct {
	// At is the instant time claims are evaluated at. Zero means time.Now().
	At time.Time
	// AtSource says where At came from, for the report ("-at"); "" means now.
	AtSource string
	// Gateway, when not nil, is checked: would it accept the token, and on
	// which routes; and the token's audience is compared with it.
	Gateway *Gateway
	// Keys, when not nil, is the key set the signature is verified against
	// (auth.ParseKeySet, the gateway's own reading of a key set); KeysName
	// names it in messages.
	Keys     *auth.StaticKeySet
	KeysName string
}

// Token kinds, Report.Kind.
const (
	KindUser            = "user"             // a delegated token: a user signed in to a client (scp)
	KindApp             = "app"              // app-only: client credentials (idtyp app, or no scp)
	KindIDToken         = "id_token"         // an ID token: proves a sign-in to the client, calls no API
	KindClientAssertion = "client_assertion" // a client's proof of identity to the token endpoint
	KindUnknown         = "unknown"
)

// Report is what Inspect finds. Its JSON form is the -json output.
type Report struct {
	Input  Input   `json:"input"`
	Header *Header `json:"header,omitempty"`
	// Version is "1.0" or "2.0", from ver or, failing it, from the issuer's shape.
	Version       string `json:"version,omitempty"`
	VersionSource string `json:"version_source,omitempty"`
	// Kind is KindUser, KindApp, KindIDToken, KindClientAssertion or KindUnknown.
	Kind       string     `json:"kind,omitempty"`
	KindReason string     `json:"kind_reason,omitempty"`
	Issuer     *Issuer    `json:"issuer,omitempty"`
	Audience   *Audience  `json:"audience,omitempty"`
	Scopes     []string   `json:"scopes,omitempty"`
	Roles      []string   `json:"roles,omitempty"`
	Tenant     *Tenant    `json:"tenant,omitempty"`
	Client     *Client    `json:"client,omitempty"`
	Subject    *Subject   `json:"subject,omitempty"`
	Times      *Times     `json:"times,omitempty"`
	AMR        []string   `json:"amr,omitempty"`
	ACR        string     `json:"acr,omitempty"`
	Signature  *Signature `json:"signature,omitempty"`
	// Gateway is set when a gateway configuration was given.
	Gateway *GatewayVerdict `json:"gateway,omitempty"`
	OBO     OBOVerdict      `json:"obo"`
	// Notes are further observations, in words.
	Notes []string `json:"notes,omitempty"`
	// Claims is the decoded payload, as it is (not trusted).
	Claims json.RawMessage `json:"claims,omitempty"`
}

// Header is the token's JOSE header. The nonce's value is not reported.
type Header struct {
	Alg   string `json:"alg"`
	Kid   string `json:"kid,omitempty"`
	X5t   string `json:"x5t,omitempty"`
	Typ   string `json:"typ,omitempty"`
	Nonce bool   `json:"nonce"`
	// Other lists the names of any further header parameters.
	Other []string `json:"other,omitempty"`
}

// Issuer is the iss claim and what its shape says.
type Issuer struct {
	Value string `json:"value"`
	// Shape is "v1" (https://sts.windows.net/<tid>/, or <host>/<tid>/),
	// "v2" (<host>/<tid>/v2.0), "other" or "none".
	Shape string `json:"shape"`
	// Tenant is the tenant GUID the issuer names, if any.
	Tenant string `json:"tenant,omitempty"`
	// Cloud names the Microsoft cloud of its host, or says it is none.
	Cloud string `json:"cloud,omitempty"`
}

// Audience is the aud claim, each value explained.
type Audience struct {
	Values []AudienceValue `json:"values"`
	// Kind is the kind of the value that matters: the one naming the
	// gateway if any, else the first.
	Kind string `json:"kind"`
}

// Audience kinds, AudienceValue.Kind.
const (
	AudGatewayClientID = "gateway_client_id"  // this gateway's client ID (v2 tokens)
	AudGatewayAppIDURI = "gateway_app_id_uri" // one of this gateway's App ID URIs (v1 tokens)
	AudGatewaySPN      = "gateway_spn"        // spn:<the gateway's client ID>: Entra's, but the gateway refuses it
	AudGraph           = "microsoft_graph"
	AudMicrosoftAPI    = "microsoft_api" // another Microsoft API (ARM, Key Vault, Azure AD Graph, ...)
	AudSPN             = "spn"           // spn:<application ID>: an app named by its application ID (v1)
	AudClientID        = "client_id"     // an application's client ID (GUID)
	AudAppIDURI        = "app_id_uri"    // an App ID URI of another API
	AudTokenEndpoint   = "token_endpoint"
	AudOther           = "other"
	AudNone            = "none"
)

// AudienceValue is one value of aud.
type AudienceValue struct {
	Value       string `json:"value"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// Tenant is the tid claim and how it relates to the issuer and the gateway.
type Tenant struct {
	ID string `json:"tid"`
	// MatchesIssuer says whether iss names the same tenant (nil: iss names none).
	MatchesIssuer *bool `json:"matches_issuer,omitempty"`
	// Note explains a well-known tenant (personal Microsoft accounts).
	Note string `json:"note,omitempty"`
	// Gateway is "home tenant", "allowed tenant" or "not allowed", with a gateway.
	Gateway string `json:"gateway,omitempty"`
}

// Client is the app the token was issued to.
type Client struct {
	ID string `json:"id"`
	// Claim is azp (v2) or appid (v1).
	Claim string `json:"claim"`
	// AuthMethod is how the client authenticated (azpacr/appidacr).
	AuthMethod string `json:"auth_method,omitempty"`
	// Name is app_displayname, when present.
	Name string `json:"name,omitempty"`
	// IsGateway is true when the client is this gateway's app.
	IsGateway bool `json:"is_gateway,omitempty"`
}

// Subject is who the token is about.
type Subject struct {
	Sub  string `json:"sub,omitempty"`
	OID  string `json:"oid,omitempty"`
	Name string `json:"name,omitempty"`
	// Username is upn, preferred_username, unique_name or email, named by UsernameClaim.
	Username      string `json:"username,omitempty"`
	UsernameClaim string `json:"username_claim,omitempty"`
}

// Time statuses, Times.Status.
const (
	TimeValid       = "valid"
	TimeExpired     = "expired"
	TimeNotYetValid = "not_yet_valid"
	TimeNoExpiry    = "no_exp"
)

// Times are the time claims, relative to the evaluation instant.
type Times struct {
	// At is the evaluation instant (RFC 3339); AtSource is "now" or "-at".
	At        string   `json:"at"`
	AtSource  string   `json:"at_source"`
	IssuedAt  *Instant `json:"iat,omitempty"`
	NotBefore *Instant `json:"nbf,omitempty"`
	Expires   *Instant `json:"exp,omitempty"`
	// Status is TimeValid, TimeExpired, TimeNotYetValid or TimeNoExpiry, with no leeway.
	Status string `json:"status"`
	// Lifetime is exp - iat, e.g. "1h5m".
	Lifetime string `json:"lifetime,omitempty"`
}

// Instant is a time claim.
type Instant struct {
	Unix int64  `json:"unix"`
	Time string `json:"time"`
	// Relative is the instant in words, from the evaluation instant:
	// "expired 3h12m ago", "expires in 41m".
	Relative string `json:"relative"`
}

// Inspect decodes and explains a token. raw may carry what people paste
// around a token (whitespace, "Bearer ", "Authorization:", quotes, a whole
// token response). It never fails: what cannot be read is reported.
func Inspect(raw string, opt Options) *Report {
	if opt.At.IsZero() {
		opt.At = time.Now()
	}
	if opt.AtSource == "" {
		opt.AtSource = "now"
	}
	r := &Report{}
	tok, removed := normalize(raw)
	r.Input.Removed = removed

	// The gateway's own checks decide; what inspect decodes below is for
	// the words. With a configuration, every check of the validator; without
	// one, those that need none.
	ctx := context.Background()
	var keys auth.KeySet = auth.NoKeySet{}
	if opt.Keys != nil {
		keys = opt.Keys
	}
	var ex *auth.Explanation
	var verr error
	if opt.Gateway != nil {
		var v *auth.Validator
		if v, verr = opt.Gateway.validator(keys, opt.At); verr == nil {
			ex = v.Explain(ctx, tok)
		}
	}
	if ex == nil {
		ex = auth.ExplainSignature(ctx, keys, tok)
	}

	p := split(tok, &r.Input)
	if p == nil {
		code := "not_jwt"
		if r.Input.Kind == InputJWE {
			code = "jwe"
		}
		r.OBO.Problems = append(r.OBO.Problems, Finding{Code: code, Message: r.Input.Problem + ": Entra refuses it as an assertion", AADSTS: []int{50027}})
		if opt.Gateway != nil {
			r.Gateway = gatewayVerdict(r, ex, verr, opt.Gateway)
		}
		return r
	}
	if ex.Checks[0].Result == auth.Fail {
		// Readable, but not in the one canonical form Entra issues
		// (padding, another alphabet, stray bits): the gateway refuses it.
		r.Input.Problem = ex.Checks[0].Message
	}
	var compact bytes.Buffer
	if json.Compact(&compact, p.claimsJSON) == nil {
		r.Claims = compact.Bytes()
	}
	c := claims(p.claims)
	nonce := r.readHeader(p)
	r.readClaims(c, ex, opt)
	r.Signature = signatureOf(ex, p, r.Header, nonce, opt)
	if opt.Gateway != nil {
		r.Gateway = gatewayVerdict(r, ex, verr, opt.Gateway)
	}
	r.OBO = oboVerdict(r, opt)
	if ex.Checks[0].Result == auth.Fail && r.Signature.Status != SigUnsigned {
		r.OBO.Problems = append(r.OBO.Problems, Finding{Code: "not_compact",
			Message: r.Input.Problem + ": not the canonical compact form Entra issues; the gateway refuses it, and the token was altered after it was issued"})
		r.OBO.Usable = false
	}
	r.addNotes(c, opt)
	return r
}

// readHeader fills r.Header and returns the nonce's value (never reported).
func (r *Report) readHeader(p *parsed) string {
	h := &Header{}
	hc := claims(p.header)
	h.Alg, h.Kid, h.X5t, h.Typ = hc.str("alg"), hc.str("kid"), hc.str("x5t"), hc.str("typ")
	nonce := hc.str("nonce")
	_, h.Nonce = p.header["nonce"]
	for k := range p.header {
		switch k {
		case "alg", "kid", "x5t", "typ", "nonce":
		default:
			h.Other = append(h.Other, k)
		}
	}
	slices.Sort(h.Other)
	r.Header = h
	return nonce
}

func (r *Report) readClaims(c claims, ex *auth.Explanation, opt Options) {
	r.Issuer = classifyIssuer(c.str("iss"))
	switch v := c.str("ver"); {
	case v != "":
		r.Version, r.VersionSource = v, "ver claim"
	case r.Issuer.Shape == "v1":
		r.Version, r.VersionSource = "1.0", "issuer shape (no ver claim)"
	case r.Issuer.Shape == "v2":
		r.Version, r.VersionSource = "2.0", "issuer shape (no ver claim)"
	}
	if scp := c.str("scp"); scp != "" {
		r.Scopes = strings.Fields(scp)
	}
	r.Roles = c.strs("roles")
	r.Audience = classifyAudience(c.strs("aud"), opt.Gateway)

	if tid := c.str("tid"); tid != "" || r.Issuer.Tenant != "" {
		r.Tenant = &Tenant{ID: tid}
		if r.Issuer.Tenant != "" && tid != "" {
			same := strings.EqualFold(tid, r.Issuer.Tenant)
			r.Tenant.MatchesIssuer = &same
		}
		if strings.EqualFold(tid, msaTenant) {
			r.Tenant.Note = "the tenant of personal Microsoft accounts (outlook.com, live.com)"
		}
		if g := opt.Gateway; g != nil {
			switch {
			case tid != "" && strings.EqualFold(tid, g.TenantID):
				r.Tenant.Gateway = "home tenant"
			case tid != "" && slices.ContainsFunc(g.AllowedTenants, func(t string) bool { return strings.EqualFold(t, tid) }):
				r.Tenant.Gateway = "allowed tenant"
			default:
				r.Tenant.Gateway = "not allowed"
			}
		}
	}

	for _, name := range []string{"azp", "appid"} {
		if id := c.str(name); id != "" {
			r.Client = &Client{ID: id, Claim: name, Name: c.str("app_displayname")}
			r.Client.AuthMethod = clientAuthMethod(c.str(name + "acr"))
			r.Client.IsGateway = opt.Gateway != nil && strings.EqualFold(id, opt.Gateway.ClientID)
			break
		}
	}
	s := &Subject{Sub: c.str("sub"), OID: c.str("oid"), Name: c.str("name")}
	for _, name := range []string{"upn", "preferred_username", "unique_name", "email"} {
		if u := c.str(name); u != "" {
			s.Username, s.UsernameClaim = u, name
			break
		}
	}
	if *s != (Subject{}) {
		r.Subject = s
	}
	r.AMR, r.ACR = c.strs("amr"), c.str("acr")
	r.Times = readTimes(c, opt)
	r.Kind, r.KindReason = classifyKind(c, ex, r)
}

// msaTenant is the tenant of personal Microsoft accounts.
const msaTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

func clientAuthMethod(acr string) string {
	switch acr {
	case "0":
		return "public client (no credential)"
	case "1":
		return "client secret"
	case "2":
		return "certificate or client assertion"
	}
	return ""
}

// classifyKind tells a user's token from an app's as the gateway's
// token_kind check does (ex.Kind), and names what is not an access token
// for an API: an app's token without roles, an ID token, a client
// assertion, or something else. When the gateway could not read the
// payload at all (not its compact form), the shape alone is described.
func classifyKind(c claims, ex *auth.Explanation, r *Report) (kind, reason string) {
	switch ex.Kind {
	case auth.KindDelegated:
		return KindUser, ex.KindReason
	case auth.KindAppOnly:
		return KindApp, ex.KindReason
	}
	why := ex.KindReason
	if ex.Kind == "" {
		why = "the gateway cannot read it as a token (" + r.Input.Problem + ")"
		if len(r.Scopes) > 0 {
			return KindUser, "by its shape (scp): " + why
		}
	}
	aud := ""
	if r.Audience != nil && len(r.Audience.Values) > 0 {
		aud = r.Audience.Values[0].Value
	}
	_, hasClient := c["azp"]
	if _, ok := c["appid"]; ok {
		hasClient = true
	}
	switch {
	case c.str("idtyp") == "app" || hasClient && c.str("nonce") == "" && len(r.Scopes) == 0:
		// Access tokens always name their client; an app's without a role
		// is not one the gateway accepts, but it is an app's.
		return KindApp, "an app's token (client credentials), which the gateway refuses: " + why
	case c.str("jti") != "" && c.str("iss") != "" && c.str("iss") == c.str("sub") && looksLikeTokenEndpoint(aud):
		return KindClientAssertion, "iss = sub = a client ID, aud = a token endpoint: a client's proof of identity, not a user's token"
	case c.str("nonce") != "" || c.str("c_hash") != "" || c.str("at_hash") != "":
		return KindIDToken, "an ID token (a sign-in's nonce, c_hash or at_hash): " + why
	case c.str("oid") != "" || c.str("preferred_username") != "" || c.str("upn") != "":
		return KindIDToken, "an ID token, by its shape: " + why
	}
	return KindUnknown, why
}

func looksLikeTokenEndpoint(aud string) bool {
	return strings.Contains(aud, "/oauth2/") && strings.HasSuffix(strings.TrimSuffix(aud, "/"), "/token")
}

var (
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// tenantSegRE is an issuer's tenant segment: a GUID, or near enough
	// to be one that was edited.
	tenantSegRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F-]{20,}$`)
)

// classifyIssuer reads the issuer's shape, tenant and cloud.
func classifyIssuer(iss string) *Issuer {
	is := &Issuer{Value: iss, Shape: "none"}
	if iss == "" {
		return is
	}
	is.Shape = "other"
	segs := []string{}
	host := ""
	if rest, ok := strings.CutPrefix(iss, "https://"); ok {
		host, _, _ = strings.Cut(rest, "/")
		segs = strings.Split(strings.TrimPrefix(rest, host), "/")
	}
	// segs of https://host/<tid>/ are ["", tid, ""]; of …/<tid>/v2.0, ["", tid, "v2.0"].
	if len(segs) == 3 && tenantSegRE.MatchString(segs[1]) {
		is.Tenant = segs[1]
		switch segs[2] {
		case "":
			is.Shape = "v1"
		case "v2.0":
			is.Shape = "v2"
		}
	}
	is.Cloud = cloudOf(strings.ToLower(host))
	return is
}

func cloudOf(host string) string {
	switch {
	case host == "sts.windows.net" || host == "login.microsoftonline.com" || host == "login.windows.net" || host == "login.microsoft.com":
		return "Microsoft's public cloud"
	case host == "login.microsoftonline.us" || host == "login-us.microsoftonline.com" || host == "login.usgovcloudapi.net":
		return "Azure US Government"
	case host == "login.partner.microsoftonline.cn" || host == "login.chinacloudapi.cn" || host == "sts.chinacloudapi.cn":
		return "Azure China (21Vianet)"
	case strings.HasSuffix(host, ".b2clogin.com"):
		return "Azure AD B2C"
	case strings.HasSuffix(host, ".ciamlogin.com"):
		return "Microsoft Entra External ID"
	case host == "":
		return ""
	}
	return "not a Microsoft host: a local or test tenant?"
}

// microsoftAPIs names well-known Microsoft resources by application ID and
// by URI (lower case, without a trailing '/').
var microsoftAPIs = map[string]string{
	"00000003-0000-0000-c000-000000000000":    "Microsoft Graph",
	"https://graph.microsoft.com":             "Microsoft Graph",
	"https://graph.microsoft.us":              "Microsoft Graph (US Government)",
	"https://dod-graph.microsoft.us":          "Microsoft Graph (US Government DoD)",
	"https://microsoftgraph.chinacloudapi.cn": "Microsoft Graph (China)",
	"00000002-0000-0000-c000-000000000000":    "Azure AD Graph (retired)",
	"https://graph.windows.net":               "Azure AD Graph (retired)",
	"797f4846-ba00-4fd7-ba43-dac1f8f63013":    "Azure Resource Manager",
	"https://management.azure.com":            "Azure Resource Manager",
	"https://management.core.windows.net":     "Azure Resource Manager",
	"cfa8b339-82a2-471a-a3c9-0fc0be7a4093":    "Azure Key Vault",
	"https://vault.azure.net":                 "Azure Key Vault",
	"https://storage.azure.com":               "Azure Storage",
	"c5393580-f805-4401-95e8-94b7a6ef2fc2":    "Office 365 Management APIs",
	"https://manage.office.com":               "Office 365 Management APIs",
	"00000002-0000-0ff1-ce00-000000000000":    "Exchange Online",
	"https://outlook.office.com":              "Exchange Online",
	"https://outlook.office365.com":           "Exchange Online",
	"00000003-0000-0ff1-ce00-000000000000":    "SharePoint Online",
}

func normAudience(a string) string { return strings.TrimSuffix(strings.ToLower(a), "/") }

// namesGateway reports whether aud is a of the gateway's audiences, by the
// gateway's own rule of comparison.
func namesGateway(aud, a string) bool { return auth.SameAudience(aud, a) }

// classifyAudience explains each aud value, against the gateway when given.
func classifyAudience(auds []string, g *Gateway) *Audience {
	a := &Audience{Kind: AudNone}
	for _, v := range auds {
		a.Values = append(a.Values, classifyAudienceValue(v, g))
	}
	if len(a.Values) == 0 {
		return a
	}
	a.Kind = a.Values[0].Kind
	for _, v := range a.Values {
		if v.Kind == AudGatewayClientID || v.Kind == AudGatewayAppIDURI {
			a.Kind = v.Kind
		}
	}
	return a
}

func classifyAudienceValue(v string, g *Gateway) AudienceValue {
	n := normAudience(v)
	av := AudienceValue{Value: v}
	if g != nil {
		if namesGateway(v, g.ClientID) {
			av.Kind, av.Description = AudGatewayClientID, "this gateway (its client ID: a v2 token for it)"
			return av
		}
		for _, uri := range g.Audiences {
			if namesGateway(v, uri) {
				av.Kind, av.Description = AudGatewayAppIDURI, "this gateway (its App ID URI "+uri+")"
				return av
			}
		}
	}
	if name, ok := microsoftAPIs[n]; ok {
		av.Kind, av.Description = AudMicrosoftAPI, name
		if strings.HasPrefix(name, "Microsoft Graph") {
			av.Kind = AudGraph
		}
		return av
	}
	switch {
	case strings.HasPrefix(n, "spn:"):
		id := v[len("spn:"):]
		av.Kind = AudSPN
		av.Description = "the app whose application ID is " + id + ", named with the spn: prefix (v1 tokens requested by application ID)"
		if g != nil && strings.EqualFold(id, g.ClientID) {
			av.Kind = AudGatewaySPN
			av.Description = "this gateway's app, but written spn:" + id + ": the gateway compares aud literally with its client ID and App ID URIs, and refuses it"
		}
	case guidRE.MatchString(v):
		av.Kind, av.Description = AudClientID, "an application's client ID: a v2 token for that app, or an ID token issued to it"
	case looksLikeTokenEndpoint(n):
		av.Kind, av.Description = AudTokenEndpoint, "a token endpoint: this is a client assertion, sent to Entra, not to an API"
	case strings.Contains(v, "://"):
		av.Kind, av.Description = AudAppIDURI, "an App ID URI (a v1 token for that API)"
		if g != nil {
			av.Description = "another API's App ID URI, not this gateway's"
		}
	default:
		av.Kind, av.Description = AudOther, "not a client ID nor a URI"
	}
	return av
}

func readTimes(c claims, opt Options) *Times {
	at := opt.At
	t := &Times{At: at.UTC().Format(time.RFC3339), AtSource: opt.AtSource, Status: TimeNoExpiry}
	instant := func(name string, words func(past bool, d string) string) *Instant {
		sec, ok := c.unix(name)
		if !ok {
			return nil
		}
		when := time.Unix(sec, 0)
		d := at.Sub(when)
		past := d >= 0
		if !past {
			d = -d
		}
		return &Instant{Unix: sec, Time: when.UTC().Format(time.RFC3339), Relative: words(past, humanDuration(d))}
	}
	t.IssuedAt = instant("iat", func(past bool, d string) string {
		if past {
			return "issued " + d + " ago"
		}
		return "issued in the future (" + d + " from then): a clock is wrong"
	})
	t.NotBefore = instant("nbf", func(past bool, d string) string {
		if past {
			return "valid since " + d + " ago"
		}
		return "not valid until " + d + " from then"
	})
	t.Expires = instant("exp", func(past bool, d string) string {
		if past {
			return "expired " + d + " ago"
		}
		return "expires in " + d
	})
	if t.Expires != nil {
		t.Status = TimeValid
		if !at.Before(time.Unix(t.Expires.Unix, 0)) {
			t.Status = TimeExpired
		}
	}
	if t.NotBefore != nil && at.Before(time.Unix(t.NotBefore.Unix, 0)) {
		t.Status = TimeNotYetValid
	}
	if t.IssuedAt != nil && t.Expires != nil {
		t.Lifetime = humanDuration(time.Duration(t.Expires.Unix-t.IssuedAt.Unix) * time.Second)
	}
	return t
}

// humanDuration writes a duration the way people say it: "45s", "41m",
// "3h12m", "12d4h".
func humanDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// claims reads decoded JSON (numbers as json.Number).
type claims map[string]any

func (c claims) str(k string) string {
	s, _ := c[k].(string)
	return s
}

// strs reads a string or a list of strings.
func (c claims) strs(k string) []string {
	switch v := c[k].(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// unix reads a NumericDate (a number, or a number in a string).
func (c claims) unix(k string) (int64, bool) {
	var s string
	switch v := c[k].(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(f), err == nil
}
