package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load is Parse then ValidateWith(Options{Source: src}): the
// configuration as the gateway runs it, or every problem at once. env is
// the environment, in one of the forms of Environment: os.Environ() for
// the gateway, a map in tests; Load never reads the process environment
// itself. With a list or a map, an OBO_GATEWAY_ROUTE_* variable that names
// no route of the file is one of the problems.
//
// Errors are joined (errors.Join) *FieldErrors, one per problem (see
// Problems), each placed at its line of the file or its variable. They
// never contain the certificate password, the Redis password or encryption
// key material.
func Load[E Environment](path string, env E) (*Config, error) {
	c, src, err := Parse(path, env)
	if err != nil {
		return nil, err
	}
	if _, err := c.ValidateWith(Options{Source: src}); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse reads the YAML file at path, applies the environment variables
// of env (see Environment and EnvVars; a variable set to "" clears its
// setting) and fills in the defaults, without validating: the result may
// break any rule of Validate, and ValidateWith(Options{Source: src})
// checks it, placing each problem where its value came from. The Config
// keeps src too: Origin says where each setting came from.
//
// The file is read strictly: an unknown or misspelt key, a duplicate key,
// a value of the wrong type or a second YAML document is an error naming
// its line. An empty file is an empty configuration; every setting but
// the routes may come from the environment (routes are defined in the
// file, and their variables only override their fields). Relative file
// paths in the configuration are relative to the working directory, not
// to the file.
//
// Parse fails only on what cannot be read: the file, its YAML, a
// variable's value of the wrong type. Its error joins a *FieldError per
// problem, all of them at once; c and src are nil then.
func Parse[E Environment](path string, env E) (c *Config, src *Source, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &FieldError{Kind: KindUnreadableFile, File: path,
			Problem: "cannot read the configuration file: " + pathErrReason(err).Error(), Err: err}
	}
	return parse(data, path, environmentOf(env))
}

// parse is Parse of the file's content; name is the file's path.
func parse(data []byte, name string, env environment) (*Config, *Source, error) {
	c, lines, errs := decode(data, name)
	src := &Source{File: name, lines: lines, env: map[string]string{}, listed: env.listed, routeVars: routeVarsOf(env.names)}
	errs = append(errs, c.applyEnv(env.lookup, src.env)...)
	if len(errs) > 0 {
		envs := c.envFields()
		out := make([]error, len(errs))
		for i, e := range errs {
			locate(e, envs, nil)
			out[i] = e
		}
		return nil, nil, errors.Join(out...)
	}
	c.applyDefaults()
	c.source, c.Entra.source = src, src
	return c, src, nil
}

// Source says where the settings of a parsed configuration came from: the
// line of each value in the file, or the variable that set it. Parse makes
// it; ValidateWith reads it (Options.Source).
type Source struct {
	// File is the configuration file, as given to Parse.
	File  string
	lines map[string]int    // YAML path → line of its key or list item in File
	env   map[string]string // YAML path → the variable that set it
	// listed: the environment could be listed (a list or a map), and
	// routeVars are the OBO_GATEWAY_ROUTE_* variables set in it, in order.
	listed    bool
	routeVars []string
}

// origin is Config.Origin's answer for path.
func (s *Source) origin(path string) string {
	if s == nil {
		return ""
	}
	if v := lookupUp(s.env, path); v != "" {
		return "env " + v
	}
	if line := s.lines[path]; line > 0 {
		return s.File + ":" + strconv.Itoa(line)
	}
	return ""
}

// Origin says where the setting at path (a YAML path, such as
// entra.certificate.key_path or routes[0].upstream) got its value, in the
// words messages use: "gateway.yaml:12" (the file, as given to Parse, and
// the line) for a value of the file, "env OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH"
// for a variable's (one set to "", which cleared the setting, included),
// and "" for a default, a setting left unset, or a Config that Parse or
// Load did not make.
func (c *Config) Origin(path string) string { return c.source.origin(path) }

// Origin is Config.Origin, from the section alone: what is built of the
// section (the certificate, the HTTP client for Entra) gets only it, and
// names in its errors where its settings came from.
func (e Entra) Origin(path string) string { return e.source.origin(path) }

// Equal reports whether c and o hold the same settings. Unlike
// reflect.DeepEqual, it ignores where the settings came from (Origin):
// a Config read by Load equals the literal of its settings.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	a, b := *c, *o
	a.source, a.Entra.source, b.source, b.Entra.source = nil, nil, nil, nil
	return reflect.DeepEqual(&a, &b)
}

// locate fills in where e's value came from: the variable that sets its
// field (envs, from envFields), and, with src, whether that variable set
// the value, or else the file and line of the value. A problem placed
// already (one of the file's YAML) keeps its place.
func locate(e *FieldError, envs map[string]string, src *Source) {
	if e.Field == "" || e.Kind == KindUnknownKey || e.Kind == KindDuplicateKey {
		return
	}
	if e.EnvVar == "" {
		e.EnvVar = lookupUp(envs, e.Field)
	}
	if src == nil || e.File != "" || e.FromEnv {
		return
	}
	if v := lookupUp(src.env, e.Field); v != "" {
		e.EnvVar, e.FromEnv = v, true
		return
	}
	if line := src.lines[e.Field]; line > 0 {
		e.File, e.Line = src.File, line
	}
}

// lookupUp returns the value of field in m, or of the nearest path holding
// it (a list's variable sets its items); "" when none.
func lookupUp(m map[string]string, field string) string {
	for f, ok := field, true; ok; f, ok = parent(f) {
		if v, found := m[f]; found {
			return v
		}
	}
	return ""
}

// pathErrReason returns the reason of a failed file operation without the
// operation and path ("no such file or directory"), which the message
// names already.
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// UnmarshalYAML reads a duration written as Go writes it: "30s", "5m", "1h30m".
// A value it cannot read is a *FieldError of KindWrongType with its line
// (Parse adds the file and the field); yaml.v3 stops decoding at it.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Kind: KindWrongType, Line: n.Line, Problem: `a duration is a single value with a unit, e.g. "30s", "5m" or "1h30m"`}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &FieldError{Kind: KindWrongType, Line: n.Line, Value: n.Value, Problem: err.Error()}
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
// A value it cannot read is a *FieldError, as for Duration.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Kind: KindWrongType, Line: n.Line, Problem: `a size is a single value, e.g. "64MiB", "512KiB" or "1GiB"`}
	}
	v, err := parseByteSize(n.Value)
	if err != nil {
		return &FieldError{Kind: KindWrongType, Line: n.Line, Value: n.Value, Problem: err.Error()}
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
