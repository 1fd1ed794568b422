// Package configtest writes the gateway's configuration file for tests
// from a config.Config: the settings are named in Go, so the compiler
// checks them, and the YAML is config.Config's own (its tags), so the file
// cannot drift from what config.Load reads. Only tests import it.
//
// A test that needs a mistake the Config cannot hold (an unknown key, a
// value of the wrong type) edits YAML's output and writes it with
// WriteYAML; Line finds the line a problem is expected at.
package configtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// FileName is the name of the file Write and WriteYAML write.
const FileName = "gateway.yaml"

// YAML returns c as a configuration file, indented by two spaces, with
// only the settings c sets: a zero value is left out and config.Load
// fills in its default, as it would for a file without it (see
// config.Config). An InstanceDiscovery set to false is written. Lists are
// written one item per line ("- item"). YAML does not validate: a test may
// write a configuration Load refuses, to see how. c must not be nil.
func YAML(t testing.TB, c *config.Config) string {
	t.Helper()
	if c == nil {
		t.Fatal("configtest.YAML: nil *config.Config")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		t.Fatalf("configtest.YAML: %v", err)
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("configtest.YAML: %v", err)
	}
	return b.String()
}

// Write writes YAML(t, c) to a file named FileName in a new t.TempDir()
// and returns its path.
func Write(t testing.TB, c *config.Config) string {
	t.Helper()
	return WriteYAML(t, YAML(t, c))
}

// WriteYAML writes text, YAML's output edited to hold a mistake, to a file
// named FileName in a new t.TempDir() and returns its path.
func WriteYAML(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("configtest.WriteYAML: %v", err)
	}
	return path
}

// Line returns the number, from 1, of the line of text that starts with
// prefix once its indentation is removed: Line(t, y, "tenant_id:"), or
// Line(t, y, "- api://orders-api/.default") for a list item. It fails the
// test unless exactly one line does, so that an expected line number is
// never a guess.
func Line(t testing.TB, text, prefix string) int {
	t.Helper()
	found := 0
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimLeft(line, " "), prefix) {
			continue
		}
		if found != 0 {
			t.Fatalf("configtest.Line: lines %d and %d start with %q:\n%s", found, i+1, prefix, text)
		}
		found = i + 1
	}
	if found == 0 {
		t.Fatalf("configtest.Line: no line starts with %q:\n%s", prefix, text)
	}
	return found
}
