package cli

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/scratchgen/scratchgen/generator/lock"
)

// imgResult is one scratchgen run: exit code and output.
type imgResult struct {
	code     int
	out, err string
}

// imgRun runs scratchgen in dir as a user would (relative paths), with a fixed clock
// and secret.
func imgRun(t *testing.T, dir string, args ...string) imgResult {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	env := Env{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }, Random: bytes.NewReader([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-"))}
	code := Exit(Run(args, stdio, env), stdio)
	return imgResult{code, out.String(), errb.String()}
}

func (r imgResult) must(t *testing.T, what string) imgResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", what, r.code, r.out, r.err)
	}
	return r
}

// imgRegistry serves, on an in-process registry, every image the demo spec needs under
// its real repository names: pause as a linux/amd64 + linux/arm64 + linux/s390x index,
// the rest as single random images. It returns the host and the digest of each tag.
func imgRegistry(t *testing.T) (string, map[string]string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	digests := map[string]string{}
	for _, repo := range []string{"kube-apiserver:v1.36.3", "kube-controller-manager:v1.36.3", "kube-scheduler:v1.36.3", "kube-proxy:v1.36.3", "etcd:3.6.8-0", "coredns/coredns:v1.14.1"} {
		img, err := random.Image(48<<10, 2) // archives above writer.LinkThreshold, so identical ones are hard-linked
		if err != nil {
			t.Fatal(err)
		}
		ref := host + "/" + repo
		if err := remote.Write(imgRef(t, ref), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[ref] = d.String()
	}
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img, _ := random.Image(2048, 1)
		cf, _ := img.ConfigFile()
		cf.OS, cf.Architecture = "linux", arch
		img, _ = mutate.ConfigFile(img, cf)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref := host + "/pause:3.10.1"
	if err := remote.WriteIndex(imgRef(t, ref), idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	digests[ref] = d.String()
	return host, digests
}

func imgRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// imgSpec is three control-plane+etcd nodes and two workers, images from host.
func imgSpec(host string) string {
	return `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: imgs
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.100
  network:
    podCIDR: 10.10.0.0/16
  images:
    registry: ` + host + `
  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: cp-2, address: 10.0.0.11, roles: [control-plane, etcd]}
  - {name: cp-3, address: 10.0.0.12, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  - {name: worker-2, address: 10.0.0.22, roles: [worker]}
`
}

var imageLine = regexp.MustCompile(`(?m)^\s*(?:- )?image: (\S+)$`)

// TestImagesPinPullRenderEndToEnd drives the real pin → pull → render --with-images path
// through the CLI against an in-process registry.
func TestImagesPinPullRenderEndToEnd(t *testing.T) {
	host, digests := imgRegistry(t)
	dir := t.TempDir()
	bins := newBinFixture(t) // --require-pinned needs the binaries pinned too
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(imgSpec(host)+bins.spec()), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")

	// Unpinned: list by tag, render warns, --require-pinned and embedding refuse.
	ls := imgRun(t, dir, "images", "list").must(t, "images list")
	if !strings.Contains(ls.out, "# node cp-1 (control-plane, etcd)\n"+host+"/pause:3.10.1\n") || !strings.Contains(ls.err, "not pinned") {
		t.Errorf("images list before pinning:\n%s\n%s", ls.out, ls.err)
	}
	if r := imgRun(t, dir, "images", "pull", "--cache", cache); r.code != 1 || !strings.Contains(r.err, "images pin") {
		t.Errorf("pull before pin: %+v", r)
	}
	r := imgRun(t, dir, "render", "-o", "out").must(t, "first render")
	if !strings.Contains(r.err, "not pinned") {
		t.Errorf("unpinned render does not warn: %s", r.err)
	}
	before, err := lock.Parse(mustRead(t, filepath.Join(dir, "cluster.lock")))
	if err != nil {
		t.Fatal(err)
	}
	if r := imgRun(t, dir, "render", "-o", "out", "--require-pinned"); r.code != 1 || !strings.Contains(r.err, "images pin") {
		t.Errorf("render --require-pinned unpinned: %+v", r)
	}

	// pin: digests of what the registry serves, the rest of the lock kept.
	pin := imgRun(t, dir, "images", "pin", "--insecure").must(t, "images pin")
	if !strings.Contains(pin.out, "pinned 7 images in cluster.lock") || !strings.Contains(pin.out, "[linux/amd64, linux/arm64] (new)") {
		t.Errorf("pin output:\n%s", pin.out)
	}
	after, err := lock.Parse(mustRead(t, filepath.Join(dir, "cluster.lock")))
	if err != nil {
		t.Fatal(err)
	}
	for tag, d := range digests {
		if after.Images[tag].Digest != d {
			t.Errorf("lock pins %s to %s, registry serves %s", tag, after.Images[tag].Digest, d)
		}
	}
	if p := after.Images[host+"/pause:3.10.1"].Platforms; len(p) != 2 || p["linux/amd64"] == "" || p["linux/arm64"] == "" {
		t.Errorf("pause platforms %v", p)
	}
	rest := after.Clone()
	rest.Images = before.Images
	if len(before.PodCIDRs) != 5 || len(before.Certificates) == 0 || !bytes.Equal(mustMarshal(t, rest), mustMarshal(t, before)) {
		t.Errorf("pin changed more than the images of the lock")
	}
	if r := imgRun(t, dir, "images", "pin").must(t, "second pin"); !strings.Contains(r.out, "is up to date") {
		t.Errorf("second pin: %s", r.out)
	}

	// pull, twice: the second fetches nothing.
	if r := imgRun(t, dir, "images", "pull", "--cache", cache, "--insecure").must(t, "images pull"); strings.Count(r.out, "pulled (") != 6 {
		t.Errorf("pull output:\n%s", r.out)
	}
	if r := imgRun(t, dir, "images", "pull", "--cache", cache).must(t, "second pull"); strings.Count(r.out, " cached\n") != 6 {
		t.Errorf("second pull output:\n%s", r.out)
	}

	// render --with-images.
	imgRun(t, dir, "binaries", "pin").must(t, "binaries pin")
	r = imgRun(t, dir, "render", "-o", "out", "--with-images", "--image-cache", cache, "--require-pinned").must(t, "render --with-images")
	if strings.Contains(r.err, "not pinned") {
		t.Errorf("pinned render warns: %s", r.err)
	}
	bundleDir := filepath.Join(dir, "out", "imgs")
	manifests, _ := filepath.Glob(filepath.Join(bundleDir, "nodes", "*", "rootfs", "etc", "kubernetes", "manifests", "*.yaml"))
	if len(manifests) != 12 {
		t.Errorf("%d static pod manifests, want 12", len(manifests))
	}
	for _, m := range manifests {
		for _, sub := range imageLine.FindAllStringSubmatch(string(mustRead(t, m)), -1) {
			tag, d, ok := strings.Cut(sub[1], "@")
			if !ok || digests[tag] != d {
				t.Errorf("%s: image %s; the registry serves %s for %s", m, sub[1], digests[tag], tag)
			}
		}
	}
	conf := string(mustRead(t, filepath.Join(bundleDir, "nodes", "worker-1", "rootfs", "etc", "containerd", "config.toml")))
	if !strings.Contains(conf, host+"/pause:3.10.1@"+digests[host+"/pause:3.10.1"]) {
		t.Errorf("sandbox image not pinned:\n%s", conf)
	}

	// Archives: where, how many, readable, validated; the unit imports them.
	archives, _ := filepath.Glob(filepath.Join(bundleDir, "nodes", "*", "rootfs", "var", "lib", "scratchgen", "images", "*.tar"))
	if len(archives) != 3*6+2*2 {
		t.Errorf("%d archives, want 22", len(archives))
	}
	for _, a := range archives {
		img, err := tarball.ImageFromPath(a, nil)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Errorf("%s: %v", a, err)
		}
		extracted := imgUntar(t, a)
		ii, err := layout.ImageIndexFromPath(extracted)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		im, _ := ii.IndexManifest()
		if got := im.Manifests[0].Digest.String(); !strings.Contains(strings.Join(mapValues(digests), " "), got) {
			t.Errorf("%s holds %s, not a registry digest", a, got)
		}
		if st, _ := os.Stat(a); st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", a, st.Mode())
		}
	}
	unit := string(mustRead(t, filepath.Join(bundleDir, "nodes", "cp-2", "rootfs", "etc", "systemd", "system", "scratchgen-images.service")))
	if strings.Count(unit, "ExecStart=ctr -n k8s.io images import /var/lib/scratchgen/images/") != 6 || !strings.Contains(unit, "Before=kubelet.service") {
		t.Errorf("unit:\n%s", unit)
	}
	if ign := string(mustRead(t, filepath.Join(bundleDir, "nodes", "worker-2", "ignition.json"))); !strings.Contains(ign, "scratchgen-images.service") {
		t.Errorf("ignition.json does not enable scratchgen-images.service")
	}
	if skopeo, err := exec.LookPath("skopeo"); err != nil {
		t.Log("SKIPPED (LOUD): skopeo is not installed (apt-get install -y skopeo); archives were read back with go-containerregistry only")
	} else {
		for _, a := range archives[:2] {
			if out, err := exec.Command(skopeo, "inspect", "docker-archive:"+a).CombinedOutput(); err != nil {
				t.Errorf("skopeo inspect docker-archive:%s: %v\n%s", a, err, out)
			}
		}
		pauseArchive := filepath.Join(bundleDir, "nodes", "worker-1", "rootfs", "var", "lib", "scratchgen", "images", strings.ReplaceAll(host, ":", "_")+"_pause_3.10.1.tar")
		if out, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+pauseArchive+":3.10.1").CombinedOutput(); err != nil || !strings.Contains(string(out), `"architecture":"arm64"`) {
			t.Errorf("skopeo inspect oci-archive: %v\n%s", err, out)
		}
	}
	// Identical archives on several nodes are hard links to one inode.
	a1 := filepath.Join(bundleDir, "nodes", "cp-1", "rootfs", "var", "lib", "scratchgen", "images", strings.ReplaceAll(host, ":", "_")+"_etcd_3.6.8-0.tar")
	a2 := strings.Replace(a1, "cp-1", "cp-3", 1)
	s1, err1 := os.Stat(a1)
	s2, err2 := os.Stat(a2)
	if err1 != nil || err2 != nil {
		t.Fatalf("%v %v", err1, err2)
	}
	if !os.SameFile(s1, s2) {
		t.Errorf("identical image archives on cp-1 and cp-3 are separate files, want one inode (hard links)")
	}

	// Re-rendering writes nothing; --check agrees.
	if r := imgRun(t, dir, "render", "-o", "out", "--with-images", "--image-cache", cache).must(t, "re-render"); !strings.Contains(r.out, "up to date") {
		t.Errorf("re-render: %s", r.out)
	}
	if r := imgRun(t, dir, "render", "-o", "out", "--with-images", "--image-cache", cache, "--check").must(t, "render --check"); !strings.Contains(r.out, "up to date") {
		t.Errorf("render --check: %s", r.out)
	}

	// A tampered cache blob: render fails naming the image; pull repairs the cache.
	etcdTag := host + "/etcd:3.6.8-0"
	tamperLayer(t, cache, after.Images[etcdTag].Digest)
	r = imgRun(t, dir, "render", "-o", "out", "--with-images", "--image-cache", cache)
	if r.code != 1 || !strings.Contains(r.err, etcdTag) || !strings.Contains(r.err, "corrupt") {
		t.Errorf("render from a tampered cache: %+v", r)
	}
	if r := imgRun(t, dir, "images", "pull", "--cache", cache).must(t, "repair pull"); !strings.Contains(r.out, etcdTag+"@"+digests[etcdTag]+" pulled") {
		t.Errorf("repair pull:\n%s", r.out)
	}
	if r := imgRun(t, dir, "render", "-o", "out", "--with-images", "--image-cache", cache).must(t, "render after repair"); !strings.Contains(r.out, "up to date") {
		t.Errorf("render after repair: %s", r.out)
	}
	// A cache without an image.
	if r := imgRun(t, dir, "render", "-o", "out2", "--with-images", "--image-cache", filepath.Join(dir, "empty")); r.code != 1 || !strings.Contains(r.err, "images pull") {
		t.Errorf("render without a cache: %+v", r)
	}
	if r := imgRun(t, dir, "images", "list", "--node", "worker-1").must(t, "images list --node"); r.out != host+"/pause:3.10.1@"+digests[host+"/pause:3.10.1"]+"\n"+host+"/coredns/coredns:v1.14.1@"+digests[host+"/coredns/coredns:v1.14.1"]+"\n" {
		t.Errorf("images list --node worker-1:\n%s", r.out)
	}
}

// tamperLayer flips a byte in the middle of the first layer of the image whose manifest
// digest is d, keeping its size.
func tamperLayer(t *testing.T, cache, d string) {
	t.Helper()
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(mustRead(t, filepath.Join(cache, "blobs", "sha256", h.Hex))))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cache, "blobs", "sha256", m.Layers[0].Digest.Hex)
	data := mustRead(t, p)
	data[len(data)/2] ^= 0x55
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMarshal(t *testing.T, l *lock.Lock) []byte {
	t.Helper()
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// imgUntar extracts a tar with the system tar into a new directory.
func imgUntar(t *testing.T, file string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", file, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", file, err, out)
	}
	return dir
}
