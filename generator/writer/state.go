package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	digest, files, _, err = StateAt(dir)
	return digest, files, err
}

// StateAt is State, also returning the newest change time in the tree. The kernel
// stamps change times from a clock that ticks every few milliseconds, so a change within
// the same tick as the newest one could leave the State as it was; a caller that records
// a State to trust it later records it only once the clock has passed newest (see the
// render cache).
func StateAt(dir string) (digest string, files int, newest time.Time, err error) {
	dir, err = cleanDir(dir)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	// The nodes' trees are listed in parallel: stat is the whole cost.
	top, err := osFS{}.ReadDir(dir) // sorted by name
	if err != nil {
		return "", 0, time.Time{}, err
	}
	parts := make([]string, len(top))
	counts := make([]int, len(top))
	newests := make([]time.Time, len(top))
	err = parallel.DoN(len(top), ioWorkers(), func(i int) error {
		var b strings.Builder
		err := filepath.WalkDir(filepath.Join(dir, top[i].Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return fmt.Errorf("%s: no stat data", p)
			}
			if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(newests[i]) {
				newests[i] = c
			}
			rel, _ := filepath.Rel(dir, p)
			if fi.Mode().IsRegular() && rel != SumsName {
				counts[i]++
			}
			fmt.Fprintf(&b, "%s\x00%o %d %d %d %d.%d %d.%d\n", filepath.ToSlash(rel), uint32(fi.Mode()), fi.Size(), st.Ino, st.Nlink,
				st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
			return nil
		})
		parts[i] = b.String()
		return err
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
		h.Write([]byte(parts[i]))
		files += counts[i]
		if newests[i].After(newest) {
			newest = newests[i]
		}
	}
	return hex.EncodeToString(h.Sum(nil)), files, newest, nil
}
