package doctor

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// scopeProblem is one thing wrong with a route's downstream scopes.
type scopeProblem struct {
	detail, fix string
}

// scopeAnalysis is what a route's downstream scopes ask Entra for.
type scopeAnalysis struct {
	resources []string // in order of appearance
	isDefault bool
	named     []string
	problems  []scopeProblem
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// analyzeScopes reads downstream scopes as Entra will: one resource, either
// <resource>/.default or named scopes of it. It finds the mistakes Entra
// answers with AADSTS70011 or AADSTS28000, before Entra does.
func analyzeScopes(scopes []string) scopeAnalysis {
	var a scopeAnalysis
	add := func(detail, fix string) { a.problems = append(a.problems, scopeProblem{detail, fix}) }
	for _, s := range scopes {
		switch {
		case strings.TrimSpace(s) == "":
			add("an empty scope", "remove the empty item, or write a scope such as api://orders-api/.default")
			continue
		case strings.ContainsAny(s, " \t,"):
			add(fmt.Sprintf("%q holds several scopes", s),
				"write one scope per list item (in the environment variable, separate them with commas)")
			continue
		case isOIDCScope(s):
			add(fmt.Sprintf("%q is an OpenID Connect scope, not the downstream API's", s),
				fmt.Sprintf("remove %s: MSAL adds openid, profile and offline_access itself, and the downstream token is for the API alone", s))
			continue
		}
		resource, scope, ok := splitScope(s)
		if !ok {
			switch {
			case strings.Contains(s, "://") || guidRE.MatchString(s):
				r := strings.TrimRight(s, "/")
				add(fmt.Sprintf("%q names a resource but no scope", s),
					fmt.Sprintf("did you mean %s/.default? A resource alone is not a scope, and Entra refuses it", r))
			case strings.EqualFold(strings.TrimPrefix(s, "."), "default"):
				add(fmt.Sprintf("%q has no resource", s),
					"write the downstream API's App ID URI before it, e.g. api://orders-api/.default")
			default:
				add(fmt.Sprintf("%q is a bare scope without its resource", s),
					fmt.Sprintf("write the full scope, e.g. api://<api>/%s or https://graph.microsoft.com/%s: Entra reads a bare scope as Microsoft Graph's", s, s))
			}
			continue
		}
		switch {
		case scope == "":
			add(fmt.Sprintf("%q ends with '/'", s),
				fmt.Sprintf("write %s/.default or %s/<scope>", resource, resource))
			continue
		case scope != ".default" && strings.EqualFold(strings.TrimLeft(scope, "."), "default"):
			add(fmt.Sprintf("%q is not the .default scope", s),
				fmt.Sprintf("did you mean %s/.default? Entra answers AADSTS70011 to %s", resource, s))
			continue
		case !isAbsoluteURI(resource) && !guidRE.MatchString(resource):
			add(fmt.Sprintf("%q: the resource %q is neither an App ID URI nor an application ID", s, resource),
				"write the downstream API's App ID URI (its app registration's Expose an API page, e.g. api://orders-api) or its Application (client) ID GUID")
			continue
		case scope == ".default":
			a.isDefault = true
		default:
			a.named = append(a.named, scope)
		}
		if !slices.Contains(a.resources, resource) {
			a.resources = append(a.resources, resource)
		}
	}
	if len(a.resources) > 1 {
		add(fmt.Sprintf("the scopes name %d resources (%s)", len(a.resources), strings.Join(a.resources, ", ")),
			"one exchange gets a token for one resource (Entra answers AADSTS28000): use one route per downstream API")
	}
	if a.isDefault && len(a.named) > 0 {
		add("/.default is mixed with named scopes",
			"use <resource>/.default alone, or named scopes only (Entra answers AADSTS70011 to the mix)")
	}
	return a
}

// splitScope splits "<resource>/<scope>" at the last '/'; ok is false when
// there is no resource (a bare scope, or a bare URI such as api://orders-api).
func splitScope(s string) (resource, scope string, ok bool) {
	i := strings.LastIndex(s, "/")
	if i <= 0 || strings.HasSuffix(s[:i], ":/") {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

func isOIDCScope(s string) bool {
	switch strings.ToLower(s) {
	case "openid", "profile", "offline_access", "email":
		return true
	}
	return false
}

func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

// checkRouteScopes is the offline half of the downstream check.
func (r *runner) checkRouteScopes(rt *config.Route) {
	id, name := "route/"+rt.Name+"/scopes", "route "+rt.Name+": downstream scopes"
	if len(rt.DownstreamScopes) == 0 {
		r.pass(id, name, "none: this route makes no On-Behalf-Of exchange, and no Authorization header goes upstream")
		return
	}
	a := analyzeScopes(rt.DownstreamScopes)
	if len(a.problems) > 0 {
		for _, p := range a.problems {
			r.fail(id, name, p.detail, p.fix+fmt.Sprintf(" (routes[].downstream_scopes of route %s)", rt.Name))
		}
		return
	}
	what := "named scopes " + strings.Join(a.named, ", ") + " (each a delegated permission of the gateway app on it)"
	if a.isDefault {
		what = ".default (every delegated permission the gateway app holds on it, admin-consented)"
	}
	r.pass(id, name, fmt.Sprintf("%s: one resource, %s; %s", strings.Join(rt.DownstreamScopes, " "), a.resources[0], what))
}
