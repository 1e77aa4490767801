package verify

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/provision"
)

// loadMetadata reads bundle.json and checks that it describes this bundle's nodes.
func (b *checker) loadMetadata() {
	f := b.files[bundle.MetadataName]
	if f == nil {
		b.problemf(bundle.MetadataName, "is missing: the bundle cannot be checked against what rendered it; re-render it")
		return
	}
	m, err := bundle.ParseMetadata(f.data)
	if err != nil {
		b.problemf(bundle.MetadataName, "cannot be read: %v", err)
		return
	}
	b.meta = m
	var listed []string
	for _, nm := range m.Nodes {
		listed = append(listed, nm.Name)
	}
	var onDisk []string
	for _, n := range b.nodes {
		onDisk = append(onDisk, n.name)
		if m.Node(n.name) == nil {
			b.problemf(n.base, "is a node %s does not list", bundle.MetadataName)
		}
	}
	for _, name := range listed {
		if !slices.Contains(onDisk, name) {
			b.problemf(bundle.MetadataName, "lists node %q, which the bundle does not hold", name)
		}
	}
}

// checkViewBytes renders each node's views again from its rootfs on disk and the inputs
// bundle.json records (OS, units, embedded secrets), and requires the same bytes: a view
// is a deterministic function of those, so any other byte is something scratchgen did
// not write (a command, a user, a link, a remote source …), named where it can be.
func (b *checker) checkViewBytes() {
	if b.meta == nil {
		return
	}
	type job struct {
		n        *node
		problems []Problem
	}
	jobs := make([]*job, len(b.nodes))
	nodes := make([]*bundle.Node, len(b.nodes))
	for i, n := range b.nodes {
		jobs[i] = &job{n: n}
		nodes[i] = b.viewInputs(n)
	}
	// Files many nodes share are encoded and translated once (provision.Cache).
	cache := provision.NewCache(slices.DeleteFunc(slices.Clone(nodes), func(n *bundle.Node) bool { return n == nil }))
	parallel(len(jobs), func(i int) {
		j := jobs[i]
		j.problems = b.viewBytes(cache, j.n, nodes[i])
	})
	for _, j := range jobs {
		for _, p := range j.problems {
			b.add(p)
		}
	}
}

// viewInputs is node n as its views are rendered from it (nil when bundle.json does not
// list it).
func (b *checker) viewInputs(n *node) *bundle.Node {
	nm := b.meta.Node(n.name)
	if nm == nil {
		return nil
	}
	node := bundle.Node{Name: n.name, Units: nm.Units}
	carried := b.carriedBinaries(n)
	for p, f := range n.rootfs {
		// Every secret scratchgen writes is 0600, and nothing else is; the binaries are
		// the ones bundle.json says rootfs/ carries.
		node.Rootfs = append(node.Rootfs, bundle.File{Path: p, Mode: f.mode, Data: f.data, Secret: f.mode == bundle.ModeSecret,
			Binary: carried[p] != nil, Membership: isClusterTable(p)})
	}
	bundle.Sort(node.Rootfs)
	if !nm.BinariesCarried {
		node.Remote = binaries.Remote(nm.Binaries)
		slices.SortFunc(node.Remote, func(a, c bundle.RemoteFile) int { return strings.Compare(a.Path, c.Path) })
	}
	return &node
}

func (b *checker) viewBytes(cache *provision.Cache, n *node, node *bundle.Node) []Problem {
	if node == nil {
		return nil
	}
	views, err := cache.Views(node, b.meta.Node(n.name).OS, b.meta.EmbedSecrets)
	if err != nil {
		return []Problem{{Node: n.name, Path: n.base, Msg: fmt.Sprintf("its views cannot be rendered from its rootfs: %v", err)}}
	}
	var out []Problem
	for _, v := range views {
		rel := n.base + "/" + v.Path
		f := b.files[rel]
		if f == nil || bytes.Equal(f.data, v.Data) {
			continue // a missing view is reported by checkViews
		}
		msg := "is not what its rootfs renders (re-render, or find who edited it)"
		if diffs, err := provision.DiffDirectives(v.Path, v.Data, f.data); err == nil && len(diffs) > 0 {
			shown := diffs[:min(5, len(diffs))]
			msg = "carries what scratchgen did not render: " + strings.Join(shown, "; ")
			if len(diffs) > len(shown) {
				msg += fmt.Sprintf("; and %d more", len(diffs)-len(shown))
			}
		}
		out = append(out, Problem{Node: n.name, Path: rel, Msg: msg})
	}
	return out
}
