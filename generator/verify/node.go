package verify

import (
	"path"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// parsed is what the checks read from one node's rootfs, parsed once.
type parsed struct {
	units       map[string]*unit // by unit name
	pods        []*staticPod     // sorted by path
	byComponent map[string]*staticPod

	kubeletFlags   map[string]string // the kubelet's effective ExecStart flags
	kubeletConfig  *kubeletv1beta1.KubeletConfiguration
	kubeletConfigP string // node path of the kubelet config
	proxyFlags     map[string]string
	proxyConfig    *proxyConfig
	proxyConfigP   string

	kubeconfigs []*kubeconfig // sorted by path
}

// staticPod is one parsed manifest.
type staticPod struct {
	path      string // node path
	pod       *corev1.Pod
	component string
	// flags are the first container's --name=value flags (the last occurrence wins).
	flags map[string]string
}

// proxyConfig is the part of KubeProxyConfiguration verify reads.
type proxyConfig struct {
	ClientConnection struct {
		Kubeconfig string `json:"kubeconfig"`
	} `json:"clientConnection"`
	HostnameOverride string `json:"hostnameOverride"`
}

// unit is a systemd unit with its drop-ins applied.
type unit struct {
	name string
	// base is the node path of the unit file ("" when only drop-ins exist: the OS
	// provides the unit).
	base string
	// exec maps ExecStart, ExecStop, … to their commands, drop-ins applied (an empty
	// assignment resets the list, as systemd does).
	exec map[string][][]string
	// execFile maps ExecStart, … to the file that set its last command.
	execFile map[string]string
	// files are the unit file and its drop-ins, in the order systemd reads them.
	files []string
}

// command returns the last ExecStart command (the one a simple service runs).
func (u *unit) command() []string {
	if u == nil || len(u.exec["ExecStart"]) == 0 {
		return nil
	}
	cmds := u.exec["ExecStart"]
	return cmds[len(cmds)-1]
}

// unitDirective is one Key=Value line of a unit file.
type unitDirective struct{ section, key, value string }

// parseUnit reads a unit file: sections, Key=Value lines, comments and backslash
// continuations.
func parseUnit(data string) []unitDirective {
	data = strings.ReplaceAll(data, "\\\n", " ")
	var out []unitDirective
	section := ""
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok {
				out = append(out, unitDirective{section, strings.TrimSpace(k), strings.TrimSpace(v)})
			}
		}
	}
	return out
}

// argv splits a unit command line, dropping systemd's executable prefixes (-@:+!).
func argv(v string) []string {
	f := strings.Fields(v)
	if len(f) > 0 {
		f[0] = strings.TrimLeft(f[0], "-@:+!")
	}
	return f
}

// flagsOf returns --name=value flags as a map (the last occurrence wins); a bare
// --name maps to "".
func flagsOf(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, _ := strings.Cut(a[2:], "=")
		out[k] = v
	}
	return out
}

var unitFileRE = regexp.MustCompile(`^[^/]+\.(service|socket|timer|target|path|mount)$`)

// parseNodes parses every node's units, manifests, configs and kubeconfigs once.
func (b *checker) parseNodes() {
	for _, n := range b.nodes {
		n.parsed = &parsed{units: map[string]*unit{}, byComponent: map[string]*staticPod{}}
		b.parseUnits(n)
		b.parsePods(n)
		b.parseKubelet(n)
		b.parseProxy(n)
		b.parseKubeconfigs(n)
	}
	if f, ok := b.files["admin/"+paths.AdminKubeconfig]; ok {
		if kc := b.parseKubeconfig(nil, f.rel, f.data, "admin"); kc != nil {
			b.adminKubeconfig = kc
		}
	}
}

func (b *checker) parseUnits(n *node) {
	var names []string
	for p := range n.rootfs {
		names = append(names, p)
	}
	sort.Strings(names)
	get := func(name string) *unit {
		u := n.units[name]
		if u == nil {
			u = &unit{name: name, exec: map[string][][]string{}, execFile: map[string]string{}}
			n.units[name] = u
		}
		return u
	}
	apply := func(u *unit, p string) {
		u.files = append(u.files, p)
		for _, d := range parseUnit(string(n.rootfs[p].data)) {
			if !strings.HasPrefix(d.key, "Exec") {
				continue
			}
			if d.value == "" {
				u.exec[d.key] = nil
				continue
			}
			u.exec[d.key] = append(u.exec[d.key], argv(d.value))
			u.execFile[d.key] = p
		}
	}
	// Unit files first, then drop-ins in lexical order, as systemd reads them.
	for _, p := range names {
		if path.Dir(p) == paths.SystemdDir && unitFileRE.MatchString(path.Base(p)) {
			u := get(path.Base(p))
			u.base = p
			apply(u, p)
		}
	}
	for _, p := range names {
		dir := path.Dir(p)
		if path.Dir(dir) == paths.SystemdDir && strings.HasSuffix(dir, ".d") && strings.HasSuffix(p, ".conf") {
			name := strings.TrimSuffix(path.Base(dir), ".d")
			if unitFileRE.MatchString(name) {
				apply(get(name), p)
			}
		}
	}
}

// executables returns the rootfs files a unit runs.
func (n *node) executables() map[string]bool {
	out := map[string]bool{}
	if n.parsed == nil {
		return out
	}
	for _, u := range n.units {
		for _, cmds := range u.exec {
			for _, c := range cmds {
				if len(c) > 0 && n.rootfs[c[0]] != nil {
					out[c[0]] = true
				}
			}
		}
	}
	return out
}

func (b *checker) parsePods(n *node) {
	dir := paths.ManifestsDir
	for p, f := range n.rootfs {
		if path.Dir(p) != dir {
			continue
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(f.data, &pod); err != nil {
			b.problemf(n.rel(p), "is not a Pod manifest: %v", err)
			continue
		}
		if pod.Kind != "Pod" || len(pod.Spec.Containers) == 0 {
			b.problemf(n.rel(p), "is not a static Pod manifest (kind %q, %d containers)", pod.Kind, len(pod.Spec.Containers))
			continue
		}
		sp := &staticPod{path: p, pod: &pod, component: pod.Labels["component"]}
		c := pod.Spec.Containers[0]
		if sp.component == "" {
			sp.component = c.Name
		}
		if co, ok := b.opts.Components.ByManifest(p); !ok {
			b.problemf(n.rel(p), "is not the manifest of a component scratchgen renders (component %q): remove it, or render it from the spec", sp.component)
		} else if co.Name != sp.component {
			b.problemf(n.rel(p), "runs component %q, but this manifest belongs to %s", sp.component, co.Name)
		}
		sp.flags = flagsOf(append(append([]string(nil), c.Command...), c.Args...))
		n.pods = append(n.pods, sp)
		if other := n.byComponent[sp.component]; other != nil {
			b.problemf(n.rel(p), "runs %s, like %s: the node would run it twice", sp.component, other.path)
			continue
		}
		n.byComponent[sp.component] = sp
	}
	sort.Slice(n.pods, func(i, j int) bool { return n.pods[i].path < n.pods[j].path })
}

func (b *checker) parseKubelet(n *node) {
	u := n.units[paths.KubeletService]
	cmd := u.command()
	if cmd == nil {
		b.problemf(n.base+"/rootfs"+paths.SystemdDir+"/"+paths.KubeletService, "is missing or has no ExecStart: the node runs no kubelet")
		return
	}
	n.kubeletFlags = flagsOf(cmd[1:])
	p := n.kubeletFlags["config"]
	if p == "" {
		return
	}
	f := n.file(p)
	if f == nil {
		return // checkReferences
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.Unmarshal(f.data, &kc); err != nil {
		b.problemf(n.rel(p), "is not a KubeletConfiguration: %v", err)
		return
	}
	if kc.Kind != "KubeletConfiguration" {
		b.problemf(n.rel(p), "is a %q, not a KubeletConfiguration", kc.Kind)
		return
	}
	n.kubeletConfig, n.kubeletConfigP = &kc, p
}

func (b *checker) parseProxy(n *node) {
	cmd := n.units[paths.KubeProxyService].command()
	if cmd == nil {
		return
	}
	n.proxyFlags = flagsOf(cmd[1:])
	p := n.proxyFlags["config"]
	f := n.file(p)
	if p == "" || f == nil {
		return
	}
	var pc proxyConfig
	if err := yaml.Unmarshal(f.data, &pc); err != nil {
		b.problemf(n.rel(p), "is not a KubeProxyConfiguration: %v", err)
		return
	}
	n.proxyConfig, n.proxyConfigP = &pc, p
}

// kubeconfigKinds names the kubeconfigs a node may carry, by path.
var kubeconfigKinds = map[string]string{
	paths.AdminConf:             "admin",
	paths.SuperAdminConf:        "super-admin",
	paths.ControllerManagerConf: "controller-manager",
	paths.SchedulerConf:         "scheduler",
	paths.KubeletKubeconfig:     "kubelet",
	paths.KubeProxyKubeconfig:   "kube-proxy",
}

func (b *checker) parseKubeconfigs(n *node) {
	kinds := map[string]string{}
	for p, k := range kubeconfigKinds {
		kinds[p] = k
	}
	// The files the components are told to use, wherever they are.
	if p := n.kubeletFlags["kubeconfig"]; p != "" {
		kinds[p] = "kubelet"
	}
	if n.proxyConfig != nil && n.proxyConfig.ClientConnection.Kubeconfig != "" {
		kinds[n.proxyConfig.ClientConnection.Kubeconfig] = "kube-proxy"
	} else if p := n.proxyFlags["kubeconfig"]; p != "" {
		kinds[p] = "kube-proxy"
	}
	for p := range n.rootfs {
		if path.Dir(p) == paths.KubernetesDir && strings.HasSuffix(p, ".conf") && kinds[p] == "" {
			kinds[p] = "other"
		}
	}
	for p, kind := range kinds {
		f := n.file(p)
		if f == nil {
			continue
		}
		if kc := b.parseKubeconfig(n, n.rel(p), f.data, kind); kc != nil {
			kc.path = p
			n.kubeconfigs = append(n.kubeconfigs, kc)
		}
	}
	sort.Slice(n.kubeconfigs, func(i, j int) bool { return n.kubeconfigs[i].rel < n.kubeconfigs[j].rel })
}
