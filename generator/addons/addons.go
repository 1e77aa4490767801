// Package addons renders the cluster add-ons the operator applies once the API server is
// up (rbac.yaml first, as super-admin; then coredns.yaml): cluster DNS (CoreDNS behind the kube-dns Service
// at the cluster DNS IP the kubelets are configured with) and the RBAC bindings a
// from-scratch cluster needs because no kubeadm creates them.
//
// Objects use the upstream k8s.io/api types, serialized without zero-value noise; each
// file is a multi-document YAML stream in a fixed order, so output is deterministic.
package addons

import (
	"fmt"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/kyaml"
	"github.com/scratchgen/scratchgen/generator/model"
)

// Paths relative to the bundle's admin/ directory.
const (
	Dir     = "addons"
	CoreDNS = Dir + "/coredns.yaml"
	RBAC    = Dir + "/rbac.yaml"
)

// Headers say how to apply each file. rbac.yaml comes first and needs system:masters:
// admin.kubeconfig's group gets cluster-admin only from the binding inside it.
const (
	rbacHeader = `# Written by scratchgen. Apply FIRST, as super-admin (group system:masters), on a
# control-plane node: admin.kubeconfig's group kubeadm:cluster-admins gets its rights from
# the first binding below, so it cannot apply this file itself (copy the file there):
#   kubectl --kubeconfig=/etc/kubernetes/super-admin.conf apply -f rbac.yaml
`
	coreDNSHeader = `# Written by scratchgen. Apply after rbac.yaml:
#   kubectl --kubeconfig=admin/admin.kubeconfig apply -f admin/addons/coredns.yaml
`
)

// Files returns the add-on manifests under the bundle's admin/addons/ (paths relative to
// admin/, e.g. "addons/coredns.yaml"), sorted by path.
func Files(c *model.Cluster) ([]bundle.File, error) {
	var files []bundle.File
	for _, a := range []struct {
		path, header string
		objs         func(*model.Cluster) ([]any, error)
	}{
		{CoreDNS, coreDNSHeader, coreDNSObjects},
		{RBAC, rbacHeader, rbacObjects},
	} {
		objs, err := a.objs(c)
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", a.path, err)
		}
		data, err := kyaml.MarshalDocuments(objs...)
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", a.path, err)
		}
		files = append(files, bundle.File{Path: a.path, Mode: bundle.ModePublic, Data: append([]byte(a.header), data...)})
	}
	bundle.Sort(files)
	return files, nil
}
