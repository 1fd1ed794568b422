package main

import (
	"net/http"
	"testing"
)

// docs/operations.md, "The access log": client_id (and oid, tid) are
// logged when "the token was valid". A valid token the route refuses
// (403 insufficient_scope: a missing app role) is the line an audit looks
// for: it names the caller, and no grant.
func TestAccessLogOfAValidTokenRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	carol := e.user(t, "carol@contoso.test")
	tok := e.passwordToken(t, carol.name, "")
	wantStatus(t, e.do(t, request{path: "/admin/x", token: tok}), http.StatusForbidden)
	lines := accessLines(e)
	if len(lines) == 0 {
		t.Fatal("no access log line")
	}
	l := lines[len(lines)-1]
	for _, k := range []string{"client_id", "oid", "tid"} {
		if l.Str(k) == "" {
			t.Errorf("access log of a valid token refused 403 has no %s: %v", k, l)
		}
	}
	for _, k := range []string{"granted_scope", "granted_role"} {
		if _, ok := l[k]; ok {
			t.Errorf("access log of a refused token has %s: %v", k, l)
		}
	}
}
