package config

import (
	"os"
	"strings"
	"testing"
)

// The example configuration, deploy/gateway.example.yaml, is tested where
// it lives (deploy/example_test.go): its placeholders, and every setting
// shown, set or commented out.

const docsPath = "../../docs/configuration.md"

func readDocs(t *testing.T) string {
	t.Helper()
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(docs)
}

// TestDocsCoverEverySetting keeps docs/configuration.md in step with
// Config and EnvVars.
func TestDocsCoverEverySetting(t *testing.T) {
	docs := readDocs(t)
	for _, v := range EnvVars() {
		if !strings.Contains(docs, "`"+v.Name+"`") {
			t.Errorf("%s does not mention %s", docsPath, v.Name)
		}
	}
	for _, path := range SettingPaths() {
		if !strings.Contains(docs, "`"+path+"`") {
			t.Errorf("%s does not document %s", docsPath, path)
		}
	}
}
