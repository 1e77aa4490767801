package verify_test

import (
	"os"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/verify"
)

// TestREADMEListsPostureRules: the README's posture table is the rules table.
func TestREADMEListsPostureRules(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- posture rules: generated from generator/verify/posture.go -->\n", "<!-- end of posture rules -->"
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no posture rules section between %q and %q", begin, end)
	}
	if got, want := s[i+len(begin):j], verify.RulesMarkdown(); got != want {
		t.Errorf("README.md's posture rules are out of date; replace the section with:\n%s", want)
	}
}
