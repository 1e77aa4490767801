package staticpods

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// specNode is one node of a test spec.
type specNode struct {
	name, addr string
	roles      []string
}

// topology is a set of nodes plus what the manifests must say about them. The
// expectations are literals, not computed from the model, so a wrong model reading fails.
type topology struct {
	nodes    []specNode
	endpoint string // controlPlaneEndpoint; "" = the single control plane's address
	// etcdServers is the apiserver's --etcd-servers; initialCluster etcd's --initial-cluster.
	etcdServers, initialCluster string
	// securePort is the apiserver's --secure-port.
	securePort string
}

var (
	cpEtcd = []string{"control-plane", "etcd"}
	cpOnly = []string{"control-plane"}
	etcd   = []string{"etcd"}
	worker = []string{"worker"}
)

var (
	// One stacked control plane: endpoint defaults to its address and port 6443.
	stacked1 = topology{
		nodes: []specNode{
			{"cp-1", "10.0.0.10", cpEtcd},
			{"worker-1", "10.0.0.21", worker},
		},
		etcdServers:    "https://10.0.0.10:2379",
		initialCluster: "cp-1=https://10.0.0.10:2380",
		securePort:     "6443",
	}
	// Three stacked control planes behind a load balancer on 443: the API servers
	// still listen on 6443.
	stacked3 = topology{
		nodes: []specNode{
			{"cp-1", "10.0.0.11", cpEtcd},
			{"cp-2", "10.0.0.12", cpEtcd},
			{"cp-3", "10.0.0.13", cpEtcd},
			{"worker-1", "10.0.0.21", worker},
		},
		endpoint:       "api.example.com:443",
		etcdServers:    "https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379",
		initialCluster: "cp-1=https://10.0.0.11:2380,cp-2=https://10.0.0.12:2380,cp-3=https://10.0.0.13:2380",
		securePort:     "6443",
	}
	// External etcd on dedicated nodes, listed out of name order (spec order must win),
	// and an endpoint that is the control plane's own address on a custom port.
	external3 = topology{
		nodes: []specNode{
			{"etcd-c", "10.0.0.33", etcd},
			{"cp-1", "10.0.0.10", cpOnly},
			{"etcd-a", "10.0.0.31", etcd},
			{"worker-1", "10.0.0.21", worker},
			{"etcd-b", "10.0.0.32", etcd},
		},
		endpoint:       "10.0.0.10:7443",
		etcdServers:    "https://10.0.0.33:2379,https://10.0.0.31:2379,https://10.0.0.32:2379",
		initialCluster: "etcd-c=https://10.0.0.33:2380,etcd-a=https://10.0.0.31:2380,etcd-b=https://10.0.0.32:2380",
		securePort:     "7443",
	}
)

// options are the spec knobs a case varies.
type options struct {
	name         string // cluster name; "demo" when empty
	version      string
	topology     topology
	credentials  string // "" = default perNode
	staticTokens *bool  // nil = default true
	hyperkube    bool
	os           string // provisioning.os; "" = generic
	dnsDomain    string // "" = cluster.local
}

const hyperkubeImage = "registry.example.com/k8s/hyperkube:v1.36.3"

func (o options) spec() string {
	t := o.topology
	var b strings.Builder
	name := o.name
	if name == "" {
		name = "demo"
	}
	fmt.Fprintf(&b, "apiVersion: scratchgen.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: %s\nspec:\n  kubernetesVersion: %s\n", name, o.version)
	if t.endpoint != "" {
		fmt.Fprintf(&b, "  controlPlaneEndpoint: %s\n", t.endpoint)
	}
	b.WriteString("  network:\n    podCIDR: 10.10.0.0/16\n")
	if o.dnsDomain != "" {
		fmt.Fprintf(&b, "    dnsDomain: %s\n", o.dnsDomain)
	}
	b.WriteString("  nodes:\n")
	for _, n := range t.nodes {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    roles: [%s]\n", n.name, n.addr, strings.Join(n.roles, ", "))
	}
	if o.credentials != "" || o.staticTokens != nil {
		b.WriteString("  auth:\n")
		if o.credentials != "" {
			fmt.Fprintf(&b, "    credentials: %s\n", o.credentials)
		}
		if o.staticTokens != nil {
			fmt.Fprintf(&b, "    staticTokens: %t\n", *o.staticTokens)
		}
	}
	if o.hyperkube {
		fmt.Fprintf(&b, "  images:\n    style: hyperkube\n    hyperkube: %s\n", hyperkubeImage)
	}
	if o.os != "" {
		fmt.Fprintf(&b, "  provisioning:\n    os: %s\n", o.os)
	}
	return b.String()
}

func resolve(t *testing.T, text string) *model.Cluster {
	t.Helper()
	doc, errs := spec.Parse([]byte(text))
	if len(errs.Errors()) > 0 {
		t.Fatalf("parse: %s\n%s", errs.Format("spec"), text)
	}
	c, _, errs := model.Resolve(doc, nil)
	if len(errs.Errors()) > 0 {
		t.Fatalf("resolve: %s\n%s", errs.Format("spec"), text)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestNode(t *testing.T) {
	// flexvolume: kubeadm mounts the flexvolume dir into the controller manager up to 1.35.
	minors := []struct {
		version    string
		flexvolume bool
	}{
		{"v1.34.4", true},
		{"v1.35.4", true},
		{"v1.36.3", false},
	}
	variants := []struct {
		name string
		set  func(*options)
	}{
		{"defaults", func(*options) {}},
		{"perRole", func(o *options) { o.credentials = model.CredentialsPerRole }},
		{"shared-no-tokens", func(o *options) { o.credentials = model.CredentialsShared; o.staticTokens = ptr(false) }},
		{"perNode-no-tokens", func(o *options) { o.staticTokens = ptr(false) }},
		{"hyperkube", func(o *options) { o.hyperkube = true }},
		{"flatcar", func(o *options) { o.os = model.OSFlatcar }},
		{"fcos", func(o *options) { o.os = model.OSFCOS; o.dnsDomain = "k8s.example.org" }},
	}
	for _, m := range minors {
		for _, topo := range []struct {
			name string
			t    topology
		}{{"stacked-1", stacked1}, {"stacked-3", stacked3}, {"external-3", external3}} {
			for _, v := range variants {
				o := options{version: m.version, topology: topo.t}
				v.set(&o)
				t.Run(m.version+"/"+topo.name+"/"+v.name, func(t *testing.T) {
					checkCluster(t, o, m.flexvolume)
				})
			}
		}
	}
}

// checkCluster renders every node of one spec and checks each manifest.
func checkCluster(t *testing.T, o options, flexvolume bool) {
	c := resolve(t, o.spec())
	topo := o.topology
	tokens := map[string]bool{}
	for _, sn := range topo.nodes {
		n := c.Node(sn.name)
		files, err := Node(c, n)
		if err != nil {
			t.Fatalf("Node(%s): %v", sn.name, err)
		}
		again, err := Node(c, n)
		if err != nil {
			t.Fatalf("Node(%s) again: %v", sn.name, err)
		}
		// A freshly resolved model must give the same bytes too (no map-order leaks).
		fresh, err := Node(resolve(t, o.spec()), resolve(t, o.spec()).Node(sn.name))
		if err != nil {
			t.Fatalf("Node(%s) fresh: %v", sn.name, err)
		}
		for _, other := range [][]bundle.File{again, fresh} {
			if len(other) != len(files) {
				t.Fatalf("%s: %d files, then %d", sn.name, len(files), len(other))
			}
			for i := range files {
				if other[i].Path != files[i].Path || !bytes.Equal(other[i].Data, files[i].Data) || other[i].Mode != files[i].Mode {
					t.Errorf("%s: %s is not deterministic", sn.name, files[i].Path)
				}
			}
		}

		var want []string
		if hasRole(sn.roles, "etcd") {
			want = append(want, "/etc/kubernetes/manifests/etcd.yaml")
		}
		if hasRole(sn.roles, "control-plane") {
			want = append(want,
				"/etc/kubernetes/manifests/kube-apiserver.yaml",
				"/etc/kubernetes/manifests/kube-controller-manager.yaml",
				"/etc/kubernetes/manifests/kube-scheduler.yaml")
		}
		var got []string
		for _, f := range files {
			got = append(got, f.Path)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: files %v, want %v", sn.name, got, want)
		}

		for _, f := range files {
			if f.Mode != bundle.ModePublic || f.Secret {
				t.Errorf("%s %s: mode %v secret %v, want public", sn.name, f.Path, f.Mode, f.Secret)
			}
			for _, noise := range []string{"creationTimestamp", "status"} {
				if bytes.Contains(f.Data, []byte(noise)) {
					t.Errorf("%s %s: output contains %q", sn.name, f.Path, noise)
				}
			}
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(f.Data, &pod); err != nil {
				t.Fatalf("%s %s: strict decode: %v\n%s", sn.name, f.Path, err, f.Data)
			}
			component := strings.TrimSuffix(f.Path[strings.LastIndex(f.Path, "/")+1:], ".yaml")
			ctx := fmt.Sprintf("%s %s", sn.name, component)
			if d := pod.Annotations[AnnotationInputs]; !inputsRE.MatchString(d) {
				t.Errorf("%s: annotation %s = %q, want sha256:<32 hex digits>", ctx, AnnotationInputs, d)
			}
			delete(pod.Annotations, AnnotationInputs) // the other checks count kubeadm's annotations
			ctr := checkSkeleton(t, ctx, c, &pod, component)
			if ctr == nil {
				continue
			}
			flags := checkCommand(t, ctx, ctr.Command, component, o.hyperkube)
			if err := pathsCovered(flags, ctr.VolumeMounts); err != nil {
				t.Errorf("%s: %v", ctx, err)
			}
			switch component {
			case "kube-apiserver":
				checkAPIServer(t, ctx, o, topo, sn, &pod, flags)
			case "kube-controller-manager":
				checkControllerManager(t, ctx, o, flexvolume, &pod, flags)
			case "kube-scheduler":
				checkScheduler(t, ctx, &pod, flags)
			case "etcd":
				checkEtcd(t, ctx, topo, sn, &pod, flags)
				tokens[flags["initial-cluster-token"]] = true
			}
		}
	}
	if len(tokens) != 1 {
		t.Errorf("etcd members disagree on --initial-cluster-token: %v", tokens)
	}
}

func hasRole(roles []string, r string) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// checkSkeleton checks the kubeadm skeleton facts shared by every pod and returns its container.
func checkSkeleton(t *testing.T, ctx string, c *model.Cluster, pod *corev1.Pod, component string) *corev1.Container {
	t.Helper()
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		t.Errorf("%s: %s/%s", ctx, pod.APIVersion, pod.Kind)
	}
	if pod.Name != component || pod.Namespace != "kube-system" {
		t.Errorf("%s: name %s/%s", ctx, pod.Namespace, pod.Name)
	}
	if pod.Labels["component"] != component || pod.Labels["tier"] != "control-plane" || len(pod.Labels) != 2 {
		t.Errorf("%s: labels %v", ctx, pod.Labels)
	}
	s := pod.Spec
	if !s.HostNetwork || s.Priority == nil || *s.Priority != 2000001000 || s.PriorityClassName != "system-node-critical" {
		t.Errorf("%s: hostNetwork %v priority %v class %q", ctx, s.HostNetwork, s.Priority, s.PriorityClassName)
	}
	if s.SecurityContext == nil || s.SecurityContext.SeccompProfile == nil || s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile missing", ctx)
	}
	if len(s.Containers) != 1 || len(s.InitContainers) != 0 {
		t.Fatalf("%s: %d containers", ctx, len(s.Containers))
	}
	ctr := &s.Containers[0]
	if ctr.Name != component {
		t.Errorf("%s: container %q", ctx, ctr.Name)
	}
	if ctr.Image == "" || ctr.Image != c.Images.Refs[component] {
		t.Errorf("%s: image %q, want %q", ctx, ctr.Image, c.Images.Refs[component])
	}
	if ctr.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("%s: pull policy %q", ctx, ctr.ImagePullPolicy)
	}
	if len(ctr.Env) != 0 {
		t.Errorf("%s: env %v (nothing may come from the environment)", ctx, ctr.Env)
	}

	wantCPU := map[string]string{"kube-apiserver": "250m", "kube-controller-manager": "200m", "kube-scheduler": "100m", "etcd": "100m"}[component]
	if q := ctr.Resources.Requests[corev1.ResourceCPU]; q.String() != wantCPU {
		t.Errorf("%s: cpu request %s, want %s", ctx, q.String(), wantCPU)
	}
	if len(ctr.Resources.Limits) != 0 {
		t.Errorf("%s: limits %v", ctx, ctr.Resources.Limits)
	}
	if q, ok := ctr.Resources.Requests[corev1.ResourceMemory]; (component == "etcd") != ok || (ok && q.String() != "100Mi") {
		t.Errorf("%s: memory request %v (only etcd requests 100Mi)", ctx, ctr.Resources.Requests)
	}

	// Probes: the named port (1.34+), kubeadm's timings, startup covering 4 minutes.
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "probe-port" || ctr.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("%s: ports %v", ctx, ctr.Ports)
	}
	type probeWant struct {
		path                                   string
		delay, timeout, failure, period, count int32
	}
	paths := map[string][3]string{ // liveness, readiness, startup; "" = none
		"kube-apiserver":          {"/livez", "/readyz", "/livez"},
		"kube-controller-manager": {"/healthz", "", "/healthz"},
		"kube-scheduler":          {"/livez", "/readyz", "/livez"},
		"etcd":                    {"/livez", "/readyz", "/readyz"},
	}[component]
	scheme := corev1.URISchemeHTTPS
	if component == "etcd" {
		scheme = corev1.URISchemeHTTP
	}
	for i, p := range []struct {
		kind  string
		probe *corev1.Probe
		want  [4]int32 // initialDelay, timeout, failureThreshold, period
	}{
		{"liveness", ctr.LivenessProbe, [4]int32{10, 15, 8, 10}},
		{"readiness", ctr.ReadinessProbe, [4]int32{0, 15, 3, 1}},
		{"startup", ctr.StartupProbe, [4]int32{10, 15, 24, 10}},
	} {
		if paths[i] == "" {
			if p.probe != nil {
				t.Errorf("%s: unexpected %s probe", ctx, p.kind)
			}
			continue
		}
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s HTTP probe", ctx, p.kind)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != paths[i] || g.Port.String() != "probe-port" || g.Scheme != scheme || g.Host == "" {
			t.Errorf("%s: %s probe %+v", ctx, p.kind, g)
		}
		got := [4]int32{p.probe.InitialDelaySeconds, p.probe.TimeoutSeconds, p.probe.FailureThreshold, p.probe.PeriodSeconds}
		if got != p.want {
			t.Errorf("%s: %s probe delay/timeout/failure/period %v, want %v", ctx, p.kind, got, p.want)
		}
	}

	// Volumes: sorted, unique, each mounted once at its own host path.
	vols := map[string]corev1.Volume{}
	for i, v := range s.Volumes {
		if i > 0 && s.Volumes[i-1].Name >= v.Name {
			t.Errorf("%s: volumes not sorted by name at %q", ctx, v.Name)
		}
		if v.HostPath == nil || v.HostPath.Type == nil {
			t.Errorf("%s: volume %q is not a typed hostPath", ctx, v.Name)
			continue
		}
		vols[v.Name] = v
	}
	mounted := map[string]bool{}
	for _, vm := range ctr.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("%s: mount %q has no volume", ctx, vm.Name)
			continue
		}
		if vm.MountPath != v.HostPath.Path {
			t.Errorf("%s: %q mounted at %s, host path %s", ctx, vm.Name, vm.MountPath, v.HostPath.Path)
		}
		rw := vm.Name == "etcd-data" || vm.Name == "etcd-certs" || vm.Name == "flexvolume-dir"
		if vm.ReadOnly == rw {
			t.Errorf("%s: %q readOnly=%v", ctx, vm.Name, vm.ReadOnly)
		}
		if mounted[vm.Name] {
			t.Errorf("%s: %q mounted twice", ctx, vm.Name)
		}
		mounted[vm.Name] = true
	}
	if len(mounted) != len(vols) {
		t.Errorf("%s: %d volumes, %d mounted", ctx, len(vols), len(mounted))
	}
	return ctr
}

// checkCommand checks the binary and flag form and returns the flags by name.
func checkCommand(t *testing.T, ctx string, cmd []string, component string, hyperkube bool) map[string]string {
	t.Helper()
	prefix := []string{component}
	if hyperkube && component != "etcd" {
		prefix = []string{"/hyperkube", component}
	}
	if len(cmd) < len(prefix) || strings.Join(cmd[:len(prefix)], " ") != strings.Join(prefix, " ") {
		t.Errorf("%s: command starts %q, want %q", ctx, cmd, prefix)
		return nil
	}
	flags, err := parseFlags(cmd[len(prefix):])
	if err != nil {
		t.Errorf("%s: %v", ctx, err)
	}
	return flags
}

// parseFlags reads "--name=value" arguments, which must be sorted by name and unique.
func parseFlags(args []string) (map[string]string, error) {
	flags := map[string]string{}
	prev := ""
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok || name == "" {
			return flags, fmt.Errorf("argument %q is not --name=value", a)
		}
		if name <= prev {
			return flags, fmt.Errorf("flag --%s comes after --%s: flags must be sorted and unique", name, prev)
		}
		prev = name
		flags[name] = value
	}
	return flags, nil
}

// pathsCovered reports flag values that name a host path (absolute, possibly in a comma
// list) that no volume mount covers: the container would not see the file.
func pathsCovered(flags map[string]string, mounts []corev1.VolumeMount) error {
	var missing []string
	for name, value := range flags {
		for _, part := range strings.Split(value, ",") {
			if !strings.HasPrefix(part, "/") {
				continue
			}
			covered := false
			for _, m := range mounts {
				mp := strings.TrimSuffix(m.MountPath, "/")
				if part == mp || strings.HasPrefix(part, mp+"/") {
					covered = true
				}
			}
			if !covered {
				missing = append(missing, "--"+name+"="+part)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("paths not under any volume mount: %v", missing)
	}
	return nil
}

func TestPathsCovered(t *testing.T) {
	mounts := []corev1.VolumeMount{{MountPath: "/etc/kubernetes/pki"}, {MountPath: "/etc/kubernetes/scheduler.conf"}}
	tests := []struct {
		flags map[string]string
		ok    bool
	}{
		{map[string]string{"tls-cert-file": "/etc/kubernetes/pki/apiserver.crt"}, true},
		{map[string]string{"kubeconfig": "/etc/kubernetes/scheduler.conf"}, true},
		{map[string]string{"etcd-servers": "https://10.0.0.1:2379", "controllers": "*,bootstrapsigner"}, true},
		{map[string]string{"tls-cert-file": "/etc/kubernetes/pkix/apiserver.crt"}, false},
		{map[string]string{"kubeconfig": "/etc/kubernetes/controller-manager.conf"}, false},
		{map[string]string{"list": "/etc/kubernetes/pki/a,/var/lib/etcd"}, false},
	}
	for _, tt := range tests {
		if err := pathsCovered(tt.flags, mounts); (err == nil) != tt.ok {
			t.Errorf("pathsCovered(%v) = %v, want ok=%v", tt.flags, err, tt.ok)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--a=1", "--b=x=y", "--c="}, true},
		{[]string{"--b=1", "--a=2"}, false},
		{[]string{"--a=1", "--a=2"}, false},
		{[]string{"--a"}, false},
		{[]string{"-a=1"}, false},
	}
	for _, tt := range tests {
		if _, err := parseFlags(tt.args); (err == nil) != tt.ok {
			t.Errorf("parseFlags(%q) = %v, want ok=%v", tt.args, err, tt.ok)
		}
	}
}

func volume(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

func volumeNames(pod *corev1.Pod) string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		names = append(names, v.Name)
	}
	return strings.Join(names, " ")
}

// wantFlag checks a flag's presence and value.
func wantFlag(t *testing.T, ctx string, flags map[string]string, name, value string) {
	t.Helper()
	if got, ok := flags[name]; !ok || got != value {
		t.Errorf("%s: --%s=%q (present %v), want %q", ctx, name, got, ok, value)
	}
}

func noFlag(t *testing.T, ctx string, flags map[string]string, names ...string) {
	t.Helper()
	for _, name := range names {
		if v, ok := flags[name]; ok {
			t.Errorf("%s: unexpected --%s=%s", ctx, name, v)
		}
	}
}

// checkOSVolumes checks the trust-store mounts for the node OS: nothing that must be
// created under a read-only /usr.
func checkOSVolumes(t *testing.T, ctx string, o options, pod *corev1.Pod) {
	t.Helper()
	want := "etc-ca-certificates usr-share-ca-certificates"
	if o.os == model.OSFCOS {
		want = "etc-pki-ca-trust etc-pki-tls-certs"
	}
	for _, name := range strings.Fields(want) {
		v := volume(pod, name)
		if v == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("%s: trust volume %q missing or not DirectoryOrCreate (volumes %s)", ctx, name, volumeNames(pod))
		}
	}
	if v := volume(pod, "ca-certs"); v == nil || v.HostPath.Path != "/etc/ssl/certs" {
		t.Errorf("%s: ca-certs volume %+v", ctx, v)
	}
	if v := volume(pod, "k8s-certs"); v == nil || v.HostPath.Path != "/etc/kubernetes/pki" {
		t.Errorf("%s: k8s-certs volume %+v", ctx, v)
	}
	if o.os == model.OSFCOS || o.os == model.OSFlatcar {
		for _, v := range pod.Spec.Volumes {
			p := v.HostPath.Path
			if strings.HasPrefix(p, "/usr/") && !(o.os == model.OSFlatcar && p == "/usr/share/ca-certificates") {
				t.Errorf("%s: %s volume %q under read-only /usr", ctx, o.os, p)
			}
		}
	}
}

func checkAPIServer(t *testing.T, ctx string, o options, topo topology, sn specNode, pod *corev1.Pod, flags map[string]string) {
	t.Helper()
	ctr := pod.Spec.Containers[0]
	wantFlag(t, ctx, flags, "advertise-address", sn.addr)
	wantFlag(t, ctx, flags, "etcd-servers", topo.etcdServers)
	wantFlag(t, ctx, flags, "profiling", "false")
	wantFlag(t, ctx, flags, "secure-port", topo.securePort)
	wantFlag(t, ctx, flags, "service-cluster-ip-range", "10.96.0.0/12")
	wantFlag(t, ctx, flags, "allow-privileged", "true")
	wantFlag(t, ctx, flags, "kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname")
	wantFlag(t, ctx, flags, "etcd-cafile", "/etc/kubernetes/pki/etcd/ca.crt")
	wantFlag(t, ctx, flags, "service-account-key-file", "/etc/kubernetes/pki/sa.pub")
	wantFlag(t, ctx, flags, "service-account-signing-key-file", "/etc/kubernetes/pki/sa.key")
	wantFlag(t, ctx, flags, "requestheader-allowed-names", "front-proxy-client")
	domain := o.dnsDomain
	if domain == "" {
		domain = "cluster.local"
	}
	wantFlag(t, ctx, flags, "service-account-issuer", "https://kubernetes.default.svc."+domain)
	noFlag(t, ctx, flags, "enable-bootstrap-token-auth", "insecure-port", "bind-address", "authorization-config")
	// Kubelet serving certificates come from the cluster CA, so the API server verifies them.
	wantFlag(t, ctx, flags, "kubelet-certificate-authority", "/etc/kubernetes/pki/ca.crt")

	if o.credentials == "" || o.credentials == model.CredentialsPerNode {
		wantFlag(t, ctx, flags, "authorization-mode", "Node,RBAC")
		wantFlag(t, ctx, flags, "enable-admission-plugins", "NodeRestriction")
	} else {
		wantFlag(t, ctx, flags, "authorization-mode", "RBAC")
		noFlag(t, ctx, flags, "enable-admission-plugins")
	}

	tokens := volume(pod, "known-tokens")
	if o.staticTokens == nil || *o.staticTokens {
		wantFlag(t, ctx, flags, "token-auth-file", "/etc/kubernetes/known_tokens.csv")
		if tokens == nil || tokens.HostPath.Path != "/etc/kubernetes/known_tokens.csv" || *tokens.HostPath.Type != corev1.HostPathFile {
			t.Errorf("%s: known-tokens volume %+v", ctx, tokens)
		}
	} else {
		noFlag(t, ctx, flags, "token-auth-file")
		if tokens != nil {
			t.Errorf("%s: known-tokens volume without static tokens", ctx)
		}
	}
	checkOSVolumes(t, ctx, o, pod)

	if got := pod.Annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]; got != sn.addr+":"+topo.securePort || len(pod.Annotations) != 1 {
		t.Errorf("%s: annotations %v", ctx, pod.Annotations)
	}
	if fmt.Sprint(ctr.Ports[0].ContainerPort) != topo.securePort {
		t.Errorf("%s: probe port %d, want %s", ctx, ctr.Ports[0].ContainerPort, topo.securePort)
	}
	if ctr.LivenessProbe.HTTPGet.Host != sn.addr {
		t.Errorf("%s: probe host %q, want the advertise address", ctx, ctr.LivenessProbe.HTTPGet.Host)
	}
}

func checkControllerManager(t *testing.T, ctx string, o options, flexvolume bool, pod *corev1.Pod, flags map[string]string) {
	t.Helper()
	name := o.name
	if name == "" {
		name = "demo"
	}
	wantFlag(t, ctx, flags, "allocate-node-cidrs", "false")
	noFlag(t, ctx, flags, "cluster-cidr", "node-cidr-mask-size", "port", "address")
	wantFlag(t, ctx, flags, "cluster-name", name)
	wantFlag(t, ctx, flags, "bind-address", "127.0.0.1")
	wantFlag(t, ctx, flags, "controllers", "*,bootstrapsigner,tokencleaner")
	wantFlag(t, ctx, flags, "use-service-account-credentials", "true")
	wantFlag(t, ctx, flags, "leader-elect", "true")
	wantFlag(t, ctx, flags, "profiling", "false")
	for _, f := range []string{"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"} {
		wantFlag(t, ctx, flags, f, "/etc/kubernetes/controller-manager.conf")
	}
	wantFlag(t, ctx, flags, "cluster-signing-cert-file", "/etc/kubernetes/pki/ca.crt")
	wantFlag(t, ctx, flags, "cluster-signing-key-file", "/etc/kubernetes/pki/ca.key")
	wantFlag(t, ctx, flags, "root-ca-file", "/etc/kubernetes/pki/ca.crt")
	wantFlag(t, ctx, flags, "client-ca-file", "/etc/kubernetes/pki/ca.crt")
	wantFlag(t, ctx, flags, "requestheader-client-ca-file", "/etc/kubernetes/pki/front-proxy-ca.crt")
	wantFlag(t, ctx, flags, "service-account-private-key-file", "/etc/kubernetes/pki/sa.key")
	wantFlag(t, ctx, flags, "service-cluster-ip-range", "10.96.0.0/12")
	checkOSVolumes(t, ctx, o, pod)
	if v := volume(pod, "kubeconfig"); v == nil || v.HostPath.Path != "/etc/kubernetes/controller-manager.conf" || *v.HostPath.Type != corev1.HostPathFileOrCreate {
		t.Errorf("%s: kubeconfig volume %+v", ctx, v)
	}

	fv := volume(pod, "flexvolume-dir")
	switch {
	case !flexvolume:
		if fv != nil {
			t.Errorf("%s: flexvolume-dir mounted after 1.35", ctx)
		}
		noFlag(t, ctx, flags, "flex-volume-plugin-dir")
	case fv == nil:
		t.Errorf("%s: flexvolume-dir missing up to 1.35 (volumes %s)", ctx, volumeNames(pod))
	case o.os == "" || o.os == model.OSGeneric:
		if fv.HostPath.Path != "/usr/libexec/kubernetes/kubelet-plugins/volume/exec" {
			t.Errorf("%s: flexvolume-dir %s", ctx, fv.HostPath.Path)
		}
		noFlag(t, ctx, flags, "flex-volume-plugin-dir")
	default:
		wantFlag(t, ctx, flags, "flex-volume-plugin-dir", "/opt/libexec/kubernetes/kubelet-plugins/volume/exec")
		if fv.HostPath.Path != "/opt/libexec/kubernetes/kubelet-plugins/volume/exec" {
			t.Errorf("%s: flexvolume-dir %s on %s", ctx, fv.HostPath.Path, o.os)
		}
	}
	if len(pod.Annotations) != 0 {
		t.Errorf("%s: annotations %v", ctx, pod.Annotations)
	}
}

func checkScheduler(t *testing.T, ctx string, pod *corev1.Pod, flags map[string]string) {
	t.Helper()
	if got := volumeNames(pod); got != "kubeconfig" {
		t.Errorf("%s: volumes %s, want kubeconfig only", ctx, got)
	}
	if v := volume(pod, "kubeconfig"); v == nil || v.HostPath.Path != "/etc/kubernetes/scheduler.conf" {
		t.Errorf("%s: kubeconfig volume %+v", ctx, v)
	}
	if len(flags) != 6 || flags["profiling"] != "false" || flags["kubeconfig"] != "/etc/kubernetes/scheduler.conf" || flags["bind-address"] != "127.0.0.1" {
		t.Errorf("%s: flags %v", ctx, flags)
	}
	if len(pod.Annotations) != 0 {
		t.Errorf("%s: annotations %v", ctx, pod.Annotations)
	}
}

var tokenRE = regexp.MustCompile(`^demo-etcd-[0-9a-f]{8}$`)

func checkEtcd(t *testing.T, ctx string, topo topology, sn specNode, pod *corev1.Pod, flags map[string]string) {
	t.Helper()
	client := "https://" + sn.addr + ":2379"
	peer := "https://" + sn.addr + ":2380"
	want := map[string]string{
		"name":                           sn.name,
		"advertise-client-urls":          client,
		"listen-client-urls":             "https://127.0.0.1:2379," + client,
		"listen-peer-urls":               peer,
		"initial-advertise-peer-urls":    peer,
		"initial-cluster":                topo.initialCluster,
		"initial-cluster-state":          "new",
		"data-dir":                       "/var/lib/etcd",
		"cert-file":                      "/etc/kubernetes/pki/etcd/server.crt",
		"key-file":                       "/etc/kubernetes/pki/etcd/server.key",
		"trusted-ca-file":                "/etc/kubernetes/pki/etcd/ca.crt",
		"client-cert-auth":               "true",
		"peer-cert-file":                 "/etc/kubernetes/pki/etcd/peer.crt",
		"peer-key-file":                  "/etc/kubernetes/pki/etcd/peer.key",
		"peer-trusted-ca-file":           "/etc/kubernetes/pki/etcd/ca.crt",
		"peer-client-cert-auth":          "true",
		"snapshot-count":                 "10000",
		"listen-metrics-urls":            "http://127.0.0.1:2381",
		"feature-gates":                  "InitialCorruptCheck=true",
		"watch-progress-notify-interval": "5s",
	}
	for name, value := range want {
		wantFlag(t, ctx, flags, name, value)
	}
	if !tokenRE.MatchString(flags["initial-cluster-token"]) {
		t.Errorf("%s: --initial-cluster-token=%q", ctx, flags["initial-cluster-token"])
	}
	if len(flags) != len(want)+1 {
		t.Errorf("%s: %d flags, want %d: %v", ctx, len(flags), len(want)+1, flags)
	}
	for name := range flags {
		if strings.HasPrefix(name, "experimental-") {
			t.Errorf("%s: etcd 3.6 deprecates --%s", ctx, name)
		}
	}
	if got := volumeNames(pod); got != "etcd-certs etcd-data" {
		t.Errorf("%s: volumes %s", ctx, got)
	}
	if pod.Annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] != client || len(pod.Annotations) != 1 {
		t.Errorf("%s: annotations %v", ctx, pod.Annotations)
	}
	ctr := pod.Spec.Containers[0]
	if ctr.Ports[0].ContainerPort != 2381 || ctr.LivenessProbe.HTTPGet.Host != "127.0.0.1" {
		t.Errorf("%s: probe port %d host %s", ctx, ctr.Ports[0].ContainerPort, ctr.LivenessProbe.HTTPGet.Host)
	}
}

func TestInitialClusterToken(t *testing.T) {
	base := options{version: "v1.36.3", topology: stacked3}
	token := InitialClusterToken(resolve(t, base.spec()))

	// Spec order of the members must not matter.
	reordered := stacked3
	reordered.nodes = []specNode{stacked3.nodes[2], stacked3.nodes[3], stacked3.nodes[0], stacked3.nodes[1]}

	tests := []struct {
		name string
		o    options
		same bool
	}{
		{"same spec", base, true},
		{"members reordered", options{version: "v1.36.3", topology: reordered}, true},
		{"other version", options{version: "v1.34.4", topology: stacked3}, true},
		{"other cluster name", options{name: "prod", version: "v1.36.3", topology: stacked3}, false},
		{"other member set", options{version: "v1.36.3", topology: external3}, false},
	}
	for _, tt := range tests {
		got := InitialClusterToken(resolve(t, tt.o.spec()))
		if (got == token) != tt.same {
			t.Errorf("%s: token %q vs %q, want same=%v", tt.name, got, token, tt.same)
		}
	}
}

func TestAPIServerPort(t *testing.T) {
	tests := []struct {
		name     string
		topology topology
		want     int
	}{
		{"stacked-1", stacked1, 6443},
		{"stacked-3", stacked3, 6443},   // DNS name in front: the load balancer's port is not ours
		{"external-3", external3, 7443}, // the control plane's own address: the endpoint port is the listener
	}
	for _, tt := range tests {
		c := resolve(t, options{version: "v1.36.3", topology: tt.topology}.spec())
		if got := APIServerPort(c); got != tt.want {
			t.Errorf("%s: APIServerPort = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestNodeErrors(t *testing.T) {
	c := resolve(t, options{version: "v1.36.3", topology: stacked1}.spec())
	if files, err := Node(c, c.Node("worker-1")); err != nil || len(files) != 0 {
		t.Errorf("worker: %d files, err %v; want none", len(files), err)
	}
	if _, err := Node(c, nil); err == nil {
		t.Error("nil node: no error")
	}
	for _, component := range []string{model.ImageEtcd, model.ImageAPIServer, model.ImageControllerManager, model.ImageScheduler} {
		broken := *c
		broken.Images.Refs = map[string]string{}
		for k, v := range c.Images.Refs {
			if k != component {
				broken.Images.Refs[k] = v
			}
		}
		_, err := Node(&broken, broken.Node("cp-1"))
		if err == nil || !strings.Contains(err.Error(), component) || strings.Contains(err.Error(), "cp-1") {
			t.Errorf("missing %s image: err %v, want one naming the component (the plan adds the node)", component, err)
		}
	}
}

var inputsRE = regexp.MustCompile(`^sha256:[0-9a-f]{32}$`)
