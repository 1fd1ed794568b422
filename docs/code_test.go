package docs

// What the checks know of the repository's Go code, read with go/parser:
// the literals it holds, the metrics it registers, the names it declares.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// goFile is one parsed Go file of the repository.
type goFile struct {
	dir  string // from the root, slash-separated: internal/auth
	test bool   // a _test.go file
	ast  *ast.File
}

// readGo parses every Go file of the repository (testdata and hidden
// directories aside).
func readGo(t *testing.T) []goFile {
	t.Helper()
	var files []goFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		files = append(files, goFile{dir: filepath.ToSlash(rel), test: strings.HasSuffix(path, "_test.go"), ast: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d Go files under %s: walked the wrong tree?", len(files), root)
	}
	return files
}

// underTenant reports whether dir is the local tenant's code.
func underTenant(dir string) bool {
	return dir == "internal/fakeentra" || strings.HasPrefix(dir, "internal/fakeentra/")
}

// literals is what the literals of some non-test files hold.
type literals struct {
	strings map[string]bool // every string literal's value
	numbers map[string]bool // every integer literal, and every run of digits in a string literal
}

var digitsRE = regexp.MustCompile(`\d+`)

// literalsOf collects the literals of the non-test files keep accepts.
func literalsOf(files []goFile, keep func(dir string) bool) literals {
	l := literals{strings: map[string]bool{}, numbers: map[string]bool{}}
	for _, f := range files {
		if f.test || !keep(f.dir) {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok {
				return true
			}
			switch lit.Kind {
			case token.INT:
				l.numbers[lit.Value] = true
			case token.STRING:
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				l.strings[s] = true
				for _, d := range digitsRE.FindAllString(s, -1) {
					l.numbers[d] = true
				}
			}
			return true
		})
	}
	return l
}

// metricsOf returns the metrics the non-test code registers (a composite
// literal with Name: "obo_gateway_…"), each with its label names when the
// call registering it lists them literally (nil otherwise).
func metricsOf(files []goFile) map[string][]string {
	out := map[string][]string{}
	nameOf := func(e ast.Expr) string {
		cl, ok := e.(*ast.CompositeLit)
		if !ok {
			return ""
		}
		for _, el := range cl.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
				if v, ok := kv.Value.(*ast.BasicLit); ok && v.Kind == token.STRING {
					s, _ := strconv.Unquote(v.Value)
					if strings.HasPrefix(s, "obo_gateway_") {
						return s
					}
				}
			}
		}
		return ""
	}
	for _, f := range files {
		if f.test {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if len(n.Args) != 2 {
					return true
				}
				name := nameOf(n.Args[0])
				labels, ok := n.Args[1].(*ast.CompositeLit)
				if name == "" || !ok {
					return true
				}
				out[name] = []string{}
				for _, el := range labels.Elts {
					if v, ok := el.(*ast.BasicLit); ok && v.Kind == token.STRING {
						s, _ := strconv.Unquote(v.Value)
						out[name] = append(out[name], s)
					}
				}
			case *ast.CompositeLit:
				if name := nameOf(n); name != "" {
					if _, seen := out[name]; !seen {
						out[name] = nil
					}
				}
			}
			return true
		})
	}
	return out
}

// pkgNames is what a package declares at its top level, and the members
// (fields, methods) of its types.
type pkgNames struct {
	dirs    []string
	decls   map[string]bool
	methods map[string]bool            // of any of its types
	members map[string]map[string]bool // type → field and method names
}

// namesOf returns the declarations of the non-test, non-main packages, by
// package name.
func namesOf(files []goFile) map[string]*pkgNames {
	out := map[string]*pkgNames{}
	for _, f := range files {
		if f.test || f.ast.Name.Name == "main" {
			continue
		}
		p := out[f.ast.Name.Name]
		if p == nil {
			p = &pkgNames{decls: map[string]bool{}, methods: map[string]bool{}, members: map[string]map[string]bool{}}
			out[f.ast.Name.Name] = p
		}
		if !slices.Contains(p.dirs, f.dir) {
			p.dirs = append(p.dirs, f.dir)
		}
		member := func(typ, name string) {
			if p.members[typ] == nil {
				p.members[typ] = map[string]bool{}
			}
			p.members[typ][name] = true
		}
		for _, d := range f.ast.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) == 0 {
					p.decls[d.Name.Name] = true
					continue
				}
				member(recvType(d.Recv.List[0].Type), d.Name.Name)
				p.methods[d.Name.Name] = true
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						p.decls[s.Name.Name] = true
						switch typ := s.Type.(type) {
						case *ast.StructType:
							for _, fld := range typ.Fields.List {
								for _, n := range fld.Names {
									member(s.Name.Name, n.Name)
								}
								if len(fld.Names) == 0 { // embedded: its name is its type's
									member(s.Name.Name, recvType(fld.Type))
								}
							}
						case *ast.InterfaceType:
							for _, m := range typ.Methods.List {
								for _, n := range m.Names {
									member(s.Name.Name, n.Name)
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							p.decls[n.Name] = true
						}
					}
				}
			}
		}
	}
	return out
}

// recvType is the name of a receiver's or embedded field's type: T for
// T, *T, T[P], pkg.T.
func recvType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvType(e.X)
	case *ast.IndexExpr:
		return recvType(e.X)
	case *ast.IndexListExpr:
		return recvType(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.Ident:
		return e.Name
	}
	return ""
}

// testFuncsOf returns the names of the Test, Fuzz and Benchmark functions
// of the test files.
func testFuncsOf(files []goFile) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		if !f.test {
			continue
		}
		for _, d := range f.ast.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				out[fn.Name.Name] = true
			}
		}
	}
	return out
}

// getenvsOf returns the variables the non-test files of dir read by a
// literal name: getenv("X"), os.Getenv("X"), os.LookupEnv("X").
func getenvsOf(files []goFile, dir string) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		if f.test || f.dir != dir {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			var fn string
			switch c := call.Fun.(type) {
			case *ast.Ident:
				fn = c.Name
			case *ast.SelectorExpr:
				fn = c.Sel.Name
			}
			if fn != "getenv" && fn != "Getenv" && fn != "LookupEnv" {
				return true
			}
			if v, ok := call.Args[0].(*ast.BasicLit); ok && v.Kind == token.STRING {
				s, _ := strconv.Unquote(v.Value)
				out[s] = true
			}
			return true
		})
	}
	return out
}

// typedConstsOf returns the values of the string constants of type typ
// declared in the non-test files of dir (const X typ = "x").
func typedConstsOf(files []goFile, dir, typ string) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		if f.test || f.dir != dir {
			continue
		}
		for _, d := range f.ast.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				v, ok := s.(*ast.ValueSpec)
				if !ok || v.Type == nil || recvType(v.Type) != typ {
					continue
				}
				for _, e := range v.Values {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out[s] = true
					}
				}
			}
		}
	}
	return out
}
