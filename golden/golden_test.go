// Package golden holds end-to-end golden cases: specs in, expected bundle trees and error
// output out. `go test ./golden -update` rewrites the expected files; a re-run after an
// update must change nothing.
package golden

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/review"
)

var update = flag.Bool("update", false, "rewrite the expected files from the current output")

// The golden cases' root secret and clock. The secret is a public test fixture: bundles
// rendered with it must never be used for a real cluster.
const testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// gitignoreName is how a bundle's .gitignore is stored in an expected tree, where a real
// .gitignore would hide the very files it lists from git.
const gitignoreName = "gitignore.golden"

func testEnv() cli.Env {
	return cli.Env{Now: func() time.Time { return testNow }, Random: strings.NewReader("")}
}

// run executes a CLI command and returns stdout, stderr and the exit code.
func run(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	stdio := cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	code := cli.Exit(cli.Run(args, stdio, testEnv()), stdio)
	return out.String(), errb.String(), code
}

// TestInvalidLocks: each bad lock gets its exact `validate` output against one spec (one
// line per problem, with field path and line:column, prefixed with the lock's file) and
// exit code 1; valid.lock passes.
func TestInvalidLocks(t *testing.T) {
	locks, _ := filepath.Glob("testdata/invalid-lock/*.lock")
	if len(locks) < 9 {
		t.Fatalf("only %d lock cases; want at least 8 bad ones", len(locks))
	}
	spec := "testdata/invalid-lock/cluster.yaml"
	for _, lk := range locks {
		name := strings.TrimSuffix(filepath.Base(lk), ".lock")
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := run("validate", "-f", spec, "--lock", lk)
			if name == "valid" {
				if code != 0 {
					t.Errorf("valid.lock: exit %d\n%s", code, stderr)
				}
				return
			}
			got := fmt.Sprintf("exit %d\n%s%s", code, stdout, stderr)
			if code != 1 || !strings.Contains(stderr, lk) && !strings.Contains(stderr, spec+":") {
				t.Errorf("exit code %d, want 1 with the problem's file named:\n%s", code, got)
			}
			if strings.Contains(stderr, "internal error") {
				t.Errorf("a bad lock reached an internal error:\n%s", stderr)
			}
			compareText(t, strings.TrimSuffix(lk, ".lock")+".txt", got)
		})
	}
}

// TestInvalidSpecs: each bad spec gets its exact error output (one line per problem, with
// path and line:column) and exit code 1.
func TestInvalidSpecs(t *testing.T) {
	specs, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(specs) < 30 {
		t.Fatalf("only %d invalid specs; the frame promises at least 30", len(specs))
	}
	for _, spec := range specs {
		name := strings.TrimSuffix(filepath.Base(spec), ".yaml")
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := run("validate", "-f", spec)
			got := fmt.Sprintf("exit %d\n%s%s", code, stdout, stderr)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if strings.Contains(stderr, "internal error") {
				t.Errorf("a bad spec reached an internal error:\n%s", stderr)
			}
			compareText(t, strings.TrimSuffix(spec, ".yaml")+".txt", got)
		})
	}
}

// TestBundles renders each case and compares the tree, the modes and the lock.
func TestBundles(t *testing.T) {
	cases, _ := filepath.Glob("testdata/bundles/*/cluster.yaml")
	if len(cases) == 0 {
		t.Fatal("no bundle cases")
	}
	for _, spec := range cases {
		dir := filepath.Dir(spec)
		t.Run(filepath.Base(dir), func(t *testing.T) { bundleCase(t, dir) })
	}
}

func bundleCase(t *testing.T, dir string) {
	work := t.TempDir()
	specPath := filepath.Join(work, "cluster.yaml")
	mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(testSecret), 0o600)
	out := filepath.Join(work, "bundles")
	render := func(args ...string) (string, string, int) {
		return run(append([]string{"render", "-f", specPath, "-o", out}, args...)...)
	}
	pinFixture(t, filepath.Join(work, "cluster.lock"), filepath.Join(dir, "previous.yaml"), filepath.Join(dir, "cluster.yaml"))
	// A case may start from an earlier spec, to show exactly what a change re-renders.
	if prev, err := os.ReadFile(filepath.Join(dir, "previous.yaml")); err == nil {
		mustWrite(t, specPath, prev, 0o644)
		if _, stderr, code := render(); code != 0 {
			t.Fatalf("rendering previous.yaml: exit %d\n%s", code, stderr)
		}
	}
	mustWrite(t, specPath, mustRead(t, filepath.Join(dir, "cluster.yaml")), 0o644)
	if prev, err := os.ReadFile(filepath.Join(dir, "previous.yaml")); err == nil && len(prev) > 0 {
		stdout, stderr, code := render("--check")
		if code != 2 {
			t.Fatalf("render --check after a spec change: exit %d, want 2\n%s%s", code, stdout, stderr)
		}
		compareText(t, filepath.Join(dir, "changes.txt"), strings.ReplaceAll(stdout, work, "$WORK"))
	}
	_, stderr, code := render()
	if code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	compareText(t, filepath.Join(dir, "stderr.txt"), strings.ReplaceAll(stderr, work, "$WORK"))
	bundles, _ := os.ReadDir(out)
	if len(bundles) != 1 {
		t.Fatalf("want one bundle in %s, got %d", out, len(bundles))
	}
	got := filepath.Join(out, bundles[0].Name())
	compareTree(t, filepath.Join(dir, "expected"), got)
	assertPinned(t, got)
	// Every golden bundle verifies clean: no problem, no posture finding, no warning;
	// with --require-pinned where the case pins its binaries too (images always are).
	verifyArgs := []string{"verify", got}
	if pinsBinaries(mustRead(t, filepath.Join(dir, "cluster.yaml"))) {
		verifyArgs = append(verifyArgs, "--require-pinned")
	}
	if stdout, stderr, code := runAt(testNow.Add(time.Hour), verifyArgs...); code != 0 || stdout != "" {
		t.Errorf("verify of the golden bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	compareText(t, filepath.Join(dir, "expected.lock"), string(mustRead(t, filepath.Join(work, "cluster.lock"))))

	// Re-rendering changes nothing and writes nothing.
	before := snapshot(t, got)
	stdout, stderr, code := render()
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("second render: exit %d, stdout %q, stderr %q; want exit 0 and 'up to date'", code, stdout, stderr)
	}
	if after := snapshot(t, got); after != before {
		t.Errorf("second render touched files:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, _, code := render("--check"); code != 0 {
		t.Errorf("render --check after render: exit %d, want 0", code)
	}
}

// snapshot lists every file with inode, mtime and mode.
func snapshot(t *testing.T, root string) string {
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %v %d %v\n", p, info.Mode(), inode(info), info.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

// compareTree compares a rendered bundle with an expected tree (and its MODES file).
func compareTree(t *testing.T, want, got string) {
	t.Helper()
	gotFiles := readTree(t, got)
	var modes strings.Builder
	var paths []string
	for p := range gotFiles {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&modes, "%04o %s\n", gotFiles[p].mode, p)
	}
	if *update {
		os.RemoveAll(want)
		for p, f := range gotFiles {
			name := p
			if filepath.Base(p) == ".gitignore" {
				name = filepath.Join(filepath.Dir(p), gitignoreName)
			}
			mustWrite(t, filepath.Join(want, name), f.data, 0o644)
		}
		mustWrite(t, filepath.Join(want, "MODES"), []byte(modes.String()), 0o644)
		return
	}
	wantFiles := readTree(t, want)
	if m, ok := wantFiles["MODES"]; !ok || string(m.data) != modes.String() {
		t.Errorf("file modes differ from %s/MODES:\n%s", want, lineDiff(string(m.data), modes.String()))
	}
	delete(wantFiles, "MODES")
	for p, f := range wantFiles {
		if filepath.Base(p) == gitignoreName {
			delete(wantFiles, p)
			wantFiles[filepath.Join(filepath.Dir(p), ".gitignore")] = f
		}
	}
	for _, p := range paths {
		w, ok := wantFiles[p]
		switch {
		case !ok:
			t.Errorf("%s: rendered but not expected (run go test ./golden -update if intended)", p)
		case !bytes.Equal(w.data, gotFiles[p].data):
			t.Errorf("%s differs from the expected file:\n%s", p, lineDiff(string(w.data), string(gotFiles[p].data)))
		}
		delete(wantFiles, p)
	}
	for p := range wantFiles {
		t.Errorf("%s: expected but not rendered (a stale expected file? run go test ./golden -update)", p)
	}
}

type treeFile struct {
	data []byte
	mode fs.FileMode
}

func readTree(t *testing.T, root string) map[string]treeFile {
	out := map[string]treeFile{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = treeFile{data: mustRead(t, p), mode: info.Mode().Perm()}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// compareText compares got with the expected file (or rewrites it under -update).
func compareText(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			os.Remove(path)
			return
		}
		mustWrite(t, path, []byte(got), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./golden -update if intended):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff is a unified diff of want and got for failure messages.
func lineDiff(want, got string) string {
	return review.UnifiedDiff(want, got)
}

// TestMain fails a run with -update after rewriting, so that an update is never mistaken
// for a pass: the next run without -update checks the rewritten files.
func TestMain(m *testing.M) {
	code := m.Run()
	if *update {
		fmt.Println("golden: expected files rewritten (-update); this run fails on purpose: run `go test ./golden` to check them")
		code = 1
	}
	os.Exit(code)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustWrite(t *testing.T, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// pinFixture writes a lock that pins every image of the given specs, as `scratchgen images
// pin` would. The digests are sha256 of "golden:" + the tag, not real registry digests: the
// golden bundles show references exactly as users get them after pinning, while the real
// pin path runs against an in-process registry in cmd/scratchgen/cli/images_test.go.
func pinFixture(t *testing.T, lockPath string, specs ...string) {
	t.Helper()
	var lk *lock.Lock
	for _, spec := range specs {
		data, err := os.ReadFile(spec)
		if err != nil {
			continue
		}
		res, err := render.Resolve(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		c := res.Cluster
		if lk == nil {
			lk = lock.New(c.Name)
			lk.Images = map[string]lock.Image{}
		}
		for _, tag := range c.Images.Tags {
			lk.Images[tag] = lock.Image{Digest: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("golden:"+tag)))}
		}
		// Binaries are pinned where the spec names a mirror (the golden cases' binaries
		// are not downloaded: the hashes are of "golden:" + the URL).
		if pinsBinaries(data) {
			if lk.Binaries == nil {
				lk.Binaries = map[string]lock.Binary{}
			}
			for _, u := range c.BinaryURLs() {
				lk.Binaries[u] = lock.Binary{SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte("golden:"+u))),
					SHA512: fmt.Sprintf("%x", sha512.Sum512([]byte("golden:"+u))), Size: int64(1000 + len(u))}
			}
		}
	}
	data, err := lk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, lockPath, data, 0o644)
}

// pinsBinaries: the golden cases pin binaries where the spec has a binaries section.
func pinsBinaries(spec []byte) bool { return bytes.Contains(spec, []byte("\n  binaries:")) }

// assertPinned: every image reference in a rendered bundle carries a digest.
func assertPinned(t *testing.T, bundle string) {
	t.Helper()
	filepath.WalkDir(bundle, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, "/rootfs/") && !strings.Contains(p, "/addons/") {
			return err
		}
		for _, line := range strings.Split(string(mustRead(t, p)), "\n") {
			l := strings.TrimSpace(line)
			if (strings.HasPrefix(l, "image:") || strings.HasPrefix(l, "sandbox_image")) && !strings.Contains(l, "@sha256:") {
				t.Errorf("%s: image not pinned by digest: %s", p, l)
			}
		}
		return nil
	})
}
