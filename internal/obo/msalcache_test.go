package obo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// memTenant answers MSAL's discovery and token requests in memory, with a
// realistic 1.3 KB access token, so that thousands of exchanges measure
// MSAL's cache and not the network or RSA.
type memTenant struct{ token string }

func (m memTenant) RoundTrip(req *http.Request) (*http.Response, error) {
	var body string
	switch {
	case strings.HasSuffix(req.URL.Path, "/openid-configuration"):
		base := "https://" + req.URL.Host + "/tenant"
		body = fmt.Sprintf(`{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q}`, base+"/v2.0", base+"/oauth2/v2.0/authorize", base+"/oauth2/v2.0/token")
	case strings.HasSuffix(req.URL.Path, "/token"):
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
		// A refresh token as Entra sends one: MSAL caches it too.
		body = fmt.Sprintf(`{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":%q,"refresh_token":%q}`, m.token, m.token[:800])
	default:
		return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}, Request: req}, nil
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body)),
		Header: http.Header{"Content-Type": {"application/json"}}, Request: req}, nil
}

func randomJWTish(n int) string {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	return "eyJ" + s[:n/2] + "." + s[n/2:]
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// pushUsers exchanges n distinct user tokens and returns the heap growth.
func pushUsers(t *testing.T, x *Exchanger, n int) (growth int64) {
	t.Helper()
	assertions := make([]string, n)
	for i := range assertions {
		assertions[i] = randomJWTish(1300)
	}
	before := heapAfterGC()
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if _, err := x.Exchange(t.Context(), Request{Assertion: a, Scopes: []string{"api://orders-api/.default"}}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, a := range assertions {
		work <- a
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("exchange: %v", err)
	default:
	}
	after := heapAfterGC()
	runtime.KeepAlive(x)
	return int64(after) - int64(before)
}

// TestMSALCacheStaysBounded pushes many distinct users through the
// exchanger and reports the heap before and after. MSAL's own in-memory OBO
// cache never evicts; New keeps it empty, so the heap must not grow with the
// number of users. The same load through a client with MSAL's default cache
// is the control: it grows by several KiB per user.
func TestMSALCacheStaysBounded(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	cfg := Config{AuthorityHost: "https://login.test", TenantID: "tenant", ClientID: "client",
		HTTPClient: &http.Client{Transport: memTenant{token: randomJWTish(1300)}}, Timeout: 10e9}
	cred, err := confidential.NewCredFromSecret("not-a-real-secret")
	if err != nil {
		t.Fatal(err)
	}
	bounded, err := newExchanger(cfg, cred, confidential.WithCache(emptyCache{}))
	if err != nil {
		t.Fatal(err)
	}
	control, err := newExchanger(cfg, cred)
	if err != nil {
		t.Fatal(err)
	}
	gBounded := pushUsers(t, bounded, n)
	gControl := pushUsers(t, control, n)
	t.Logf("%d distinct users: heap growth with the empty MSAL cache %d KiB (%.0f B/user); with MSAL's default cache %d KiB (%.0f B/user)",
		n, gBounded/1024, float64(gBounded)/float64(n), gControl/1024, float64(gControl)/float64(n))
	if perUser := float64(gBounded) / float64(n); perUser > 256 {
		t.Errorf("with the empty MSAL cache the heap grew %.0f B per user; want it bounded (< 256 B/user)", perUser)
	}
	if perUser := float64(gControl) / float64(n); perUser < 1024 {
		t.Errorf("control: MSAL's default cache grew only %.0f B per user; the measurement cannot tell the two apart", perUser)
	}
}

// newExchanger builds an exchanger around a fixed MSAL credential; extra
// options come last (tests use them to compare cache behaviours).
func newExchanger(cfg Config, cred confidential.Credential, extra ...confidential.Option) (*Exchanger, error) {
	client, err := newClient(cfg, cred, extra...)
	if err != nil {
		return nil, err
	}
	x := &Exchanger{cfg: cfg}
	x.cur.Store(&credentialState{client: client})
	return x, nil
}
