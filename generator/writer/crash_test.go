package writer

import (
	"bufio"
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

const (
	helperEnv  = "SCRATCHGEN_WRITER_HELPER" // "<dir>|<version>|<exchange or fallback>"
	crashFiles = 2000
)

// TestHelperWriter is not a test: TestCrash runs the test binary with it as a child
// process that writes one version of a bundle and gets killed.
func TestHelperWriter(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestCrash")
	}
	parts := strings.Split(spec, "|")
	version, _ := strconv.Atoi(parts[1])
	files := testBundle(crashFiles, version)
	// Syncs only matter for power loss, which a kill cannot simulate; they are slow here.
	opts := []Option{NoSync()}
	if parts[2] == "fallback" {
		opts = append(opts, withFS(noExchangeFS{osFS{}}))
	}
	fmt.Println("ready")
	start := time.Now()
	if _, err := Write(parts[0], files, opts...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("done", time.Since(start).Nanoseconds())
	os.Exit(0)
}

// TestCrash kills a writing process with SIGKILL at moments spread over the whole write
// and checks that, after recovery, the bundle is exactly the previous or the new version.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, mode := range []string{"exchange", "fallback"} {
		t.Run(mode, func(t *testing.T) { crashTest(t, mode, 40) })
	}
}

func crashTest(t *testing.T, mode string, kills int) {
	dir := filepath.Join(fastTempDir(t), "demo")
	versions := [2][]bundle.File{testBundle(crashFiles, 0), testBundle(crashFiles, 1)}
	if _, err := Write(dir, versions[0]); err != nil {
		t.Fatal(err)
	}
	cur := 0
	// Measure an uninterrupted write, from the child's "ready" to its end.
	var took time.Duration
	for range 3 {
		d, finished := runHelper(t, dir, 1-cur, mode, -1)
		if !finished {
			t.Fatal("helper did not finish")
		}
		cur = 1 - cur
		took = max(took, d)
	}
	if err := treeMatches(dir, versions[cur]); err != nil {
		t.Fatal(err)
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	counts := map[string]int{}
	for i := range kills {
		// Stratified: kill i lands in the i-th of kills slices of the slowest measured write.
		delay := time.Duration((float64(i) + rng.Float64()) / float64(kills) * float64(took))
		next := 1 - cur
		_, finished := runHelper(t, dir, next, mode, delay)
		state := classify(dir, versions[cur], versions[next])
		if finished {
			state = "after the swap: write had finished"
		}
		if state == "" {
			t.Fatalf("kill %d after %v (seed %d): bundle is neither version: old: %v; new: %v",
				i, delay, seed, treeMatches(dir, versions[cur]), treeMatches(dir, versions[next]))
		}
		counts[state]++
		if err := Recover(dir); err != nil {
			t.Fatalf("kill %d after %v: Recover: %v", i, delay, err)
		}
		switch {
		case treeMatches(dir, versions[cur]) == nil:
			if strings.HasPrefix(state, "after") {
				t.Fatalf("kill %d: recovery went back from the new bundle to the old one", i)
			}
		case treeMatches(dir, versions[next]) == nil:
			cur = next
		default:
			t.Fatalf("kill %d after %v (seed %d): after recovery neither version: old: %v; new: %v",
				i, delay, seed, treeMatches(dir, versions[cur]), treeMatches(dir, versions[next]))
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Fatalf("kill %d: recovery left %v", i, s)
		}
	}
	t.Logf("%d kills over %v writes of %d files (seed %d):", kills, took, crashFiles, seed)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		t.Logf("  %3d  %s", counts[k], k)
	}
}

// classify says where a kill landed, from what it left on disk; "" if the live bundle is
// neither version.
func classify(dir string, old, new []bundle.File) string {
	_, err := os.Lstat(stagingDir(dir))
	staging := err == nil
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "during the swap: directory missing (fallback window), restored by Recover"
	}
	switch {
	case treeMatches(dir, old) == nil && !staging:
		return "before the swap: comparing"
	case treeMatches(dir, old) == nil:
		return "before the swap: staging"
	case treeMatches(dir, new) == nil && staging:
		return "after the swap: removing the old tree"
	case treeMatches(dir, new) == nil:
		return "after the swap: done"
	}
	return ""
}

// runHelper runs TestHelperWriter writing version into dir. With delay >= 0 it kills the
// child that long after the child is ready to write. It reports the child's write time and
// whether the child finished on its own.
func runHelper(t *testing.T, dir string, version int, mode string, delay time.Duration) (time.Duration, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%s", helperEnv, dir, version, mode))
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
	if delay < 0 && err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	return took, err == nil
}
