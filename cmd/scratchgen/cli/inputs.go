package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// specFlags are the flags shared by commands that read a spec.
type specFlags struct {
	spec, lock, secret, ageIdentity string
	// loaded holds the spec's and the lock's bytes as load read them (lockRead is false
	// when there was no lock), for the render cache.
	loadedSpec, loadedLock []byte
	lockRead               bool
}

func (r *runner) addSpecFlags(withSecret bool) *specFlags {
	f := &specFlags{}
	r.flags.StringVarP(&f.spec, "file", "f", "cluster.yaml", "the cluster spec")
	r.flags.StringVar(&f.lock, "lock", "", "the lock file (default: <spec stem>.lock beside the spec)")
	if withSecret {
		r.flags.StringVar(&f.secret, "secret", "", "the root secret: a file of 64 hex digits, - for standard input, or an age-encrypted *.age file (default: $SCRATCHGEN_SECRET, then <spec stem>.secret, then <spec stem>.secret.age beside the spec)")
		r.flags.StringVar(&f.ageIdentity, "age-identity", "", "the age identity file that decrypts an age-encrypted secret (default: $SCRATCHGEN_AGE_IDENTITY)")
	}
	return f
}

// stem is the spec's path without its extension: the lock and secret live beside it.
func (f *specFlags) stem() string { return strings.TrimSuffix(f.spec, filepath.Ext(f.spec)) }

func (f *specFlags) defaults() {
	if f.lock == "" {
		f.lock = f.stem() + ".lock"
	}
}

// load applies the defaults and reads the spec and the lock (nil when there is none yet).
// A lock with problems is an *inputError listing every one.
func (f *specFlags) load() ([]byte, *lock.Lock, error) {
	f.defaults()
	data, err := readBounded(f.spec, "spec", "create one with `scratchgen init > cluster.yaml`", spec.MaxSize)
	if err != nil {
		return nil, nil, err
	}
	lk, raw, err := loadLock(f.lock)
	f.loadedSpec, f.loadedLock, f.lockRead = data, raw, raw != nil
	return data, lk, err
}

// readBounded reads a file, at most max bytes: a larger file (or an endless one such as
// /dev/zero) is refused after max+1 bytes, not read into memory.
func readBounded(path, what, hint string, max int) ([]byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &missingError{fmt.Sprintf("%s %s does not exist; %s", what, path, hint)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	defer fh.Close()
	return readAllBounded(fh, path, what, max)
}

// missingError is a file that does not exist, with what to do about it.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }
func (e *missingError) Unwrap() error { return fs.ErrNotExist }

func readAllBounded(rd io.Reader, name, what string, max int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, name, err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s %s is more than %d bytes, more than a %s can need; is this the right file?", what, name, max, what)
	}
	return data, nil
}

// inputError is every problem of an input file other than the spec (the lock).
type inputError struct {
	file     string
	problems field.List
}

func (e *inputError) Error() string {
	return strings.TrimRight(e.problems.FormatIn(map[string]string{field.InputLock: e.file}), "\n")
}

// loadLock reads the lock, or returns nil when it does not exist yet.
func loadLock(path string) (*lock.Lock, []byte, error) {
	data, err := readBounded(path, "lock", "", lock.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	l, problems := lock.Parse(data)
	if len(problems.Errors()) > 0 {
		for _, p := range problems {
			p.Input = field.InputLock
		}
		return nil, nil, &inputError{file: path, problems: problems}
	}
	return l, data, nil
}

// reportSpecErrors prints the problems of the spec and the lock, one per line, each
// prefixed with its file, and returns exit 1; other errors pass through.
func reportSpecErrors(r *runner, f *specFlags, err error, consequence string) error {
	var inv *render.InvalidSpecError
	var in *inputError
	var problems field.List
	switch {
	case errors.As(err, &inv):
		problems = inv.Problems
	case errors.As(err, &in):
		problems = in.problems
	default:
		return err
	}
	fmt.Fprint(r.io.Err, problems.FormatIn(map[string]string{"": f.spec, field.InputLock: f.lock}))
	var counts []string
	for _, x := range []struct{ input, file string }{{"", f.spec}, {field.InputLock, f.lock}} {
		if n := len(problems.Errors().In(x.input)); n > 0 {
			counts = append(counts, fmt.Sprintf("%s: %d problem(s)", x.file, n))
		}
	}
	return &ExitError{Code: 1, Msg: strings.Join(counts, "; ") + consequence}
}

func printWarnings(r *runner, f *specFlags, w field.List) {
	if len(w) > 0 {
		fmt.Fprint(r.io.Err, w.FormatIn(map[string]string{"": f.spec, field.InputLock: f.lock}))
	}
}

// resolve loads the spec and lock and resolves them (the clock checks the lock's
// certificate records); problems are printed and returned as exit 1.
func (r *runner) resolve(f *specFlags, consequence string, opts render.ResolveOptions) (*render.Resolved, *lock.Lock, error) {
	data, lk, err := f.load()
	if err != nil {
		return nil, nil, reportSpecErrors(r, f, err, consequence)
	}
	if opts.Now.IsZero() {
		opts.Now = r.env.Now()
	}
	res, err := render.Resolve(data, lk, opts)
	if err != nil {
		return nil, nil, reportSpecErrors(r, f, err, consequence)
	}
	printWarnings(r, f, res.Warnings)
	return res, lk, nil
}
