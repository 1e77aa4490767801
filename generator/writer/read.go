package writer

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// Loaded is a whole bundle directory read into memory.
type Loaded struct {
	// Files are the regular files by slash path relative to the bundle root.
	Files map[string]LoadedFile
	// Dirs are the directories (relative, without ".") with their permission bits.
	Dirs map[string]fs.FileMode
	// Special are entries that are neither regular files nor directories (symlinks,
	// pipes, sockets, devices), by relative path, with their type.
	Special map[string]fs.FileMode
}

// LoadedFile is one file of a loaded bundle.
type LoadedFile struct {
	Data []byte
	// Mode is the file's permission bits.
	Mode fs.FileMode
}

// Load reads every file and directory under dir without following symlinks. It trusts
// nothing: the caller decides what is wrong (verify), unlike Write and Check, which
// refuse a directory scratchgen did not write.
func Load(dir string) (*Loaded, error) {
	l := &Loaded{Files: map[string]LoadedFile{}, Dirs: map[string]fs.FileMode{}, Special: map[string]fs.FileMode{}}
	links := linkedReader{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel != "." {
				l.Dirs[rel] = info.Mode().Perm()
			}
		case info.Mode().IsRegular():
			data, err := links.read(p)
			if err != nil {
				return err
			}
			l.Files[rel] = LoadedFile{Data: data, Mode: info.Mode().Perm()}
		default:
			l.Special[rel] = info.Mode().Type()
		}
		return nil
	})
	return l, err
}

// ReadBundle returns the bundle on disk as a complete file list, reading only the files
// writer.Check reports as changed or removed (the others equal the rendered ones), and
// the directories whose mode would change. It refuses what render would refuse.
func ReadBundle(dir string, want []bundle.File) ([]bundle.File, []string, error) {
	var files []bundle.File
	for _, f := range want {
		if f.Path != SumsName {
			files = append(files, f)
		}
	}
	ch, err := Check(dir, files)
	if err != nil {
		return nil, nil, err
	}
	added := map[string]bool{}
	for _, p := range ch.Added {
		added[p] = true
	}
	changed := map[string]bool{}
	for _, p := range ch.Changed {
		changed[p] = true
	}
	for _, p := range ch.Unchecked { // pending content: the disk's version is what there is
		changed[p] = true
	}
	var old []bundle.File
	var dirs []string
	links := linkedReader{}
	read := func(p string) error {
		full := filepath.Join(dir, filepath.FromSlash(p))
		st, err := os.Lstat(full)
		if err != nil {
			return fmt.Errorf("reading %s: %w", full, err)
		}
		if st.IsDir() {
			dirs = append(dirs, full)
			return nil
		}
		data, err := links.read(full)
		if err != nil {
			return fmt.Errorf("reading %s: %w", full, err)
		}
		old = append(old, bundle.File{Path: p, Mode: st.Mode().Perm(), Data: data})
		return nil
	}
	for _, f := range want {
		switch {
		case added[f.Path]:
		case changed[f.Path]:
			if err := read(f.Path); err != nil {
				return nil, nil, err
			}
			delete(changed, f.Path)
		default:
			old = append(old, f)
		}
	}
	// What remains in changed are directories.
	for _, p := range append(ch.Changed, ch.Unchecked...) {
		if changed[p] {
			if err := read(p); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, p := range ch.Removed {
		if err := read(p); err != nil {
			return nil, nil, err
		}
	}
	bundle.Sort(old)
	return old, dirs, nil
}

// linkedReader reads files, a file with several links once: in a bundle, the routes
// table of every node, an image archive carried by many nodes and the same script of every
// node are one inode each (see LinkThreshold), and a 10,000-node bundle's routes tables
// alone would take 3.3 GB read once per path. The copies it returns share memory: read
// them only.
type linkedReader map[[2]uint64][]byte // device and inode → content

// read returns the content of the file at name. The identity is taken from the open
// file, so the content is that inode's even if the path changes meanwhile.
func (r linkedReader) read(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	linked := ok && sys.Nlink > 1
	var key [2]uint64
	if linked {
		key = [2]uint64{uint64(sys.Dev), uint64(sys.Ino)}
		if data, ok := r[key]; ok && int64(len(data)) == st.Size() {
			return data, nil
		}
	}
	data := make([]byte, 0, st.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	if linked {
		r[key] = data
	}
	return data, nil
}
