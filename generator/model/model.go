// Package model is the resolved, validated cluster: every value the generators need,
// derived once from the spec and the lock (roles, pod range per node, bridge address,
// routes, service and DNS IPs, etcd members, the version profile). Generators read a
// Model only, never the raw spec, and never mutate it.
package model

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/versions"
)

// Role is a node role.
type Role string

// The three roles.
const (
	RoleControlPlane Role = "control-plane"
	RoleEtcd         Role = "etcd"
	RoleWorker       Role = "worker"
)

// Network modes.
const (
	NetworkRouted = "routed"
	NetworkNone   = "none"
)

// Credential layouts (the guide's three).
const (
	CredentialsPerNode = "perNode"
	CredentialsPerRole = "perRole"
	CredentialsShared  = "shared"
)

// Node operating systems.
const (
	OSGeneric = "generic"
	OSFlatcar = "flatcar"
	OSFCOS    = "fcos"
)

// Image styles.
const (
	StyleComponents = "components"
	StyleHyperkube  = "hyperkube"
)

// Cluster is the resolved cluster.
type Cluster struct {
	// Name is CLUSTER_NAME.
	Name string
	// Version is the exact Kubernetes release; Profile its minor's facts.
	Version versions.Version
	Profile versions.Profile
	// Endpoint is where kubelets, kube-proxy and admin reach the API.
	Endpoint Endpoint
	// PodCIDRs are the cluster pod ranges, one per IP family, the primary family first
	// (one range: single-stack IPv4 or IPv6; two: dual-stack); PodCIDR is the first.
	// Every per-family list of the cluster and its nodes has the same families in the
	// same order.
	PodCIDRs []netip.Prefix
	PodCIDR  netip.Prefix
	// NodeMaskSize and NodeMaskSizeIPv6 are the prefix lengths of a node's IPv4 and IPv6
	// pod ranges (see NodeMask).
	NodeMaskSize, NodeMaskSizeIPv6 int
	// ServiceCIDRs are the service ranges (the pod ranges' families, in order);
	// APIServiceIPs their first addresses (the kubernetes Service), DNSIPs their tenth
	// (cluster DNS). ServiceCIDR, APIServiceIP and DNSIP are the primary family's.
	ServiceCIDRs  []netip.Prefix
	APIServiceIPs []netip.Addr
	DNSIPs        []netip.Addr
	ServiceCIDR   netip.Prefix
	APIServiceIP  netip.Addr
	DNSIP         netip.Addr
	DNSDomain     string
	// NetworkMode is NetworkRouted or NetworkNone.
	NetworkMode string
	MTU         int
	Masquerade  bool
	// ProxyMode is "iptables" or "nftables".
	ProxyMode string
	// Nodes are in spec order.
	Nodes []*Node
	// PKI lifetimes.
	CAValidity, CertValidity time.Duration
	// ExpiryWarning is the certificate watchdog's warning window; MetricsDir where it
	// writes its textfile metrics.
	ExpiryWarning time.Duration
	MetricsDir    string
	// Credentials is one of the Credentials* layouts; StaticTokens renders known_tokens.csv.
	Credentials  string
	StaticTokens bool
	// Images are the resolved references (before digest pinning) and options.
	Images Images
	// EmbedSecrets puts private keys and tokens into Ignition and cloud-init.
	EmbedSecrets bool
	// Binaries are the node binaries by download URL, with the lock's pins.
	Binaries Binaries
	// EtcdToken is the --initial-cluster-token the etcd cluster bootstrapped with.
	EtcdToken string
	// EtcdChange is how this render changes the etcd membership the lock records.
	EtcdChange EtcdChange
	// PreviousVersion is the release the lock says the control plane was last rendered
	// at (zero for a first render).
	PreviousVersion versions.Version
	// Rotations are the stages (1 or 2) of the staged rotations the lock records, by CA
	// ("ca", "etcd-ca", "front-proxy-ca") or "sa"; absent when none is in progress.
	Rotations map[string]int
}

// RotationStage returns the stage of the rotation of id in progress (0: none).
func (c *Cluster) RotationStage(id string) int { return c.Rotations[id] }

// Endpoint is the control-plane endpoint.
type Endpoint struct {
	// Host is an IP address or a DNS name.
	Host string
	// IP is set when Host is an address.
	IP   netip.Addr
	Port int
}

// NodeMask is the prefix length of a node's pod range in the family of p.
func (c *Cluster) NodeMask(p netip.Prefix) int {
	if p.Addr().Is6() {
		return c.NodeMaskSizeIPv6
	}
	return c.NodeMaskSize
}

// DualStack reports whether the cluster has both IP families.
func (c *Cluster) DualStack() bool { return len(c.PodCIDRs) == 2 }

// HasIPv6 reports whether the cluster has the IPv6 family (IPv6-only or dual-stack).
func (c *Cluster) HasIPv6() bool {
	for _, p := range c.PodCIDRs {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// HasIPv4 reports whether the cluster has the IPv4 family (IPv4-only or dual-stack).
func (c *Cluster) HasIPv4() bool {
	for _, p := range c.PodCIDRs {
		if p.Addr().Is4() {
			return true
		}
	}
	return false
}

// JoinAddrs joins addresses with commas, as --node-ip takes them.
func JoinAddrs(as []netip.Addr) string { return joinComma(as) }

// JoinPrefixes joins ranges with commas, as --service-cluster-ip-range, the kubelet's
// podCIDR and kube-proxy's clusterCIDR take them.
func JoinPrefixes(ps []netip.Prefix) string { return joinComma(ps) }

func joinComma[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// Family names an address's IP family for messages: "IPv4" or "IPv6".
func Family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// HostPort returns host:port ([host]:port for IPv6).
func (e Endpoint) HostPort() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// URL returns https://host:port.
func (e Endpoint) URL() string { return "https://" + e.HostPort() }

// APIServerPort is the port every kube-apiserver listens on (--secure-port): the
// endpoint's port when the endpoint is a control-plane node's own address, otherwise
// DefaultAPIPort (a load balancer forwards from its own port to 6443).
func (c *Cluster) APIServerPort() int {
	if c.Endpoint.IP.IsValid() {
		for _, n := range c.ControlPlanes() {
			if slices.Contains(n.Addresses, c.Endpoint.IP) {
				return c.Endpoint.Port
			}
		}
	}
	return DefaultAPIPort
}

// LocalAPIServerURL is how components on control-plane node n reach their own API server.
func (c *Cluster) LocalAPIServerURL(n *Node) string {
	return "https://" + net.JoinHostPort(n.Address.String(), strconv.Itoa(c.APIServerPort()))
}

// Node is one resolved machine.
type Node struct {
	// Index is the node's position in the spec.
	Index int
	Name  string
	// Addresses are the node's addresses, one per cluster family in the cluster's order
	// (its --node-ip); Address is the first, the primary family's: the advertise
	// address, etcd's and the one messages name.
	Addresses []netip.Addr
	Address   netip.Addr
	Roles     map[Role]bool
	// PodCIDRs are the node's pod ranges (pinned, locked or allocated), one per family;
	// PodCIDR is the first.
	PodCIDRs []netip.Prefix
	PodCIDR  netip.Prefix
	// BridgeAddrs are NODE_X_BRIDGE_ADDR per family: the first address of each pod range
	// with its prefix length; BridgeAddr is the first.
	BridgeAddrs []netip.Prefix
	BridgeAddr  netip.Prefix
	// OS is OSGeneric, OSFlatcar or OSFCOS.
	OS string
	// KubeletVersion is the release of the node's kubelet and kube-proxy: the cluster's,
	// or older where the spec pins it.
	KubeletVersion versions.Version
	// EtcdState and EtcdInitialCluster are an etcd member's --initial-cluster-state
	// ("new" for a member that bootstrapped the cluster, "existing" for one added later)
	// and --initial-cluster, kept from the render that first made the member.
	EtcdState, EtcdInitialCluster string
}

// Is reports whether the node has the role.
func (n *Node) Is(r Role) bool { return n.Roles[r] }

// ControlPlane reports whether the node runs kube-apiserver, the controller manager and the scheduler.
func (n *Node) ControlPlane() bool { return n.Roles[RoleControlPlane] }

// Etcd reports whether the node runs an etcd member.
func (n *Node) Etcd() bool { return n.Roles[RoleEtcd] }

// Worker reports whether the node takes ordinary workloads.
func (n *Node) Worker() bool { return n.Roles[RoleWorker] }

// RunsStaticPods reports whether the kubelet needs a static pod directory.
func (n *Node) RunsStaticPods() bool { return n.ControlPlane() || n.Etcd() }

// BinDir is where this node's OS keeps locally installed binaries.
func (n *Node) BinDir() string {
	if n.OS == OSGeneric {
		return "/usr/local/bin"
	}
	return "/opt/bin"
}

// ControlPlanes returns the control-plane nodes in spec order.
func (c *Cluster) ControlPlanes() []*Node { return c.filter((*Node).ControlPlane) }

// EtcdMembers returns the etcd members in spec order.
func (c *Cluster) EtcdMembers() []*Node { return c.filter((*Node).Etcd) }

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (c *Cluster) filter(f func(*Node) bool) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if f(n) {
			out = append(out, n)
		}
	}
	return out
}

// Images holds resolved image references by component.
type Images struct {
	// Style is StyleComponents or StyleHyperkube.
	Style string
	// Tags maps a component (see the Image* constants) to its reference by tag
	// ("registry.k8s.io/pause:3.10.1"); that is the key under which the lock pins it.
	Tags map[string]string
	// Refs maps a component to the reference to render: "name:tag@sha256:…" where the
	// lock pins the tag, else the tag reference (and the tag is listed in Unpinned).
	Refs map[string]string
	// Unpinned lists, sorted and without duplicates, the tag references the lock does not pin.
	Unpinned []string
	// RequirePinned fails a render that has an unpinned image.
	RequirePinned bool
	// Embed saves images into node bundles.
	Embed bool
}

// Image components.
const (
	ImageAPIServer         = "kube-apiserver"
	ImageControllerManager = "kube-controller-manager"
	ImageScheduler         = "kube-scheduler"
	ImageProxy             = "kube-proxy"
	ImageEtcd              = "etcd"
	ImagePause             = "pause"
	ImageCoreDNS           = "coredns"
)

// EtcdMember names an etcd member and its peer URL.
type EtcdMember struct {
	Name, PeerURL string
}

// EtcdChange is a change of the etcd membership: at most one member added and one
// removed (a replacement) per render. Members is the membership after it, in the order
// the members bootstrapped or joined.
type EtcdChange struct {
	Added, Removed []EtcdMember
	Members        []EtcdMember
}

// Changed reports whether the membership changes.
func (e EtcdChange) Changed() bool { return len(e.Added)+len(e.Removed) > 0 }
