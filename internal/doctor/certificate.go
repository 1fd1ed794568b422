package doctor

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// Thumbprints are a certificate's thumbprints in every form Entra and its
// tools show them.
type Thumbprints struct {
	// SHA1Hex is the SHA-1 of the DER in upper-case hex: the portal's
	// "Thumbprint" (Certificates & secrets), and Microsoft Graph's
	// customKeyIdentifier.
	SHA1Hex string `json:"sha1_hex"`
	// SHA1Base64 is the same SHA-1 in standard base64: the customKeyIdentifier
	// of the legacy (Azure AD Graph) app manifest.
	SHA1Base64 string `json:"sha1_base64"`
	// X5T is base64url(SHA-1) without padding: a JWT x5t header.
	X5T string `json:"x5t"`
	// X5TS256 is the SHA-256 in standard base64 with padding: the x5t#S256
	// header MSAL Go puts in every client assertion.
	X5TS256 string `json:"x5t_s256"`
	// SHA256Hex is the SHA-256 in lower-case hex: how the gateway logs it
	// (thumbprint_sha256).
	SHA256Hex string `json:"sha256_hex"`
}

// ThumbprintsOf computes c's thumbprints.
func ThumbprintsOf(c *x509.Certificate) Thumbprints {
	s1, s256 := pki.ThumbprintSHA1(c), pki.ThumbprintSHA256(c)
	return Thumbprints{
		SHA1Hex:    strings.ToUpper(hex.EncodeToString(s1)),
		SHA1Base64: base64.StdEncoding.EncodeToString(s1),
		X5T:        base64.RawURLEncoding.EncodeToString(s1),
		X5TS256:    base64.StdEncoding.EncodeToString(s256),
		SHA256Hex:  obo.Thumbprint256Hex(c),
	}
}

// checkCAFile checks entra.ca_file, when set: the CAs trusted for Entra's
// TLS besides the system's.
func (r *runner) checkCAFile() {
	f := r.cfg.Entra.CAFile
	if f == "" {
		return
	}
	const id, name = "entra/ca_file", "Entra CA file"
	data, err := os.ReadFile(f)
	if err != nil {
		r.fail(id, name, fmt.Sprintf("cannot read %s: %v", f, err),
			"make entra.ca_file (OBO_GATEWAY_ENTRA_CA_FILE) name a readable PEM file of the CA certificates to trust")
		return
	}
	certs, err := pki.ParseCertsPEM(data)
	if err != nil {
		r.fail(id, name, fmt.Sprintf("%s holds no usable PEM certificate: %v", f, err),
			"put the CA certificates (-----BEGIN CERTIFICATE-----) of your TLS-inspecting proxy or local tenant in entra.ca_file")
		return
	}
	subjects := make([]string, len(certs))
	for i, c := range certs {
		subjects[i] = c.Subject.String()
	}
	r.pass(id, name, fmt.Sprintf("%s: %d CA certificate(s) trusted for Entra besides the system's: %s",
		f, len(subjects), strings.Join(subjects, "; ")))
}

// checkCertificate opens the gateway's certificate as the gateway does and
// reports its key, dates and identity.
func (r *runner) checkCertificate() {
	c := r.cfg.Entra.Certificate
	cert, err := clients.Certificate(r.cfg.Entra)
	if err != nil {
		detail, fix := certificateLoadProblem(err, c.Path, c.KeyPath)
		var ce *clients.CertificateError
		if errors.As(err, &ce) {
			// The settings it was loaded from, and where each was set.
			detail += "\nloaded from " + ce.From()
		}
		if !r.opts.Offline {
			detail += "\n(the client credential and downstream API checks need it and will not run)"
		}
		r.fail("certificate/load", "certificate", detail, fix)
		return
	}
	r.cert = cert
	leaf := cert.Leaf()
	files := c.Path
	if c.KeyPath != "" {
		files += " with key " + c.KeyPath
	}
	bits := cert.Key.N.BitLen()
	chain := fmt.Sprintf("chain of %d certificate(s)", len(cert.Chain))
	if len(cert.Chain) == 1 && isSelfSigned(leaf) {
		chain += " (self-signed)"
	}
	x5c := "send_x5c off: the client assertion carries the thumbprint (x5t#S256) only"
	switch {
	case c.SendX5C && isSelfSigned(leaf):
		x5c = "send_x5c on: the client assertion also carries the chain (x5c); a self-signed certificate is matched by its thumbprint all the same (subject name + issuer authentication needs a CA-issued one)"
	case c.SendX5C:
		x5c = "send_x5c on: the client assertion also carries the chain (x5c), for subject name + issuer authentication"
	}
	detail := fmt.Sprintf("%s: RSA %d-bit private key matching the certificate; %s; %s", files, bits, chain, x5c)
	switch {
	case bits < 2048:
		r.warn("certificate/load", "certificate", detail,
			"Entra expects RSA keys of at least 2048 bits: make a new certificate, e.g. openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj \"/CN=obo-gateway\" -keyout gateway.key -out gateway.crt, and upload it")
	default:
		r.pass("certificate/load", "certificate", detail)
	}
	r.checkValidity(leaf)

	t := ThumbprintsOf(leaf)
	lines := []string{
		"subject " + leaf.Subject.String() + ", issuer " + leaf.Issuer.String() + ", serial " + serialHex(leaf),
		"not before " + leaf.NotBefore.UTC().Format(time.RFC3339) + ", not after " + leaf.NotAfter.UTC().Format(time.RFC3339),
	}
	for _, f := range [][2]string{
		{"SHA-1 hex (the portal's Thumbprint)", t.SHA1Hex},
		{"SHA-1 base64 (manifest customKeyIdentifier)", t.SHA1Base64},
		{"x5t = base64url(SHA-1)", t.X5T},
		{"x5t#S256 = base64(SHA-256), what MSAL sends", t.X5TS256},
		{"SHA-256 hex (the gateway's logs)", t.SHA256Hex},
	} {
		lines = append(lines, fmt.Sprintf("%-44s %s", f[0]+":", f[1]))
	}
	r.pass("certificate/identity", "certificate identity", strings.Join(lines, "\n"))
}

// checkValidity reports the certificate's dates against the clock.
func (r *runner) checkValidity(leaf *x509.Certificate) {
	const id, name = "certificate/validity", "certificate validity"
	now := r.opts.Now()
	nb, na := leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339)
	rotate := "make a new certificate (e.g. openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj \"/CN=obo-gateway\" -keyout gateway.key -out gateway.crt), upload it in the app registration's Certificates & secrets, then replace " + r.cfg.Entra.Certificate.Path + " (the gateway picks the new one up without restart)"
	switch left := leaf.NotAfter.Sub(now); {
	case now.Before(leaf.NotBefore):
		r.fail(id, name, fmt.Sprintf("not yet valid: valid from %s (in %s) to %s; the clock says %s", nb, roundDuration(leaf.NotBefore.Sub(now)), na, now.UTC().Format(time.RFC3339)),
			"Entra refuses a certificate before its start date (AADSTS700024): check this machine's clock, or wait until "+nb+", or use a certificate valid now")
	case left <= 0:
		r.fail(id, name, fmt.Sprintf("expired at %s (%s ago); valid from %s", na, roundDuration(-left), nb),
			"Entra refuses an expired certificate (AADSTS700024): "+rotate)
	case left < expiryWarning:
		r.warn(id, name, fmt.Sprintf("expires at %s, in %s (valid from %s)", na, roundDuration(left), nb),
			"rotate it before it expires: "+rotate+"; keep the old one registered until every replica runs the new one")
	default:
		r.pass(id, name, fmt.Sprintf("valid from %s to %s (%d days left)", nb, na, int(left.Hours()/24)))
	}
}

// certificateLoadProblem turns clients.Certificate's errors into what to
// do. It reads obo.LoadCertificate's messages, which are not typed.
func certificateLoadProblem(err error, path, keyPath string) (detail, fix string) {
	var ce *clients.CertificateError
	if errors.As(err, &ce) {
		err = ce.Err // the loader's own error: the detail names the files itself
	}
	msg := err.Error()
	pfx := strings.EqualFold(filepath.Ext(path), ".pfx") || strings.EqualFold(filepath.Ext(path), ".p12")
	detail = fmt.Sprintf("%s cannot be used: %s", path, strings.TrimPrefix(msg, "obo: "))
	switch {
	case os.IsNotExist(err) || strings.Contains(msg, "no such file"):
		fix = "make entra.certificate.path (AZURE_CLIENT_CERTIFICATE_PATH) and entra.certificate.key_path name existing files"
	case strings.Contains(msg, "permission denied"):
		fix = "let the gateway's user read " + path + " (and the key file)"
	case strings.Contains(msg, "wrong password"), strings.Contains(msg, "decrypt"):
		fix = "the password does not open the key: set the right one in AZURE_CLIENT_CERTIFICATE_PASSWORD (entra.certificate.password)"
	case strings.Contains(msg, "is encrypted"):
		fix = "the private key is encrypted: set its password in AZURE_CLIENT_CERTIFICATE_PASSWORD (entra.certificate.password)"
	case strings.Contains(msg, "no CERTIFICATE block"):
		fix = "the file holds no certificate: put the certificate and the key in one PEM file (cat gateway.crt gateway.key > gateway.pem), or name the certificate in entra.certificate.path and the key in entra.certificate.key_path"
	case strings.Contains(msg, "no private key"):
		fix = "the file holds no private key: add it to the PEM file (cat gateway.crt gateway.key > gateway.pem) or name it in entra.certificate.key_path (OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH)"
	case strings.Contains(msg, "does not match"):
		fix = "the private key belongs to another certificate: use the key generated with this certificate (compare `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`)"
	case strings.Contains(msg, "need an RSA key"):
		fix = "Entra certificate credentials need an RSA key: make one with openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj \"/CN=obo-gateway\" -keyout gateway.key -out gateway.crt, and upload the new certificate"
	case strings.Contains(msg, "more than one private key") && keyPath != "":
		fix = fmt.Sprintf("the key is in %s and in entra.certificate.key_path (%s) too: remove key_path, or clear it with OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH= (an empty variable clears a setting of the file); or keep the certificate alone in %s", path, keyPath, path)
	case strings.Contains(msg, "more than one private key"):
		fix = "keep one private key in the PEM file: the one of the certificate uploaded to the app"
	case pfx:
		fix = "the PFX cannot be read: check the file and AZURE_CLIENT_CERTIFICATE_PASSWORD, or export it again (openssl pkcs12 -export -in gateway.crt -inkey gateway.key -out gateway.pfx)"
	default:
		fix = "the file must be a PEM certificate with its RSA key (PKCS#1 or PKCS#8), or a PFX; see entra.certificate in docs/configuration.md"
	}
	if keyPath != "" && strings.Contains(msg, "certificate key") {
		detail = fmt.Sprintf("%s cannot be used: %s", keyPath, strings.TrimPrefix(msg, "obo: "))
	}
	return detail, fix
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func serialHex(c *x509.Certificate) string {
	return strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes()))
}

// roundDuration writes d in days, hours or minutes.
func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(math.Round(d.Hours())))
	default:
		return fmt.Sprintf("%d minutes", int(math.Round(d.Minutes())))
	}
}

// uploadHint says how to upload only the public certificate of path.
func uploadHint(path string) string {
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".pfx" || ext == ".p12" {
		return fmt.Sprintf("; upload the public certificate only: openssl pkcs12 -in %s -clcerts -nokeys -out gateway.crt", path)
	}
	if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return fmt.Sprintf("; that file also holds the private key, which must never leave the gateway: upload only its certificate, extracted with openssl x509 -in %s -out gateway.crt", path)
	}
	return ""
}
