package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Network is the test's private LAN: one network namespace per node, each with a veth
// "eth0" whose peer sits on a bridge in the host namespace. The bridge has the subnet's
// .1, so the test process (in the host namespace) reaches every node; nodes have no
// default route, so nothing they send can leave the subnet.
//
// Names carry the test process's pid (sg-<pid>-<node>, sgbr<pid>, sgv<pid>-<i>), so a
// later run can tell leftovers of a killed run (their pid is gone) from a concurrent run.
type Network struct {
	Bridge  string
	Family  Family
	Subnet  netip.Prefix // the primary family's subnet
	Gateway netip.Addr   // the bridge's address, in the host namespace
	// Subnets and Gateways are per family, primary first (IPv4 then IPv6 for dual-stack).
	Subnets  []netip.Prefix
	Gateways []netip.Addr
	nodes    map[string]*NetNode
	bridge   bool // created
}

// NetNode is one node's namespace and addresses.
type NetNode struct {
	Name  string
	NS    string       // ip netns name; the namespace file is /run/netns/<NS>
	Addr  netip.Addr   // the primary family's address
	Addrs []netip.Addr // one per family, primary first
}

// AddrList is the node's addresses as a spec's node address lists them: "a" or "a,b".
func (nn *NetNode) AddrList() string {
	s := make([]string, len(nn.Addrs))
	for i, a := range nn.Addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Family is the IP family setup of a test network and cluster.
type Family string

const (
	IPv4      Family = "IPv4"
	IPv6      Family = "IPv6"
	DualStack Family = "dual-stack" // IPv4 primary, IPv6 secondary
)

// fams is the families of f in order: 4 and/or 6.
func (f Family) fams() []int {
	switch f {
	case IPv6:
		return []int{6}
	case DualStack:
		return []int{4, 6}
	}
	return []int{4}
}

// SpecNetwork is the spec's network lines (indented under spec.network) for the family:
// IPv4 keeps the default service range.
func (f Family) SpecNetwork() string {
	pod, svc := f.Ranges()
	if f == IPv4 || f == "" {
		return "    podCIDR: " + pod
	}
	return "    podCIDR: " + pod + "\n    serviceCIDR: " + svc
}

// Ranges are the test cluster's pod and service ranges for the family (spec syntax).
func (f Family) Ranges() (pod, service string) {
	switch f {
	case IPv6:
		return "fd5c:244::/56", "fd5c:96::/108"
	case DualStack:
		return "10.244.0.0/16,fd5c:244::/56", "10.96.0.0/12,fd5c:96::/108"
	}
	return "10.244.0.0/16", "10.96.0.0/12"
}

// netPrefix starts every namespace the harness creates; bridges and veths start with "sgbr" and "sgv".
const netPrefix = "sg-"

// NewNetwork creates a namespace per node, in order: node i gets address .(10+i) of a
// free 10.241.<n>.0/24. Everything is removed in t.Cleanup, also when the test fails.
func NewNetwork(t *testing.T, nodes ...string) *Network {
	t.Helper()
	return NewNetworkFamily(t, IPv4, nodes...)
}

// NewNetworkFamily is NewNetwork for an IP family setup: IPv6 subnets are a free
// fd5c:241:<n>::/64 (::1 the bridge, ::10, ::11, ... the nodes), their addresses added
// without duplicate address detection (nodad) so they are usable at once.
func NewNetworkFamily(t *testing.T, family Family, nodes ...string) *Network {
	t.Helper()
	removeStaleNetworks(t)
	unlock := lockFile(t, "/run/scratchgen-e2e-net.lock") // subnet choice vs. concurrent runs
	defer unlock()
	pid := os.Getpid()
	n := &Network{
		Bridge: fmt.Sprintf("sgbr%d", pid),
		Family: family,
		nodes:  map[string]*NetNode{},
	}
	for _, f := range family.fams() {
		subnet := freeSubnet(t, f)
		n.Subnets = append(n.Subnets, subnet)
		n.Gateways = append(n.Gateways, subnet.Addr().Next())
	}
	n.Subnet, n.Gateway = n.Subnets[0], n.Gateways[0]
	t.Cleanup(func() { n.teardown(t) })
	ipCmd(t, "link", "add", n.Bridge, "type", "bridge")
	n.bridge = true
	for i, subnet := range n.Subnets {
		ipCmd(t, addrAdd("", n.Gateways[i], subnet, n.Bridge)...)
	}
	ipCmd(t, "link", "set", n.Bridge, "up")
	for i, name := range nodes {
		nn := &NetNode{Name: name, NS: fmt.Sprintf("%s%d-%s", netPrefix, pid, name)}
		for _, subnet := range n.Subnets {
			addr := subnet.Addr()
			for range 10 + i {
				addr = addr.Next()
			}
			nn.Addrs = append(nn.Addrs, addr)
		}
		nn.Addr = nn.Addrs[0]
		veth := fmt.Sprintf("sgv%d-%d", pid, i)
		ipCmd(t, "netns", "add", nn.NS)
		n.nodes[name] = nn
		ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", nn.NS)
		ipCmd(t, "link", "set", veth, "master", n.Bridge, "up")
		for j, subnet := range n.Subnets {
			ipCmd(t, addrAdd(nn.NS, nn.Addrs[j], subnet, "eth0")...)
		}
		ipCmd(t, "-n", nn.NS, "link", "set", "eth0", "up")
		ipCmd(t, "-n", nn.NS, "link", "set", "lo", "up") // a new namespace's loopback is down: 127.0.0.1 would not work
	}
	t.Logf("network (%s): bridge %s %v (host side %v); %s", family, n.Bridge, n.Subnets, n.Gateways, n)
	return n
}

// Node returns a node's namespace and address.
func (n *Network) Node(name string) *NetNode {
	nn, ok := n.nodes[name]
	if !ok {
		panic(fmt.Sprintf("e2e: no node %q in the network", name))
	}
	return nn
}

func (n *Network) String() string {
	var s []string
	for _, nn := range n.nodes {
		s = append(s, fmt.Sprintf("%s=%s (netns %s)", nn.Name, nn.AddrList(), nn.NS))
	}
	return strings.Join(sortStrings(s), ", ")
}

func (n *Network) teardown(t *testing.T) {
	for _, nn := range n.nodes {
		if out, err := exec.Command("ip", "netns", "del", nn.NS).CombinedOutput(); err != nil {
			t.Errorf("teardown: ip netns del %s: %v: %s", nn.NS, err, out)
		}
	}
	if !n.bridge {
		return
	}
	if out, err := exec.Command("ip", "link", "del", n.Bridge).CombinedOutput(); err != nil {
		t.Errorf("teardown: ip link del %s: %v: %s", n.Bridge, err, out)
	}
}

// DialContext dials from inside the node's network namespace, e.g. 127.0.0.1:10257 of
// that node. The socket is created on a thread switched into the namespace and keeps
// belonging to it after the thread switches back.
func (nn *NetNode) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	target, err := os.Open(filepath.Join("/run/netns", nn.NS))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("entering netns %s: %w", nn.NS, err)
	}
	conn, dialErr := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime then retires it with the goroutine.
		return nil, fmt.Errorf("leaving netns %s: %w", nn.NS, err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

// removeStaleNetworks deletes namespaces, bridges and veths of earlier runs whose test
// process is gone (a run killed before its cleanup ran).
func removeStaleNetworks(t *testing.T) {
	t.Helper()
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if pid, ok := ownerPid(e.Name(), netPrefix, "-"); ok && !alive(pid) {
				t.Logf("removing stale netns %s (its test process %d is gone)", e.Name(), pid)
				exec.Command("ip", "netns", "del", e.Name()).Run()
			}
		}
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		pid, ok := ownerPid(ifc.Name, "sgbr", "")
		if !ok {
			pid, ok = ownerPid(ifc.Name, "sgv", "-")
		}
		if ok && !alive(pid) {
			t.Logf("removing stale link %s (its test process %d is gone)", ifc.Name, pid)
			exec.Command("ip", "link", "del", ifc.Name).Run()
		}
	}
}

// ownerPid parses <prefix><pid><sep>… (or <prefix><pid> when sep is "").
func ownerPid(name, prefix, sep string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	if sep != "" {
		if rest, _, ok = strings.Cut(rest, sep); !ok {
			return 0, false
		}
	}
	pid, err := strconv.Atoi(rest)
	return pid, err == nil && pid > 0
}

// alive reports whether pid is a running test binary like this one.
func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	self, _ := os.Executable()
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == filepath.Base(self)
}

// addrAdd is the ip(8) arguments adding addr/<subnet's bits> to dev (in netns ns unless
// ""); IPv6 addresses skip duplicate address detection, which would hold them tentative.
func addrAdd(ns string, addr netip.Addr, subnet netip.Prefix, dev string) []string {
	var args []string
	if ns != "" {
		args = append(args, "-n", ns)
	}
	args = append(args, "addr", "add", prefixOf(addr, subnet), "dev", dev)
	if addr.Is6() {
		args = append(args, "nodad")
	}
	return args
}

// freeSubnet picks the first 10.241.<n>.0/24 (family 4) or fd5c:241:<n>::/64 (family 6)
// that no host interface has an address in.
func freeSubnet(t *testing.T, family int) netip.Prefix {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("listing host addresses: %v", err)
	}
	for i := 1; i < 255; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 241, byte(i), 0}), 24)
		if family == 6 {
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x5c, 0x02, 0x41, 0, byte(i)}), 64)
		}
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ad, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(ad.Unmap()) {
					used = true
				}
			}
		}
		if !used {
			return p
		}
	}
	t.Fatalf("no free IPv%d test subnet (10.241.<n>.0/24, fd5c:241:<n>::/64) on this host", family)
	return netip.Prefix{}
}

func prefixOf(a netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(a, p.Bits()).String()
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// lockFile holds an exclusive flock on path until the returned func is called.
func lockFile(t *testing.T, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	return func() { f.Close() }
}
