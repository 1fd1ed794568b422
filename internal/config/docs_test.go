package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	examplePath = "../../deploy/gateway.example.yaml"
	docsPath    = "../../docs/configuration.md"
)

func TestExampleConfigValidates(t *testing.T) {
	f := newFiles(t)
	c, err := Load(examplePath, envMap(map[string]string{"AZURE_CLIENT_CERTIFICATE_PATH": f.cert}))
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	if c.Entra.Certificate.Password != "" {
		t.Error("the example writes a password in the file: show AZURE_CLIENT_CERTIFICATE_PASSWORD instead")
	}
	if c.Cache.Redis != nil {
		t.Errorf("the example has a shared cache without an address in the environment: %v", c.Cache.Redis)
	}
	orders := routeIndex(c, "orders")
	if orders < 0 || c.Routes[orders].Upstream != "https://orders.internal.example.com" || c.Routes[orders].Resource() != "api://orders-api" {
		t.Errorf("the example's orders route is not orders → https://orders.internal.example.com with api://orders-api: %+v", c.Routes)
	}

	t.Run("no secrets in the file", func(t *testing.T) {
		b, err := os.ReadFile(examplePath)
		if err != nil {
			t.Fatal(err)
		}
		raw, _, errs := decode(b, examplePath)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if r := raw.Cache.Redis; r == nil || r.Password != "" || r.EncryptionKeys != "" {
			t.Errorf("the example's cache.redis must be present with empty password and encryption_keys (given in the environment): %v", r)
		}
	})

	t.Run("shared cache from the environment", func(t *testing.T) {
		c, err := Load(examplePath, envMap(map[string]string{
			"AZURE_CLIENT_CERTIFICATE_PATH":           f.cert,
			"OBO_GATEWAY_CACHE_REDIS_ADDRESS":         "redis.internal.example.com:6379",
			"OBO_GATEWAY_CACHE_REDIS_PASSWORD":        redisPassword,
			"OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS": fileKeys,
		}))
		if err != nil {
			t.Fatalf("the example does not load with a shared cache:\n%v", err)
		}
		if r := c.Cache.Redis; r == nil || r.EncryptionKeyID != "k1" || r.Timeout != Duration(50*time.Millisecond) {
			t.Errorf("Redis = %v", r)
		}
	})
}

// TestDocsCoverEverySetting keeps docs/configuration.md and the example
// in step with Config and EnvVars.
func TestDocsCoverEverySetting(t *testing.T) {
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range EnvVars() {
		if !strings.Contains(string(docs), "`"+v.Name+"`") {
			t.Errorf("%s does not mention %s", docsPath, v.Name)
		}
	}
	inExample := exampleKeys(t)
	for _, path := range yamlLeaves(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(docs), "`"+path+"`") {
			t.Errorf("%s does not document %s", docsPath, path)
		}
		if !slices.Contains(inExample, path) {
			t.Errorf("%s does not set %s", examplePath, path)
		}
	}
}

// exampleKeys lists the YAML paths the example file sets, routes[].x for
// the keys of any route.
func exampleKeys(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := prefix+n.Content[i].Value, n.Content[i+1]
			switch {
			case value.Kind == yaml.MappingNode:
				walk(value, key+".")
			case value.Kind == yaml.SequenceNode && len(value.Content) > 0 && value.Content[0].Kind == yaml.MappingNode:
				for _, item := range value.Content {
					walk(item, key+"[].")
				}
			default:
				keys = append(keys, key)
			}
		}
	}
	walk(doc.Content[0], "")
	return keys
}
