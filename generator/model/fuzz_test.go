package model

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// FuzzResolve feeds arbitrary bytes through parse and validation: nothing may panic, and
// a spec that resolves must hold its invariants.
func FuzzResolve(f *testing.F) {
	f.Add([]byte(spec.Example("")))
	seeds, _ := filepath.Glob("../../golden/testdata/invalid/*.yaml")
	valid, _ := filepath.Glob("../../golden/testdata/bundles/*/cluster.yaml") // IPv6 and dual-stack among them
	seeds = append(seeds, valid...)
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, errs := spec.Parse(data)
		if doc == nil {
			if len(errs) == 0 {
				t.Fatal("no document and no error")
			}
			return
		}
		c, lk, problems := Resolve(doc, lock.New("x"))
		if len(problems.Errors()) > 0 {
			if c != nil {
				t.Fatal("errors and a model")
			}
			for _, e := range problems {
				if e.Msg == "" {
					t.Fatalf("empty message at %s", e.Path)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range c.Nodes {
			if len(n.PodCIDRs) != len(c.PodCIDRs) || len(n.Addresses) != len(c.PodCIDRs) {
				t.Fatalf("node %s has ranges %v and addresses %v for cluster families %v", n.Name, n.PodCIDRs, n.Addresses, c.PodCIDRs)
			}
			for f, p := range n.PodCIDRs {
				pod := c.PodCIDRs[f]
				if !pod.Contains(p.Addr()) || p.Bits() != c.NodeMask(pod) {
					t.Fatalf("node %s got %s outside %s (or not a /%d)", n.Name, p, pod, c.NodeMask(pod))
				}
				if n.Addresses[f].Is6() != pod.Addr().Is6() {
					t.Fatalf("node %s address %s is not of %s's family", n.Name, n.Addresses[f], pod)
				}
				if seen[p.String()] {
					t.Fatalf("pod range %s given twice", p)
				}
				seen[p.String()] = true
			}
			if n.PodCIDR != n.PodCIDRs[0] || n.Address != n.Addresses[0] {
				t.Fatalf("node %s primary range/address %s %s differ from the first of %v %v", n.Name, n.PodCIDR, n.Address, n.PodCIDRs, n.Addresses)
			}
			if lk.PodCIDRs[n.Name] != JoinPrefixes(n.PodCIDRs) {
				t.Fatalf("lock disagrees for %s: %s vs %v", n.Name, lk.PodCIDRs[n.Name], n.PodCIDRs)
			}
		}
	})
}
