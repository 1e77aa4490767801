// Package pack turns the nodes of a rendered bundle into reproducible archives for image
// builders (Packer, mkosi, image-builder): one gzip-compressed tar of a node's rootfs/
// per node, written outside the bundle, which stays exactly as rendered.
//
// An archive holds every directory and regular file of nodes/<node>/rootfs/, sorted by
// path (a directory before its contents), named relative to / without a leading "./"
// ("etc/kubernetes/pki/ca.crt"; the root itself has no entry, so extracting never touches
// the target directory's own mode or mtime). Every entry is owned by root (uid/gid 0,
// uname/gname "root"), has the fixed modification time ModTime and the exact mode the
// bundle gives it; the tar is PAX format (a plain USTAR header per entry, since no field
// needs an extended record) with no atime, ctime or extended attributes; the gzip header
// has no name and a zero time, and the level is fixed (gzip.BestCompression). The
// archive is therefore a function of the bundle's bytes only: the same bundle gives the
// same archive, on any machine, into any directory, at any time.
//
// Secret files (those the bundle's .gitignore lists: private keys, tokens, kubeconfigs
// holding keys) go into an archive only on request (Options.WithSecrets); a public archive
// leaves them out and nodes/<node>.secrets lists their node paths, to deliver separately.
//
// Open refuses a bundle that is not exactly as rendered (a file changed after rendering,
// a mode that is not the one scratchgen writes, a file SHA256SUMS does not list), so a
// tampered bundle is never packed.
package pack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/writer"
)

const (
	// Epoch is the modification time of every entry, in seconds since 1970:
	// 2000-01-01T00:00:00Z. A constant rather than $SOURCE_DATE_EPOCH, so that an archive
	// depends on the bundle alone; not 0, which some tools read as "no time".
	Epoch int64 = 946684800
	// Level is the gzip compression level of every archive.
	Level = gzip.BestCompression

	// ArchiveSuffix ends each node's archive: nodes/<node>.tar.gz.
	ArchiveSuffix = ".tar.gz"
	// SecretsSuffix ends each node's list of the secret files a public archive leaves out:
	// nodes/<node>.secrets, one node path a line.
	SecretsSuffix = ".secrets"
	// NodesDir is the output's directory of archives.
	NodesDir = "nodes"
	// SumsName is the output's manifest: `sha256sum -c` compatible, one line per archive.
	SumsName = "SHA256SUMS"
	// IgnoreName keeps the output out of git: archives are rebuilt from the bundle, and
	// with secrets they hold keys.
	IgnoreName = ".gitignore"

	uname = "root"
)

// ModTime is Epoch as a time.
var ModTime = time.Unix(Epoch, 0).UTC()

// ignoreText is the output's .gitignore.
const ignoreText = "# Written by scratchgen pack: archives are rebuilt from the bundle, and with --with-secrets they hold keys.\n*\n"

// Problem is one way a bundle differs from what scratchgen rendered.
type Problem struct {
	// Path is relative to the bundle root ("nodes/cp-1/rootfs/etc/kubernetes/pki/ca.crt").
	Path string
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// NotIntactError refuses a bundle that is not exactly as rendered.
type NotIntactError struct {
	Dir      string
	Problems []Problem // sorted by path
}

func (e *NotIntactError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is not as rendered (%d problem(s)); nothing was packed:", e.Dir, len(e.Problems))
	const shown = 20
	for i, p := range e.Problems {
		if i == shown {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Problems)-shown)
			break
		}
		b.WriteString("\n  " + p.String())
	}
	b.WriteString("\nremove what scratchgen did not write and render the bundle again with `scratchgen render`, which restores the rest; `scratchgen verify " + e.Dir + "` checks it in depth")
	return b.String()
}

// Bundle is a bundle that Open found intact.
type Bundle struct {
	// Dir is the bundle directory.
	Dir string
	// Meta is its bundle.json.
	Meta  *bundle.Metadata
	nodes map[string]*node
}

// node is one node's rootfs.
type node struct {
	dirs    []entry // sorted
	files   []entry // sorted
	secrets []string
}

// entry is a directory or a file of a rootfs: name relative to / ("etc/kubernetes").
type entry struct {
	name   string
	dir    bool
	mode   fs.FileMode // permission bits
	data   []byte
	secret bool
}

// Open reads the bundle in dir and checks that it is intact: every file listed in
// SHA256SUMS with its sum and nothing else there; no symlink or special file; directories
// 0755; the files .gitignore lists (the secrets) 0600 and every other file 0644 or 0755;
// no private key outside the secrets; bundle.json naming exactly the nodes of nodes/, and
// no empty directory. Anything wrong is a *NotIntactError listing every problem.
func Open(dir string) (*Bundle, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("bundle %s is not a directory", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, writer.SumsName)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a scratchgen bundle (no %s); pass a bundle directory such as bundles/<cluster>", dir, writer.SumsName)
	}
	l, err := writer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", dir, err)
	}
	c := &checker{l: l}
	c.checkSpecial()
	c.checkSums()
	secrets := c.secrets()
	c.checkModes(secrets)
	meta := c.metadata()
	b := &Bundle{Dir: dir, Meta: meta, nodes: map[string]*node{}}
	if meta != nil {
		for _, nm := range meta.Nodes {
			b.nodes[nm.Name] = c.node(nm.Name, secrets)
		}
		c.checkNodeDirs(meta)
	}
	if len(c.problems) > 0 {
		sort.Slice(c.problems, func(i, j int) bool {
			a, b := c.problems[i], c.problems[j]
			return a.Path < b.Path || a.Path == b.Path && a.Msg < b.Msg
		})
		return nil, &NotIntactError{Dir: dir, Problems: slices.Compact(c.problems)}
	}
	return b, nil
}

// checker collects the problems of a loaded bundle.
type checker struct {
	l        *writer.Loaded
	problems []Problem
}

func (c *checker) problemf(p, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: p, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) checkSpecial() {
	for rel, typ := range c.l.Special {
		kind := "special file"
		if typ&fs.ModeSymlink != 0 {
			kind = "symbolic link"
		}
		c.problemf(rel, "is a %s; scratchgen writes only files and directories", kind)
	}
}

// checkSums compares SHA256SUMS with the files: every file listed, with its sum.
func (c *checker) checkSums() {
	sums, ok := c.l.Files[writer.SumsName]
	if !ok {
		c.problemf(writer.SumsName, "is not a regular file")
		return
	}
	entries, bad := writer.ParseSums(sums.Data)
	for _, e := range bad {
		c.problemf(writer.SumsName, "%s", e.Msg)
	}
	listed := map[string]bool{writer.SumsName: true}
	for _, e := range entries {
		if listed[e.Path] {
			c.problemf(writer.SumsName, "lists %s twice (or itself)", e.Path)
			continue
		}
		listed[e.Path] = true
		f, ok := c.l.Files[e.Path]
		switch {
		case !ok:
			c.problemf(e.Path, "is listed in %s but missing", writer.SumsName)
		case sha256.Sum256(f.Data) != e.Sum:
			c.problemf(e.Path, "does not match its SHA-256 sum in %s (changed after rendering)", writer.SumsName)
		}
	}
	for rel := range c.l.Files {
		switch {
		case listed[rel]:
		case rel == writer.CommitName:
			c.problemf(rel, "a render was interrupted after its commit; run `scratchgen render` to finish it")
		default:
			c.problemf(rel, "is not listed in %s (scratchgen did not write it)", writer.SumsName)
		}
	}
}

// secrets reads .gitignore: the bundle-relative paths of the secret files.
func (c *checker) secrets() map[string]bool {
	out := map[string]bool{}
	gi, ok := c.l.Files[".gitignore"]
	if !ok {
		c.problemf(".gitignore", "is missing: it names the secret files, which a public archive must leave out")
		return out
	}
	for _, line := range strings.Split(string(gi.Data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out[strings.TrimPrefix(line, "/")] = true
		}
	}
	return out
}

// checkModes checks the modes scratchgen writes: 0755 directories, 0600 secrets, 0644 or
// 0755 (scripts) for everything else, which must hold no private key.
func (c *checker) checkModes(secrets map[string]bool) {
	for rel, mode := range c.l.Dirs {
		if mode != bundle.ModeDir {
			c.problemf(rel+"/", "directory has mode %04o, want %04o", mode, bundle.ModeDir)
		}
	}
	for rel, f := range c.l.Files {
		switch {
		case secrets[rel]:
			if f.Mode != bundle.ModeSecret {
				c.problemf(rel, "has mode %04o, want %04o (.gitignore lists it as a secret)", f.Mode, bundle.ModeSecret)
			}
		case f.Mode != bundle.ModePublic && f.Mode != bundle.ModeExecute:
			c.problemf(rel, "has mode %04o, want %04o or %04o (.gitignore does not list it as a secret)", f.Mode, bundle.ModePublic, bundle.ModeExecute)
		case inRootfs(rel) && holdsPrivateKey(f.Data):
			c.problemf(rel, "holds a private key, but .gitignore does not list it as a secret")
		}
	}
}

// inRootfs reports whether a bundle path is in a node's rootfs/.
func inRootfs(rel string) bool {
	parts := strings.SplitN(rel, "/", 4)
	return len(parts) == 4 && parts[0] == "nodes" && parts[2] == "rootfs"
}

// holdsPrivateKey reports whether data holds a PEM private key or a kubeconfig's
// embedded one.
func holdsPrivateKey(data []byte) bool {
	return bytes.Contains(data, []byte("PRIVATE KEY-----")) || bytes.Contains(data, []byte("client-key-data"))
}

// metadata reads bundle.json.
func (c *checker) metadata() *bundle.Metadata {
	f, ok := c.l.Files[bundle.MetadataName]
	if !ok {
		c.problemf(bundle.MetadataName, "is missing: it names the nodes")
		return nil
	}
	m, err := bundle.ParseMetadata(f.Data)
	if err != nil {
		c.problemf(bundle.MetadataName, "%v", err)
		return nil
	}
	return m
}

// checkNodeDirs checks that nodes/ holds a directory per node of bundle.json and nothing
// else.
func (c *checker) checkNodeDirs(m *bundle.Metadata) {
	known := map[string]bool{}
	for _, n := range m.Nodes {
		known[n.Name] = true
		if _, ok := c.l.Dirs[path.Join("nodes", n.Name, "rootfs")]; !ok {
			c.problemf(path.Join("nodes", n.Name, "rootfs"), "is missing, but %s names node %s", bundle.MetadataName, n.Name)
		}
	}
	for rel := range c.l.Dirs {
		if name, ok := strings.CutPrefix(rel, "nodes/"); ok && !strings.Contains(name, "/") && !known[name] {
			c.problemf(rel+"/", "is not a node of %s", bundle.MetadataName)
		}
	}
}

// node collects one node's rootfs: its directories (each must hold a file) and files.
func (c *checker) node(name string, secrets map[string]bool) *node {
	root := path.Join("nodes", name, "rootfs")
	n := &node{}
	used := map[string]bool{}
	for rel, f := range c.l.Files {
		p, ok := strings.CutPrefix(rel, root+"/")
		if !ok {
			continue
		}
		n.files = append(n.files, entry{name: p, mode: f.Mode, data: f.Data, secret: secrets[rel]})
		if secrets[rel] {
			n.secrets = append(n.secrets, "/"+p)
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			used[d] = true
		}
	}
	for rel, mode := range c.l.Dirs {
		p, ok := strings.CutPrefix(rel, root+"/")
		if !ok {
			continue
		}
		if !used[p] {
			c.problemf(rel+"/", "is an empty directory (scratchgen writes none)")
		}
		n.dirs = append(n.dirs, entry{name: p, dir: true, mode: mode})
	}
	byName := func(a, b entry) int { return strings.Compare(a.name, b.name) }
	slices.SortFunc(n.files, byName)
	slices.SortFunc(n.dirs, byName)
	sort.Strings(n.secrets)
	return n
}

// Nodes are the bundle's nodes, in spec order.
func (b *Bundle) Nodes() []string {
	var out []string
	for _, n := range b.Meta.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Secrets are the node paths of the node's secret files ("/etc/kubernetes/pki/ca.key"),
// sorted: what a public archive leaves out.
func (b *Bundle) Secrets(name string) []string {
	if n := b.nodes[name]; n != nil {
		return slices.Clone(n.secrets)
	}
	return nil
}

// Archive writes the node's archive to w: its rootfs, without the secret files unless
// withSecrets.
func (b *Bundle) Archive(w io.Writer, name string, withSecrets bool) error {
	n := b.nodes[name]
	if n == nil {
		return fmt.Errorf("bundle %s has no node %q; its nodes: %s", b.Dir, name, strings.Join(b.Nodes(), ", "))
	}
	entries := append(slices.Clone(n.dirs), n.files...)
	// Sorted by path: a directory ("etc") sorts before everything below it ("etc/…").
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	zw, err := gzip.NewWriterLevel(w, Level)
	if err != nil {
		return err
	}
	// The zero Header: no name, no comment, modification time 0.
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if e.secret && !withSecrets {
			continue
		}
		h := &tar.Header{
			Name:    e.name,
			Mode:    int64(e.mode.Perm()),
			Uname:   uname,
			Gname:   uname,
			ModTime: ModTime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("archiving %s of node %s: %w", e.name, name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// Options select what Write packs.
type Options struct {
	// Nodes to pack, by name (nil: every node). Write packs them in spec order.
	Nodes []string
	// WithSecrets puts the secret files into the archives (mode 0600 inside; the archive
	// itself is written 0600 too). Without it they are left out and listed in
	// nodes/<node>.secrets.
	WithSecrets bool
}

// Result is one archive written.
type Result struct {
	Node string
	// Path is the archive's path relative to the output directory ("nodes/cp-1.tar.gz").
	Path string
	Sum  [sha256.Size]byte
	Size int64
	// Secrets are the node paths left out (nil with WithSecrets); SecretsPath lists them
	// ("nodes/cp-1.secrets", "" with WithSecrets).
	Secrets     []string
	SecretsPath string
}

// Write packs the selected nodes into out: a .gitignore of "*" first (before any key is
// there), then nodes/<node>.tar.gz each (and nodes/<node>.secrets for a public one), then
// SHA256SUMS. Every file is written to a temporary file and renamed into place; SHA256SUMS is removed first
// and written last, so an interrupted pack leaves no manifest and no half archive. out
// must be new, empty or an earlier pack's output (files of nodes not packed this time are
// removed), and must not be inside the bundle.
func (b *Bundle) Write(out string, opts Options) ([]Result, error) {
	selected, err := b.selectNodes(opts.Nodes)
	if err != nil {
		return nil, err
	}
	if err := b.checkOutside(out); err != nil {
		return nil, err
	}
	if err := checkOutput(out); err != nil {
		return nil, err
	}
	nodesDir := filepath.Join(out, NodesDir)
	if err := os.MkdirAll(nodesDir, bundle.ModeDir); err != nil {
		return nil, fmt.Errorf("creating %s: %w", nodesDir, err)
	}
	if err := writeAtomic(filepath.Join(out, IgnoreName), bundle.ModePublic, func(w io.Writer) error {
		_, err := io.WriteString(w, ignoreText)
		return err
	}); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(out, SumsName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	keep := map[string]bool{}
	var results []Result
	for _, name := range selected {
		res := Result{Node: name, Path: NodesDir + "/" + name + ArchiveSuffix}
		mode := bundle.ModePublic
		if opts.WithSecrets {
			mode = bundle.ModeSecret
		}
		err := writeAtomic(filepath.Join(out, filepath.FromSlash(res.Path)), mode, func(w io.Writer) error {
			h := sha256.New()
			cw := &countWriter{w: io.MultiWriter(w, h)}
			if err := b.Archive(cw, name, opts.WithSecrets); err != nil {
				return err
			}
			res.Size = cw.n
			copy(res.Sum[:], h.Sum(nil))
			return nil
		})
		if err != nil {
			return nil, err
		}
		keep[name+ArchiveSuffix] = true
		if !opts.WithSecrets {
			res.Secrets = b.Secrets(name)
			res.SecretsPath = NodesDir + "/" + name + SecretsSuffix
			var list strings.Builder
			for _, s := range res.Secrets {
				list.WriteString(s + "\n")
			}
			if err := writeAtomic(filepath.Join(out, filepath.FromSlash(res.SecretsPath)), bundle.ModePublic, func(w io.Writer) error {
				_, err := io.WriteString(w, list.String())
				return err
			}); err != nil {
				return nil, err
			}
			keep[name+SecretsSuffix] = true
		}
		results = append(results, res)
	}
	// What earlier packs left: other nodes' files, a .secrets beside an archive that now
	// holds the secrets, temporary files of an interrupted pack.
	entries, err := os.ReadDir(nodesDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(nodesDir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	if err := syncDir(nodesDir); err != nil {
		return nil, err
	}
	top, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	for _, e := range top {
		if isTemp(e.Name()) {
			if err := os.Remove(filepath.Join(out, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	if err := writeAtomic(filepath.Join(out, SumsName), bundle.ModePublic, func(w io.Writer) error {
		_, err := w.Write(Sums(results))
		return err
	}); err != nil {
		return nil, err
	}
	return results, syncDir(out)
}

// Sums is the output's SHA256SUMS: "<hex sha256>  nodes/<node>.tar.gz\n" per archive, as
// sha256sum writes it.
func Sums(results []Result) []byte {
	var b bytes.Buffer
	for _, r := range results {
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(r.Sum[:]), r.Path)
	}
	return b.Bytes()
}

// selectNodes returns the named nodes in spec order (every node for none), refusing an
// unknown name.
func (b *Bundle) selectNodes(names []string) ([]string, error) {
	all := b.Nodes()
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if b.nodes[n] == nil {
			return nil, &UnknownNodeError{Name: n, Known: all}
		}
		want[n] = true
	}
	var out []string
	for _, n := range all {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// UnknownNodeError names a node the bundle does not have.
type UnknownNodeError struct {
	Name  string
	Known []string
}

func (e *UnknownNodeError) Error() string {
	return fmt.Sprintf("no node %q in the bundle; its nodes: %s", e.Name, strings.Join(e.Known, ", "))
}

// checkOutside refuses an output directory inside the bundle (or the bundle inside it):
// the bundle must stay exactly as rendered.
func (b *Bundle) checkOutside(out string) error {
	bdir, err := realPath(b.Dir)
	if err != nil {
		return err
	}
	odir, err := realPath(out)
	if err != nil {
		return err
	}
	if within(odir, bdir) || within(bdir, odir) {
		return fmt.Errorf("output directory %s overlaps the bundle %s; the bundle must stay exactly as rendered, so write the archives elsewhere (--to)", out, b.Dir)
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// realPath is p absolute with the symlinks of its longest existing prefix resolved.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := abs; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if filepath.Dir(cur) == cur {
			return abs, nil
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
	}
}

// checkOutput refuses an output directory holding anything an earlier pack did not write.
func checkOutput(out string) error {
	st, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("output directory %s exists and is not a directory; choose another one (--to)", out)
	}
	var foreign []string
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch {
		case e.Name() == NodesDir && e.IsDir():
			sub, err := os.ReadDir(filepath.Join(out, NodesDir))
			if err != nil {
				return err
			}
			for _, s := range sub {
				if !s.Type().IsRegular() || !isTemp(s.Name()) && !strings.HasSuffix(s.Name(), ArchiveSuffix) && !strings.HasSuffix(s.Name(), SecretsSuffix) {
					foreign = append(foreign, path.Join(NodesDir, s.Name()))
				}
			}
		case e.Type().IsRegular() && (e.Name() == SumsName || e.Name() == IgnoreName || isTemp(e.Name())):
		default:
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		return fmt.Errorf("output directory %s holds %s, which scratchgen pack did not write; pack replaces what is there, so choose a new or empty directory (--to)", out, strings.Join(foreign, ", "))
	}
	return nil
}

// tempPattern names the temporary file of name: a dot file, so an interrupted pack's
// leftovers are recognised (isTemp) and removed by the next one.
func tempPattern(name string) string { return "." + name + ".tmp-*" }

func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") }

// writeAtomic writes path through a temporary file in its directory, synced and renamed
// into place: readers see the old file or the whole new one, never a part.
func writeAtomic(p string, mode fs.FileMode, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(p), tempPattern(filepath.Base(p)))
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("writing %s: %w", p, err)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := fill(bw); err != nil {
		return err
	}
	if err := errors.Join(bw.Flush(), tmp.Chmod(mode), tmp.Sync()); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
