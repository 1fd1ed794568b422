package config

import (
	"errors"
	"strconv"
	"strings"
)

// Kind says what sort of problem a FieldError is, for callers that treat
// them differently (gateway doctor files a problem of the file apart from a
// bad setting).
type Kind int

// The kinds of problems.
const (
	// KindInvalid: a value breaks a rule of Validate. The zero Kind.
	KindInvalid Kind = iota
	// KindSyntax: the file is not one YAML document (bad syntax, a second
	// document, an alias that contains itself).
	KindSyntax
	// KindUnknownKey: a key of the file is no setting (misspelt, or in the
	// wrong section).
	KindUnknownKey
	// KindDuplicateKey: a key is given twice in one mapping.
	KindDuplicateKey
	// KindWrongType: a value cannot be read as its setting's type: a list
	// for a string, "maybe" for a boolean, 30 (no unit) for a duration.
	KindWrongType
	// KindUnreadableFile: a file cannot be read: the configuration file
	// itself (Field empty) or one a setting names.
	KindUnreadableFile
	// KindUnknownVariable: an OBO_GATEWAY_ROUTE_* variable sets no field of
	// a route of the file (ValidateWith and Load, when the environment can
	// be listed; CheckEnviron).
	KindUnknownVariable
)

var kindNames = [...]string{"invalid value", "syntax", "unknown key", "duplicate key", "wrong type", "unreadable file", "unknown variable"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind " + strconv.Itoa(int(k))
}

// FieldError is one problem with the configuration. Every error of Parse,
// Validate, ValidateWith, Load and CheckEnviron is a *FieldError or an
// errors.Join of them (see Problems), so that a caller renders a problem
// from its fields rather than from its message.
//
// No field ever holds the certificate password, the Redis password or
// encryption key material.
type FieldError struct {
	Kind Kind
	// Field is the setting's YAML path, e.g. routes[1].downstream_scopes[0]
	// or entra.tenant_id; for an unknown or duplicate key, the path the key
	// has. Empty for a problem of the whole file (syntax, or the file cannot
	// be read) or of a variable that names no setting.
	Field string
	// EnvVar is the environment variable that sets Field, when it has one
	// (OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM for routes[0].upstream), or the
	// variable a KindUnknownVariable problem is about.
	EnvVar string
	// FromEnv reports that the value came from EnvVar, not from the file.
	FromEnv bool
	// File is the configuration file when the problem is in it: the value
	// or key is there, or the file cannot be read or parsed. Line is the
	// line of the value or key (1-based), 0 when unknown: a value from the
	// environment or a default has none, and nor does a YAML syntax error
	// (its Problem names the line).
	File string
	Line int
	// Value is the offending value when it is safe to show (a scope, a
	// path, a duration), "" otherwise.
	Value string
	// Problem says what is wrong and, mostly, how to fix it.
	Problem string
	// Err is the underlying error, when there is one (the *fs.PathError of
	// an unreadable file).
	Err error
}

// Error renders the problem on one line, naming what a reader needs to
// find it:
//
//	config: FILE:LINE: FIELD: problem          a value of the file
//	config: FIELD (env VAR): problem           a value of a variable
//	config: FIELD: problem                     a default, or a missing setting
//
// An unknown or duplicate key's problem names the key and its section
// itself, so the field is not repeated.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if s := e.Subject(); s != "" {
		b.WriteString(s + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// Subject names what the problem is about, without its place in the file:
// "routes[0].timeout", "routes[0].timeout (env OBO_GATEWAY_ROUTE_ORDERS_TIMEOUT)"
// when the value came from the variable, the variable alone when there is
// no field, and "" for an unknown or duplicate key.
func (e *FieldError) Subject() string {
	switch {
	case e.Kind == KindUnknownKey || e.Kind == KindDuplicateKey:
		return ""
	case e.Field == "":
		return e.EnvVar
	case e.FromEnv && e.EnvVar != "":
		return e.Field + " (env " + e.EnvVar + ")"
	}
	return e.Field
}

// Setting is Field without its indexes, as docs/configuration.md and
// EnvVars name settings: routes[].downstream_scopes for
// routes[1].downstream_scopes[0].
func (e *FieldError) Setting() string { return strings.TrimSuffix(pattern(e.Field), "[]") }

// Problems splits an error of Parse, Load, Validate, ValidateWith or
// CheckEnviron into its problems, in order: the leaves of its errors.Join
// tree. A leaf that is not a *FieldError (these functions return none) is
// given as one with only Problem and Err set. nil has none.
func Problems(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Problem: err.Error(), Err: err}}
}

// pattern writes every index of a YAML path as []: routes[].downstream_scopes[]
// for routes[1].downstream_scopes[0].
func pattern(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			if j := strings.IndexByte(path[i:], ']'); j > 0 {
				b.WriteString("[]")
				i += j
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

// parent is the YAML path that holds path: routes[1].downstream_scopes for
// routes[1].downstream_scopes[0], routes[1] for routes[1].upstream; ok is
// false at the top.
func parent(path string) (string, bool) {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i > 0 {
			return path[:i], true
		}
	}
	if i := strings.LastIndexByte(path, '.'); i > 0 {
		return path[:i], true
	}
	return "", false
}

// isSecret reports the settings whose values no problem may show. The
// encryption key ID is one: a key pasted there by mistake is key material.
func isSecret(field string) bool {
	switch field {
	case "entra.certificate.password", "cache.redis.password",
		"cache.redis.encryption_keys", "cache.redis.encryption_key_id":
		return true
	}
	return false
}

// shown quotes a value of the file for a message: in backquotes as the
// file has it, or Go-quoted when it holds quotes or control characters;
// cut short when long, so that a problem stays on one line.
func shown(v string) string {
	const max = 64
	if r := []rune(v); len(r) > max {
		v = string(r[:max]) + "…"
	}
	if strconv.CanBackquote(v) {
		return "`" + v + "`"
	}
	return strconv.Quote(v)
}
