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
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goldenBundle rebuilds the rendered bundle of a golden case in a temporary directory:
// the expected tree stores .gitignore as gitignore.golden and every file 0644, with the
// real modes in MODES. It returns the bundle and MODES (bundle path → mode), the
// oracle the archives' modes are checked against.
func goldenBundle(t *testing.T, name string) (string, map[string]fs.FileMode) {
	t.Helper()
	src := filepath.Join("..", "..", "golden", "testdata", "bundles", name, "expected")
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case rel == "MODES":
			return nil
		case filepath.Base(rel) == "gitignore.golden":
			rel = filepath.Join(filepath.Dir(rel), ".gitignore")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{}
	data, err := os.ReadFile(filepath.Join(src, "MODES"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		m, rel, ok := strings.Cut(line, " ")
		n, err := strconv.ParseUint(m, 8, 32)
		if !ok || err != nil {
			t.Fatalf("MODES line %q", line)
		}
		modes[rel] = fs.FileMode(n)
		if err := os.Chmod(filepath.Join(dst, filepath.FromSlash(rel)), fs.FileMode(n)); err != nil {
			t.Fatal(err)
		}
	}
	return dst, modes
}

// open is Open that must succeed.
func open(t *testing.T, dir string) *Bundle {
	t.Helper()
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s) of an intact bundle: %v", dir, err)
	}
	return b
}

// write is Write that must succeed.
func write(t *testing.T, b *Bundle, out string, opts Options) []Result {
	t.Helper()
	res, err := b.Write(out, opts)
	if err != nil {
		t.Fatalf("Write(%s): %v", out, err)
	}
	return res
}

// readDir returns every file under dir by slash path with its bytes.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gitignoreSecrets is the independent oracle of a node's secrets: the node paths the
// golden .gitignore lists under nodes/<node>/rootfs/.
func gitignoreSecrets(t *testing.T, bundleDir, node string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundleDir, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	prefix := "/nodes/" + node + "/rootfs"
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, prefix); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("the golden .gitignore lists no secret of node %s: the test proves nothing", node)
	}
	return out
}

// TestPackIsReproducible: packing twice, into another directory, from a copy of the
// bundle with other file times, gives the same bytes; SHA256SUMS names each archive with
// its sum, as `sha256sum -c` reads it.
func TestPackIsReproducible(t *testing.T) {
	dir, _ := goldenBundle(t, "shared")
	b := open(t, dir)
	for _, withSecrets := range []bool{false, true} {
		t.Run(fmt.Sprintf("withSecrets=%v", withSecrets), func(t *testing.T) {
			opts := Options{WithSecrets: withSecrets}
			a := filepath.Join(t.TempDir(), "a")
			res := write(t, b, a, opts)
			first := readDir(t, a)
			write(t, b, a, opts)
			if again := readDir(t, a); !mapsEqual(first, again) {
				t.Error("packing twice into one directory gave different bytes")
			}
			other := filepath.Join(t.TempDir(), "elsewhere", "b")
			write(t, b, other, opts)
			if got := readDir(t, other); !mapsEqual(first, got) {
				t.Error("packing into another directory gave different bytes")
			}
			// A copy of the bundle whose files have other times packs the same.
			dir2, _ := goldenBundle(t, "shared")
			old := time.Date(2011, 3, 4, 5, 6, 7, 0, time.UTC)
			filepath.WalkDir(dir2, func(p string, _ fs.DirEntry, _ error) error { return os.Chtimes(p, old, old) })
			c := filepath.Join(t.TempDir(), "c")
			write(t, open(t, dir2), c, opts)
			if got := readDir(t, c); !mapsEqual(first, got) {
				t.Error("a copy of the bundle with other mtimes gave different bytes")
			}

			if len(res) != 3 {
				t.Fatalf("%d archives, want one per node of the shared case (3)", len(res))
			}
			var sums strings.Builder
			for _, r := range res {
				data := first[r.Path]
				sum := sha256.Sum256([]byte(data))
				if r.Sum != sum || r.Size != int64(len(data)) || r.Path != "nodes/"+r.Node+".tar.gz" {
					t.Errorf("%s: result %x %d bytes, file %x %d bytes", r.Path, r.Sum, r.Size, sum, len(data))
				}
				fmt.Fprintf(&sums, "%s  nodes/%s.tar.gz\n", hex.EncodeToString(sum[:]), r.Node)
			}
			if first["SHA256SUMS"] != sums.String() {
				t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", first["SHA256SUMS"], sums.String())
			}
			if sha, err := exec.LookPath("sha256sum"); err == nil {
				cmd := exec.Command(sha, "-c", "--strict", "SHA256SUMS")
				cmd.Dir = a
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
				}
			} else {
				t.Log("SKIPPED: sha256sum -c not run: no sha256sum (the sums were checked in Go)")
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// tarEntry is one entry as Go's archive/tar reads it.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readArchive reads a .tar.gz with Go's readers, checking the gzip header.
func readArchive(t *testing.T, file string) []tarEntry {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.Extra != nil {
		t.Errorf("%s: gzip header carries name %q, comment %q, time %v, extra %q; want none", file, zr.Name, zr.Comment, zr.ModTime, zr.Extra)
	}
	tr := tar.NewReader(zr)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, data})
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Errorf("%s: gzip trailer: %v", file, err)
	}
	return out
}

// rootfsTree is a node's rootfs on disk: name relative to / ("etc/kubernetes", dirs
// with a trailing slash) → mode and content.
func rootfsTree(t *testing.T, root string) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel+"/"] = tarEntry{hdr: &tar.Header{Mode: int64(info.Mode().Perm()), Typeflag: tar.TypeDir}}
			return nil
		}
		if !info.Mode().IsRegular() {
			t.Fatalf("%s is not a regular file", p)
		}
		data, err := os.ReadFile(p)
		out[rel] = tarEntry{hdr: &tar.Header{Mode: int64(info.Mode().Perm()), Typeflag: tar.TypeReg}, data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestArchiveEntries: Go's archive/tar reads every entry of every archive: regular files
// and directories only, owned by root, at the fixed time, no atime/ctime/xattrs, sorted
// with each directory before its contents, names relative without "./"; the entries
// are exactly the node's rootfs (secrets left out unless asked), with MODES' modes and
// the bundle's bytes. Runs as any user.
func TestArchiveEntries(t *testing.T) {
	dir, modes := goldenBundle(t, "shared")
	b := open(t, dir)
	for _, withSecrets := range []bool{false, true} {
		out := t.TempDir()
		for _, r := range write(t, b, out, Options{WithSecrets: withSecrets}) {
			t.Run(fmt.Sprintf("%s/withSecrets=%v", r.Node, withSecrets), func(t *testing.T) {
				entries := readArchive(t, filepath.Join(out, r.Path))
				root := filepath.Join(dir, "nodes", r.Node, "rootfs")
				want := rootfsTree(t, root)
				secrets := gitignoreSecrets(t, dir, r.Node)
				if !withSecrets {
					for _, s := range secrets {
						delete(want, strings.TrimPrefix(s, "/"))
					}
				}
				seen := map[string]bool{}
				prev := ""
				for _, e := range entries {
					h := e.hdr
					key := strings.TrimSuffix(h.Name, "/")
					switch {
					case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir:
						t.Errorf("%s: type %q, want a regular file or a directory", h.Name, h.Typeflag)
					case h.Typeflag == tar.TypeDir != strings.HasSuffix(h.Name, "/"):
						t.Errorf("%s: a directory's name ends in /, nothing else's", h.Name)
					}
					if strings.HasPrefix(h.Name, "/") || strings.HasPrefix(h.Name, "./") || strings.Contains(h.Name, "..") {
						t.Errorf("%s: want a name relative to / without ./ or ..", h.Name)
					}
					if h.Uid != 0 || h.Gid != 0 || h.Uname != "root" || h.Gname != "root" {
						t.Errorf("%s: owner %d:%d %s:%s, want 0:0 root:root", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
					}
					if !h.ModTime.Equal(time.Unix(946684800, 0)) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
						t.Errorf("%s: mtime %v atime %v ctime %v, want mtime 2000-01-01T00:00:00Z only", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
					}
					if len(h.PAXRecords) > 0 || len(h.Xattrs) > 0 || h.Linkname != "" {
						t.Errorf("%s: PAX records %v, xattrs %v, link %q; want none", h.Name, h.PAXRecords, h.Xattrs, h.Linkname)
					}
					if h.Format&(tar.FormatUSTAR|tar.FormatPAX) == 0 || h.Format&tar.FormatGNU != 0 {
						t.Errorf("%s: format %v, want USTAR headers (PAX)", h.Name, h.Format)
					}
					if key <= prev {
						t.Errorf("%s comes after %s: entries are not sorted by path", h.Name, prev)
					}
					prev = key
					if d := path.Dir(key); d != "." && !seen[d] {
						t.Errorf("%s comes before its directory %s/", h.Name, d)
					}
					seen[key] = true
					w, ok := want[h.Name]
					if !ok {
						t.Errorf("%s: in the archive, not in the rootfs (or a secret in a public archive)", h.Name)
						continue
					}
					delete(want, h.Name)
					if h.Typeflag != w.hdr.Typeflag || !bytes.Equal(e.data, w.data) || h.Size != int64(len(w.data)) {
						t.Errorf("%s: type or content differs from the bundle's", h.Name)
					}
					wantMode := fs.FileMode(0o755)
					if h.Typeflag == tar.TypeReg {
						m, ok := modes[path.Join("nodes", r.Node, "rootfs", h.Name)]
						if !ok {
							t.Fatalf("%s is not in MODES", h.Name)
						}
						wantMode = m
					}
					if fs.FileMode(h.Mode) != wantMode {
						t.Errorf("%s: mode %04o, want %04o", h.Name, h.Mode, wantMode)
					}
					if !withSecrets && bytes.Contains(e.data, []byte("PRIVATE KEY-----")) {
						t.Errorf("%s: a public archive holds a private key", h.Name)
					}
				}
				for name := range want {
					t.Errorf("%s: in the rootfs, missing from the archive", name)
				}
				if withSecrets {
					for _, s := range secrets {
						if !seen[strings.TrimPrefix(s, "/")] {
							t.Errorf("%s: a secret missing from the --with-secrets archive", s)
						}
					}
				}
			})
		}
	}
}

// TestSecretsLeftOutAndListed: a public archive has none of the node's secret files and
// nodes/<node>.secrets lists exactly them (the golden .gitignore is the oracle, checked
// against MODES' 0600 files); with secrets they are in, 0600, and no .secrets list is
// left from the public pack before. The archive with secrets is itself 0600.
func TestSecretsLeftOutAndListed(t *testing.T) {
	dir, modes := goldenBundle(t, "shared")
	b := open(t, dir)
	out := t.TempDir()
	for _, r := range write(t, b, out, Options{}) {
		want := gitignoreSecrets(t, dir, r.Node)
		var by0600 []string
		for rel, m := range modes {
			if p, ok := strings.CutPrefix(rel, "nodes/"+r.Node+"/rootfs"); ok && m == 0o600 {
				by0600 = append(by0600, p)
			}
		}
		sort.Strings(by0600)
		if !slices.Equal(want, by0600) {
			t.Fatalf("the oracles disagree: .gitignore %v, MODES 0600 %v", want, by0600)
		}
		list, err := os.ReadFile(filepath.Join(out, "nodes", r.Node+".secrets"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(want, "\n") + "\n"; string(list) != got {
			t.Errorf("%s.secrets:\n%s\nwant:\n%s", r.Node, list, got)
		}
		if !slices.Equal(r.Secrets, want) || r.SecretsPath != "nodes/"+r.Node+".secrets" {
			t.Errorf("%s: result secrets %v at %s", r.Node, r.Secrets, r.SecretsPath)
		}
		for _, e := range readArchive(t, filepath.Join(out, r.Path)) {
			if slices.Contains(want, "/"+e.hdr.Name) {
				t.Errorf("%s: the public archive holds the secret %s", r.Node, e.hdr.Name)
			}
		}
		if st, _ := os.Stat(filepath.Join(out, r.Path)); st.Mode().Perm() != 0o644 {
			t.Errorf("public archive %s has mode %v, want 0644", r.Path, st.Mode().Perm())
		}
	}

	for _, r := range write(t, b, out, Options{WithSecrets: true}) {
		if r.Secrets != nil || r.SecretsPath != "" {
			t.Errorf("%s: with secrets, the result lists secrets %v in %q", r.Node, r.Secrets, r.SecretsPath)
		}
		if _, err := os.Lstat(filepath.Join(out, "nodes", r.Node+".secrets")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s.secrets is left from the public pack beside an archive that holds the secrets", r.Node)
		}
		if st, _ := os.Stat(filepath.Join(out, r.Path)); st.Mode().Perm() != 0o600 {
			t.Errorf("archive with secrets %s has mode %v, want 0600", r.Path, st.Mode().Perm())
		}
		in := map[string]int64{}
		for _, e := range readArchive(t, filepath.Join(out, r.Path)) {
			in["/"+e.hdr.Name] = e.hdr.Mode
		}
		for _, s := range gitignoreSecrets(t, dir, r.Node) {
			if m, ok := in[s]; !ok || m != 0o600 {
				t.Errorf("%s: secret %s in the archive: %v, mode %04o; want it, 0600", r.Node, s, ok, m)
			}
		}
	}
}

// TestGNUTar: Debian's tar lists every archive as root-owned with the bundle's modes and
// the fixed time (as any user), and, as root, `tar -xpf X -C DIR` into an empty
// directory reproduces the rootfs exactly: the same files and directories, modes,
// content, uid/gid 0.
func TestGNUTar(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("SKIPPED: no tar: the archives were not checked with GNU tar (TestArchiveEntries checks them with Go's reader)")
	}
	dir, _ := goldenBundle(t, "shared")
	b := open(t, dir)
	for _, withSecrets := range []bool{false, true} {
		out := t.TempDir()
		for _, r := range write(t, b, out, Options{WithSecrets: withSecrets}) {
			t.Run(fmt.Sprintf("%s/withSecrets=%v", r.Node, withSecrets), func(t *testing.T) {
				archive := filepath.Join(out, r.Path)
				root := filepath.Join(dir, "nodes", r.Node, "rootfs")
				want := rootfsTree(t, root)
				if !withSecrets {
					for _, s := range gitignoreSecrets(t, dir, r.Node) {
						delete(want, strings.TrimPrefix(s, "/"))
					}
				}
				checkListing(t, tarBin, archive, want)
				if os.Geteuid() != 0 {
					t.Skip("SKIPPED: extracting with tar -xpf needs root (to create root-owned files): run the tests as root to check that extraction reproduces the rootfs; the listing was checked")
				}
				dst := t.TempDir()
				cmd := exec.Command(tarBin, "-xpf", archive, "-C", dst)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("tar -xpf %s -C %s: %v\n%s", archive, dst, err, out)
				}
				got := rootfsTree(t, dst)
				for name, w := range want {
					g, ok := got[name]
					switch {
					case !ok:
						t.Errorf("%s: not extracted", name)
					case g.hdr.Typeflag != w.hdr.Typeflag || g.hdr.Mode != w.hdr.Mode || !bytes.Equal(g.data, w.data):
						t.Errorf("%s: extracted as type %q mode %04o, want %q %04o (or content differs)", name, g.hdr.Typeflag, g.hdr.Mode, w.hdr.Typeflag, w.hdr.Mode)
					}
					delete(got, name)
				}
				for name := range got {
					t.Errorf("%s: extracted, but not in the rootfs (or a secret from a public archive)", name)
				}
				filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					info, _ := d.Info()
					if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 || st.Gid != 0 {
						t.Errorf("%s: extracted with owner %v, want 0:0", p, info.Sys())
					}
					if p != dst && !info.ModTime().Equal(time.Unix(946684800, 0)) {
						t.Errorf("%s: extracted with mtime %v, want 2000-01-01T00:00:00Z", p, info.ModTime())
					}
					return nil
				})
			})
		}
	}
}

// checkListing runs `tar -tvzf` and compares each line's mode, owner, size, time and
// name with want (and the set of names).
func checkListing(t *testing.T, tarBin, archive string, want map[string]tarEntry) {
	t.Helper()
	cmd := exec.Command(tarBin, "--numeric-owner", "--full-time", "-tvzf", archive)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -tvzf %s: %v", archive, err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// drwxr-xr-x 0/0           0 2000-01-01 00:00:00 etc/
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Errorf("tar -tv line %q", sc.Text())
			continue
		}
		name := f[5]
		listed[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("tar lists %s, which is not in the rootfs (or a secret in a public archive)", name)
			continue
		}
		wantPerm := fs.FileMode(w.hdr.Mode).String()[1:]
		typ := "-"
		if w.hdr.Typeflag == tar.TypeDir {
			typ = "d"
		}
		if f[0] != typ+wantPerm || f[1] != "0/0" || f[2] != strconv.Itoa(len(w.data)) || f[3]+" "+f[4] != "2000-01-01 00:00:00" {
			t.Errorf("tar -tv: %q; want %s%s 0/0 %d 2000-01-01 00:00:00", sc.Text(), typ, wantPerm, len(w.data))
		}
	}
	for name := range want {
		if !listed[name] {
			t.Errorf("tar does not list %s", name)
		}
	}
}

// flip changes one byte of a bundle file, keeping its mode.
func flip(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	st, _ := os.Stat(file)
	if err := os.WriteFile(file, data, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedBundleRefused: a bundle that is not as rendered is refused naming the
// file, and nothing is written: an earlier pack's output stays byte for byte.
func TestTamperedBundleRefused(t *testing.T) {
	const cfg = "nodes/worker-1/rootfs/etc/containerd/config.toml"
	const key = "nodes/cp-1/rootfs/etc/kubernetes/pki/ca.key"
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		path   string
		msg    string
	}{
		{"flipped byte", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, cfg)) }, cfg, "does not match its SHA-256 sum"},
		{"flipped byte in a secret", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, key)) }, key, "does not match its SHA-256 sum"},
		{"secret made readable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, key), 0o644) }, key, "has mode 0644, want 0600"},
		{"script made non-executable", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "nodes/cp-1/rootfs/etc/scratchgen/routes.sh"), 0o700)
		}, "nodes/cp-1/rootfs/etc/scratchgen/routes.sh", "has mode 0700"},
		{"directory mode", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "nodes/cp-1/rootfs/etc"), 0o775) }, "nodes/cp-1/rootfs/etc/", "directory has mode 0775"},
		{"foreign file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "nodes/cp-1/rootfs/etc/extra.conf"), []byte("x"), 0o644)
		}, "nodes/cp-1/rootfs/etc/extra.conf", "not listed in SHA256SUMS"},
		{"missing file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, cfg)) }, cfg, "listed in SHA256SUMS but missing"},
		{"symlink", func(t *testing.T, dir string) {
			os.Symlink("/etc/shadow", filepath.Join(dir, "nodes/cp-1/rootfs/etc/link"))
		}, "nodes/cp-1/rootfs/etc/link", "symbolic link"},
		{"empty directory", func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "nodes/cp-1/rootfs/opt"), 0o755) }, "nodes/cp-1/rootfs/opt/", "empty directory"},
		{"secret unlisted", func(t *testing.T, dir string) {
			// .gitignore and SHA256SUMS rewritten consistently: the key would go public.
			gi := filepath.Join(dir, ".gitignore")
			data, _ := os.ReadFile(gi)
			os.WriteFile(gi, bytes.Replace(data, []byte("/"+key+"\n"), nil, 1), 0o644)
			os.Chmod(filepath.Join(dir, key), 0o644)
			resum(t, dir)
		}, key, "holds a private key, but .gitignore does not list it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := goldenBundle(t, "shared")
			out := filepath.Join(t.TempDir(), "packs")
			write(t, open(t, dir), out, Options{})
			before := snapshot(t, out)
			c.tamper(t, dir)
			b, err := Open(dir)
			var ni *NotIntactError
			if !errors.As(err, &ni) {
				t.Fatalf("Open of a tampered bundle: %v, %v; want a NotIntactError", b, err)
			}
			found := false
			for _, p := range ni.Problems {
				found = found || p.Path == c.path && strings.Contains(p.Msg, c.msg)
			}
			if !found || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), "nothing was packed") {
				t.Errorf("error does not name %s (%q):\n%v", c.path, c.msg, err)
			}
			if after := snapshot(t, out); after != before {
				t.Errorf("the output changed although the bundle was refused:\n%s\n%s", before, after)
			}
		})
	}
}

// resum rewrites a bundle's SHA256SUMS from its files.
func resum(t *testing.T, dir string) {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err != nil || d.IsDir() || rel == "SHA256SUMS" {
			return err
		}
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+filepath.ToSlash(rel)+"\n")
		return nil
	})
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "")), 0o644)
}

// snapshot lists every file under dir with its mode, mtime and content hash.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %v %d %x\n", p, info.Mode(), info.ModTime().UnixNano(), sha256.Sum256(data))
		return nil
	})
	return b.String()
}

// TestOutputDirectory: --node selects nodes (in spec order) and removes the other nodes'
// files an earlier pack left, with the leftovers of an interrupted one; an unknown node
// is refused naming the known ones; an output directory inside the bundle, or holding
// files pack did not write, is refused before anything is written.
func TestOutputDirectory(t *testing.T) {
	dir, _ := goldenBundle(t, "shared")
	b := open(t, dir)
	out := filepath.Join(t.TempDir(), "packs")
	write(t, b, out, Options{})
	os.WriteFile(filepath.Join(out, "nodes", ".cp-1.tar.gz.tmp-123"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(out, ".SHA256SUMS.tmp-456"), []byte("half"), 0o644)
	res := write(t, b, out, Options{Nodes: []string{"worker-2", "cp-1", "cp-1"}})
	if len(res) != 2 || res[0].Node != "cp-1" || res[1].Node != "worker-2" {
		t.Fatalf("results %v, want cp-1 then worker-2", res)
	}
	var names []string
	for name := range readDir(t, out) {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{".gitignore", "SHA256SUMS", "nodes/cp-1.secrets", "nodes/cp-1.tar.gz", "nodes/worker-2.secrets", "nodes/worker-2.tar.gz"}
	if !slices.Equal(names, want) {
		t.Errorf("output holds %v, want %v", names, want)
	}
	if sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS")); bytes.Count(sums, []byte("\n")) != 2 || bytes.Contains(sums, []byte("worker-1")) {
		t.Errorf("SHA256SUMS lists other archives than cp-1 and worker-2:\n%s", sums)
	}

	_, err := b.Write(filepath.Join(t.TempDir(), "x"), Options{Nodes: []string{"cp-9"}})
	var un *UnknownNodeError
	if !errors.As(err, &un) || !strings.Contains(err.Error(), `"cp-9"`) || !strings.Contains(err.Error(), "cp-1, worker-1, worker-2") {
		t.Errorf("unknown node: %v; want it named with the known nodes", err)
	}

	before := snapshot(t, dir)
	for _, bad := range []string{dir, filepath.Join(dir, "packs"), filepath.Join(dir, "nodes", "cp-1", "rootfs", "x"), filepath.Dir(dir)} {
		if _, err := b.Write(bad, Options{}); err == nil || !strings.Contains(err.Error(), "overlaps the bundle") {
			t.Errorf("output %s: %v; want a refusal", bad, err)
		}
	}
	if snapshot(t, dir) != before {
		t.Error("the bundle changed")
	}
	if _, err := Open(dir); err != nil {
		t.Errorf("the bundle is no longer intact: %v", err)
	}

	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	if _, err := b.Write(foreign, Options{}); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("foreign output directory: %v; want a refusal naming notes.txt", err)
	}
	if entries, _ := os.ReadDir(foreign); len(entries) != 1 {
		t.Errorf("pack wrote into a foreign directory: %v", entries)
	}
}

// TestWriteAtomicFailure: an archive whose writing fails leaves the previous file as it
// was and no temporary file.
func TestWriteAtomicFailure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cp-1.tar.gz")
	os.WriteFile(p, []byte("old"), 0o644)
	err := writeAtomic(p, 0o644, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("writeAtomic: %v", err)
	}
	if data, _ := os.ReadFile(p); string(data) != "old" {
		t.Error("the previous file was replaced by a failed write")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed write left %v", entries)
	}
}

// TestEveryGoldenBundlePacks: every golden bundle is intact for Open and packs with its
// secret files listed (a node without secrets would make the tests above prove less).
func TestEveryGoldenBundlePacks(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("..", "..", "golden", "testdata", "bundles", "*", "expected", "MODES"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden bundles: %v", err)
	}
	for _, m := range cases {
		name := filepath.Base(filepath.Dir(filepath.Dir(m)))
		t.Run(name, func(t *testing.T) {
			dir, _ := goldenBundle(t, name)
			res := write(t, open(t, dir), t.TempDir(), Options{})
			for _, r := range res {
				if !slices.Equal(r.Secrets, gitignoreSecrets(t, dir, r.Node)) {
					t.Errorf("%s: secrets %v differ from the .gitignore's", r.Node, r.Secrets)
				}
			}
		})
	}
}
