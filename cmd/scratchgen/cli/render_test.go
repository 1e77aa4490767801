package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/spec"
)

func runIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	env := Env{Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }, Random: bytes.NewReader([]byte("9876543210abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-"))}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := Exit(Run(args, stdio, env), stdio)
	return out.String(), errb.String(), code
}

// TestRenderRefusesForeignOutputAndLosesNothing: a bad spec or a directory scratchgen did
// not write stops render before the secret, the lock or any bundle file is written.
func TestRenderRefusesForeignOutputAndLosesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(spec.Example("")), 0o644)
	os.MkdirAll(filepath.Join(dir, "bundles", "demo"), 0o755)
	os.WriteFile(filepath.Join(dir, "bundles", "demo", "notes.txt"), []byte("mine"), 0o644)
	_, stderr, code := runIn(t, dir, "render")
	if code != 1 || !strings.Contains(stderr, "was not written by scratchgen") {
		t.Fatalf("exit %d, stderr %q: want 1 and a refusal", code, stderr)
	}
	for _, f := range []string{"cluster.secret", "cluster.lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was created although render refused the output directory", f)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "bundles", "demo", "notes.txt")); string(got) != "mine" {
		t.Error("a foreign file was touched")
	}

	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(strings.Replace(spec.Example(""), "v1.36.3", "v1.99.0", 1)), 0o644)
	os.RemoveAll(filepath.Join(dir, "bundles"))
	_, stderr, code = runIn(t, dir, "render")
	if code != 1 || !strings.Contains(stderr, "spec.kubernetesVersion") || !strings.Contains(stderr, "nothing was rendered") {
		t.Fatalf("invalid spec: exit %d, stderr %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("an invalid spec left files behind: %v", entries)
	}
}

// TestRenderCheckAndSecret: --check needs an existing secret and writes nothing; the secret
// is created 0600 and never printed.
func TestRenderCheckAndSecret(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(spec.Example("")), 0o644)
	// Without a secret and a bundle, --check reviews what a first render would add.
	if stdout, stderr, code := runIn(t, dir, "render", "--check"); code != 2 || !strings.Contains(stdout, "would issue ca: new (needs the root secret)") {
		t.Fatalf("--check without a secret: exit %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster.secret")); err == nil {
		t.Fatal("--check created a secret")
	}
	stdout, stderr, code := runIn(t, dir, "render")
	if code != 0 {
		t.Fatalf("render: exit %d %s", code, stderr)
	}
	st, err := os.Stat(filepath.Join(dir, "cluster.secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret %v %v", st, err)
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "cluster.secret"))
	if strings.Contains(stdout+stderr, strings.TrimSpace(string(secret))) {
		t.Error("the root secret was printed")
	}
	if _, _, code := runIn(t, dir, "render", "--check"); code != 0 {
		t.Errorf("--check after render: exit %d, want 0", code)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(strings.Replace(spec.Example(""), "mtu: 1500", "mtu: 1400", 1)), 0o644)
	if out, _, code := runIn(t, dir, "render", "--check"); code != 2 || !strings.Contains(out, "10-cbr0.conflist") {
		t.Errorf("--check after a spec change: exit %d, want 2 naming the changed files:\n%s", code, out)
	}
	if _, _, code := runIn(t, dir, "frobnicate"); code != 1 {
		t.Errorf("unknown command: exit %d", code)
	}
}
