package paths

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDeliversWithEnableCommand: the README's "Deliver a bundle" command is
// EnableCommand, the one the machine test runs.
func TestREADMEDeliversWithEnableCommand(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ssh root@10.0.0.21 '"+EnableCommand+"'") {
		t.Errorf("README.md's Deliver a bundle section does not run %q", EnableCommand)
	}
}
