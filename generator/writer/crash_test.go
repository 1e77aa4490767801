package writer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// helperEnv carries a helperSpec to TestHelperWriter in a child process.
const helperEnv = "SCRATCHGEN_WRITER_HELPER"

// helperSpec is the write a child process performs before it is killed.
type helperSpec struct {
	Dir      string
	Files    int  // testBundle size
	Version  int  // testBundle version to write
	Fallback bool // pretend RENAME_EXCHANGE is unsupported
	KillAt   int  // > 0: SIGKILL itself just before this filesystem operation
	// SidecarDir holds the sidecars committed with the bundle (testSidecars).
	SidecarDir string
}

// testSidecars are a lock and a secret committed with version v of a bundle.
func testSidecars(dir string, v int) []Sidecar {
	return []Sidecar{
		{Path: filepath.Join(dir, "cluster.lock"), Data: []byte(fmt.Sprintf("lock of version %d\n", v)), Mode: bundle.ModePublic},
		{Path: filepath.Join(dir, "cluster.secret"), Data: []byte(fmt.Sprintf("secret of version %d\n", v)), Mode: bundle.ModeSecret},
	}
}

// sidecarPaths are the paths of testSidecars.
func sidecarPaths(dir string) []string {
	var out []string
	for _, s := range testSidecars(dir, 0) {
		out = append(out, s.Path)
	}
	return out
}

// sidecarVersion returns the version the sidecars in dir hold (-1 for a mix), and fails
// on a leftover pending copy.
func sidecarVersion(t *testing.T, dir string) int {
	t.Helper()
	got := -2
	for v := range 2 {
		all := true
		for _, s := range testSidecars(dir, v) {
			data, err := os.ReadFile(s.Path)
			st, serr := os.Stat(s.Path)
			if err != nil || serr != nil || string(data) != string(s.Data) || st.Mode().Perm() != s.Mode {
				all = false
			}
		}
		if all {
			got = v
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), PendingSuffix) {
			t.Fatalf("recovery left %s", e.Name())
		}
	}
	if got < 0 {
		return -1
	}
	return got
}

// TestHelperWriter is not a test: the crash tests run the test binary with it as a child
// process that writes one version of a bundle and is killed.
func TestHelperWriter(t *testing.T) {
	env := os.Getenv(helperEnv)
	if env == "" {
		t.Skip("helper process for the crash tests")
	}
	var spec helperSpec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	files := testBundle(spec.Files, spec.Version)
	var base fileSystem = osFS{}
	if spec.Fallback {
		base = noExchangeFS{base}
	}
	if spec.KillAt > 0 {
		base = &faultFS{fileSystem: base, killAt: spec.KillAt}
	}
	// Syncs only matter for power loss, which a kill does not simulate; they are slow here.
	opts := []Option{NoSync(), withFS(base), WithSidecars(testSidecars(spec.SidecarDir, spec.Version)...)}
	fmt.Println("ready")
	start := time.Now()
	if _, err := Write(spec.Dir, files, opts...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("done", time.Since(start).Nanoseconds())
	os.Exit(0)
}

// TestCrashAtRandomMoments kills a writing process with SIGKILL at moments spread over
// the whole write of a 2000-file bundle, and checks that after recovery the bundle is
// exactly the previous version or exactly the new one.
func TestCrashAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, fallback := range []bool{false, true} {
		t.Run(modeName(fallback), func(t *testing.T) { crashAtRandom(t, fallback, 2000, 40) })
	}
}

func crashAtRandom(t *testing.T, fallback bool, files, kills int) {
	dir := filepath.Join(fastTempDir(t), "demo")
	side := t.TempDir()
	versions := [2][]bundle.File{testBundle(files, 0), testBundle(files, 1)}
	if _, err := Write(dir, versions[0], NoSync(), WithSidecars(testSidecars(side, 0)...)); err != nil {
		t.Fatal(err)
	}
	spec := helperSpec{Dir: dir, Files: files, Fallback: fallback, SidecarDir: side}
	cur := 0
	// Measure uninterrupted writes, from the child's "ready" to its end.
	var took []time.Duration
	for range 3 {
		spec.Version = 1 - cur
		d, finished := runHelper(t, spec, -1)
		if !finished {
			t.Fatal("helper did not finish")
		}
		cur = 1 - cur
		took = append(took, d)
	}
	slices.Sort(took)
	span := took[1] * 11 / 10 // a little past the median write

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	counts := map[string]int{}
	for i := range kills {
		// Stratified: kill i lands in the i-th of kills equal slices of span.
		delay := time.Duration((float64(i) + rng.Float64()) / float64(kills) * float64(span))
		next := 1 - cur
		spec.Version = next
		_, finished := runHelper(t, spec, delay)
		where := classify(t, dir, versions[cur], versions[next])
		if finished {
			where = "after the swap: write had finished"
		}
		counts[where]++
		cur = recoverAndCheck(t, dir, side, versions, cur, where, fmt.Sprintf("kill %d after %v (seed %d)", i, delay, seed))
	}
	t.Logf("%d kills spread over %v (writes took %v) of %d files:", kills, span, took, files)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		t.Logf("  %3d  %s", counts[k], k)
	}
}

// TestCrashAtEveryOperation kills a writing process just before each of its filesystem
// operations in turn, so every boundary is hit once, including the fallback's window
// between its two renames.
func TestCrashAtEveryOperation(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, fallback := range []bool{false, true} {
		t.Run(modeName(fallback), func(t *testing.T) {
			dir := filepath.Join(fastTempDir(t), "demo")
			side := t.TempDir()
			versions := [2][]bundle.File{testBundle(24, 0), testBundle(24, 1)}
			var base fileSystem = osFS{}
			if fallback {
				base = noExchangeFS{base}
			}
			// Count the operations of the write (sidecars included), and find the swap.
			if _, err := Write(dir, versions[0], NoSync(), WithSidecars(testSidecars(side, 0)...)); err != nil {
				t.Fatal(err)
			}
			rec := &faultFS{fileSystem: base}
			if _, err := Write(dir, versions[1], NoSync(), withFS(rec), WithSidecars(testSidecars(side, 1)...)); err != nil {
				t.Fatal(err)
			}
			swapOp := "Exchange "
			if fallback {
				swapOp = "Rename " + filepath.Join(stagingDir(dir), stagingTree) + " "
			}
			swap := slices.IndexFunc(rec.ops, func(op string) bool { return strings.HasPrefix(op, swapOp) }) + 1
			if swap == 0 {
				t.Fatalf("no swap among %d operations", len(rec.ops))
			}
			counts := map[string]int{}
			for n := 1; n <= len(rec.ops); n++ {
				if _, err := Write(dir, versions[0], NoSync(), WithSidecars(testSidecars(side, 0)...)); err != nil {
					t.Fatal(err)
				}
				_, finished := runHelper(t, helperSpec{Dir: dir, Files: 24, Version: 1, Fallback: fallback, KillAt: n, SidecarDir: side}, -2)
				if finished {
					t.Fatalf("helper was not killed before operation %d", n)
				}
				where := classify(t, dir, versions[0], versions[1])
				counts[where]++
				got := recoverAndCheck(t, dir, side, versions, 0, where, fmt.Sprintf("killed before operation %d (%s)", n, rec.ops[n-1]))
				if want := btoi(n > swap); got != want {
					t.Fatalf("killed before operation %d (%s, swap is %d): recovered version %d, want %d", n, rec.ops[n-1], swap, got, want)
				}
			}
			t.Logf("%d kill points, one before each operation (swap is #%d):", len(rec.ops), swap)
			for _, k := range slices.Sorted(maps.Keys(counts)) {
				t.Logf("  %3d  %s", counts[k], k)
			}
		})
	}
}

func modeName(fallback bool) string {
	if fallback {
		return "fallback"
	}
	return "exchange"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// classify says where a kill landed, from what it left on disk. The live bundle must be
// exactly the old or the new version, or (fallback only) missing.
func classify(t *testing.T, dir string, old, new []bundle.File) string {
	t.Helper()
	_, err := os.Lstat(stagingDir(dir))
	staging := err == nil
	// Once the half-written bundle (keys included) exists, git must ignore it.
	if _, err := os.Lstat(filepath.Join(stagingDir(dir), stagingTree)); err == nil {
		if data, err := os.ReadFile(filepath.Join(stagingDir(dir), ".gitignore")); err != nil || !strings.Contains(string(data), "\n*\n") {
			t.Fatalf("staging holds a tree but no .gitignore ignoring everything: %v", err)
		}
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "during the swap: directory missing (fallback window)"
	}
	if _, err := os.Lstat(filepath.Join(dir, CommitName)); err == nil {
		return "after the swap: moving the lock and secret into place"
	}
	isOld, isNew := treeMatches(dir, old), treeMatches(dir, new)
	switch {
	case isOld == nil && !staging:
		return "before the swap: comparing"
	case isOld == nil:
		return "before the swap: staging"
	case isNew == nil && staging:
		return "after the swap: removing the old tree"
	case isNew == nil:
		return "after the swap: done"
	}
	t.Fatalf("live bundle is neither version: old: %v; new: %v", isOld, isNew)
	return ""
}

// recoverAndCheck runs Recover and returns which version dir then holds exactly; the
// sidecars in side must hold the same version.
func recoverAndCheck(t *testing.T, dir, side string, versions [2][]bundle.File, cur int, where, what string) int {
	t.Helper()
	if err := Recover(dir, sidecarPaths(side)...); err != nil {
		t.Fatalf("%s: Recover: %v", what, err)
	}
	got := -1
	for _, v := range []int{cur, 1 - cur} {
		if treeMatches(dir, versions[v]) == nil {
			got = v
			break
		}
	}
	switch {
	case got < 0:
		t.Fatalf("%s: after recovery neither version: old: %v; new: %v",
			what, treeMatches(dir, versions[cur]), treeMatches(dir, versions[1-cur]))
	case strings.HasPrefix(where, "after") && got == cur:
		t.Fatalf("%s: recovery went back from the new bundle to the old one", what)
	}
	if s := siblings(t, dir); len(s) != 0 {
		t.Fatalf("%s: recovery left %v", what, s)
	}
	if sv := sidecarVersion(t, side); sv != got {
		t.Fatalf("%s: the bundle is version %d but the lock and secret are version %d (-1: a mix)", what, got, sv)
	}
	return got
}

// runHelper runs TestHelperWriter in a child process. With delay >= 0 it kills the child
// that long after the child is ready to write; with -1 it waits; with -2 the child is
// expected to kill itself. It reports the child's write time and whether it finished.
func runHelper(t *testing.T, spec helperSpec, delay time.Duration) (time.Duration, bool) {
	t.Helper()
	env, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(env))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Wait()
		t.Fatalf("helper did not start: %q %s", lines.Text(), stderr.String())
	}
	if delay >= 0 {
		time.Sleep(delay)
		cmd.Process.Kill()
	}
	var took time.Duration
	if lines.Scan() {
		if ns, ok := strings.CutPrefix(lines.Text(), "done "); ok {
			n, _ := strconv.ParseInt(ns, 10, 64)
			took = time.Duration(n)
		}
	}
	err = cmd.Wait()
	if delay == -1 && err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	if stderr.Len() > 0 && !strings.Contains(stderr.String(), "killed") {
		t.Logf("helper stderr: %s", stderr.String())
	}
	return took, err == nil
}
