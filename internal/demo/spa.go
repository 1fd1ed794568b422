package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

// spaFiles are the sample SPA: index.html, app.js and MSAL.js's browser
// bundle (spa/msal: @azure/msal-browser, its version and licence beside it).
//
//go:embed spa
var spaFiles embed.FS

// SPAConfig is what the sample SPA reads from /config.json: how MSAL.js
// reaches the tenant and where the gateway is.
type SPAConfig struct {
	ClientID      string            `json:"clientId"`
	Authority     string            `json:"authority"`
	AuthorityHost string            `json:"authorityHost"` // MSAL.js knownAuthorities
	Scope         string            `json:"scope"`
	GatewayURL    string            `json:"gatewayUrl"`
	Routes        map[string]string `json:"routes"` // route name → path the button calls
}

// spaHandler serves the sample SPA with cfg as /config.json.
func spaHandler(cfg SPAConfig) http.Handler {
	sub, err := fs.Sub(spaFiles, "spa")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(conf)
	})
	files := http.FileServerFS(sub)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	}))
	return mux
}
