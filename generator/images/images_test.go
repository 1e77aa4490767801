package images

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

func TestForNode(t *testing.T) {
	c := resolve(t, testSpec("mirror.example.com/k8s", ""), nil)
	reg := "mirror.example.com/k8s/"
	tags := func(node string) []string { return ForNode(component.Default(), c, c.Node(node)) }
	cp := []string{reg + "pause:3.10.1", reg + "etcd:3.6.8-0", reg + "kube-apiserver:v1.36.3", reg + "kube-controller-manager:v1.36.3", reg + "kube-scheduler:v1.36.3", reg + "coredns/coredns:v1.14.1"}
	if got := tags("cp-1"); !reflect.DeepEqual(got, cp) {
		t.Errorf("cp-1: %q\nwant %q", got, cp)
	}
	wk := []string{reg + "pause:3.10.1", reg + "coredns/coredns:v1.14.1"}
	if got := tags("worker-2"); !reflect.DeepEqual(got, wk) {
		t.Errorf("worker-2: %q\nwant %q", got, wk)
	}
	if got, want := Components(component.Default(), c, c.Node("worker-1")), []string{model.ImagePause, model.ImageCoreDNS}; !reflect.DeepEqual(got, want) {
		t.Errorf("worker components %q", got)
	}
	if got := Needed(component.Default(), c); len(got) != 6 || strings.Contains(strings.Join(got, " "), "kube-proxy") {
		t.Errorf("Needed = %q: want the six node images, no kube-proxy", got)
	}
	if got := All(c); len(got) != 7 {
		t.Errorf("All = %q: want seven tags (kube-proxy included)", got)
	}

	// Hyperkube style: one image for the three control-plane components, listed once.
	hk := resolve(t, testSpec("mirror.example.com/k8s", "    style: hyperkube\n    hyperkube: registry.example.com/hk:v1.36.3\n"), nil)
	want := []string{reg + "pause:3.10.1", reg + "etcd:3.6.8-0", "registry.example.com/hk:v1.36.3", reg + "coredns/coredns:v1.14.1"}
	if got := ForNode(component.Default(), hk, hk.Node("cp-2")); !reflect.DeepEqual(got, want) {
		t.Errorf("hyperkube cp-2: %q\nwant %q", got, want)
	}

	// An etcd-only node.
	etcd := resolve(t, strings.Replace(testSpec("r.example.com", ""),
		"  - {name: worker-1, address: 10.0.0.21, roles: [worker]}\n  - {name: worker-2, address: 10.0.0.22, roles: [worker]}\n",
		"  - {name: etcd-4, address: 10.0.0.13, roles: [etcd]}\n  - {name: etcd-5, address: 10.0.0.14, roles: [etcd]}\n", 1), nil)
	want = []string{"r.example.com/pause:3.10.1", "r.example.com/etcd:3.6.8-0", "r.example.com/coredns/coredns:v1.14.1"}
	if got := ForNode(component.Default(), etcd, etcd.Node("etcd-5")); !reflect.DeepEqual(got, want) {
		t.Errorf("etcd-only node: %q\nwant %q", got, want)
	}
}

func TestListFormat(t *testing.T) {
	pins := map[string]lock.Image{"r.example.com/pause:3.10.1": {Digest: "sha256:" + strings.Repeat("a", 64)}}
	c := resolve(t, testSpec("r.example.com", ""), lockFor(resolve(t, testSpec("r.example.com", ""), nil), pins))
	got := FormatList(List(component.Default(), c))
	want := `# node cp-1 (control-plane, etcd)
r.example.com/pause:3.10.1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
r.example.com/etcd:3.6.8-0
r.example.com/kube-apiserver:v1.36.3
r.example.com/kube-controller-manager:v1.36.3
r.example.com/kube-scheduler:v1.36.3
r.example.com/coredns/coredns:v1.14.1
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("list starts\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(got, "\n\n# node worker-2 (worker)\nr.example.com/pause:3.10.1@sha256:aaaa") {
		t.Errorf("worker group missing:\n%s", got)
	}
}

// TestPinPullArchive drives Pin → Pull → Archive against a real registry.
func TestPinPullArchive(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pins, err := Pin(ctx, All(w.c), WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for tag, d := range w.want {
		if pins[tag].Digest != d {
			t.Errorf("pin %s = %s, registry serves %s", tag, pins[tag].Digest, d)
		}
		if !reflect.DeepEqual(pins[tag].Platforms, w.platforms[tag]) && (len(pins[tag].Platforms) > 0 || w.platforms[tag] != nil) {
			t.Errorf("pin %s platforms = %v, want %v", tag, pins[tag].Platforms, w.platforms[tag])
		}
	}
	pause := w.c.Images.Tags[model.ImagePause]
	if len(pins[pause].Platforms) != 2 {
		t.Errorf("pause platforms %v: want amd64 and arm64 (v8 variant), not s390x", pins[pause].Platforms)
	}

	cacheDir := filepath.Join(t.TempDir(), "cache")
	needed := map[string]lock.Image{}
	for _, tag := range Needed(component.Default(), w.c) {
		needed[tag] = pins[tag]
	}
	var bar bytes.Buffer
	res, err := Pull(ctx, needed, cacheDir, WithProgress(&bar))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 6 {
		t.Fatalf("pulled %d images, want 6", len(res))
	}
	for _, r := range res {
		if r.Cached || r.Bytes == 0 {
			t.Errorf("first pull of %s: cached=%v bytes=%d", r.Tag, r.Cached, r.Bytes)
		}
	}
	if !strings.Contains(bar.String(), pause+" [") || !strings.Contains(bar.String(), "\r") {
		t.Errorf("progress output %q", bar.String())
	}
	// The cache is a valid OCI layout naming each image by tag.
	ii, err := layout.ImageIndexFromPath(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 6 {
		t.Errorf("cache index.json lists %d images", len(im.Manifests))
	}
	// Only pinned platforms were fetched: the s390x manifest is not in the cache.
	pauseIdx, err := ii.ImageIndex(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(pins[pause].Digest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	pim, _ := pauseIdx.IndexManifest()
	for _, d := range pim.Manifests {
		_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", d.Digest.Hex))
		if s390 := d.Platform.Architecture == "s390x"; s390 != os.IsNotExist(err) {
			t.Errorf("platform %s in cache: %v", d.Platform, err)
		}
	}

	again, err := Pull(ctx, needed, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if !r.Cached || r.Bytes != 0 {
			t.Errorf("second pull of %s fetched %d bytes", r.Tag, r.Bytes)
		}
	}

	// Archives: deterministic, and the same from an independently pulled cache.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := Pull(ctx, needed, other); err != nil {
		t.Fatal(err)
	}
	for _, tag := range Needed(component.Default(), w.c) {
		a, err := Archive(cacheDir, tag, pins[tag])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Archive(cacheDir, tag, pins[tag])
		c, err := Archive(other, tag, pins[tag])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Errorf("archive of %s is not deterministic", tag)
		}
		checkArchive(t, tag, pins[tag], a)
	}
}

// checkArchive reads an archive back both ways: as an OCI layout (what containerd
// imports) and as a docker-archive (tarball.ImageFromPath), validating every image.
func checkArchive(t *testing.T, tag string, pin lock.Image, data []byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if !h.ModTime.Equal(h.ModTime.Truncate(0)) || h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: entry %s has mtime %v uid %d gid %d", tag, h.Name, h.ModTime, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
	if len(names) < 6 || !reflect.DeepEqual(names[:5], []string{"oci-layout", "index.json", "manifest.json", "blobs/", "blobs/sha256/"}) {
		t.Errorf("%s: entries %q", tag, names)
	}
	dir := untar(t, data)
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	im, _ := ii.IndexManifest()
	byTag, byDigest, _ := containerdNames(tag, mustHash(t, pin.Digest))
	if len(im.Manifests) != 2 || im.Manifests[0].Annotations[ContainerdNameAnnotation] != byTag || im.Manifests[1].Annotations[ContainerdNameAnnotation] != byDigest {
		t.Fatalf("%s: index.json %+v", tag, im.Manifests)
	}
	if im.Manifests[0].Digest.String() != pin.Digest || im.Manifests[1].Digest.String() != pin.Digest {
		t.Errorf("%s: archive names %s, pinned %s", tag, im.Manifests[0].Digest, pin.Digest)
	}
	top := im.Manifests[0].Digest
	if len(pin.Platforms) == 0 {
		img, err := ii.Image(top)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Errorf("%s: %v", tag, err)
		}
	} else {
		idx, err := ii.ImageIndex(top)
		if err != nil {
			t.Fatal(err)
		}
		for p, d := range pin.Platforms {
			img, err := idx.Image(mustHash(t, d))
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("%s %s: %v", tag, p, err)
			}
		}
	}
	// docker-archive view.
	f := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ntag, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(f, &ntag)
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Errorf("%s as docker-archive: %v", tag, err)
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTamperedCache(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pins, err := Pin(ctx, Needed(component.Default(), w.c))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	if _, err := Pull(ctx, pins, cacheDir); err != nil {
		t.Fatal(err)
	}
	tag := w.c.Images.Tags[model.ImageScheduler]
	p, err := (&cache{dir: cacheDir}).resolve(tag, pins[tag])
	if err != nil {
		t.Fatal(err)
	}
	layer := p.images[0].manifest.Layers[1].Digest
	blobFile := filepath.Join(cacheDir, "blobs", "sha256", layer.Hex)
	data, err := os.ReadFile(blobFile)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff // same size, different content
	if err := os.WriteFile(blobFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Archive(cacheDir, tag, pins[tag])
	if err == nil || !strings.Contains(err.Error(), tag) || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "images pull") {
		t.Fatalf("tampered layer: %v; want an error naming %s, the corruption and the fix", err, tag)
	}
	// Pull repairs it.
	res, err := Pull(ctx, map[string]lock.Image{tag: pins[tag]}, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Cached || res[0].Bytes == 0 {
		t.Errorf("repair pull: %+v", res[0])
	}
	if _, err := Archive(cacheDir, tag, pins[tag]); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	// A tampered manifest and a missing blob.
	mf := filepath.Join(cacheDir, "blobs", "sha256", strings.TrimPrefix(pins[tag].Digest, "sha256:"))
	if err := os.WriteFile(mf, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Archive(cacheDir, tag, pins[tag]); err == nil || !strings.Contains(err.Error(), tag) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("tampered manifest: %v", err)
	}
	pause := w.c.Images.Tags[model.ImagePause]
	if err := os.Remove(filepath.Join(cacheDir, "blobs", "sha256", strings.TrimPrefix(pins[pause].Platforms["linux/arm64"], "sha256:"))); err != nil {
		t.Fatal(err)
	}
	if _, err := Archive(cacheDir, pause, pins[pause]); err == nil || !strings.Contains(err.Error(), pause) || !strings.Contains(err.Error(), "not in the image cache") {
		t.Errorf("missing blob: %v", err)
	}
	if _, err := Archive(filepath.Join(cacheDir, "nope"), pause, pins[pause]); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing cache: %v", err)
	}
}

func TestPinErrors(t *testing.T) {
	host := startRegistry(t)
	pushIndex(t, host+"/odd:1", "linux/s390x", "windows/amd64")
	ctx := context.Background()
	if _, err := Pin(ctx, []string{host + "/odd:1"}); err == nil || !strings.Contains(err.Error(), host+"/odd:1") || !strings.Contains(err.Error(), "none of the platforms") {
		t.Errorf("index without linux/amd64 or arm64: %v", err)
	}
	if _, err := Pin(ctx, []string{host + "/missing:1"}); err == nil || !strings.Contains(err.Error(), "pinning "+host+"/missing:1") {
		t.Errorf("missing tag: %v", err)
	}
	if _, err := Pin(ctx, []string{host + "/odd"}); err == nil || !strings.Contains(err.Error(), "names no tag") {
		t.Errorf("reference without tag: %v", err)
	}
	// Pull refuses a lock whose platform digest the index does not list.
	img := pushImage(t, host+"/single:1", false)
	pins := map[string]lock.Image{host + "/single:1": {Digest: digestOf(t, img), Platforms: map[string]string{"linux/amd64": digestOf(t, img)}}}
	if _, err := Pull(ctx, pins, t.TempDir()); err == nil || !strings.Contains(err.Error(), "single image") {
		t.Errorf("platforms on a single image: %v", err)
	}
}

func TestEmbedFiles(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pins, err := Pin(ctx, All(w.c))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	if _, err := Pull(ctx, pins, cacheDir); err != nil {
		t.Fatal(err)
	}
	c := resolve(t, testSpec(w.host, ""), lockFor(w.c, pins))
	archives := map[string][]byte{}
	for _, tag := range Needed(component.Default(), c) {
		if archives[tag], err = Archive(cacheDir, tag, pins[tag]); err != nil {
			t.Fatal(err)
		}
	}
	files, err := EmbedFiles(component.Default(), c, c.Node("cp-1"), archives)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 7 {
		t.Fatalf("%d files", len(files))
	}
	var unitText string
	for _, f := range files {
		if f.Mode != bundle.ModePublic || f.Secret {
			t.Errorf("%s: mode %v secret %v", f.Path, f.Mode, f.Secret)
		}
		if f.Path == paths.ImagesUnit {
			unitText = string(f.Data)
		} else if !strings.HasPrefix(f.Path, "/var/lib/scratchgen/images/") || !strings.HasSuffix(f.Path, ".tar") {
			t.Errorf("archive path %s", f.Path)
		}
	}
	for _, want := range []string{
		"Requires=containerd.service\n", "After=containerd.service\n", "Before=kubelet.service\n",
		"Type=oneshot\n", "RemainAfterExit=yes\n",
		"ExecStart=ctr -n k8s.io images import /var/lib/scratchgen/images/" + strings.ReplaceAll(strings.ReplaceAll(w.host, ":", "_"), "/", "_") + "_pause_3.10.1.tar\n",
		"WantedBy=multi-user.target kubelet.service\n",
	} {
		if !strings.Contains(unitText, want) {
			t.Errorf("unit lacks %q:\n%s", want, unitText)
		}
	}
	if strings.Count(unitText, "ExecStart=") != 6 {
		t.Errorf("want 6 imports on cp-1:\n%s", unitText)
	}
	if s, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, paths.ImagesService), []byte(unitText), 0o644)
		out, _ := exec.Command(s, "verify", "--man=no", filepath.Join(dir, paths.ImagesService)).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, paths.ImagesService) && !strings.Contains(l, "not found") && !strings.Contains(l, "No such file") {
				t.Errorf("systemd-analyze verify: %s", l)
			}
		}
	}
	// The same image on two nodes: identical bytes.
	wf, err := EmbedFiles(component.Default(), c, c.Node("worker-1"), archives)
	if err != nil {
		t.Fatal(err)
	}
	if len(wf) != 3 {
		t.Errorf("worker files %d", len(wf))
	}
	for _, f := range wf {
		if f.Path == ArchivePath(pauseTag(c)) && !bytes.Equal(f.Data, files[indexOf(files, f.Path)].Data) {
			t.Errorf("pause archive differs between cp-1 and worker-1")
		}
	}

	// Errors.
	pause := c.Images.Tags[model.ImagePause]
	missing := map[string][]byte{}
	for k, v := range archives {
		missing[k] = v
	}
	delete(missing, pause)
	if _, err := EmbedFiles(component.Default(), c, c.Node("worker-1"), missing); err == nil || !strings.Contains(err.Error(), pause) || !strings.Contains(err.Error(), "images pull") {
		t.Errorf("missing archive: %v", err)
	}
	wrong := map[string][]byte{}
	for k, v := range archives {
		wrong[k] = v
	}
	wrong[pause] = archives[c.Images.Tags[model.ImageCoreDNS]]
	if _, err := EmbedFiles(component.Default(), c, c.Node("worker-1"), wrong); err == nil || !strings.Contains(err.Error(), "but the lock pins") {
		t.Errorf("archive of another digest: %v", err)
	}
	unpinned := resolve(t, testSpec(w.host, ""), nil)
	if _, err := EmbedFiles(component.Default(), unpinned, unpinned.Node("worker-1"), archives); err == nil || !strings.Contains(err.Error(), "images pin") {
		t.Errorf("unpinned: %v", err)
	}
}

func pauseTag(c *model.Cluster) string { return c.Images.Tags[model.ImagePause] }

func indexOf(files []bundle.File, p string) int {
	for i, f := range files {
		if f.Path == p {
			return i
		}
	}
	return -1
}

func TestContainerdNames(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	for tag, want := range map[string][2]string{
		"pause:3.10":                   {"docker.io/library/pause:3.10", "docker.io/library/pause@" + h.String()},
		"registry.k8s.io/pause:3.10.1": {"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause@" + h.String()},
		"127.0.0.1:5000/coredns/x:v1":  {"127.0.0.1:5000/coredns/x:v1", "127.0.0.1:5000/coredns/x@" + h.String()},
		"docker.io/someone/img:1":      {"docker.io/someone/img:1", "docker.io/someone/img@" + h.String()},
	} {
		a, b, err := containerdNames(tag, h)
		if err != nil || a != want[0] || b != want[1] {
			t.Errorf("containerdNames(%s) = %s, %s, %v", tag, a, b, err)
		}
	}
}
