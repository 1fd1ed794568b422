package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path, applies the environment variables that
// getenv reports (see EnvVars; an empty value counts as unset), fills in the
// defaults and validates the result. getenv is os.Getenv in production and a
// map lookup in tests; Load never reads the process environment itself.
//
// The file is read strictly: an unknown or misspelt key, a duplicate key or a
// value of the wrong type is an error naming its line. Relative file paths in
// the configuration are relative to the working directory, not to the file.
//
// Load cannot list the environment through getenv, so an OBO_GATEWAY_ROUTE_*
// variable naming no route goes unnoticed here: call CheckEnviron with
// os.Environ() as well.
//
// Errors are joined (errors.Join): every problem is reported at once, each
// naming the YAML path or the variable. They never contain the certificate
// password, the Redis password or encryption key material.
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := decode(f, path)
	if err != nil {
		return nil, err
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode reads one YAML document strictly. An empty document is an empty
// configuration (everything may come from the environment).
func decode(r io.Reader, name string) (*Config, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return &c, nil
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s: more than one YAML document (a line \"---\"): put the whole configuration in one", name)
	}
	return &c, nil
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	wrongTypeRE    = regexp.MustCompile(`^line (\d+): cannot unmarshal (\S+)( .*)? into (\S+)$`)
)

// yamlError turns yaml.v3's messages into one error per problem, naming the
// file, the line and the section of the configuration.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A syntax error: yaml.v3 names the line ("yaml: line 4: ...").
		return fmt.Errorf("config: %s: %w", name, err)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("line %s: unknown key %q in %s (misspelt? the keys are listed in docs/configuration.md)", m[1], m[2], section(m[3]))
		} else if m := wrongTypeRE.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("line %s: %s%s is not %s", m[1], yamlKind(m[2]), m[3], want(m[4]))
		}
		errs = append(errs, fmt.Errorf("config: %s: %s", name, msg))
	}
	return errors.Join(errs...)
}

// section names where a Go type sits in the file, for unknown-key messages.
func section(goType string) string {
	switch goType {
	case "config.Config":
		return "the top level"
	case "config.ServerTLS":
		return "tls"
	case "config.Entra":
		return "entra"
	case "config.Certificate":
		return "entra.certificate"
	case "config.Route":
		return "a route (routes[])"
	case "config.CORS":
		return "cors"
	case "config.Cache":
		return "cache"
	case "config.Redis":
		return "cache.redis"
	case "config.Limits":
		return "limits"
	}
	return goType
}

// yamlKind says in words what a YAML tag (!!str, !!seq, ...) holds.
func yamlKind(tag string) string {
	switch tag {
	case "!!str":
		return "the string"
	case "!!int", "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return "the value " + tag
}

// want says in words what a Go type expects in YAML.
func want(goType string) string {
	switch {
	case goType == "bool" || goType == "*bool":
		return "a boolean (true or false)"
	case goType == "string":
		return "a string"
	case goType == "int":
		return "a whole number"
	case strings.HasPrefix(goType, "[]"):
		return "a list (one \"- item\" per line, or [a, b])"
	case strings.HasPrefix(goType, "config.") || strings.HasPrefix(goType, "*config."):
		return "a mapping (key: value lines)"
	}
	return "a " + goType
}

// UnmarshalYAML reads a duration written as Go writes it: "30s", "5m", "1h30m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a duration is a single value with a unit, e.g. \"30s\", \"5m\" or \"1h30m\"", n.Line)}}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

// MarshalYAML writes d as UnmarshalYAML reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String returns d as "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write a number with a unit, e.g. \"30s\", \"5m\" or \"1h30m\"", s)
	}
	return Duration(v), nil
}

// UnmarshalYAML reads a size: 64MiB, 512KiB, 1GiB or a plain number of bytes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a size is a single value, e.g. \"64MiB\", \"512KiB\" or \"1GiB\"", n.Line)}}
	}
	v, err := parseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

// MarshalYAML writes b as UnmarshalYAML reads it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String returns b in the largest binary unit that divides it: "64MiB",
// "1536KiB", "1GiB", or "100B".
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && u.size > 1 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// byteUnits are the units a ByteSize is written in, largest first.
var byteUnits = []struct {
	name string
	size ByteSize
}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"B", 1}}

// parseByteSize reads a whole number followed by B, KiB, MiB or GiB (any
// case, spaces allowed before the unit), or a plain number of bytes.
// Decimal units (KB, MB, GB) are refused: they would be read as binary by some
// and decimal by others.
func parseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	digits := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(t)
	}
	num, unit := t[:digits], strings.TrimSpace(t[digits:])
	const how = "write a whole number with a binary unit, e.g. \"64MiB\", \"512KiB\" or \"1GiB\" (units B, KiB, MiB, GiB), or a plain number of bytes"
	if num == "" {
		return 0, fmt.Errorf("%q is not a size: %s", s, how)
	}
	size := ByteSize(0)
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			size = u.size
		}
	}
	if unit == "" {
		size = 1
	}
	if size == 0 {
		switch strings.ToUpper(unit) {
		case "K", "KB", "M", "MB", "G", "GB":
			return 0, fmt.Errorf("%q is not a size: units are binary: did you mean %s%siB? (%s)", s, num, strings.ToUpper(unit[:1]), how)
		}
		return 0, fmt.Errorf("%q is not a size: %s", s, how)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(size) {
		return 0, fmt.Errorf("%q is too large: the cache budgets are at most 64GiB, e.g. \"1GiB\"", s)
	}
	return ByteSize(n) * size, nil
}

// Problems splits an error of Load, Validate or CheckEnviron into its
// problems: the leaves of its errors.Join tree, most of them *FieldError.
func Problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}
