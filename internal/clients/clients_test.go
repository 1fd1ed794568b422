package clients

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// tlsServer is an HTTPS server on loopback whose certificate a private CA
// signed, and the path of that CA's PEM file.
func tlsServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ca, err := pki.NewCA("clients test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	path, err := pki.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM(), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return srv, path
}

func TestEntraTrustsTheCAFile(t *testing.T) {
	srv, caFile := tlsServer(t)
	for _, tc := range []struct {
		name    string
		caFile  string
		wantErr bool // the call fails on the server's certificate
	}{
		{name: "ca_file names the private CA", caFile: caFile},
		{name: "system CAs only", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Entra(config.Entra{CAFile: tc.caFile}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			var unknown *tls.CertificateVerificationError
			if tc.wantErr != (err != nil) || (err != nil && !errors.As(err, &unknown)) {
				t.Errorf("GET = %v, want a certificate error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestEntraBounds(t *testing.T) {
	c, err := Entra(config.Entra{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transport.(*http.Transport)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"whole call", c.Timeout, entraTimeout},
		{"TLS handshake", tr.TLSHandshakeTimeout, entraHandshakeTimeout},
		{"response headers", tr.ResponseHeaderTimeout, entraHeaderTimeout},
		{"idle connections per host", tr.MaxIdleConnsPerHost, entraIdleConns},
		{"TLS minimum", tr.TLSClientConfig.MinVersion, uint16(tls.VersionTLS12)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if tr.Proxy == nil {
		t.Error("HTTPS_PROXY is ignored: the transport has no Proxy function")
	}
}

func TestEntraRefusesAnUnreadableCAFile(t *testing.T) {
	_, err := Entra(config.Entra{CAFile: t.TempDir() + "/missing.pem"}, nil)
	if err == nil || !strings.Contains(err.Error(), "entra.ca_file") {
		t.Errorf("err = %v, want one naming entra.ca_file", err)
	}
}

// A Dialer given to a constructor carries every connection: the doctor's
// -offline mode rests on it.
func TestDialerCarriesEveryConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	var dials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	entra, err := Entra(config.Entra{}, dial)
	if err != nil {
		t.Fatal(err)
	}
	upstream := &http.Client{Transport: Upstream(dial)}
	for _, c := range []*http.Client{entra, upstream} {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials through the Dialer, want 2", n)
	}
}

func TestOBO(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		name      string
		discovery *bool
		want      bool
	}{
		{"instance discovery unset", nil, false},
		{"instance discovery on", &on, true},
		{"instance discovery off", &off, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := config.Entra{
				AuthorityHost: "https://login.example", TenantID: "tenant", ClientID: "client",
				InstanceDiscovery: tc.discovery, ClientCapabilities: []string{"cp1"},
				TokenTimeout: config.Duration(7 * time.Second),
				Certificate:  config.Certificate{Path: "c.pem", KeyPath: "k.pem", SendX5C: true},
			}
			entra := &http.Client{}
			c := OBO(e, &obo.Certificate{}, nil, entra)
			if c.InstanceDiscovery != tc.want {
				t.Errorf("InstanceDiscovery = %v, want %v", c.InstanceDiscovery, tc.want)
			}
			if c.AuthorityHost != e.AuthorityHost || c.TenantID != "tenant" || c.ClientID != "client" ||
				!c.SendX5C || len(c.ClientCapabilities) != 1 || c.Timeout != 7*time.Second || c.HTTPClient != entra {
				t.Errorf("config = %+v, not the entra section's", c)
			}
			if f := c.CertificateFiles; f == nil || f.Path != "c.pem" || f.KeyPath != "k.pem" {
				t.Errorf("CertificateFiles = %+v, want the certificate's files (reloaded when they change)", f)
			}
		})
	}
}

func TestRedis(t *testing.T) {
	_, caFile := tlsServer(t)
	key := "k1:" + strings.Repeat("A", 43) + "="
	for _, tc := range []struct {
		name    string
		redis   config.Redis
		wantTLS bool
		wantErr string
	}{
		{name: "plain", redis: config.Redis{Address: "127.0.0.1:6379", EncryptionKeys: key, EncryptionKeyID: "k1"}},
		{name: "TLS with a CA file", redis: config.Redis{Address: "r:6380", TLS: true, CAFile: caFile, EncryptionKeys: key, EncryptionKeyID: "k1"}, wantTLS: true},
		{name: "bad keys", redis: config.Redis{Address: "r:6379", EncryptionKeys: "k1:short"}, wantErr: "cache.redis.encryption_keys"},
		{name: "unreadable CA file", redis: config.Redis{Address: "r:6380", TLS: true, CAFile: caFile + ".missing", EncryptionKeys: key, EncryptionKeyID: "k1"}, wantErr: "cache.redis.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.redis.Timeout = config.Duration(time.Second)
			c, err := Redis(&tc.redis)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.TLS != nil) != tc.wantTLS {
				t.Fatalf("TLS = %v, want %v", c.TLS != nil, tc.wantTLS)
			}
			if c.TLS != nil {
				if c.TLS.MinVersion != tls.VersionTLS12 || c.TLS.RootCAs == nil {
					t.Errorf("TLS = %+v, want TLS 1.2+ with the CA file in the pool", c.TLS)
				}
				pem, _ := pki.ParseCertsPEM(testkit.ReadFile(t, caFile))
				if _, err := pem[0].Verify(x509.VerifyOptions{Roots: c.TLS.RootCAs}); err != nil {
					t.Errorf("the pool does not hold the CA file's certificate: %v", err)
				}
			}
			if c.Addr != tc.redis.Address || c.Timeout != time.Second || c.Keys == nil {
				t.Errorf("config = %+v, not cache.redis's", c)
			}
		})
	}
}

// TestCertificateErrorNamesItsSettings: a certificate that cannot be
// loaded is reported with the settings it came from, each with its value
// and where it was set, and never the password; clearing key_path with its
// variable set to "" loads the certificate file's own key.
func TestCertificateErrorNamesItsSettings(t *testing.T) {
	cert, key, err := pki.SelfSigned("CN=obo-gateway", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	combined, _ := pki.WriteFile(dir, "gateway.pem", append(pki.CertPEM(cert), pki.KeyPEM(key)...), 0o600)
	keyFile, _ := pki.WriteFile(dir, "gateway.key", pki.KeyPEM(key), 0o600)
	text := configtest.YAML(t, &config.Config{Entra: config.Entra{
		TenantID: "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34", ClientID: "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
		Certificate: config.Certificate{Path: combined, KeyPath: keyFile},
	}})
	path := configtest.WriteYAML(t, text)
	at := func(prefix string) string { return fmt.Sprintf("%s:%d", path, configtest.Line(t, text, prefix)) }
	const password = "s3cret-Pa55"

	for _, tc := range []struct {
		name    string
		environ []string
		want    string // the error; "" loads
	}{
		{"the key in both files", nil,
			fmt.Sprintf(`clients: cannot load the certificate of entra.certificate.path %q (%s) with entra.certificate.key_path %q (%s): obo: certificate: more than one private key in the PEM data`,
				combined, at("path:"), keyFile, at("key_path:"))},
		{"the key path from its variable, a password", []string{"OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH=" + combined, "AZURE_CLIENT_CERTIFICATE_PASSWORD=" + password},
			fmt.Sprintf(`clients: cannot load the certificate of entra.certificate.path %q (%s) with entra.certificate.key_path %q (env OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH) and entra.certificate.password (set, env AZURE_CLIENT_CERTIFICATE_PASSWORD): obo: certificate: more than one private key in the PEM data`,
				combined, at("path:"), combined)},
		{"the certificate from its variable", []string{"AZURE_CLIENT_CERTIFICATE_PATH=" + keyFile, "OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH="},
			fmt.Sprintf(`clients: cannot load the certificate of entra.certificate.path %q (env AZURE_CLIENT_CERTIFICATE_PATH): obo: certificate: no CERTIFICATE block found`, keyFile)},
		{"key_path cleared by its empty variable", []string{"OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH="}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := config.Parse(path, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Certificate(cfg.Entra)
			if tc.want == "" {
				if err != nil || c == nil {
					t.Fatalf("Certificate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Certificate error\n %v\nwant\n %s", err, tc.want)
			}
			var ce *CertificateError
			if !errors.As(err, &ce) || ce.Err == nil || errors.Unwrap(err) != ce.Err {
				t.Errorf("not a *CertificateError wrapping the loader's error: %#v", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Error("the error shows the password")
			}
		})
	}

	t.Run("without a source", func(t *testing.T) {
		_, err := Certificate(config.Entra{Certificate: config.Certificate{Path: keyFile, Password: password}})
		want := fmt.Sprintf(`clients: cannot load the certificate of entra.certificate.path %q with entra.certificate.password (set): obo: certificate: no CERTIFICATE block found`, keyFile)
		if err == nil || err.Error() != want {
			t.Errorf("Certificate error\n %v\nwant\n %s", err, want)
		}
	})
}
