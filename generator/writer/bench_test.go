package writer

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// benchFiles is a 1000-node cluster, 40 files per node.
const benchFiles = 1000 * 40

// BenchmarkWriteNoop rewrites an unchanged 40,000-file bundle: the cost of comparing.
func BenchmarkWriteNoop(b *testing.B) {
	files := testBundle(benchFiles, 0)
	dir := filepath.Join(b.TempDir(), "demo")
	if _, err := Write(dir, files, NoSync()); err != nil {
		b.Fatal(err)
	}
	start := cpuTime()
	for b.Loop() {
		res, err := Write(dir, files)
		if err != nil || res.Wrote {
			b.Fatalf("no-op write = %+v, %v", res.Wrote, err)
		}
	}
	// Wall time suffers on a busy machine; CPU time (user+system, all threads) does not.
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var r unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// BenchmarkWriteCold writes a 40,000-file bundle into a new directory, syncs included.
func BenchmarkWriteCold(b *testing.B) {
	files := testBundle(benchFiles, 0)
	root := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		if _, err := Write(filepath.Join(root, fmt.Sprint("demo", i)), files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteUpdate swaps a 40,000-file bundle between two versions (a third of the
// files rewritten, the rest hard-linked), syncs included.
func BenchmarkWriteUpdate(b *testing.B) {
	versions := [2][]bundle.File{testBundle(benchFiles, 0), testBundle(benchFiles, 1)}
	dir := filepath.Join(b.TempDir(), "demo")
	if _, err := Write(dir, versions[0], NoSync()); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, err := Write(dir, versions[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
