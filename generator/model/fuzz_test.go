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
			if !c.PodCIDR.Contains(n.PodCIDR.Addr()) || n.PodCIDR.Bits() != c.NodeMaskSize {
				t.Fatalf("node %s got %s outside %s", n.Name, n.PodCIDR, c.PodCIDR)
			}
			if seen[n.PodCIDR.String()] {
				t.Fatalf("pod range %s given twice", n.PodCIDR)
			}
			seen[n.PodCIDR.String()] = true
			if lk.PodCIDRs[n.Name] != n.PodCIDR.String() {
				t.Fatalf("lock disagrees for %s", n.Name)
			}
		}
	})
}
