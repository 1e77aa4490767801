package credentials

import (
	"os"
	"strings"
	"testing"
)

// TestREADMERotationRunbook: the README's rotation stage table is RotationStages'.
func TestREADMERotationRunbook(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- rotation stages: generated from generator/credentials/stages.go -->\n", "<!-- end of rotation stages -->"
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no rotation stage table between %q and %q", begin, end)
	}
	if got, want := s[i+len(begin):j], RotationRunbookMarkdown(); got != want {
		t.Errorf("README.md's rotation stage table is out of date; replace it with:\n%s", want)
	}
}
