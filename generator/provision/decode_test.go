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
		for _, v := range views {
			d, err := Decode(v.Path, v.Data)
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
