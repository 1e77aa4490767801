package e2e

// TestMachinesIgnitionBinaries: a node whose bundle does not carry its pinned binaries
// gets them from Ignition. A spec names an in-process mirror; `binaries pin` and
// `render` (without --with-binaries) give worker-1 an ignition.json with remote files and
// their SHA-512; the real Ignition (v2.24.0, built from its module, as in TestMachines)
// applies it to an empty root with its fetch and files stages: kubelet and kube-proxy
// land in /usr/local/bin with mode 0755 and the pinned bytes, the CNI archive in
// /var/lib/scratchgen/downloads/<sha256>; the rendered install-binaries.sh, run against
// that root, installs the archive's members from the staged file without fetching it
// again. A mirror that then serves one changed byte is refused by Ignition's hash check.
// Run by `make e2e-machines`.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/e2e/internal/machine"
	"github.com/scratchgen/scratchgen/generator/paths"
)

func TestMachinesIgnitionBinaries(t *testing.T) {
	if os.Getenv(envEnable) != "1" || os.Getenv(envMachines) != "1" {
		t.Skip("SKIPPED: applies Ignition configs to a root as root; run `make e2e-machines`")
	}
	if os.Geteuid() != 0 {
		t.Fatal("Ignition's files stage needs root (ownership)")
	}
	mPrerequisites(t)
	ctx := nbContext(t)
	ignition, err := machine.Ignition(ctx, nbCacheDir(t), logWriter{t})
	if err != nil {
		t.Fatal(err)
	}

	kubelet := bytes.Repeat([]byte("a kubelet "), 100000)
	proxy := bytes.Repeat([]byte("a kube-proxy "), 50000)
	bridge := []byte("#!/bin/sh\necho bridge\n")
	tgz := releaseArchive(t, map[string][]byte{"./bridge": bridge}, []string{"./bridge"})
	srv := startMirror(t, map[string][]byte{
		"/release/v1.36.3/bin/linux/amd64/kubelet":    kubelet,
		"/release/v1.36.3/bin/linux/amd64/kube-proxy": proxy,
		"/cni/cni-plugins-linux-amd64.tgz":            tgz,
	})

	dir := t.TempDir()
	spec := `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: ign
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.10
  network:
    podCIDR: 10.10.0.0/16
  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  binaries:
    url: ` + srv.URL + `/release/{version}/bin/linux/{arch}/{name}
    extra:
    - name: cni-plugins
      url: ` + srv.URL + `/cni/cni-plugins-linux-{arch}.tgz
      extract: {./bridge: /opt/cni/bin/bridge}
`
	specFile := filepath.Join(dir, "ign.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	nbCLI(t, "binaries", "pin", "-f", specFile)
	nbCLI(t, "render", "-f", specFile, "-o", filepath.Join(dir, "bundles"))
	node := filepath.Join(dir, "bundles", "ign", "nodes", "worker-1")

	root := t.TempDir()
	if err := machine.ApplyIgnitionFiles(ctx, ignition, filepath.Join(node, "ignition.json"), root, filepath.Join(dir, "ign-state")); err != nil {
		t.Fatalf("Ignition with remote binaries: %v", err)
	}
	sum := sha256.Sum256(tgz)
	staged := filepath.Join(paths.DownloadsDir, hex.EncodeToString(sum[:]))
	for p, want := range map[string][]byte{"/usr/local/bin/kubelet": kubelet, "/usr/local/bin/kube-proxy": proxy, staged: tgz} {
		got, err := os.ReadFile(filepath.Join(root, p))
		fi, serr := os.Stat(filepath.Join(root, p))
		switch {
		case err != nil || serr != nil:
			t.Errorf("Ignition did not write %s: %v", p, err)
		case !bytes.Equal(got, want):
			t.Errorf("Ignition wrote %s with other bytes (%d, want %d)", p, len(got), len(want))
		case p != staged && fi.Mode().Perm() != 0o755:
			t.Errorf("Ignition wrote %s with mode %v, want 0755", p, fi.Mode().Perm())
		default:
			t.Logf("Ignition fetched and verified %s (%d bytes)", p, len(got))
		}
	}
	// install-binaries.sh against that root: the archive is taken from the stage, the
	// files Ignition wrote are left alone; nothing is fetched.
	before := srv.getCounts()
	out, err := exec.Command("sh", filepath.Join(root, paths.BinariesScript), root).CombinedOutput()
	if err != nil {
		t.Fatalf("install-binaries.sh after Ignition: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(root, "opt/cni/bin/bridge")); err != nil || !bytes.Equal(got, bridge) {
		t.Errorf("install-binaries.sh did not install the bridge plugin from the staged archive: %v\n%s", err, out)
	}
	for k, v := range srv.getCounts() {
		if before[k] != v {
			t.Errorf("install-binaries.sh fetched %s although Ignition had staged or installed it", k)
		}
	}
	if strings.Contains(string(out), "/usr/local/bin/kubelet") {
		t.Errorf("install-binaries.sh re-installed the kubelet Ignition wrote:\n%s", out)
	}

	// A mirror serving one changed byte: Ignition refuses the file.
	bad := bytes.Clone(kubelet)
	bad[12345] ^= 1
	srv.set("/release/v1.36.3/bin/linux/amd64/kubelet", bad)
	root2 := t.TempDir()
	err = machine.ApplyIgnitionFiles(ctx, ignition, filepath.Join(node, "ignition.json"), root2, filepath.Join(dir, "ign-state-2"))
	if err == nil || !strings.Contains(err.Error(), "hash verification failed") {
		t.Fatalf("Ignition with a kubelet whose SHA-512 is not the pinned one: %v, want its hash verification to fail", err)
	}
	if _, serr := os.Stat(filepath.Join(root2, "usr/local/bin/kubelet")); serr == nil {
		t.Errorf("Ignition wrote the tampered kubelet")
	}
	t.Logf("Ignition refused the tampered kubelet: %s", err.Error()[strings.Index(err.Error(), "hash verification failed"):])
}
