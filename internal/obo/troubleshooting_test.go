package obo

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/troubleshooting.md's generated table from the catalogue")

const (
	troubleshootingDoc = "../../docs/troubleshooting.md"
	beginMarker        = "<!-- BEGIN GENERATED: AADSTS catalogue (internal/obo/catalogue.go) -->"
	endMarker          = "<!-- END GENERATED -->"
)

// renderCatalogue is the table docs/troubleshooting.md carries between its markers.
func renderCatalogue() string {
	var b strings.Builder
	b.WriteString("| code | Entra says | who acts | frontend gets | retry? | metric `error_code` | what to do |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, e := range Catalogue() {
		retry := "no"
		if e.Class.Retryable() {
			retry = "yes, after `Retry-After`"
		}
		fmt.Fprintf(&b, "| AADSTS%d | %s | %s | %d `%s` | %s | `%s` | %s |\n",
			e.Code, e.Meaning, e.Class, e.Class.Status(), e.Class.ClientError(), retry, e.MetricLabel(), e.Hint)
	}
	return b.String()
}

// TestTroubleshootingDoc keeps docs/troubleshooting.md and the catalogue in
// step: the table between the markers is generated from Catalogue().
func TestTroubleshootingDoc(t *testing.T) {
	doc, err := os.ReadFile(troubleshootingDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-table markers", troubleshootingDoc)
	}
	want := renderCatalogue()
	got := strings.TrimPrefix(text[i+len(beginMarker):j], "\n")
	if got == want {
		return
	}
	if *update {
		text = text[:i+len(beginMarker)] + "\n" + want + text[j:]
		if err := os.WriteFile(troubleshootingDoc, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the catalogue: run go test ./internal/obo -run TestTroubleshootingDoc -args -update", troubleshootingDoc)
}

func TestCatalogueIsConsistent(t *testing.T) {
	for _, e := range Catalogue() {
		if e.Meaning == "" || e.Hint == "" {
			t.Errorf("AADSTS%d lacks a meaning or a hint", e.Code)
		}
		// Status() answers 502 for any unknown class: check the class itself.
		switch e.Class {
		case ClassInteraction, ClassConsent, ClassInvalidAssertion, ClassUser, ClassGateway, ClassUnavailable:
		default:
			t.Errorf("AADSTS%d: class %q is not one of the declared classes", e.Code, e.Class)
		}
	}
	// Every code of ENTRA.md's misconfiguration table that can reach the OBO path.
	for _, code := range []int{7000114, 50013, 500133, 700027, 50027, 700024, 1000502, 7000214, 7000215, 7000222,
		700016, 70011, 28000, 700022, 70003, 65001, 50076, 50079, 53003, 50020, 90072, 50196, 90038} {
		if _, ok := Lookup(code); !ok {
			t.Errorf("AADSTS%d is not in the catalogue", code)
		}
	}
}
