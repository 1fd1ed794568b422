package config

import (
	"fmt"
	"slices"
	"strings"
)

// ScopeProblem is one thing wrong with a route's downstream scopes.
type ScopeProblem struct {
	// Index is the scope's position, or -1 for a problem of the whole list.
	Index int
	// Detail says what is wrong; Fix what to write instead, and what Entra
	// would answer.
	Detail, Fix string
}

// ScopeAnalysis is what a route's downstream scopes ask Entra for.
type ScopeAnalysis struct {
	Resources []string // in order of appearance
	IsDefault bool     // <resource>/.default
	Named     []string // named scopes, without the resource
	Problems  []ScopeProblem
}

// AnalyzeScopes reads downstream scopes as Entra will: one resource, either
// <resource>/.default or named scopes of it, never the OpenID Connect
// scopes. It finds the mistakes Entra answers with AADSTS70011 or
// AADSTS28000 before Entra does. Validation and gateway doctor share it.
func AnalyzeScopes(scopes []string) ScopeAnalysis {
	var a ScopeAnalysis
	add := func(i int, detail, fix string) {
		a.Problems = append(a.Problems, ScopeProblem{Index: i, Detail: detail, Fix: fix})
	}
	for i, s := range scopes {
		switch {
		case strings.TrimSpace(s) == "":
			add(i, "empty", "write a scope such as api://orders-api/.default")
			continue
		case strings.ContainsAny(s, " \t,"):
			add(i, fmt.Sprintf("%q holds several scopes", s), "write one scope per list item (in the environment variable, separate them with commas)")
			continue
		case isOIDCScope(s):
			add(i, fmt.Sprintf("%q is an OpenID Connect scope, not the downstream API's", s),
				fmt.Sprintf("remove %s: MSAL adds openid, profile and offline_access itself", s))
			continue
		}
		resource, scope, ok := splitScope(s)
		if !ok {
			switch {
			case strings.Contains(s, "://") || guidRE.MatchString(s):
				add(i, fmt.Sprintf("%q names a resource but no scope", s),
					fmt.Sprintf("did you mean %s/.default? A resource alone is not a scope, and Entra refuses it", strings.TrimRight(s, "/")))
			case strings.EqualFold(strings.TrimLeft(s, "."), "default"):
				add(i, fmt.Sprintf("%q has no resource", s), "write the API's App ID URI before it, e.g. api://orders-api/.default")
			default:
				add(i, fmt.Sprintf("%q has no resource", s),
					fmt.Sprintf("write the full scope, e.g. https://graph.microsoft.com/%s (or api://<api>/%s): Entra reads a bare scope as Microsoft Graph's", s, s))
			}
			continue
		}
		switch {
		case scope == "":
			add(i, fmt.Sprintf("%q ends with '/'", s), fmt.Sprintf("write %s/.default or %s/<scope>", resource, resource))
			continue
		case scope != ".default" && strings.EqualFold(strings.TrimLeft(scope, "."), "default"):
			add(i, fmt.Sprintf("%q is not the .default scope", s),
				fmt.Sprintf("did you mean %s/.default? (Entra answers AADSTS70011)", resource))
			continue
		case !isAbsoluteURI(resource) && !guidRE.MatchString(resource):
			add(i, fmt.Sprintf("%q: the resource %q is neither an App ID URI (api://…, https://…) nor an application ID GUID", s, resource),
				"write the downstream API's App ID URI (its app registration's Expose an API page) or its Application (client) ID")
			continue
		case scope == ".default":
			a.IsDefault = true
		default:
			a.Named = append(a.Named, scope)
		}
		if !slices.Contains(a.Resources, resource) {
			a.Resources = append(a.Resources, resource)
		}
	}
	if len(a.Resources) > 1 {
		add(-1, fmt.Sprintf("the scopes name %d resources (%s)", len(a.Resources), strings.Join(a.Resources, ", ")),
			"one OBO exchange gets a token for one resource (Entra answers AADSTS28000): use a route per downstream API")
	}
	if a.IsDefault && len(a.Named) > 0 {
		add(-1, "mixes /.default with named scopes", "use <resource>/.default alone, or named scopes only (Entra answers AADSTS70011 to the mix)")
	}
	return a
}
