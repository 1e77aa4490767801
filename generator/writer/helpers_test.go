package writer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// testBundle returns about n files, 40 per node. Version 1 differs from version 0: every
// 3rd file has new content of the same size, every 17th another mode, every 10th is gone,
// retired/ is gone and n/10+1 files are new.
func testBundle(n, version int) []bundle.File {
	dirs := []string{"rootfs/etc/kubernetes/pki", "rootfs/etc/kubernetes/manifests",
		"rootfs/etc/systemd/system", "rootfs/usr/local/bin", "."}
	var files []bundle.File
	for i := range n {
		node, k := i/40, i%40
		if version == 1 && i%10 == 1 {
			continue
		}
		rev := 0
		if version == 1 && i%3 == 0 {
			rev = 1
		}
		mode := bundle.ModePublic
		switch {
		case k%7 == 0:
			mode = bundle.ModeSecret
		case k%11 == 5:
			mode = bundle.ModeExecute
		}
		if version == 1 && i%17 == 0 {
			mode ^= 0o044 // 0644 <-> 0600, 0755 -> 0711
		}
		line := fmt.Sprintf("node-%04d file-%02d rev-%d\n", node, k, rev)
		files = append(files, bundle.File{
			Path: path.Join(fmt.Sprintf("nodes/node-%04d", node), dirs[k%len(dirs)], fmt.Sprintf("file-%02d", k)),
			Mode: mode,
			Data: bytes.Repeat([]byte(line), 10+i%40),
		})
	}
	if version == 0 {
		files = append(files, bundle.File{Path: "retired/notes/old.txt", Mode: bundle.ModePublic, Data: []byte("old\n")})
	} else {
		for j := range n/10 + 1 {
			files = append(files, bundle.File{Path: fmt.Sprintf("nodes/node-new/file-%04d", j), Mode: bundle.ModePublic, Data: []byte(fmt.Sprint(j))})
		}
	}
	files = append(files, bundle.File{Path: "README", Mode: bundle.ModePublic, Data: []byte("bundle\n")})
	return files
}

// treeMatches checks, independently of the writer's code, that dir holds exactly files
// plus a correct SHA256SUMS, with exact modes and 0755 directories.
func treeMatches(dir string, files []bundle.File) error {
	want := map[string]bundle.File{}
	var sums strings.Builder
	sorted := slices.Clone(files)
	bundle.Sort(sorted)
	for _, f := range sorted {
		want[f.Path] = f
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(f.Data), f.Path)
	}
	want["SHA256SUMS"] = bundle.File{Path: "SHA256SUMS", Mode: 0o644, Data: []byte(sums.String())}

	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if fi.Mode() != fs.ModeDir|0o755 {
				return fmt.Errorf("directory %s has mode %v", rel, fi.Mode())
			}
			return nil
		}
		f, ok := want[rel]
		if !ok {
			return fmt.Errorf("unexpected %s", rel)
		}
		if fi.Mode() != f.Mode {
			return fmt.Errorf("%s has mode %v, want %v", rel, fi.Mode(), f.Mode)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			return fmt.Errorf("%s has other content", rel)
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(want) {
		return fmt.Errorf("%d files, want %d", seen, len(want))
	}
	// Every line of the manifest on disk must match the file on disk.
	manifest, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(manifest), "\n"), "\n") {
		if len(line) < 67 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, line[66:]))
		if err != nil {
			return err
		}
		if fmt.Sprintf("%x", sha256.Sum256(data)) != line[:64] {
			return fmt.Errorf("SHA256SUMS line does not match %s", line[66:])
		}
	}
	return nil
}

// entry is one file or directory as seen from outside.
type entry struct {
	mode  fs.FileMode
	data  string
	ino   uint64
	mtime int64
}

// snapshot records dir, or returns nil if it does not exist.
func snapshot(t testing.TB, dir string) map[string]entry {
	t.Helper()
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode(), ino: fi.Sys().(*syscall.Stat_t).Ino, mtime: fi.ModTime().UnixNano()}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.data = string(data)
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// siblings lists what sits next to dir in its parent.
func siblings(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != filepath.Base(dir) {
			out = append(out, e.Name())
		}
	}
	return out
}

var errInjected = errors.New("injected fault")

// faultFS records every operation and fails the failAt-th one (1-based; 0 = none).
// With killAt set it instead SIGKILLs its own process just before the killAt-th.
type faultFS struct {
	fileSystem
	failAt int
	// failOn fails the operation with exactly this description (op and path), whichever
	// position it takes: the writer stages files in parallel, so positions vary.
	failOn string
	killAt int
	mu     sync.Mutex // the writer compares files in parallel
	ops    []string
}

func (f *faultFS) op(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op+" "+name)
	if len(f.ops) == f.killAt {
		syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
		select {}
	}
	if len(f.ops) == f.failAt || f.failOn != "" && op+" "+name == f.failOn {
		return &os.PathError{Op: op, Path: name, Err: errInjected}
	}
	return nil
}

func (f *faultFS) Lstat(name string) (fs.FileInfo, error) {
	if err := f.op("Lstat", name); err != nil {
		return nil, err
	}
	return f.fileSystem.Lstat(name)
}

func (f *faultFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.op("ReadDir", name); err != nil {
		return nil, err
	}
	return f.fileSystem.ReadDir(name)
}

func (f *faultFS) ReadFile(name string) ([]byte, error) {
	if err := f.op("ReadFile", name); err != nil {
		return nil, err
	}
	return f.fileSystem.ReadFile(name)
}

func (f *faultFS) Same(name string, data []byte, mode fs.FileMode) (bool, error) {
	if err := f.op("Same", name); err != nil {
		return false, err
	}
	return f.fileSystem.Same(name, data, mode)
}

func (f *faultFS) Mkdir(name string) error {
	if err := f.op("Mkdir", name); err != nil {
		return err
	}
	return f.fileSystem.Mkdir(name)
}

func (f *faultFS) WriteFile(name string, data []byte, mode fs.FileMode) error {
	if err := f.op("WriteFile", name); err != nil {
		return err
	}
	return f.fileSystem.WriteFile(name, data, mode)
}

func (f *faultFS) Link(oldname, newname string) error {
	if err := f.op("Link", oldname+" "+newname); err != nil {
		return err
	}
	return f.fileSystem.Link(oldname, newname)
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.op("Rename", oldname+" "+newname); err != nil {
		return err
	}
	return f.fileSystem.Rename(oldname, newname)
}

func (f *faultFS) Exchange(a, b string) error {
	if err := f.op("Exchange", a+" "+b); err != nil {
		return err
	}
	return f.fileSystem.Exchange(a, b)
}

func (f *faultFS) RemoveAll(name string) error {
	if err := f.op("RemoveAll", name); err != nil {
		return err
	}
	return f.fileSystem.RemoveAll(name)
}

func (f *faultFS) Sync(name string) error {
	if err := f.op("Sync", name); err != nil {
		return err
	}
	return f.fileSystem.Sync(name)
}

// mutated reports the operations that change the disk.
func (f *faultFS) mutated() []string {
	var out []string
	for _, op := range f.ops {
		if !strings.HasPrefix(op, "Lstat ") && !strings.HasPrefix(op, "ReadDir ") && !strings.HasPrefix(op, "ReadFile ") && !strings.HasPrefix(op, "Same ") {
			out = append(out, op)
		}
	}
	return out
}

// noExchangeFS is a filesystem without RENAME_EXCHANGE, to exercise the fallback.
type noExchangeFS struct{ fileSystem }

func (noExchangeFS) Exchange(a, b string) error {
	return &os.LinkError{Op: "renameat2 RENAME_EXCHANGE", Old: a, New: b, Err: unix.EINVAL}
}

// fastTempDir is a temporary directory on tmpfs when there is one. The crash and fault
// tests do thousands of creates and unlinks; what they check (link, rename and
// RENAME_EXCHANGE semantics) is the VFS's, the same on every Linux filesystem. Setting
// TMPDIR picks the filesystem explicitly.
func fastTempDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && os.Getenv("TMPDIR") == "" {
		if dir, err := os.MkdirTemp("/dev/shm", "scratchgen-writer-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
