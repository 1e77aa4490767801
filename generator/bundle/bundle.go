// Package bundle defines rendered output as plain data: a Plan holds, per cluster and per
// node, the files scratchgen decided to write, each with its path, mode and contents.
// Nothing here touches the disk; the writer package persists a Plan.
package bundle

import (
	"io/fs"
	"path"
	"slices"
	"sort"
)

// Modes used for every rendered file. Nothing else is ever written.
const (
	ModePublic  fs.FileMode = 0o644 // certificates, manifests, configs, units
	ModeSecret  fs.FileMode = 0o600 // private keys, tokens, kubeconfigs holding keys
	ModeDir     fs.FileMode = 0o755 // every directory
	ModeExecute fs.FileMode = 0o755 // scripts run by units
)

// File is one rendered file.
type File struct {
	// Path is slash-separated. Inside a Node it is the absolute path on the machine
	// ("/etc/kubernetes/pki/ca.crt"); in a flattened bundle it is relative to the
	// bundle root ("nodes/cp-1/rootfs/etc/kubernetes/pki/ca.crt").
	Path string
	// Mode is the file's permission bits (ModePublic, ModeSecret or ModeExecute).
	Mode fs.FileMode
	// Data is the exact content.
	Data []byte
	// Binary marks a carried node binary (kubelet, kube-proxy, an extra download): it
	// reaches the node with rootfs/ (rsync, the machine image), never inside a view.
	Binary bool
	// Secret marks content that must never appear in reviewable output
	// (private keys, tokens, kubeconfigs that embed either).
	Secret bool
	// Membership marks content that lists the cluster's nodes (the routes table): it
	// changes whenever a node is added or removed, so a view that is not self-contained
	// (secrets not embedded) leaves it out, and it reaches the node with rootfs/ like
	// the secrets, by the delivery that also keeps it current.
	Membership bool
	// Owner names the plan step (or component) that rendered the file, for error
	// messages and checks; it is not written anywhere.
	Owner string
	// Pending is set when the content could not be rendered because it needs the root
	// secret (a review without it): it says why ("needs the root secret", "would be
	// issued"), and Data is empty. A plan with pending files can be compared, never
	// written.
	Pending string
	// Version is set on secret files: a digest of everything their content is derived
	// from except the root secret itself (identities, generations, the certificates they
	// embed, the secret's verifier), so it is the same with and without the secret and
	// changes exactly when the content does. Digests of a component's inputs (the static
	// pods' inputs annotation) use it instead of the content.
	Version string
}

// Node is everything rendered for one machine.
type Node struct {
	// Name is the node name from the spec.
	Name string
	// Rootfs holds files at their absolute paths on the node.
	Rootfs []File
	// Extra holds per-node files beside rootfs/ (Ignition, cloud-init), paths relative
	// to the node directory ("ignition.json").
	Extra []File
	// Units lists the systemd units to enable on the node, in start order.
	Units []string
	// Remote are files the node's Ignition fetches by URL, verified by their pinned
	// SHA-512 (the binaries rootfs/ does not carry), sorted by path.
	Remote []RemoteFile
}

// RemoteFile is a file fetched at provisioning time.
type RemoteFile struct {
	// Path is the node path; Mode its permission bits.
	Path string
	Mode fs.FileMode
	// URL is where it is fetched from; SHA512 the hex SHA-512 it must have.
	URL, SHA512 string
}

// Plan is the complete output for one cluster.
type Plan struct {
	// Cluster is the cluster name; the bundle lives in <output>/<Cluster>.
	Cluster string
	// Admin holds operator files relative to admin/ ("admin.kubeconfig", "addons/coredns.yaml").
	Admin []File
	// Top holds files at the bundle root (".gitignore", "README").
	Top []File
	// Nodes is in spec order.
	Nodes []Node
}

// Node returns the node with the given name, or nil.
func (p *Plan) Node(name string) *Node {
	for i := range p.Nodes {
		if p.Nodes[i].Name == name {
			return &p.Nodes[i]
		}
	}
	return nil
}

// Files flattens the plan into paths relative to the bundle root, sorted by path.
// SHA256SUMS is not included: the writer computes it from this list.
func (p *Plan) Files() []File {
	n := len(p.Top) + len(p.Admin)
	for i := range p.Nodes {
		n += len(p.Nodes[i].Rootfs) + len(p.Nodes[i].Extra)
	}
	out := make([]File, 0, n)
	p.each(func(rel string, f *File) {
		c := *f
		c.Path = rel
		out = append(out, c)
	})
	Sort(out)
	return out
}

// SecretPaths lists the paths (relative to the bundle root, as Files has them) of the
// files marked Secret, sorted, without flattening the rest of the plan.
func (p *Plan) SecretPaths() []string {
	var out []string
	p.each(func(rel string, f *File) {
		if f.Secret {
			out = append(out, rel)
		}
	})
	slices.Sort(out)
	return out
}

// each calls fn with every file of the plan and its path relative to the bundle root.
func (p *Plan) each(fn func(rel string, f *File)) {
	for i := range p.Top {
		fn(p.Top[i].Path, &p.Top[i])
	}
	for i := range p.Admin {
		fn(path.Join("admin", p.Admin[i].Path), &p.Admin[i])
	}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		base := path.Join("nodes", n.Name)
		for j := range n.Rootfs {
			fn(path.Join(base, "rootfs", n.Rootfs[j].Path), &n.Rootfs[j])
		}
		for j := range n.Extra {
			fn(path.Join(base, n.Extra[j].Path), &n.Extra[j])
		}
	}
}

// Sort orders files by path.
func Sort(files []File) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}
