package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as one JSON object on one line.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report for people.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-11s %s\n", label, fmt.Sprintf(format, args...))
	}
	in := r.Input
	wrapping := ""
	if len(in.Removed) > 0 {
		wrapping = "; removed: " + strings.Join(in.Removed, ", ")
	}
	switch in.Kind {
	case InputJWT:
		line("Token", "a signed JWT (JWS), %d bytes%s", in.Bytes, wrapping)
	case InputJWE:
		line("Token", "an encrypted JWT (JWE), %d bytes%s", in.Bytes, wrapping)
	default:
		line("Token", "NOT A JWT (%d bytes%s)", in.Bytes, wrapping)
	}
	if in.Problem != "" {
		line("", "%s", in.Problem)
	}
	if h := r.Header; h != nil {
		parts := []string{"alg " + orNone(h.Alg)}
		if h.Kid != "" {
			parts = append(parts, "kid "+h.Kid)
		}
		if h.X5t != "" {
			parts = append(parts, "x5t "+h.X5t)
		}
		if h.Typ != "" {
			parts = append(parts, "typ "+h.Typ)
		}
		if h.Nonce {
			parts = append(parts, "nonce PRESENT (a Microsoft Graph token)")
		} else {
			parts = append(parts, "no nonce")
		}
		if len(h.Other) > 0 {
			parts = append(parts, "also "+strings.Join(h.Other, ", "))
		}
		line("Header", "%s", strings.Join(parts, ", "))
	}
	if r.Issuer != nil {
		v := "unknown"
		if r.Version != "" {
			v = "v" + r.Version + " (" + r.VersionSource + ")"
		}
		line("Version", "%s", v)
		iss := r.Issuer
		desc := iss.Shape + " shape"
		if iss.Cloud != "" {
			desc += ", " + iss.Cloud
		}
		line("Issuer", "%s (%s)", orNone(iss.Value), desc)
	}
	if r.Kind != "" {
		kind := map[string]string{
			KindUser: "USER (delegated)", KindApp: "APP-ONLY (no user)", KindIDToken: "ID TOKEN",
			KindClientAssertion: "CLIENT ASSERTION", KindUnknown: "unknown",
		}[r.Kind]
		line("Kind", "%s: %s", kind, r.KindReason)
	}
	if a := r.Audience; a != nil {
		if len(a.Values) == 0 {
			line("Audience", "none")
		}
		for i, v := range a.Values {
			label := "Audience"
			if i > 0 {
				label = ""
			}
			line(label, "%s: %s", v.Value, v.Description)
		}
	}
	if r.Header != nil {
		line("Scopes", "%s", orDash(strings.Join(r.Scopes, " ")))
		line("Roles", "%s", orDash(strings.Join(r.Roles, ", ")))
	}
	if t := r.Tenant; t != nil {
		var notes []string
		switch {
		case t.MatchesIssuer == nil:
			notes = append(notes, "the issuer names no tenant")
		case *t.MatchesIssuer:
			notes = append(notes, "iss names the same tenant")
		default:
			notes = append(notes, "iss names ANOTHER tenant, "+r.Issuer.Tenant)
		}
		if t.Note != "" {
			notes = append(notes, t.Note)
		}
		if t.Gateway != "" {
			notes = append(notes, "for the gateway: "+t.Gateway)
		}
		line("Tenant", "%s (%s)", orNone(t.ID), strings.Join(notes, "; "))
	}
	if c := r.Client; c != nil {
		desc := []string{c.Claim}
		if c.AuthMethod != "" {
			desc = append(desc, c.AuthMethod)
		}
		if c.Name != "" {
			desc = append(desc, "named "+c.Name)
		}
		if c.IsGateway {
			desc = append(desc, "THIS GATEWAY's app")
		}
		line("Client", "%s (%s)", c.ID, strings.Join(desc, "; "))
	} else if r.Header != nil {
		line("Client", "none (no azp, no appid)")
	}
	if s := r.Subject; s != nil {
		var parts []string
		if s.Username != "" {
			parts = append(parts, s.Username+" ("+s.UsernameClaim+")")
		}
		if s.Name != "" {
			parts = append(parts, "name "+s.Name)
		}
		if s.OID != "" {
			parts = append(parts, "oid "+s.OID)
		}
		if s.Sub != "" {
			parts = append(parts, "sub "+s.Sub)
		}
		line("Subject", "%s", strings.Join(parts, ", "))
	}
	if t := r.Times; t != nil {
		for _, x := range []struct {
			label string
			in    *Instant
		}{{"Issued", t.IssuedAt}, {"Valid from", t.NotBefore}, {"Expires", t.Expires}} {
			if x.in != nil {
				line(x.label, "%s, %s", x.in.Time, x.in.Relative)
			}
		}
		status := map[string]string{TimeValid: "VALID", TimeExpired: "EXPIRED", TimeNotYetValid: "NOT YET VALID", TimeNoExpiry: "NO EXPIRY (no exp claim)"}[t.Status]
		at := "now"
		if t.AtSource != "now" {
			at = "per " + t.AtSource
		}
		life := ""
		if t.Lifetime != "" {
			life = ", lifetime " + t.Lifetime
		}
		line("Time", "%s at %s (%s)%s", status, t.At, at, life)
	}
	if r.Header != nil {
		amr := "amr " + orDash(strings.Join(r.AMR, " "))
		if r.ACR != "" {
			amr += ", acr " + r.ACR
		}
		line("Sign-in", "%s", amr)
	}
	if s := r.Signature; s != nil {
		line("Signature", "%s", s.Message)
	}

	if g := r.Gateway; g != nil {
		b.WriteString("\n")
		verdict := "REFUSED (reason " + g.Reason + ")"
		if g.Accepted {
			verdict = "ACCEPTED"
			if len(g.Unchecked) > 0 {
				verdict += ", if " + strings.Join(g.Unchecked, " and ") + " passes (not checked)"
			}
		}
		fmt.Fprintf(&b, "Gateway %s: %s\n", g.Config, verdict)
		for _, c := range g.Checks {
			result := map[string]string{Pass: "pass", Fail: "FAIL", NotChecked: "??"}[c.Result]
			fmt.Fprintf(&b, "  %-4s %-11s %s\n", result, c.Name, c.Message)
		}
		if g.Issuers.Source != "" {
			fmt.Fprintf(&b, "  issuers accepted: %s (v2), %s (v1): %s\n", orNone(g.Issuers.V2), orNone(g.Issuers.V1), g.Issuers.Source)
		}
		if len(g.Routes) > 0 {
			if g.Accepted {
				b.WriteString("  routes:\n")
			} else {
				b.WriteString("  routes (their policy, were the token accepted):\n")
			}
		}
		for _, rt := range g.Routes {
			verdict := "allowed"
			if !rt.PolicyAllows {
				verdict = fmt.Sprintf("refused %d", rt.Status)
			}
			fmt.Fprintf(&b, "    %-12s %-14s %s: %s\n", rt.Name, rt.PathPrefix, verdict, rt.Message)
		}
	}

	b.WriteString("\n")
	switch {
	case r.OBO.Usable && len(r.OBO.Unchecked) > 0:
		b.WriteString("OBO assertion: USABLE as far as checked\n")
	case r.OBO.Usable:
		b.WriteString("OBO assertion: USABLE\n")
	default:
		b.WriteString("OBO assertion: NOT USABLE\n")
	}
	for _, p := range r.OBO.Problems {
		var codes []string
		for _, c := range p.AADSTS {
			codes = append(codes, fmt.Sprintf("AADSTS%d", c))
		}
		if len(codes) > 0 && !strings.Contains(p.Message, "AADSTS") {
			fmt.Fprintf(&b, "  - %s (Entra: %s)\n", p.Message, strings.Join(codes, ", "))
		} else {
			fmt.Fprintf(&b, "  - %s\n", p.Message)
		}
	}
	for _, u := range r.OBO.Unchecked {
		fmt.Fprintf(&b, "  not checked: %s\n", u)
	}

	if len(r.Notes) > 0 {
		b.WriteString("\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	if len(r.Claims) > 0 {
		b.WriteString("\nClaims (decoded, not trusted unless the signature verified)\n")
		var ind bytes.Buffer
		if json.Indent(&ind, r.Claims, "  ", "  ") == nil {
			b.WriteString("  ")
			b.Write(ind.Bytes())
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
