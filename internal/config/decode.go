package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxVisits bounds the values the decoder walks, aliases expanded: a file
// of a few kilobytes could otherwise name billions of them, alias by alias.
// A real configuration has a few hundred.
const maxVisits = 1 << 20

// decode reads one YAML document into a Config, strictly. It walks the
// document's nodes along Config's types itself, rather than leaving it to
// yaml.v3, so that each problem is known by its kind, its YAML path and its
// line without reading yaml.v3's messages: unknown keys, duplicate keys, a
// value of the wrong kind. Scalars are decoded by yaml.v3 (and by Duration
// and ByteSize). lines maps the YAML path of every key and list item of the
// file to its line; errs are *FieldErrors, and c holds what could be read.
func decode(data []byte, file string) (c *Config, lines map[string]int, errs []*FieldError) {
	d := &decoder{file: file, lines: map[string]int{}, active: map[*yaml.Node]bool{}}
	c = &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, d.lines, nil // empty: everything may come from the environment
		}
		// A syntax error; yaml.v3 names the line in its message.
		return c, d.lines, []*FieldError{{Kind: KindSyntax, File: file, Problem: err.Error(), Err: err}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return c, d.lines, []*FieldError{{Kind: KindSyntax, File: file, Line: extra.Line,
			Problem: `more than one YAML document (a line "---"): put the whole configuration in one`}}
	}
	if len(doc.Content) == 1 {
		d.value(doc.Content[0], reflect.ValueOf(c).Elem(), "")
	}
	return c, d.lines, d.errs
}

// decoder is the state of one decode.
type decoder struct {
	file   string
	lines  map[string]int
	errs   []*FieldError
	active map[*yaml.Node]bool // the anchored nodes being walked through an alias
	visits int
}

func (d *decoder) fail(kind Kind, field string, line int, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Kind: kind, Field: field, File: d.file, Line: line, Problem: fmt.Sprintf(format, args...)})
}

// visit counts a node walked, and reports false, once with a problem, when
// there have been too many.
func (d *decoder) visit(n *yaml.Node) bool {
	d.visits++
	if d.visits == maxVisits+1 {
		d.fail(KindSyntax, "", n.Line, "the document expands to more than %d values through its aliases: write the configuration out", maxVisits)
	}
	return d.visits <= maxVisits
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v, the setting at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.visit(n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil || d.active[target] {
			d.fail(KindSyntax, path, n.Line, "the alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[target] = true
		defer delete(d.active, target)
		n = target
	}
	if isNull(n) {
		return // an empty value leaves the setting unset, as yaml.v3 does
	}
	t := v.Type()
	switch {
	case reflect.PointerTo(t).Implements(unmarshalerType):
		d.scalar(n, v, path)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.wrongType(n, t, path)
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.mapping(n, v.Elem(), path, map[string]bool{})
	case t.Kind() == reflect.Struct:
		d.mapping(n, v, path, map[string]bool{})
	case t.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// mapping decodes a mapping into the struct v. set holds the keys already
// given: a merge (<<: *defaults) sets only the others, as in yaml.v3.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, set map[string]bool) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, v.Type(), path)
		return
	}
	seen := map[string]int{} // key → line, in this mapping
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			// yaml.v3 skips an empty key silently: it is a mistake all the same.
			d.fail(KindUnknownKey, path, k.Line, "%s as a key in %s: keys are setting names (docs/configuration.md lists them)", describeKey(k), section(path))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(KindDuplicateKey, join(path, k.Value), k.Line, "mapping key %q already defined at line %d: give each key once", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if isMerge(k) {
			merges = append(merges, val)
			continue
		}
		if set[k.Value] {
			continue
		}
		set[k.Value] = true
		f, ok := fieldByTag(v, k.Value)
		if !ok {
			d.fail(KindUnknownKey, join(path, k.Value), k.Line, "unknown key %q in %s (misspelt? the keys are listed in docs/configuration.md)", k.Value, section(path))
			continue
		}
		field := join(path, k.Value)
		d.lines[field] = k.Line
		d.value(val, f, field)
	}
	for _, m := range merges {
		d.merge(m, v, path, set)
	}
}

// merge applies the value of a merge key (<<): a mapping, an alias of one,
// or a list of them, earlier ones first.
func (d *decoder) merge(m *yaml.Node, v reflect.Value, path string, set map[string]bool) {
	const want = "a merge (<<) takes a mapping or a list of mappings, e.g. <<: *defaults"
	sources := []*yaml.Node{m}
	if resolved(m).Kind == yaml.SequenceNode {
		sources = resolved(m).Content
	}
	for _, s := range sources {
		if r := resolved(s); r == nil || r.Kind != yaml.MappingNode {
			d.fail(KindWrongType, path, s.Line, "%s", want)
			continue
		}
		if !d.visit(s) {
			return
		}
		if s.Kind == yaml.AliasNode {
			if d.active[s.Alias] {
				d.fail(KindSyntax, path, s.Line, "the alias *%s refers to a value that contains it", s.Value)
				continue
			}
			d.active[s.Alias] = true
			d.mapping(s.Alias, v, path, set)
			delete(d.active, s.Alias)
			continue
		}
		d.mapping(s, v, path, set)
	}
}

// sequence decodes a list into the slice v, each item at path[i]. An empty
// item is dropped, as yaml.v3 does, and i counts the items kept.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, v.Type(), path)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	i := 0
	for _, item := range n.Content {
		if r := resolved(item); r != nil && isNull(r) {
			continue
		}
		field := fmt.Sprintf("%s[%d]", path, i)
		d.lines[field] = item.Line
		d.value(item, s.Index(i), field)
		i++
	}
	v.Set(s.Slice(0, i))
}

// scalar decodes a single value with yaml.v3, or Duration's and ByteSize's
// UnmarshalYAML, whose problems are *FieldErrors.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	custom := reflect.PointerTo(v.Type()).Implements(unmarshalerType)
	if n.Kind != yaml.ScalarNode && !custom {
		d.wrongType(n, v.Type(), path)
		return
	}
	err := n.Decode(v.Addr().Interface())
	if err == nil {
		return
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		fe.Field, fe.File = path, d.file
		if fe.Line == 0 {
			fe.Line = n.Line
		}
		d.errs = append(d.errs, fe)
		return
	}
	// yaml.v3 reads any scalar as a string: this is a boolean or a number
	// it could not read.
	d.wrongType(n, v.Type(), path)
}

// wrongType reports n, which cannot be read as a t.
func (d *decoder) wrongType(n *yaml.Node, t reflect.Type, path string) {
	e := &FieldError{Kind: KindWrongType, Field: path, File: d.file, Line: n.Line}
	what := describe(n)
	if n.Kind == yaml.ScalarNode && !isSecret(path) {
		e.Value = n.Value
		what += " " + shown(n.Value)
	}
	e.Problem = what + " is not " + want(t)
	d.errs = append(d.errs, e)
}

// resolved is n, or the node an alias n refers to.
func resolved(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// isNull reports an empty value: nothing, ~ or null.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// isMerge reports a merge key, << unquoted (as yaml.v3 reads it).
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// fieldByTag returns the field of the struct v whose YAML key is key.
func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key && tag != "-" {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// join appends a key to a YAML path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// section names a mapping of the file, for unknown-key messages.
func section(path string) string {
	switch p := pattern(path); p {
	case "":
		return "the top level"
	case "routes[]":
		return "a route (routes[])"
	default:
		return p
	}
}

// describe says in words what a node holds.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return "the string"
	case "!!int", "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	}
	return "the value"
}

// describeKey says in words what a key that is no name holds.
func describeKey(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return "an empty value"
	}
	return describe(k)
}

// want says in words what a setting of type t is written as.
func want(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a whole number"
	case reflect.Slice:
		return `a list (one "- item" per line, or [a, b])`
	case reflect.Struct:
		return "a mapping (key: value lines)"
	}
	return "a " + t.String()
}
