package architecture

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/obo-gateway/obo-gateway/"

// root is the repository's root, from this package's directory.
const root = "../.."

// documented reads the table between the imports markers of
// docs/architecture.md: package → the repository's packages it may import.
func documented(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- imports:begin -->"), strings.Index(s, "<!-- imports:end -->")
	if begin < 0 || end < begin {
		t.Fatal("docs/architecture.md has no imports:begin/imports:end table")
	}
	code := regexp.MustCompile("`([^`]+)`")
	table := map[string][]string{}
	for _, line := range strings.Split(s[begin:end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || !strings.Contains(cells[1], "`") {
			continue // not a row, or the header
		}
		pkg := code.FindStringSubmatch(cells[1])[1]
		if _, dup := table[pkg]; dup {
			t.Errorf("docs/architecture.md lists %s twice", pkg)
		}
		var allowed []string
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			allowed = append(allowed, m[1])
		}
		slices.Sort(allowed)
		table[pkg] = allowed
	}
	return table
}

// actual lists every package of the repository (a directory with
// non-test Go files) and the repository's packages its non-test files
// import.
func actual(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var imports []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				imports = append(imports, strings.TrimPrefix(imp, module))
			}
		}
		slices.Sort(imports)
		out[filepath.ToSlash(rel)] = imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The table of docs/architecture.md is exact: every package is in it, each
// imports what its row allows and nothing else, and every row is still
// true.
func TestImportsAreDocumented(t *testing.T) {
	doc, code := documented(t), actual(t)
	if len(code) < 10 {
		t.Fatalf("found only %d packages under %s: walked the wrong tree?", len(code), root)
	}
	for pkg, imports := range code {
		allowed, ok := doc[pkg]
		if !ok {
			t.Errorf("%s is not in docs/architecture.md's import table: add a row (and a line to its package list)", pkg)
			continue
		}
		for _, imp := range imports {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow: reconsider the import, or change the table and say why", pkg, imp)
			}
		}
		for _, a := range allowed {
			if !slices.Contains(imports, a) {
				t.Errorf("docs/architecture.md lets %s import %s, which it no longer does: remove it from the table", pkg, a)
			}
		}
	}
	for pkg := range doc {
		if _, ok := code[pkg]; !ok {
			t.Errorf("docs/architecture.md lists %s, which is not a package", pkg)
		}
	}
}

// The rules the table follows, checked on the code itself, so that a change
// to the table must break one of them openly.
func TestLayering(t *testing.T) {
	code := actual(t)
	core := []string{"internal/auth", "internal/obo", "internal/tokencache", "internal/tokencache/redisl2",
		"internal/proxy", "internal/edge", "internal/cors", "internal/urlpath", "internal/reqlog", "internal/reqid",
		"internal/apierror", "internal/lru", "internal/metrics", "internal/pki"}
	for pkg, imports := range code {
		for _, imp := range imports {
			switch {
			case slices.Contains(core, pkg) && (imp == "internal/config" || imp == "internal/clients" || imp == "internal/gateway"):
				t.Errorf("core package %s imports %s: give it its own Config instead", pkg, imp)
			case imp == "internal/gateway" && pkg != "cmd/gateway" && pkg != "internal/demo":
				t.Errorf("%s imports internal/gateway: only the binary and the demo assemble a gateway", pkg)
			case imp == "internal/clients" && pkg != "internal/gateway" && pkg != "internal/doctor" && pkg != "cmd/gateway":
				t.Errorf("%s imports internal/clients: only the composition root and the tools make clients", pkg)
			case strings.HasPrefix(pkg, "internal/fakeentra") && !strings.HasPrefix(imp, "internal/fakeentra") && imp != "internal/pki":
				t.Errorf("the examiner %s imports %s: it may share only neutral helpers (pki) with the gateway", pkg, imp)
			case strings.HasPrefix(imp, "internal/fakeentra") && !slices.Contains([]string{"cmd/fakeentra", "internal/demo", "bench/benchenv", "internal/fakeentra/fakeentratest"}, pkg):
				t.Errorf("%s imports the examiner %s", pkg, imp)
			case imp == "internal/testkit" || imp == "internal/config/configtest":
				t.Errorf("%s imports %s outside its tests", pkg, imp)
			}
		}
	}
}
