package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/lock"
)

// TestInputHygiene: endless or oversized inputs are refused after the limit (memory
// stays bounded), invalid names and empty flags are refused, help works everywhere.
func TestInputHygiene(t *testing.T) {
	dir := t.TempDir()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	out, code := secRun(t, dir, nil, "", "validate", "-f", "/dev/zero")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if code != 1 || !strings.Contains(out, "more than") {
		t.Errorf("validate -f /dev/zero: exit %d\n%s", code, out)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("reading /dev/zero allocated %d MiB", grew>>20)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.lock"), nil, 0o644)
	if err := os.Remove(filepath.Join(dir, "cluster.lock")); err == nil {
		os.Symlink("/dev/zero", filepath.Join(dir, "cluster.lock"))
	}
	if out, code := secRun(t, dir, nil, "", "validate"); code != 1 || !strings.Contains(out, "more than") {
		t.Errorf("an endless lock: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "cluster.lock"))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--name", "Bad_Name"}, 1, "not a DNS-1123 label"},
		{[]string{"render", "-o", ""}, 1, "-o is empty"},
		{[]string{"diff", "-o", " "}, 1, "-o is empty"},
		{[]string{"help", "--help"}, 0, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{}, 2, "Commands:"},
		{[]string{"certs", "status", "--warn-within", "1y"}, 1, "not a duration"},
	} {
		out, code := secRun(t, dir, nil, "", tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("scratchgen %q: exit %d, want %d and %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
	// One duration syntax: the spec takes days and weeks as the command line does.
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec+"  pki: {caValidity: 3650d, certValidity: 52w}\n"), 0o644)
	if out, code := secRun(t, dir, nil, "", "validate"); code != 0 {
		t.Errorf("validity in days and weeks: exit %d\n%s", code, out)
	}
}

// TestOldLockCheckedAgainstBundle: a lock written before verifiers existed still refuses
// a wrong secret, by comparing it with the CA of the bundle on disk; with the right one
// the next render records the verifier.
func TestOldLockCheckedAgainstBundle(t *testing.T) {
	dir := rvWork(t)
	data, _ := os.ReadFile(filepath.Join(dir, "cluster.lock"))
	old := regexp.MustCompile(`(?m)^rootSecret:\n  verifier: [0-9a-f]+\n|^    sha256: [0-9a-f]+\n`).ReplaceAllString(string(data), "")
	os.WriteFile(filepath.Join(dir, "cluster.lock"), []byte(old), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.secret"), []byte(strings.Repeat("1234", 16)+"\n"), 0o600)
	if out, code := rvRun(t, dir, rvNow, "render"); code != 1 || !strings.Contains(out, "is not the one") {
		t.Fatalf("wrong secret with an old lock: exit %d\n%s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "cluster.secret"), []byte(rvSecret), 0o600)
	if out, code := rvRun(t, dir, rvNow, "render"); code != 0 {
		t.Fatalf("right secret with an old lock: exit %d\n%s", code, out)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "cluster.lock"))
	lk, problems := lock.Parse(data)
	if len(problems) > 0 || lk.RootSecret == nil || lk.Certificates["ca"].SHA256 == "" {
		t.Errorf("the render did not record the verifier and fingerprints: %v", problems)
	}
}

// TestNetworkNeverMovesSilently: once rendered, moving the pod range, the service range or
// the node mask size is an error naming the field; growing a range at the end is not;
// --allow-network-change re-addresses on purpose.
func TestNetworkNeverMovesSilently(t *testing.T) {
	dir := rvWork(t)
	for _, tc := range []struct {
		from, to, want string
		code           int
	}{
		{"podCIDR: 10.10.0.0/16", "podCIDR: 10.20.0.0/16", "spec.network.podCIDR: 10.20.0.0/16 moves the pod range", 1},
		{"podCIDR: 10.10.0.0/16", "podCIDR: 10.10.0.0/16\n    serviceCIDR: 10.100.0.0/16", "spec.network.serviceCIDR: 10.100.0.0/16 moves the service range", 1},
		{"podCIDR: 10.10.0.0/16", "podCIDR: 10.10.0.0/16\n    nodePodCIDRMaskSize: 25", "spec.network.nodePodCIDRMaskSize: 25 changes the node range size", 1},
		{"podCIDR: 10.10.0.0/16", "podCIDR: 10.10.0.0/15", "", 0},
		{"podCIDR: 10.10.0.0/16", "podCIDR: 10.10.0.0/16\n    serviceCIDR: 10.96.0.0/11", "", 0},
	} {
		os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(strings.Replace(rvSpec, tc.from, tc.to, 1)), 0o644)
		out, code := rvRun(t, dir, rvNow, "validate", "-f", filepath.Join(dir, "cluster.yaml"))
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, want %d and %q\n%s", tc.to, code, tc.code, tc.want, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(strings.Replace(rvSpec, "podCIDR: 10.10.0.0/16", "podCIDR: 10.20.0.0/16", 1)), 0o644)
	if out, code := rvRun(t, dir, rvNow, "render", "--allow-network-change"); code != 0 {
		t.Fatalf("render --allow-network-change: exit %d\n%s", code, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "cluster.lock"))
	if !strings.Contains(string(data), "worker-1: 10.20.1.0/24") || !strings.Contains(string(data), "podCIDR: 10.20.0.0/16") {
		t.Errorf("the lock was not re-addressed:\n%s", data)
	}
}
