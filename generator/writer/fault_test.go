package writer

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// TestFaultInjection fails every filesystem operation of a write in turn, and checks that
// each failed write leaves exactly the previous bundle (failure before the swap) or exactly
// the new one (after it), and that the next clean Write succeeds.
func TestFaultInjection(t *testing.T) {
	old, new := testBundle(24, 0), testBundle(24, 1)
	total := 0
	for _, mode := range []string{"exchange", "fallback"} {
		for _, scenario := range []string{"update", "create"} {
			t.Run(mode+"/"+scenario, func(t *testing.T) {
				// Sync stays an operation that can fail, but skips the slow syncfs(2).
				var base fileSystem = skipSyncFS{osFS{}}
				if mode == "fallback" {
					base = noExchangeFS{base}
				}
				prev := old
				if scenario == "create" {
					prev = nil
				}
				n := injectEveryFault(t, base, prev, new)
				total += n
			})
		}
	}
	t.Logf("injection points: %d in total", total)
}

// injectEveryFault returns the number of operations a clean write performs; it has failed
// each of them once.
func injectEveryFault(t *testing.T, base fileSystem, prev, next []bundle.File) int {
	root := fastTempDir(t)
	side := filepath.Join(root, "project")
	// The lock and secret are committed with the bundle: version 0 beside prev (none at
	// all on a first render), version 1 with next.
	fresh := func(t *testing.T) string {
		t.Helper()
		os.RemoveAll(filepath.Join(root, "p"))
		os.RemoveAll(side)
		if err := os.MkdirAll(side, 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "p", "demo")
		if prev != nil {
			if _, err := Write(dir, prev, NoSync(), WithSidecars(testSidecars(side, 0)...)); err != nil {
				t.Fatal(err)
			}
		} else if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	nextSide := WithSidecars(testSidecars(side, 1)...)
	// sidecarsAsBefore checks that a failed write left the lock and secret as they were.
	sidecarsAsBefore := func(t *testing.T, what string) {
		t.Helper()
		entries, _ := os.ReadDir(side)
		if prev == nil {
			if len(entries) != 0 {
				t.Fatalf("%s: a failed first write left %d file(s) beside the spec", what, len(entries))
			}
			return
		}
		if v := sidecarVersion(t, side); v != 0 {
			t.Fatalf("%s: the lock and secret changed (version %d) though the bundle did not", what, v)
		}
	}

	// A clean run: count the operations and find the one that swaps the new tree in.
	dir := fresh(t)
	clean := &faultFS{fileSystem: base}
	if _, err := Write(dir, next, withFS(clean), nextSide); err != nil {
		t.Fatal(err)
	}
	if err := treeMatches(dir, next); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(stagingDir(dir), stagingTree)
	swapOp := "Rename " + tree + " " + dir
	if _, fallback := base.(noExchangeFS); !fallback && prev != nil {
		swapOp = "Exchange " + tree + " " + dir
	}
	swap := slices.Index(clean.ops, swapOp) + 1
	if swap == 0 {
		t.Fatalf("no %q among %d operations", swapOp, len(clean.ops))
	}

	kinds := map[string]int{}
	for n := 1; n <= len(clean.ops); n++ {
		dir := fresh(t)
		before := snapshot(t, dir)
		f := &faultFS{fileSystem: base, failAt: n}
		res, err := Write(dir, next, withFS(f), nextSide)
		failed := f.ops[n-1] // the order of parallel comparisons varies from run to run
		if !errors.Is(err, errInjected) {
			t.Fatalf("fault at %d (%s): error = %v, want the injected one", n, failed, err)
		}
		kinds[strings.Fields(failed)[0]]++
		if n <= swap {
			if res.Wrote {
				t.Errorf("fault at %d (%s): Wrote = true before the swap", n, failed)
			}
			// Content, mode, inode and mtime of every file and directory, untouched.
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Fatalf("fault at %d (%s): previous bundle changed", n, failed)
			}
			sidecarsAsBefore(t, fmt.Sprintf("fault at %d (%s)", n, failed))
		} else {
			if !res.Wrote {
				t.Errorf("fault at %d (%s): Wrote = false after the swap", n, failed)
			}
			// Committed; a failure while moving the lock and secret into place leaves the
			// commit record, which the next write finishes.
			committed := dir + ".committed"
			os.RemoveAll(committed)
			if err := os.Link(filepath.Join(dir, CommitName), committed); err == nil {
				os.Remove(filepath.Join(dir, CommitName))
			}
			err := treeMatches(dir, next)
			if _, lerr := os.Lstat(committed); lerr == nil {
				os.Rename(committed, filepath.Join(dir, CommitName))
			}
			if err != nil {
				t.Fatalf("fault at %d (%s): %v", n, failed, err)
			}
		}
		res, err = Write(dir, next, NoSync(), nextSide)
		if err != nil {
			t.Fatalf("clean write after fault at %d (%s): %v", n, failed, err)
		}
		if v := sidecarVersion(t, side); v != 1 {
			t.Fatalf("clean write after fault at %d (%s): lock and secret are version %d", n, failed, v)
		}
		if err := treeMatches(dir, next); err != nil {
			t.Fatalf("clean write after fault at %d (%s): %v", n, failed, err)
		}
		if n > swap && res.Wrote {
			t.Errorf("fault at %d (%s): new bundle was in place, yet the next write rewrote it", n, failed)
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Fatalf("clean write after fault at %d (%s) left %v", n, failed, s)
		}
	}
	t.Logf("%d operations failed one at a time (swap is #%d): %v", len(clean.ops), swap, kinds)
	return len(clean.ops)
}

type skipSyncFS struct{ fileSystem }

func (skipSyncFS) Sync(string) error { return nil }
