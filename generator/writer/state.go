package writer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/parallel"
)

// State is a digest of what the bundle at dir is on disk, reading no file but its
// SHA256SUMS and no directory at all: the stat data (type, mode, size, inode, link count,
// modification and change time) of the bundle directory, of SHA256SUMS, of every path
// SHA256SUMS lists and of every directory above one. A write, chmod, rename, replacement
// or hard link of any of them changes it (a change time moves with every change of
// content or metadata and cannot be set back without changing the clock), so an
// unchanged State means an unchanged tree, as git's index and make take a file's stat
// data to mean an unchanged file. Paths SHA256SUMS does not list are covered by their
// directory: creating, removing or renaming an entry changes its directory's
// modification and change time (POSIX), so a stray file or directory added anywhere
// changes the State as surely as an edit does. files counts the regular files besides
// SHA256SUMS. A tree without a readable SHA256SUMS has no State (an error).
//
// Reading no directory is the point: at 1,000 nodes (49,000 paths, 20,000 of them
// directories) a walk that read every directory made 151,000 system calls, two thirds of
// them opening, reading and closing directories; this makes one stat per path.
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

// stateChunk is how many paths one piece of parallel stat work takes.
const stateChunk = 512

func stateAt(ctx context.Context, dir string) (digest string, files int, newest time.Time, err error) {
	dir, err = cleanDir(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	paths, err := statePaths(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, time.Time{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	// Stat is the whole cost, so chunks of the sorted list are read in parallel; the
	// digest takes them in list order, whatever order they finish in.
	n := (len(paths) + stateChunk - 1) / stateChunk
	parts := make([][]byte, n)
	counts := make([]int, n)
	newests := make([]time.Time, n)
	err = parallel.DoN(n, ioWorkers(), func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, rel := range paths[i*stateChunk : min(len(paths), (i+1)*stateChunk)] {
			var st unix.Stat_t
			err := unix.Fstatat(root, rel, &st, unix.AT_SYMLINK_NOFOLLOW)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				// Gone (or a directory above it is no longer one): a different State.
				parts[i] = append(append(parts[i], rel...), "\x00missing\n"...)
				continue
			}
			if err != nil {
				return &os.PathError{Op: "lstat", Path: rel, Err: err}
			}
			if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(newests[i]) {
				newests[i] = c
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG && rel != SumsName {
				counts[i]++
			}
			parts[i] = stateLine(parts[i], rel, &st)
		}
		return nil
	})
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("reading %s: %w", dir, err)
	}
	h := sha256.New()
	h.Write([]byte("scratchgen/v2 tree state\n"))
	for i := range parts {
		h.Write(parts[i])
		files += counts[i]
		if newests[i].After(newest) {
			newest = newests[i]
		}
	}
	return hex.EncodeToString(h.Sum(nil)), files, newest, nil
}

// statePaths lists what State stats, sorted: "." (the bundle directory), SHA256SUMS,
// every path it lists and every directory above one. A SHA256SUMS that is missing, not
// a regular file, malformed, or lists a path that is not a clean relative one is an
// error: the tree is not a bundle scratchgen wrote.
func statePaths(dir string) ([]string, error) {
	name := filepath.Join(dir, SumsName)
	if fi, err := os.Lstat(name); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	entries, errs := ParseSums(data)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, errs[0])
	}
	paths := make([]string, 0, 2*len(entries)+2)
	paths = append(paths, ".", SumsName)
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		p := e.Path
		if !fs.ValidPath(p) || p == "." || p == SumsName || seen[p] {
			return nil, fmt.Errorf("%s line %d: %q is not a path of a bundle file", name, e.Line, p)
		}
		seen[p] = true
		paths = append(paths, p)
		for d := path.Dir(p); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			paths = append(paths, d)
		}
	}
	slices.Sort(paths)
	return paths, nil
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
