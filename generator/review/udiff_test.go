package review

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnifiedDiffExamples(t *testing.T) {
	for _, tc := range []struct{ name, a, b, want string }{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"add to empty", "", "x\ny\n", "@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"remove all", "x\n", "", "@@ -1 +0,0 @@\n-x\n"},
		{"change middle", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"no newline at end", "a\nb", "a\nb\n", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n",
			"@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnifiedDiff(tc.a, tc.b); got != tc.want {
				t.Errorf("UnifiedDiff:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestUnifiedDiffPatches checks random edits two ways: the diff applied with patch(1)
// gives the new text, and it is exactly as long as GNU diff's (both are minimal).
func TestUnifiedDiffPatches(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch(1) not installed")
	}
	_, gnuErr := exec.LookPath("diff")
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	words := []string{"a", "b", "c", "d", "e", ""}
	for i := 0; i < 200; i++ {
		a := randomText(rng, words)
		b := mutate(rng, a, words)
		d := UnifiedDiff(a, b)
		if a == b {
			if d != "" {
				t.Fatalf("equal texts gave a diff:\n%s", d)
			}
			continue
		}
		file := filepath.Join(dir, "f")
		os.WriteFile(file, []byte(a), 0o644)
		cmd := exec.Command("patch", "-s", "--posix", file)
		cmd.Stdin = strings.NewReader("--- f\n+++ f\n" + d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("patch failed: %v\n%s\nold %q\nnew %q\ndiff:\n%s", err, out, a, b, d)
		}
		if got, _ := os.ReadFile(file); string(got) != b {
			t.Fatalf("patched %q, want %q\ndiff:\n%s", got, b, d)
		}
		if gnuErr == nil {
			os.WriteFile(filepath.Join(dir, "a"), []byte(a), 0o644)
			os.WriteFile(filepath.Join(dir, "b"), []byte(b), 0o644)
			out, _ := exec.Command("diff", "-u", "-d", filepath.Join(dir, "a"), filepath.Join(dir, "b")).Output()
			if gnu, ours := changeCount(string(out)), changeCount(d); gnu != ours {
				t.Fatalf("%d changed lines, GNU diff -d has %d\nold %q\nnew %q\nours:\n%s\ngnu:\n%s", ours, gnu, a, b, d, out)
			}
		}
	}
}

func changeCount(d string) int {
	n := 0
	for _, l := range strings.Split(d, "\n") {
		if (strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++")) || (strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---")) {
			n++
		}
	}
	return n
}

func randomText(rng *rand.Rand, words []string) string {
	var b strings.Builder
	for n := rng.IntN(30); n > 0; n-- {
		b.WriteString(words[rng.IntN(len(words))] + "\n")
	}
	s := b.String()
	if rng.IntN(5) == 0 && len(s) > 0 {
		s = strings.TrimSuffix(s, "\n") + "z" // no final newline
	}
	return s
}

func mutate(rng *rand.Rand, s string, words []string) string {
	lines := strings.SplitAfter(s, "\n")
	for n := rng.IntN(6); n > 0; n-- {
		i := rng.IntN(len(lines) + 1)
		switch rng.IntN(3) {
		case 0:
			lines = append(lines[:i], append([]string{words[rng.IntN(len(words))] + "\n"}, lines[i:]...)...)
		case 1:
			if i < len(lines) {
				lines = append(lines[:i], lines[i+1:]...)
			}
		case 2:
			if i < len(lines) {
				lines[i] = "changed\n"
			}
		}
	}
	out := strings.Join(lines, "")
	if rng.IntN(5) == 0 {
		out = strings.TrimSuffix(out, "\n")
	}
	return out
}

// TestUnifiedDiffLarge exceeds maxEdit: the diff stays correct, only not minimal.
func TestUnifiedDiffLarge(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3000; i++ {
		a.WriteString("old line\n")
		b.WriteString("new line\n")
	}
	d := UnifiedDiff(a.String(), b.String())
	if !strings.HasPrefix(d, "@@ -1,3000 +1,3000 @@\n") || changeCount(d) != 6000 {
		t.Errorf("large diff starts %q with %d changes", d[:40], changeCount(d))
	}
}
