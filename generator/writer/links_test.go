package writer

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestIdenticalLargeFilesAreHardLinks: the same image archive on three nodes is stored
// once; small identical files are linked only to the same path of another node, never to
// another path; links survive no-op and partial rewrites.
func TestIdenticalLargeFilesAreHardLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	big := bytes.Repeat([]byte("archive"), LinkThreshold/7+1)
	other := append(bytes.Clone(big), '!')
	files := func(third []byte) []bundle.File {
		return []bundle.File{
			{Path: "nodes/a/img.tar", Mode: bundle.ModePublic, Data: big},
			{Path: "nodes/b/img.tar", Mode: bundle.ModePublic, Data: big},
			{Path: "nodes/c/img.tar", Mode: bundle.ModePublic, Data: third},
			{Path: "nodes/a/small", Mode: bundle.ModePublic, Data: []byte("x")},
			{Path: "nodes/b/small", Mode: bundle.ModePublic, Data: []byte("x")},
			{Path: "nodes/b/small2", Mode: bundle.ModePublic, Data: []byte("x")},
			{Path: "top", Mode: bundle.ModePublic, Data: []byte("x")},
			{Path: "nodes/c/secret.tar", Mode: bundle.ModeSecret, Data: big},
		}
	}
	if _, err := Write(dir, files(big), NoSync()); err != nil {
		t.Fatal(err)
	}
	a, b, c := inodeOf(t, dir+"/nodes/a/img.tar"), inodeOf(t, dir+"/nodes/b/img.tar"), inodeOf(t, dir+"/nodes/c/img.tar")
	if a != b || b != c {
		t.Errorf("identical archives not hard-linked: inodes %d %d %d", a, b, c)
	}
	small := inodeOf(t, dir+"/nodes/a/small")
	if small != inodeOf(t, dir+"/nodes/b/small") {
		t.Error("the same small file of two nodes is stored twice")
	}
	if small == inodeOf(t, dir+"/nodes/b/small2") || small == inodeOf(t, dir+"/top") {
		t.Error("small files at different paths were linked (a copy of one node's tree would tie them together)")
	}
	if inodeOf(t, dir+"/nodes/c/secret.tar") == a {
		t.Error("files with different modes share an inode (a chmod would change both)")
	}
	if res, err := Write(dir, files(big), NoSync()); err != nil || res.Wrote {
		t.Fatalf("no-op rewrite: wrote=%v err=%v", res.Wrote, err)
	}
	if _, err := Write(dir, files(other), NoSync()); err != nil {
		t.Fatal(err)
	}
	if inodeOf(t, dir+"/nodes/a/img.tar") != a || inodeOf(t, dir+"/nodes/b/img.tar") != a {
		t.Error("unchanged archives lost their inode when another node's changed")
	}
	if inodeOf(t, dir+"/nodes/c/img.tar") == a {
		t.Error("a changed archive still shares the old inode")
	}
	got, _ := os.ReadFile(dir + "/nodes/c/img.tar")
	if !bytes.Equal(got, other) {
		t.Error("changed archive has wrong content")
	}
}

// emlinkFS refuses every hard link as an inode at its link limit does (ext4: 65,000).
type emlinkFS struct{ fileSystem }

func (emlinkFS) Link(oldname, newname string) error {
	return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: unix.EMLINK}
}

// TestLinkLimitWritesCopies: where the filesystem refuses another link to an inode, the
// file is written as a copy instead, on a first write and on a rewrite of unchanged files.
func TestLinkLimitWritesCopies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	files := []bundle.File{
		{Path: "nodes/a/ca.crt", Mode: bundle.ModePublic, Data: []byte("ca")},
		{Path: "nodes/b/ca.crt", Mode: bundle.ModePublic, Data: []byte("ca")},
		{Path: "nodes/c/ca.crt", Mode: bundle.ModePublic, Data: []byte("ca")},
	}
	for round, fsys := range []fileSystem{emlinkFS{newOSFS()}, emlinkFS{newOSFS()}} {
		if round == 1 {
			files = append(files, bundle.File{Path: "nodes/d/ca.crt", Mode: bundle.ModePublic, Data: []byte("ca")})
		}
		if _, err := Write(dir, files, NoSync(), withFS(fsys)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, f := range files {
			got, err := os.ReadFile(filepath.Join(dir, f.Path))
			if err != nil || !bytes.Equal(got, f.Data) {
				t.Fatalf("round %d: %s = %q, %v", round, f.Path, got, err)
			}
		}
		if inodeOf(t, dir+"/nodes/a/ca.crt") == inodeOf(t, dir+"/nodes/b/ca.crt") {
			t.Fatalf("round %d: linked although every link was refused", round)
		}
	}
}

// TestReadsShareLinkedFiles: Load and ReadBundle read a file with several links once, the
// paths sharing one copy in memory, with the bytes every path has on disk; files that are
// not linked are read on their own.
func TestReadsShareLinkedFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	big := bytes.Repeat([]byte("routes "), LinkThreshold/7+1)
	files := []bundle.File{
		{Path: "nodes/a/routes", Mode: bundle.ModePublic, Data: big},
		{Path: "nodes/b/routes", Mode: bundle.ModePublic, Data: big},
		{Path: "nodes/c/routes", Mode: bundle.ModePublic, Data: big},
		{Path: "nodes/a/own", Mode: bundle.ModePublic, Data: []byte("a")},
		{Path: "nodes/b/own", Mode: bundle.ModeSecret, Data: []byte("a")}, // another mode: not linked
	}
	if _, err := Write(dir, files, NoSync()); err != nil {
		t.Fatal(err)
	}
	same := func(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"nodes/a/routes", "nodes/b/routes", "nodes/c/routes"} {
		if !bytes.Equal(l.Files[p].Data, big) {
			t.Fatalf("Load: %s holds other bytes", p)
		}
	}
	if !same(l.Files["nodes/a/routes"].Data, l.Files["nodes/c/routes"].Data) {
		t.Error("Load read one inode twice: the linked routes tables are two copies in memory")
	}
	if same(l.Files["nodes/a/own"].Data, l.Files["nodes/b/own"].Data) {
		t.Error("Load shares the memory of two files that are not linked")
	}
	// ReadBundle reads what changed: here every routes table (the wanted one differs).
	want := append([]bundle.File(nil), files...)
	for i := range 3 {
		want[i].Data = append(bytes.Clone(big), '\n')
	}
	old, _, err := ReadBundle(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, f := range old {
		got[f.Path] = f.Data
	}
	for _, p := range []string{"nodes/a/routes", "nodes/b/routes", "nodes/c/routes"} {
		if !bytes.Equal(got[p], big) {
			t.Fatalf("ReadBundle: %s holds other bytes", p)
		}
	}
	if !same(got["nodes/a/routes"], got["nodes/b/routes"]) || !same(got["nodes/b/routes"], got["nodes/c/routes"]) {
		t.Error("ReadBundle read one inode three times")
	}
	// A path relinked to another inode with the same size is read anew.
	p := filepath.Join(dir, "nodes", "c", "routes")
	other := bytes.Repeat([]byte("other  "), LinkThreshold/7+1)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.Files["nodes/c/routes"].Data, other) || !bytes.Equal(l.Files["nodes/a/routes"].Data, big) {
		t.Error("Load gave a path the content of another inode")
	}
}
