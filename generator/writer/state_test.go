package writer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// TestStateSeesEveryChange: State stays the same for an untouched tree and changes with
// every change of content, mode, time, name or link of any file or directory, and with
// every path added that SHA256SUMS does not list (State reads no directory).
func TestStateSeesEveryChange(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "nodes", "a", "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "nodes", "a", "etc", "f"), []byte("one"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "nodes", "a", "etc", "g"), []byte("other"), 0o644))
	must(os.WriteFile(filepath.Join(dir, SumsName), Sums([]bundle.File{{Path: "nodes/a/etc/f", Data: []byte("one")}, {Path: "nodes/a/etc/g", Data: []byte("other")}}), 0o644))
	state := func() string {
		t.Helper()
		s, _, err := State(dir)
		must(err)
		return s
	}
	before, files, err := State(dir)
	must(err)
	if files != 2 {
		t.Fatalf("files = %d, want 2 (SHA256SUMS is not counted)", files)
	}
	if again := state(); again != before {
		t.Fatal("State of an untouched tree changed")
	}
	f := filepath.Join(dir, "nodes", "a", "etc", "f")
	changes := []struct {
		what string
		do   func()
	}{
		{"same-size rewrite", func() { must(os.WriteFile(f, []byte("two"), 0o644)) }},
		{"chmod", func() { must(os.Chmod(f, 0o600)) }},
		{"directory chmod", func() { must(os.Chmod(filepath.Join(dir, "nodes"), 0o700)) }},
		{"touch", func() { must(os.Chtimes(f, time.Unix(1, 0), time.Unix(1, 0))) }},
		{"hard link elsewhere", func() { must(os.Link(f, filepath.Join(t.TempDir(), "x"))) }},
		{"stray file beside a listed one", func() { must(os.WriteFile(filepath.Join(dir, "nodes", "a", "etc", "stray"), nil, 0o644)) }},
		{"stray directory at the top", func() { must(os.Mkdir(filepath.Join(dir, "extra"), 0o755)) }},
		{"stray file removed", func() { must(os.Remove(filepath.Join(dir, "nodes", "a", "etc", "stray"))) }},
		{"rename", func() { must(os.Rename(f, f+"2")) }},
		{"rename back", func() { must(os.Rename(f+"2", f)) }},
		{"directory replaced by a symlink to a copy", func() {
			etc := filepath.Join(dir, "nodes", "a", "etc")
			cp := filepath.Join(t.TempDir(), "etc")
			must(os.Rename(etc, cp))
			must(os.Symlink(cp, etc))
		}},
	}
	// Each change is seen against the tree just before it; what happens inside a stray
	// directory is not, but the stray directory itself already was.
	for _, c := range changes {
		time.Sleep(stateTickForTest)
		c.do()
		if s := state(); s == before {
			t.Errorf("%s: State did not change", c.what)
		} else {
			before = s
		}
	}
}

// stateTickForTest lets the kernel's timestamp clock tick between changes.
const stateTickForTest = 20 * time.Millisecond

// TestStateRefusesWhatIsNotABundle: without a SHA256SUMS that lists clean relative paths
// there is no State (the render cache then plans as if it had no entry).
func TestStateRefusesWhatIsNotABundle(t *testing.T) {
	for name, sums := range map[string]string{
		"no SHA256SUMS":    "",
		"malformed":        "not a sum line\n",
		"absolute path":    strings.Repeat("0", 64) + "  /etc/passwd\n",
		"parent reference": strings.Repeat("0", 64) + "  ../x\n",
		"unclean path":     strings.Repeat("0", 64) + "  a//b\n",
		"listed twice":     strings.Repeat("0", 64) + "  a\n" + strings.Repeat("0", 64) + "  a\n",
	} {
		dir := t.TempDir()
		if sums != "" {
			if err := os.WriteFile(filepath.Join(dir, SumsName), []byte(sums), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if s, _, err := State(dir); err == nil {
			t.Errorf("%s: State = %s, want an error", name, s)
		}
	}
}
