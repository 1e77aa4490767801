package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/lock"
)

var rvNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const rvSpec = `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.10
  network:
    podCIDR: 10.10.0.0/16
  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
`

const rvSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

// rvWork is a directory with the spec and secret, rendered once.
func rvWork(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.secret"), []byte(rvSecret), 0o600)
	if out, code := rvRun(t, dir, rvNow, "render"); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, out)
	}
	return dir
}

// rvRun runs a command on the spec in dir and returns stdout+stderr and the exit code.
// It passes -f dir/cluster.yaml (and -o dir/bundles to render and diff) before args,
// which may override them; an argument "@name" stands for dir/name.
func rvRun(t *testing.T, dir string, now time.Time, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &out}
	var full []string
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "@"); ok {
			a = filepath.Join(dir, name)
		}
		full = append(full, a)
	}
	if len(full) > 0 {
		var defaults []string
		switch full[0] {
		case "render", "diff":
			defaults = []string{"-f", filepath.Join(dir, "cluster.yaml"), "-o", filepath.Join(dir, "bundles")}
		case "certs":
			if len(full) > 1 {
				full = append(full[:2], append([]string{"-f", filepath.Join(dir, "cluster.yaml")}, full[2:]...)...)
			}
		}
		full = append(full[:1], append(defaults, full[1:]...)...)
	}
	code := Exit(Run(full, stdio, Env{Now: func() time.Time { return now }, Random: strings.NewReader("")}), stdio)
	return out.String(), code
}

func rvLock(t *testing.T, dir string) *lock.Lock {
	t.Helper()
	l, _, err := loadLock(filepath.Join(dir, "cluster.lock"))
	if err != nil || l == nil {
		t.Fatalf("lock: %v", err)
	}
	return l
}

func TestDiffNoChangesAndErrors(t *testing.T) {
	dir := rvWork(t)
	if out, code := rvRun(t, dir, rvNow, "diff"); code != 0 || !strings.Contains(out, "no changes") {
		t.Errorf("diff after render: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "diff", "--output", "json"); code != 0 || !strings.Contains(out, `"changed": false`) {
		t.Errorf("diff --output json after render: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"diff", "--output", "yaml"}, "is not text or json"},
		{[]string{"diff", "--secret", "@missing.secret"}, "missing.secret does not exist"},
		{[]string{"diff", "-f", "@nope.yaml"}, "nope.yaml does not exist"},
		{[]string{"diff", "extra"}, "takes no arguments"},
		{[]string{"diff", "-o", "@empty"}, ""}, // empty/demo does not exist: everything is new (exit 2), see below
	} {
		out, code := rvRun(t, dir, rvNow, tc.args...)
		if tc.want == "" {
			if code != 2 || !strings.Contains(out, "cp-1: new node") {
				t.Errorf("%v: exit %d\n%s", tc.args, code, out)
			}
			continue
		}
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want 1 and %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	// A directory scratchgen did not write is refused, as render refuses it.
	os.MkdirAll(filepath.Join(dir, "other", "demo"), 0o755)
	os.WriteFile(filepath.Join(dir, "other", "demo", "x"), []byte("x"), 0o644)
	if out, code := rvRun(t, dir, rvNow, "diff", "-o", "@other"); code != 1 || !strings.Contains(out, "not written by scratchgen") {
		t.Errorf("diff of a foreign directory: exit %d\n%s", code, out)
	}
}

// TestDiffTamperedBundle: edits on disk show as changes against the render, secrets by
// fingerprint only; a directory mode is reported too.
func TestDiffTamperedBundle(t *testing.T) {
	dir := rvWork(t)
	node := filepath.Join(dir, "bundles", "demo", "nodes", "worker-1", "rootfs")
	key := filepath.Join(node, "var/lib/kubelet/pki/kubelet.key")
	keyData, _ := os.ReadFile(key)
	os.WriteFile(key, []byte("-----BEGIN EC PRIVATE KEY-----\nTAMPEREDTAMPEREDTAMPERED\n-----END EC PRIVATE KEY-----\n"), 0o600)
	routes := filepath.Join(node, "etc/scratchgen/routes.sh")
	os.Chmod(routes, 0o644)
	os.Chmod(filepath.Join(node, "etc"), 0o700)
	defer os.Chmod(filepath.Join(node, "etc"), 0o755)
	out, code := rvRun(t, dir, rvNow, "diff")
	if code != 2 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"~ /var/lib/kubelet/pki/kubelet.key (secret, sha256:",
		"~ /etc/scratchgen/routes.sh (mode 0644 → 0755)",
		"worker-1: kubelet (serving key changed)",
		"has the wrong mode; render resets it to 0755",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(string(keyData), "\n") {
		if len(line) > 16 && strings.Contains(out, line) {
			t.Errorf("key content shown: %q", line)
		}
	}
	if strings.Contains(out, "TAMPERED") {
		t.Error("tampered key content shown")
	}
}

func TestCertsStatus(t *testing.T) {
	dir := rvWork(t)
	out, code := rvRun(t, dir, rvNow, "certs", "status")
	if code != 0 || !strings.HasPrefix(out, "CERTIFICATE") || !strings.Contains(out, "kubelet-serving/worker-1") {
		t.Fatalf("certs status: exit %d\n%s", code, out)
	}
	// Names and dates do not depend on the root secret: without it the table is the same.
	os.Rename(filepath.Join(dir, "cluster.secret"), filepath.Join(dir, "elsewhere"))
	if again, code := rvRun(t, dir, rvNow, "certs", "status"); code != 0 || again != out {
		t.Errorf("status without the secret differs (exit %d):\n%s", code, again)
	}
	if out, code := rvRun(t, dir, rvNow, "certs", "status", "--warn-within", "30d"); code != 0 || !strings.Contains(out, "no certificate expires within 30d") {
		t.Errorf("--warn-within 30d: exit %d\n%s", code, out)
	}
	out, code = rvRun(t, dir, rvNow.AddDate(0, 11, 15), "certs", "status", "--warn-within", "30d")
	if code != 2 || !strings.Contains(out, "expire within 30d: admin,") || !strings.Contains(out, "   15d   ") {
		t.Errorf("--warn-within 30d eleven months later: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow.AddDate(2, 0, 0), "certs", "status"); code != 0 || !strings.Contains(out, "expired") {
		t.Errorf("two years later: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "certs", "status", "--warn-within", "soon"); code != 1 || !strings.Contains(out, "not a duration") {
		t.Errorf("bad --warn-within: exit %d\n%s", code, out)
	}
	// Before the first render: every certificate is pending.
	fresh := t.TempDir()
	os.WriteFile(filepath.Join(fresh, "cluster.yaml"), []byte(rvSpec), 0o644)
	if out, code := rvRun(t, fresh, rvNow, "certs", "status"); code != 0 || !strings.Contains(out, "ca *") || !strings.Contains(out, "not in the lock yet") {
		t.Errorf("status before render: exit %d\n%s", code, out)
	}
}

func TestCertsRenew(t *testing.T) {
	dir := rvWork(t)
	later := rvNow.AddDate(0, 6, 0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs"}, "needs a subcommand"},
		{[]string{"certs", "rotate"}, "unknown subcommand"},
		{[]string{"certs", "renew"}, "exactly one"},
		{[]string{"certs", "renew", "ca", "--all"}, "exactly one"},
		{[]string{"certs", "renew", "nope", "ca"}, "unknown certificate(s) nope; valid names: ca, etcd-ca, front-proxy-ca, admin,"},
		{[]string{"certs", "renew", "--expiring-within", "x"}, "not a duration"},
	} {
		if out, code := rvRun(t, dir, later, tc.args...); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want 1 and %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, "cluster.lock"))
	if out, code := rvRun(t, dir, later, "certs", "renew", "--expiring-within", "30d"); code != 0 || !strings.Contains(out, "no certificate expires") {
		t.Errorf("--expiring-within with nothing expiring: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "cluster.lock")); !bytes.Equal(before, after) {
		t.Error("the lock changed although nothing was renewed")
	}

	out, code := rvRun(t, dir, later, "certs", "renew", "kubelet-serving/worker-1", "ca")
	if code != 0 || !strings.Contains(out, "kubelet-serving/worker-1: generation 1 → 2, notBefore 2026-07-01T11:55:00Z") ||
		!strings.Contains(out, "ca: renewal 0 → 1 with the same key") || !strings.Contains(out, "note: ca keeps its key") {
		t.Fatalf("renew: exit %d\n%s", code, out)
	}
	l := rvLock(t, dir)
	for id, c := range l.Certificates {
		want, renewal := 1, 0
		switch id {
		case "kubelet-serving/worker-1":
			want = 2
		case "ca":
			renewal = 1
		}
		if c.Generation != want || c.Renewal != renewal {
			t.Errorf("%s: generation %d renewal %d, want %d and %d", id, c.Generation, c.Renewal, want, renewal)
		}
	}
	if out, code := rvRun(t, dir, later, "certs", "renew", "sa"); code != 1 || !strings.Contains(out, "certs rotate-sa") {
		t.Errorf("renew sa: exit %d, want 1 pointing to rotate-sa\n%s", code, out)
	}
	// Diff then shows the re-issued certificates, and render makes the bundle match.
	if out, code := rvRun(t, dir, later, "diff"); code != 2 || !strings.Contains(out, "~ /var/lib/kubelet/pki/kubelet.crt") {
		t.Errorf("diff after renew: exit %d\n%s", code, out)
	}
	rvRun(t, dir, later, "render")
	if out, code := rvRun(t, dir, later, "diff"); code != 0 {
		t.Errorf("diff after render: exit %d\n%s", code, out)
	}

	// --all renews every certificate, not the service-account key pair.
	if out, code := rvRun(t, dir, later, "certs", "renew", "--all"); code != 0 {
		t.Fatalf("renew --all: exit %d\n%s", code, out)
	}
	for id, c := range rvLock(t, dir).Certificates {
		switch {
		case id == "sa" && c.Generation != 1:
			t.Errorf("after --all sa has generation %d: it is rotated, never renewed", c.Generation)
		case id != "sa" && strings.Contains(id, "ca") && (c.Generation != 1 || c.Renewal < 1):
			t.Errorf("after --all CA %s has generation %d renewal %d, want the same key renewed", id, c.Generation, c.Renewal)
		case id != "sa" && !strings.Contains(id, "ca") && c.Generation < 2:
			t.Errorf("after --all %s has generation %d", id, c.Generation)
		}
	}
	// --expiring-within picks by date: a year later every leaf is due, the CAs are not.
	out, code = rvRun(t, dir, rvNow.AddDate(1, 0, 0), "certs", "renew", "--expiring-within", "200d")
	if code != 0 || strings.Contains(out, "  ca:") || !strings.Contains(out, "  admin: generation 2 → 3") {
		t.Errorf("--expiring-within: exit %d\n%s", code, out)
	}

	// Without a lock there is nothing to renew.
	fresh := t.TempDir()
	os.WriteFile(filepath.Join(fresh, "cluster.yaml"), []byte(rvSpec), 0o644)
	if out, code := rvRun(t, fresh, later, "certs", "renew", "ca"); code != 1 || !strings.Contains(out, "render first") {
		t.Errorf("renew without a lock: exit %d\n%s", code, out)
	}
}

func TestHelpListsReviewCommands(t *testing.T) {
	out, _ := rvRun(t, t.TempDir(), rvNow, "help")
	for _, c := range []string{"diff", "certs"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("help does not list %s:\n%s", c, out)
		}
	}
	if out, code := rvRun(t, t.TempDir(), rvNow, "diff", "--help"); code != 0 || !strings.Contains(out, "--output") {
		t.Errorf("diff --help: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, t.TempDir(), rvNow, "certs", "status", "--help"); code != 0 || !strings.Contains(out, "--warn-within") {
		t.Errorf("certs status --help: exit %d\n%s", code, out)
	}
}

// TestDiffSummaryAndMaxLines: --summary keeps the impact and the counts; --max-lines
// stops the text and says how much it left out.
func TestDiffSummaryAndMaxLines(t *testing.T) {
	dir := rvWork(t)
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec+"  - {name: worker-2, address: 10.0.0.22, roles: [worker]}\n"), 0o644)
	full, code := rvRun(t, dir, rvNow, "diff")
	if code != 2 {
		t.Fatalf("diff: exit %d\n%s", code, full)
	}
	sum, code := rvRun(t, dir, rvNow, "diff", "--summary")
	if code != 2 || !strings.Contains(sum, "impact:") || !strings.Contains(sum, "worker-2: new node") || strings.Contains(sum, "+ /etc/cni") || len(sum) >= len(full) {
		t.Errorf("diff --summary: exit %d\n%s", code, sum)
	}
	short, code := rvRun(t, dir, rvNow, "diff", "--max-lines", "10")
	if code != 2 || strings.Count(short, "\n") != 11 || !strings.Contains(short, "more line(s) left out (--max-lines 10)") {
		t.Errorf("diff --max-lines 10: exit %d\n%s", code, short)
	}
}
