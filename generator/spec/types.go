// Package spec holds the versioned cluster spec (apiVersion scratchgen.dev/v1alpha1,
// kind Cluster) exactly as users write it, and its strict parser. Types here are frozen
// once released: generators never read them, only the resolved model.
package spec

// APIVersion and Kind identify the only spec version so far.
const (
	APIVersion = "scratchgen.dev/v1alpha1"
	Kind       = "Cluster"
)

// Cluster is the whole spec file.
type Cluster struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   Metadata    `json:"metadata"`
	Spec       ClusterSpec `json:"spec"`
}

// Metadata names the cluster.
type Metadata struct {
	// Name is CLUSTER_NAME: a DNS-1123 label used for the bundle directory and in kubeconfigs.
	Name string `json:"name"`
}

// ClusterSpec is the cluster's description.
type ClusterSpec struct {
	// KubernetesVersion is a release such as v1.36.3 of a supported minor.
	KubernetesVersion string `json:"kubernetesVersion"`
	// ControlPlaneEndpoint is MASTER_IP, or a DNS name or load-balancer address, with an optional :port (default 6443).
	ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
	// Network describes pod and service addressing and the pod network.
	Network Network `json:"network"`
	// Nodes lists every machine, in the order bundles and routes are rendered.
	Nodes []Node `json:"nodes"`
	// PKI sets certificate lifetimes.
	PKI PKI `json:"pki,omitempty"`
	// Auth chooses the credential layout.
	Auth Auth `json:"auth,omitempty"`
	// Images chooses and overrides container images.
	Images Images `json:"images,omitempty"`
	// Provisioning chooses node OS defaults and whether secrets go into user-data.
	Provisioning Provisioning `json:"provisioning,omitempty"`
	// Binaries names the node binaries (kubelet, kube-proxy and any extra) and how they
	// reach the node.
	Binaries Binaries `json:"binaries,omitempty"`
}

// Network is the cluster's addressing.
type Network struct {
	// PodCIDR is the cluster-wide pod range: one range (single-stack IPv4 or IPv6) or two
	// separated by a comma, an IPv4 and an IPv6 one (dual-stack; the first is the primary
	// family), e.g. "10.10.0.0/16,fd00:10::/56".
	PodCIDR string `json:"podCIDR"`
	// NodePodCIDRMaskSize is the prefix length of each node's IPv4 pod range (default 24).
	NodePodCIDRMaskSize *int `json:"nodePodCIDRMaskSize,omitempty"`
	// NodePodCIDRMaskSizeIPv6 is the prefix length of each node's IPv6 pod range (default 64).
	NodePodCIDRMaskSizeIPv6 *int `json:"nodePodCIDRMaskSizeIPv6,omitempty"`
	// ServiceCIDR is SERVICE_CLUSTER_IP_RANGE: one range per family of PodCIDR, in its
	// order (default 10.96.0.0/12 for an IPv4 cluster; required otherwise).
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// DNSDomain is the cluster DNS domain (default cluster.local).
	DNSDomain string `json:"dnsDomain,omitempty"`
	// Mode is "routed" (default: bridge cbr0 and static routes) or "none" (bring your own CNI).
	Mode string `json:"mode,omitempty"`
	// MTU of the pod network (default 1500).
	MTU *int `json:"mtu,omitempty"`
	// Masquerade NATs traffic leaving PodCIDR (default true).
	Masquerade *bool `json:"masquerade,omitempty"`
	// ProxyMode is kube-proxy's mode: "iptables" (default) or "nftables".
	ProxyMode string `json:"proxyMode,omitempty"`
}

// Node is one machine.
type Node struct {
	// Name is the node name (DNS-1123 subdomain), also the Kubernetes Node object name.
	Name string `json:"name"`
	// Address is the node's IP, used as its --node-ip, advertise address and route next
	// hop: one per family of the cluster's podCIDR, in its order, separated by a comma
	// for dual-stack (e.g. "10.0.0.21,fd00::21").
	Address string `json:"address"`
	// Roles is a set of control-plane, etcd and worker.
	Roles []string `json:"roles"`
	// PodCIDR pins the node's pod range (one per cluster family, comma-separated, in
	// the cluster's order); otherwise one is allocated and kept in the lock.
	PodCIDR string `json:"podCIDR,omitempty"`
	// OS overrides provisioning.os for this node: flatcar, fcos or generic.
	OS string `json:"os,omitempty"`
	// KubernetesVersion pins this node's kubelet and kube-proxy to an older release than
	// the control plane's (never newer), e.g. to upgrade workers later than the control
	// plane.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
}

// PKI sets certificate lifetimes (Go durations, e.g. 8760h).
type PKI struct {
	// CAValidity is the lifetime of the three CAs (default 87600h, ten years).
	CAValidity string `json:"caValidity,omitempty"`
	// CertValidity is the lifetime of every leaf certificate (default 8760h, one year).
	CertValidity string `json:"certValidity,omitempty"`
	// ExpiryWarning is how long before a certificate expires each node's watchdog warns
	// (default 30d).
	ExpiryWarning string `json:"expiryWarning,omitempty"`
	// MetricsDir is where each node's watchdog writes its node-exporter textfile metrics
	// (default /var/lib/node_exporter/textfile_collector).
	MetricsDir string `json:"metricsDir,omitempty"`
}

// Auth chooses how components authenticate.
type Auth struct {
	// Credentials is perNode (default), perRole or shared: the guide's three layouts.
	Credentials string `json:"credentials,omitempty"`
	// StaticTokens renders known_tokens.csv and tokens in kubeconfigs (default true).
	StaticTokens *bool `json:"staticTokens,omitempty"`
}

// Images chooses container images.
type Images struct {
	// Style is components (default: one image per component) or hyperkube.
	Style string `json:"style,omitempty"`
	// Registry replaces registry.k8s.io in every default image (a mirror prefix).
	Registry string `json:"registry,omitempty"`
	// Hyperkube is the all-in-one image for style hyperkube (required for 1.19+).
	Hyperkube string `json:"hyperkube,omitempty"`
	// Etcd overrides the etcd image.
	Etcd string `json:"etcd,omitempty"`
	// Overrides maps a component (kube-apiserver, kube-controller-manager, kube-scheduler,
	// kube-proxy, pause, coredns) to an image reference.
	Overrides map[string]string `json:"overrides,omitempty"`
	// RequirePinned makes render fail when the lock does not pin an image by digest.
	RequirePinned bool `json:"requirePinned,omitempty"`
	// Embed saves each node's images into its bundle.
	Embed bool `json:"embed,omitempty"`
}

// Binaries names the node binaries by download URL. Pinned in the lock (`scratchgen
// binaries pin`), they are carried in rootfs/ (embed) or fetched and verified on the node.
type Binaries struct {
	// URL is the download URL template of kubelet and kube-proxy, with {version}, {arch}
	// and {name} (default https://dl.k8s.io/release/{version}/bin/linux/{arch}/{name}).
	URL string `json:"url,omitempty"`
	// Arch is the nodes' architecture: amd64 (default) or arm64.
	Arch string `json:"arch,omitempty"`
	// Extra are further downloads every node gets: a single file (install) or a release
	// archive, .tar.gz or .tgz (extract).
	Extra []ExtraBinary `json:"extra,omitempty"`
	// Embed carries the pinned binaries in each node's rootfs/ (as render --with-binaries).
	Embed bool `json:"embed,omitempty"`
	// RequirePinned makes render fail when the lock does not pin every binary.
	RequirePinned bool `json:"requirePinned,omitempty"`
}

// ExtraBinary is one further download.
type ExtraBinary struct {
	// Name identifies it (e.g. runc, cni-plugins).
	Name string `json:"name"`
	// URL is its download URL template, with {arch}.
	URL string `json:"url"`
	// Install is the node path of a single-file download (mode 0755).
	Install string `json:"install,omitempty"`
	// Extract maps members of a release archive (paths inside it) to node paths (mode 0755).
	Extract map[string]string `json:"extract,omitempty"`
}

// Provisioning chooses the node OS and what goes into Ignition and cloud-init.
type Provisioning struct {
	// OS is the default node OS: generic (default), flatcar or fcos.
	OS string `json:"os,omitempty"`
	// EmbedSecrets puts private keys and tokens into Ignition and cloud-init (default false).
	EmbedSecrets bool `json:"embedSecrets,omitempty"`
}
