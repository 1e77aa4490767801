package nodeconfig

import (
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// kernelModules are loaded at boot (modules-load.d) and by scratchgen-kernel.service:
// br_netfilter makes bridged pod traffic visible to iptables (kube-proxy, portmap),
// overlay is containerd's default snapshotter.
var kernelModules = []string{"br_netfilter", "overlay"}

// sysctls are applied at boot (sysctl.d) and by scratchgen-kernel.service. ip_forward is
// the guide's requirement for routing pod traffic; the bridge-nf-call settings need
// br_netfilter and let kube-proxy's rules see traffic between pods on one bridge.
var sysctls = [][2]string{
	{"net.ipv4.ip_forward", "1"},
	{"net.bridge.bridge-nf-call-iptables", "1"},
	{"net.bridge.bridge-nf-call-ip6tables", "1"},
}

// ipv6Forwarding routes IPv6 between interfaces (IPv6-only and dual-stack clusters).
const ipv6Forwarding = "net.ipv6.conf.all.forwarding"

// Kernel is the plan step of the kernel settings: modules-load.d and sysctl.d files and
// scratchgen-kernel.service, which applies them at once.
func Kernel(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
	if err := checkResolved(n); err != nil {
		return err
	}
	var mods, sys strings.Builder
	mods.WriteString("# " + header + "\n# Loaded at boot by systemd-modules-load.\n")
	for _, m := range kernelModules {
		mods.WriteString(m + "\n")
	}
	sys.WriteString("# " + header + "\n# Applied at boot by systemd-sysctl (after systemd-modules-load loads br_netfilter).\n")
	for _, kv := range sysctls {
		sys.WriteString(kv[0] + " = " + kv[1] + "\n")
	}
	if c.HasIPv6() {
		// Routing IPv6 pod traffic. With forwarding on, the kernel ignores router
		// advertisements on interfaces whose accept_ra is 1 (the default): nodes need
		// static IPv6 addresses and routes, or accept_ra=2 on their uplink (README).
		sys.WriteString(ipv6Forwarding + " = 1\n")
	}
	// The boot-time services read the two directories only at boot; this oneshot applies
	// them at once on a machine that receives the bundle while running (rsync), so no
	// reboot is needed, and orders the runtime and the kubelet after them on every boot.
	u := unit{
		{"Unit", []entry{
			kv("Description", "scratchgen: kernel modules and sysctls for Kubernetes"),
			kv("Documentation", "https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional"),
			kv("After", kernelUnit.After...),
			kv("Before", kernelUnit.Before...),
		}},
		{"Service", []entry{
			kv("Type", "oneshot"),
			kv("RemainAfterExit", "yes"),
			// Bare command names: systemd resolves them on its fixed search path
			// (/usr/local/sbin … /usr/bin), which covers Debian, Flatcar and Fedora CoreOS.
			kv("ExecStart", append([]string{"modprobe", "-a"}, kernelModules...)...),
			// Only this bundle's settings: `sysctl --system` would re-apply every file
			// under sysctl.d, and fails where an unrelated key is read-only (containers,
			// hardened hosts) although ours were applied.
			kv("ExecStart", "sysctl", "-p", paths.SysctlConf),
		}},
		{"Install", []entry{kv("WantedBy", "multi-user.target")}},
	}
	b.Public(paths.ModulesConf, []byte(mods.String()))
	b.Public(paths.SysctlConf, []byte(sys.String()))
	b.Public(paths.KernelUnit, u.bytes())
	b.Unit(kernelUnit)
	return nil
}

// kernelUnit runs after the boot-time services and before everything that needs the
// settings.
var kernelUnit = bundle.Unit{Name: paths.KernelService,
	After:  []string{"systemd-modules-load.service", "systemd-sysctl.service"},
	Before: []string{paths.ContainerdService, paths.KubeletService, paths.KubeProxyService}}
