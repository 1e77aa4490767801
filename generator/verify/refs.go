package verify

import (
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// ownedDirs are the directories whose files come from the bundle: a path under one of
// them that a unit or config names must be in the node's rootfs. Anything else
// (binaries, the OS trust store) is the machine's.
var ownedDirs = []string{
	paths.KubernetesDir, paths.KubeletDir, paths.KubeProxyDir, paths.CNIConfDir,
	"/etc/containerd", "/etc/scratchgen", "/var/lib/scratchgen", paths.SystemdDir,
}

func owned(p string) bool {
	for _, d := range ownedDirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// checkReferences checks that every file a manifest, unit or config names is in the
// node's rootfs.
func (b *checker) checkReferences() {
	for _, n := range b.nodes {
		for _, sp := range n.pods {
			b.checkPodReferences(n, sp)
		}
		b.checkUnitReferences(n)
		b.checkKubeletReferences(n)
		b.checkProxyReferences(n)
		b.checkCNI(n)
	}
}

// mount is a container path backed by a host path.
type mount struct {
	container, host string
	typ             corev1.HostPathType
	volume          string
}

// checkPodReferences checks a static pod: hostPath files exist, and every flag whose
// value is an absolute path is mounted into the container from a host path that exists.
func (b *checker) checkPodReferences(n *node, sp *staticPod) {
	rel := n.rel(sp.path)
	vols := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range sp.pod.Spec.Volumes {
		hp := v.HostPath
		if hp == nil {
			continue
		}
		vols[v.Name] = hp
		typ := corev1.HostPathUnset
		if hp.Type != nil {
			typ = *hp.Type
		}
		if (typ == corev1.HostPathFile || typ == corev1.HostPathFileOrCreate) && n.file(hp.Path) == nil {
			b.problemf(rel, "volume %s mounts host file %s (type %s), which is not in the node's rootfs", v.Name, hp.Path, typ)
		}
	}
	containers := append(append([]corev1.Container(nil), sp.pod.Spec.InitContainers...), sp.pod.Spec.Containers...)
	for _, c := range containers {
		var mounts []mount
		for _, vm := range c.VolumeMounts {
			hp, ok := vols[vm.Name]
			if !ok {
				continue
			}
			typ := corev1.HostPathUnset
			if hp.Type != nil {
				typ = *hp.Type
			}
			mounts = append(mounts, mount{container: vm.MountPath, host: hp.Path, typ: typ, volume: vm.Name})
		}
		// The longest mount path wins, as in the container's mount table.
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].container) > len(mounts[j].container) })
		flags := flagsOf(append(append([]string(nil), c.Command...), c.Args...))
		for _, name := range slices.Sorted(maps.Keys(flags)) {
			v := flags[name]
			if !strings.HasPrefix(v, "/") {
				continue
			}
			var m *mount
			for i := range mounts {
				if under(v, mounts[i].container) {
					m = &mounts[i]
					break
				}
			}
			if m == nil {
				b.problemf(rel, "--%s=%s: no volume mounts %s into container %s", name, v, v, c.Name)
				continue
			}
			host := path.Join(m.host, strings.TrimPrefix(v, m.container))
			switch {
			case n.has(host):
			case host == m.host && (m.typ == corev1.HostPathDirectoryOrCreate || m.typ == corev1.HostPathDirectory):
				// A directory the kubelet creates or the OS provides (--data-dir).
			default:
				b.problemf(rel, "--%s refers to %s, which is not in the node's rootfs", name, host)
			}
		}
	}
}

// checkUnitReferences checks that every bundle path a unit command names exists, and
// that the node runs its kubelet and kube-proxy under its own name.
func (b *checker) checkUnitReferences(n *node) {
	for _, name := range slices.Sorted(maps.Keys(n.units)) {
		u := n.units[name]
		for _, key := range slices.Sorted(maps.Keys(u.exec)) {
			for _, cmd := range u.exec[key] {
				for i, a := range cmd {
					v, what := a, "runs "+a
					if i > 0 {
						what = "passes " + a
						if strings.HasPrefix(a, "--") {
							_, val, ok := strings.Cut(a, "=")
							if !ok {
								continue
							}
							v = val
						}
					}
					if !strings.HasPrefix(v, "/") || !owned(v) || n.has(v) {
						continue
					}
					b.problemf(n.rel(u.execFile[key]), "%s, which is not in the node's rootfs", what)
				}
			}
		}
	}
	if h := n.kubeletFlags["hostname-override"]; h != "" && h != n.name {
		b.problemf(n.rel(n.units[paths.KubeletService].execFile["ExecStart"]), "the kubelet registers as node %s (--hostname-override), but this is node %s", h, n.name)
	}
	if h := n.proxyFlags["hostname-override"]; h != "" && h != n.name {
		b.problemf(n.rel(n.units[paths.KubeProxyService].execFile["ExecStart"]), "kube-proxy runs as node %s (--hostname-override), but this is node %s", h, n.name)
	}
}

// checkKubeletReferences checks the files the kubelet configuration names, that its
// client CA is the cluster CA, and that it runs the node's static pods.
func (b *checker) checkKubeletReferences(n *node) {
	kc := n.kubeletConfig
	if kc == nil {
		return
	}
	rel := n.rel(n.kubeletConfigP)
	for _, f := range []struct{ field, p string }{
		{"authentication.x509.clientCAFile", kc.Authentication.X509.ClientCAFile},
		{"tlsCertFile", kc.TLSCertFile},
		{"tlsPrivateKeyFile", kc.TLSPrivateKeyFile},
	} {
		if f.p != "" && n.file(f.p) == nil {
			b.problemf(rel, "%s names %s, which is not in the node's rootfs", f.field, f.p)
		}
	}
	if p := kc.Authentication.X509.ClientCAFile; p != "" {
		if cs := b.trustAt(n, p); cs != nil {
			if ca := b.cas[caCluster]; ca != nil && !ca.same(cs) {
				b.problemf(rel, "authentication.x509.clientCAFile %s is not %s: the API server's kubelet client certificate would be rejected", p, ca.spec.desc)
			}
		}
	}
	if len(n.pods) > 0 && path.Clean(kc.StaticPodPath) != paths.ManifestsDir {
		b.problemf(rel, "staticPodPath is %q, so the manifests in %s never run", kc.StaticPodPath, paths.ManifestsDir)
	}
}

// checkProxyReferences checks the kubeconfig kube-proxy's configuration names and
// the node name it uses.
func (b *checker) checkProxyReferences(n *node) {
	pc := n.proxyConfig
	if pc == nil {
		return
	}
	rel := n.rel(n.proxyConfigP)
	if p := pc.ClientConnection.Kubeconfig; p != "" && n.file(p) == nil {
		b.problemf(rel, "clientConnection.kubeconfig names %s, which is not in the node's rootfs", p)
	}
	if h := pc.HostnameOverride; h != "" && h != n.name {
		b.problemf(rel, "hostnameOverride is %s, but this is node %s", h, n.name)
	}
}

var (
	confDirRE      = regexp.MustCompile(`(?m)^\s*conf_dir\s*=\s*"([^"]*)"`)
	sandboxImageRE = regexp.MustCompile(`(?m)^\s*sandbox_image\s*=\s*"([^"]*)"`)
)

// checkCNI checks that a node whose routes unit sets up the routed pod network has a
// CNI configuration where containerd looks for one.
func (b *checker) checkCNI(n *node) {
	u := n.units[paths.RoutesService]
	if u == nil || u.base == "" {
		return
	}
	dir := paths.CNIConfDir
	if f := n.file(paths.ContainerdConfig); f != nil {
		if m := confDirRE.FindSubmatch(f.data); m != nil {
			dir = string(m[1])
		}
	}
	for p := range n.rootfs {
		if path.Dir(p) == dir && (strings.HasSuffix(p, ".conflist") || strings.HasSuffix(p, ".conf")) {
			return
		}
	}
	b.problemf(n.rel(u.base), "sets up the routed pod network, but rootfs has no CNI configuration in %s (containerd's conf_dir)", dir)
}

// pinnedRE matches an image reference pinned by a sha256 digest.
var pinnedRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// checkImages reports every image of the static pods, the add-ons and containerd's
// sandbox that is not pinned by digest.
func (b *checker) checkImages() {
	// Without --require-pinned, one warning for the whole bundle.
	unpinned := map[string]bool{}
	files := map[string]bool{}
	defer func() {
		if len(unpinned) > 0 {
			list := slices.Sorted(maps.Keys(unpinned))
			b.warnf(".", "%d image(s) in %d file(s) are not pinned by digest (@sha256:…): %s; run `scratchgen images pin` and re-render, and verify with --require-pinned to make it an error", len(list), len(files), strings.Join(list, ", "))
		}
	}()
	report := func(rel, image string) {
		if pinnedRE.MatchString(image) {
			return
		}
		if b.opts.RequirePinned {
			b.problemf(rel, "image %s is not pinned by digest (@sha256:…); run `scratchgen images pin` and re-render", image)
			return
		}
		unpinned[image], files[rel] = true, true
	}
	for _, n := range b.nodes {
		for _, sp := range n.pods {
			for _, c := range append(append([]corev1.Container(nil), sp.pod.Spec.InitContainers...), sp.pod.Spec.Containers...) {
				report(n.rel(sp.path), c.Image)
			}
		}
		if f := n.file(paths.ContainerdConfig); f != nil {
			for _, m := range sandboxImageRE.FindAllSubmatch(f.data, -1) {
				report(n.rel(paths.ContainerdConfig), string(m[1]))
			}
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(b.files)) {
		if !strings.HasPrefix(rel, "admin/addons/") {
			continue
		}
		for _, doc := range splitYAML(b.files[rel].data) {
			var obj any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				b.problemf(rel, "is not YAML: %v", err)
				break
			}
			for _, img := range images(obj) {
				report(rel, img)
			}
		}
	}
}

// splitYAML splits a multi-document YAML stream.
func splitYAML(data []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

// images returns the values of every "image" key inside a container list of obj.
func images(obj any) []string {
	var out []string
	var walk func(v any, inContainers bool)
	walk = func(v any, inContainers bool) {
		switch t := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(t)) {
				if s, ok := t[k].(string); ok && k == "image" && inContainers {
					out = append(out, s)
					continue
				}
				walk(t[k], k == "containers" || k == "initContainers" || k == "ephemeralContainers")
			}
		case []any:
			for _, e := range t {
				walk(e, inContainers)
			}
		}
	}
	walk(obj, false)
	return out
}
