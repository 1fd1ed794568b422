package doctor

import (
	"crypto/x509"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// The doctor's promise, that what it finds is what the gateway will meet,
// holds only while it talks to Entra, the upstreams and Redis as the
// gateway does: its clients are configured as package clients configures
// the gateway's, whatever the configuration says.
func TestDoctorClientsAreTheGateways(t *testing.T) {
	ca, err := pki.NewCA("doctor clients CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := pki.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM(), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	key := "k1:" + strings.Repeat("A", 43) + "="
	for _, tc := range []struct {
		name  string
		entra config.Entra
		redis *config.Redis
	}{
		{name: "defaults", entra: config.Entra{TokenTimeout: config.Duration(10 * time.Second)}},
		{name: "private CA, instance discovery, x5c, capabilities", entra: config.Entra{
			CAFile: caFile, InstanceDiscovery: &on, ClientCapabilities: []string{"cp1"},
			Certificate: config.Certificate{Path: "gw.pem", KeyPath: "gw.key", SendX5C: true}, TokenTimeout: config.Duration(3 * time.Second),
		}},
		{name: "Redis over TLS", entra: config.Entra{}, redis: &config.Redis{
			Address: "redis.internal:6380", TLS: true, CAFile: caFile, DB: 2, Username: "gw",
			EncryptionKeys: key, EncryptionKeyID: "k1", Timeout: config.Duration(time.Second),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.entra.AuthorityHost, tc.entra.TenantID, tc.entra.ClientID = "https://login.example", "tenant", "client"
			r := newRunner(Options{ConfigPath: "gateway.yaml"})
			r.cfg = &config.Config{Entra: tc.entra, Cache: config.Cache{Redis: tc.redis}}
			r.online = r.newOnline()

			gwEntra, err := clients.Entra(tc.entra, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameClient(t, "Entra", r.online.entra, gwEntra)
			sameTransport(t, "upstream", r.online.upstream.Transport.(*http.Transport), clients.Upstream(nil))

			// The MSAL configuration, with the doctor's HTTP client (shown
			// the gateway's just above) in place of a new one.
			if got, want := r.msalConfig(), clients.OBO(tc.entra, r.cert, r.assertion, r.online.entra); !reflect.DeepEqual(got, want) {
				t.Errorf("MSAL configuration:\n doctor  %+v\n gateway %+v", got, want)
			}

			if tc.redis == nil {
				return
			}
			got, err := r.redisConfig()
			if err != nil {
				t.Fatal(err)
			}
			want, err := clients.Redis(tc.redis)
			if err != nil {
				t.Fatal(err)
			}
			if got.Timeout < want.Timeout {
				t.Errorf("Redis timeout %v, shorter than the gateway's %v", got.Timeout, want.Timeout)
			}
			if !got.TLS.RootCAs.Equal(want.TLS.RootCAs) || got.TLS.MinVersion != want.TLS.MinVersion {
				t.Error("Redis TLS: the doctor trusts other CAs than the gateway")
			}
			got.Timeout, got.TLS, want.TLS = want.Timeout, nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Redis configuration:\n doctor  %+v\n gateway %+v", got, want)
			}
		})
	}
}

func sameClient(t *testing.T, name string, got, want *http.Client) {
	t.Helper()
	if got.Timeout != want.Timeout {
		t.Errorf("%s: timeout %v, the gateway's %v", name, got.Timeout, want.Timeout)
	}
	if (got.CheckRedirect == nil) != (want.CheckRedirect == nil) {
		t.Errorf("%s: redirects followed differently", name)
	}
	sameTransport(t, name, got.Transport.(*http.Transport), want.Transport.(*http.Transport))
}

// sameTransport compares what decides how a transport connects: the bounds,
// the pool, the protocols, the proxy, and whom TLS trusts.
func sameTransport(t *testing.T, name string, got, want *http.Transport) {
	t.Helper()
	type settings struct {
		Handshake, Header, Idle, Continue   time.Duration
		MaxIdle, MaxIdlePerHost, MaxPerHost int
		NoCompression, ForceH2, Proxy       bool
		Protocols                           string
		MinTLS                              uint16
	}
	of := func(tr *http.Transport) settings {
		s := settings{
			Handshake: tr.TLSHandshakeTimeout, Header: tr.ResponseHeaderTimeout, Idle: tr.IdleConnTimeout,
			Continue: tr.ExpectContinueTimeout, MaxIdle: tr.MaxIdleConns, MaxIdlePerHost: tr.MaxIdleConnsPerHost,
			MaxPerHost: tr.MaxConnsPerHost, NoCompression: tr.DisableCompression, ForceH2: tr.ForceAttemptHTTP2,
			Proxy: tr.Proxy != nil,
		}
		if tr.Protocols != nil {
			s.Protocols = tr.Protocols.String()
		}
		if tr.TLSClientConfig != nil {
			s.MinTLS = tr.TLSClientConfig.MinVersion
		}
		return s
	}
	if g, w := of(got), of(want); g != w {
		t.Errorf("%s transport:\n doctor  %+v\n gateway %+v", name, g, w)
	}
	roots := func(tr *http.Transport) *x509.CertPool {
		if tr.TLSClientConfig == nil {
			return nil
		}
		return tr.TLSClientConfig.RootCAs
	}
	if g, w := roots(got), roots(want); (g == nil) != (w == nil) || (g != nil && !g.Equal(w)) {
		t.Errorf("%s transport: the doctor trusts other CAs than the gateway", name)
	}
}
