package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// plan is the comparison of the wanted bundle with the live one.
type plan struct {
	files   []bundle.File   // the new bundle, SHA256SUMS included, sorted by path
	same    map[string]bool // paths whose live file already has the right bytes and mode
	exists  bool            // dir exists
	changes Changes
}

// prepare validates files and returns a sorted copy with SHA256SUMS added.
func prepare(files []bundle.File) ([]bundle.File, error) {
	if err := validate(files); err != nil {
		return nil, err
	}
	out := make([]bundle.File, len(files), len(files)+1)
	copy(out, files)
	bundle.Sort(out)
	sums := make([]byte, 0, len(out)*(64+2+48))
	for _, f := range out {
		h := sha256.Sum256(f.Data)
		sums = hex.AppendEncode(sums, h[:])
		sums = append(sums, "  "...)
		sums = append(sums, f.Path...)
		sums = append(sums, '\n')
	}
	out = append(out, bundle.File{Path: SumsName, Mode: bundle.ModePublic, Data: sums})
	bundle.Sort(out)
	return out, nil
}

// validate rejects paths that are not clean, relative and unique, that would be both a
// file and a directory, or that would clash with SHA256SUMS, and modes with more than
// permission bits.
func validate(files []bundle.File) error {
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		p := f.Path
		var problem string
		switch {
		case p == "" || p == ".":
			problem = "is empty"
		case strings.HasPrefix(p, "/"):
			problem = "is absolute; paths are relative to the bundle root"
		case p == ".." || strings.HasPrefix(p, "../"):
			problem = "leaves the bundle"
		case path.Clean(p) != p:
			problem = fmt.Sprintf("is not clean (want %q)", path.Clean(p))
		case strings.ContainsAny(p, "\\\n\r\x00"):
			problem = "contains a backslash, newline or NUL, which SHA256SUMS cannot hold"
		case p == SumsName:
			problem = "is reserved for the manifest the writer generates"
		case f.Mode&^fs.ModePerm != 0:
			problem = fmt.Sprintf("has mode %v; only permission bits are allowed", f.Mode)
		case seen[p]:
			problem = "appears twice"
		}
		if problem != "" {
			return fmt.Errorf("invalid bundle file %q: path %s", p, problem)
		}
		seen[p] = true
	}
	for p := range seen {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("invalid bundle file %q: %q is also a file", p, d)
			}
		}
	}
	return nil
}

// scan reads the live bundle at dir, refuses what is not ours, and compares it with want.
func scan(fsys fileSystem, dir string, want []bundle.File) (*plan, error) {
	live, err := readLive(fsys, dir)
	if err != nil {
		return nil, err
	}
	p := &plan{files: want, same: map[string]bool{}, exists: live.exists}
	same, err := compare(fsys, dir, want, live.files)
	if err != nil {
		return nil, err
	}
	c := &p.changes
	wanted := make(map[string]bool, len(want))
	for i, f := range want {
		wanted[f.Path] = true
		switch {
		case !live.files[f.Path]:
			c.Added = append(c.Added, f.Path)
		case same[i]:
			p.same[f.Path] = true
		default:
			c.Changed = append(c.Changed, f.Path)
		}
	}
	for name := range live.files {
		if !wanted[name] {
			c.Removed = append(c.Removed, name)
		}
	}
	c.Changed = append(c.Changed, live.badDirs...)
	slices.Sort(c.Added) // want is sorted, but keep the promise independent of that
	slices.Sort(c.Changed)
	slices.Sort(c.Removed)
	return p, nil
}

// compare reports, for each wanted file that exists in dir, whether it already has the
// wanted bytes and mode. Reading is the whole cost of a no-op write, so files are compared
// in parallel; the error reported is the first in path order.
func compare(fsys fileSystem, dir string, want []bundle.File, exists map[string]bool) ([]bool, error) {
	same := make([]bool, len(want))
	errs := make([]error, len(want))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(4, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(want); i = int(next.Add(1) - 1) {
				f := want[i]
				if exists[f.Path] {
					same[i], errs[i] = fsys.Same(filepath.Join(dir, filepath.FromSlash(f.Path)), f.Data, f.Mode)
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("comparing %s: %w", want[i].Path, err)
		}
	}
	return same, nil
}

// liveBundle is what is on disk at dir.
type liveBundle struct {
	exists  bool
	files   map[string]bool // regular files by slash path
	badDirs []string        // directories whose mode is not 0755
}

// readLive walks dir. It refuses a non-empty directory without SHA256SUMS before walking
// it, and then symlinks, special files, and files SHA256SUMS does not list.
func readLive(fsys fileSystem, dir string) (*liveBundle, error) {
	live := &liveBundle{files: map[string]bool{}}
	fi, err := fsys.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return live, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symlink; scratchgen does not write through symlinks", dir)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s exists and is not a directory", dir)
	}
	live.exists = true
	if fi.Mode() != fs.ModeDir|bundle.ModeDir {
		live.badDirs = append(live.badDirs, ".")
	}

	sumsPath := filepath.Join(dir, SumsName)
	if _, err := fsys.Lstat(sumsPath); errors.Is(err, fs.ErrNotExist) {
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		if len(entries) == 0 {
			return live, nil
		}
		return nil, fmt.Errorf("%s exists and was not written by scratchgen (no %s); move it away or choose another -o", dir, SumsName)
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", sumsPath, err)
	}
	if err := live.walk(fsys, dir, "."); err != nil {
		return nil, err
	}
	if !live.files[SumsName] {
		return nil, fmt.Errorf("%s is not a regular file; move %s away or choose another -o", sumsPath, dir)
	}
	sums, err := fsys.ReadFile(sumsPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", sumsPath, err)
	}
	listed, err := parseSums(sums)
	if err != nil {
		return nil, fmt.Errorf("%s is not a scratchgen manifest (%v); move %s away or choose another -o", sumsPath, err, dir)
	}
	var foreign []string
	for name := range live.files {
		if name != SumsName && !listed[name] {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		shown := foreign[:min(5, len(foreign))]
		more := ""
		if n := len(foreign) - len(shown); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		return nil, fmt.Errorf("%s holds files scratchgen did not write (not in %s): %s%s; move them away",
			dir, SumsName, strings.Join(shown, ", "), more)
	}
	return live, nil
}

func (l *liveBundle) walk(fsys fileSystem, root, rel string) error {
	abs := filepath.Join(root, filepath.FromSlash(rel))
	entries, err := fsys.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", abs, err)
	}
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		switch typ := e.Type(); {
		case typ.IsRegular():
			l.files[name] = true
		case typ.IsDir():
			fi, err := fsys.Lstat(filepath.Join(abs, e.Name()))
			if err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			if fi.Mode() != fs.ModeDir|bundle.ModeDir {
				l.badDirs = append(l.badDirs, name)
			}
			if err := l.walk(fsys, root, name); err != nil {
				return err
			}
		case typ&fs.ModeSymlink != 0:
			return fmt.Errorf("%s holds a symlink at %s; scratchgen never follows symlinks, remove it", root, name)
		default:
			return fmt.Errorf("%s holds %s, which is not a regular file (%v); remove it", root, name, typ)
		}
	}
	return nil
}

// parseSums returns the paths a SHA256SUMS lists.
func parseSums(data []byte) (map[string]bool, error) {
	listed := map[string]bool{}
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		line, ok := strings.CutSuffix(line, "\n")
		if !ok || len(line) < 67 || line[64:66] != "  " {
			return nil, fmt.Errorf("line %d", i+1)
		}
		if _, err := hex.DecodeString(line[:64]); err != nil {
			return nil, fmt.Errorf("line %d", i+1)
		}
		listed[line[66:]] = true
	}
	return listed, nil
}
