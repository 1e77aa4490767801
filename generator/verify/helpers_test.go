package verify_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// The test fixture's root secret and clock (a public fixture: never for a real cluster).
var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// testAt is when the fixture's certificates are checked: well inside their validity.
	testAt = testNow.Add(30 * 24 * time.Hour)
)

// specData returns a named spec: "example" is `scratchgen init`'s, the others are copies
// of golden cases in testdata/specs.
func specData(t testing.TB, name string) []byte {
	t.Helper()
	if name == "example" {
		return []byte(spec.Example("demo"))
	}
	data, err := os.ReadFile(filepath.Join("testdata", "specs", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// renderTo renders a spec (with an optional lock) into dir/<cluster> and returns the
// bundle directory and the render output.
func renderTo(t testing.TB, dir string, specBytes []byte, lk *lock.Lock) (string, *render.Output) {
	t.Helper()
	out, err := render.Render(specBytes, lk, render.Deps{Secret: testSecret, Now: testNow})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	bdir := filepath.Join(dir, out.Plan.Cluster)
	if _, err := writer.Write(bdir, out.Plan.Files(), writer.NoSync()); err != nil {
		t.Fatalf("write: %v", err)
	}
	return bdir, out
}

// pinnedLock returns a lock that pins every image of the spec to a made-up digest, and
// every binary download to the content fakeBinary makes up for its URL.
func pinnedLock(t testing.TB, specBytes []byte) *lock.Lock {
	t.Helper()
	out, err := render.Render(specBytes, nil, render.Deps{Secret: testSecret, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	lk := out.Lock
	lk.Images = map[string]lock.Image{}
	for _, tag := range out.Model.Images.Unpinned {
		sum := sha256.Sum256([]byte(tag))
		lk.Images[tag] = lock.Image{Digest: "sha256:" + hex.EncodeToString(sum[:])}
	}
	lk.Binaries = map[string]lock.Binary{}
	for _, u := range out.Model.BinaryURLs() {
		c := fakeBinary(t, u)
		s256, s512 := sha256.Sum256(c), sha512.Sum512(c)
		lk.Binaries[u] = lock.Binary{SHA256: hex.EncodeToString(s256[:]), SHA512: hex.EncodeToString(s512[:]), Size: int64(len(c))}
	}
	return lk
}

// fakeBinary is the made-up content of a download: a release archive holding ./bridge
// (and ./loopback) for a .tgz URL, else a small script naming the URL.
func fakeBinary(t testing.TB, url string) []byte {
	t.Helper()
	if !strings.HasSuffix(url, ".tgz") && !strings.HasSuffix(url, ".tar.gz") {
		return []byte("#!/bin/sh\n# fake binary from " + url + "\n")
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range []struct{ name, data string }{{"./loopback", "fake loopback plugin\n"}, {"./bridge", "fake bridge plugin\n"}} {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o755, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// templates caches one rendered bundle per spec; tests copy it. TestMain removes them.
var templates sync.Map // name → string (bundle dir)

func TestMain(m *testing.M) {
	code := m.Run()
	templates.Range(func(_, v any) bool {
		os.RemoveAll(filepath.Dir(v.(string)))
		return true
	})
	os.Exit(code)
}

// fixture returns a fresh copy of the bundle rendered from a named spec: a specData name,
// with "-pinned" its render with pinnedLock, or "binaries-carried" and
// "binaries-fetched" (renderBinaries).
func fixture(t *testing.T, name string) string {
	t.Helper()
	v, ok := templates.Load(name)
	if !ok {
		dir, err := os.MkdirTemp("", "verify-template-")
		if err != nil {
			t.Fatal(err)
		}
		var bdir string
		if kind, ok := strings.CutPrefix(name, "binaries-"); ok {
			bdir = renderBinaries(t, dir, kind == "carried")
		} else {
			var lk *lock.Lock
			data := specData(t, strings.TrimSuffix(name, "-pinned"))
			if strings.HasSuffix(name, "-pinned") {
				lk = pinnedLock(t, data)
			}
			bdir, _ = renderTo(t, dir, data, lk)
		}
		var loaded bool
		if v, loaded = templates.LoadOrStore(name, bdir); loaded {
			os.RemoveAll(dir) // another test rendered it first
		}
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(v.(string)))
	copyTree(t, v.(string), dst)
	return dst
}

// copyTree copies a directory tree with its modes.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.MkdirAll(to, 0o755); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chmod(to, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// resum rewrites SHA256SUMS from the files on disk, as someone covering their tracks would.
func resum(t testing.TB, dir string) {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == writer.SumsName {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+rel+"\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	if err := os.WriteFile(filepath.Join(dir, writer.SumsName), []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rootfs(dir, node, p string) string {
	return filepath.Join(dir, "nodes", node, "rootfs", filepath.FromSlash(p))
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// write replaces a file's content, keeping its mode. It replaces the file rather than
// writing into it: the same file of other nodes may be a hard link to it, and a tampering
// test changes one path.
func write(t testing.TB, p string, data []byte) {
	t.Helper()
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(p); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// setFile replaces a rootfs file of a node and every provisioning view that carries it,
// consistently, so that only the deep checks can tell. data nil removes the file.
func setFile(t testing.TB, dir, node, p string, data []byte) {
	t.Helper()
	if data == nil {
		if err := os.Remove(rootfs(dir, node, p)); err != nil {
			t.Fatal(err)
		}
	} else {
		write(t, rootfs(dir, node, p), data)
	}
	patchIgnition(t, dir, node, p, data)
	patchYAMLView(t, dir, node, "user-data", "write_files", p, data)
	patchYAMLView(t, dir, node, "node.bu", "storage", p, data)
}

// patchIgnition changes (or removes, data nil) one file of a node's ignition.json.
func patchIgnition(t testing.TB, dir, node, p string, data []byte) {
	t.Helper()
	file := filepath.Join(dir, "nodes", node, "ignition.json")
	var cfg map[string]any
	if err := json.Unmarshal(read(t, file), &cfg); err != nil {
		t.Fatal(err)
	}
	storage, _ := cfg["storage"].(map[string]any)
	files, _ := storage["files"].([]any)
	var out []any
	for _, f := range files {
		m := f.(map[string]any)
		if m["path"] == p {
			if data == nil {
				continue
			}
			m["contents"] = map[string]any{"source": "data:;base64," + base64.StdEncoding.EncodeToString(data)}
		}
		out = append(out, m)
	}
	if storage != nil {
		storage["files"] = out
	}
	enc, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	write(t, file, append(enc, '\n'))
}

// patchYAMLView changes (or removes, data nil) one file of node.bu or user-data,
// keeping the leading comment lines.
func patchYAMLView(t testing.TB, dir, node, name, kind, p string, data []byte) {
	t.Helper()
	editYAMLView(t, dir, node, name, p, func(m map[string]any) bool {
		if data == nil {
			return false
		}
		if kind == "write_files" {
			m["content"] = base64.StdEncoding.EncodeToString(data)
		} else {
			m["contents"] = map[string]any{"inline": string(data)}
		}
		return true
	})
}

// editYAMLView calls edit on the entry for path p in node.bu's storage.files or
// user-data's write_files; the entry is dropped when edit returns false.
func editYAMLView(t testing.TB, dir, node, name, p string, edit func(map[string]any) bool) {
	t.Helper()
	file := filepath.Join(dir, "nodes", node, name)
	text := string(read(t, file))
	var header strings.Builder
	for strings.HasPrefix(text, "#") {
		line, rest, _ := strings.Cut(text, "\n")
		header.WriteString(line + "\n")
		text = rest
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	var files []any
	var set func([]any)
	if name == "user-data" {
		files, _ = cfg["write_files"].([]any)
		set = func(f []any) { cfg["write_files"] = f }
	} else {
		storage, _ := cfg["storage"].(map[string]any)
		files, _ = storage["files"].([]any)
		set = func(f []any) {
			if storage != nil {
				storage["files"] = f
			}
		}
	}
	var out []any
	found := false
	for _, f := range files {
		m := f.(map[string]any)
		if m["path"] == p {
			found = true
			if !edit(m) {
				continue
			}
		}
		out = append(out, m)
	}
	if !found && !strings.Contains(header.String(), p) {
		t.Fatalf("%s of %s does not write %s", name, node, p)
	}
	set(out)
	enc, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(t, file, append([]byte(header.String()), enc...))
}

func chmod(t testing.TB, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
