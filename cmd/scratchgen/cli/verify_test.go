package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/spec"
)

// vfResult is one scratchgen run.
type vfResult struct {
	code     int
	out, err string
}

// vfRun runs scratchgen in the current directory with the fixture clock.
func vfRun(args ...string) vfResult {
	var out, errb bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	env := Env{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }, Random: bytes.NewReader([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-"))}
	return vfResult{Exit(Run(args, stdio, env), stdio), out.String(), errb.String()}
}

// vfWork renders the example spec into ./bundles/demo of a new working directory and
// changes into it.
func vfWork(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("cluster.yaml", []byte(spec.Example("demo")), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := vfRun("render"); r.code != 0 {
		t.Fatalf("render: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// vfResum recomputes a bundle's SHA256SUMS from the files on disk.
func vfResum(t *testing.T, dir string) {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "SHA256SUMS" {
			return nil
		}
		data, err := os.ReadFile(p)
		sum := sha256.Sum256(data)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+filepath.ToSlash(rel)+"\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyClean: a fresh bundle verifies (warnings for unpinned images only, exit 0),
// found without arguments as the single bundle under ./bundles.
func TestVerifyClean(t *testing.T) {
	vfWork(t)
	for _, args := range [][]string{{"verify"}, {"verify", "bundles"}, {"verify", "bundles/demo"}} {
		r := vfRun(args...)
		if r.code != 0 || !strings.Contains(r.err, "bundles/demo: verified, no problems (1 warning(s))") {
			t.Errorf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.out, r.err)
		}
		// One summary line for the unpinned images, nothing else.
		if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], ".: warning: 6 image(s) in 8 file(s) are not pinned by digest") {
			t.Errorf("%q: a clean bundle printed %q", args, r.out)
		}
	}
	// Unpinned images fail under --require-pinned.
	if r := vfRun("verify", "--require-pinned"); r.code != 1 || !strings.Contains(r.out, "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml: image registry.k8s.io/kube-apiserver:v1.36.3 is not pinned by digest") {
		t.Errorf("--require-pinned: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestVerifyTampered: a corrupted bundle whose SHA256SUMS was recomputed fails with one
// sorted line per problem on stdout and a summary on stderr.
func TestVerifyTampered(t *testing.T) {
	vfWork(t)
	dir := filepath.Join("bundles", "demo")
	crt := func(node string) string {
		return filepath.Join(dir, "nodes", node, "rootfs", "var", "lib", "kubelet", "pki", "kubelet.crt")
	}
	other, err := os.ReadFile(crt("worker-2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crt("worker-1"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	vfResum(t, dir)
	r := vfRun("verify", dir)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{
		"nodes/worker-1/rootfs/var/lib/kubelet/pki/kubelet.crt: does not cover 10.0.0.21, the node's address (--node-ip of the kubelet)\n",
		"nodes/worker-1/rootfs/var/lib/kubelet/pki/kubelet.key: is not the private key of",
		"nodes/worker-1/ignition.json: writes /var/lib/kubelet/pki/kubelet.crt with content that differs from rootfs\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "SHA256SUMS") {
		t.Errorf("the recomputed SHA256SUMS was reported:\n%s", r.out)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		p, _, _ := strings.Cut(l, ": ")
		paths = append(paths, p)
	}
	if !sort.StringsAreSorted(paths) {
		t.Errorf("lines are not sorted by path:\n%s", r.out)
	}
	if !strings.HasPrefix(r.err, "scratchgen: bundles/demo: ") || !strings.Contains(r.err, " problem(s), 1 warning(s)") {
		t.Errorf("stderr summary: %q", r.err)
	}
}

// TestVerifyAt: --at moves the clock certificates are checked at.
func TestVerifyAt(t *testing.T) {
	vfWork(t)
	if r := vfRun("verify", "--at", "+30d"); r.code != 0 {
		t.Errorf("--at +30d: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, at := range []string{"+800d", "2028-01-01", "2028-01-01T00:00:00Z"} {
		r := vfRun("verify", "--at", at)
		if r.code != 1 || !strings.Contains(r.out, "nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt: expired on 2027-01-02T02:59:05Z") {
			t.Errorf("--at %s: exit %d\n%s%s", at, r.code, r.out, r.err)
		}
	}
	if r := vfRun("verify", "--at", "2025-12-01"); r.code != 1 || !strings.Contains(r.out, "is not valid before") {
		t.Errorf("--at before issue: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := vfRun("verify", "--at", "soon"); r.code != 1 || !strings.Contains(r.err, `--at "soon"`) {
		t.Errorf("--at soon: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestVerifyArguments: which directory verify picks, and its errors.
func TestVerifyArguments(t *testing.T) {
	t.Chdir(t.TempDir())
	if r := vfRun("verify"); r.code != 1 || !strings.Contains(r.err, "./bundles does not exist") {
		t.Errorf("no ./bundles: exit %d %q", r.code, r.err)
	}
	vfWork(t)
	if r := vfRun("verify", "a", "b"); r.code != 1 || !strings.Contains(r.err, "one bundle directory") {
		t.Errorf("two arguments: exit %d %q", r.code, r.err)
	}
	if r := vfRun("verify", "missing"); r.code != 1 || !strings.Contains(r.err, "missing") {
		t.Errorf("missing directory: exit %d %q", r.code, r.err)
	}
	if r := vfRun("verify", "."); r.code != 1 || !strings.Contains(r.err, "not a scratchgen bundle") {
		t.Errorf("not a bundle: exit %d %q", r.code, r.err)
	}
	// A second cluster's bundle beside the first: verify needs to be told which.
	if err := os.WriteFile("other.yaml", []byte(spec.Example("other")), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := vfRun("render", "-f", "other.yaml"); r.code != 0 {
		t.Fatalf("render other: %s", r.err)
	}
	if r := vfRun("verify"); r.code != 1 || !strings.Contains(r.err, "bundles holds 2 bundles (bundles/demo, bundles/other)") {
		t.Errorf("two bundles: exit %d %q", r.code, r.err)
	}
	if r := vfRun("verify", "bundles/other"); r.code != 0 {
		t.Errorf("bundles/other: exit %d %s%s", r.code, r.out, r.err)
	}
	if r := vfRun("verify", "--help"); r.code != 0 || !strings.Contains(r.out, "--require-pinned") || !strings.Contains(r.out, "scratchgen verify [BUNDLE_DIR]") {
		t.Errorf("--help: exit %d\n%s", r.code, r.out)
	}
	if r := vfRun("help"); !strings.Contains(r.out, "  verify ") {
		t.Errorf("help does not list verify:\n%s", r.out)
	}
}

// TestLeftoverStagingReported: a staging directory an interrupted render left is reported
// by verify and render --check, ignored by git, and removed by the next render.
func TestLeftoverStagingReported(t *testing.T) {
	dir := rvWork(t)
	staging := filepath.Join(dir, "bundles", ".demo.scratchgen-staging")
	os.MkdirAll(filepath.Join(staging, "tree"), 0o755)
	os.WriteFile(filepath.Join(staging, ".scratchgen-staging"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(staging, ".gitignore"), []byte("*\n"), 0o644)
	if out, code := rvRun(t, dir, rvNow, "verify", filepath.Join(dir, "bundles", "demo")); code != 0 || !strings.Contains(out, "an interrupted render left") {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "render", "--check"); code != 0 || !strings.Contains(out, "an interrupted render left") {
		t.Errorf("render --check: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "render"); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(staging); err == nil {
		t.Error("render left the staging directory")
	}
}
