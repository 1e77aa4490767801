package render_test

// TestScale is `make bench`'s table: the scratchgen binary, run as a user runs it, on a
// cluster of 3 control planes and N-3 workers (N = 1,000 unless SCRATCHGEN_SCALE_NODES
// lists others, e.g. "1000,2000,5000,10000"), five times each; it prints the median of:
//
//   - cold: render into an empty directory with a lock that has nothing issued yet, on
//     an idle disk, all cold renders of every size before any other render (see
//     settle): wall and CPU time, peak resident memory of the process;
//   - no-op: render again, nothing changed (wall time, bytes written: must be 0), once as
//     a user runs it (the render cache answers) and once with --no-cache (every node
//     planned and compared);
//   - one node added: render with one more worker, on an idle disk (wall time, the
//     files rewritten and the sum of their sizes);
//   - the bundle's bytes and files (hard-linked files counted once);
//   - diff (the added node, without writing) and verify of the bundle (wall time).
//
// It is a measurement, not a test of timing: nothing is asserted about the figures, only
// that each command succeeds and that the no-op writes nothing. Run with `make bench`
// (SCRATCHGEN_SCALE=1).

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	if os.Getenv("SCRATCHGEN_SCALE") != "1" {
		t.Skip("SKIPPED: the scale benchmark renders 1,000-node clusters for minutes; run `make bench` (SCRATCHGEN_SCALE=1)")
	}
	sizes := []int{1000}
	if s := os.Getenv("SCRATCHGEN_SCALE_NODES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 4 {
				t.Fatalf("SCRATCHGEN_SCALE_NODES: %q is not a node count of 4 or more", f)
			}
			sizes = append(sizes, n)
		}
	}
	runs := 5
	if s := os.Getenv("SCRATCHGEN_SCALE_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	scaleCache = filepath.Join(t.TempDir(), "cache")
	bin := filepath.Join(t.TempDir(), "scratchgen")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/scratchgen/scratchgen/cmd/scratchgen").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Every cold render comes first, into its own directory, before any render of the
	// benchmark replaces a bundle (and so deletes its previous tree): see settle.
	colds := make([][]scaleCold, len(sizes))
	for s, n := range sizes {
		for range runs {
			colds[s] = append(colds[s], scaleColdOnce(t, bin, n))
		}
	}
	var table []string
	for s, n := range sizes {
		var m scaleRun
		for _, c := range colds[s] {
			m.add(scaleRestOnce(t, bin, n, c))
		}
		table = append(table, m.rows(n)...)
	}
	t.Logf("scale benchmark: medians of %d runs on this machine (%d CPUs); renders that write start on an idle disk (see settle)\n| figure | median | runs |\n|---|---|---|\n%s", runs, runtime.NumCPU(), strings.Join(table, "\n"))
}

// scaleCache is the render cache of the scratchgen runs.
var scaleCache string

// scaleFigures are one run's measurements.
type scaleFigures struct {
	coldWall, coldCPU, noopWall, noopFullWall, addWall, diffWall, verifyWall time.Duration
	coldRSS                                                                  int64 // KiB
	noopBytes, addBytes, addFiles, addViewBytes, bundleBytes, bundleFiles    int64
}

type scaleRun struct{ runs []scaleFigures }

func (s *scaleRun) add(f scaleFigures) { s.runs = append(s.runs, f) }

func (s *scaleRun) rows(n int) []string {
	dur := func(get func(scaleFigures) time.Duration) string {
		var v []time.Duration
		for _, r := range s.runs {
			v = append(v, get(r))
		}
		slices.Sort(v)
		var all []string
		for _, x := range v {
			all = append(all, x.Round(10*time.Millisecond).String())
		}
		return v[len(v)/2].Round(10*time.Millisecond).String() + " | " + strings.Join(all, ", ")
	}
	num := func(get func(scaleFigures) int64, unit func(int64) string) string {
		var v []int64
		for _, r := range s.runs {
			v = append(v, get(r))
		}
		slices.Sort(v)
		var all []string
		for _, x := range v {
			all = append(all, unit(x))
		}
		return unit(v[len(v)/2]) + " | " + strings.Join(all, ", ")
	}
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	kib := func(k int64) string { return fmt.Sprintf("%d MB", k*1024/1000000) }
	count := func(c int64) string { return strconv.FormatInt(c, 10) }
	return []string{
		fmt.Sprintf("| %d nodes cold: wall | %s |", n, dur(func(f scaleFigures) time.Duration { return f.coldWall })),
		fmt.Sprintf("| %d nodes cold: CPU (user+system) | %s |", n, dur(func(f scaleFigures) time.Duration { return f.coldCPU })),
		fmt.Sprintf("| %d nodes cold: peak memory | %s |", n, num(func(f scaleFigures) int64 { return f.coldRSS }, kib)),
		fmt.Sprintf("| %d nodes no-op: wall | %s |", n, dur(func(f scaleFigures) time.Duration { return f.noopWall })),
		fmt.Sprintf("| %d nodes no-op: bytes written | %s |", n, num(func(f scaleFigures) int64 { return f.noopBytes }, mb)),
		fmt.Sprintf("| %d nodes no-op, --no-cache (every node planned): wall | %s |", n, dur(func(f scaleFigures) time.Duration { return f.noopFullWall })),
		fmt.Sprintf("| one node added to %d: wall | %s |", n, dur(func(f scaleFigures) time.Duration { return f.addWall })),
		fmt.Sprintf("| one node added to %d: bytes rewritten | %s |", n, num(func(f scaleFigures) int64 { return f.addBytes }, mb)),
		fmt.Sprintf("| one node added to %d: files rewritten | %s |", n, num(func(f scaleFigures) int64 { return f.addFiles }, count)),
		fmt.Sprintf("| one node added to %d: of the bytes, the first-boot views' (ignition.json, user-data) | %s |", n, num(func(f scaleFigures) int64 { return f.addViewBytes }, mb)),
		fmt.Sprintf("| %d nodes: bundle bytes (no images) | %s |", n, num(func(f scaleFigures) int64 { return f.bundleBytes }, mb)),
		fmt.Sprintf("| %d nodes: bundle files | %s |", n, num(func(f scaleFigures) int64 { return f.bundleFiles }, count)),
		fmt.Sprintf("| %d nodes: diff of one added node | %s |", n, dur(func(f scaleFigures) time.Duration { return f.diffWall })),
		fmt.Sprintf("| %d nodes: verify | %s |", n, dur(func(f scaleFigures) time.Duration { return f.verifyWall })),
	}
}

// scaleSpec is a cluster of 3 control planes behind a load balancer and n-3 workers.
func scaleSpec(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: scratchgen.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: scale\nspec:\n  kubernetesVersion: v1.36.3\n  controlPlaneEndpoint: api.scale.example.com\n  network:\n    podCIDR: 10.128.0.0/9\n  nodes:\n")
	for i := 0; i < n; i++ {
		if i < 3 {
			fmt.Fprintf(&b, "  - {name: cp-%d, address: 10.0.0.%d, roles: [control-plane, etcd]}\n", i+1, 10+i)
			continue
		}
		w := i - 3
		fmt.Fprintf(&b, "  - {name: w-%d, address: 10.%d.%d.%d, roles: [worker]}\n", w+1, 1+w/62500, w/250%250, w%250+1)
	}
	return b.String()
}

// scaleCold is one cold render of an n-node cluster: its directory and figures.
type scaleCold struct {
	dir string
	f   scaleFigures
}

// scaleColdOnce renders an n-node cluster into an empty directory, on an idle disk.
func scaleColdOnce(t *testing.T, bin string, n int) scaleCold {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.secret"), []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "cluster.yaml")
	writeScaleSpec(t, spec, n)
	var f scaleFigures
	settle(t)
	f.coldWall, f.coldCPU, f.coldRSS = scaleRunCmd(t, bin, "render", "-f", spec, "-o", filepath.Join(dir, "bundles"))
	return scaleCold{dir: dir, f: f}
}

// scaleRestOnce measures, on the bundle of a cold render, its size, a no-op, verify, and
// one added node (diff, then render).
func scaleRestOnce(t *testing.T, bin string, n int, c scaleCold) scaleFigures {
	t.Helper()
	spec := filepath.Join(c.dir, "cluster.yaml")
	out := filepath.Join(c.dir, "bundles")
	bundle := filepath.Join(out, "scale")
	f := c.f
	f.bundleBytes, f.bundleFiles = treeSize(t, bundle)

	before := snapshotTree(t, bundle)
	f.noopWall, _, _ = scaleRunCmd(t, bin, "render", "-f", spec, "-o", out)
	if f.noopBytes, _, _ = rewritten(t, before, snapshotTree(t, bundle)); f.noopBytes != 0 {
		t.Fatalf("render with nothing changed wrote %d bytes", f.noopBytes)
	}
	f.noopFullWall, _, _ = scaleRunCmd(t, bin, "render", "--no-cache", "-f", spec, "-o", out)
	if b, _, _ := rewritten(t, before, snapshotTree(t, bundle)); b != 0 {
		t.Fatalf("render --no-cache with nothing changed wrote %d bytes", b)
	}

	f.verifyWall, _, _ = scaleRunCmd(t, bin, "verify", bundle)

	writeScaleSpec(t, spec, n+1)
	f.diffWall, _, _ = scaleRunCmdExit(t, 2, bin, "diff", "-f", spec, "-o", out, "--summary")
	settle(t)
	f.addWall, _, _ = scaleRunCmd(t, bin, "render", "-f", spec, "-o", out)
	f.addBytes, f.addFiles, f.addViewBytes = rewritten(t, before, snapshotTree(t, bundle))
	return f
}

// writeScaleSpec writes the spec of an n-node cluster (scaleSpec) to path.
func writeScaleSpec(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(scaleSpec(n)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// settle waits, before a render that writes, until the disk is idle: what earlier runs
// wrote is flushed (sync) and the kernel's I/O pressure (/proc/pressure/io, the share of
// the last 10 s some task waited on I/O) is below 1%, for at most a minute.
//
// Deletions weigh more than writes, which is why every cold render runs before the
// benchmark replaces any bundle. On ext4 without a journal (this machine's root
// filesystem), allocating an inode skips every free inode deleted in the last minute
// (six if its inode-table block is still dirty): ext4's recently_deleted(), one buffer
// lookup per candidate. A render that creates ~32,000 inodes right after a tree of
// ~49,000 was deleted (what replacing a 1,000-node bundle deletes) spent 42% of its
// profile there and up to three times its usual system time (2–3 s → 4–10 s); a minute
// of waiting after a sync still left a sixth of the profile there.
func settle(t *testing.T) {
	t.Helper()
	syscall.Sync()
	deadline := time.Now().Add(time.Minute)
	for {
		data, err := os.ReadFile("/proc/pressure/io")
		if err != nil {
			time.Sleep(2 * time.Second) // no pressure information: a fixed pause
			return
		}
		var some float64
		if _, err := fmt.Sscanf(string(data), "some avg10=%f", &some); err != nil || some < 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("the disk did not settle within a minute (I/O pressure %.1f%%); measuring anyway", some)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func scaleRunCmd(t *testing.T, bin string, args ...string) (time.Duration, time.Duration, int64) {
	return scaleRunCmdExit(t, 0, bin, args...)
}

// scaleRunCmdExit runs scratchgen and returns its wall time, CPU time and peak RSS (KiB).
func scaleRunCmdExit(t *testing.T, want int, bin string, args ...string) (time.Duration, time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SCRATCHGEN_RENDER_CACHE="+scaleCache) // the render cache, as a user has it, but this test's
	began := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(began)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("scratchgen %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	if code != want {
		t.Fatalf("scratchgen %s: exit %d, want %d\n%.2000s", strings.Join(args, " "), code, want, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return wall, cpu, ru.Maxrss
}

// fileState identifies a file as written: its inode and modification time (a file the
// writer keeps keeps both; linking it into a new tree changes only its ctime).
type fileState struct {
	ino, size, mtime int64
}

func snapshotTree(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = fileState{ino: int64(st.Ino), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewritten sums the sizes of the files written between two snapshots (new, or with
// another inode or modification time), and of those the first-boot views'; a file
// written once and hard-linked to other paths counts once.
func rewritten(t *testing.T, before, after map[string]fileState) (bytes, files, views int64) {
	seen := map[int64]bool{}
	for p, a := range after {
		b, ok := before[p]
		if ok && b.ino == a.ino && b.mtime == a.mtime {
			continue
		}
		files++
		if !seen[a.ino] {
			seen[a.ino] = true
			bytes += a.size
			if base := filepath.Base(p); base == "ignition.json" || base == "user-data" {
				views += a.size
			}
		}
	}
	return bytes, files, views
}

// treeSize sums a tree's file sizes, each inode once, and counts its paths.
func treeSize(t *testing.T, dir string) (int64, int64) {
	t.Helper()
	seen := map[int64]bool{}
	var bytes, files int64
	for _, s := range snapshotTree(t, dir) {
		files++
		if !seen[s.ino] {
			seen[s.ino] = true
			bytes += s.size
		}
	}
	return bytes, files
}
