package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchgen/scratchgen/generator/lock"
)

// Archive builds, offline and from the cache at cacheDir only, the archive of a pinned
// image that a node imports with `ctr -n k8s.io images import`. The same cache and pin
// always give the same bytes. Every blob is hashed as it is copied: a missing or
// tampered blob is an error naming the image and saying to run `scratchgen images pull`.
//
// # Format: an OCI image layout in a tar, not a plain docker-archive
//
// Manifests reference images as name:tag@sha256:<pinned digest>. The kubelet asks
// containerd's CRI plugin for that reference, which the plugin normalizes to
// name@sha256:<digest> (a reference with both keeps only the digest) and looks up by
// that name among containerd's images. So a node must hold an image named
// name@sha256:<pinned digest> whose content has that digest. containerd's importer
// (images/archive.ImportIndex) rebuilds a new manifest from a docker-archive's
// manifest.json, so the registry's digest is lost and the kubelet would try to pull; from
// an OCI layout it stores the manifests and index byte for byte. Its index.json here has
// two entries for the pinned manifest (or index) annotated with io.containerd.image.name,
// which the importer uses verbatim (client import.go, imageName): "name:tag" (for people
// and crictl) and "name@sha256:<digest>" (for the CRI lookup). Names are normalized as
// containerd does (docker.io/library/… for Docker Hub images);
// org.opencontainers.image.ref.name carries the tag, as `ctr export` and `docker save`
// write it (skopeo: oci-archive:FILE:TAG).
//
// For an index the archive holds the index manifest as pinned and the images of every
// platform the lock pins (linux/amd64 and linux/arm64 where present), because the model
// does not know a node's architecture; `ctr images import` without --all-platforms
// imports the node's own platform. Index entries for other platforms stay listed but
// have no blobs, which containerd accepts because it only walks the chosen platform.
//
// The tar also carries a Docker-style manifest.json naming one image (linux/amd64 when
// pinned, else the first pinned platform) by its tag, pointing at the same blob files,
// as `docker save` writes since Docker 25: docker-archive readers (`docker load`,
// `skopeo inspect docker-archive:`, go-containerregistry's tarball) accept the file too.
// containerd ignores manifest.json when oci-layout is present.
//
// Entries: oci-layout, index.json, manifest.json, blobs/, blobs/sha256/, then the blobs
// in digest order; every header has mode 0644 (directories 0755), owner 0:0 and
// modification time 0 (1970-01-01).
func Archive(cacheDir, tag string, pin lock.Image) ([]byte, error) {
	c, err := openCache(cacheDir, false)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", tag, err)
	}
	p, err := c.resolve(tag, pin)
	if err != nil {
		return nil, err
	}
	tagName, digestName, err := containerdNames(tag, p.top)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", tag, err)
	}
	t, _ := name.NewTag(tag)
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{
			{MediaType: p.mediaType, Size: int64(len(p.topRaw)), Digest: p.top,
				Annotations: map[string]string{ContainerdNameAnnotation: tagName, RefNameAnnotation: t.TagStr()}},
			{MediaType: p.mediaType, Size: int64(len(p.topRaw)), Digest: p.top,
				Annotations: map[string]string{ContainerdNameAnnotation: digestName}},
		},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	primary := p.images[0]
	for _, img := range p.images {
		if img.platform == Platforms[0] {
			primary = img
		}
	}
	dm := []dockerManifest{{Config: blobName(primary.manifest.Config.Digest), RepoTags: []string{tag}}}
	for _, l := range primary.manifest.Layers {
		dm[0].Layers = append(dm[0].Layers, blobName(l.Digest))
	}
	dockerJSON, err := json.Marshal(dm)
	if err != nil {
		return nil, err
	}

	// Manifests are already verified and in memory; configs and layers are copied from
	// the cache and hashed on the way.
	inMemory := map[v1.Hash][]byte{p.top: p.topRaw}
	for _, img := range p.images {
		inMemory[img.digest] = img.raw
	}
	all := p.blobs()
	var total int64
	for h, raw := range inMemory {
		all = append(all, blob{h, int64(len(raw))})
	}
	sortBlobs(all)
	all = slices.CompactFunc(all, func(a, b blob) bool { return a.digest == b.digest })
	for _, b := range all {
		total += b.size + 512
	}

	var buf bytes.Buffer
	buf.Grow(int(total) + 8192)
	tw := tar.NewWriter(&buf)
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(header(name, tar.TypeReg, int64(len(data)))); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	if err := file("index.json", indexJSON); err != nil {
		return nil, err
	}
	if err := file("manifest.json", dockerJSON); err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(header(d, tar.TypeDir, 0)); err != nil {
			return nil, err
		}
	}
	for _, b := range all {
		if raw, ok := inMemory[b.digest]; ok {
			if err := file(blobName(b.digest), raw); err != nil {
				return nil, err
			}
			continue
		}
		if err := tw.WriteHeader(header(blobName(b.digest), tar.TypeReg, b.size)); err != nil {
			return nil, err
		}
		if err := c.copyVerified(tw, b.digest, b.size); err != nil {
			return nil, fmt.Errorf("image %s: %w; run `scratchgen images pull` to fetch it again", tag, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func header(name string, typ byte, size int64) *tar.Header {
	mode := int64(0o644)
	if typ == tar.TypeDir {
		mode = 0o755
	}
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Size:     size,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
}

func sortBlobs(b []blob) {
	slices.SortFunc(b, func(x, y blob) int { return strings.Compare(x.digest.String(), y.digest.String()) })
}

// containerdNames returns the names containerd gives an image reference by tag and by
// digest, normalized as containerd normalizes them: Docker Hub images under docker.io
// (docker.io/library/pause:3.10, not index.docker.io or pause:3.10).
func containerdNames(tag string, digest v1.Hash) (byTag, byDigest string, err error) {
	t, err := name.NewTag(tag)
	if err != nil {
		return "", "", fmt.Errorf("%q is not an image reference by tag: %w", tag, err)
	}
	reg := t.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + t.Context().RepositoryStr()
	return repo + ":" + t.TagStr(), repo + "@" + digest.String(), nil
}

// archiveDigest returns the digest an archive made by Archive pins (its index.json's
// first entry), reading only the tar headers up to index.json.
func archiveDigest(data []byte) (string, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("no index.json")
		}
		if err != nil {
			return "", err
		}
		if h.Name != "index.json" {
			continue
		}
		var idx v1.IndexManifest
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return "", fmt.Errorf("index.json: %w", err)
		}
		if len(idx.Manifests) == 0 {
			return "", fmt.Errorf("index.json lists no image")
		}
		return idx.Manifests[0].Digest.String(), nil
	}
}
