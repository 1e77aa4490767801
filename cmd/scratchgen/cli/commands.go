package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/render"
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

// specFlags are the flags shared by commands that read a spec.
type specFlags struct {
	spec, lock, secret string
}

func (r *runner) addSpecFlags(withSecret bool) *specFlags {
	f := &specFlags{}
	r.flags.StringVarP(&f.spec, "file", "f", "cluster.yaml", "the cluster spec")
	r.flags.StringVar(&f.lock, "lock", "", "the lock file (default: <spec stem>.lock beside the spec)")
	if withSecret {
		r.flags.StringVar(&f.secret, "secret", "", "the root secret (default: <spec stem>.secret beside the spec; created 0600 on first render)")
	}
	return f
}

func (f *specFlags) defaults() {
	stem := strings.TrimSuffix(f.spec, filepath.Ext(f.spec))
	if f.lock == "" {
		f.lock = stem + ".lock"
	}
	if f.secret == "" {
		f.secret = stem + ".secret"
	}
}

// load applies the defaults and reads the spec and the lock (nil when there is none yet).
func (f *specFlags) load() ([]byte, *lock.Lock, error) {
	f.defaults()
	data, err := readFile(f.spec, "spec", "create one with `scratchgen init > cluster.yaml`")
	if err != nil {
		return nil, nil, err
	}
	lk, err := loadLock(f.lock)
	return data, lk, err
}

// loadLock reads the lock, or returns nil when it does not exist yet.
func loadLock(path string) (*lock.Lock, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lock %s: %w", path, err)
	}
	l, err := lock.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// reportSpecErrors prints validation problems, one per line, and returns exit 1.
func reportSpecErrors(r *runner, file string, err error, consequence string) error {
	var inv *render.InvalidSpecError
	if errors.As(err, &inv) {
		fmt.Fprint(r.io.Err, inv.Problems.Format(file))
		n := len(inv.Problems.Errors())
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: %d problem(s)%s", file, n, consequence)}
	}
	return err
}

func printWarnings(r *runner, file string, w field.List) {
	if len(w) > 0 {
		fmt.Fprint(r.io.Err, w.Format(file))
	}
}

func runValidate(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	if done, err := r.parse("validate", args); done || err != nil {
		return err
	}
	if err := r.noArgs("validate"); err != nil {
		return err
	}
	f.defaults()
	data, lk, err := f.load()
	if err != nil {
		return err
	}
	res, err := render.Resolve(data, lk)
	if err != nil {
		return reportSpecErrors(r, f.spec, err, "")
	}
	printWarnings(r, f.spec, res.Warnings)
	c := res.Cluster
	fmt.Fprintf(r.io.Out, "%s: cluster %s is valid (Kubernetes %s, %d nodes)\n", f.spec, c.Name, c.Version, len(c.Nodes))
	return nil
}

func runRender(r *runner, args []string) error {
	f := r.addSpecFlags(true)
	out := r.flags.StringP("output", "o", "bundles", "output directory; the bundle goes to <output>/<cluster>")
	check := r.flags.Bool("check", false, "write nothing; exit 2 when the bundle or lock on disk differs from what would be rendered")
	withImages := r.flags.Bool("with-images", false, "embed each node's images, read from the image cache (as images.embed: true)")
	imageCache := r.flags.String("image-cache", "", cacheHelp)
	requirePinned := r.flags.Bool("require-pinned", false, "fail when an image is not pinned by digest in the lock (as images.requirePinned: true)")
	if done, err := r.parse("render", args); done || err != nil {
		return err
	}
	if err := r.noArgs("render"); err != nil {
		return err
	}
	f.defaults()
	data, lk, err := f.load()
	if err != nil {
		return err
	}
	// Validate before anything is written, the secret included.
	resolved, err := render.Resolve(data, lk)
	if err != nil {
		return reportSpecErrors(r, f.spec, err, "; nothing was rendered")
	}
	c := resolved.Cluster
	var archives map[string][]byte
	if *withImages || c.Images.Embed {
		if archives, err = loadImageArchives(c, lk, *imageCache); err != nil {
			return err
		}
	}
	// Refuse an output directory scratchgen did not write before creating the secret or
	// the lock (comparing against no files only walks the tree and checks ownership).
	if _, err := writer.Check(filepath.Join(*out, c.Name), nil); err != nil {
		return err
	}
	secret, err := r.loadSecret(f.secret, !*check)
	if err != nil {
		return err
	}
	res, err := render.Plan(resolved, render.Deps{Secret: secret, Now: r.env.Now(), WithImages: *withImages, ImageArchives: archives, RequirePinned: *requirePinned})
	if err != nil {
		return reportSpecErrors(r, f.spec, err, "; nothing was rendered")
	}
	printWarnings(r, f.spec, res.Warnings)
	if u := res.Model.Images.Unpinned; len(u) > 0 {
		fmt.Fprintf(r.io.Err, "%s: warning: %d image(s) not pinned by digest in %s, rendered by tag: %s; run `scratchgen images pin -f %s`\n", f.spec, len(u), f.lock, strings.Join(u, ", "), f.spec)
	}
	lockData, err := res.Lock.Marshal()
	if err != nil {
		return err
	}
	oldLock, _ := os.ReadFile(f.lock)
	lockChanged := !bytes.Equal(oldLock, lockData)
	dir := filepath.Join(*out, res.Plan.Cluster)
	files := res.Plan.Files()
	if *check {
		ch, err := writer.Check(dir, files)
		if err != nil {
			return err
		}
		if ch.Empty() && !lockChanged {
			fmt.Fprintf(r.io.Out, "%s is up to date\n", dir)
			return nil
		}
		printChanges(r, dir, ch)
		if lockChanged {
			fmt.Fprintf(r.io.Out, "  lock %s would change\n", f.lock)
		}
		return exitChanges
	}
	// The lock first: a bundle without its lock could not be reproduced.
	if lockChanged {
		if err := writeFileAtomic(f.lock, lockData, 0o644); err != nil {
			return fmt.Errorf("writing lock: %w", err)
		}
	}
	result, err := writer.Write(dir, files)
	if err != nil {
		return err
	}
	if !result.Wrote {
		fmt.Fprintf(r.io.Out, "%s is up to date (%d files)\n", dir, len(files))
		return nil
	}
	fmt.Fprintf(r.io.Out, "rendered %s: %d nodes, %d files and SHA256SUMS (%d added, %d changed, %d removed)\n", dir, len(res.Plan.Nodes), len(files), len(result.Added), len(result.Changed), len(result.Removed))
	return nil
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

// loadSecret reads the root secret (64 hex digits), creating it when create is set.
func (r *runner) loadSecret(path string, create bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("root secret %s does not exist: render without --check first (it creates one), or pass --secret", path)
		}
		secret := make([]byte, 32)
		if _, err := r.env.Random.Read(secret); err != nil {
			return nil, fmt.Errorf("creating root secret: %w", err)
		}
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating root secret %s: %w", path, err)
		}
		_, werr := fh.WriteString(hex.EncodeToString(secret) + "\n")
		if err := errors.Join(werr, fh.Sync(), fh.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("writing root secret %s: %w", path, err)
		}
		fmt.Fprintf(r.io.Err, "created root secret %s (0600): back it up and never commit it; every key and token is derived from it, so losing it means a new PKI\n", path)
		return secret, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading root secret %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(r.io.Err, "warning: root secret %s is readable by others (mode %04o); run chmod 600 %s\n", path, st.Mode().Perm(), path)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) != 32 {
		return nil, fmt.Errorf("root secret %s is not 64 hexadecimal digits; restore it from your backup (its content is not shown)", path)
	}
	return secret, nil
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
