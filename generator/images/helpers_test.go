package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// startRegistry runs go-containerregistry's in-process registry on httptest and returns
// its host:port (plain HTTP on loopback).
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushImage pushes a random single-platform image under ref, with Docker media types
// (as go-containerregistry's random images have), or OCI ones.
func pushImage(t *testing.T, ref string, oci bool) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: mustConfig(t, img).RootFS})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return img
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// pushIndex pushes an index of random images, one per platform ("linux/arm64/v8").
func pushIndex(t *testing.T, ref string, platforms ...string) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(3000, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf := mustConfig(t, img)
		cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	if err := remote.WriteIndex(mustRef(t, ref), idx); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return idx
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// testSpec is a cluster with three control-plane+etcd nodes and two workers whose
// images come from host (the registry-mirror setting), plus extra images: lines.
func testSpec(host, extra string) string {
	return `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: imgtest
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.100
  network:
    podCIDR: 10.10.0.0/16
  images:
    registry: ` + host + `
` + extra + `  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: cp-2, address: 10.0.0.11, roles: [control-plane, etcd]}
  - {name: cp-3, address: 10.0.0.12, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  - {name: worker-2, address: 10.0.0.22, roles: [worker]}
`
}

func resolve(t *testing.T, specYAML string, lk *lock.Lock) *model.Cluster {
	t.Helper()
	doc, errs := spec.Parse([]byte(specYAML))
	if len(errs.Errors()) > 0 {
		t.Fatalf("parse: %s", errs.Format("spec"))
	}
	c, _, errs := model.Resolve(doc, lk)
	if len(errs.Errors()) > 0 {
		t.Fatalf("resolve: %s", errs.Format("spec"))
	}
	return c
}

// world is a registry holding every image of testSpec: pause as a three-platform index
// (amd64, arm64/v8, s390x), etcd as an index with amd64 only, the rest single images
// (coredns with OCI media types, the others with Docker ones).
type world struct {
	host string
	c    *model.Cluster
	// want maps a tag to the digest the registry serves for it.
	want map[string]string
	// platforms maps a tag to its per-platform digests (indexes only).
	platforms map[string]map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{host: startRegistry(t), want: map[string]string{}, platforms: map[string]map[string]string{}}
	w.c = resolve(t, testSpec(w.host, ""), nil)
	for comp, tag := range w.c.Images.Tags {
		switch comp {
		case model.ImagePause, model.ImageEtcd:
			plats := []string{"linux/amd64"}
			if comp == model.ImagePause {
				plats = []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}
			}
			idx := pushIndex(t, tag, plats...)
			w.want[tag] = digestOf(t, idx)
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			w.platforms[tag] = map[string]string{}
			for _, d := range im.Manifests {
				if d.Platform.Architecture != "s390x" {
					w.platforms[tag][d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest.String()
				}
			}
		default:
			w.want[tag] = digestOf(t, pushImage(t, tag, comp == model.ImageCoreDNS))
		}
	}
	return w
}

// lockFor returns a lock holding pins.
func lockFor(c *model.Cluster, pins map[string]lock.Image) *lock.Lock {
	lk := lock.New(c.Name)
	lk.Images = pins
	return lk
}

// untar extracts an archive into a new directory.
func untar(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sha256Hex(s string) (string, error) {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:]), nil
}
