// Package nodeconfig renders the node-level files of every machine: the kubelet and
// kube-proxy configurations and systemd units, the containerd configuration, the routed
// pod network (CNI bridge, static routes, masquerade) and the kernel settings Kubernetes
// needs. Certificates and kubeconfigs are not here: package credentials writes them at the
// paths table's paths, which these files reference.
//
// Binaries are not rendered. The operator installs kubelet, kube-proxy (into the node's
// BinDir: /usr/local/bin, or /opt/bin on Flatcar and Fedora CoreOS), containerd and runc
// (from the OS), the CNI plugins bridge, host-local, portmap and loopback (into
// paths.CNIBinDir), and the ip, iptables, modprobe and sysctl tools; the README documents
// it. Units and configs only name them.
package nodeconfig

import (
	"fmt"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// header starts every generated text file that allows comments.
const header = "Written by scratchgen; edit the cluster spec and re-render instead of this file."

// Each step below adds one concern's files to a node and declares the units it enables.
// Together they enable, in start order: scratchgen-kernel, then scratchgen-routes and
// scratchgen-masquerade (routed network mode), containerd, kubelet, kube-proxy. Their
// output depends on the cluster and the node only.

// checkResolved refuses a node the model has not resolved.
func checkResolved(n *model.Node) error {
	if !n.Address.IsValid() || !n.PodCIDR.IsValid() || n.Name == "" {
		return fmt.Errorf("the node is not resolved (address %v, pod range %v)", n.Address, n.PodCIDR)
	}
	return nil
}

// networkUnits are the pod-network units the kubelet and kube-proxy wait for.
func networkUnits(c *model.Cluster) []string {
	if c.NetworkMode != model.NetworkRouted {
		return nil
	}
	if c.Masquerade {
		return []string{paths.RoutesService, paths.MasqueradeService}
	}
	return []string{paths.RoutesService}
}

// nodeDeps are the units the kubelet and kube-proxy start after: the kernel settings
// and the pod network.
func nodeDeps(c *model.Cluster) []string {
	return append([]string{paths.KernelService}, networkUnits(c)...)
}
