package provision

import (
	"bytes"
	"testing"

	"github.com/scratchgen/scratchgen/generator/model"
)

// TestDecodeInvertsViews: every view decodes back to exactly the files Views put in it
// and the units it enables, with the omitted secrets named in node.bu and user-data.
func TestDecodeInvertsViews(t *testing.T) {
	n := testNode()
	for _, os := range []string{model.OSGeneric, model.OSFlatcar, model.OSFCOS} {
		views, err := Views(n, os, false)
		if err != nil {
			t.Fatal(err)
		}
		rootfs := map[string][]byte{}
		for _, f := range n.Rootfs {
			rootfs[LocalDir+f.Path] = f.Data
		}
		read := func(local string) ([]byte, bool) { d, ok := rootfs[local]; return d, ok }
		for _, v := range views {
			d, err := DecodeIn(v.Path, v.Data, read)
			if err != nil || len(d.Problems) > 0 {
				t.Fatalf("%s %s: %v %v", os, v.Path, err, d.Problems)
			}
			want := 0
			for _, f := range n.Rootfs {
				if f.Secret {
					continue
				}
				want++
				got, ok := d.Files[f.Path]
				if !ok || got.Mode != f.Mode || !bytes.Equal(got.Data, f.Data) {
					t.Errorf("%s %s: %s decoded as %v (present %v), want mode %o and the rootfs bytes", os, v.Path, f.Path, got.Mode, ok, f.Mode)
				}
			}
			if len(d.Files) != want {
				t.Errorf("%s %s: %d files decoded, want %d", os, v.Path, len(d.Files), want)
			}
			if len(d.Units) != len(n.Units) {
				t.Errorf("%s %s: units %v, want %v", os, v.Path, d.Units, n.Units)
			}
			if v.Path != IgnitionFile && len(d.Omitted) != len(secretPaths(n)) {
				t.Errorf("%s %s: omitted %v, want %v", os, v.Path, d.Omitted, secretPaths(n))
			}
		}
	}
	if _, err := Decode("other.json", nil); err == nil {
		t.Error("Decode accepted a name that is not a view")
	}
}

// TestDecodeButaneLocal: node.bu reads each file from rootfs/ at its own path; Decode
// without a reader names the local file, with one it reads it, and any other local file
// (another path, a compressed one, one the node directory lacks) is a problem.
func TestDecodeButaneLocal(t *testing.T) {
	doc := func(entries string) []byte {
		return []byte("variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n" + entries)
	}
	entry := func(p, local, extra string) string {
		return "    - path: " + p + "\n      mode: 0640\n      contents:\n        local: " + local + "\n" + extra
	}
	read := func(local string) ([]byte, bool) {
		if local == "rootfs/etc/a" {
			return []byte("a\n"), true
		}
		return nil, false
	}
	d, err := Decode(ButaneFile, doc(entry("/etc/a", "rootfs/etc/a", "")))
	if err != nil || len(d.Problems) > 0 || d.Files["/etc/a"].Local != "rootfs/etc/a" || d.Files["/etc/a"].Data != nil || d.Files["/etc/a"].Mode != 0o640 {
		t.Fatalf("without a reader: %+v %v", d, err)
	}
	d, err = DecodeIn(ButaneFile, doc(entry("/etc/a", "rootfs/etc/a", "")), read)
	if err != nil || len(d.Problems) > 0 || string(d.Files["/etc/a"].Data) != "a\n" {
		t.Fatalf("with a reader: %+v %v", d, err)
	}
	for name, bad := range map[string]string{
		"another path": entry("/etc/b", "rootfs/etc/a", ""),
		"outside":      entry("/etc/a", "../../admin/kubeconfig", ""),
		"compressed":   entry("/etc/a", "rootfs/etc/a", "        compression: gzip\n"),
		"missing":      entry("/etc/c", "rootfs/etc/c", ""),
	} {
		d, err := DecodeIn(ButaneFile, doc(bad), read)
		if err != nil || len(d.Problems) != 1 || len(d.Files) != 0 {
			t.Errorf("%s: files %v, problems %q, err %v; want one problem and no file", name, d.Files, d.Problems, err)
		}
	}
}
