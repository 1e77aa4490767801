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

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Paths this package writes that the paths table does not hold.
const (
	// KubeletUnit and KubeletDropIn are the kubelet's unit, in kubeadm's packaging shape:
	// a generic unit and a drop-in carrying this node's command line.
	KubeletUnit   = paths.SystemdDir + "/kubelet.service"
	KubeletDropIn = paths.SystemdDir + "/kubelet.service.d/10-scratchgen.conf"
	// KubeProxyUnit runs kube-proxy as a host service.
	KubeProxyUnit = paths.SystemdDir + "/kube-proxy.service"
	// ContainerdDropIn amends the containerd.service the OS package ships.
	ContainerdDropIn = paths.SystemdDir + "/containerd.service.d/10-scratchgen.conf"
	// CNIConflist is the routed bridge network.
	CNIConflist = paths.CNIConfDir + "/10-cbr0.conflist"
	// ScriptDir holds the scripts scratchgen's own units run.
	ScriptDir = "/etc/scratchgen"
	// RoutesScript and RoutesUnit install the static routes to other nodes' pod ranges.
	RoutesScript = ScriptDir + "/routes.sh"
	RoutesUnit   = paths.SystemdDir + "/" + RoutesService
	// MasqueradeScript and MasqueradeUnit NAT pod traffic leaving the cluster network.
	MasqueradeScript = ScriptDir + "/masquerade.sh"
	MasqueradeUnit   = paths.SystemdDir + "/" + MasqueradeService
	// KernelUnit loads the modules and applies the sysctls below without a reboot.
	KernelUnit = paths.SystemdDir + "/" + KernelService
	// SysctlConf and ModulesConf are read by systemd-sysctl and systemd-modules-load at boot.
	SysctlConf  = "/etc/sysctl.d/90-scratchgen.conf"
	ModulesConf = "/etc/modules-load.d/scratchgen.conf"
)

// Unit names, as listed in bundle.Node.Units.
const (
	KernelService     = "scratchgen-kernel.service"
	RoutesService     = "scratchgen-routes.service"
	MasqueradeService = "scratchgen-masquerade.service"
	ContainerdService = "containerd.service"
	KubeletService    = "kubelet.service"
	KubeProxyService  = "kube-proxy.service"
)

// header starts every generated text file that allows comments.
const header = "Written by scratchgen; edit the cluster spec and re-render instead of this file."

// Node returns every node-level file for n (not certificates or kubeconfigs: another
// package writes those at the paths table's paths), sorted by path, and the systemd units
// to enable, in start order: scratchgen-kernel, then scratchgen-routes and
// scratchgen-masquerade (routed network mode), containerd, kubelet, kube-proxy.
// The output depends on c and n only.
func Node(c *model.Cluster, n *model.Node) (files []bundle.File, units []string, err error) {
	if !n.Address.IsValid() || !n.PodCIDR.IsValid() || n.Name == "" {
		return nil, nil, fmt.Errorf("node %q is not resolved (address %v, pod range %v)", n.Name, n.Address, n.PodCIDR)
	}
	steps := []struct {
		what string
		f    func(*model.Cluster, *model.Node) ([]bundle.File, error)
	}{
		{"kernel settings", kernelFiles},
		{"pod network", networkFiles},
		{"containerd", containerdFiles},
		{"kubelet", kubeletFiles},
		{"kube-proxy", proxyFiles},
	}
	for _, s := range steps {
		fs, err := s.f(c, n)
		if err != nil {
			return nil, nil, fmt.Errorf("rendering %s for node %s: %w", s.what, n.Name, err)
		}
		files = append(files, fs...)
	}
	bundle.Sort(files)
	return files, startOrder(c), nil
}

// startOrder is the units to enable, in start order.
func startOrder(c *model.Cluster) []string {
	units := []string{KernelService}
	units = append(units, networkUnits(c)...)
	return append(units, ContainerdService, KubeletService, KubeProxyService)
}

// networkUnits are the pod-network units the kubelet waits for.
func networkUnits(c *model.Cluster) []string {
	if c.NetworkMode != model.NetworkRouted {
		return nil
	}
	if c.Masquerade {
		return []string{RoutesService, MasqueradeService}
	}
	return []string{RoutesService}
}

func public(path string, data []byte) bundle.File {
	return bundle.File{Path: path, Mode: bundle.ModePublic, Data: data}
}
