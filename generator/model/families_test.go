package model

import (
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// familySpec is a three-node spec with the given network block and node addresses.
func familySpec(t *testing.T, network string, addrs ...string) *spec.Document {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: scratchgen.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: fam\nspec:\n  kubernetesVersion: v1.36.3\n  network:\n")
	b.WriteString(network)
	b.WriteString("  nodes:\n")
	names := []string{"cp-1", "worker-1", "worker-2"}
	for i, a := range addrs {
		role := "[worker]"
		if i == 0 {
			role = "[control-plane, etcd]"
		}
		b.WriteString("  - name: " + names[i] + "\n    address: " + a + "\n    roles: " + role + "\n")
	}
	doc, errs := spec.Parse([]byte(b.String()))
	if len(errs) > 0 {
		t.Fatalf("parse: %s", errs.Format("spec"))
	}
	return doc
}

// roundTrip writes a lock and reads it back, as the CLI does between runs.
func roundTrip(t *testing.T, lk *lock.Lock) *lock.Lock {
	t.Helper()
	data, err := lk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, errs := lock.Parse(data)
	if len(errs) > 0 {
		t.Fatalf("lock parse: %s\n%s", errs.Format("lock"), data)
	}
	return out
}

const dualNet = "    podCIDR: 10.10.0.0/16,fd00:10::/56\n    serviceCIDR: 10.96.0.0/12,fd00:96::/112\n"

// TestDualStackAllocation: each node gets one range per family, the lock keeps them, a
// re-render with a node added moves none of them, and the derived service IPs are per family.
func TestDualStackAllocation(t *testing.T) {
	doc := familySpec(t, dualNet, "10.0.0.10,fd00::10", "10.0.0.21,fd00::21")
	c, lk, errs := Resolve(doc, nil)
	if len(errs.Errors()) > 0 {
		t.Fatalf("resolve: %s", errs.Format("spec"))
	}
	if got := JoinPrefixes(c.Node("worker-1").PodCIDRs); got != "10.10.1.0/24,fd00:10:0:1::/64" {
		t.Errorf("worker-1 pod ranges = %s", got)
	}
	if got := c.Node("worker-1").BridgeAddrs; len(got) != 2 || got[1].String() != "fd00:10:0:1::1/64" {
		t.Errorf("worker-1 bridge addresses = %v", got)
	}
	if got := JoinAddrs(c.APIServiceIPs); got != "10.96.0.1,fd00:96::1" {
		t.Errorf("kubernetes Service IPs = %s", got)
	}
	if got := JoinAddrs(c.DNSIPs); got != "10.96.0.10,fd00:96::a" {
		t.Errorf("DNS IPs = %s", got)
	}
	if !c.DualStack() {
		t.Error("DualStack() = false")
	}
	lk = roundTrip(t, lk)
	if lk.PodCIDRs["worker-1"] != "10.10.1.0/24,fd00:10:0:1::/64" || lk.Network.NodePodCIDRMaskSizeIPv6 != 64 {
		t.Errorf("lock = %v %+v", lk.PodCIDRs, lk.Network)
	}

	// A new node placed before worker-1 in the spec takes the next free ranges, not worker-1's.
	doc = familySpec(t, dualNet, "10.0.0.10,fd00::10", "10.0.0.22,fd00::22", "10.0.0.21,fd00::21")
	doc.Cluster.Spec.Nodes[1].Name, doc.Cluster.Spec.Nodes[2].Name = "worker-2", "worker-1"
	c2, lk2, errs := Resolve(doc, lk)
	if len(errs.Errors()) > 0 {
		t.Fatalf("re-resolve: %s", errs.Format("spec"))
	}
	if got := JoinPrefixes(c2.Node("worker-1").PodCIDRs); got != "10.10.1.0/24,fd00:10:0:1::/64" {
		t.Errorf("worker-1 moved to %s", got)
	}
	if got := JoinPrefixes(c2.Node("worker-2").PodCIDRs); got != "10.10.2.0/24,fd00:10:0:2::/64" {
		t.Errorf("worker-2 = %s", got)
	}
	if lk2.PodCIDRs["cp-1"] != lk.PodCIDRs["cp-1"] {
		t.Errorf("cp-1 moved: %s -> %s", lk.PodCIDRs["cp-1"], lk2.PodCIDRs["cp-1"])
	}
}

// TestFamilyChangeNeedsFlag: dropping or adding a family against a lock is refused without
// --allow-network-change; with it, a single-stack cluster gaining IPv6 keeps every node's
// IPv4 range and allocates the IPv6 ones.
func TestFamilyChangeNeedsFlag(t *testing.T) {
	v4 := familySpec(t, "    podCIDR: 10.10.0.0/16\n", "10.0.0.10", "10.0.0.21", "10.0.0.22")
	v4.Cluster.Spec.Nodes[2].PodCIDR = "10.10.7.0/24"
	_, lk, errs := Resolve(v4, nil)
	if len(errs.Errors()) > 0 {
		t.Fatalf("resolve: %s", errs.Format("spec"))
	}
	lk = roundTrip(t, lk)

	dual := familySpec(t, dualNet, "10.0.0.10,fd00::10", "10.0.0.21,fd00::21", "10.0.0.22,fd00::22")
	_, _, errs = Resolve(dual, lk)
	msg := errs.Format("spec")
	if len(errs.Errors()) != 2 || !strings.Contains(msg, "changes the cluster's IP families") || !strings.Contains(msg, "changes the service families") || !strings.Contains(msg, "--allow-network-change") {
		t.Fatalf("adding IPv6 against an IPv4 lock: want the pod and service family-change errors, got:\n%s", msg)
	}

	c, lk2, errs := Resolve(dual, lk, Options{AllowNetworkChange: true})
	if len(errs.Errors()) > 0 {
		t.Fatalf("with the flag: %s", errs.Format("spec"))
	}
	for name, want := range map[string]string{
		"cp-1":     "10.10.0.0/24,fd00:10::/64",
		"worker-1": "10.10.1.0/24,fd00:10:0:1::/64",
		"worker-2": "10.10.7.0/24,fd00:10:0:2::/64",
	} {
		if got := JoinPrefixes(c.Node(name).PodCIDRs); got != want {
			t.Errorf("%s after gaining IPv6 = %s, want %s (the IPv4 range kept)", name, got, want)
		}
	}
	if lk2.Network.PodCIDR != "10.10.0.0/16,fd00:10::/56" {
		t.Errorf("lock network = %+v", lk2.Network)
	}

	// And back: the dual lock refuses the single-stack spec.
	_, _, errs = Resolve(v4, roundTrip(t, lk2))
	if len(errs.Errors()) != 2 || !strings.Contains(errs.Format("spec"), "changes the cluster's IP families") {
		t.Fatalf("dropping IPv6 against a dual-stack lock: got:\n%s", errs.Format("spec"))
	}
}
