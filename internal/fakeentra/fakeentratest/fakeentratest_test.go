package fakeentratest

import (
	"net/http"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

func TestStart(t *testing.T) {
	var srv *fakeentra.Server
	t.Run("serves during the test", func(t *testing.T) {
		srv = Start(t, fakeentra.Config{})
		resp, err := srv.HTTPClient().Get(srv.JWKSURI())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("keys: %d", resp.StatusCode)
		}
	})
	if _, err := srv.HTTPClient().Get(srv.JWKSURI()); err == nil {
		t.Error("the tenant still answers after its test ended")
	}
}
