package doctor

import (
	"fmt"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// checkRouteScopes is the offline half of the downstream check.
func (r *runner) checkRouteScopes(rt *config.Route) {
	id, name := "route/"+rt.Name+"/scopes", "route "+rt.Name+": downstream scopes"
	if len(rt.DownstreamScopes) == 0 {
		r.pass(id, name, "none: this route makes no On-Behalf-Of exchange, and no Authorization header goes upstream")
		return
	}
	a := config.AnalyzeScopes(rt.DownstreamScopes)
	if len(a.Problems) > 0 {
		for _, p := range a.Problems {
			r.fail(id, name, p.Detail, p.Fix+fmt.Sprintf(" (routes[].downstream_scopes of route %s)", rt.Name))
		}
		return
	}
	what := "named scopes " + strings.Join(a.Named, ", ") + " (each a delegated permission of the gateway app on it)"
	if a.IsDefault {
		what = ".default (every delegated permission the gateway app holds on it, admin-consented)"
	}
	r.pass(id, name, fmt.Sprintf("%s: one resource, %s; %s", strings.Join(rt.DownstreamScopes, " "), a.Resources[0], what))
}
