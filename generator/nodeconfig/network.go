package nodeconfig

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// The routed pod network of the from-scratch guide: each node bridges its pods on cbr0,
// whose address is the first IP of the node's pod range; every node routes the other
// nodes' pod ranges to their node addresses (no overlay, so the nodes must share an L2
// segment or a router that knows the routes); traffic from pods to outside the cluster
// network is masqueraded.
//
// No loopback configuration is rendered: the container runtime sets up each pod's lo
// itself (containerd's CRI calls the loopback plugin binary from the CNI bin directory
// without any configuration file), so a 99-loopback.conf would be dead weight. The
// binary must still be installed with the other plugins.

// BridgeName is the pod bridge the guide calls cbr0.
const BridgeName = "cbr0"

// Conflist is the CNI network configuration list written to CNIConflist. Field order is
// the output order.
type Conflist struct {
	CNIVersion string      `json:"cniVersion"`
	Name       string      `json:"name"`
	Plugins    []CNIPlugin `json:"plugins"`
}

// CNIPlugin holds the fields of the bridge and portmap plugins scratchgen uses.
type CNIPlugin struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge,omitempty"`
	IsGateway    bool            `json:"isGateway,omitempty"`
	IPMasq       *bool           `json:"ipMasq,omitempty"`
	HairpinMode  bool            `json:"hairpinMode,omitempty"`
	MTU          int             `json:"mtu,omitempty"`
	IPAM         *IPAM           `json:"ipam,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
}

// IPAM is the host-local IP address management section.
type IPAM struct {
	Type   string        `json:"type"`
	Ranges [][]IPAMRange `json:"ranges"`
	Routes []IPAMRoute   `json:"routes"`
}

// IPAMRange is one host-local range.
type IPAMRange struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

// IPAMRoute is a route host-local installs in every pod.
type IPAMRoute struct {
	Dst string `json:"dst"`
}

// Network is the plan step of the routed pod network (nothing in network mode none): the
// CNI bridge configuration, the routes to the other nodes' pod ranges and the masquerade
// rule, with their units. The routes table, the same on every node, is built once for
// cluster c, whose nodes the step is then run for.
func Network(c *model.Cluster) func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error {
	var table []byte
	var conflict error
	if c.NetworkMode == model.NetworkRouted {
		table, conflict = RoutesTable(c), routesConflict(c)
	}
	return func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		if conflict != nil {
			return conflict
		}
		return network(c, n, b, table)
	}
}

// routesConflict reports two nodes whose routes would collide (the same address, or
// overlapping pod ranges): a route of one would point at the other itself. The model
// never resolves such a cluster; this keeps the routes honest if it ever did.
func routesConflict(c *model.Cluster) error {
	addrs := map[netip.Addr]string{}
	for f := range c.PodCIDRs {
		byRange := slices.Clone(c.Nodes)
		slices.SortFunc(byRange, func(a, b *model.Node) int { return a.PodCIDRs[f].Addr().Compare(b.PodCIDRs[f].Addr()) })
		for i, n := range byRange {
			a := n.Addresses[f]
			if o, dup := addrs[a]; dup {
				return fmt.Errorf("nodes %q and %q share the address %s", o, n.Name, a)
			}
			addrs[a] = n.Name
			if p, q := byRange[max(i-1, 0)].PodCIDRs[f], n.PodCIDRs[f]; i > 0 && p.Overlaps(q) {
				return fmt.Errorf("nodes %q and %q have overlapping pod ranges %s and %s", byRange[i-1].Name, n.Name, p, q)
			}
		}
	}
	return nil
}

func network(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder, table []byte) error {
	if err := checkResolved(n); err != nil {
		return err
	}
	if c.NetworkMode != model.NetworkRouted {
		return nil
	}
	if len(n.PodCIDRs) != len(c.PodCIDRs) || len(n.BridgeAddrs) != len(n.PodCIDRs) || len(n.Addresses) != len(n.PodCIDRs) {
		return fmt.Errorf("the node has %d pod ranges, %d bridge addresses and %d addresses for the cluster's %d families", len(n.PodCIDRs), len(n.BridgeAddrs), len(n.Addresses), len(c.PodCIDRs))
	}
	// host-local: one range set per family (so a pod gets an address of each), and a
	// default route per family through the bridge.
	var ranges [][]IPAMRange
	var routes []IPAMRoute
	for i, p := range n.PodCIDRs {
		if br := n.BridgeAddrs[i]; !br.IsValid() || !p.Contains(br.Addr()) {
			return fmt.Errorf("bridge address %v is not inside pod range %s", br, p)
		}
		ranges = append(ranges, []IPAMRange{{Subnet: p.String(), Gateway: n.BridgeAddrs[i].Addr().String()}})
		dst := "0.0.0.0/0"
		if p.Addr().Is6() {
			dst = "::/0"
		}
		routes = append(routes, IPAMRoute{Dst: dst})
	}
	conf := Conflist{
		CNIVersion: "1.0.0",
		Name:       BridgeName,
		Plugins: []CNIPlugin{
			{
				Type:      "bridge",
				Bridge:    BridgeName,
				IsGateway: true,
				// Off: the bridge plugin's own masquerade would also NAT pod-to-pod traffic
				// to other nodes; scratchgen-masquerade.service does it cluster-aware.
				IPMasq:      new(bool),
				HairpinMode: true,
				MTU:         c.MTU,
				IPAM: &IPAM{
					Type:   "host-local",
					Ranges: ranges,
					Routes: routes,
				},
			},
			{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
		},
	}
	cni, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	b.Public(paths.CNIConflist, append(cni, '\n'))
	b.Membership(paths.RoutesTable, table)
	b.Executable(paths.RoutesScript, []byte(RoutesScript))
	b.Public(paths.RoutesUnit, scriptUnit("scratchgen: routes to the other nodes' pod ranges", paths.RoutesScript, routesUnit, paths.RoutesTable, n.Name))
	b.Unit(routesUnit)
	b.Public(paths.RoutesPathUnit, []byte(RoutesPathUnit))
	b.Unit(bundle.Unit{Name: paths.RoutesPath, After: []string{paths.RoutesService}})
	if c.Masquerade {
		b.Executable(paths.MasqueradeScript, masqueradeScript(c))
		b.Public(paths.MasqueradeUnit, scriptUnit("scratchgen: masquerade pod traffic leaving the cluster network", paths.MasqueradeScript, masqueradeUnit, ""))
		b.Unit(masqueradeUnit)
	}
	return nil
}

// RoutesTable is paths.RoutesTable: one line per node and family of the routed network,
// in spec order (a dual-stack node's two lines together, primary family first): its name,
// address and pod range of that family. Every node gets the same bytes (the writer
// stores large identical files once); routes.sh skips the node's own lines.
func RoutesTable(c *model.Cluster) []byte {
	var b strings.Builder
	b.WriteString("# " + header + "\n# The routed pod network, read by " + paths.RoutesScript + ": node, address, pod range.\n")
	for _, n := range c.Nodes {
		for f := range n.PodCIDRs {
			fmt.Fprintf(&b, "%s %s %s\n", n.Name, n.Addresses[f], n.PodCIDRs[f])
		}
	}
	return []byte(b.String())
}

// RoutesScript is paths.RoutesScript, the same on every node: it replaces (idempotently)
// or deletes the route to every other node's pod range listed in the table beside it.
// PATH comes from systemd, or from the operator's shell when run by hand.
const RoutesScript = `#!/bin/sh
# ` + header + `
# Static routes to every other node's pod range (the routed pod network: no overlay), as
# listed in the routes table beside this script (` + paths.RoutesTable + `: node, address, pod
# range; the same file on every node). Usage: routes.sh start|stop NODE, NODE being this
# node's name (its unit passes it); both are idempotent.
set -eu

usage() {
	echo "usage: $0 start|stop NODE" >&2
	exit 2
}
case "${1:-}" in
start | stop) ;;
*) usage ;;
esac
[ -n "${2:-}" ] || usage
action=$1
self=$2
table=${0%/*}/routes
found=0
while read -r node addr range; do
	case $node in
	'' | '#'*) continue ;;
	esac
	if [ "$node" = "$self" ]; then
		found=1
		continue
	fi
	if [ "$action" = start ]; then
		ip route replace "$range" via "$addr"
	else
		ip route del "$range" via "$addr" 2>/dev/null || true
	fi
done <"$table"
if [ "$found" = 0 ]; then
	echo "$0: node $self is not in $table" >&2
	exit 1
fi
`

// The network units: oneshots that want and start after what they need, before the
// kubelet and kube-proxy.
var (
	routesUnit = bundle.Unit{Name: paths.RoutesService,
		After:  []string{"network-online.target"},
		Before: []string{paths.KubeletService, paths.KubeProxyService}}
	masqueradeUnit = bundle.Unit{Name: paths.MasqueradeService,
		After:  []string{paths.KernelService},
		Before: []string{paths.KubeletService, paths.KubeProxyService}}
)

// RoutesPathUnit is paths.RoutesPathUnit, the same on every node. A node provisioned from
// a view that leaves the routes table out (secrets not embedded) boots without it: the
// routes unit is skipped (its condition), and this unit starts it when the table arrives
// with the secrets. It
// starts nothing on a node that had the table at boot: the routes unit then ran and
// stays active, and a changed table takes a restart of the routes unit, as every
// delivery does (paths.EnableCommand).
var RoutesPathUnit = string(unit{
	{"Unit", []entry{
		kv("Description", "scratchgen: start the routes to the other nodes' pod ranges when the routes table arrives"),
		kv("Documentation", "file://"+paths.RoutesScript),
	}},
	{"Path", []entry{
		kv("PathChanged", paths.RoutesTable),
		kv("Unit", paths.RoutesService),
	}},
	{"Install", []entry{kv("WantedBy", "paths.target")}},
}.bytes())

// scriptUnit is the unit of a start|stop script: a oneshot that stays active, wanting
// and ordered after u.After, and run only when the file needs exists (when needs is
// not "").
func scriptUnit(description, script string, u bundle.Unit, needs string, args ...string) []byte {
	head := []entry{
		kv("Description", description),
		kv("Documentation", "file://"+script),
		kv("Wants", u.After...),
		kv("After", u.After...),
		kv("Before", u.Before...),
	}
	if needs != "" {
		head = append(head, kv("ConditionPathExists", needs))
	}
	return unit{
		{"Unit", head},
		{"Service", []entry{
			kv("Type", "oneshot"),
			kv("RemainAfterExit", "yes"),
			kv("ExecStart", append([]string{script, "start"}, args...)...),
			kv("ExecStop", append([]string{script, "stop"}, args...)...),
		}},
		{"Install", []entry{kv("WantedBy", "multi-user.target")}},
	}.bytes()
}

// MasqueradeChain is the nat chain holding the masquerade rule; a dedicated chain makes
// the rule replaceable and removable as a whole.
const MasqueradeChain = "SCRATCHGEN-MASQ"

// masqueradeScript installs the guide's rule
//
//	iptables -t nat -A POSTROUTING ! -d $CLUSTER_SUBNET -m addrtype ! --dst-type LOCAL -j MASQUERADE
//
// with one modern refinement: -s $CLUSTER_SUBNET, so only pod traffic is rewritten and the
// host's own connections keep their source address. An IPv6 range gets the same rule from
// ip6tables; a dual-stack cluster one rule per family (the second family's function and
// variable are suffixed 6).
func masqueradeScript(c *model.Cluster) []byte {
	type family struct{ fn, tables, pods string }
	var fams []family
	for i, p := range c.PodCIDRs {
		f := family{"ipt", "iptables", "pods"}
		if p.Addr().Is6() {
			f.tables = "ip6tables"
		}
		if i > 0 {
			f.fn, f.pods = f.fn+"6", f.pods+"6"
		}
		fams = append(fams, f)
	}
	var vars, fns, start, stop strings.Builder
	for i, f := range fams {
		vars.WriteString(f.pods + "=" + c.PodCIDRs[i].String() + "\n")
		fns.WriteString("\n" + f.fn + "() {\n\t" + f.tables + " -w -t nat \"$@\"\n}\n")
		ipt := "\t" + f.fn + " "
		start.WriteString(ipt + "-N \"$chain\" 2>/dev/null || true\n" +
			ipt + "-F \"$chain\"\n" +
			ipt + "-A \"$chain\" -s \"$" + f.pods + "\" ! -d \"$" + f.pods + "\" -m addrtype ! --dst-type LOCAL -j MASQUERADE\n" +
			ipt + "-C POSTROUTING -m comment --comment \"$comment\" -j \"$chain\" 2>/dev/null ||\n" +
			"\t" + ipt + "-A POSTROUTING -m comment --comment \"$comment\" -j \"$chain\"\n")
		stop.WriteString("\twhile " + f.fn + " -D POSTROUTING -m comment --comment \"$comment\" -j \"$chain\" 2>/dev/null; do :; done\n" +
			ipt + "-F \"$chain\" 2>/dev/null || true\n" +
			ipt + "-X \"$chain\" 2>/dev/null || true\n")
	}
	return []byte(`#!/bin/sh
# ` + header + `
# Masquerades traffic from the cluster's pods (` + model.JoinPrefixes(c.PodCIDRs) + `) to destinations outside the
# cluster network that are not local to this node: the from-scratch guide's rule, restricted
# to pod sources (-s) so traffic the node itself originates keeps its address. The rule lives
# in its own nat chain, jumped to from POSTROUTING, so start replaces it and stop removes it
# cleanly. Usage: masquerade.sh start|stop; both are idempotent.
set -eu

chain=` + MasqueradeChain + `
` + vars.String() + `comment="scratchgen: masquerade pod traffic leaving the cluster network"
` + fns.String() + `
case "${1:-}" in
start)
` + start.String() + `	;;
stop)
` + stop.String() + `	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
`)
}
