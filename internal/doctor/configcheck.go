package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// checkConfig loads the configuration as the gateway does. On failure it
// reports each problem as its own FAIL and returns false.
func (r *runner) checkConfig() bool {
	path := r.opts.ConfigPath
	cfg, err := config.Load(path, r.opts.Getenv)
	if err == nil {
		r.cfg = cfg
		n := 0
		for _, rt := range cfg.Routes {
			if len(rt.DownstreamScopes) > 0 {
				n++
			}
		}
		r.pass("config", "configuration",
			fmt.Sprintf("%s loads and validates: tenant %s, client %s, authority %s, %d route(s), %d with an On-Behalf-Of exchange",
				path, cfg.Entra.TenantID, cfg.Entra.ClientID, cfg.Entra.AuthorityHost, len(cfg.Routes), n))
		return true
	}
	for _, e := range config.Problems(err) {
		r.configProblem(path, e)
	}
	return false
}

var (
	scopeFieldRE = regexp.MustCompile(`^routes\[(\d+)\]\.downstream_scopes(\[\d+\])?$`)
	indexRE      = regexp.MustCompile(`\[\d+\]`)
	fileLineRE   = regexp.MustCompile(`^(.*?): (line \d+: .*)$`)
)

func (r *runner) configProblem(path string, err error) {
	var fe *config.FieldError
	var pe *fs.PathError
	switch {
	case errors.As(err, &fe):
		fix := fmt.Sprintf("correct %s in %s%s, as the message says; every setting is described in docs/configuration.md",
			fe.Field, path, envHint(fe.Field))
		if m := scopeFieldRE.FindStringSubmatch(fe.Field); m != nil && m[2] != "" {
			// The problem starts with the scope, quoted: explain it the
			// way Entra would answer it.
			if q, qerr := strconv.QuotedPrefix(fe.Problem); qerr == nil {
				if s, uerr := strconv.Unquote(q); uerr == nil {
					if a := config.AnalyzeScopes([]string{s}); len(a.Problems) > 0 {
						fix = fmt.Sprintf("%s; correct %s in %s%s", a.Problems[0].Fix, fe.Field, path, envHint(fe.Field))
					}
				}
			}
		}
		r.fail("config/"+fe.Field, "configuration: "+fe.Field, fe.Problem, fix)
	case errors.As(err, &pe) && !strings.Contains(err.Error(), "line "):
		r.fail("config/file", "configuration file",
			fmt.Sprintf("cannot read %s: %v", path, pe.Err),
			"check the -config path (or OBO_GATEWAY_CONFIG) and that the file is readable by this user")
	default:
		msg := strings.TrimPrefix(err.Error(), "config: ")
		if m := fileLineRE.FindStringSubmatch(msg); m != nil {
			r.fail("config/file", "configuration file", m[1]+": "+m[2],
				fmt.Sprintf("correct %s at that line; the keys and their types are listed in docs/configuration.md", path))
			return
		}
		subject, rest, ok := strings.Cut(msg, ": ")
		if ok && isEnvVarName(subject) {
			r.fail("config/env/"+subject, "environment variable "+subject, rest,
				fmt.Sprintf("correct or unset %s: it overrides %s (docs/configuration.md lists each variable and its format)", subject, path))
			return
		}
		r.fail("config/file", "configuration file", msg,
			fmt.Sprintf("correct %s; docs/configuration.md describes the file", path))
	}
}

// envHint names the environment variable of a setting, when it has one:
// ", or AZURE_TENANT_ID, which overrides the file".
func envHint(field string) string {
	pattern := indexRE.ReplaceAllString(field, "[]")
	for _, v := range config.EnvVars() {
		if v.Field == pattern || strings.HasPrefix(pattern, v.Field+"[]") {
			return fmt.Sprintf(" (or the variable %s, which overrides the file)", v.Name)
		}
	}
	return ""
}

func isEnvVarName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
