package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchgen/scratchgen/generator/lock"
)

// RefNameAnnotation names an image in an OCI image layout's index.json (the cache's, with
// the tag reference; an archive's, with the tag alone, as containerd and Docker write it).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// ContainerdNameAnnotation is the full image name containerd's importer gives an image,
// taking precedence over RefNameAnnotation (containerd images/archive, import.go).
const ContainerdNameAnnotation = "io.containerd.image.name"

// cache is an OCI image layout holding pulled images.
type cache struct {
	dir    string
	layout layout.Path
}

// errNotCached marks a blob that is not in the cache at all.
var errNotCached = errors.New("not in the cache")

func openCache(dir string, create bool) (*cache, error) {
	if dir == "" {
		return nil, errors.New("no image cache directory given")
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if !create {
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				return nil, fmt.Errorf("image cache %s does not exist; run `scratchgen images pull`", dir)
			}
			return nil, fmt.Errorf("image cache %s is not an OCI image layout: %w", dir, err)
		}
		if entries, rerr := os.ReadDir(dir); rerr == nil && len(entries) > 0 {
			return nil, fmt.Errorf("image cache %s exists but is not an OCI image layout (no index.json); choose another directory", dir)
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("creating image cache %s: %w", dir, err)
		}
	}
	return &cache{dir: dir, layout: p}, nil
}

func (c *cache) blobPath(h v1.Hash) string {
	return filepath.Join(c.dir, "blobs", h.Algorithm, h.Hex)
}

// open opens a blob for reading; it must be a regular file of the expected size
// (size < 0: any size).
func (c *cache) open(h v1.Hash, size int64) (*os.File, int64, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return nil, 0, fmt.Errorf("blob %s: only sha256 digests are supported", h)
	}
	p := c.blobPath(h)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", h, errNotCached)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", h, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("blob %s in the cache is not a regular file", h)
	}
	if size >= 0 && fi.Size() != size {
		return nil, 0, fmt.Errorf("blob %s in the cache is corrupt: %d bytes, want %d", h, fi.Size(), size)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", h, err)
	}
	return f, fi.Size(), nil
}

// copyVerified copies blob h (of the given size, or any size when negative) to w and
// fails if its content does not hash to h.
func (c *cache) copyVerified(w io.Writer, h v1.Hash, size int64) error {
	f, _, err := c.open(h, size)
	if err != nil {
		return err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, d), f); err != nil {
		return fmt.Errorf("reading blob %s: %w", h, err)
	}
	if got := hex.EncodeToString(d.Sum(nil)); got != h.Hex {
		return fmt.Errorf("blob %s in the cache is corrupt: its content hashes to sha256:%s", h, got)
	}
	return nil
}

// bytes reads a small blob (a manifest or index) and verifies it.
func (c *cache) bytes(h v1.Hash) ([]byte, error) {
	var b bytes.Buffer
	if err := c.copyVerified(&b, h, -1); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// has reports whether the cache holds blob h, complete and with the right digest.
func (c *cache) has(h v1.Hash, size int64) bool {
	return c.copyVerified(io.Discard, h, size) == nil
}

// put stores a blob: written to a temporary file beside its final name, hashed on the
// way, renamed into place only if the digest (and size, when known) match. An existing
// blob with the right content is left alone; a corrupt one is replaced.
func (c *cache) put(h v1.Hash, size int64, r io.Reader, bar *bar) error {
	if c.has(h, size) {
		return nil
	}
	if h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: only sha256 digests are supported", h)
	}
	dir := filepath.Dir(c.blobPath(h))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+h.Hex[:12]+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	d := sha256.New()
	var w io.Writer = io.MultiWriter(tmp, d)
	if bar != nil {
		w = io.MultiWriter(w, bar)
	}
	n, err := io.Copy(w, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetching blob %s: %w", h, err)
	}
	if got := hex.EncodeToString(d.Sum(nil)); got != h.Hex {
		return fmt.Errorf("blob %s: the registry sent content hashing to sha256:%s", h, got)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("blob %s: the registry sent %d bytes, want %d", h, n, size)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.blobPath(h))
}

// cachedImage is one image manifest of a pinned image, read and verified from the cache.
type cachedImage struct {
	platform string // "" for a single-platform image
	digest   v1.Hash
	raw      []byte
	manifest *v1.Manifest
}

// cachedPin is a pinned image as the cache holds it: the top-level manifest (an index or
// an image manifest, the pin's digest) and its images. Config and layer blobs are not
// read here; walk them with blobs and verify them as they are copied.
type cachedPin struct {
	tag       string
	top       v1.Hash
	topRaw    []byte
	mediaType types.MediaType
	images    []cachedImage
}

// resolve reads a pinned image's manifests from the cache, verifying each. Errors name
// the image and say how to repair the cache.
func (c *cache) resolve(tag string, pin lock.Image) (*cachedPin, error) {
	p, err := c.resolveManifests(tag, pin)
	if err != nil {
		if errors.Is(err, errNotCached) {
			return nil, fmt.Errorf("image %s is not in the image cache %s (%v); run `scratchgen images pull`", tag, c.dir, err)
		}
		return nil, fmt.Errorf("image %s: %w; run `scratchgen images pull` to fetch it again", tag, err)
	}
	return p, nil
}

func (c *cache) resolveManifests(tag string, pin lock.Image) (*cachedPin, error) {
	top, err := v1.NewHash(pin.Digest)
	if err != nil {
		return nil, fmt.Errorf("the lock's digest %q: %w", pin.Digest, err)
	}
	raw, err := c.bytes(top)
	if err != nil {
		return nil, err
	}
	p := &cachedPin{tag: tag, top: top, topRaw: raw, mediaType: manifestMediaType(raw)}
	if !p.mediaType.IsIndex() {
		if len(pin.Platforms) > 0 {
			return nil, fmt.Errorf("the lock pins platforms of %s, which is a single image", top)
		}
		img, err := parseImage("", top, raw)
		if err != nil {
			return nil, err
		}
		p.images = []cachedImage{img}
		return p, nil
	}
	if len(pin.Platforms) == 0 {
		return nil, fmt.Errorf("%s is an index but the lock pins no platform of it", top)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", top, err)
	}
	for _, plat := range slices.Sorted(maps.Keys(pin.Platforms)) {
		h, err := v1.NewHash(pin.Platforms[plat])
		if err != nil {
			return nil, fmt.Errorf("the lock's %s digest %q: %w", plat, pin.Platforms[plat], err)
		}
		listed := false
		for _, d := range im.Manifests {
			listed = listed || d.Digest == h
		}
		if !listed {
			return nil, fmt.Errorf("the lock pins %s for %s, which index %s does not list", h, plat, top)
		}
		mraw, err := c.bytes(h)
		if err != nil {
			return nil, err
		}
		img, err := parseImage(plat, h, mraw)
		if err != nil {
			return nil, err
		}
		p.images = append(p.images, img)
	}
	return p, nil
}

func parseImage(platform string, h v1.Hash, raw []byte) (cachedImage, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return cachedImage{}, fmt.Errorf("reading manifest %s: %w", h, err)
	}
	if m.Config.Digest.Hex == "" {
		return cachedImage{}, fmt.Errorf("manifest %s is not an image manifest (no config)", h)
	}
	return cachedImage{platform: platform, digest: h, raw: raw, manifest: m}, nil
}

// manifestMediaType returns a manifest's media type, from its mediaType field or, where
// an OCI manifest omits it, from its shape.
func manifestMediaType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		return probe.MediaType
	}
	if probe.Manifests != nil {
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// blob is one config or layer blob of a cached pin.
type blob struct {
	digest v1.Hash
	size   int64
}

// blobs lists the config and layer blobs of every image of p, deduplicated, sorted by digest.
func (p *cachedPin) blobs() []blob {
	seen := map[v1.Hash]bool{}
	var out []blob
	for _, img := range p.images {
		descs := append([]v1.Descriptor{img.manifest.Config}, img.manifest.Layers...)
		for _, d := range descs {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				out = append(out, blob{d.Digest, d.Size})
			}
		}
	}
	sortBlobs(out)
	return out
}

// verify checks that the cache holds the pinned image completely, every blob hashed.
func (c *cache) verify(tag string, pin lock.Image) error {
	p, err := c.resolve(tag, pin)
	if err != nil {
		return err
	}
	for _, b := range p.blobs() {
		if err := c.copyVerified(io.Discard, b.digest, b.size); err != nil {
			return fmt.Errorf("image %s: %w; run `scratchgen images pull` to fetch it again", tag, err)
		}
	}
	return nil
}

// name records the pinned image in the cache's index.json under its tag reference,
// replacing an older entry for the same tag. index.json is replaced atomically.
func (c *cache) name(tag string, pin lock.Image) error {
	p, err := c.resolve(tag, pin)
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, "index.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	want := v1.Descriptor{
		MediaType:   p.mediaType,
		Size:        int64(len(p.topRaw)),
		Digest:      p.top,
		Annotations: map[string]string{RefNameAnnotation: tag},
	}
	kept := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if d.Annotations[RefNameAnnotation] == tag {
			if d.Digest == want.Digest && d.MediaType == want.MediaType && d.Size == want.Size {
				return nil
			}
			continue
		}
		kept = append(kept, d)
	}
	idx.Manifests = append(kept, want)
	if idx.SchemaVersion == 0 {
		idx.SchemaVersion = 2
	}
	out, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, ".index.json.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(out)
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
