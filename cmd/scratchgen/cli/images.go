package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/render"
)

// imagesSubcommands returns the `scratchgen images` subcommands.
func imagesSubcommands() []command {
	return []command{
		{"list", "[-f cluster.yaml] [--lock F] [--node NAME]", "print the image references each node needs, as rendered (offline)", runImagesList},
		{"pin", "[-f cluster.yaml] [--lock F] [--insecure]", "resolve every image tag to its digest and record it in the lock (online)", runImagesPin},
		{"pull", "[-f cluster.yaml] [--lock F] [--cache DIR] [--insecure]", "fetch the pinned images into the image cache and verify them (online)", runImagesPull},
	}
}

// runImages dispatches `scratchgen images SUBCOMMAND`.
func runImages(r *runner, args []string) error {
	return r.runGroup("images", "list, pin and pull the container images of a cluster", imagesSubcommands(),
		"Only pin and pull use the network. render stays offline: it renders the lock's digests,\nand with --with-images (or images.embed: true) copies each node's images from the cache\ninto its bundle.\n", args)
}

// runGroup dispatches `scratchgen GROUP SUBCOMMAND` (images, binaries).
func (r *runner) runGroup(group, what string, subs []command, about string, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintf(r.io.Out, "scratchgen %s: %s\n\nUsage:\n  scratchgen %s SUBCOMMAND [flags]\n\nSubcommands:\n", group, what, group)
		for _, s := range subs {
			fmt.Fprintf(r.io.Out, "  %-5s %s\n", s.name, s.short)
		}
		fmt.Fprintf(r.io.Out, "\n%sRun `scratchgen %s SUBCOMMAND --help` for its flags.\n", about, group)
		if len(args) == 0 {
			return &ExitError{Code: 1}
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			r.group, r.subs = group, subs
			return s.run(r, args[1:])
		}
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: unknown subcommand %q; run `scratchgen %s --help`", group, args[0], group)}
}

// parseSub parses a subcommand's flags, handling --help and refusing arguments.
func (r *runner) parseSub(sub string, args []string) (bool, error) {
	group, subs := r.group, r.subs
	help := r.flags.BoolP("help", "h", false, "show this help")
	if err := r.flags.Parse(args); err != nil {
		return false, &ExitError{Code: 1, Msg: fmt.Sprintf("%s %s: %v; run `scratchgen %s %s --help`", group, sub, err, group, sub)}
	}
	if *help {
		for _, s := range subs {
			if s.name == sub {
				fmt.Fprintf(r.io.Out, "scratchgen %s %s: %s\n\nUsage:\n  scratchgen %s %s %s\n\nFlags:\n", group, s.name, s.short, group, s.name, s.args)
			}
		}
		fmt.Fprint(r.io.Out, r.flags.FlagUsages())
		return true, nil
	}
	return false, r.noArgs(group + " " + sub)
}

// loadModel reads and resolves the spec against the lock, printing warnings.
func (r *runner) loadModel(f *specFlags) (*model.Cluster, *lock.Lock, error) {
	res, lk, err := r.resolve(f, "", render.ResolveOptions{})
	if err != nil {
		return nil, nil, err
	}
	return res.Cluster, lk, nil
}

func runImagesList(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	node := r.flags.String("node", "", "print only this node's references, without the header")
	if done, err := r.parseSub("list", args); done || err != nil {
		return err
	}
	c, _, err := r.loadModel(f)
	if err != nil {
		return err
	}
	list := images.List(component.Default(), c)
	if *node != "" {
		for _, n := range list {
			if n.Node == *node {
				for _, ref := range n.Refs {
					fmt.Fprintln(r.io.Out, ref)
				}
				return nil
			}
		}
		return &ExitError{Code: 1, Msg: fmt.Sprintf("images list: the spec has no node %q", *node)}
	}
	fmt.Fprint(r.io.Out, images.FormatList(list))
	if u := render.Unpinned(c); len(u) > 0 {
		fmt.Fprintf(r.io.Err, "%s: %d image(s) not pinned by digest in %s; run `scratchgen images pin -f %s`\n", f.spec, len(u), f.lock, f.spec)
	}
	return nil
}

func runImagesPin(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	insecure := r.flags.Bool("insecure", false, "use plain HTTP for registries (loopback and private addresses use it anyway)")
	if done, err := r.parseSub("pin", args); done || err != nil {
		return err
	}
	c, lk, err := r.loadModel(f)
	if err != nil {
		return err
	}
	var opts []images.Option
	if *insecure {
		opts = append(opts, images.WithInsecure())
	}
	pins, err := images.Pin(context.Background(), images.All(c), opts...)
	if err != nil {
		return err
	}
	if lk == nil {
		lk = lock.New(c.Name)
	}
	out := lk.Clone()
	if out.Images == nil {
		out.Images = map[string]lock.Image{}
	}
	tags := make([]string, 0, len(pins))
	for t := range pins {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, t := range tags {
		p := pins[t]
		note := ""
		if old, ok := out.Images[t]; !ok {
			note = " (new)"
		} else if old.Digest != p.Digest {
			note = " (was " + old.Digest + ")"
		}
		var plats []string
		for _, pl := range images.Platforms {
			if p.Platforms[pl] != "" {
				plats = append(plats, pl)
			}
		}
		if len(plats) > 0 {
			note = " [" + strings.Join(plats, ", ") + "]" + note
		}
		fmt.Fprintf(r.io.Out, "%s@%s%s\n", t, p.Digest, note)
		out.Images[t] = p
	}
	return r.writePins(f, out, fmt.Sprintf("%d images", len(tags)))
}

// writePins writes the lock with new pins (atomically; not at all when unchanged) and
// says so.
func (r *runner) writePins(f *specFlags, lk *lock.Lock, what string) error {
	data, err := lk.Marshal()
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(f.lock); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(r.io.Out, "lock %s is up to date\n", f.lock)
		return nil
	}
	if err := writeFileAtomic(f.lock, data, 0o644); err != nil {
		return fmt.Errorf("writing lock %s: %w", f.lock, err)
	}
	fmt.Fprintf(r.io.Out, "pinned %s in %s\n", what, f.lock)
	return nil
}

// progress draws pin and pull progress on stderr when it is a terminal.
func (r *runner) progress(opts ...images.Option) []images.Option {
	if isTerminal(r.io.Err) {
		opts = append(opts, images.WithProgress(r.io.Err))
	}
	return opts
}

// defaultImageCache is where images are cached without --cache: the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache)/scratchgen/images. The cache is
// content-addressed (blobs by digest), so specs and clusters share it safely.
func defaultImageCache() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the image cache: %w; pass --cache (or --image-cache) DIR", err)
	}
	return filepath.Join(dir, "scratchgen", "images"), nil
}

const cacheHelp = "the image cache, an OCI image layout (default: $XDG_CACHE_HOME or ~/.cache, then scratchgen/images)"

// pinsFor returns the lock's pins of every image some node needs, or an error naming
// those it does not pin.
func pinsFor(c *model.Cluster, lk *lock.Lock, spec string) (map[string]lock.Image, error) {
	pins := map[string]lock.Image{}
	var missing []string
	for _, t := range images.Needed(component.Default(), c) {
		p, ok := lock.Image{}, false
		if lk != nil {
			p, ok = lk.Images[t]
		}
		if !ok || p.Digest == "" {
			missing = append(missing, t)
			continue
		}
		pins[t] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the lock pins none of: %s; run `scratchgen images pin -f %s` first", strings.Join(missing, ", "), spec)
	}
	return pins, nil
}

func runImagesPull(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	cacheDir := r.flags.String("cache", "", cacheHelp)
	insecure := r.flags.Bool("insecure", false, "use plain HTTP for registries (loopback and private addresses use it anyway)")
	if done, err := r.parseSub("pull", args); done || err != nil {
		return err
	}
	c, lk, err := r.loadModel(f)
	if err != nil {
		return err
	}
	pins, err := pinsFor(c, lk, f.spec)
	if err != nil {
		return err
	}
	if *cacheDir == "" {
		if *cacheDir, err = defaultImageCache(); err != nil {
			return err
		}
	}
	var opts []images.Option
	if *insecure {
		opts = append(opts, images.WithInsecure())
	}
	opts = r.progress(opts...)
	pulled, err := images.Pull(context.Background(), pins, *cacheDir, opts...)
	for _, p := range pulled {
		what := fmt.Sprintf("pulled (%d bytes)", p.Bytes)
		if p.Cached {
			what = "cached"
		}
		fmt.Fprintf(r.io.Out, "%s@%s %s\n", p.Tag, p.Digest, what)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.io.Out, "image cache %s holds the %d images the nodes need, verified\n", *cacheDir, len(pulled))
	return nil
}

// isTerminal reports whether w is a character device (a terminal), where a progress bar
// belongs; pipes, files and test buffers get none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// loadImageArchives reads, offline and from the cache, the archive of every pinned image
// some node needs, for render --with-images and images.embed. Unpinned images are left
// out: rendering then reports them.
func loadImageArchives(c *model.Cluster, lk *lock.Lock, cacheDir string) (map[string][]byte, error) {
	if cacheDir == "" {
		var err error
		if cacheDir, err = defaultImageCache(); err != nil {
			return nil, err
		}
	}
	out := map[string][]byte{}
	for _, t := range images.Needed(component.Default(), c) {
		if lk == nil || lk.Images[t].Digest == "" {
			continue
		}
		data, err := images.Archive(cacheDir, t, lk.Images[t])
		if err != nil {
			return nil, err
		}
		out[t] = data
	}
	return out, nil
}
