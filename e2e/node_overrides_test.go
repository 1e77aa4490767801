package e2e

// The node boot test's environment overrides: the only differences between what a node
// of the test runs and what its bundle says. Each one is forced by the test machine (no
// systemd as PID 1, a hybrid cgroup v1 hierarchy, no CAP_SYS_RESOURCE, no loadable kernel
// modules, Debian's package layout, three nodes sharing one kernel), not by the bundle:
// the rendered defaults stay right for real machines. Every other rendered byte is used
// as is.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// nbOverride is one environment override: where, what, why. apply makes the change on a
// machine (its installed copy of the bundle, or its setup) and returns the change with
// the machine's concrete values, which the test prints.
type nbOverride struct {
	Where, What, Why string
	apply            func(m *nbMachine) (string, error)
}

// nbOverrides is the table. Applied in order to every node; printed at the start of the
// test and, with concrete values, for each node.
var nbOverrides = []nbOverride{
	{
		Where: paths.KubeletConfig, What: "cgroupDriver: systemd -> cgroupfs",
		Why: "no systemd runs as PID 1 on the test machine to manage cgroups",
		apply: func(m *nbMachine) (string, error) {
			return m.editKubeletConfig("cgroupDriver", "cgroupfs")
		},
	},
	{
		Where: paths.KubeletConfig, What: "failCgroupV1: false",
		Why: "the test machine has a hybrid cgroup v1 hierarchy, which kubelets since v1.35 refuse by default",
		apply: func(m *nbMachine) (string, error) {
			return m.editKubeletConfig("failCgroupV1", false)
		},
	},
	{
		Where: paths.KubeletConfig, What: "cgroupRoot: /" + nbCgroupPrefix + "<test pid>/<node>",
		Why: "three kubelets share one machine's cgroup hierarchy: each needs its own subtree, or each would " +
			"delete the others' pod cgroups as orphans and overwrite the others' QoS cgroup limits",
		apply: func(m *nbMachine) (string, error) {
			return m.editKubeletConfig("cgroupRoot", m.Cgroup)
		},
	},
	{
		Where: paths.KubeProxyConfig, What: "conntrack.maxPerCore: 0 (leave nf_conntrack_max alone)",
		Why: "nf_conntrack_max is machine-wide and read-only in a node's network namespace; kube-proxy exits when it " +
			"cannot set it (\"open /proc/sys/net/netfilter/nf_conntrack_max: permission denied\"); 0 skips it, as kind does",
		apply: func(m *nbMachine) (string, error) {
			return m.editKubeProxyConfig("conntrack", "maxPerCore", 0)
		},
	},
	{
		Where: paths.ContainerdConfig, What: "SystemdCgroup = true -> false (runc runtime options)",
		Why: "runc must use the kubelet's cgroup driver, cgroupfs (above)",
		apply: func(m *nbMachine) (string, error) {
			return m.editContainerdConfig("SystemdCgroup = true", "SystemdCgroup = false", "SystemdCgroup = false (was true)")
		},
	},
	{
		Where: paths.ContainerdConfig, What: "restrict_oom_score_adj = true (CRI plugin)",
		Why: "the test runs without CAP_SYS_RESOURCE, so the kernel refuses the negative oom_score_adj of " +
			"critical pods; restricted, containerd keeps it at its own",
		apply: func(m *nbMachine) (string, error) {
			header := `[plugins."io.containerd.grpc.v1.cri"]` + "\n" // the table's own line, not its sub-tables'
			return m.editContainerdConfig(header, header+"    restrict_oom_score_adj = true # scratchgen node boot test override\n",
				`restrict_oom_score_adj = true added to [plugins."io.containerd.grpc.v1.cri"] (was unset)`)
		},
	},
	{
		Where: paths.SystemdDir + "/containerd.service.d/10-scratchgen.conf", What: "LimitNOFILE: the test process's hard limit instead of the rendered one, when lower",
		Why: "raising a hard limit needs CAP_SYS_RESOURCE",
		apply: func(m *nbMachine) (string, error) {
			u, err := nbReadUnit(m.Disk, "containerd.service")
			if err != nil {
				return "", err
			}
			var want uint64
			if _, err := fmt.Sscan(u.Settings["LimitNOFILE"], &want); err != nil {
				return "", fmt.Errorf("containerd.service LimitNOFILE=%q: %v", u.Settings["LimitNOFILE"], err)
			}
			var lim syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				return "", err
			}
			m.nofile = min(want, lim.Max)
			return fmt.Sprintf("LimitNOFILE=%d -> %d", want, m.nofile), nil
		},
	},
	{
		Where: "scratchgen-kernel.service", What: "modprobe -a br_netfilter overlay: a failure is accepted when both are built into the kernel",
		Why: "the test machine's kernel has no loadable modules; the test checks /proc/sys/net/bridge and /proc/filesystems instead",
		apply: func(m *nbMachine) (string, error) {
			m.modprobeBuiltin = true
			return "modprobe failures accepted if br_netfilter and overlay are built in", nil
		},
	},
	{
		Where: "scratchgen-kernel.service", What: "sysctl --system -> sysctl -p of each file of the bundle's /etc/sysctl.d",
		Why: "--system also applies the host's sysctl.d files, which are machine-wide; the bundle's keys are net.* " +
			"and apply to the node's network namespace only (the test refuses any other key)",
		apply: func(m *nbMachine) (string, error) {
			files, _ := filepath.Glob(filepath.Join(m.Disk, "etc", "sysctl.d", "*.conf"))
			var nodeFiles []string
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					return "", err
				}
				for _, line := range strings.Split(string(data), "\n") {
					line = strings.TrimSpace(line)
					if line == "" || line[0] == '#' || line[0] == ';' {
						continue
					}
					key, _, _ := strings.Cut(line, "=")
					if key = strings.TrimSpace(key); !strings.HasPrefix(key, "net.") {
						return "", fmt.Errorf("%s sets %s, which is not per network namespace: the test would change the test machine", f, key)
					}
				}
				nodeFiles = append(nodeFiles, "/etc/sysctl.d/"+filepath.Base(f))
			}
			m.sysctlFiles = nodeFiles
			return "sysctl -p " + strings.Join(nodeFiles, " "), nil
		},
	},
	{
		Where: "/proc/sys (the kubelet's kernel tunables)", What: "vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, " +
			"kernel.keys.root_maxkeys, kernel.keys.root_maxbytes read, in each node's mount namespace, the kubelet's values from files",
		Why: "the kubelet (protectKernelDefaults: false) sets these machine-wide sysctls at start; the nodes share the " +
			"test machine's kernel, which the test must not change (kernel.panic_on_oops=1 would panic it on an oops)",
		apply: func(m *nbMachine) (string, error) {
			m.shieldSysctls = map[string]string{
				"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
				"kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000", "kernel/keys/root_maxbytes": "25000000",
			}
			var s []string
			for k, v := range m.shieldSysctls {
				s = append(s, k+"="+v)
			}
			return "/proc/sys/{" + strings.Join(sortStrings(s), ", ") + "} from files", nil
		},
	},
	{
		Where: "scratchgen-routes.service", What: "also: ip route replace <serviceCIDR> dev eth0",
		Why: "a machine has a default route; the test's node namespaces have none (so that nothing leaves the test's " +
			"subnet), so the kernel would refuse a node's own connections to a ClusterIP (\"network is unreachable\") " +
			"before kube-proxy's OUTPUT rules rewrite them",
		apply: func(m *nbMachine) (string, error) {
			pod, err := LoadPod(m.h.NodeFile("cp-1", paths.APIServerManifest))
			if err != nil {
				return "", err
			}
			cidr, ok := flagValue(pod, "service-cluster-ip-range")
			if !ok {
				return "", fmt.Errorf("cp-1's %s has no --service-cluster-ip-range", paths.APIServerManifest)
			}
			m.serviceRoute = []string{"ip", "route", "replace", cidr, "dev", "eth0"}
			return strings.Join(m.serviceRoute, " "), nil
		},
	},
	{
		Where: paths.CNIBinDir, What: "bind mount of /usr/lib/cni, read-only",
		Why: "Debian's containernetworking-plugins installs the plugins in /usr/lib/cni; the rendered containerd config names " + paths.CNIBinDir,
		apply: func(m *nbMachine) (string, error) {
			if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
				return "", fmt.Errorf("no CNI bridge plugin in /usr/lib/cni (apt-get install containernetworking-plugins): %v", err)
			}
			m.binds = append(m.binds, nbBind{src: "/usr/lib/cni", dst: paths.CNIBinDir, dir: true, ro: true})
			return paths.CNIBinDir + " <- /usr/lib/cni", nil
		},
	},
}

// nbOverridesTable formats the table for the log.
func nbOverridesTable() string {
	var b strings.Builder
	b.WriteString("environment overrides (applied on top of the rendered files, on every node; nothing else rendered is changed):\n")
	for i, o := range nbOverrides {
		fmt.Fprintf(&b, "  %2d. %s: %s\n      why: %s\n", i+1, o.Where, o.What, o.Why)
	}
	return b.String()
}

// editKubeletConfig sets a top-level field of the node's installed kubelet config and
// checks that the result is still a strict KubeletConfiguration.
func (m *nbMachine) editKubeletConfig(key string, value any) (string, error) {
	file := filepath.Join(m.Disk, filepath.FromSlash(paths.KubeletConfig))
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	old, had := obj[key]
	obj[key] = value
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	var typed kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(out, &typed); err != nil {
		return "", fmt.Errorf("%s after setting %s: %w", file, key, err)
	}
	out = append([]byte(overrideHeader), out...)
	if err := nbReplaceFile(file, out, 0o644); err != nil {
		return "", err
	}
	was := "unset"
	if had {
		was = fmt.Sprint(old)
	}
	return fmt.Sprintf("%s: %s (was %s)", key, fmt.Sprint(value), was), nil
}

// editKubeProxyConfig sets a field of a top-level section of the node's installed
// kube-proxy config and checks that the result is still a strict KubeProxyConfiguration.
func (m *nbMachine) editKubeProxyConfig(section, key string, value any) (string, error) {
	file := filepath.Join(m.Disk, filepath.FromSlash(paths.KubeProxyConfig))
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	sec, _ := obj[section].(map[string]any)
	if sec == nil {
		sec = map[string]any{}
	}
	old, had := sec[key]
	sec[key] = value
	obj[section] = sec
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	var typed kubeproxyv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict(out, &typed); err != nil {
		return "", fmt.Errorf("%s after setting %s.%s: %w", file, section, key, err)
	}
	out = append([]byte(overrideHeader), out...)
	if err := nbReplaceFile(file, out, 0o644); err != nil {
		return "", err
	}
	was := "unset"
	if had {
		was = fmt.Sprint(old)
	}
	return fmt.Sprintf("%s.%s: %v (was %s)", section, key, value, was), nil
}

// overrideHeader starts every rewritten YAML copy.
const overrideHeader = "# The scratchgen node boot test rewrote this copy of the rendered file; see its environment overrides.\n"

// editContainerdConfig replaces the one occurrence of old in the node's installed
// containerd config; a rendered file without it is a failure (the override would be
// stale). It returns what, the change as printed.
func (m *nbMachine) editContainerdConfig(old, new, what string) (string, error) {
	file := filepath.Join(m.Disk, filepath.FromSlash(paths.ContainerdConfig))
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	if n := strings.Count(string(data), old); n != 1 {
		return "", fmt.Errorf("%s holds %q %d times, want once: the override no longer fits the rendered file", file, old, n)
	}
	if err := nbReplaceFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		return "", err
	}
	return what, nil
}

// nbReplaceFile writes a new file in place of p (never through a hard link to the bundle).
func nbReplaceFile(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
