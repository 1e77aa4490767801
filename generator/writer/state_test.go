package writer

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStateSeesEveryChange: State stays the same for an untouched tree and changes with
// every change of content, mode, time, name or link of any file or directory.
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
	must(os.WriteFile(filepath.Join(dir, SumsName), []byte("sums"), 0o644))
	state := func() string {
		t.Helper()
		s, files, err := State(dir)
		must(err)
		if files != 1 {
			t.Fatalf("files = %d, want 1 (SHA256SUMS is not counted)", files)
		}
		return s
	}
	before := state()
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
		{"rename", func() { must(os.Rename(f, f+"2")) }},
	}
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
