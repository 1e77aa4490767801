package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlan renders each case's base.yaml, changes the spec to cluster.yaml and compares
// `scratchgen plan` (its exit code, output and errors) with expected.txt, and with
// --output json with expected.json where the case has one. Refused changes exit 1 naming
// the reason; nothing is written.
func TestPlan(t *testing.T) {
	cases, _ := filepath.Glob("testdata/plan/*/base.yaml")
	if len(cases) < 6 {
		t.Fatalf("only %d plan cases", len(cases))
	}
	for _, base := range cases {
		dir := filepath.Dir(base)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			work := t.TempDir()
			spec := filepath.Join(work, "cluster.yaml")
			out := filepath.Join(work, "bundles")
			mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(testSecret), 0o600)
			mustWrite(t, spec, mustRead(t, base), 0o644)
			if pinsBinaries(mustRead(t, base)) {
				// The lock pins both releases' binaries (and the images), as after
				// `binaries pin` of each spec.
				pinFixture(t, filepath.Join(work, "cluster.lock"), base, filepath.Join(dir, "cluster.yaml"))
			}
			if _, stderr, code := run("render", "-f", spec, "-o", out); code != 0 {
				t.Fatalf("rendering base.yaml: exit %d\n%s", code, stderr)
			}
			lockBefore := mustRead(t, filepath.Join(work, "cluster.lock"))
			mustWrite(t, spec, mustRead(t, filepath.Join(dir, "cluster.yaml")), 0o644)
			stdout, stderr, code := run("plan", "-f", spec, "-o", out)
			got := fmt.Sprintf("exit %d\n%s%s", code, stdout, stderr)
			compareText(t, filepath.Join(dir, "expected.txt"), strings.ReplaceAll(got, work, "$WORK"))
			if _, err := os.Stat(filepath.Join(dir, "expected.json")); err == nil {
				js, _, _ := run("plan", "-f", spec, "-o", out, "--output", "json")
				compareText(t, filepath.Join(dir, "expected.json"), strings.ReplaceAll(js, work, "$WORK"))
			}
			if string(mustRead(t, filepath.Join(work, "cluster.lock"))) != string(lockBefore) {
				t.Error("plan changed the lock")
			}
			if code == 0 {
				// render agrees: it writes what the plan rolls out, then nothing is left.
				if _, stderr, code := run("render", "-f", spec, "-o", out); code != 0 {
					t.Fatalf("render after plan: exit %d\n%s", code, stderr)
				}
				if stdout, _, _ := run("plan", "-f", spec, "-o", out); !strings.Contains(stdout, "nothing to roll out") {
					t.Errorf("plan after render:\n%s", stdout)
				}
			} else if _, stderr2, code2 := run("render", "-f", spec, "-o", out); code2 != 1 || !strings.Contains(stderr2, strings.SplitN(stderr, "\n", 2)[0]) {
				t.Errorf("render of a refused change: exit %d, want 1 with plan's reason\n%s", code2, stderr2)
			}
		})
	}
}
