package binaries

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
)

func archive(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := []byte(h.Linkname) // the test's content, when a regular file
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func pin(data []byte) lock.Binary {
	a, b := sha256.Sum256(data), sha512.Sum512(data)
	return lock.Binary{SHA256: hex.EncodeToString(a[:]), SHA512: hex.EncodeToString(b[:]), Size: int64(len(data))}
}

func TestExtract(t *testing.T) {
	a := archive(t,
		tar.Header{Name: "./bridge", Typeflag: tar.TypeReg, Linkname: "bridge!"},
		tar.Header{Name: "./link", Typeflag: tar.TypeSymlink, Linkname: "bridge"},
		tar.Header{Name: "bin/", Typeflag: tar.TypeDir},
		tar.Header{Name: "bin/runc", Typeflag: tar.TypeReg, Linkname: "runc!"})
	got, err := Extract(a, []string{"./bridge", "bin/runc"})
	if err != nil || string(got["./bridge"]) != "bridge!" || string(got["bin/runc"]) != "runc!" || len(got) != 2 {
		t.Fatalf("Extract = %q, %v", got, err)
	}
	// Names match exactly: "bridge" is not "./bridge".
	if _, err := Extract(a, []string{"bridge"}); err == nil || !strings.Contains(err.Error(), "has no member bridge (it has: ./bridge, ./link, bin/, bin/runc)") {
		t.Errorf("a missing member: %v", err)
	}
	if _, err := Extract(a, []string{"./link"}); err == nil || !strings.Contains(err.Error(), "./link is not a regular file") {
		t.Errorf("a symlink member: %v", err)
	}
	if _, err := Extract([]byte("not gzip"), []string{"x"}); err == nil || !strings.Contains(err.Error(), "not a gzip-compressed tar archive") {
		t.Errorf("not an archive: %v", err)
	}
}

func TestCheck(t *testing.T) {
	data := []byte("kubelet")
	p := pin(data)
	if err := Check(data, p.SHA256, p.SHA512, p.Size); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		data []byte
		pin  lock.Binary
		want string
	}{
		"size":   {[]byte("kubelet!"), p, "8 bytes, but the lock pins 7"},
		"sha256": {[]byte("kubelex"), p, "SHA-256 "},
		"sha512": {data, lock.Binary{SHA256: p.SHA256, SHA512: strings.Repeat("0", 128), Size: p.Size}, "SHA-512 "},
	} {
		if err := Check(c.data, c.pin.SHA256, c.pin.SHA512, c.pin.Size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// downloads is a node's downloads: a single file, and an archive with two members.
func downloads(t *testing.T) ([]model.Download, map[string][]byte) {
	kubelet := []byte("the kubelet")
	cni := archive(t, tar.Header{Name: "./bridge", Typeflag: tar.TypeReg, Linkname: "bridge!"},
		tar.Header{Name: "./host-local", Typeflag: tar.TypeReg, Linkname: "host-local!"})
	ds := []model.Download{
		{Name: "kubelet", URL: "https://m.example/v1/kubelet", Pin: pin(kubelet), Pinned: true, Files: []model.DownloadFile{{Path: "/usr/local/bin/kubelet"}}},
		{Name: "cni", URL: "https://m.example/cni.tgz", Pin: pin(cni), Pinned: true, Files: []model.DownloadFile{
			{Member: "./bridge", Path: "/opt/cni/bin/bridge"}, {Member: "./host-local", Path: "/opt/cni/bin/host-local"}}},
	}
	return ds, map[string][]byte{ds[0].URL: kubelet, ds[1].URL: cni}
}

func TestCarried(t *testing.T) {
	ds, data := downloads(t)
	files, err := Carried(ds, data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/opt/cni/bin/bridge": "bridge!", "/opt/cni/bin/host-local": "host-local!", "/usr/local/bin/kubelet": "the kubelet"}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d", len(files), len(want))
	}
	for _, f := range files {
		if want[f.Path] != string(f.Data) || f.Mode != bundle.ModeExecute || !f.Binary {
			t.Errorf("%s: %q mode %v binary %v", f.Path, f.Data, f.Mode, f.Binary)
		}
	}
	meta := Metadata(ds, map[string][]byte{"/opt/cni/bin/bridge": []byte("bridge!")})
	if s := sha256.Sum256([]byte("bridge!")); meta[1].Files[0].SHA256 != hex.EncodeToString(s[:]) || meta[1].Files[1].SHA256 != "" || meta[0].Files[0].SHA256 != ds[0].Pin.SHA256 {
		t.Errorf("metadata files: %+v %+v", meta[0].Files, meta[1].Files)
	}
	// What does not match its pin is refused, naming the download.
	bad := map[string][]byte{ds[0].URL: []byte("the kubelex"), ds[1].URL: data[ds[1].URL]}
	if _, err := Carried(ds, bad); err == nil || !strings.Contains(err.Error(), "kubelet (https://m.example/v1/kubelet): SHA-256") {
		t.Errorf("a tampered download: %v", err)
	}
	delete(bad, ds[0].URL)
	if _, err := Carried(ds, bad); err == nil || !strings.Contains(err.Error(), "not in the cache") {
		t.Errorf("a missing download: %v", err)
	}
}

// TestScript: install-binaries.sh passes sh -n and shellcheck, and names every pin.
func TestScript(t *testing.T) {
	ds, _ := downloads(t)
	meta := Metadata(ds, nil)
	script := Script(meta)
	for _, want := range []string{
		"fetch https://m.example/v1/kubelet " + ds[0].Pin.SHA256,
		`extract "$stage/` + ds[1].Pin.SHA256 + `" ./host-local "$root"/opt/cni/bin/host-local`,
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	p := filepath.Join(t.TempDir(), "install-binaries.sh")
	if err := os.WriteFile(p, script, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	if sc, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("NOTE: shellcheck is not installed; the script gets only `sh -n` (apt-get install shellcheck)")
	} else if out, err := exec.Command(sc, "--shell=sh", "--severity=style", p).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	remote := Remote(meta)
	if len(remote) != 2 || remote[0].Path != "/usr/local/bin/kubelet" || remote[0].Mode != bundle.ModeExecute ||
		remote[1].Path != StagePath(ds[1].Pin.SHA256) || remote[1].Mode != bundle.ModePublic || remote[1].SHA512 != ds[1].Pin.SHA512 {
		t.Errorf("Remote = %+v", remote)
	}
}
