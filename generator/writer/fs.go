package writer

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// fileSystem is every disk operation the writer performs, so tests can fail any one of
// them. Names are OS paths.
type fileSystem interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	ReadFile(name string) ([]byte, error)
	// Same reports whether name is a regular file (symlinks not followed) with exactly
	// mode and data: size first, then bytes.
	Same(name string, data []byte, mode fs.FileMode) (bool, error)
	// Mkdir creates a directory with mode exactly 0755, whatever the umask.
	Mkdir(name string) error
	// WriteFile creates a new file (never replacing one) with exactly data and mode.
	WriteFile(name string, data []byte, mode fs.FileMode) error
	Link(oldname, newname string) error
	Rename(oldname, newname string) error
	// Exchange atomically swaps two paths; unix.EINVAL or unix.ENOSYS if unsupported.
	Exchange(a, b string) error
	RemoveAll(name string) error
	// Sync makes everything written on the filesystem holding name durable (syncfs).
	Sync(name string) error
}

// osFS is the real filesystem. kept are the permission bits the umask lets through
// (newOSFS reads it): a file or directory created with only those bits needs no chmod.
// The zero value sets every mode explicitly.
type osFS struct{ kept fs.FileMode }

// newOSFS is the real filesystem under the process's current umask.
func newOSFS() osFS { return osFS{kept: ^processUmask() & fs.ModePerm} }

var _ fileSystem = osFS{}

func (osFS) Lstat(name string) (fs.FileInfo, error)     { return os.Lstat(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) Link(oldname, newname string) error         { return os.Link(oldname, newname) }
func (osFS) Rename(oldname, newname string) error       { return os.Rename(oldname, newname) }
func (osFS) RemoveAll(name string) error                { return os.RemoveAll(name) }

func (o osFS) Mkdir(name string) error {
	if err := os.Mkdir(name, bundle.ModeDir); err != nil {
		return err
	}
	if bundle.ModeDir&^o.kept == 0 {
		return nil // created with exactly 0755
	}
	return os.Chmod(name, bundle.ModeDir)
}

// WriteFile creates the file with its final mode; only where the umask took bits away
// does a chmod follow. It uses raw system calls (open, write, close): a bundle has tens
// of thousands of files, and os.OpenFile adds an fstat and a finalizer to each.
func (o osFS) WriteFile(name string, data []byte, mode fs.FileMode) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(mode.Perm()))
	for err == unix.EINTR {
		fd, err = unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(mode.Perm()))
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	for off := 0; off < len(data) && err == nil; {
		n, werr := unix.Write(fd, data[off:])
		switch {
		case werr == unix.EINTR:
		case werr != nil:
			err = &os.PathError{Op: "write", Path: name, Err: werr}
		case n == 0:
			err = &os.PathError{Op: "write", Path: name, Err: io.ErrShortWrite}
		default:
			off += n
		}
	}
	if err == nil && mode.Perm()&^o.kept != 0 {
		if cerr := unix.Fchmod(fd, uint32(mode.Perm())); cerr != nil {
			err = &os.PathError{Op: "chmod", Path: name, Err: cerr}
		}
	}
	if cerr := unix.Close(fd); cerr != nil && err == nil {
		err = &os.PathError{Op: "close", Path: name, Err: cerr}
	}
	return err
}

// processUmask is the process's umask as /proc/self/status reports it (Linux 4.7 and
// later), or 0777 where it cannot be read, so that every mode is then set explicitly.
func processUmask() fs.FileMode {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return 0o777
}

func (osFS) Exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		return &os.LinkError{Op: "renameat2 RENAME_EXCHANGE", Old: a, New: b, Err: err}
	}
	return nil
}

func (osFS) Sync(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: name, Err: err}
	}
	return nil
}

var readBuf = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Same uses raw system calls: open, fstat, read, close, the least a comparison can cost.
func (osFS) Same(name string, data []byte, mode fs.FileMode) (bool, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != uint32(mode) || st.Size != int64(len(data)) {
		return false, nil
	}
	bp := readBuf.Get().(*[]byte)
	defer readBuf.Put(bp)
	for off := 0; off < len(data); {
		n, err := unix.Read(fd, (*bp)[:min(len(*bp), len(data)-off)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 || !bytes.Equal((*bp)[:n], data[off:off+n]) {
			return false, nil
		}
		off += n
	}
	return true, nil
}
