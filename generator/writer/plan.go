package writer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/parallel"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// plan is the comparison of the wanted bundle with the live one.
type plan struct {
	files   []bundle.File   // the new bundle, SHA256SUMS included, sorted by path
	same    map[string]bool // paths whose live file already has the right bytes and mode
	exists  bool            // dir exists
	changes Changes
	// record is the commit record staged with the tree when sidecars change.
	record bundle.File
	// sums are the files' SHA-256 by path (SHA256SUMS itself aside), from prepare.
	sums map[string][sha256.Size]byte
}

// prepare validates files and returns a sorted copy with SHA256SUMS added. Files with
// pending content (a plan made without the root secret) are listed in SHA256SUMS with
// the sums in disk, the SHA256SUMS on disk; where that has no line for one,
// SHA256SUMS is pending too. It also returns the files' sums by path.
func prepare(files []bundle.File, disk ...map[string][sha256.Size]byte) ([]bundle.File, map[string][sha256.Size]byte, error) {
	if err := validate(files); err != nil {
		return nil, nil, err
	}
	out := make([]bundle.File, len(files), len(files)+1)
	copy(out, files)
	bundle.Sort(out)
	sums := bundle.File{Path: SumsName, Mode: bundle.ModePublic}
	var known map[string][sha256.Size]byte
	if len(disk) > 0 {
		known = disk[0]
	}
	data, byPath, ok := sumsWith(out, known)
	if ok {
		sums.Data = data
	} else {
		sums.Pending = "it lists files still to be issued"
	}
	out = append(out, sums)
	bundle.Sort(out)
	return out, byPath, nil
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
	dirs := map[string]bool{}
	for p := range seen {
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("invalid bundle file %q: %q is also a file", p, d)
			}
			dirs[d] = true
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
		case f.Pending != "":
			c.Unchecked = append(c.Unchecked, f.Path)
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
// wanted bytes and mode. Reading is the whole cost of a no-op write, so it runs in parallel.
func compare(fsys fileSystem, dir string, want []bundle.File, exists map[string]bool) ([]bool, error) {
	same := make([]bool, len(want))
	err := parallel.DoN(len(want), ioWorkers(), func(i int) error {
		f := want[i]
		if !exists[f.Path] || f.Pending != "" {
			return nil
		}
		var err error
		if same[i], err = fsys.Same(filepath.Join(dir, filepath.FromSlash(f.Path)), f.Data, f.Mode); err != nil {
			return fmt.Errorf("comparing %s: %w", f.Path, err)
		}
		return nil
	})
	return same, err
}

// ioWorkers is how many goroutines compare files: the work waits on system calls, so more
// than the cores pay off.
func ioWorkers() int { return max(4, runtime.GOMAXPROCS(0)) }

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
	if err := live.walk(fsys, dir); err != nil {
		return nil, err
	}
	if !live.files[SumsName] {
		return nil, fmt.Errorf("%s is not a regular file; move %s away or choose another -o", sumsPath, dir)
	}
	sums, err := fsys.ReadFile(sumsPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", sumsPath, err)
	}
	entries, bad := ParseSums(sums)
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s is not a scratchgen manifest (line %d); move %s away or choose another -o", sumsPath, bad[0].Line, dir)
	}
	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		listed[e.Path] = true
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

// walk lists the tree level by level, reading each level's directories in parallel.
func (l *liveBundle) walk(fsys fileSystem, root string) error {
	for level := []string{"."}; len(level) > 0; {
		entries := make([][]fs.DirEntry, len(level))
		bad := make([]bool, len(level))
		err := parallel.DoN(len(level), ioWorkers(), func(i int) error {
			abs := filepath.Join(root, filepath.FromSlash(level[i]))
			if level[i] != "." { // readLive checked the root
				fi, err := fsys.Lstat(abs)
				if err != nil {
					return fmt.Errorf("reading %s: %w", abs, err)
				}
				bad[i] = fi.Mode() != fs.ModeDir|bundle.ModeDir
			}
			var err error
			if entries[i], err = fsys.ReadDir(abs); err != nil {
				return fmt.Errorf("reading directory %s: %w", abs, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var next []string
		for i, rel := range level {
			if bad[i] {
				l.badDirs = append(l.badDirs, rel)
			}
			for _, e := range entries[i] {
				name := path.Join(rel, e.Name())
				switch typ := e.Type(); {
				case typ.IsRegular():
					l.files[name] = true
				case typ.IsDir():
					next = append(next, name)
				case typ&fs.ModeSymlink != 0:
					return fmt.Errorf("%s holds a symlink at %s; scratchgen never follows symlinks, remove it", root, name)
				default:
					return fmt.Errorf("%s holds %s, which is not a regular file (%v); remove it", root, name, typ)
				}
			}
		}
		level = next
	}
	return nil
}
