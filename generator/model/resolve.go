package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/versions"
)

// Defaults applied once, here.
const (
	DefaultServiceCIDR  = "10.96.0.0/12"
	DefaultDNSDomain    = "cluster.local"
	DefaultNodeMaskSize = 24
	DefaultMTU          = 1500
	DefaultAPIPort      = 6443
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	MinMTU, MaxMTU      = 576, 9216
	// DefaultExpiryWarning is the certificate watchdog's warning window;
	// DefaultMetricsDir node-exporter's usual textfile collector directory.
	DefaultExpiryWarning = 30 * 24 * time.Hour
	DefaultMetricsDir    = "/var/lib/node_exporter/textfile_collector"
)

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Options change how a spec is resolved against its lock.
type Options struct {
	// AllowNetworkChange lets the spec move the ranges the lock allocated in (pod range,
	// service range, node mask size): nodes whose locked range no longer fits get a new
	// one. Without it such a change is an error.
	AllowNetworkChange bool
}

// Resolve validates a parsed spec and derives the model. The lock supplies earlier pod
// range allocations and the ranges they were made in; the returned lock holds the
// allocations of this model and its network (the input is not modified). Every problem
// is reported at once, problems of the lock with Input field.InputLock; warnings do not
// stop resolution.
func Resolve(doc *spec.Document, lk *lock.Lock, opts ...Options) (*Cluster, *lock.Lock, field.List) {
	r := &resolver{in: &doc.Cluster, lock: lk}
	for _, o := range opts {
		r.opts = o
	}
	c := r.resolve()
	var newLock *lock.Lock
	if len(r.errs.Errors()) == 0 {
		r.checkNetwork(c)
		newLock = r.allocate(c, lk)
	}
	if len(r.errs.Errors()) == 0 {
		r.upgrade(c, lk, newLock)
		r.etcdTopology(c, lk, newLock)
	}
	r.errs.Locate(doc.Positions)
	lk.Locate(r.errs)
	if len(r.errs.Errors()) > 0 {
		return nil, nil, r.errs
	}
	return c, newLock, r.errs
}

type resolver struct {
	in   *spec.Cluster
	lock *lock.Lock
	opts Options
	errs field.List
	// fams are the cluster's IP families in order (one address of each), known when
	// podCIDR's items are ranges of distinct families, even if one is not a network
	// address: node addresses and pins are checked against them.
	fams []netip.Prefix
	// podNetMoved is set when the spec's pod network is refused against the lock's.
	podNetMoved bool
}

// lenientFamilies reads the families of a podCIDR value whose items parse as ranges.
func lenientFamilies(s string) []netip.Prefix {
	var out []netip.Prefix
	for _, it := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(it))
		if err != nil {
			return nil
		}
		out = append(out, p)
	}
	if len(out) > 2 || (len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4()) {
		return nil
	}
	return out
}

var (
	pSpec    = field.Path("spec")
	pNetwork = pSpec.Child("network")
	pNodes   = pSpec.Child("nodes")
)

func (r *resolver) resolve() *Cluster {
	in := r.in
	c := &Cluster{}
	if in.APIVersion != spec.APIVersion {
		r.errs.Add("apiVersion", "%q is not supported; use %s", in.APIVersion, spec.APIVersion)
	}
	if in.Kind != spec.Kind {
		r.errs.Add("kind", "%q is not supported; use %s", in.Kind, spec.Kind)
	}
	c.Name = in.Metadata.Name
	if err := CheckClusterName(c.Name); err != nil {
		r.errs.Add("metadata.name", "%v", err)
	}
	r.version(c)
	r.network(c)
	r.nodes(c)
	r.endpoint(c)
	r.pki(c)
	r.auth(c)
	r.images(c)
	r.provisioning(c)
	r.binaries(c)
	return c
}

// CheckClusterName says what is wrong with a cluster name (CLUSTER_NAME), or nil.
func CheckClusterName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("missing; name the cluster with a short DNS label such as demo")
	case len(name) > 63 || !dns1123Label.MatchString(name):
		return fmt.Errorf("%q is not a DNS-1123 label; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

func (r *resolver) version(c *Cluster) {
	p := pSpec.Child("kubernetesVersion")
	if r.in.Spec.KubernetesVersion == "" {
		r.errs.Add(p, "missing; set a release of a supported minor (%s), e.g. %s", versions.Supported(), versions.Default)
		return
	}
	v, err := versions.Parse(r.in.Spec.KubernetesVersion)
	if err != nil {
		r.errs.Add(p, "%v", err)
		return
	}
	prof, err := versions.Lookup(v)
	if err != nil {
		r.errs.Add(p, "%v", err)
		return
	}
	c.Version, c.Profile = v, prof
}

// parsePrefix reads one CIDR that must be a network address.
func (r *resolver) parsePrefix(p field.Path, s, what, example string) (netip.Prefix, bool) {
	pr, err := netip.ParsePrefix(s)
	if err != nil {
		r.errs.Add(p, "%q is not a CIDR; write the %s as address/length, e.g. %s", s, what, example)
		return netip.Prefix{}, false
	}
	if pr.Addr().Is4In6() {
		r.errs.Add(p, "%q is an IPv4-mapped IPv6 range; write the IPv4 range itself", s)
		return netip.Prefix{}, false
	}
	if pr.Masked() != pr {
		r.errs.Add(p, "%q has host bits set; use the network address %s", s, pr.Masked())
		return netip.Prefix{}, false
	}
	return pr, true
}

// splitFamilies splits a value of one or two comma-separated items (kubeadm's and the
// kubelet's form for dual-stack: "10.10.0.0/16,fd00:10::/56"). It reports a value with
// more than two items or an empty one.
func (r *resolver) splitFamilies(p field.Path, s, what, example string) ([]string, bool) {
	if s == "" {
		r.errs.Add(p, "missing; set the %s, e.g. %s", what, example)
		return nil, false
	}
	items := strings.Split(s, ",")
	if len(items) > 2 {
		r.errs.Add(p, "%q lists %d items; give one %s per IP family (one for a single-stack cluster, an IPv4 and an IPv6 one for dual-stack), separated by a comma", s, len(items), what)
		return nil, false
	}
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
		if items[i] == "" {
			r.errs.Add(p, "%q has an empty item; write e.g. %s", s, example)
			return nil, false
		}
	}
	return items, true
}

// parsePrefixes reads one range or two of different families ("v4,v6" or "v6,v4").
func (r *resolver) parsePrefixes(p field.Path, s, what, example string) ([]netip.Prefix, bool) {
	items, ok := r.splitFamilies(p, s, what, example)
	if !ok {
		return nil, false
	}
	var out []netip.Prefix
	for _, it := range items {
		pr, ok := r.parsePrefix(p, it, what, example)
		if !ok {
			return nil, false
		}
		out = append(out, pr)
	}
	if len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4() {
		r.errs.Add(p, "%q lists two %s ranges; a dual-stack cluster has one range per family: an IPv4 and an IPv6 one", s, Family(out[0].Addr()))
		return nil, false
	}
	return out, true
}

// families describes the families of ranges for messages: "IPv4", "IPv6, IPv4".
func families(ps []netip.Prefix) string { return addrFamilies(prefixAddrs(ps)) }

// addrFamilies is families for addresses.
func addrFamilies(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = Family(a)
	}
	return strings.Join(s, ", ")
}

// sameFamilies reports whether the addresses are of the pod ranges' families, in order.
func sameFamilies(as []netip.Addr, ps []netip.Prefix) bool {
	if len(as) != len(ps) {
		return false
	}
	for i := range as {
		if as[i].Is4() != ps[i].Addr().Is4() {
			return false
		}
	}
	return true
}

func prefixAddrs(ps []netip.Prefix) []netip.Addr {
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}

// Node pod range sizes: the IPv4 default and limit (kubeadm's 24; at least 14 pods), the
// IPv6 default (kubeadm's 64) and limit.
const (
	DefaultNodeMaskSizeIPv6 = 64
	maxNodeMask4            = 28
	maxNodeMask6            = 124
	// IPv6 service ranges: the API server allocates from at most 2^20 addresses (/108),
	// and the DNS IP is the tenth.
	minServiceBits6, maxServiceBits6 = 108, 124
)

func (r *resolver) network(c *Cluster) {
	in := r.in.Spec.Network
	var podOK, svcOK bool
	c.PodCIDRs, podOK = r.parsePrefixes(pNetwork.Child("podCIDR"), in.PodCIDR, "cluster pod range", "10.10.0.0/16")
	r.fams = lenientFamilies(in.PodCIDR)
	if podOK {
		c.PodCIDR = c.PodCIDRs[0]
	}
	svc := in.ServiceCIDR
	sp := pNetwork.Child("serviceCIDR")
	if svc == "" && podOK && !(len(c.PodCIDRs) == 1 && c.PodCIDR.Addr().Is4()) {
		r.errs.Add(sp, "missing; the default %s is IPv4 only: give one service range per family of podCIDR (%s), in the same order, e.g. %s", DefaultServiceCIDR, families(c.PodCIDRs), map[bool]string{true: "10.96.0.0/12,fd00:96::/108", false: "fd00:96::/108"}[c.DualStack()])
	} else {
		if svc == "" {
			svc = DefaultServiceCIDR
		}
		c.ServiceCIDRs, svcOK = r.parsePrefixes(sp, svc, "service range", DefaultServiceCIDR)
	}
	for _, s := range c.ServiceCIDRs {
		switch {
		case s.Addr().Is4() && s.Bits() > 28:
			r.errs.Add(sp, "%s is too small: the 10th address is the cluster DNS IP; use a /28 or larger (a /12 to /24 is usual)", s)
			svcOK = false
		case s.Addr().Is6() && s.Bits() < minServiceBits6:
			r.errs.Add(sp, "%s is too large: the API server allocates IPv6 service IPs from at most a /%d (2^20 addresses); use a /%d to /%d, e.g. fd00:96::/108", s, minServiceBits6, minServiceBits6, maxServiceBits6)
			svcOK = false
		case s.Addr().Is6() && s.Bits() > maxServiceBits6:
			r.errs.Add(sp, "%s is too small: the 10th address is the cluster DNS IP; use a /%d to /%d", s, minServiceBits6, maxServiceBits6)
			svcOK = false
		}
	}
	if podOK && svcOK && !sameFamilies(prefixAddrs(c.ServiceCIDRs), c.PodCIDRs) {
		r.errs.Add(sp, "%s is %s but podCIDR %s is %s; give one service range per family of podCIDR, in the same order (the first family is the cluster's primary one)", svc, families(c.ServiceCIDRs), in.PodCIDR, families(c.PodCIDRs))
		svcOK = false
	}
	if svcOK {
		c.ServiceCIDR = c.ServiceCIDRs[0]
		for _, s := range c.ServiceCIDRs {
			c.APIServiceIPs = append(c.APIServiceIPs, nthAddr(s, 1))
			c.DNSIPs = append(c.DNSIPs, nthAddr(s, 10))
		}
		c.APIServiceIP, c.DNSIP = c.APIServiceIPs[0], c.DNSIPs[0]
	}
	if podOK && svcOK {
		for i := range c.PodCIDRs {
			if c.PodCIDRs[i].Overlaps(c.ServiceCIDRs[i]) {
				r.errs.Add(sp, "%s overlaps podCIDR %s; pod and service ranges must be disjoint", c.ServiceCIDRs[i], c.PodCIDRs[i])
			}
		}
	}
	c.NodeMaskSize, c.NodeMaskSizeIPv6 = DefaultNodeMaskSize, DefaultNodeMaskSizeIPv6
	if in.NodePodCIDRMaskSize != nil {
		c.NodeMaskSize = *in.NodePodCIDRMaskSize
	}
	if in.NodePodCIDRMaskSizeIPv6 != nil {
		c.NodeMaskSizeIPv6 = *in.NodePodCIDRMaskSizeIPv6
	}
	if podOK {
		r.nodeMasks(c, in)
	}
	c.DNSDomain = in.DNSDomain
	if c.DNSDomain == "" {
		c.DNSDomain = DefaultDNSDomain
	}
	if len(c.DNSDomain) > 253 || !dns1123Subdomain.MatchString(c.DNSDomain) {
		r.errs.Add(pNetwork.Child("dnsDomain"), "%q is not a DNS domain; use lowercase labels separated by dots, e.g. %s", c.DNSDomain, DefaultDNSDomain)
	}
	c.NetworkMode = in.Mode
	switch c.NetworkMode {
	case "":
		c.NetworkMode = NetworkRouted
	case NetworkRouted, NetworkNone:
	default:
		r.errs.Add(pNetwork.Child("mode"), "%q is not a network mode; use routed (bridge and static routes) or none (install your own CNI)", in.Mode)
	}
	c.MTU = DefaultMTU
	if in.MTU != nil {
		c.MTU = *in.MTU
		if c.MTU < MinMTU || c.MTU > MaxMTU {
			r.errs.Add(pNetwork.Child("mtu"), "%d is out of range; use %d to %d (1500 for Ethernet, 9000 for jumbo frames)", c.MTU, MinMTU, MaxMTU)
		}
	}
	c.Masquerade = in.Masquerade == nil || *in.Masquerade
	c.ProxyMode = in.ProxyMode
	switch c.ProxyMode {
	case "":
		c.ProxyMode = "iptables"
	case "iptables", "nftables":
	case "ipvs":
		since := versions.IPVSDeprecatedSince()
		if c.Profile.ProxyIPVSDeprecated || c.Profile.Minor == "" { // an unknown version: the newest rules
			r.errs.Add(pNetwork.Child("proxyMode"), "ipvs is deprecated since Kubernetes %s and not offered; use iptables or nftables", since)
		} else {
			r.errs.Add(pNetwork.Child("proxyMode"), "ipvs is not offered: it is deprecated from Kubernetes %s on and needs IPVS kernel modules scratchgen does not load; use iptables or nftables", since)
		}
	default:
		r.errs.Add(pNetwork.Child("proxyMode"), "%q is not a kube-proxy mode; use iptables or nftables", in.ProxyMode)
	}
}

// nodeMasks checks the node pod range size of each of the cluster's families, and that
// no size is set for a family the cluster does not have.
func (r *resolver) nodeMasks(c *Cluster, in spec.Network) {
	for _, pod := range c.PodCIDRs {
		mp, mask, most := pNetwork.Child("nodePodCIDRMaskSize"), c.NodeMaskSize, maxNodeMask4
		if pod.Addr().Is6() {
			mp, mask, most = pNetwork.Child("nodePodCIDRMaskSizeIPv6"), c.NodeMaskSizeIPv6, maxNodeMask6
		}
		switch {
		case mask < pod.Bits():
			r.errs.Add(mp, "%d is shorter than podCIDR's /%d; a node range must fit inside podCIDR %s: use %d to %d", mask, pod.Bits(), pod, pod.Bits(), most)
		case mask > most:
			r.errs.Add(mp, "%d leaves fewer than 14 pod addresses per node; use %d or less (%s)", mask, most, map[bool]string{true: "64 is usual for IPv6", false: "24 = 254 pods"}[pod.Addr().Is6()])
		}
	}
	if in.NodePodCIDRMaskSize != nil && !c.HasIPv4() {
		r.errs.Add(pNetwork.Child("nodePodCIDRMaskSize"), "sizes IPv4 node pod ranges, but podCIDR %s has no IPv4 range; remove it and set nodePodCIDRMaskSizeIPv6", in.PodCIDR)
	}
	if in.NodePodCIDRMaskSizeIPv6 != nil && !c.HasIPv6() {
		r.errs.Add(pNetwork.Child("nodePodCIDRMaskSizeIPv6"), "sizes IPv6 node pod ranges, but podCIDR %s has no IPv6 range; remove it (or add an IPv6 range to podCIDR for dual-stack)", in.PodCIDR)
	}
}

func (r *resolver) nodes(c *Cluster) {
	in := r.in.Spec.Nodes
	if len(in) == 0 {
		r.errs.Add(pNodes, "no nodes; list at least one node with roles [control-plane, etcd]")
		return
	}
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	defOS := r.in.Spec.Provisioning.OS
	if defOS == "" {
		defOS = OSGeneric
	}
	for i, sn := range in {
		p := pNodes.Index(i)
		n := &Node{Index: i, Name: sn.Name, Roles: map[Role]bool{}}
		c.Nodes = append(c.Nodes, n)
		switch {
		case sn.Name == "":
			r.errs.Add(p.Child("name"), "missing; give every node its hostname (a DNS-1123 name such as worker-1)")
		case len(sn.Name) > 63 || !dns1123Subdomain.MatchString(sn.Name):
			r.errs.Add(p.Child("name"), "%q is not a valid node name; use at most 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", sn.Name)
		case sn.Name == "localhost" || strings.HasPrefix(sn.Name, "localhost."):
			r.errs.Add(p.Child("name"), "%q names every machine's loopback, not this node; give the node its own hostname", sn.Name)
		default:
			if j, dup := names[sn.Name]; dup {
				r.errs.Add(p.Child("name"), "%q is already the name of spec.nodes[%d]; node names must be unique", sn.Name, j)
			} else {
				names[sn.Name] = i
			}
		}
		r.nodeAddress(c, n, sn, p.Child("address"), addrs)
		r.roles(n, sn.Roles, p.Child("roles"))
		if sn.PodCIDR != "" {
			pp := p.Child("podCIDR")
			if prs, ok := r.parsePrefixes(pp, sn.PodCIDR, "node pod range", "10.10.7.0/24"); ok {
				if len(r.fams) > 0 && !sameFamilies(prefixAddrs(prs), r.fams) {
					r.errs.Add(pp, "%s is %s but the cluster's podCIDR is %s; pin one range per cluster family, in the same order", sn.PodCIDR, families(prs), families(r.fams))
				} else {
					n.PodCIDRs, n.PodCIDR = prs, prs[0]
				}
			}
		}
		n.OS = sn.OS
		if n.OS == "" {
			n.OS = defOS
		} else if !validOS(n.OS) {
			r.errs.Add(p.Child("os"), "%q is not a node OS; use generic, flatcar or fcos", sn.OS)
		}
		r.kubeletVersion(c, n, sn.KubernetesVersion, p.Child("kubernetesVersion"))
	}
	r.checkPins(c)
	r.checkCounts(c)
}

func validOS(s string) bool { return s == OSGeneric || s == OSFlatcar || s == OSFCOS }

func (r *resolver) nodeAddress(c *Cluster, n *Node, sn spec.Node, p field.Path, seen map[netip.Addr]int) {
	example := "10.0.0.21"
	switch {
	case len(r.fams) == 2 && r.fams[0].Addr().Is4():
		example = "10.0.0.21,fd00::21"
	case len(r.fams) == 2:
		example = "fd00::21,10.0.0.21"
	case len(r.fams) == 1 && r.fams[0].Addr().Is6():
		example = "fd00::21"
	}
	if sn.Address == "" {
		r.errs.Add(p, "missing; set the node's IP address (its --node-ip), e.g. %s", example)
		return
	}
	items, ok := r.splitFamilies(p, sn.Address, "node address", example)
	if !ok {
		return
	}
	var as []netip.Addr
	for _, it := range items {
		a, err := netip.ParseAddr(it)
		if err != nil || a.Zone() != "" {
			r.errs.Add(p, "%q is not an IP address; use the node's address, e.g. %s", it, example)
			return
		}
		switch {
		case a.Is4In6():
			r.errs.Add(p, "%s is an IPv4-mapped IPv6 address; write the IPv4 address %s", a, a.Unmap())
			return
		case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			r.errs.Add(p, "%s cannot be a node address; use the node's unicast address", a)
			return
		case a.IsLoopback():
			r.errs.Add(p, "%s is a loopback address, which every machine has for itself; use the node's address on the cluster network", a)
			return
		case a.IsLinkLocalUnicast():
			r.errs.Add(p, "%s is link-local: it is not routed and may change; use the node's routable address on the cluster network", a)
			return
		}
		as = append(as, a)
	}
	if len(r.fams) > 0 && !sameFamilies(as, r.fams) {
		r.errs.Add(p, "%s is %s but the cluster's podCIDR is %s; give the node one address per cluster family, in the same order, e.g. %s", sn.Address, addrFamilies(as), families(r.fams), example)
		return
	}
	if len(as) == 2 && as[0].Is4() == as[1].Is4() {
		r.errs.Add(p, "%q lists two %s addresses; give one address per IP family", sn.Address, Family(as[0]))
		return
	}
	for _, a := range as {
		if j, dup := seen[a]; dup {
			r.errs.Add(p, "%s is already the address of spec.nodes[%d]; every node needs its own address", a, j)
			return
		}
	}
	for _, a := range as {
		seen[a] = n.Index
		for _, pod := range c.PodCIDRs {
			if pod.Contains(a) {
				r.errs.Add(p, "%s lies inside podCIDR %s; node addresses must be outside the pod range", a, pod)
			}
		}
		for _, svc := range c.ServiceCIDRs {
			if svc.Contains(a) {
				r.errs.Add(p, "%s lies inside serviceCIDR %s; node addresses must be outside the service range", a, svc)
			}
		}
	}
	n.Addresses, n.Address = as, as[0]
}

func (r *resolver) roles(n *Node, roles []string, p field.Path) {
	if len(roles) == 0 {
		r.errs.Add(p, "no roles; give the node one or more of control-plane, etcd, worker")
		return
	}
	for j, s := range roles {
		role := Role(s)
		switch role {
		case RoleControlPlane, RoleEtcd, RoleWorker:
		default:
			r.errs.Add(p.Index(j), "%q is not a role; use control-plane, etcd or worker", s)
			continue
		}
		if n.Roles[role] {
			r.errs.Add(p.Index(j), "role %q is listed twice; list it once", s)
		}
		n.Roles[role] = true
	}
}

func (r *resolver) checkPins(c *Cluster) {
	if len(c.PodCIDRs) == 0 {
		return
	}
	pinned := map[netip.Prefix]int{}
	for _, n := range c.Nodes {
		for f, pin := range n.PodCIDRs {
			pod, mask := c.PodCIDRs[f], c.NodeMask(c.PodCIDRs[f])
			p := pNodes.Index(n.Index).Child("podCIDR")
			switch {
			case !pod.Contains(pin.Addr()) || pin.Bits() < pod.Bits():
				r.errs.Add(p, "%s is outside podCIDR %s; pin a range inside it or remove the pin", pin, pod)
			case pin.Bits() != mask:
				r.errs.Add(p, "%s is a /%d but %s is %d; pin a /%d", pin, pin.Bits(), maskField(pin), mask, mask)
			default:
				for q, j := range pinned {
					if q.Overlaps(pin) {
						r.errs.Add(p, "%s collides with the pod range pinned on spec.nodes[%d]; each node needs its own range", pin, j)
					}
				}
				pinned[pin] = n.Index
			}
		}
	}
}

// maskField names the spec field that sizes node ranges of p's family.
func maskField(p netip.Prefix) string {
	if p.Addr().Is6() {
		return "nodePodCIDRMaskSizeIPv6"
	}
	return "nodePodCIDRMaskSize"
}

func (r *resolver) checkCounts(c *Cluster) {
	cp, etcd := len(c.ControlPlanes()), len(c.EtcdMembers())
	if cp == 0 {
		r.errs.Add(pNodes, "no node has the control-plane role; give at least one node roles [control-plane, etcd]")
	}
	switch {
	case etcd == 0:
		r.errs.Add(pNodes, "no node has the etcd role; give 1, 3 or 5 nodes the etcd role (usually the control-plane nodes)")
	case etcd%2 == 0 && (r.lock == nil || r.lock.Etcd == nil):
		r.errs.Add(pNodes, "%d nodes have the etcd role; an even member count tolerates no more failures than one member fewer (quorum of %d needs %d), so use %d or %d", etcd, etcd, etcd/2+1, etcd-1, etcd+1)
	case etcd%2 == 0:
		// Growing or shrinking a running cluster one member at a time passes through it.
		r.errs.Warn(pNodes, "%d etcd members: an even count tolerates no more failures than %d (quorum %d); fine on the way from %d to %d members, one at a time", etcd, etcd-1, etcd/2+1, etcd-1, etcd+1)
	case etcd > 5:
		r.errs.Add(pNodes, "%d nodes have the etcd role; more than 5 members slows every write without adding useful fault tolerance: use 1, 3 or 5", etcd)
	}
	for _, pod := range c.PodCIDRs {
		mask := c.NodeMask(pod)
		if mask < pod.Bits() || mask > maxNodeMask6 || (pod.Addr().Is4() && mask > maxNodeMask4) {
			continue
		}
		fit := 1 << min(mask-pod.Bits(), 30)
		if len(c.Nodes) > fit {
			r.errs.Add(pNetwork.Child("podCIDR"), "%s fits %d node ranges of /%d but the spec has %d nodes; use a larger podCIDR or a larger %s", pod, fit, mask, len(c.Nodes), maskField(pod))
		}
	}
}

func (r *resolver) endpoint(c *Cluster) {
	p := pSpec.Child("controlPlaneEndpoint")
	s := r.in.Spec.ControlPlaneEndpoint
	cps := c.ControlPlanes()
	if s == "" {
		if len(cps) > 1 {
			r.errs.Add(p, "missing; with %d control-plane nodes set it to a load-balancer name or address in front of all API servers", len(cps))
			return
		}
		if len(cps) == 1 && cps[0].Address.IsValid() {
			c.Endpoint = Endpoint{Host: cps[0].Address.String(), IP: cps[0].Address, Port: DefaultAPIPort}
		}
		return
	}
	host, port := s, DefaultAPIPort
	if h, ps, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			r.errs.Add(p, "port %q is not a TCP port; use 1 to 65535 (6443 is usual)", ps)
			return
		}
		host, port = h, n
	} else if strings.Count(s, ":") > 0 && !strings.Contains(s, "::") && strings.Count(s, ":") == 1 {
		r.errs.Add(p, "%q is not host[:port]; write e.g. 10.0.0.10:6443 or api.example.com", s)
		return
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // "[fd00::10]" without a port
	}
	c.Endpoint = Endpoint{Host: host, Port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.Is4In6() {
			r.errs.Add(p, "%s is not an address every node can reach; use the address without a zone, or a DNS name", a)
			return
		}
		if len(r.fams) > 0 && !slices.ContainsFunc(r.fams, func(q netip.Prefix) bool { return q.Addr().Is4() == a.Is4() }) {
			r.errs.Add(p, "%s is %s but the cluster (podCIDR %s) has no %s family; use an address of the cluster's family (%s) or a DNS name", a, Family(a), r.in.Spec.Network.PodCIDR, Family(a), families(r.fams))
			return
		}
		c.Endpoint.IP = a
		if len(cps) == 1 && len(cps[0].Addresses) > 0 && !slices.Contains(cps[0].Addresses, a) {
			r.errs.Add(p, "%s is not an address of the control-plane node %s (%s); with one control plane use its address, or a load balancer name that forwards to it", a, cps[0].Name, JoinAddrs(cps[0].Addresses))
		}
		if len(cps) > 1 {
			for _, n := range cps {
				if slices.Contains(n.Addresses, a) {
					r.errs.Add(p, "%s is the address of control-plane node %s only; with %d control planes use a load-balancer address or name in front of all of them", a, n.Name, len(cps))
				}
			}
		}
		return
	}
	if len(host) > 253 || !dns1123Subdomain.MatchString(host) {
		r.errs.Add(p, "%q is neither an IP address nor a DNS name; use e.g. 10.0.0.10 or api.example.com[:6443]", host)
	}
}

func (r *resolver) pki(c *Cluster) {
	p := pSpec.Child("pki")
	c.CAValidity = r.duration(p.Child("caValidity"), r.in.Spec.PKI.CAValidity, DefaultCAValidity)
	c.CertValidity = r.duration(p.Child("certValidity"), r.in.Spec.PKI.CertValidity, DefaultCertValidity)
	if c.CAValidity > 0 && c.CertValidity > c.CAValidity {
		r.errs.Add(p.Child("certValidity"), "%s outlives caValidity %s; a certificate cannot be valid after its CA expires: shorten it", c.CertValidity, c.CAValidity)
	}
	c.ExpiryWarning = r.duration(p.Child("expiryWarning"), r.in.Spec.PKI.ExpiryWarning, DefaultExpiryWarning)
	if c.CertValidity > 0 && c.ExpiryWarning >= c.CertValidity {
		r.errs.Add(p.Child("expiryWarning"), "%s is not shorter than certValidity %s: every certificate would always warn; use e.g. 30d", c.ExpiryWarning, c.CertValidity)
	}
	c.MetricsDir = DefaultMetricsDir
	if d := r.in.Spec.PKI.MetricsDir; d != "" {
		if !metricsDirRE.MatchString(d) || path.Clean(d) != d || d == "/" {
			r.errs.Add(p.Child("metricsDir"), "%q is not a clean absolute directory of letters, digits and ._-/ (it goes on a unit's command line); use e.g. %s", d, DefaultMetricsDir)
		}
		c.MetricsDir = d
	}
}

// metricsDirRE is what a metrics directory may be made of.
var metricsDirRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)

func (r *resolver) duration(p field.Path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil {
		r.errs.Add(p, "%q is not a duration; use h, d or w, e.g. 8760h or 365d for a year", s)
		return 0
	}
	if d < time.Hour {
		r.errs.Add(p, "%s is too short; use at least 1h (8760h = one year is usual)", d)
		return 0
	}
	if d > 100*365*24*time.Hour {
		r.errs.Add(p, "%s is more than 100 years; use at most 876000h", d)
		return 0
	}
	return d
}

func (r *resolver) auth(c *Cluster) {
	a := r.in.Spec.Auth
	c.Credentials = a.Credentials
	switch c.Credentials {
	case "":
		c.Credentials = CredentialsPerNode
	case CredentialsPerNode:
	case CredentialsPerRole:
		r.errs.Warn(pSpec.Child("auth").Child("credentials"), "perRole shares one kubelet credential among all nodes: the Node authorizer and NodeRestriction cannot tell nodes apart, so any node can read every node's secrets and change every Node; prefer perNode")
	case CredentialsShared:
		r.errs.Warn(pSpec.Child("auth").Child("credentials"), "shared gives every kubelet and kube-proxy the cluster-admin credential: one compromised node owns the cluster; use it only for throwaway clusters")
	default:
		r.errs.Add(pSpec.Child("auth").Child("credentials"), "%q is not a credential layout; use perNode (default), perRole or shared", a.Credentials)
	}
	c.StaticTokens = a.StaticTokens == nil || *a.StaticTokens
}

// imageComponents are the keys images.overrides accepts.
var imageComponents = []string{ImageAPIServer, ImageControllerManager, ImageScheduler, ImageProxy, ImagePause, ImageCoreDNS}

func (r *resolver) images(c *Cluster) {
	in := r.in.Spec.Images
	p := pSpec.Child("images")
	c.Images = Images{Style: in.Style, RequirePinned: in.RequirePinned, Embed: in.Embed, Tags: map[string]string{}}
	reg := "registry.k8s.io"
	if in.Registry != "" {
		reg = strings.TrimSuffix(in.Registry, "/")
		if !validRepo(reg) {
			r.errs.Add(p.Child("registry"), "%q is not a registry prefix; use host[:port][/path], e.g. mirror.example.com/k8s", in.Registry)
		}
	}
	v := c.Version.String()
	refs := c.Images.Tags
	refs[ImageAPIServer] = reg + "/kube-apiserver:" + v
	refs[ImageControllerManager] = reg + "/kube-controller-manager:" + v
	refs[ImageScheduler] = reg + "/kube-scheduler:" + v
	refs[ImageProxy] = reg + "/kube-proxy:" + v
	refs[ImageEtcd] = reg + "/etcd:" + c.Profile.Etcd + "-0"
	refs[ImagePause] = reg + "/pause:" + c.Profile.Pause
	refs[ImageCoreDNS] = reg + "/coredns/coredns:" + c.Profile.CoreDNS
	switch c.Images.Style {
	case "":
		c.Images.Style = StyleComponents
	case StyleComponents:
	case StyleHyperkube:
		if in.Hyperkube == "" {
			r.errs.Add(p.Child("hyperkube"), "missing: style hyperkube needs your own all-in-one image, because official hyperkube images end at Kubernetes v1.18; build one holding kube-apiserver, kube-controller-manager and kube-scheduler behind /hyperkube and name it here")
		}
	default:
		r.errs.Add(p.Child("style"), "%q is not an image style; use components (default) or hyperkube", in.Style)
	}
	if in.Hyperkube != "" {
		if c.Images.Style != StyleHyperkube {
			r.errs.Add(p.Child("hyperkube"), "is set but images.style is %q; set style: hyperkube or remove it", c.Images.Style)
		} else if r.imageRef(p.Child("hyperkube"), in.Hyperkube) {
			refs[ImageAPIServer], refs[ImageControllerManager], refs[ImageScheduler] = in.Hyperkube, in.Hyperkube, in.Hyperkube
		}
	}
	if in.Etcd != "" && r.imageRef(p.Child("etcd"), in.Etcd) {
		refs[ImageEtcd] = in.Etcd
	}
	keys := make([]string, 0, len(in.Overrides))
	for k := range in.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kp := p.Child("overrides").Key(k)
		if !contains(imageComponents, k) {
			r.errs.Add(kp, "%q is not an image component; use one of %s (etcd and hyperkube have their own fields)", k, strings.Join(imageComponents, ", "))
			continue
		}
		if c.Images.Style == StyleHyperkube && (k == ImageAPIServer || k == ImageControllerManager || k == ImageScheduler) {
			r.errs.Add(kp, "style hyperkube runs %s from images.hyperkube; remove this override", k)
			continue
		}
		if r.imageRef(kp, in.Overrides[k]) {
			refs[k] = in.Overrides[k]
		}
	}
	r.pin(&c.Images)
}

// pin renders each tag with the digest the lock records for it.
func (r *resolver) pin(im *Images) {
	im.Refs = make(map[string]string, len(im.Tags))
	unpinned := map[string]bool{}
	for comp, tag := range im.Tags {
		if r.lock != nil {
			if p, ok := r.lock.Images[tag]; ok && p.Digest != "" {
				im.Refs[comp] = tag + "@" + p.Digest
				continue
			}
		}
		im.Refs[comp] = tag
		unpinned[tag] = true
	}
	for t := range unpinned {
		im.Unpinned = append(im.Unpinned, t)
	}
	sort.Strings(im.Unpinned)
}

var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

func validRepo(s string) bool { return len(s) <= 255 && repoRE.MatchString(s) }

// imageRef checks an image reference "repo:tag" (a digest is pinned through the lock, not here).
func (r *resolver) imageRef(p field.Path, s string) bool {
	if strings.Contains(s, "@") {
		r.errs.Add(p, "%q carries a digest; name the image by tag and run `scratchgen images pin` to pin it in the lock", s)
		return false
	}
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") || !validRepo(s[:i]) || !tagRE.MatchString(s[i+1:]) {
		r.errs.Add(p, "%q is not an image reference with a tag; write registry/repository:tag, e.g. registry.example.com/k8s/hyperkube:v1.36.3", s)
		return false
	}
	return true
}

func (r *resolver) provisioning(c *Cluster) {
	in := r.in.Spec.Provisioning
	if in.OS != "" && !validOS(in.OS) {
		r.errs.Add(pSpec.Child("provisioning").Child("os"), "%q is not a node OS; use generic, flatcar or fcos", in.OS)
	}
	c.EmbedSecrets = in.EmbedSecrets
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseDuration reads a duration the way every scratchgen input writes one: a number of
// days ("30d") or weeks ("2w"), or a Go duration ("8760h", "1h30m"). Negative durations
// are refused. The spec and the command line use this one syntax.
func ParseDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 || n == "" || n[0] == '+' || v > 100*53 {
				return 0, fmt.Errorf("%q is not a duration (e.g. 30d, 2w, 720h)", s)
			}
			return time.Duration(v) * u.d, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30d, 2w, 720h)", s)
	}
	return d, nil
}

// nthAddr returns the n-th address of a prefix (0 = the network address).
func nthAddr(p netip.Prefix, n int64) netip.Addr {
	b := new(big.Int).SetBytes(p.Addr().AsSlice())
	b.Add(b, big.NewInt(n))
	raw := b.FillBytes(make([]byte, len(p.Addr().AsSlice())))
	a, _ := netip.AddrFromSlice(raw)
	return a
}

// networkChangeHint ends every network-move error.
const networkChangeHint = "or pass --allow-network-change to re-address the cluster on purpose"

// checkNetwork refuses a spec that moves the ranges the lock allocated in: the pod ranges
// and the service ranges keep their families (in order) and may only grow at the end
// (same first address, shorter prefix), the node mask sizes may not change.
func (r *resolver) checkNetwork(c *Cluster) {
	if r.lock == nil || r.lock.Network == nil || r.opts.AllowNetworkChange {
		return
	}
	was := r.lock.Network
	grows := func(old string, now []netip.Prefix) bool {
		o, err := lock.ParsePrefixes(old)
		if err != nil || len(o) != len(now) {
			return false
		}
		for i := range o {
			if o[i].Addr() != now[i].Addr() || now[i].Bits() > o[i].Bits() {
				return false
			}
		}
		return true
	}
	if o, err := lock.ParsePrefixes(was.PodCIDR); err == nil && families(o) != families(c.PodCIDRs) {
		// A family added or removed: say so rather than "moves".
		r.podNetMoved = true
		r.errs.Add(pNetwork.Child("podCIDR"), "%[1]s changes the cluster's IP families (%[2]s) from those the lock allocated node ranges in (%[4]s: %[3]s): every node's pod ranges, bridge addresses, routes and masquerade rules would change, and nodes, Services and running pods keep their old families; keep %[3]s, %[5]s (converting a running cluster between single- and dual-stack is a migration: re-render with the flag, then roll every node)",
			JoinPrefixes(c.PodCIDRs), families(c.PodCIDRs), was.PodCIDR, families(o), networkChangeHint)
	} else if !grows(was.PodCIDR, c.PodCIDRs) {
		r.podNetMoved = true
		r.errs.Add(pNetwork.Child("podCIDR"), "%s moves the pod range the lock allocated node ranges in (%s): every node's pod range, bridge address, routes and masquerade rule would change while running pods keep their old addresses; keep %s (each family's range may only grow at the end, e.g. a shorter prefix, and a family is neither added nor removed), %s",
			JoinPrefixes(c.PodCIDRs), was.PodCIDR, was.PodCIDR, networkChangeHint)
	}
	if o, err := lock.ParsePrefixes(was.ServiceCIDR); err == nil && families(o) != families(c.ServiceCIDRs) {
		r.errs.Add(pNetwork.Child("serviceCIDR"), "%[1]s changes the service families (%[2]s) from those the cluster was built with (%[4]s: %[3]s): the API server's service ranges and every kubelet's DNS IPs would change; keep %[3]s, %[5]s",
			JoinPrefixes(c.ServiceCIDRs), families(c.ServiceCIDRs), was.ServiceCIDR, families(o), networkChangeHint)
	} else if !grows(was.ServiceCIDR, c.ServiceCIDRs) {
		r.errs.Add(pNetwork.Child("serviceCIDR"), "%s moves the service range the cluster was built with (%s): the kubernetes Service IP in every API server certificate and the DNS IP in every kubelet would change, and existing Services keep addresses outside the new range; keep %s (it may only grow at the end), %s",
			JoinPrefixes(c.ServiceCIDRs), was.ServiceCIDR, was.ServiceCIDR, networkChangeHint)
	}
	if c.HasIPv4() && was.NodePodCIDRMaskSize != 0 && was.NodePodCIDRMaskSize != c.NodeMaskSize {
		r.errs.Add(pNetwork.Child("nodePodCIDRMaskSize"), "%d changes the node range size the lock allocated with (%d): every node would get a new pod range, bridge address and routes; keep %d, %s",
			c.NodeMaskSize, was.NodePodCIDRMaskSize, was.NodePodCIDRMaskSize, networkChangeHint)
	}
	if c.HasIPv6() && was.NodePodCIDRMaskSizeIPv6 != 0 && was.NodePodCIDRMaskSizeIPv6 != c.NodeMaskSizeIPv6 {
		r.errs.Add(pNetwork.Child("nodePodCIDRMaskSizeIPv6"), "%d changes the IPv6 node range size the lock allocated with (%d): every node would get a new pod range, bridge address and routes; keep %d, %s",
			c.NodeMaskSizeIPv6, was.NodePodCIDRMaskSizeIPv6, was.NodePodCIDRMaskSizeIPv6, networkChangeHint)
	}
}

// allocate assigns every node a pod range per family (pin, then lock, then the lowest
// free one), derives bridge addresses, and returns the lock holding the allocations and
// the network they were made in. A locked range is never silently replaced: a pin that
// differs from it, or a locked range that no longer fits the spec, is an error unless
// the network may change.
func (r *resolver) allocate(c *Cluster, in *lock.Lock) *lock.Lock {
	out := lock.New(c.Name)
	if in != nil {
		out = in.Clone()
	}
	out.Cluster = c.Name
	nf := len(c.PodCIDRs)
	taken := map[netip.Prefix]string{}
	for _, n := range c.Nodes {
		for _, p := range n.PodCIDRs {
			taken[p] = n.Name
		}
	}
	// keep holds, by node and family index, the locked ranges kept while re-addressing.
	keep := map[string]map[int]netip.Prefix{}
	// Keep locked ranges; refuse a move.
	for _, n := range c.Nodes {
		if in == nil {
			break
		}
		s, ok := in.PodCIDRs[n.Name]
		if !ok {
			continue
		}
		lp := field.Path("podCIDRs").Key(n.Name)
		prs, _ := lock.ParsePrefixes(s) // lock.Parse checked it
		np := pNodes.Index(n.Index).Child("podCIDR")
		fits := sameFamilies(prefixAddrs(prs), c.PodCIDRs)
		for f := 0; fits && f < nf; f++ {
			fits = prs[f].Bits() == c.NodeMask(c.PodCIDRs[f]) && c.PodCIDRs[f].Contains(prs[f].Addr())
		}
		switch {
		case len(n.PodCIDRs) > 0 && JoinPrefixes(n.PodCIDRs) != JoinPrefixes(prs):
			if !r.opts.AllowNetworkChange && !r.podNetMoved {
				r.errs.Add(np, "%s differs from the range the lock allocated to node %q (%s): the node's pods, bridge and every node's route to it would move; pin %s, %s", JoinPrefixes(n.PodCIDRs), n.Name, s, s, networkChangeHint)
			}
		case len(n.PodCIDRs) > 0:
		case !fits && r.opts.AllowNetworkChange:
			// Re-addressing on purpose: keep each locked range that still fits its family
			// (a single-stack cluster gaining a family keeps its old ranges), allocate the rest.
			for _, p := range prs {
				for f, pod := range c.PodCIDRs {
					if Family(p.Addr()) != Family(pod.Addr()) || p.Bits() != c.NodeMask(pod) || !pod.Contains(p.Addr()) {
						continue
					}
					if _, used := taken[p]; !used {
						if keep[n.Name] == nil {
							keep[n.Name] = map[int]netip.Prefix{}
						}
						keep[n.Name][f] = p
						taken[p] = n.Name
					}
				}
			}
		case !fits:
			// Once the pod network itself is refused, every node's range not fitting is
			// its consequence, not a separate problem.
			if !r.podNetMoved {
				r.errs.AddIn(field.InputLock, lp, "%s (node %q) is not %s inside podCIDR %s: the spec's network no longer fits the lock; restore the network the lock was made with, %s", s, n.Name, maskSizes(c), JoinPrefixes(c.PodCIDRs), networkChangeHint)
			}
		default:
			clash := ""
			for _, p := range prs {
				if other, used := taken[p]; used {
					clash = other
					r.errs.AddIn(field.InputLock, lp, "%s (node %q) is the range spec.nodes pins for node %q; every node needs its own range: move the pin to a free range", p, n.Name, other)
				}
			}
			if clash != "" {
				continue
			}
			n.PodCIDRs = prs
			for _, p := range prs {
				taken[p] = n.Name
			}
		}
	}
	if len(r.errs.Errors()) > 0 {
		return nil
	}
	for f, pod := range c.PodCIDRs {
		mask := c.NodeMask(pod)
		count := int64(1) << min(mask-pod.Bits(), 62)
		next := int64(0)
		for _, n := range c.Nodes {
			if len(n.PodCIDRs) == nf {
				continue
			}
			if p, ok := keep[n.Name][f]; ok {
				n.PodCIDRs = append(n.PodCIDRs, p)
				continue
			}
			for ; next < count; next++ {
				cand := nthPrefix(pod, next, mask)
				if _, used := taken[cand]; !used {
					n.PodCIDRs = append(n.PodCIDRs, cand)
					taken[cand] = n.Name
					break
				}
			}
			if len(n.PodCIDRs) != f+1 {
				r.errs.Add(pNetwork.Child("podCIDR"), "no free /%d left in %s for node %s (pinned and locked ranges use them all); use a larger podCIDR", mask, pod, n.Name)
				return nil
			}
		}
	}
	out.PodCIDRs = map[string]string{}
	for _, n := range c.Nodes {
		n.PodCIDR = n.PodCIDRs[0]
		n.BridgeAddrs = nil
		for _, p := range n.PodCIDRs {
			n.BridgeAddrs = append(n.BridgeAddrs, netip.PrefixFrom(p.Addr().Next(), p.Bits()))
		}
		n.BridgeAddr = n.BridgeAddrs[0]
		out.PodCIDRs[n.Name] = JoinPrefixes(n.PodCIDRs)
	}
	out.Network = &lock.Network{PodCIDR: JoinPrefixes(c.PodCIDRs), ServiceCIDR: JoinPrefixes(c.ServiceCIDRs)}
	if c.HasIPv4() {
		out.Network.NodePodCIDRMaskSize = c.NodeMaskSize
	}
	if c.HasIPv6() {
		out.Network.NodePodCIDRMaskSizeIPv6 = c.NodeMaskSizeIPv6
	}
	for id, rot := range out.Rotations {
		if c.Rotations == nil {
			c.Rotations = map[string]int{}
		}
		c.Rotations[id] = rot.Stage
	}
	return out
}

// maskSizes describes the node range sizes for messages: "a /24", "a /24 and a /64, one
// per family".
func maskSizes(c *Cluster) string {
	s := make([]string, len(c.PodCIDRs))
	for i, p := range c.PodCIDRs {
		s[i] = "a /" + strconv.Itoa(c.NodeMask(p))
	}
	if len(s) == 2 {
		return s[0] + " and " + s[1] + ", one per family"
	}
	return strings.Join(s, "")
}

// nthPrefix is the idx-th /mask range inside p.
func nthPrefix(p netip.Prefix, idx int64, mask int) netip.Prefix {
	b := new(big.Int).SetBytes(p.Addr().AsSlice())
	b.Add(b, new(big.Int).Lsh(big.NewInt(idx), uint(p.Addr().BitLen()-mask)))
	raw := b.FillBytes(make([]byte, len(p.Addr().AsSlice())))
	a, _ := netip.AddrFromSlice(raw)
	return netip.PrefixFrom(a, mask)
}

// String describes a node for messages.
func (n *Node) String() string { return fmt.Sprintf("%s (%s)", n.Name, n.Address) }

// kubeletVersion sets the release of node n's kubelet and kube-proxy: the cluster's, or
// the spec's pin, which must be a supported release no newer than the control plane's
// (the version skew policy: node components never lead the API servers).
func (r *resolver) kubeletVersion(c *Cluster, n *Node, pin string, p field.Path) {
	n.KubeletVersion = c.Version
	if pin == "" || c.Version.Major == 0 {
		return
	}
	v, err := versions.Parse(pin)
	if err != nil {
		r.errs.Add(p, "%v", err)
		return
	}
	if _, err := versions.Lookup(v); err != nil {
		r.errs.Add(p, "%v", err)
		return
	}
	if v.Minor > c.Version.Minor || (v.Minor == c.Version.Minor && v.Patch > c.Version.Patch) {
		r.errs.Add(p, "%s is newer than the control plane's %s: a kubelet or kube-proxy must never be newer than the API servers; upgrade the control plane (spec.kubernetesVersion) first", v, c.Version)
		return
	}
	if c.Version.Minor-v.Minor > 3 {
		r.errs.Add(p, "%s is more than three minors older than the control plane's %s, which the version skew policy does not allow; upgrade this node first", v, c.Version)
		return
	}
	n.KubeletVersion = v
}

// upgrade checks the control plane's version against the one the lock says was last
// rendered: one minor at a time, and never down a minor.
func (r *resolver) upgrade(c *Cluster, in, out *lock.Lock) {
	out.KubernetesVersion = c.Version.String()
	if in == nil || in.KubernetesVersion == "" {
		return
	}
	prev, err := versions.Parse(in.KubernetesVersion)
	if err != nil {
		r.errs.AddIn(field.InputLock, "kubernetesVersion", "%v; restore the lock from version control", err)
		return
	}
	c.PreviousVersion = prev
	p := pSpec.Child("kubernetesVersion")
	switch {
	case c.Version.Minor > prev.Minor+1:
		r.errs.Add(p, "%s skips 1.%d: the control plane was last rendered at %s and upgrades one minor at a time; render and roll out a v1.%d release first", c.Version, prev.Minor+1, prev, prev.Minor+1)
	case c.Version.Minor < prev.Minor:
		r.errs.Add(p, "%s is older than %s, which the control plane was last rendered at: downgrading a minor is not supported (etcd and the API's stored objects may not go back); restore from a backup instead", c.Version, prev)
	}
}

// etcdPeerPort is etcd's peer port (paths.EtcdPeerPort; model does not import paths).
const etcdPeerPort = 2380

// EtcdPeerURL is the peer URL of an etcd member at addr.
func EtcdPeerURL(addr netip.Addr) string {
	return "https://" + netip.AddrPortFrom(addr, etcdPeerPort).String()
}

// etcdTopology decides how each etcd member bootstraps or joins, from the lock's record
// of the running cluster: members that bootstrapped keep their flags; a member added to
// a running cluster joins it ("existing", with the members at that time); one member may
// be added and one removed per render (a replacement removes first, then adds).
func (r *resolver) etcdTopology(c *Cluster, in, out *lock.Lock) {
	var members []EtcdMember
	for _, n := range c.EtcdMembers() {
		members = append(members, EtcdMember{Name: n.Name, PeerURL: EtcdPeerURL(n.Address)})
	}
	join := func(ms []EtcdMember) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name+"="+m.PeerURL)
		}
		return strings.Join(s, ",")
	}
	if in == nil || in.Etcd == nil || len(in.Etcd.Members) == 0 {
		// First render (or a lock from before etcd topology): the members bootstrap together.
		e := &lock.Etcd{Token: initialClusterToken(c.Name, members)}
		for _, m := range members {
			e.Members = append(e.Members, lock.EtcdMember{Name: m.Name, PeerURL: m.PeerURL, State: "new", InitialCluster: join(members)})
		}
		out.Etcd = e
		r.applyEtcd(c, e)
		c.EtcdChange.Members = members
		return
	}
	inSpec := map[string]EtcdMember{}
	for _, m := range members {
		inSpec[m.Name] = m
	}
	inLock := map[string]bool{}
	var kept []EtcdMember
	var removed, added []EtcdMember
	for _, lm := range in.Etcd.Members {
		inLock[lm.Name] = true
		sm, ok := inSpec[lm.Name]
		switch {
		case !ok:
			removed = append(removed, EtcdMember{Name: lm.Name, PeerURL: lm.PeerURL})
		case sm.PeerURL != lm.PeerURL:
			r.errs.Add(pNodes, "etcd member %s moves from %s to %s: etcd knows its members by peer URL; give the node a new name (a new member) and remove the old one, one render each", lm.Name, lm.PeerURL, sm.PeerURL)
			return
		default:
			kept = append(kept, sm)
		}
	}
	for _, m := range members {
		if !inLock[m.Name] {
			added = append(added, m)
		}
	}
	n := len(in.Etcd.Members)
	names := func(ms []EtcdMember) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return strings.Join(s, ", ")
	}
	switch {
	case len(added) > 1 || len(removed) > 1:
		r.errs.Add(pNodes, "the etcd membership changes by more than one member at once (adds %s; removes %s): the running %d-member cluster (quorum %d) takes one change at a time; add or remove one member per render and roll each out (scratchgen plan)", orNone(names(added)), orNone(names(removed)), n, n/2+1)
		return
	case len(removed) == 1 && n == 1:
		r.errs.Add(pNodes, "removes %s, the only etcd member: its data would be lost; add the new member first (a second render makes it two), then remove the old one", removed[0].Name)
		return
	}
	e := &lock.Etcd{Token: in.Etcd.Token}
	for _, lm := range in.Etcd.Members {
		if _, ok := inSpec[lm.Name]; ok {
			e.Members = append(e.Members, lm)
		}
	}
	for _, m := range added {
		// etcd wants every member (learners too) plus the joiner itself.
		e.Members = append(e.Members, lock.EtcdMember{Name: m.Name, PeerURL: m.PeerURL, State: "existing", InitialCluster: join(append(kept, m))})
	}
	out.Etcd = e
	r.applyEtcd(c, e)
	c.EtcdChange = EtcdChange{Added: added, Removed: removed, Members: append(kept, added...)}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// applyEtcd sets each etcd node's flags from the recorded topology.
func (r *resolver) applyEtcd(c *Cluster, e *lock.Etcd) {
	c.EtcdToken = e.Token
	by := map[string]lock.EtcdMember{}
	for _, m := range e.Members {
		by[m.Name] = m
	}
	for _, n := range c.EtcdMembers() {
		m := by[n.Name]
		n.EtcdState, n.EtcdInitialCluster = m.State, m.InitialCluster
	}
}

// initialClusterToken is etcd's --initial-cluster-token for a cluster bootstrapping with
// members: "<cluster>-etcd-" followed by the first 8 hex digits of SHA-256 over the
// member names, sorted and joined with ",", so that members of two clusters never join
// each other by mistake.
func initialClusterToken(cluster string, members []EtcdMember) string {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	sort.Strings(names)
	sum := sha256.Sum256([]byte(strings.Join(names, ",")))
	return cluster + "-etcd-" + hex.EncodeToString(sum[:4])
}
