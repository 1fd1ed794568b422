package doctor

import (
	"fmt"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// checkConfig loads the configuration as the gateway does (config.Load
// over the environment as a list, so that a route variable naming no
// route fails here as it fails serve). On failure it reports each problem
// as its own FAIL and returns false.
func (r *runner) checkConfig() bool {
	path := r.opts.ConfigPath
	cfg, err := config.Load(path, r.opts.Environ)
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
	for _, p := range config.Problems(err) {
		r.configProblem(path, p)
	}
	return false
}

// configProblem files a problem under the check of what to correct: the
// file itself (config/file), a variable (config/env/VAR) or a setting
// (config/<field>).
func (r *runner) configProblem(path string, p *config.FieldError) {
	switch {
	case p.Kind == config.KindUnreadableFile && p.Field == "":
		r.fail("config/file", "configuration file", p.File+": "+p.Problem,
			"check the -config path (or OBO_GATEWAY_CONFIG) and that the file is readable by this user")

	case p.Kind == config.KindUnknownVariable || (p.Kind == config.KindWrongType && p.FromEnv):
		r.fail("config/env/"+p.EnvVar, "environment variable "+p.EnvVar, p.Problem,
			fmt.Sprintf("correct or unset %s: it overrides %s (docs/configuration.md lists each variable and its format)", p.EnvVar, path))

	case p.Field == "" || p.Kind == config.KindSyntax || p.Kind == config.KindUnknownKey ||
		p.Kind == config.KindDuplicateKey || p.Kind == config.KindWrongType:
		detail, fix := p.File, fmt.Sprintf("correct %s; docs/configuration.md describes the file", path)
		if p.Line > 0 {
			detail += fmt.Sprintf(": line %d", p.Line)
			fix = fmt.Sprintf("correct %s at that line; the keys and their types are listed in docs/configuration.md", path)
		}
		if s := p.Subject(); s != "" {
			detail += ": " + s
		}
		r.fail("config/file", "configuration file", detail+": "+p.Problem, fix)

	default:
		fix := fmt.Sprintf("correct %s, as the message says; every setting is described in docs/configuration.md", placeOf(path, p))
		if p.Field == "entra.workload_identity.token_file" {
			// The file is the webhook's to project, not the operator's to write.
			fix = "AKS workload identity's webhook projects the token file into the pod and sets AZURE_FEDERATED_TOKEN_FILE: label the pod azure.workload.identity/use: \"true\", annotate its service account azure.workload.identity/client-id: <the gateway app's client ID>, and restart it; outside Kubernetes, use entra.credential managed_identity or certificate; correct " + placeOf(path, p)
		}
		if p.Setting() == "routes[].downstream_scopes" && p.Value != "" {
			// Explain a scope the way Entra would answer it.
			if a := config.AnalyzeScopes([]string{p.Value}); len(a.Problems) > 0 {
				fix = fmt.Sprintf("%s; correct %s", a.Problems[0].Fix, placeOf(path, p))
			}
		}
		r.fail("config/"+p.Field, "configuration: "+p.Field, p.Problem, fix)
	}
}

// placeOf says where to correct a setting: the variable its value came
// from, or the file (at the value's line), naming the variable that would
// override it.
func placeOf(path string, p *config.FieldError) string {
	switch {
	case p.FromEnv:
		return fmt.Sprintf("the variable %s, which sets %s over %s", p.EnvVar, p.Field, path)
	case p.Line > 0 && p.EnvVar != "":
		return fmt.Sprintf("%s at line %d of %s (or the variable %s, which overrides the file)", p.Field, p.Line, path, p.EnvVar)
	case p.Line > 0:
		return fmt.Sprintf("%s at line %d of %s", p.Field, p.Line, path)
	case p.EnvVar != "":
		return fmt.Sprintf("%s in %s (or the variable %s, which overrides the file)", p.Field, path, p.EnvVar)
	}
	return fmt.Sprintf("%s in %s", p.Field, path)
}
