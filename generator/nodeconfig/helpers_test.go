package nodeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/versions"
)

// variant is the example spec with textual edits (old, new pairs).
type variant struct {
	name  string
	edits []string
}

// variants cover every supported minor and each option that changes node files.
func variants() []variant {
	var vs []variant
	for _, p := range versions.All() {
		vs = append(vs, variant{name: "example-" + p.Minor, edits: []string{"kubernetesVersion: v1.36.3", "kubernetesVersion: " + p.TestedPatch}})
	}
	return append(vs,
		variant{"network-none", []string{"    mode: routed ", "    mode: none   "}},
		variant{"no-masquerade", []string{"masquerade: true ", "masquerade: false"}},
		variant{"flatcar-nftables-perRole", []string{
			"    # os: flatcar", "    os: flatcar",
			"    # proxyMode: iptables", "    proxyMode: nftables",
			"  # auth:\n  #   credentials: perNode", "  auth:\n    credentials: perRole",
		}},
		variant{"cp-also-worker", []string{"roles: [control-plane, etcd] ", "roles: [control-plane, etcd, worker]"}},
		variant{"single-node", []string{"    roles: [control-plane, etcd]", "    roles: [control-plane, etcd, worker]\n__CUT__"}},
		variant{"dual-stack", []string{
			"podCIDR: 10.10.0.0/16 ", "podCIDR: 10.10.0.0/16,fd00:10::/56 ",
			"serviceCIDR: 10.96.0.0/12 ", "serviceCIDR: 10.96.0.0/12,fd00:96::/112 ",
			"address: 10.0.0.10 ", "address: 10.0.0.10,fd00::10 ",
			"address: 10.0.0.21", "address: 10.0.0.21,fd00::21",
			"address: 10.0.0.22", "address: 10.0.0.22,fd00::22",
			"podCIDR: 10.10.7.0/24 ", "podCIDR: 10.10.7.0/24,fd00:10:0:7::/64 ",
		}},
		variant{"ipv6-only", []string{
			"controlPlaneEndpoint: 10.0.0.10 ", `controlPlaneEndpoint: "[fd00::10]:6443" `,
			"podCIDR: 10.10.0.0/16 ", "podCIDR: fd00:10::/56 ",
			"nodePodCIDRMaskSize: 24 ", "nodePodCIDRMaskSizeIPv6: 80 ",
			"serviceCIDR: 10.96.0.0/12 ", "serviceCIDR: fd00:96::/108 ",
			"address: 10.0.0.10 ", "address: fd00::10 ",
			"address: 10.0.0.21", "address: fd00::21",
			"address: 10.0.0.22", "address: fd00::22",
			"podCIDR: 10.10.7.0/24 ", "podCIDR: fd00:10:0:7::/80 ",
		}},
	)
}

// resolve returns the cluster of a variant; it fails the test if an edit no longer applies.
func resolve(t *testing.T, v variant) *model.Cluster {
	t.Helper()
	y := spec.Example("")
	for i := 0; i+1 < len(v.edits); i += 2 {
		if !strings.Contains(y, v.edits[i]) {
			t.Fatalf("variant %s: the example spec no longer contains %q", v.name, v.edits[i])
		}
		y = strings.Replace(y, v.edits[i], v.edits[i+1], 1)
	}
	if i := strings.Index(y, "__CUT__"); i >= 0 {
		// Drop the other nodes: keep the first node and the commented tail after the nodes.
		rest := y[i+len("__CUT__"):]
		j := strings.Index(rest, "\n  # pki:")
		y = y[:i] + rest[j+1:]
	}
	doc, errs := spec.Parse([]byte(y))
	if len(errs.Errors()) > 0 {
		t.Fatalf("variant %s: parse: %s", v.name, errs.Format(v.name))
	}
	c, _, errs := model.Resolve(doc, nil)
	if len(errs.Errors()) > 0 {
		t.Fatalf("variant %s: resolve: %s", v.name, errs.Format(v.name))
	}
	return c
}

// rendered is one node's output.
type rendered struct {
	c     *model.Cluster
	n     *model.Node
	files []bundle.File
	units []string
}

func (r rendered) file(path string) (bundle.File, bool) {
	for _, f := range r.files {
		if f.Path == path {
			return f, true
		}
	}
	return bundle.File{}, false
}

// each renders every node of every variant.
func each(t *testing.T, f func(t *testing.T, r rendered)) {
	for _, v := range variants() {
		c := resolve(t, v)
		for _, n := range c.Nodes {
			t.Run(v.name+"/"+n.Name, func(t *testing.T) {
				files, units, err := Node(c, n)
				if err != nil {
					t.Fatal(err)
				}
				f(t, rendered{c: c, n: n, files: files, units: units})
			})
		}
	}
}

// writeRoot writes files below dir at their node paths with their modes.
func writeRoot(t *testing.T, dir string, files []bundle.File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

// Node runs this package's plan steps for n in the plan's order, as the render does, and
// returns the node's files and units.
func Node(c *model.Cluster, n *model.Node) ([]bundle.File, []string, error) {
	b := bundle.NewNodeBuilder(n.Name)
	for _, step := range []func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error{Kernel, Network(c), Containerd, Kubelet, Proxy, CertCheck(sampleExpiries)} {
		if err := step(c, n, b); err != nil {
			return nil, nil, err
		}
	}
	node, err := b.Finish()
	return node.Rootfs, node.Units, err
}

// sampleExpiries is a certificate list for the watchdog step: one expired, one due
// soon, one far away.
func sampleExpiries(*model.Node) []Expiry {
	return []Expiry{
		{Path: "/etc/kubernetes/pki/ca.crt", Identity: "ca", NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Path: "/var/lib/kubelet/pki/kubelet.crt", Identity: "kubelet-serving/n", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}
