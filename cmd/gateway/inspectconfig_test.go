package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// TestLoadConfigForInspect: a configuration whose credential, TLS files
// and shared-cache keys are missing from this machine is read once and
// still inspects; problems with what inspection needs still refuse it.
func TestLoadConfigForInspect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeInspectFile(t, ca, "-----BEGIN CERTIFICATE-----\n")
	missing := filepath.Join(dir, "missing.pem")
	base := `entra:
  tenant_id: 268da1a1-9db4-48b9-b1fe-683250ba90cc
  client_id: 6514a8ca-d9e4-4155-b292-65258398f3aa
  certificate:
    path: ` + missing + `
    key_path: ` + missing + `
  ca_file: CA
tls:
  cert_file: ` + missing + `
cache:
  redis:
    address: redis.internal:6379
    tls: false
    ca_file: ` + missing + `
routes:
  - name: orders
    path_prefix: /orders
    upstream: https://orders.internal.example.com
`
	for _, tc := range []struct {
		name    string
		content string
		env     map[string]string
		ignored []string // the fields of the ignored problems, in order
		caFile  string   // entra.ca_file after loading
		wantErr []string // in the error; none: success
	}{
		{name: "unneeded settings missing", content: strings.Replace(base, "CA", missing, 1),
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path", "entra.ca_file",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "a readable CA file is kept", content: strings.Replace(base, "CA", ca, 1), caFile: ca,
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "an unreadable CA file from the environment is dropped", content: strings.Replace(base, "CA", ca, 1),
			env: map[string]string{"OBO_GATEWAY_ENTRA_CA_FILE": missing},
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path", "entra.ca_file",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "a needed setting", content: strings.Replace(strings.Replace(base, "CA", ca, 1), "268da1a1-9db4-48b9-b1fe-683250ba90cc", "common", 1),
			wantErr: []string{"entra.tenant_id"}},
		{name: "a problem of the file", content: strings.Replace(base, "CA", ca, 1) + "lisen: :1\n",
			wantErr: []string{`unknown key "lisen"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.yaml")
			writeInspectFile(t, path, tc.content)
			cfg, ignored, err := loadConfigForInspect(path, func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("the configuration loaded")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "entra.certificate") {
					t.Errorf("the error names an unneeded setting: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfigForInspect: %v", err)
			}
			var fields []string
			for _, p := range ignored {
				fields = append(fields, p.Field)
			}
			if !reflect.DeepEqual(fields, tc.ignored) {
				t.Errorf("ignored %v, want %v", fields, tc.ignored)
			}
			if cfg.Entra.CAFile != tc.caFile {
				t.Errorf("entra.ca_file = %q, want %q", cfg.Entra.CAFile, tc.caFile)
			}
			for _, p := range ignored {
				if p.Kind == config.KindUnreadableFile && !errors.Is(p, os.ErrNotExist) {
					t.Errorf("%v: not the file's own error", p)
				}
			}
		})
	}
}
