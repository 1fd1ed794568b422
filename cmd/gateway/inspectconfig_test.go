package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
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
	// base has every file missing but caFile.
	base := func(caFile string) *config.Config {
		return &config.Config{
			Entra: config.Entra{
				TenantID:    "268da1a1-9db4-48b9-b1fe-683250ba90cc",
				ClientID:    "6514a8ca-d9e4-4155-b292-65258398f3aa",
				Certificate: config.Certificate{Path: missing, KeyPath: missing},
				CAFile:      caFile,
			},
			TLS:    &config.ServerTLS{CertFile: missing},
			Cache:  config.Cache{Redis: &config.Redis{Address: "redis.internal:6379", TLS: false, CAFile: missing}},
			Routes: []config.Route{{Name: "orders", PathPrefix: "/orders", Upstream: "https://orders.internal.example.com"}},
		}
	}
	multiTenant := base(ca)
	multiTenant.Entra.TenantID = "common"
	for _, tc := range []struct {
		name    string
		content string
		env     map[string]string
		ignored []string // the fields of the ignored problems, in order
		caFile  string   // entra.ca_file after loading
		wantErr []string // in the error; none: success
	}{
		{name: "unneeded settings missing", content: configtest.YAML(t, base(missing)),
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path", "entra.ca_file",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "a readable CA file is kept", content: configtest.YAML(t, base(ca)), caFile: ca,
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "an unreadable CA file from the environment is dropped", content: configtest.YAML(t, base(ca)),
			env: map[string]string{"OBO_GATEWAY_ENTRA_CA_FILE": missing},
			ignored: []string{"tls.key_file", "tls.cert_file", "entra.certificate.path", "entra.certificate.key_path", "entra.ca_file",
				"cache.redis.ca_file", "cache.redis.ca_file", "cache.redis.encryption_keys"}},
		{name: "a needed setting", content: configtest.YAML(t, multiTenant),
			wantErr: []string{"entra.tenant_id"}},
		// An unknown key, which no Config holds: the text, edited.
		{name: "a problem of the file", content: configtest.YAML(t, base(ca)) + "lisen: :1\n",
			wantErr: []string{`unknown key "lisen"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := configtest.WriteYAML(t, tc.content)
			var environ []string
			for k, v := range tc.env {
				environ = append(environ, k+"="+v)
			}
			cfg, ignored, err := loadConfigForInspect(path, environ)
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
