package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// binServer serves files by URL path, like a release mirror, and lets a test change
// what it serves.
type binServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	gets  map[string]int
}

func newBinServer(t *testing.T, files map[string][]byte) *binServer {
	t.Helper()
	s := &binServer{files: files, gets: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		data, ok := s.files[r.URL.Path]
		s.gets[r.URL.Path]++
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *binServer) set(p string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = data
}

func (s *binServer) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[p]
}

// tgz builds a gzip-compressed tar archive of regular files (names as given).
func tgz(t *testing.T, files map[string][]byte, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range order {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func sha256hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// binFixture is a mirror with the demo release's kubelet and kube-proxy (fake content,
// different per name) under the default URL layout, and a CNI plugins archive.
type binFixture struct {
	srv     *binServer
	kubelet []byte
	bridge  []byte
	archive []byte
}

func newBinFixture(t *testing.T) *binFixture {
	f := &binFixture{kubelet: bytes.Repeat([]byte("kubelet v1.36.3 "), 4096), bridge: []byte("#!/bin/sh\necho bridge\n")}
	f.archive = tgz(t, map[string][]byte{"./bridge": f.bridge, "./host-local": []byte("host-local"), "./README": []byte("readme")}, "./README", "./bridge", "./host-local")
	f.srv = newBinServer(t, map[string][]byte{
		"/release/v1.36.3/bin/linux/amd64/kubelet":    f.kubelet,
		"/release/v1.36.3/bin/linux/amd64/kube-proxy": bytes.Repeat([]byte("kube-proxy v1.36.3 "), 2048),
		"/cni/cni-plugins-linux-amd64.tgz":            f.archive,
	})
	return f
}

// spec is the binaries section for the fixture's mirror.
func (f *binFixture) spec() string {
	return `  binaries:
    url: ` + f.srv.URL + `/release/{version}/bin/linux/{arch}/{name}
    extra:
    - name: cni-plugins
      url: ` + f.srv.URL + `/cni/cni-plugins-linux-{arch}.tgz
      extract:
        ./bridge: /opt/cni/bin/bridge
        ./host-local: /opt/cni/bin/host-local
`
}

const binSpecBase = `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: bins
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.10
  network:
    podCIDR: 10.10.0.0/16
  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  - {name: edge-1, address: 10.0.0.31, roles: [worker], os: flatcar}
`

// TestBinariesPinPullRender drives binaries pin → pull → render --with-binaries through
// the CLI against an in-process mirror, and what goes wrong on the way.
func TestBinariesPinPullRender(t *testing.T) {
	f := newBinFixture(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(binSpecBase+f.spec()), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")

	// Unpinned: listed, nothing carried or referenced, carrying refused.
	if r := imgRun(t, dir, "binaries", "list").must(t, "binaries list"); !strings.Contains(r.out, "  kubelet "+f.srv.URL+"/release/v1.36.3/bin/linux/amd64/kubelet (not pinned)\n    -> /usr/local/bin/kubelet\n") ||
		!strings.Contains(r.out, "    -> /opt/bin/kubelet\n") || !strings.Contains(r.out, "    ./bridge -> /opt/cni/bin/bridge\n") || !strings.Contains(r.err, "not pinned") {
		t.Errorf("binaries list before pinning:\n%s\n%s", r.out, r.err)
	}
	imgRun(t, dir, "render", "-o", "out").must(t, "first render")
	if _, err := os.Stat(filepath.Join(dir, "out/bins/nodes/cp-1/rootfs", paths.BinariesScript)); err == nil {
		t.Errorf("an unpinned render has %s", paths.BinariesScript)
	}
	if r := imgRun(t, dir, "render", "-o", "out", "--with-binaries", "--image-cache", cache); r.code != 1 || !strings.Contains(r.err, "binaries pin") {
		t.Errorf("render --with-binaries unpinned: %+v", r)
	}
	if r := imgRun(t, dir, "binaries", "pull", "--cache", cache); r.code != 1 || !strings.Contains(r.err, "binaries pin") {
		t.Errorf("pull before pin: %+v", r)
	}

	// An archive without a member the spec extracts is refused at pin; the lock stays.
	lockBefore := mustRead(t, filepath.Join(dir, "cluster.lock"))
	f.srv.set("/cni/cni-plugins-linux-amd64.tgz", tgz(t, map[string][]byte{"./bridge": f.bridge}, "./bridge"))
	if r := imgRun(t, dir, "binaries", "pin"); r.code != 1 || !strings.Contains(r.err, "has no member ./host-local") || !strings.Contains(r.err, "the lock is unchanged") {
		t.Errorf("pin of an archive without ./host-local: %+v", r)
	}
	if !bytes.Equal(lockBefore, mustRead(t, filepath.Join(dir, "cluster.lock"))) {
		t.Errorf("a failed pin changed the lock")
	}
	f.srv.set("/cni/cni-plugins-linux-amd64.tgz", f.archive)

	// pin: the hashes of what the mirror serves; the rest of the lock kept.
	pin := imgRun(t, dir, "binaries", "pin").must(t, "binaries pin")
	if !strings.Contains(pin.out, "pinned 3 binaries in cluster.lock") || !strings.Contains(pin.out, "kubelet sha256:"+sha256hex(f.kubelet)+" 65536 bytes (new)") {
		t.Errorf("pin output:\n%s", pin.out)
	}
	lk, err := lock.Parse(mustRead(t, filepath.Join(dir, "cluster.lock")))
	if err != nil {
		t.Fatal(err)
	}
	if p := lk.Binaries[f.srv.URL+"/cni/cni-plugins-linux-amd64.tgz"]; p.SHA256 != sha256hex(f.archive) || len(p.SHA512) != 128 || p.Size != int64(len(f.archive)) {
		t.Errorf("lock pins the archive as %+v", p)
	}
	old, _ := lock.Parse(lockBefore)
	rest := lk.Clone()
	rest.Binaries = nil
	if !bytes.Equal(mustMarshal(t, rest), mustMarshal(t, old)) {
		t.Errorf("pin changed more than the binaries of the lock")
	}

	// Fetched: the script, its unit, Ignition's remote files; no binary in rootfs.
	imgRun(t, dir, "render", "-o", "out").must(t, "render, binaries fetched")
	root := filepath.Join(dir, "out/bins/nodes/worker-1/rootfs")
	script := mustRead(t, filepath.Join(root, paths.BinariesScript))
	if !strings.Contains(string(script), f.srv.URL+"/release/v1.36.3/bin/linux/amd64/kubelet "+sha256hex(f.kubelet)) {
		t.Errorf("install-binaries.sh does not fetch the pinned kubelet:\n%s", script)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/kubelet")); err == nil {
		t.Errorf("a fetched render carries the kubelet")
	}
	bu := string(mustRead(t, filepath.Join(dir, "out/bins/nodes/worker-1/node.bu")))
	if !strings.Contains(bu, "source: "+f.srv.URL+"/release/v1.36.3/bin/linux/amd64/kubelet\n        verification:\n          hash: sha512-"+lk.Binaries[f.srv.URL+"/release/v1.36.3/bin/linux/amd64/kubelet"].SHA512) {
		t.Errorf("node.bu does not fetch the kubelet with its hash:\n%s", bu)
	}
	units := string(mustRead(t, filepath.Join(root, paths.UnitList)))
	if i, j := strings.Index(units, paths.BinariesService+"\n"), strings.Index(units, paths.ContainerdService+"\n"); i < 0 || j < i {
		t.Errorf("%s does not start %s before %s:\n%s", paths.UnitList, paths.BinariesService, paths.ContainerdService, units)
	}
	// The script, run for real (curl, sha256sum, tar) into an image root: installs
	// everything; a second run fetches nothing; a tampered mirror is refused.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("SKIPPED: running install-binaries.sh needs curl (the CI installs it)")
	} else {
		img := t.TempDir()
		run := func() (string, error) {
			out, err := exec.Command("sh", filepath.Join(root, paths.BinariesScript), img).CombinedOutput()
			return string(out), err
		}
		if out, err := run(); err != nil {
			t.Fatalf("install-binaries.sh: %v\n%s", err, out)
		}
		for p, want := range map[string][]byte{"usr/local/bin/kubelet": f.kubelet, "opt/cni/bin/bridge": f.bridge} {
			got, err := os.ReadFile(filepath.Join(img, p))
			fi, _ := os.Stat(filepath.Join(img, p))
			if err != nil || !bytes.Equal(got, want) || fi.Mode().Perm() != 0o755 {
				t.Errorf("install-binaries.sh installed %s: %v, mode %v, %d bytes", p, err, fi, len(got))
			}
		}
		before := f.srv.count("/release/v1.36.3/bin/linux/amd64/kubelet") + f.srv.count("/cni/cni-plugins-linux-amd64.tgz")
		if out, err := run(); err != nil {
			t.Fatalf("install-binaries.sh again: %v\n%s", err, out)
		}
		if after := f.srv.count("/release/v1.36.3/bin/linux/amd64/kubelet") + f.srv.count("/cni/cni-plugins-linux-amd64.tgz"); after != before {
			t.Errorf("a second run fetched again (%d → %d GETs)", before, after)
		}
		tampered := bytes.Clone(f.kubelet)
		tampered[100] ^= 1
		f.srv.set("/release/v1.36.3/bin/linux/amd64/kubelet", tampered)
		os.Remove(filepath.Join(img, "usr/local/bin/kubelet"))
		os.Remove(filepath.Join(img, paths.DownloadsDir, sha256hex(f.kubelet)))
		out, err := run()
		if err == nil || !strings.Contains(out, "/release/v1.36.3/bin/linux/amd64/kubelet has SHA-256 "+sha256hex(tampered)+", not the pinned") {
			t.Errorf("install-binaries.sh with a tampered mirror: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(img, "usr/local/bin/kubelet")); err == nil {
			t.Errorf("install-binaries.sh installed a tampered kubelet")
		}
		f.srv.set("/release/v1.36.3/bin/linux/amd64/kubelet", f.kubelet)
	}

	// pull: a tampered mirror is refused naming the URL, nothing stored; then twice.
	tampered := bytes.Clone(f.archive)
	tampered[len(tampered)/2] ^= 1
	f.srv.set("/cni/cni-plugins-linux-amd64.tgz", tampered)
	if r := imgRun(t, dir, "binaries", "pull", "--cache", cache); r.code != 1 || !strings.Contains(r.err, "pulling "+f.srv.URL+"/cni/cni-plugins-linux-amd64.tgz: the server sent SHA-256") {
		t.Errorf("pull from a tampered mirror: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(cache, "blobs/sha256", sha256hex(tampered))); err == nil {
		t.Errorf("the tampered download was stored")
	}
	f.srv.set("/cni/cni-plugins-linux-amd64.tgz", f.archive)
	if r := imgRun(t, dir, "binaries", "pull", "--cache", cache).must(t, "binaries pull"); strings.Count(r.out, "pulled (") != 3 {
		t.Errorf("pull output:\n%s", r.out)
	}
	if r := imgRun(t, dir, "binaries", "pull", "--cache", cache).must(t, "second pull"); strings.Count(r.out, " cached\n") != 3 {
		t.Errorf("second pull output:\n%s", r.out)
	}

	// Carried: every node's binaries in rootfs/, 0755, identical bytes stored once.
	imgRun(t, dir, "render", "-o", "out", "--with-binaries", "--image-cache", cache).must(t, "render --with-binaries")
	for p, want := range map[string][]byte{
		"cp-1/rootfs/usr/local/bin/kubelet": f.kubelet, "edge-1/rootfs/opt/bin/kubelet": f.kubelet,
		"worker-1/rootfs/opt/cni/bin/bridge": f.bridge,
	} {
		file := filepath.Join(dir, "out/bins/nodes", p)
		got, err := os.ReadFile(file)
		fi, _ := os.Stat(file)
		if err != nil || !bytes.Equal(got, want) || fi.Mode().Perm() != 0o755 {
			t.Errorf("carried %s: %v, %v", p, err, fi)
		}
	}
	a, _ := os.Stat(filepath.Join(dir, "out/bins/nodes/cp-1/rootfs/usr/local/bin/kubelet"))
	b, _ := os.Stat(filepath.Join(dir, "out/bins/nodes/worker-1/rootfs/usr/local/bin/kubelet"))
	if !os.SameFile(a, b) {
		t.Errorf("the same kubelet on two nodes is stored twice")
	}
	if _, err := os.Stat(filepath.Join(dir, "out/bins/nodes/cp-1/rootfs", paths.BinariesScript)); err == nil {
		t.Errorf("a carried render still has %s", paths.BinariesScript)
	}
	bu = string(mustRead(t, filepath.Join(dir, "out/bins/nodes/worker-1/node.bu")))
	if !strings.Contains(bu, "# omitted binaries (deliver rootfs/ by rsync or bake them into the machine image): /opt/cni/bin/bridge /opt/cni/bin/host-local /usr/local/bin/kube-proxy /usr/local/bin/kubelet\n") || strings.Contains(bu, f.srv.URL) {
		t.Errorf("node.bu of a carried render:\n%.600s", bu)
	}

	// Once pinned, a spec needing a download the lock does not pin (here: another mirror
	// path) is refused by render and plan, not rendered without its binaries.
	moved := strings.Replace(binSpecBase+f.spec(), "/release/{version}", "/k8s/release/{version}", 1)
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"render", "plan"} {
		if r := imgRun(t, dir, cmd, "-o", "out"); r.code != 1 || !strings.Contains(r.err, "the lock pins this cluster's binaries, but not: "+f.srv.URL+"/k8s/release/v1.36.3/bin/linux/amd64/kube-proxy") {
			t.Errorf("%s with an unpinned download once binaries are pinned: %+v", cmd, r)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(binSpecBase+f.spec()), 0o644); err != nil {
		t.Fatal(err)
	}

	// A tampered cache is refused, naming the download and the cache file.
	blob := filepath.Join(cache, "blobs/sha256", sha256hex(f.kubelet))
	data := mustRead(t, blob)
	data[7] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := imgRun(t, dir, "render", "-o", "out", "--with-binaries", "--image-cache", cache); r.code != 1 ||
		!strings.Contains(r.err, f.srv.URL+"/release/v1.36.3/bin/linux/amd64/kubelet: the cache's "+blob+" is not what the lock pins") {
		t.Errorf("render from a tampered cache: %+v", r)
	}
}
