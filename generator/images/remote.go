package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/scratchgen/scratchgen/generator/lock"
)

// Option configures Pin and Pull.
type Option func(*options)

type options struct {
	insecure  bool
	keychain  authn.Keychain
	transport http.RoundTripper
	progress  io.Writer
}

func makeOptions(opts []Option) *options {
	o := &options{keychain: authn.DefaultKeychain}
	for _, f := range opts {
		f(o)
	}
	return o
}

// WithInsecure talks plain HTTP to registries (name.Insecure). Registries on localhost,
// loopback and private (RFC 1918) addresses get plain HTTP without it.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithKeychain replaces authn.DefaultKeychain (the Docker config and credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport replaces the HTTP transport (remote.DefaultTransport).
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithProgress draws a progress bar for Pull on w, which should be a terminal. Without
// it Pull prints nothing.
func WithProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

func (o *options) remote(ctx context.Context) []remote.Option {
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain)}
	if o.transport != nil {
		ro = append(ro, remote.WithTransport(o.transport))
	}
	return ro
}

func (o *options) parseTag(tag string) (name.Tag, error) {
	var nopts []name.Option
	if o.insecure {
		nopts = append(nopts, name.Insecure)
	}
	t, err := name.NewTag(tag, nopts...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%q is not an image reference by tag: %w", tag, err)
	}
	if !strings.HasSuffix(tag, ":"+t.TagStr()) {
		return name.Tag{}, fmt.Errorf("%q names no tag; write registry/repository:tag", tag)
	}
	return t, nil
}

// Pin resolves each tag reference to the digest it points to now: the index digest for a
// multi-platform image, with the manifest digests of the index's linux/amd64 and
// linux/arm64 images (those of Platforms the index lists; an index listing neither is an
// error), or the manifest digest of a single-platform image (no Platforms). It uses the
// registry's answer as is: the manifest fetched by tag is hashed and that is the digest.
func Pin(ctx context.Context, tags []string, opts ...Option) (map[string]lock.Image, error) {
	o := makeOptions(opts)
	tags = slices.Clone(tags)
	sort.Strings(tags)
	tags = slices.Compact(tags)
	out := make(map[string]lock.Image, len(tags))
	for _, tag := range tags {
		pin, err := o.pin(ctx, tag)
		if err != nil {
			return nil, fmt.Errorf("pinning %s: %w", tag, err)
		}
		out[tag] = pin
	}
	return out, nil
}

func (o *options) pin(ctx context.Context, tag string) (lock.Image, error) {
	ref, err := o.parseTag(tag)
	if err != nil {
		return lock.Image{}, err
	}
	desc, err := remote.Get(ref, o.remote(ctx)...)
	if err != nil {
		return lock.Image{}, err
	}
	// Hash what we received rather than trusting a header.
	got, _, err := v1.SHA256(bytes.NewReader(desc.Manifest))
	if err != nil {
		return lock.Image{}, err
	}
	if got != desc.Digest {
		return lock.Image{}, fmt.Errorf("registry said %s for a manifest whose digest is %s", desc.Digest, got)
	}
	pin := lock.Image{Digest: got.String()}
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return lock.Image{}, fmt.Errorf("reading index %s: %w", got, err)
		}
		pin.Platforms = platformDigests(im)
		if len(pin.Platforms) == 0 {
			return lock.Image{}, fmt.Errorf("index %s lists none of the platforms %s", got, strings.Join(Platforms, ", "))
		}
	case desc.MediaType.IsImage():
	default:
		return lock.Image{}, fmt.Errorf("%s is a %s, not an image or an image index", got, desc.MediaType)
	}
	return pin, nil
}

// platformDigests picks, for each of Platforms, the index's image manifest for it: an
// entry without variant is preferred (arm64 may carry variant v8), then the first.
func platformDigests(im *v1.IndexManifest) map[string]string {
	out := map[string]string{}
	for _, want := range Platforms {
		os, arch, _ := strings.Cut(want, "/")
		var pick *v1.Descriptor
		for i := range im.Manifests {
			d := &im.Manifests[i]
			if d.Platform == nil || d.Platform.OS != os || d.Platform.Architecture != arch || !d.MediaType.IsImage() {
				continue
			}
			if pick == nil || (pick.Platform.Variant != "" && d.Platform.Variant == "") {
				pick = d
			}
		}
		if pick != nil {
			out[want] = pick.Digest.String()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Pulled reports what Pull did for one image.
type Pulled struct {
	Tag    string
	Digest string
	// Cached is true when the cache already held every blob, verified; nothing was fetched.
	Cached bool
	// Bytes is how many blob bytes were fetched.
	Bytes int64
}

// Pull fetches pinned images by digest (repository@digest, never by tag) into the OCI
// image layout at cacheDir and verifies them. For an index it stores the index manifest
// and the image of every platform the pin records (linux/amd64 and linux/arm64 where
// present): exactly what the lock pins, nothing the lock does not. Every blob is hashed
// while it is written and must have the digest it is stored under; afterwards each image
// is checked again, from the cache, with validate.Image (layer digests, diff IDs,
// config and manifest). Blobs already in the cache with the right digest are not
// fetched again; a corrupt one is replaced. index.json names each image with the
// annotation org.opencontainers.image.ref.name = the tag reference.
//
// The cache is content-addressed and may be shared by several specs; it is not locked
// against concurrent pulls into the same directory.
func Pull(ctx context.Context, pins map[string]lock.Image, cacheDir string, opts ...Option) ([]Pulled, error) {
	o := makeOptions(opts)
	c, err := openCache(cacheDir, true)
	if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(pins))
	for t := range pins {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	var out []Pulled
	for _, tag := range tags {
		p, err := o.pull(ctx, c, tag, pins[tag])
		if err != nil {
			return out, fmt.Errorf("pulling %s: %w", tag, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (o *options) pull(ctx context.Context, c *cache, tag string, pin lock.Image) (Pulled, error) {
	res := Pulled{Tag: tag, Digest: pin.Digest}
	top, err := v1.NewHash(pin.Digest)
	if err != nil {
		return res, fmt.Errorf("the lock's digest %q: %w", pin.Digest, err)
	}
	if err := c.verify(tag, pin); err == nil {
		res.Cached = true
		return res, c.name(tag, pin)
	}
	ref, err := o.parseTag(tag)
	if err != nil {
		return res, err
	}
	dref := ref.Context().Digest(top.String())
	ro := o.remote(ctx)
	desc, err := remote.Get(dref, ro...)
	if err != nil {
		return res, err
	}
	if err := c.put(top, int64(len(desc.Manifest)), bytes.NewReader(desc.Manifest), nil); err != nil {
		return res, err
	}
	var imgs []v1.Image
	switch {
	case desc.MediaType.IsIndex():
		if len(pin.Platforms) == 0 {
			return res, fmt.Errorf("%s is an index but the lock pins no platform of it; run `scratchgen images pin`", top)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return res, fmt.Errorf("reading index %s: %w", top, err)
		}
		for _, p := range slices.Sorted(maps.Keys(pin.Platforms)) {
			h, err := v1.NewHash(pin.Platforms[p])
			if err != nil {
				return res, fmt.Errorf("the lock's %s digest %q: %w", p, pin.Platforms[p], err)
			}
			if !slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == h }) {
				return res, fmt.Errorf("the lock pins %s for %s, which index %s does not list", h, p, top)
			}
			img, err := remote.Image(ref.Context().Digest(h.String()), ro...)
			if err != nil {
				return res, fmt.Errorf("%s image %s: %w", p, h, err)
			}
			imgs = append(imgs, img)
		}
	case desc.MediaType.IsImage():
		if len(pin.Platforms) > 0 {
			return res, fmt.Errorf("the lock pins platforms of %s, which is a single image; run `scratchgen images pin`", top)
		}
		img, err := desc.Image()
		if err != nil {
			return res, err
		}
		imgs = append(imgs, img)
	default:
		return res, fmt.Errorf("%s is a %s, not an image or an image index", top, desc.MediaType)
	}
	bar := newBar(o.progress, tag)
	for _, img := range imgs {
		n, err := c.putImage(img, bar)
		res.Bytes += n
		if err != nil {
			bar.done(err)
			return res, err
		}
	}
	bar.done(nil)
	if err := c.name(tag, pin); err != nil {
		return res, err
	}
	if err := c.verify(tag, pin); err != nil {
		return res, err
	}
	return res, c.validate(tag, pin)
}

// putImage stores one image's manifest, config and layers, skipping verified blobs.
func (c *cache) putImage(img v1.Image, bar *bar) (int64, error) {
	d, err := img.Digest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	var fetched int64
	var todo []v1.Descriptor
	for _, l := range m.Layers {
		if !c.has(l.Digest, l.Size) {
			todo = append(todo, l)
			bar.add(l.Size)
		}
	}
	if !c.has(m.Config.Digest, m.Config.Size) {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return fetched, fmt.Errorf("config %s: %w", m.Config.Digest, err)
		}
		if err := c.put(m.Config.Digest, m.Config.Size, bytes.NewReader(cfg), nil); err != nil {
			return fetched, err
		}
		fetched += int64(len(cfg))
	}
	for _, l := range todo {
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return fetched, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return fetched, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		err = c.put(l.Digest, l.Size, rc, bar)
		rc.Close()
		if err != nil {
			return fetched, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		fetched += l.Size
	}
	// The manifest last: a manifest in the cache means its blobs were complete once.
	return fetched, c.put(d, int64(len(raw)), bytes.NewReader(raw), nil)
}

// validate runs validate.Image on every image of a cached pin, read through the layout.
func (c *cache) validate(tag string, pin lock.Image) error {
	ii, err := c.layout.ImageIndex()
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.dir, err)
	}
	top, _ := v1.NewHash(pin.Digest)
	check := func(img v1.Image, err error) error {
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			return fmt.Errorf("image %s in the cache is invalid: %w", tag, err)
		}
		return nil
	}
	if len(pin.Platforms) == 0 {
		return check(ii.Image(top))
	}
	idx, err := ii.ImageIndex(top)
	if err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	for _, p := range slices.Sorted(maps.Keys(pin.Platforms)) {
		h, _ := v1.NewHash(pin.Platforms[p])
		if err := check(idx.Image(h)); err != nil {
			return err
		}
	}
	return nil
}
