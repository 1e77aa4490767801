package writer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/parallel"
)

// State is a digest of what the tree at dir is on disk, without reading any file: every
// path with its type, mode, size, inode, link count, modification and change time. A
// write, chmod, rename, replacement or hard link of any file or directory changes it (a
// change time moves with every change of content or metadata and cannot be set back
// without changing the clock), so an unchanged State means an unchanged tree, as git's
// index and make take a file's stat data to mean an unchanged file. files counts the
// regular files besides SHA256SUMS.
func State(dir string) (digest string, files int, err error) {
	digest, files, _, err = stateAt(context.Background(), dir)
	return digest, files, err
}

// StateContext is State, giving up with ctx's error once ctx is done (a caller that
// reads the State ahead, in case it needs it).
func StateContext(ctx context.Context, dir string) (digest string, files int, err error) {
	digest, files, _, err = stateAt(ctx, dir)
	return digest, files, err
}

// StateAt is State, also returning the newest change time in the tree. The kernel
// stamps change times from a clock that ticks every few milliseconds, so a change within
// the same tick as the newest one could leave the State as it was; a caller that records
// a State to trust it later records it only once the clock has passed newest (see the
// render cache).
func StateAt(dir string) (digest string, files int, newest time.Time, err error) {
	return stateAt(context.Background(), dir)
}

func stateAt(ctx context.Context, dir string) (digest string, files int, newest time.Time, err error) {
	dir, err = cleanDir(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	// Stat is the whole cost, so subtrees are read in parallel: each entry of the bundle's
	// directories (nodes/<name>, admin/…) is one piece of work; the digest takes them in
	// the order a walk of the whole tree would (lexical), whatever order they finish in.
	units, err := stateUnits(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	parts := make([][]byte, len(units))
	counts := make([]int, len(units))
	newests := make([]time.Time, len(units))
	err = parallel.DoN(len(units), ioWorkers(), func(i int) error {
		w := stateWalker{ctx: ctx, onFile: func(rel string, st *unix.Stat_t) {
			if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(newests[i]) {
				newests[i] = c
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG && rel != SumsName {
				counts[i]++
			}
			parts[i] = stateLine(parts[i], rel, st)
		}}
		return w.walk(dir, units[i].rel, units[i].self)
	})
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("reading %s: %w", dir, err)
	}
	root, err := osFS{}.Lstat(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "scratchgen/v1 tree state\x00%o\n", uint32(root.Mode()))
	for i := range parts {
		h.Write(parts[i])
		files += counts[i]
		if newests[i].After(newest) {
			newest = newests[i]
		}
	}
	return hex.EncodeToString(h.Sum(nil)), files, newest, nil
}

// stateUnit is a piece of a tree's State: a directory alone (self) or a whole subtree.
type stateUnit struct {
	rel  string
	self bool
}

// stateUnits splits the tree at dir into pieces, in walk order: each top-level file, and
// each top-level directory alone followed by the subtrees of its entries.
func stateUnits(dir string) ([]stateUnit, error) {
	top, err := osFS{}.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var units []stateUnit
	for _, e := range top {
		if !e.IsDir() {
			units = append(units, stateUnit{rel: e.Name()})
			continue
		}
		units = append(units, stateUnit{rel: e.Name(), self: true})
		sub, err := osFS{}.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for _, s := range sub {
			units = append(units, stateUnit{rel: e.Name() + "/" + s.Name()})
		}
	}
	return units, nil
}

// stateLine appends one path's line of a State: "<path>\x00<mode> <size> <inode> <links>
// <mtime> <ctime>\n" (the mode as Go's fs.FileMode in octal, times as
// seconds.nanoseconds).
func stateLine(b []byte, rel string, st *unix.Stat_t) []byte {
	b = append(b, rel...)
	b = append(b, 0)
	b = strconv.AppendUint(b, uint64(fileMode(st.Mode)), 8)
	for _, n := range []int64{st.Size, int64(st.Ino), int64(st.Nlink)} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, n, 10)
	}
	for _, t := range []unix.Timespec{st.Mtim, st.Ctim} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, t.Sec, 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, t.Nsec, 10)
	}
	return append(b, '\n')
}

// fileMode is a stat mode as Go's fs.FileMode (what os.Lstat reports).
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// stateWalker reads stat data of a subtree in walk order (a directory, then its entries
// by name, each directory's entries before the next entry), relative to the open
// directory above each entry: no path is resolved twice, and nothing is followed.
type stateWalker struct {
	ctx    context.Context
	onFile func(rel string, st *unix.Stat_t)
}

// walk visits rel (relative to root): alone if self, else with everything below it.
func (w *stateWalker) walk(root, rel string, self bool) error {
	parent, name := filepath.Split(filepath.Join(root, filepath.FromSlash(rel)))
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	return w.visit(pfd, name, rel, !self)
}

func (w *stateWalker) visit(dirfd int, name, rel string, deep bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: rel, Err: err}
	}
	w.onFile(rel, &st)
	if !deep || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: rel, Err: err}
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.visit(fd, n, rel+"/"+n, true); err != nil {
			return err
		}
	}
	return nil
}
