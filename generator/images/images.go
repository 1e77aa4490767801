// Package images is scratchgen's only door to container registries and to
// go-containerregistry. It decides which images each node needs, pins tags to digests
// (Pin, online), fetches pinned images into a local OCI image-layout cache (Pull, online),
// and, offline and from the cache only, turns a pinned image into an archive that
// `ctr -n k8s.io images import` accepts (Archive) and the bundle files that carry and
// import those archives on a node (EmbedFiles).
//
// # Which node needs which image
//
// The component table (package component) decides: a node needs the image of every
// component it runs, in the table's order:
//
//   - every node: pause (containerd's sandbox image: every pod, static or not, needs it);
//   - etcd members: etcd;
//   - control-plane nodes: kube-apiserver, kube-controller-manager, kube-scheduler (in
//     hyperkube style these are one image, listed once);
//   - every node: coredns. The CoreDNS add-on is a Deployment that tolerates the
//     control-plane taint (as kubeadm's does; generator/addons), so the scheduler may place
//     it on any node, control-plane and etcd nodes included; a node without the image
//     would try to pull it, which fails where there is no registry.
//
// kube-proxy runs as a host service from a binary in this design, so its image is on no
// node; Pin still pins it, because the model renders (and warns about) every image tag
// it resolves.
//
// # Archives
//
// An archive is an OCI image layout in a tar stream: oci-layout, index.json and the
// blobs, byte for byte as the registry served them (see Archive for why not a plain
// docker-archive). It also carries a Docker-style manifest.json for one platform, as
// `docker save` has done since Docker 25, so docker-archive readers accept it too.
package images

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/model"
)

// Platforms are the platforms Pin records, in this order, where an image index lists them.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// Components returns the image keys (model.Image* names) node n needs, in the component
// table's order: pause, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// coredns for the built-in table. Components sharing one image (hyperkube style) are all
// listed.
func Components(t component.Table, c *model.Cluster, n *model.Node) []string {
	return t.Images(c, n)
}

// ForNode returns the image references by tag (the lock's keys, c.Images.Tags) that
// node n needs, in the order of Components and without duplicates: in hyperkube style
// the one all-in-one image appears once.
func ForNode(t component.Table, c *model.Cluster, n *model.Node) []string {
	return refsFor(t, c, n, c.Images.Tags)
}

// Needed returns every tag reference some node needs, sorted, without duplicates.
func Needed(t component.Table, c *model.Cluster) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range c.Nodes {
		for _, t := range ForNode(t, c, n) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Unpinned returns the tag references some node needs that the lock does not pin, sorted:
// what a render warns about (kube-proxy's image, which no node runs, is not among them).
func Unpinned(t component.Table, c *model.Cluster) []string {
	var out []string
	for _, tag := range Needed(t, c) {
		if slices.Contains(c.Images.Unpinned, tag) {
			out = append(out, tag)
		}
	}
	return out
}

// All returns every tag reference the model resolves (the node images and kube-proxy's),
// sorted, without duplicates: what Pin should pin so that render has nothing unpinned.
func All(c *model.Cluster) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range c.Images.Tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

func refsFor(t component.Table, c *model.Cluster, n *model.Node, refs map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, comp := range Components(t, c, n) {
		r := refs[comp]
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// NodeImages is one node's entry in List.
type NodeImages struct {
	// Node is the node name; Roles its roles in the order control-plane, etcd, worker.
	Node  string
	Roles []string
	// Refs are the references as rendered ("name:tag@sha256:…" where the lock pins the
	// tag, else "name:tag"), in ForNode's order.
	Refs []string
}

// List returns, per node in spec order, the image references the bundle renders for it.
func List(t component.Table, c *model.Cluster) []NodeImages {
	out := make([]NodeImages, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		var roles []string
		for _, r := range []model.Role{model.RoleControlPlane, model.RoleEtcd, model.RoleWorker} {
			if n.Is(r) {
				roles = append(roles, string(r))
			}
		}
		out = append(out, NodeImages{Node: n.Name, Roles: roles, Refs: refsFor(t, c, n, c.Images.Refs)})
	}
	return out
}

// FormatList writes List's result like `kubeadm config images list`: one reference per
// line, each node's group under a "# node NAME (ROLES)" header, groups separated by a
// blank line.
func FormatList(list []NodeImages) string {
	var b strings.Builder
	for i, n := range list {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# node %s (%s)\n", n.Node, strings.Join(n.Roles, ", "))
		for _, r := range n.Refs {
			b.WriteString(r)
			b.WriteString("\n")
		}
	}
	return b.String()
}
