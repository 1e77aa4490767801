package provision

import (
	"bytes"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
)

// TestImageArchivesStayOutOfViews: image archives are delivered with rootfs/, never
// through user-data or Ignition, and the views say so.
func TestImageArchivesStayOutOfViews(t *testing.T) {
	archive := bytes.Repeat([]byte("layer-bytes-"), 4096)
	n := &bundle.Node{Name: "n1", Units: []string{"kubelet.service"}, Rootfs: []bundle.File{
		{Path: "/etc/hello.conf", Mode: bundle.ModePublic, Data: []byte("hello\n")},
		{Path: "/var/lib/scratchgen/images/registry.k8s.io_pause_3.10.1.tar", Mode: bundle.ModePublic, Data: archive},
	}}
	views, err := Views(n, model.OSGeneric, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if bytes.Contains(v.Data, []byte("registry.k8s.io_pause_3.10.1.tar")) != (v.Path != IgnitionFile) {
			t.Errorf("%s: the archive path should be named in the omitted-archives comment of node.bu and user-data only", v.Path)
		}
		if v.Path != IgnitionFile && !strings.Contains(string(v.Data), omittedImagesPrefix) {
			t.Errorf("%s lacks the omitted-archives comment", v.Path)
		}
		if len(v.Data) > len(archive)/2 {
			t.Errorf("%s is %d bytes: the archive was embedded", v.Path, len(v.Data))
		}
		if !strings.Contains(string(v.Data), "hello.conf") {
			t.Errorf("%s lost an ordinary file", v.Path)
		}
	}
}
