package writer

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
// once; small identical files are not linked; links survive no-op and partial rewrites.
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
	if inodeOf(t, dir+"/nodes/a/small") == inodeOf(t, dir+"/nodes/b/small") {
		t.Error("small files were linked; only files of LinkThreshold or more should be")
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
