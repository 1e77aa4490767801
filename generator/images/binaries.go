package images

// Binaries share the image cache (one OCI image layout: a download is a blob under
// blobs/sha256/<its SHA-256>, beside the image layers), its verified writes (put) and
// reads, and the progress bar: one cache and one pull design for everything a node needs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/lock"
)

// maxDownload bounds one binary download (a release archive of containerd is ~40 MB).
const maxDownload = 2 << 30

// BinaryCheck is run on a download while it is pinned (e.g. that an archive holds the
// members the spec extracts); an error refuses the pin.
type BinaryCheck func(url string, data []byte) error

// PinBinaries downloads each URL and pins it by SHA-256, SHA-512 and size. check (may be
// nil) is run on each download. Nothing is cached: pull verifies against the pins.
func PinBinaries(ctx context.Context, urls []string, check BinaryCheck, opts ...Option) (map[string]lock.Binary, error) {
	o := makeOptions(opts)
	out := map[string]lock.Binary{}
	for _, u := range urls {
		var buf bytes.Buffer
		h256, h512 := sha256.New(), sha512.New()
		n, err := o.download(ctx, u, io.MultiWriter(&buf, h256, h512))
		if err != nil {
			return nil, fmt.Errorf("pinning %s: %w", u, err)
		}
		if check != nil {
			if err := check(u, buf.Bytes()); err != nil {
				return nil, fmt.Errorf("pinning %s: %w", u, err)
			}
		}
		out[u] = lock.Binary{SHA256: hex.EncodeToString(h256.Sum(nil)), SHA512: hex.EncodeToString(h512.Sum(nil)), Size: n}
	}
	return out, nil
}

// PulledBinary is one download PullBinaries verified in the cache.
type PulledBinary struct {
	URL string
	Pin lock.Binary
	// Cached: it was already in the cache, intact; nothing was fetched.
	Cached bool
}

// PullBinaries fills the cache with the pinned downloads: each is fetched (unless the
// cache holds it intact), checked against its pin's size, SHA-256 and SHA-512 before it
// is stored, and stored as the blob of its SHA-256. A download that differs from its pin
// is refused, naming the URL, and never stored.
func PullBinaries(ctx context.Context, pins map[string]lock.Binary, cacheDir string, opts ...Option) ([]PulledBinary, error) {
	o := makeOptions(opts)
	c, err := openCache(cacheDir, true)
	if err != nil {
		return nil, err
	}
	var out []PulledBinary
	for _, u := range slices.Sorted(maps.Keys(pins)) {
		pin := pins[u]
		h := v1.Hash{Algorithm: "sha256", Hex: pin.SHA256}
		res := PulledBinary{URL: u, Pin: pin}
		if _, err := c.binary(u, pin); err == nil {
			res.Cached = true
			out = append(out, res)
			continue
		}
		var buf bytes.Buffer
		if _, err := o.download(ctx, u, &buf); err != nil {
			return out, fmt.Errorf("pulling %s: %w", u, err)
		}
		if err := binaries.Check(buf.Bytes(), pin.SHA256, pin.SHA512, pin.Size); err != nil {
			return out, fmt.Errorf("pulling %s: the server sent %v; refused (run `scratchgen binaries pin` only if the new content is trusted)", u, err)
		}
		if err := c.put(h, pin.Size, &buf, nil); err != nil {
			return out, fmt.Errorf("pulling %s: %w", u, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// ReadBinaries reads the pinned downloads from the cache, each verified against its pin;
// an error names the URL and the cache file.
func ReadBinaries(cacheDir string, pins map[string]lock.Binary) (map[string][]byte, error) {
	c, err := openCache(cacheDir, false)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, u := range slices.Sorted(maps.Keys(pins)) {
		data, err := c.binary(u, pins[u])
		if err != nil {
			return nil, err
		}
		out[u] = data
	}
	return out, nil
}

// binary reads one pinned download from the cache and verifies it.
func (c *cache) binary(u string, pin lock.Binary) ([]byte, error) {
	h := v1.Hash{Algorithm: "sha256", Hex: pin.SHA256}
	var buf bytes.Buffer
	err := c.copyVerified(&buf, h, pin.Size)
	if err == nil {
		err = binaries.Check(buf.Bytes(), pin.SHA256, pin.SHA512, pin.Size)
	}
	if errors.Is(err, errNotCached) {
		return nil, fmt.Errorf("%s is not in the cache %s; run `scratchgen binaries pull`", u, c.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: the cache's %s is not what the lock pins (%v); run `scratchgen binaries pull` to fetch it again", u, c.blobPath(h), err)
	}
	return buf.Bytes(), nil
}

// download GETs u into w with a progress bar, bounded by maxDownload.
func (o *options) download(ctx context.Context, u string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	client := http.DefaultClient
	if o.transport != nil {
		client = &http.Client{Transport: o.transport}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	bar := newBar(o.progress, u)
	if resp.ContentLength > 0 {
		bar.add(resp.ContentLength)
	}
	n, err := io.Copy(io.MultiWriter(w, bar), io.LimitReader(resp.Body, maxDownload+1))
	bar.done(err)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", u, err)
	}
	if n > maxDownload {
		return n, fmt.Errorf("GET %s: more than %d bytes", u, int64(maxDownload))
	}
	return n, nil
}
