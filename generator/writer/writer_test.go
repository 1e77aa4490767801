package writer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

func smallBundle() []bundle.File {
	return []bundle.File{
		{Path: "README", Mode: bundle.ModePublic, Data: []byte("demo\n")},
		{Path: "admin/admin.kubeconfig", Mode: bundle.ModeSecret, Data: []byte("key"), Secret: true},
		{Path: "nodes/cp-1/rootfs/usr/local/bin/run.sh", Mode: bundle.ModeExecute, Data: []byte("#!/bin/sh\n")},
		{Path: "nodes/cp-1/ignition.json", Mode: bundle.ModePublic, Data: []byte("{}")},
		{Path: "nodes/cp-1/SHA256SUMS", Mode: bundle.ModePublic, Data: []byte("only the root name is reserved")},
	}
}

func TestWriteNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundles", "demo")
	files := smallBundle()
	orig := slices.Clone(files)
	res, err := Write(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := treeMatches(dir, files); err != nil {
		t.Fatal(err)
	}
	want := Changes{Added: []string{"README", "SHA256SUMS", "admin/admin.kubeconfig", "nodes/cp-1/SHA256SUMS",
		"nodes/cp-1/ignition.json", "nodes/cp-1/rootfs/usr/local/bin/run.sh"}}
	if !res.Wrote || !reflect.DeepEqual(res.Changes, want) {
		t.Errorf("result = %+v, want %+v and Wrote", res, want)
	}
	if !reflect.DeepEqual(files, orig) {
		t.Error("Write reordered or changed its input")
	}
	if s := siblings(t, dir); len(s) != 0 {
		t.Errorf("left beside the bundle: %v", s)
	}
}

func TestExactModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077, 0o777} {
		t.Run(fmt.Sprintf("%04o", umask), func(t *testing.T) {
			parent := t.TempDir()
			old := unix.Umask(umask)
			defer unix.Umask(old)
			dir := filepath.Join(parent, "demo")
			if _, err := Write(dir, smallBundle(), NoSync()); err != nil {
				t.Fatal(err)
			}
			if err := treeMatches(dir, smallBundle()); err != nil { // checks 0600/0644/0755 and 0755 dirs
				t.Fatal(err)
			}
		})
	}
}

func TestNoopWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	files := testBundle(200, 0)
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	var ctimes []unix.Timespec
	for _, p := range []string{dir, filepath.Join(dir, "SHA256SUMS"), filepath.Join(dir, "README")} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		ctimes = append(ctimes, st.Ctim)
	}
	rec := &faultFS{fileSystem: osFS{}}
	res, err := Write(dir, files, withFS(rec))
	if err != nil {
		t.Fatal(err)
	}
	if res.Wrote || !res.Empty() {
		t.Errorf("no-op write reported %+v", res)
	}
	if m := rec.mutated(); len(m) > 0 {
		t.Errorf("no-op write changed the disk: %v", m)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Error("no-op write changed inodes, mtimes or contents")
	}
	for i, p := range []string{dir, filepath.Join(dir, "SHA256SUMS"), filepath.Join(dir, "README")} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Ctim != ctimes[i] {
			t.Errorf("ctime of %s changed", p)
		}
	}
	if c, err := Check(dir, files); err != nil || !c.Empty() {
		t.Errorf("Check = %+v, %v; want empty", c, err)
	}
}

// expectedChanges computes the changes from old to new without the writer's code.
func expectedChanges(old, new []bundle.File) (c Changes, same []string) {
	byPath := map[string]bundle.File{}
	for _, f := range old {
		byPath[f.Path] = f
	}
	inNew := map[string]bool{}
	for _, f := range new {
		inNew[f.Path] = true
		o, ok := byPath[f.Path]
		switch {
		case !ok:
			c.Added = append(c.Added, f.Path)
		case o.Mode != f.Mode || string(o.Data) != string(f.Data):
			c.Changed = append(c.Changed, f.Path)
		default:
			same = append(same, f.Path)
		}
	}
	for _, f := range old {
		if !inNew[f.Path] {
			c.Removed = append(c.Removed, f.Path)
		}
	}
	c.Changed = append(c.Changed, "SHA256SUMS")
	slices.Sort(c.Added)
	slices.Sort(c.Changed)
	slices.Sort(c.Removed)
	return c, same
}

func TestUpdateKeepsUnchangedFilesAndRemovesStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	v0, v1 := testBundle(200, 0), testBundle(200, 1)
	if _, err := Write(dir, v0); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	want, same := expectedChanges(v0, v1)
	if len(same) < 50 || len(want.Changed) < 50 || len(want.Removed) < 10 || len(want.Added) < 10 {
		t.Fatalf("test bundle too uniform: %d same, %+v", len(same), want)
	}

	c, err := Check(dir, v1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Check = %+v\nwant %+v", c, want)
	}
	if !reflect.DeepEqual(snapshot(t, dir), before) {
		t.Fatal("Check changed the bundle")
	}

	time.Sleep(10 * time.Millisecond) // a fresh write would get a later mtime
	res, err := Write(dir, v1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Wrote || !reflect.DeepEqual(res.Changes, want) {
		t.Errorf("Write = %+v\nwant %+v", res, want)
	}
	if err := treeMatches(dir, v1); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for _, p := range same {
		if b, a := before[p], after[p]; a.ino != b.ino || a.mtime != b.mtime {
			t.Errorf("unchanged %s: inode %d→%d, mtime %d→%d", p, b.ino, a.ino, b.mtime, a.mtime)
		}
	}
	for _, p := range want.Changed {
		if before[p].ino == after[p].ino {
			t.Errorf("changed %s kept its inode; it must be a fresh file", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "retired")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale directory retired/ still there: %v", err)
	}
	if s := siblings(t, dir); len(s) != 0 {
		t.Errorf("left beside the bundle: %v", s)
	}
}

func TestModeOnlyChange(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	files := []bundle.File{{Path: "admin/key", Mode: bundle.ModePublic, Data: []byte("k")}}
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	files[0].Mode = bundle.ModeSecret
	want := Changes{Changed: []string{"admin/key"}} // SHA256SUMS bytes do not depend on modes
	if c, err := Check(dir, files); err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("Check = %+v, %v; want %+v", c, err, want)
	}
	res, err := Write(dir, files)
	if err != nil || !res.Wrote || !reflect.DeepEqual(res.Changes, want) {
		t.Fatalf("Write = %+v, %v", res, err)
	}
	if err := treeMatches(dir, files); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	if after["SHA256SUMS"].ino != before["SHA256SUMS"].ino {
		t.Error("SHA256SUMS was rewritten although its bytes did not change")
	}
}

func TestDirectoryModesRestored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	files := smallBundle()
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "admin")} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	want := Changes{Changed: []string{".", "admin"}}
	res, err := Write(dir, files)
	if err != nil || !res.Wrote || !reflect.DeepEqual(res.Changes, want) {
		t.Fatalf("Write = %+v, %v; want %+v", res, err, want)
	}
	if err := treeMatches(dir, files); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesForeignContent(t *testing.T) {
	files := smallBundle()
	type setup func(t *testing.T, dir string)
	write := func(t *testing.T, dir string) {
		if _, err := Write(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		setup setup
		want  string // %s is dir
	}{
		{"no SHA256SUMS", func(t *testing.T, dir string) {
			os.Mkdir(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		}, "%s exists and was not written by scratchgen (no SHA256SUMS); move it away or choose another -o"},
		{"only an empty directory inside", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		}, "%s exists and was not written by scratchgen (no SHA256SUMS)"},
		{"unlisted files", func(t *testing.T, dir string) {
			write(t, dir)
			for _, p := range []string{"z", "a.txt", "admin/x", "admin/y", "nodes/cp-1/b", "nodes/cp-1/c", "nodes/new/d"} {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
				os.WriteFile(filepath.Join(dir, p), []byte("user"), 0o644)
			}
		}, "%s holds files scratchgen did not write (not in SHA256SUMS): a.txt, admin/x, admin/y, nodes/cp-1/b, nodes/cp-1/c and 2 more; move them away"},
		{"symlink inside", func(t *testing.T, dir string) {
			write(t, dir)
			os.Symlink("/etc", filepath.Join(dir, "nodes", "escape"))
		}, "%s holds a symlink at nodes/escape; scratchgen never follows symlinks, remove it"},
		{"listed file replaced by symlink", func(t *testing.T, dir string) {
			write(t, dir)
			p := filepath.Join(dir, "README")
			os.Remove(p)
			os.Symlink("/etc/passwd", p)
		}, "%s holds a symlink at README"},
		{"directory is a symlink", func(t *testing.T, dir string) {
			real := dir + "-real"
			write(t, real)
			os.Symlink(real, dir)
		}, "%s is a symlink; scratchgen does not write through symlinks"},
		{"fifo inside", func(t *testing.T, dir string) {
			write(t, dir)
			unix.Mkfifo(filepath.Join(dir, "admin", "pipe"), 0o644)
		}, "%s holds admin/pipe, which is not a regular file"},
		{"SHA256SUMS is not a manifest", func(t *testing.T, dir string) {
			os.Mkdir(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("hello\n"), 0o644)
		}, "%s/SHA256SUMS is not a scratchgen manifest (line 1)"},
		{"not a directory", func(t *testing.T, dir string) {
			os.WriteFile(dir, []byte("x"), 0o644)
		}, "%s exists and is not a directory"},
		{"staging directory not ours", func(t *testing.T, dir string) {
			write(t, dir)
			s := stagingDir(dir)
			os.Mkdir(s, 0o755)
			os.WriteFile(filepath.Join(s, "precious"), []byte("x"), 0o644)
		}, "%s exists but was not made by scratchgen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			tc.setup(t, dir)
			before := snapshot(t, filepath.Dir(dir))
			want := strings.Replace(tc.want, "%s", dir, 1)
			if strings.Contains(tc.name, "staging") {
				want = strings.Replace(tc.want, "%s", stagingDir(dir), 1)
			}
			_, err := Write(dir, files)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Write error = %v\nwant prefix %q", err, want)
			}
			if !strings.Contains(tc.name, "staging") {
				if _, err := Check(dir, files); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Check error = %v\nwant prefix %q", err, want)
				}
			}
			if !reflect.DeepEqual(snapshot(t, filepath.Dir(dir)), before) {
				t.Error("a refused write changed something")
			}
		})
	}
}

func TestEmptyDirectoryIsAdopted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, smallBundle()); err != nil {
		t.Fatal(err)
	}
	if err := treeMatches(dir, smallBundle()); err != nil {
		t.Fatal(err)
	}
}

func TestSHA256SUMSWithCoreutils(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	files := testBundle(300, 0)
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	sha256sum := func() error {
		cmd := exec.Command("sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := sha256sum(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(files) {
		t.Errorf("SHA256SUMS has %d lines for %d files", len(lines), len(files))
	}
	if !slices.IsSorted(lines) { // hex prefixes differ, so compare paths
		var paths []string
		for _, l := range lines {
			paths = append(paths, l[66:])
		}
		if !slices.IsSorted(paths) {
			t.Error("SHA256SUMS is not sorted by path")
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "SHA256SUMS")); fi.Mode() != 0o644 {
		t.Errorf("SHA256SUMS mode %v", fi.Mode())
	}

	// The check must be able to fail: corrupt a file behind the writer's back.
	victim := filepath.Join(dir, filepath.FromSlash(files[7].Path))
	if err := os.WriteFile(victim, []byte("tampered"), 0); err != nil {
		t.Fatal(err)
	}
	if err := sha256sum(); err == nil {
		t.Fatal("sha256sum -c accepted a tampered file")
	}
	res, err := Write(dir, files)
	if err != nil || !reflect.DeepEqual(res.Changed, []string{files[7].Path}) {
		t.Fatalf("repairing write = %+v, %v", res, err)
	}
	if err := sha256sum(); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	f := func(p string) bundle.File { return bundle.File{Path: p, Mode: bundle.ModePublic} }
	cases := []struct {
		name  string
		files []bundle.File
		want  string
	}{
		{"empty", []bundle.File{f("")}, `invalid bundle file "": path is empty`},
		{"dot", []bundle.File{f(".")}, `invalid bundle file ".": path is empty`},
		{"absolute", []bundle.File{f("/etc/passwd")}, `"/etc/passwd": path is absolute`},
		{"dotdot", []bundle.File{f("../x")}, `"../x": path leaves the bundle`},
		{"inner dotdot", []bundle.File{f("a/../b")}, `"a/../b": path is not clean (want "b")`},
		{"dot slash", []bundle.File{f("./a")}, `"./a": path is not clean`},
		{"double slash", []bundle.File{f("a//b")}, `"a//b": path is not clean`},
		{"trailing slash", []bundle.File{f("a/")}, `"a/": path is not clean`},
		{"backslash", []bundle.File{f(`a\b`)}, `path contains a backslash`},
		{"newline", []bundle.File{f("a\nb")}, `path contains a backslash, newline`},
		{"manifest", []bundle.File{f("SHA256SUMS")}, `"SHA256SUMS": path is reserved`},
		{"duplicate", []bundle.File{f("a/b"), f("a/b")}, `"a/b": path appears twice`},
		{"file and directory", []bundle.File{f("a/b"), f("a/b/c")}, `"a/b/c": "a/b" is also a file`},
		{"deep collision", []bundle.File{f("x/y/z/w"), f("x")}, `"x/y/z/w": "x" is also a file`},
		{"setuid", []bundle.File{{Path: "a", Mode: 0o4755}}, `"a": path has mode`},
		{"type bits", []bundle.File{{Path: "a", Mode: fs.ModeDir | 0o755}}, `"a": path has mode`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "bundles")
			dir := filepath.Join(parent, "demo")
			files := append([]bundle.File{f("ok/file")}, tc.files...)
			_, err := Write(dir, files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write error = %v, want %q", err, tc.want)
			}
			if _, err := Check(dir, files); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check error = %v, want %q", err, tc.want)
			}
			if _, err := os.Lstat(parent); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("invalid input created %s", parent)
			}
		})
	}
	for _, d := range []string{".", "/", "..", "a/.."} {
		if _, err := Write(d, nil); err == nil || !strings.Contains(err.Error(), "must end in a name") {
			t.Errorf("Write(%q) error = %v", d, err)
		}
	}
}

func TestErrorsNameOperationAndPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	rec := &faultFS{fileSystem: osFS{}}
	if _, err := Write(dir, smallBundle(), withFS(rec)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	for _, tc := range []struct{ op, want string }{
		{"WriteFile " + filepath.Join(stagingDir(dir), "tree", "admin", "admin.kubeconfig"), "writing admin/admin.kubeconfig: WriteFile " + stagingDir(dir)},
		{"Mkdir " + filepath.Join(stagingDir(dir), "tree", "nodes", "cp-1"), "creating directory nodes/cp-1: Mkdir "},
		{"Rename " + filepath.Join(stagingDir(dir), "tree") + " " + dir, "moving new bundle into " + dir + ": Rename "},
	} {
		if !slices.Contains(rec.ops, tc.op) {
			t.Fatalf("no operation %q in %q", tc.op, rec.ops)
		}
		_, err := Write(dir, smallBundle(), withFS(&faultFS{fileSystem: osFS{}, failOn: tc.op}))
		if !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("error = %v\nwant errors.Is injected, prefix %q", err, tc.want)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("failed first write left %s", dir)
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Errorf("failed write left %v", s)
		}
	}
}

func TestRecover(t *testing.T) {
	files := smallBundle()
	setup := func(t *testing.T) (dir, staging string, before map[string]entry) {
		dir = filepath.Join(t.TempDir(), "demo")
		if _, err := Write(dir, files); err != nil {
			t.Fatal(err)
		}
		return dir, stagingDir(dir), snapshot(t, dir)
	}
	mark := func(t *testing.T, staging string) {
		os.Mkdir(staging, 0o755)
		if err := os.WriteFile(filepath.Join(staging, markerName), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("half-built staging is removed", func(t *testing.T) {
		dir, staging, before := setup(t)
		mark(t, staging)
		os.MkdirAll(filepath.Join(staging, "tree", "nodes"), 0o755)
		os.WriteFile(filepath.Join(staging, "tree", "nodes", "x"), []byte("partial"), 0o644)
		if err := Recover(dir); err != nil {
			t.Fatal(err)
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Errorf("left %v", s)
		}
		if !reflect.DeepEqual(snapshot(t, dir), before) {
			t.Error("recovery changed the live bundle")
		}
	})
	t.Run("empty staging (killed right after mkdir) is removed", func(t *testing.T) {
		dir, staging, _ := setup(t)
		os.Mkdir(staging, 0o755)
		if err := Recover(dir); err != nil {
			t.Fatal(err)
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Errorf("left %v", s)
		}
	})
	t.Run("interrupted fallback swap restores the previous bundle", func(t *testing.T) {
		dir, staging, before := setup(t)
		mark(t, staging)
		if err := os.Rename(dir, filepath.Join(staging, "old")); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(staging, "tree"), 0o755)
		if err := Recover(dir); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(snapshot(t, dir), before) {
			t.Error("previous bundle not restored as it was")
		}
		if s := siblings(t, dir); len(s) != 0 {
			t.Errorf("left %v", s)
		}
	})
	t.Run("Write recovers first", func(t *testing.T) {
		dir, staging, _ := setup(t)
		mark(t, staging)
		os.Rename(dir, filepath.Join(staging, "old"))
		res, err := Write(dir, files)
		if err != nil || res.Wrote {
			t.Fatalf("Write after interrupted swap = %+v, %v; want restored no-op", res, err)
		}
		if err := treeMatches(dir, files); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("staging that is not ours is refused", func(t *testing.T) {
		dir, staging, _ := setup(t)
		os.Mkdir(staging, 0o755)
		os.WriteFile(filepath.Join(staging, "precious"), []byte("x"), 0o644)
		if err := Recover(dir); err == nil || !strings.Contains(err.Error(), "not made by scratchgen") {
			t.Errorf("Recover error = %v", err)
		}
		if _, err := os.Stat(filepath.Join(staging, "precious")); err != nil {
			t.Error("foreign staging content removed")
		}
	})
	t.Run("nothing to do", func(t *testing.T) {
		if err := Recover(filepath.Join(t.TempDir(), "missing", "demo")); err != nil {
			t.Error(err)
		}
	})
}

func TestConcurrentWritersSerialize(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	versions := [][]bundle.File{testBundle(300, 0), testBundle(300, 1)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := Write(dir, versions[(g+i)%2], NoSync()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if treeMatches(dir, versions[0]) != nil && treeMatches(dir, versions[1]) != nil {
		t.Fatalf("after concurrent writes: %v", treeMatches(dir, versions[0]))
	}
	if s := siblings(t, dir); len(s) != 0 {
		t.Errorf("left %v", s)
	}
}

// TestRealExchange makes sure the tests exercise the atomic path: on a filesystem without
// RENAME_EXCHANGE every write would quietly take the fallback.
func TestRealExchange(t *testing.T) {
	for _, root := range []string{t.TempDir(), fastTempDir(t)} {
		a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
		os.Mkdir(a, 0o755)
		os.WriteFile(b, []byte("b"), 0o644)
		if err := (osFS{}).Exchange(a, b); err != nil {
			t.Fatalf("RENAME_EXCHANGE on %s: %v", root, err)
		}
		if fi, err := os.Lstat(b); err != nil || !fi.IsDir() {
			t.Errorf("after exchange %s is not the directory", b)
		}
	}
}
