// Package staticpods renders the control-plane static pod manifests kubelet runs from
// paths.ManifestsDir: etcd on etcd members; kube-apiserver, kube-controller-manager and
// kube-scheduler on control-plane nodes.
//
// The manifests follow kubeadm 1.34–1.36 (cmd/kubeadm/app/phases/controlplane/manifests.go and phases/etcd/local.go of each minor) where
// scratchgen has no reason to differ, and are built from k8s.io/api core/v1 Pod types, then
// serialized with sigs.k8s.io/yaml (sorted keys) after dropping the empty
// creationTimestamp and status that a Go Pod value always carries. Flags are `--name=value`,
// sorted by name. Nothing is read from the environment or the host: the same model gives
// the same bytes.
package staticpods

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/kyaml"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// builtin is the component table the steps read their manifest paths and image keys from.
var builtin = component.Default()

// The plan steps, one per static pod component: each renders its manifest on the nodes
// the component table says run it, at the table's manifest path (mode
// bundle.ModePublic).
var (
	Etcd              = step(component.Etcd, etcdPod)
	APIServer         = step(component.APIServer, apiServerPod)
	ControllerManager = step(component.ControllerManager, controllerManagerPod)
	Scheduler         = step(component.Scheduler, schedulerPod)
)

// Steps are the static pod steps in plan order.
var Steps = []func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error{Etcd, APIServer, ControllerManager, Scheduler}

// step returns the plan step rendering component name's manifest with build.
func step(name string, build func(*model.Cluster, *model.Node, *component.Component) (*corev1.Pod, error)) func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error {
	co, ok := builtin.Lookup(name)
	if !ok || co.Kind != component.StaticPod {
		panic("staticpods: " + name + " is not a static pod component of the table")
	}
	return func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		if c == nil || n == nil {
			return fmt.Errorf("rendering static pods: cluster and node are required")
		}
		if !co.Runs(c, n) {
			return nil
		}
		if err := checkAddresses(c, n); err != nil {
			return err
		}
		pod, err := build(c, n, co)
		if err != nil {
			return fmt.Errorf("rendering %s: %w", co.Manifest, err)
		}
		digest, pending := inputsDigest(co, b.Files())
		if pending != "" {
			// A review without the root secret: an input would be re-issued, so the
			// manifest changes too, to what only a render can tell.
			b.Add(bundle.File{Path: co.Manifest, Mode: bundle.ModePublic, Pending: "would change: " + pending})
			return nil
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AnnotationInputs] = digest
		data, err := kyaml.Marshal(pod)
		if err != nil {
			return fmt.Errorf("serializing %s: %w", co.Manifest, err)
		}
		b.Public(co.Manifest, data)
		return nil
	}
}

// AnnotationInputs is the static pod annotation holding the digest of the files the
// component reads (the component table's Reads, besides the manifest): when a delivery
// changes any of them (a renewed certificate, a CA rotation's trust file), the manifest
// changes with it and the kubelet restarts the pod, so what is delivered takes effect
// without a manual restart. Deliver control planes one at a time (diff's rollout).
const AnnotationInputs = "scratchgen.dev/inputs"

// inputsDigest digests the files among files that co reads: each one's path and
// content digest, or its Version for a secret file (the same with and without the
// root secret). pending says which input is not known (a review in which it would be
// re-issued).
func inputsDigest(co *component.Component, files []bundle.File) (digest, pending string) {
	var in []bundle.File
	for _, f := range files {
		if _, ok := co.ReadsPath(f.Path); ok && f.Path != co.Manifest {
			in = append(in, f)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Path < in[j].Path })
	h := sha256.New()
	for _, f := range in {
		v := f.Version
		if v == "" {
			if f.Pending != "" {
				return "", f.Path + " " + strings.TrimPrefix(f.Pending, "would be ")
			}
			sum := sha256.Sum256(f.Data)
			v = "sha256:" + hex.EncodeToString(sum[:])
		}
		fmt.Fprintf(h, "%s\x00%s\n", f.Path, v)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32], ""
}

// checkAddresses refuses a node the manifests cannot be rendered for.
func checkAddresses(c *model.Cluster, n *model.Node) error {
	if !n.Address.IsValid() {
		return fmt.Errorf("node %q has no address", n.Name)
	}
	members := c.EtcdMembers()
	if len(members) == 0 {
		return fmt.Errorf("the cluster has no etcd member")
	}
	for _, m := range members {
		if !m.Address.IsValid() {
			return fmt.Errorf("etcd member %q has no address", m.Name)
		}
	}
	return nil
}

// Node returns the static pod manifests of one node (empty for a node that is neither
// control-plane nor etcd), sorted by path: what the steps add to it.
func Node(c *model.Cluster, n *model.Node) ([]bundle.File, error) {
	if c == nil || n == nil {
		return nil, fmt.Errorf("rendering static pods: cluster and node are required")
	}
	b := bundle.NewNodeBuilder(n.Name)
	for _, s := range Steps {
		if err := s(c, n, b); err != nil {
			return nil, err
		}
	}
	node, err := b.Finish()
	return node.Rootfs, err
}

// APIServerPort is the port kube-apiserver listens on (--secure-port); see
// model.Cluster.APIServerPort.
func APIServerPort(c *model.Cluster) int { return c.APIServerPort() }

// Host paths scratchgen's paths table does not hold: they belong to the node's OS, not to
// scratchgen's layout.
const (
	// sslCertsDir is the system trust store kubeadm mounts as ca-certs.
	sslCertsDir = "/etc/ssl/certs"
	// flexVolumeDir is kubeadm's (and the kubelet's) default flexvolume plugin directory.
	flexVolumeDir = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
	// flexVolumeDirReadOnlyUsr replaces it where /usr is read-only (Flatcar, Fedora
	// CoreOS): DirectoryOrCreate on a missing directory under a read-only /usr fails the
	// pod. This is the directory Flatcar's kubeadm guide passes as --flex-volume-plugin-dir.
	flexVolumeDirReadOnlyUsr = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec"
)

// Names and values shared by the pods.
const (
	namespace         = "kube-system"
	tier              = "control-plane"
	priorityClassName = "system-node-critical"
	priority          = int32(2000001000)
	probePort         = "probe-port"
	localhost         = "127.0.0.1"

	annotationAPIServerEndpoint = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
	annotationEtcdClientURLs    = "kubeadm.kubernetes.io/etcd.advertise-client-urls"

	// startupFailureThreshold is kubeadm's ceil(4m health-check timeout / 10s period).
	startupFailureThreshold = 24
)

// caTrustDirs are the directories /etc/ssl/certs may link into. kubeadm mounts each only
// if it exists on the host; a renderer cannot look, so scratchgen decides per node OS and
// mounts them DirectoryOrCreate. That is harmless where the directory already exists or
// its parent is writable, but fails the pod where it is missing under a read-only /usr.
//   - generic (Debian-like, RHEL-like and the rest): /etc/ca-certificates and
//     /usr/share/ca-certificates; /usr is writable, so creating them is harmless.
//   - flatcar: /etc/ssl/certs links into /usr/share/ca-certificates, which ships with the
//     read-only /usr; /etc is writable.
//   - fcos: /etc/ssl/certs is a link to /etc/pki/tls/certs, whose bundle links into
//     /etc/pki/ca-trust; /usr/share/ca-certificates does not exist and /usr is read-only,
//     so it must not be mounted.
func caTrustDirs(os string) []string {
	if os == model.OSFCOS {
		return []string{"/etc/pki/ca-trust", "/etc/pki/tls/certs"}
	}
	return []string{"/etc/ca-certificates", "/usr/share/ca-certificates"}
}

// volumeName is kubeadm's name for an extra trust directory: the path with '/' replaced by
// '-' and the leading '-' dropped.
func volumeName(dir string) string { return strings.ReplaceAll(dir, "/", "-")[1:] }

// apiServerPod is kube-apiserver (kubeadm getAPIServerCommand).
func apiServerPod(c *model.Cluster, n *model.Node, co *component.Component) (*corev1.Pod, error) {
	image, err := imageRef(c, co.Image)
	if err != nil {
		return nil, err
	}
	port := APIServerPort(c)
	adv := n.Address.String()
	a := args{
		"advertise-address": adv,
		"allow-privileged":  "true",
		"client-ca-file":    paths.CACert,
		"etcd-cafile":       paths.EtcdCACert,
		"etcd-certfile":     paths.APIServerEtcdClientCert,
		"etcd-keyfile":      paths.APIServerEtcdClientKey,
		"etcd-servers":      etcdServers(c),
		// scratchgen issues every kubelet's serving certificate from the cluster CA (kubeadm's
		// are self-signed, so kubeadm cannot set this): the API server verifies the kubelets
		// it talks to for logs, exec and port-forward instead of trusting any certificate.
		"kubelet-certificate-authority":   paths.CACert,
		"kubelet-client-certificate":      paths.APIServerKubeletClientCert,
		"kubelet-client-key":              paths.APIServerKubeletClientKey,
		"kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
		// Off, as the CIS Kubernetes Benchmark asks: the profiling endpoints
		// expose internals and nobody needs them on a production API server.
		"profiling":                          "false",
		"proxy-client-cert-file":             paths.FrontProxyClientCert,
		"proxy-client-key-file":              paths.FrontProxyClientKey,
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-client-ca-file":       paths.FrontProxyCACert,
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(port),
		"service-account-issuer":             "https://kubernetes.default.svc." + c.DNSDomain,
		"service-account-key-file":           paths.SAPub,
		"service-account-signing-key-file":   paths.SAKey,
		"service-cluster-ip-range":           model.JoinPrefixes(c.ServiceCIDRs),
		"tls-cert-file":                      paths.APIServerCert,
		"tls-private-key-file":               paths.APIServerKey,
		// No --enable-bootstrap-token-auth: scratchgen issues every credential itself and
		// renders no bootstrap tokens.
	}
	// The Node authorizer and NodeRestriction need one identity per kubelet
	// (system:node:<name>). With perRole or shared credentials kubelets cannot be told
	// apart and the Node authorizer would deny them, so RBAC alone decides.
	if c.Credentials == model.CredentialsPerNode {
		a["authorization-mode"] = "Node,RBAC"
		a["enable-admission-plugins"] = "NodeRestriction"
	} else {
		a["authorization-mode"] = "RBAC"
	}

	var m mounts
	m.add("k8s-certs", paths.PKIDir, corev1.HostPathDirectoryOrCreate, true)
	m.add("ca-certs", sslCertsDir, corev1.HostPathDirectoryOrCreate, true)
	for _, d := range caTrustDirs(n.OS) {
		m.add(volumeName(d), d, corev1.HostPathDirectoryOrCreate, true)
	}
	if c.StaticTokens {
		a["token-auth-file"] = paths.KnownTokens
		// A File (not FileOrCreate): scratchgen renders it, and an empty file the kubelet
		// created would silently disable every token.
		m.add("known-tokens", paths.KnownTokens, corev1.HostPathFile, true)
	}

	ctr := corev1.Container{
		Name:           co.Name,
		Image:          image,
		Command:        command(c, co.Name, a),
		Ports:          probePorts(int32(port)),
		LivenessProbe:  livenessProbe(adv, "/livez", corev1.URISchemeHTTPS),
		ReadinessProbe: readinessProbe(adv, "/readyz", corev1.URISchemeHTTPS),
		StartupProbe:   startupProbe(adv, "/livez", corev1.URISchemeHTTPS),
		Resources:      cpuRequest("250m"),
	}
	annotations := map[string]string{annotationAPIServerEndpoint: net.JoinHostPort(adv, strconv.Itoa(port))}
	return componentPod(ctr, m, annotations), nil
}

// controllerManagerPod is kube-controller-manager (kubeadm getControllerManagerCommand).
//
// Node pod ranges: scratchgen assigns every node's range itself and renders routes and
// the CNI host-local IPAM configuration from it. The kubelet cannot set its own
// spec.podCIDR (NodeRestriction forbids it), so if the controller manager allocated, Node
// objects would carry ranges that disagree with the routes and the bridge. Allocation is
// therefore off (--allocate-node-cidrs=false, explicit for the reader) and --cluster-cidr
// and --node-cidr-mask-size are omitted: only the node IPAM controller reads them, and
// only when allocating. --service-cluster-ip-range is kept as kubeadm writes it; it too is
// read only by the node IPAM controller, so it is inert here.
func controllerManagerPod(c *model.Cluster, n *model.Node, co *component.Component) (*corev1.Pod, error) {
	image, err := imageRef(c, co.Image)
	if err != nil {
		return nil, err
	}
	a := args{
		"allocate-node-cidrs":              "false",
		"authentication-kubeconfig":        paths.ControllerManagerConf,
		"authorization-kubeconfig":         paths.ControllerManagerConf,
		"bind-address":                     localhost,
		"client-ca-file":                   paths.CACert,
		"cluster-name":                     c.Name,
		"cluster-signing-cert-file":        paths.CACert,
		"cluster-signing-key-file":         paths.CAKey,
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		"kubeconfig":                       paths.ControllerManagerConf,
		"leader-elect":                     "true",
		"profiling":                        "false", // CIS 1.3.2
		"requestheader-client-ca-file":     paths.FrontProxyCACert,
		"root-ca-file":                     paths.CACert,
		"service-account-private-key-file": paths.SAKey,
		"service-cluster-ip-range":         model.JoinPrefixes(c.ServiceCIDRs),
		"use-service-account-credentials":  "true",
	}
	if c.RotationStage("ca") > 0 {
		// ca.crt holds the old and the new CA while the cluster CA rotates; the signer
		// takes exactly one certificate ("expected 1 certificate, found 2").
		a["cluster-signing-cert-file"] = paths.CASignerCert
		a["cluster-signing-key-file"] = paths.CASignerKey
	}

	var m mounts
	m.add("k8s-certs", paths.PKIDir, corev1.HostPathDirectoryOrCreate, true)
	m.add("ca-certs", sslCertsDir, corev1.HostPathDirectoryOrCreate, true)
	for _, d := range caTrustDirs(n.OS) {
		m.add(volumeName(d), d, corev1.HostPathDirectoryOrCreate, true)
	}
	m.add("kubeconfig", paths.ControllerManagerConf, corev1.HostPathFileOrCreate, true)
	if c.Profile.KCMFlexVolumeMount {
		// Read-write: flexvolume drivers talk to their backends over sockets in it.
		dir := flexVolumeDir
		if n.OS != model.OSGeneric {
			dir = flexVolumeDirReadOnlyUsr
			a["flex-volume-plugin-dir"] = dir
		}
		m.add("flexvolume-dir", dir, corev1.HostPathDirectoryOrCreate, false)
	}

	ctr := corev1.Container{
		Name:          co.Name,
		Image:         image,
		Command:       command(c, co.Name, a),
		Ports:         probePorts(paths.ControllerManagerPort),
		LivenessProbe: livenessProbe(localhost, "/healthz", corev1.URISchemeHTTPS),
		StartupProbe:  startupProbe(localhost, "/healthz", corev1.URISchemeHTTPS),
		Resources:     cpuRequest("200m"),
	}
	return componentPod(ctr, m, nil), nil
}

// schedulerPod is kube-scheduler (kubeadm getSchedulerCommand).
func schedulerPod(c *model.Cluster, _ *model.Node, co *component.Component) (*corev1.Pod, error) {
	image, err := imageRef(c, co.Image)
	if err != nil {
		return nil, err
	}
	a := args{
		"authentication-kubeconfig": paths.SchedulerConf,
		"authorization-kubeconfig":  paths.SchedulerConf,
		"bind-address":              localhost,
		"kubeconfig":                paths.SchedulerConf,
		"leader-elect":              "true",
		"profiling":                 "false", // CIS 1.4.1
	}
	var m mounts
	m.add("kubeconfig", paths.SchedulerConf, corev1.HostPathFileOrCreate, true)
	ctr := corev1.Container{
		Name:           co.Name,
		Image:          image,
		Command:        command(c, co.Name, a),
		Ports:          probePorts(paths.SchedulerPort),
		LivenessProbe:  livenessProbe(localhost, "/livez", corev1.URISchemeHTTPS),
		ReadinessProbe: readinessProbe(localhost, "/readyz", corev1.URISchemeHTTPS),
		StartupProbe:   startupProbe(localhost, "/livez", corev1.URISchemeHTTPS),
		Resources:      cpuRequest("100m"),
	}
	return componentPod(ctr, m, nil), nil
}

// etcdPod is one etcd member (kubeadm getEtcdCommand, etcd 3.6 flag forms). The members of
// the first render bootstrap together (--initial-cluster-state=new, the full member list);
// a member added to the running cluster later joins it (state "existing", the members at
// that time plus itself), after `etcdctl member add` (scratchgen plan). The lock keeps
// each member's flags, so re-renders never change them.
func etcdPod(c *model.Cluster, n *model.Node, co *component.Component) (*corev1.Pod, error) {
	image, err := imageRef(c, co.Image)
	if err != nil {
		return nil, err
	}
	clientURL := etcdClientURL(n.Address)
	peerURL := etcdPeerURL(n.Address)
	a := args{
		"advertise-client-urls":          clientURL,
		"cert-file":                      paths.EtcdServerCert,
		"client-cert-auth":               "true",
		"data-dir":                       paths.EtcdDataDir,
		"feature-gates":                  "InitialCorruptCheck=true",
		"initial-advertise-peer-urls":    peerURL,
		"initial-cluster":                n.EtcdInitialCluster,
		"initial-cluster-state":          n.EtcdState,
		"initial-cluster-token":          InitialClusterToken(c),
		"key-file":                       paths.EtcdServerKey,
		"listen-client-urls":             etcdClientURL(netip.MustParseAddr(localhost)) + "," + clientURL,
		"listen-metrics-urls":            "http://" + localhost + ":" + strconv.Itoa(paths.EtcdMetricsPort),
		"listen-peer-urls":               peerURL,
		"name":                           n.Name,
		"peer-cert-file":                 paths.EtcdPeerCert,
		"peer-client-cert-auth":          "true",
		"peer-key-file":                  paths.EtcdPeerKey,
		"peer-trusted-ca-file":           paths.EtcdCACert,
		"snapshot-count":                 "10000",
		"trusted-ca-file":                paths.EtcdCACert,
		"watch-progress-notify-interval": "5s",
	}
	var m mounts
	m.add("etcd-certs", paths.EtcdPKIDir, corev1.HostPathDirectoryOrCreate, false)
	m.add("etcd-data", paths.EtcdDataDir, corev1.HostPathDirectoryOrCreate, false)
	ctr := corev1.Container{
		Name:           co.Name,
		Image:          image,
		Command:        append([]string{"etcd"}, a.flags()...),
		Ports:          probePorts(paths.EtcdMetricsPort),
		LivenessProbe:  livenessProbe(localhost, "/livez", corev1.URISchemeHTTP),
		ReadinessProbe: readinessProbe(localhost, "/readyz", corev1.URISchemeHTTP),
		StartupProbe:   startupProbe(localhost, "/readyz", corev1.URISchemeHTTP),
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("100Mi"),
		}},
	}
	return componentPod(ctr, m, map[string]string{annotationEtcdClientURLs: clientURL}), nil
}

// InitialClusterToken is etcd's --initial-cluster-token: the one the cluster bootstrapped
// with, which the lock keeps ("<cluster>-etcd-" and 8 hex digits of SHA-256 over the first
// members' names, sorted: the same on every member, independent of spec order, different
// between clusters, so members of two clusters never join each other by mistake). etcd
// reads it only when bootstrapping an empty data directory.
func InitialClusterToken(c *model.Cluster) string { return c.EtcdToken }

// etcdServers lists every etcd member's client URL in spec order: local or external
// topology alike, and every member for HA.
func etcdServers(c *model.Cluster) string {
	var urls []string
	for _, m := range c.EtcdMembers() {
		urls = append(urls, etcdClientURL(m.Address))
	}
	return strings.Join(urls, ",")
}

func etcdClientURL(a netip.Addr) string {
	return "https://" + netip.AddrPortFrom(a, paths.EtcdClientPort).String()
}

func etcdPeerURL(a netip.Addr) string {
	return "https://" + netip.AddrPortFrom(a, paths.EtcdPeerPort).String()
}

// imageRef is the rendered reference of an image key.
func imageRef(c *model.Cluster, key string) (string, error) {
	ref := c.Images.Refs[key]
	if ref == "" {
		return "", fmt.Errorf("no image reference resolved for %s", key)
	}
	return ref, nil
}

// args are a component's flags by name (without "--").
type args map[string]string

// flags returns "--name=value" sorted by name, as kubeadm's ArgumentsToCommand does.
func (a args) flags() []string {
	names := make([]string, 0, len(a))
	for k := range a {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, k := range names {
		out[i] = "--" + k + "=" + a[k]
	}
	return out
}

// command is a Kubernetes component's command line. The hyperkube style runs it through
// the image's /hyperkube wrapper, which (1.17+) accepts only the long component names.
func command(c *model.Cluster, binary string, a args) []string {
	if c.Images.Style == model.StyleHyperkube {
		return append([]string{"/hyperkube", binary}, a.flags()...)
	}
	return append([]string{binary}, a.flags()...)
}

// mounts collects hostPath volumes, each mounted at its host path.
type mounts struct {
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
}

func (m *mounts) add(name, path string, typ corev1.HostPathType, readOnly bool) {
	m.volumes = append(m.volumes, corev1.Volume{
		Name:         name,
		VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &typ}},
	})
	m.mounts = append(m.mounts, corev1.VolumeMount{Name: name, MountPath: path, ReadOnly: readOnly})
}

// componentPod is kubeadm's ComponentPod skeleton (staticpod.ComponentPod): volumes and mounts sorted by name.
func componentPod(ctr corev1.Container, m mounts, annotations map[string]string) *corev1.Pod {
	sort.Slice(m.volumes, func(i, j int) bool { return m.volumes[i].Name < m.volumes[j].Name })
	sort.Slice(m.mounts, func(i, j int) bool { return m.mounts[i].Name < m.mounts[j].Name })
	ctr.ImagePullPolicy = corev1.PullIfNotPresent
	ctr.VolumeMounts = m.mounts
	p := priority
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ctr.Name,
			Namespace:   namespace,
			Labels:      map[string]string{"component": ctr.Name, "tier": tier},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			Containers:        []corev1.Container{ctr},
			HostNetwork:       true,
			Priority:          &p,
			PriorityClassName: priorityClassName,
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: m.volumes,
		},
	}
}

// probePorts declares the named port the probes use (kubeadm 1.34+).
func probePorts(port int32) []corev1.ContainerPort {
	return []corev1.ContainerPort{{Name: probePort, ContainerPort: port, Protocol: corev1.ProtocolTCP}}
}

func livenessProbe(host, path string, scheme corev1.URIScheme) *corev1.Probe {
	return httpProbe(host, path, scheme, 10, 15, 8, 10)
}

func readinessProbe(host, path string, scheme corev1.URIScheme) *corev1.Probe {
	return httpProbe(host, path, scheme, 0, 15, 3, 1)
}

func startupProbe(host, path string, scheme corev1.URIScheme) *corev1.Probe {
	return httpProbe(host, path, scheme, 10, 15, startupFailureThreshold, 10)
}

func httpProbe(host, path string, scheme corev1.URIScheme, initialDelay, timeout, failureThreshold, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host: host, Path: path, Port: intstr.FromString(probePort), Scheme: scheme,
		}},
		InitialDelaySeconds: initialDelay,
		TimeoutSeconds:      timeout,
		FailureThreshold:    failureThreshold,
		PeriodSeconds:       period,
	}
}

func cpuRequest(cpu string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
}
