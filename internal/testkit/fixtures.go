package testkit

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EntraFixture returns a file of real Entra material (tokens, key sets,
// discovery documents) from testkit/testdata/entra-real, whose SOURCES.md
// says where each comes from. name is relative to that folder.
func EntraFixture(t testing.TB, name string) []byte {
	t.Helper()
	return ReadFile(t, filepath.Join(EntraFixtureDir(), name))
}

// ReadFile returns the content of the file at path, failing t if it cannot
// be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// EntraFixtureDir is the folder of the real Entra fixtures.
func EntraFixtureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "entra-real")
}
