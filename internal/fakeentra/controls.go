package fakeentra

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Fault is a failure the tenant injects into the answers of an endpoint, for
// tests and fault drills.
type Fault struct {
	// Endpoint is "token" (default), "keys", "discovery" or "all".
	Endpoint string `json:"endpoint,omitempty"`
	// Status is the HTTP status to answer (e.g. 500, 503, 429); ignored with Drop.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as Retry-After (whole seconds) when non-zero.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Code, with Status 400, answers Entra's JSON error of that AADSTS code
	// instead of a plain failure; the tenant knows 50196 (loop detection).
	Code int `json:"code,omitempty"`
	// Count is how many requests fail; 0 means every request until For runs out.
	Count int `json:"count,omitempty"`
	// For bounds the fault in time from when it is injected; 0 means no bound
	// (then Count must be set).
	For time.Duration `json:"for,omitempty"`

	until time.Time
}

// Record is what the tenant remembers of one token request. It never holds
// a secret, an assertion or a token.
type Record struct {
	Time     time.Time `json:"time"`
	TenantID string    `json:"tenant_id"`
	Grant    string    `json:"grant_type"`
	ClientID string    `json:"client_id"`
	Scope    string    `json:"scope,omitempty"`
	// Subject is the user's object ID, when the request named a user.
	Subject string `json:"subject,omitempty"`
	// Credential is how the client authenticated, or tried to:
	// CredentialSecret, CredentialCertificate, CredentialFederated or
	// CredentialNone (a public client); "" when the request was refused
	// before the client's credential was looked at.
	Credential string `json:"credential,omitempty"`
	Status     int    `json:"status"`
	// Result is "success", "error" or "fault" (an injected failure).
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Code   int    `json:"code,omitempty"`
	// ClientRequestID is MSAL's client-request-id header.
	ClientRequestID string `json:"client_request_id,omitempty"`
	// Claims is the claims parameter, as sent (a claims request holds no
	// secret: it names policies and capabilities).
	Claims string `json:"claims,omitempty"`
}

type controls struct {
	cmu     sync.Mutex
	faults  []*Fault
	latency map[string]time.Duration
	records []Record
}

// InjectFault adds a fault; faults apply in the order added.
func (s *Server) InjectFault(f Fault) error {
	if f.Endpoint == "" {
		f.Endpoint = "token"
	}
	switch f.Endpoint {
	case "token", "keys", "discovery", "all":
	default:
		return fmt.Errorf("fakeentra: fault endpoint %q: want token, keys, discovery or all", f.Endpoint)
	}
	if !f.Drop && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("fakeentra: fault status %d: want 4xx or 5xx, or drop", f.Status)
	}
	if f.Code != 0 && (f.Code != 50196 || f.Status != http.StatusBadRequest) {
		return fmt.Errorf("fakeentra: fault code %d: the tenant injects only 50196, with status 400", f.Code)
	}
	if f.Count <= 0 && f.For <= 0 {
		return fmt.Errorf("fakeentra: a fault needs a count or a duration")
	}
	if f.For > 0 {
		f.until = s.now().Add(f.For)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.faults = append(s.faults, &f)
	return nil
}

// ClearFaults removes every fault and all latency.
func (s *Server) ClearFaults() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.faults, s.latency = nil, nil
}

// SetLatency delays answers of the given endpoints ("token", "keys",
// "discovery"; none or "all" means all) by d; 0 removes the delay.
func (s *Server) SetLatency(d time.Duration, endpoints ...string) {
	if len(endpoints) == 0 || slices.Contains(endpoints, "all") {
		endpoints = []string{"token", "keys", "discovery"}
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.latency == nil {
		s.latency = map[string]time.Duration{}
	}
	for _, e := range endpoints {
		s.latency[e] = d
	}
}

// RotateSigningKeys makes a new signing key current and returns its kid.
// With keepOld the previous keys stay in the key set (tokens they signed still
// verify); without, they are withdrawn.
func (s *Server) RotateSigningKeys(keepOld bool) (string, error) {
	return s.keys.rotate(s.now(), keepOld)
}

// SigningKeyID is the kid of the current signing key.
func (s *Server) SigningKeyID() string { return s.keys.signer().kid }

// Requests returns the token requests seen so far, oldest first.
func (s *Server) Requests() []Record {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return append([]Record(nil), s.records...)
}

// ResetRequests forgets the recorded token requests.
func (s *Server) ResetRequests() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.records = nil
}

func (s *Server) record(rec Record) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	// Bounded, so a long fault drill cannot grow memory without end.
	if len(s.records) >= 100000 {
		s.records = s.records[len(s.records)/2:]
	}
	s.records = append(s.records, rec)
}

// fault applies latency and any injected fault for endpoint; it reports
// whether it answered the request.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	s.cmu.Lock()
	delay := s.latency[endpoint]
	var hit *Fault
	now := s.now()
	kept := s.faults[:0]
	for _, f := range s.faults {
		expired := !f.until.IsZero() && now.After(f.until)
		if expired {
			continue
		}
		if hit == nil && (f.Endpoint == endpoint || f.Endpoint == "all") {
			hit = f
			if f.Count > 0 {
				f.Count--
				if f.Count == 0 {
					continue // used up
				}
			}
		}
		kept = append(kept, f)
	}
	s.faults = kept
	s.cmu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return true
		}
	}
	if hit == nil {
		return false
	}
	if endpoint == "token" {
		_ = r.ParseForm()
		rec := Record{Time: now, TenantID: r.PathValue("tenant"), Grant: r.PostForm.Get("grant_type"),
			ClientID: r.PostForm.Get("client_id"), Status: hit.Status, Result: "fault",
			ClientRequestID: r.Header.Get("client-request-id")}
		s.record(rec)
		s.log.Info("token request failed by an injected fault", "tenant", rec.TenantID, "grant", rec.Grant,
			"client_id", rec.ClientID, "status", hit.Status, "drop", hit.Drop)
	}
	if hit.Drop {
		// Abort the connection (HTTP/1.1) or the stream (HTTP/2) without an answer.
		panic(http.ErrAbortHandler)
	}
	if hit.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((hit.RetryAfter+time.Second-1)/time.Second)))
	}
	switch {
	case hit.Status == http.StatusTooManyRequests:
		// Entra's throttling answer is plain text, not its JSON error body.
		if hit.RetryAfter <= 0 {
			w.Header().Set("Retry-After", "60")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "Too Many Requests")
	case hit.Status == http.StatusBadRequest && hit.Code == 50196:
		s.writeError(w, r, errLoop())
	case hit.Status >= 500:
		e := errServer()
		e.Status = hit.Status
		s.writeError(w, r, e)
	default:
		e := errServer()
		e.Status = hit.Status
		e.Error = "invalid_request"
		s.writeError(w, r, e)
	}
	return true
}

// controlRoutes expose the controls over HTTP for the standalone binary, under
// /_fakeentra/. They exist only on this local test tenant.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_fakeentra/rotate-keys", func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.RotateSigningKeys(r.URL.Query().Get("keep_old") != "false")
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	})
	mux.HandleFunc("POST /_fakeentra/faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Fault
			RetryAfter string `json:"retry_after"`
			For        string `json:"for"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		err := dec.Decode(&f)
		if err == nil && f.RetryAfter != "" {
			f.Fault.RetryAfter, err = time.ParseDuration(f.RetryAfter)
		}
		if err == nil && f.For != "" {
			f.Fault.For, err = time.ParseDuration(f.For)
		}
		if err == nil {
			err = s.InjectFault(f.Fault)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "injected"})
	})
	mux.HandleFunc("DELETE /_fakeentra/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
	})
	mux.HandleFunc("POST /_fakeentra/latency", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("duration"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "duration: " + err.Error()})
			return
		}
		var eps []string
		switch e := r.URL.Query().Get("endpoint"); e {
		case "":
		case "token", "keys", "discovery", "all":
			eps = []string{e}
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("endpoint %q: want token, keys, discovery or all", e)})
			return
		}
		s.SetLatency(d, eps...)
		writeJSON(w, http.StatusOK, map[string]string{"status": "set"})
	})
	mux.HandleFunc("POST /_fakeentra/service-account-token", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opt := ServiceAccountTokenOptions{Audiences: q["audience"]}
		if v := q.Get("lifetime"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("lifetime %q: want a positive duration such as 1h", v)})
				return
			}
			opt.Lifetime = d
		}
		tok, err := s.ServiceAccountToken(q.Get("issuer"), q.Get("namespace"), q.Get("name"), opt)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	})
	mux.HandleFunc("GET /_fakeentra/requests", func(w http.ResponseWriter, r *http.Request) {
		recs := s.Requests()
		if recs == nil {
			recs = []Record{} // [] rather than null, for scripts
		}
		writeJSON(w, http.StatusOK, recs)
	})
}
