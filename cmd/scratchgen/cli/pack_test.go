package cli

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pkNodes reads the node names of ./bundles/demo/bundle.json.
func pkNodes(t *testing.T) []string {
	t.Helper()
	var meta struct{ Nodes []struct{ Name string } }
	if err := json.Unmarshal(mustRead(t, "bundles/demo/bundle.json"), &meta); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range meta.Nodes {
		out = append(out, n.Name)
	}
	if len(out) < 2 {
		t.Fatalf("the example has %d node(s); the test needs two", len(out))
	}
	return out
}

// pkEntries lists a .tar.gz's entries: name → mode.
func pkEntries(t *testing.T, file string) map[string]int64 {
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
	out := map[string]int64{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "root" || h.ModTime.Unix() != 946684800 {
			t.Errorf("%s: %s is %d:%d %s at %v", file, h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
		out[h.Name] = h.Mode
	}
}

// TestPackEndToEnd renders the example and packs it as a user would: one line per node
// with the archive's real sha256 and size; SHA256SUMS that `sha256sum -c` accepts; the
// bundle untouched and still found by a bare `verify`; the same bytes again; --node,
// --with-secrets and --to; an unknown node, a stray argument, an empty --to and a missing
// spec refused; and a tampered bundle refused naming the file, with nothing written.
func TestPackEndToEnd(t *testing.T) {
	vfWork(t)
	nodes := pkNodes(t)
	bundleBefore := snapshotTree(t, "bundles/demo")

	r := vfRun("pack")
	if r.code != 0 {
		t.Fatalf("pack: exit %d\n%s%s", r.code, r.out, r.err)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != len(nodes) {
		t.Fatalf("pack printed %d line(s) for %d nodes:\n%s", len(lines), len(nodes), r.out)
	}
	line := regexp.MustCompile(`^(\S+)  sha256:([0-9a-f]{64})  (\d+) bytes  public: (\d+) secret file\(s\) left out, listed in (\S+)$`)
	for i, n := range nodes {
		m := line.FindStringSubmatch(lines[i])
		if m == nil {
			t.Errorf("line %q does not match %s", lines[i], line)
			continue
		}
		archive := filepath.Join("packs", "demo", "nodes", n+".tar.gz")
		data := mustRead(t, archive)
		sum := sha256.Sum256(data)
		if m[1] != archive || m[2] != hex.EncodeToString(sum[:]) || m[3] != fmt.Sprint(len(data)) || m[5] != filepath.Join("packs", "demo", "nodes", n+".secrets") {
			t.Errorf("line %q; want %s with sha256 %x and %d bytes", lines[i], archive, sum, len(data))
		}
		secrets := strings.Fields(string(mustRead(t, m[5])))
		if m[4] != fmt.Sprint(len(secrets)) || len(secrets) == 0 {
			t.Errorf("%s: %s secret(s) left out, the list has %d", n, m[4], len(secrets))
		}
		entries := pkEntries(t, archive)
		for _, s := range secrets {
			if _, ok := entries[strings.TrimPrefix(s, "/")]; ok {
				t.Errorf("%s: the public archive holds %s", n, s)
			}
			if st, err := os.Stat(filepath.Join("bundles/demo/nodes", n, "rootfs", s)); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: the list names %s, which is not a 0600 file of the rootfs (%v)", n, s, err)
			}
		}
	}
	if !strings.Contains(r.err, "packed "+fmt.Sprint(len(nodes))+" node(s) of bundles/demo into packs/demo") {
		t.Errorf("summary: %q", r.err)
	}
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha, "-c", "--strict", "SHA256SUMS")
		cmd.Dir = filepath.Join("packs", "demo")
		if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != len(nodes) {
			t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
		}
	} else {
		t.Log("SKIPPED: no sha256sum: SHA256SUMS was not checked with it")
	}
	sameSnapshot(t, "the bundle after pack", bundleBefore, snapshotTree(t, "bundles/demo"))
	if v := vfRun("verify"); v.code != 0 || !strings.Contains(v.err, "bundles/demo: verified") {
		t.Errorf("verify after pack (the packs must not look like a second bundle): exit %d\n%s%s", v.code, v.out, v.err)
	}

	packsBefore := snapshotTree(t, "packs/demo")
	if again := vfRun("pack"); again.code != 0 || again.out != r.out {
		t.Errorf("second pack: exit %d, output\n%s\nwant\n%s", again.code, again.out, r.out)
	}
	for p, st := range snapshotTree(t, "packs/demo") {
		if packsBefore[p].data != st.data {
			t.Errorf("%s: a second pack wrote other bytes", p)
		}
	}

	// One node with its secrets, elsewhere.
	r = vfRun("pack", "--node", nodes[0], "--with-secrets", "--to", "out")
	if r.code != 0 || strings.Count(r.out, "\n") != 1 || !strings.Contains(r.out, "with its secret files (0600)") {
		t.Fatalf("pack --node %s --with-secrets: exit %d\n%s%s", nodes[0], r.code, r.out, r.err)
	}
	archive := filepath.Join("out", "nodes", nodes[0]+".tar.gz")
	if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v; want a 0600 archive", archive, err)
	}
	entries := pkEntries(t, archive)
	for _, s := range strings.Fields(string(mustRead(t, filepath.Join("packs", "demo", "nodes", nodes[0]+".secrets")))) {
		if mode, ok := entries[strings.TrimPrefix(s, "/")]; !ok || mode != 0o600 {
			t.Errorf("--with-secrets: %s in the archive %v with mode %04o; want it, 0600", s, ok, mode)
		}
	}
	if got, _ := os.ReadDir(filepath.Join("out", "nodes")); len(got) != 1 {
		t.Errorf("out/nodes holds %v, want the one archive", got)
	}

	// Refusals: exit 1, a message naming what is wrong, nothing written.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"pack", "--node", "nope", "--to", "new"}, append([]string{`--node "nope"`}, nodes...)},
		{[]string{"pack", "extra"}, []string{"pack takes no arguments"}},
		{[]string{"pack", "--to", ""}, []string{"--to is empty"}},
		{[]string{"pack", "-f", "missing.yaml", "--to", "new"}, []string{"missing.yaml does not exist"}},
		{[]string{"pack", "-o", "elsewhere", "--to", "new"}, []string{"bundle elsewhere/demo does not exist"}},
		{[]string{"pack", "--to", "bundles/demo/packs"}, []string{"overlaps the bundle"}},
		{[]string{"pack", "--to", "bundles"}, []string{"overlaps the bundle"}},
		{[]string{"pack", "--bogus"}, []string{"unknown flag: --bogus"}},
	} {
		res := vfRun(c.args...)
		for _, w := range c.want {
			if res.code != 1 || !strings.Contains(res.err, w) {
				t.Errorf("%q: exit %d, stderr %q; want 1 and %q", c.args, res.code, res.err, w)
			}
		}
		if _, err := os.Stat("new"); err == nil {
			t.Errorf("%q wrote its output", c.args)
		}
	}
	sameSnapshot(t, "the bundle after refused packs", bundleBefore, snapshotTree(t, "bundles/demo"))

	// A tampered bundle: one byte flipped in a rootfs file.
	tampered := filepath.Join("nodes", nodes[1], "rootfs", "etc", "containerd", "config.toml")
	full := filepath.Join("bundles", "demo", tampered)
	data := mustRead(t, full)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(full, data, 0o644); err != nil {
		t.Fatal(err)
	}
	packsBefore = snapshotTree(t, "packs")
	r = vfRun("pack")
	if r.code != 1 || !strings.Contains(r.err, filepath.ToSlash(tampered)+": does not match its SHA-256 sum") || !strings.Contains(r.err, "nothing was packed") || r.out != "" {
		t.Errorf("pack of a tampered bundle: exit %d\nstdout %q\nstderr %q; want exit 1 naming %s", r.code, r.out, r.err, tampered)
	}
	sameSnapshot(t, "the packs after a refused pack", packsBefore, snapshotTree(t, "packs"))

	// Help lists the command and its flags.
	if h := vfRun("help"); !strings.Contains(h.out, "  pack ") {
		t.Errorf("help does not list pack:\n%s", h.out)
	}
	h := vfRun("pack", "--help")
	if missing := slices.ContainsFunc([]string{"--with-secrets", "--node", "--to", "--bundles", "--file"}, func(f string) bool { return !strings.Contains(h.out, f) }); h.code != 0 || missing {
		t.Errorf("pack --help: exit %d\n%s", h.code, h.out)
	}
}
