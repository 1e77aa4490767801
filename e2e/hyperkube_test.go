package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// TestBootHyperkube boots the guide's all-in-one image style: kube-apiserver,
// kube-controller-manager and kube-scheduler are rendered from ONE pinned hyperkube image
// with command `/hyperkube <component>`; the harness maps that command to the built
// binaries, exactly as the image's wrapper would. The lock pins the images with fixture
// digests (no registry here; the real pin path is tested in cmd/scratchgen/cli).
func TestBootHyperkube(t *testing.T) {
	h := New(t, "cp-1")
	addr := h.Net.Node("cp-1").Addr.String()
	const hyperkube = "registry.example.com/k8s/hyperkube:"
	spec := fmt.Sprintf(`apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: hk
spec:
  kubernetesVersion: %[1]s
  controlPlaneEndpoint: %[2]s
  network:
    podCIDR: 10.244.0.0/16
  nodes:
  - name: cp-1
    address: %[2]s
    roles: [control-plane, etcd]
  images:
    style: hyperkube
    hyperkube: %[3]s%[1]s
`, h.Version, addr, hyperkube)
	// Pin every image of the spec in the lock the render reads (<spec stem>.lock).
	lk := lock.New("hk")
	lk.Images = map[string]lock.Image{}
	tags := []string{hyperkube + h.Version, "registry.k8s.io/etcd:" + h.Profile.Etcd + "-0", "registry.k8s.io/pause:" + h.Profile.Pause,
		"registry.k8s.io/coredns/coredns:" + h.Profile.CoreDNS, "registry.k8s.io/kube-proxy:" + h.Version}
	for _, tag := range tags {
		lk.Images[tag] = lock.Image{Digest: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(tag)))}
	}
	data, err := lk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.State, "hk.lock"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.RenderSpec("hk", spec)

	pods := h.Boot("cp-1")["cp-1"]
	want := hyperkube + h.Version + "@" + lk.Images[hyperkube+h.Version].Digest
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		p := pods[name]
		if p == nil {
			t.Fatalf("cp-1 has no %s pod", name)
		}
		c := p.Pod.Spec.Containers[0]
		if c.Image != want {
			t.Errorf("%s image %s, want the pinned hyperkube image %s", name, c.Image, want)
		}
		if len(c.Command) < 2 || c.Command[0] != "/hyperkube" || c.Command[1] != name {
			t.Errorf("%s command starts %q, want [/hyperkube %s]", name, strings.Join(c.Command[:min(2, len(c.Command))], " "), name)
		}
	}
	admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	superAdmin, err := KubeconfigClient(h.NodeFile("cp-1", paths.SuperAdminConf))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkReadyz(pods["kube-apiserver"], admin, readyBound); err != nil {
		t.Fatal(err)
	}
	if err := checkLease(pods["kube-controller-manager"], superAdmin, "kube-controller-manager", "cp-1"); err != nil {
		t.Error(err)
	}
	if err := checkLease(pods["kube-scheduler"], superAdmin, "kube-scheduler", "cp-1"); err != nil {
		t.Error(err)
	}
}
