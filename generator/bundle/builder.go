package bundle

import (
	"fmt"
	"slices"
	"strings"
)

// Unit is a systemd unit a plan step asks the node to enable, with the units it must
// start after and before (as its After= and Before= say). They may name units no step
// declares (network-online.target): those order nothing here.
type Unit struct {
	Name          string
	After, Before []string
}

// NodeBuilder collects one node's files and units from the plan steps. Steps add files
// and declare units; Finish checks that no two steps write one path and orders the units
// by what they declared. It is not safe for concurrent use (one builder per node).
type NodeBuilder struct {
	name   string
	files  []File
	units  []Unit
	remote []RemoteFile
	// owner is the step currently adding, stamped on files that carry no Owner.
	owner string
}

// NewNodeBuilder returns an empty builder for the node named name.
func NewNodeBuilder(name string) *NodeBuilder { return &NodeBuilder{name: name} }

// SetOwner names the step whose files follow (used by the plan's step loop).
func (b *NodeBuilder) SetOwner(step string) { b.owner = step }

// Add adds files at their absolute node paths.
func (b *NodeBuilder) Add(files ...File) {
	for _, f := range files {
		if f.Owner == "" {
			f.Owner = b.owner
		}
		b.files = append(b.files, f)
	}
}

// Public adds a public file (mode 0644).
func (b *NodeBuilder) Public(path string, data []byte) {
	b.Add(File{Path: path, Mode: ModePublic, Data: data})
}

// Executable adds a script (mode 0755).
func (b *NodeBuilder) Executable(path string, data []byte) {
	b.Add(File{Path: path, Mode: ModeExecute, Data: data})
}

// Membership adds a public file that lists the cluster's nodes (see File.Membership).
func (b *NodeBuilder) Membership(path string, data []byte) {
	b.Add(File{Path: path, Mode: ModePublic, Data: data, Membership: true})
}

// Secret adds a secret file (mode 0600, never in reviewable output).
func (b *NodeBuilder) Secret(path string, data []byte) {
	b.Add(File{Path: path, Mode: ModeSecret, Data: data, Secret: true})
}

// Files returns the files added so far (what earlier steps rendered), in order. The
// slice is the builder's: do not modify it.
func (b *NodeBuilder) Files() []File { return b.files }

// Remote adds a file the node's Ignition fetches (see Node.Remote).
func (b *NodeBuilder) Remote(f RemoteFile) { b.remote = append(b.remote, f) }

// Unit declares a unit to enable (see Unit for its ordering).
func (b *NodeBuilder) Unit(u Unit) {
	u.After, u.Before = slices.Clone(u.After), slices.Clone(u.Before)
	b.units = append(b.units, u)
}

// Finish returns the node: files sorted by path, units in start order. Start order is
// the declaration order, except that a unit always comes after every declared unit it
// names in After and every declared unit that names it in Before (a stable topological
// order: of the units whose predecessors are all placed, the one declared first goes
// next). Two files at one path, a unit declared twice
// and an ordering cycle are errors.
func (b *NodeBuilder) Finish() (Node, error) {
	n := Node{Name: b.name, Rootfs: slices.Clone(b.files), Remote: slices.Clone(b.remote)}
	Sort(n.Rootfs)
	slices.SortFunc(n.Remote, func(a, c RemoteFile) int { return strings.Compare(a.Path, c.Path) })
	for i := 1; i < len(n.Rootfs); i++ {
		if a, c := n.Rootfs[i-1], n.Rootfs[i]; a.Path == c.Path {
			return n, fmt.Errorf("two plan steps both write %s (%s and %s)", c.Path, a.Owner, c.Owner)
		}
	}
	units, err := startOrder(b.units)
	if err != nil {
		return n, err
	}
	n.Units = units
	return n, nil
}

// startOrder orders units topologically by After and Before, ties broken by declaration
// order.
func startOrder(units []Unit) ([]string, error) {
	index := map[string]int{}
	for i, u := range units {
		if _, dup := index[u.Name]; dup {
			return nil, fmt.Errorf("unit %s is declared twice", u.Name)
		}
		index[u.Name] = i
	}
	// after[i] lists the units i waits for.
	after := make([][]int, len(units))
	for i, u := range units {
		for _, a := range u.After {
			if j, ok := index[a]; ok {
				after[i] = append(after[i], j)
			}
		}
		for _, b := range u.Before {
			if j, ok := index[b]; ok {
				after[j] = append(after[j], i)
			}
		}
	}
	placed := make([]bool, len(units))
	out := make([]string, 0, len(units))
	for len(out) < len(units) {
		next := -1
		for i := range units {
			if placed[i] {
				continue
			}
			ready := true
			for _, j := range after[i] {
				if !placed[j] {
					ready = false
					break
				}
			}
			if ready {
				next = i
				break
			}
		}
		if next < 0 {
			var left []string
			for i, u := range units {
				if !placed[i] {
					left = append(left, u.Name)
				}
			}
			return nil, fmt.Errorf("units %s order each other in a cycle", strings.Join(left, ", "))
		}
		placed[next] = true
		out = append(out, units[next].Name)
	}
	return out, nil
}
