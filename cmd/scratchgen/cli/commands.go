package cli

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/review"
	"github.com/scratchgen/scratchgen/generator/rootsecret"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/versions"
	"github.com/scratchgen/scratchgen/generator/writer"
)

var cryptoRand = rand.Reader

func runInit(r *runner, args []string) error {
	name := r.flags.String("name", "demo", "cluster name (a DNS-1123 label)")
	if done, err := r.parse("init", args); done || err != nil {
		return err
	}
	if err := r.noArgs("init"); err != nil {
		return err
	}
	if err := model.CheckClusterName(*name); err != nil {
		return &ExitError{Code: 1, Msg: "init: --name " + err.Error()}
	}
	fmt.Fprint(r.io.Out, spec.Example(*name))
	return nil
}

func runVersion(r *runner, args []string) error {
	if done, err := r.parse("version", args); done || err != nil {
		return err
	}
	fmt.Fprintf(r.io.Out, "scratchgen %s (Kubernetes minors %s; default %s)\n", Version, versions.Supported(), versions.Default)
	return nil
}

func runValidate(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	if done, err := r.parse("validate", args); done || err != nil {
		return err
	}
	if err := r.noArgs("validate"); err != nil {
		return err
	}
	res, _, err := r.resolve(f, "", render.ResolveOptions{})
	if err != nil {
		return err
	}
	c := res.Cluster
	fmt.Fprintf(r.io.Out, "%s: cluster %s is valid (Kubernetes %s, %d nodes)\n", f.spec, c.Name, c.Version, len(c.Nodes))
	return nil
}

// outputFlag is -o: where bundles go.
func (r *runner) outputFlag(name string) *string {
	return r.flags.StringP(name, "o", "bundles", "output directory; the bundle goes to <output>/<cluster>")
}

// checkOutput refuses an empty -o, which would put keys in the current directory.
func checkOutput(out string) error {
	if strings.TrimSpace(out) == "" {
		return &ExitError{Code: 1, Msg: "-o is empty: name the directory bundles go to (default bundles)"}
	}
	return nil
}

// renderOpts are render's flags that shape the plan.
type renderOpts struct {
	withImages, withBinaries, requirePinned, newPKI, allowNet bool
	imageCache                                                string
}

func runRender(r *runner, args []string) error {
	f := r.addSpecFlags(true)
	out := r.outputFlag("output")
	check := r.flags.Bool("check", false, "write nothing; exit 2 when the bundle or lock on disk differs from what would be rendered (works without the root secret)")
	withImages := r.flags.Bool("with-images", false, "embed each node's images, read from the image cache (as images.embed: true)")
	withBinaries := r.flags.Bool("with-binaries", false, "carry each node's pinned binaries in its rootfs/, read from the cache (as binaries.embed: true)")
	imageCache := r.flags.String("image-cache", "", cacheHelp+"; binaries are cached there too")
	requirePinned := r.flags.Bool("require-pinned", false, "fail when an image is not pinned by digest, or a binary by hash, in the lock (as images.requirePinned and binaries.requirePinned)")
	newPKI := r.flags.Bool("new-pki", false, "start a new PKI on purpose: issue every key, certificate and token anew (from the given secret, or a new one), ignoring the lock's records")
	allowNet := r.flags.Bool("allow-network-change", false, "let the spec move the pod range, service range or node mask size the lock allocated in (re-addresses nodes)")
	noCache := r.flags.Bool("no-cache", false, "plan every node even when no input changed since the last render of an untouched bundle (the render cache: $SCRATCHGEN_RENDER_CACHE, default ~/.cache/scratchgen)")
	if done, err := r.parse("render", args); done || err != nil {
		return err
	}
	if err := r.noArgs("render"); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	f.defaults()
	if *check {
		return r.renderCheck(f, *out, renderOpts{withImages: *withImages, withBinaries: *withBinaries, imageCache: *imageCache, requirePinned: *requirePinned, newPKI: *newPKI, allowNet: *allowNet})
	}
	cache := renderCache{dir: r.env.RenderCache}
	if *noCache {
		cache.dir = ""
	}
	// Finish (or undo) an interrupted render first, so the lock read below is current.
	if name := clusterName(f); name != "" {
		if err := writer.Recover(filepath.Join(*out, name), f.lock, r.secretPath(f)); err != nil {
			return err
		}
		cache.readAhead(filepath.Join(*out, name))
		defer cache.stop()
	}
	// Validate before anything is written, the secret included.
	resolved, lk, err := r.resolve(f, "; nothing was rendered", render.ResolveOptions{AllowNetworkChange: *allowNet})
	if err != nil {
		return err
	}
	c := resolved.Cluster
	dir := filepath.Join(*out, c.Name)
	var archives map[string][]byte
	if *withImages || c.Images.Embed {
		if archives, err = loadImageArchives(c, lk, *imageCache); err != nil {
			return err
		}
	}
	var bins map[string][]byte
	if *withBinaries || c.Binaries.Embed {
		if bins, err = loadBinaries(c, *imageCache, f.spec); err != nil {
			return &ExitError{Code: 1, Msg: "render --with-binaries: " + err.Error() + "; nothing was rendered"}
		}
	}
	src, err := r.findSecret(f)
	if err != nil {
		return err
	}
	var sidecars []writer.Sidecar
	switch {
	case *newPKI:
		fresh := resolved.Lock.Clone()
		fresh.Certificates, fresh.RootSecret = nil, nil
		resolved.Lock = fresh
		fmt.Fprintf(r.io.Err, "--new-pki: issuing a new PKI: every key, certificate and token of %s is replaced; re-provision every node and replace every kubeconfig\n", c.Name)
	default:
		if err := checkSecret(f, lk, src, c.Name, dir); err != nil {
			return err
		}
	}
	created := false
	if src == nil {
		if f.secret == "-" || strings.HasSuffix(r.secretPath(f), ageSuffix) {
			return fmt.Errorf("no root secret to create at %s; pass a file path with --secret", secretLooked(f))
		}
		value := make([]byte, 32)
		if _, err := io.ReadFull(r.env.Random, value); err != nil {
			return fmt.Errorf("creating root secret: %w", err)
		}
		src, created = &secretSource{value: value, from: r.secretPath(f)}, true
		sidecars = append(sidecars, writer.Sidecar{Path: r.secretPath(f), Data: rootsecret.Format(value), Mode: 0o600})
	}
	inputs := renderInputs{cluster: c.Name, flags: []string{fmt.Sprintf("with-images=%v with-binaries=%v require-pinned=%v allow-network-change=%v", *withImages, *withBinaries, *requirePinned, *allowNet)}}
	if !*newPKI && !created && f.lockRead {
		// The bytes Resolve read, not the files again: they may change meanwhile.
		inputs.spec, inputs.lock, inputs.secret = f.loadedSpec, f.loadedLock, src.value
		if ok, n := cache.fresh(dir, inputs); ok {
			// Nothing changed since the render that wrote exactly this bundle.
			warnUnpinned(r, f, render.Unpinned(c))
			fmt.Fprintf(r.io.Out, "%s is up to date (%d files; no input changed since its last render)\n", dir, n)
			return nil
		}
	}
	cache.stop()
	// Refuse an output directory scratchgen did not write before anything is planned or
	// written (a bundle the render cache vouches for is exactly what scratchgen wrote).
	if _, err := writer.Check(dir, nil); err != nil {
		return err
	}
	res, err := render.Plan(resolved, render.Deps{Renderer: renderer(), Secret: src.value, Now: r.env.Now(), WithImages: *withImages, ImageArchives: archives,
		WithBinaries: *withBinaries, BinaryData: bins, RequirePinned: *requirePinned})
	if err != nil {
		return reportSpecErrors(r, f, err, "; nothing was rendered")
	}
	warnUnpinned(r, f, res.Unpinned)
	// The lock is encoded while the plan is flattened (a tenth of a second each at 1,000
	// nodes, and neither reads what the other writes).
	var lockData []byte
	encoded := make(chan error, 1)
	go func() {
		var err error
		lockData, err = res.Lock.Marshal()
		encoded <- err
	}()
	files := res.Plan.Files()
	if err := <-encoded; err != nil {
		return err
	}
	sidecars = append(sidecars, writer.Sidecar{Path: f.lock, Data: lockData, Mode: 0o644})
	result, err := writer.Write(dir, files, writer.WithSidecars(sidecars...))
	if err != nil {
		return err
	}
	if !*newPKI {
		// The bundle and the lock are now what these inputs render.
		inputs.spec, inputs.lock, inputs.secret = f.loadedSpec, lockData, src.value
		if err := cache.store(dir, inputs); err != nil {
			fmt.Fprintf(r.io.Err, "warning: recording the render in the render cache: %v (the next render plans every node)\n", err)
		}
	}
	if created {
		fmt.Fprintf(r.io.Err, "created root secret %s (0600): back it up (or encrypt it with `scratchgen secret encrypt`) and never commit it in plain text; every key and token is derived from it, so losing it means a new PKI\n", src.from)
	}
	if !result.Wrote {
		if len(result.Sidecars) > 0 {
			fmt.Fprintf(r.io.Out, "%s is up to date (%d files); updated %s\n", dir, len(files), f.lock)
			return nil
		}
		fmt.Fprintf(r.io.Out, "%s is up to date (%d files)\n", dir, len(files))
		return nil
	}
	fmt.Fprintf(r.io.Out, "rendered %s: %d nodes, %d files and SHA256SUMS (%d added, %d changed, %d removed)\n", dir, len(res.Plan.Nodes), len(files), len(result.Added), len(result.Changed), len(result.Removed))
	return nil
}

// warnUnpinned warns about the images a render carries by tag.
func warnUnpinned(r *runner, f *specFlags, u []string) {
	if len(u) > 0 {
		fmt.Fprintf(r.io.Err, "%s: warning: %d image(s) not pinned by digest in %s, rendered by tag: %s; run `scratchgen images pin -f %s`\n", f.spec, len(u), f.lock, strings.Join(u, ", "), f.spec)
	}
}

// secretPath is where a new root secret is created: --secret FILE, else <stem>.secret.
func (r *runner) secretPath(f *specFlags) string {
	if f.secret != "" && f.secret != "-" {
		return f.secret
	}
	return f.stem() + ".secret"
}

// clusterName reads the cluster name from the spec without validating it ("" when it
// cannot), to find the bundle directory before the lock is read.
func clusterName(f *specFlags) string {
	data, err := readBounded(f.spec, "spec", "", spec.MaxSize)
	if err != nil {
		return ""
	}
	doc, _ := spec.Parse(data)
	if doc == nil || strings.ContainsAny(doc.Cluster.Metadata.Name, "/\\") || doc.Cluster.Metadata.Name == "" {
		return ""
	}
	return doc.Cluster.Metadata.Name
}

func printChanges(r *runner, dir string, ch writer.Changes) {
	fmt.Fprintf(r.io.Out, "%s differs from the spec:\n", dir)
	for _, s := range []struct {
		mark  string
		paths []string
	}{{"+", ch.Added}, {"~", ch.Changed}, {"-", ch.Removed}} {
		for _, p := range s.paths {
			fmt.Fprintf(r.io.Out, "  %s %s\n", s.mark, p)
		}
	}
}

// writeFileAtomic replaces path with data via a temporary file and rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Chmod(mode), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// renderCheck is render --check: it writes nothing and exits 2 when the bundle or the
// lock on disk differs from what render would write. Without the root secret it checks
// every public file exactly and reports what needs the secret.
func (r *runner) renderCheck(f *specFlags, out string, o renderOpts) error {
	rv, err := r.reviewPlan(f, out, o)
	if err != nil {
		return err
	}
	res, dir, lockChanged := rv.res, rv.dir, rv.lockChanged
	ch, err := writer.Check(dir, res.Plan.Files())
	if err != nil {
		return err
	}
	warnLeftover(r, dir)
	notChecked := ""
	if len(ch.Unchecked) > 0 {
		notChecked = fmt.Sprintf(" (%d secret file(s) not checked: they need the root secret)", len(ch.Unchecked))
	}
	if ch.Empty() && !lockChanged && len(res.Pending) == 0 {
		fmt.Fprintf(r.io.Out, "%s is up to date%s\n", dir, notChecked)
		return nil
	}
	printChanges(r, dir, ch)
	for _, p := range res.Pending {
		verb := review.PendingIdentity{Reason: p.Reason}.Verb()
		fmt.Fprintf(r.io.Out, "  %s %s: %s (needs the root secret)\n", verb, p.ID, p.Reason)
	}
	if lockChanged {
		fmt.Fprintf(r.io.Out, "  lock %s would change\n", f.lock)
	}
	if notChecked != "" {
		fmt.Fprintf(r.io.Out, "%s\n", strings.TrimSpace(strings.Trim(notChecked, " ()")))
	}
	return exitChanges
}

// reviewed is what render would write and how its lock compares, for render --check and
// diff.
type reviewed struct {
	res         *render.Output
	lock        *lock.Lock // the lock on disk (nil when none)
	dir         string     // the bundle directory
	lockChanged bool
}

// reviewPlan resolves the spec and plans what render would write into out, without
// writing anything (see planForReview).
func (r *runner) reviewPlan(f *specFlags, out string, o renderOpts) (*reviewed, error) {
	if name := clusterName(f); name != "" {
		if err := checkNoPending(filepath.Join(out, name), f.lock, r.secretPath(f)); err != nil {
			return nil, err
		}
	}
	resolved, lk, err := r.resolve(f, "", render.ResolveOptions{AllowNetworkChange: o.allowNet})
	if err != nil {
		return nil, err
	}
	c := resolved.Cluster
	dir := filepath.Join(out, c.Name)
	deps := render.Deps{Renderer: renderer(), Now: r.env.Now(), WithImages: o.withImages, WithBinaries: o.withBinaries, RequirePinned: o.requirePinned}
	if o.withImages || c.Images.Embed {
		if deps.ImageArchives, err = loadImageArchives(c, lk, o.imageCache); err != nil {
			return nil, err
		}
	}
	if o.withBinaries || c.Binaries.Embed {
		if deps.BinaryData, err = loadBinaries(c, o.imageCache, f.spec); err != nil {
			return nil, err
		}
	}
	res, err := r.planForReview(f, resolved, lk, dir, deps, o.newPKI)
	if err != nil {
		return nil, err
	}
	lockData, err := res.Lock.Marshal()
	if err != nil {
		return nil, err
	}
	oldLock, err := os.ReadFile(f.lock)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading lock %s: %w", f.lock, err)
	}
	return &reviewed{res: res, lock: lk, dir: dir, lockChanged: !bytes.Equal(oldLock, lockData)}, nil
}

// planForReview plans what render would write, for render --check and diff: with the
// root secret when one is found (it must be the lock's), otherwise without it, reusing
// the certificates of the bundle on disk that are still right.
func (r *runner) planForReview(f *specFlags, resolved *render.Resolved, lk *lock.Lock, dir string, deps render.Deps, newPKI bool) (*render.Output, error) {
	src, err := r.findSecret(f)
	if err != nil {
		return nil, err
	}
	if src == nil && f.secret != "" {
		return nil, fmt.Errorf("root secret %s does not exist; pass the right --secret, or leave it out to review without the secret", f.secret)
	}
	switch {
	case newPKI:
		fresh := resolved.Lock.Clone()
		fresh.Certificates, fresh.RootSecret = nil, nil
		resolved.Lock = fresh
	case src != nil:
		if err := checkSecret(f, lk, src, resolved.Cluster.Name, dir); err != nil {
			return nil, err
		}
	}
	if src != nil {
		deps.Secret = src.value
	} else {
		deps.Existing = existingFiles(dir)
	}
	res, err := render.Plan(resolved, deps)
	if err != nil {
		return nil, reportSpecErrors(r, f, err, "")
	}
	return res, nil
}

// existingFiles reads files of the bundle on disk for a review without the secret: a
// node's file at its node path, or an admin/ file for node "".
func existingFiles(dir string) func(node, path string) []byte {
	return func(node, p string) []byte {
		full := filepath.Join(dir, "admin", filepath.FromSlash(p))
		if node != "" {
			full = filepath.Join(dir, "nodes", node, "rootfs", filepath.FromSlash(p))
		}
		data, err := readBounded(full, "bundle file", "", 1<<20)
		if err != nil {
			return nil
		}
		return data
	}
}

// checkNoPending refuses to compare while an interrupted render waits to be finished.
func checkNoPending(dir string, sidecars ...string) error {
	for _, p := range append([]string{filepath.Join(dir, writer.CommitName)}, sidecars...) {
		if strings.HasSuffix(p, writer.CommitName) {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("a render of %s was interrupted after its commit; run `scratchgen render` to finish it, then check again", dir)
			}
			continue
		}
		if _, err := os.Lstat(p + writer.PendingSuffix); err == nil {
			return fmt.Errorf("an interrupted render left %s; run `scratchgen render` to finish or undo it, then check again", p+writer.PendingSuffix)
		}
	}
	return nil
}

// renderer names this scratchgen in bundle.json.
func renderer() string { return "scratchgen " + Version }

// warnLeftover says when an interrupted render left its staging directory behind.
func warnLeftover(r *runner, dir string) {
	if p := writer.Leftover(dir); p != "" {
		fmt.Fprintf(r.io.Err, "warning: an interrupted render left %s (a half-written bundle, keys included; git ignores it); the next render removes it\n", p)
	}
}
