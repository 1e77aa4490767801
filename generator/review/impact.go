package review

import (
	"path"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Components named in the impact summary.
const (
	compEtcd              = "etcd"
	compAPIServer         = "kube-apiserver"
	compControllerManager = "kube-controller-manager"
	compScheduler         = "kube-scheduler"
	compContainerd        = "containerd"
	compKubelet           = "kubelet"
	compKubeProxy         = "kube-proxy"
	compPods              = "pods"
	compKernel            = "scratchgen-kernel"
	compRoutes            = "scratchgen-routes"
	compMasquerade        = "scratchgen-masquerade"
	compImages            = "scratchgen-images"
	compOperator          = "operator credentials"
	compUnknown           = "unknown component (check by hand)"
)

// componentOrder is the order components are listed in for one node.
var componentOrder = []string{compEtcd, compAPIServer, compControllerManager, compScheduler,
	compContainerd, compKubelet, compKubeProxy, compPods, compKernel, compRoutes, compMasquerade,
	compImages, compOperator, compUnknown}

// staticPods maps a static pod component to its manifest: the component is affected on
// a node only if the node runs it.
var staticPods = map[string]string{
	compEtcd:              paths.EtcdManifest,
	compAPIServer:         paths.APIServerManifest,
	compControllerManager: paths.ControllerManagerManifest,
	compScheduler:         paths.SchedulerManifest,
}

// impactRule maps a node path (or every path below a directory, when it ends in "/") to
// the components that read it. what names the file in reasons ("manifest changed");
// empty means the file's base name.
type impactRule struct {
	path       string
	components []string
	what       string
}

// impactTable says which component reads which node file. Static pods restart by
// themselves when their manifest changes (the kubelet recreates them); for everything
// else the operator restarts or reloads the component. It is never modified.
var impactTable = []impactRule{
	{paths.EtcdManifest, []string{compEtcd}, "manifest"},
	{paths.APIServerManifest, []string{compAPIServer}, "manifest"},
	{paths.ControllerManagerManifest, []string{compControllerManager}, "manifest"},
	{paths.SchedulerManifest, []string{compScheduler}, "manifest"},

	{paths.CACert, []string{compAPIServer, compControllerManager, compKubelet}, ""},
	{paths.CAKey, []string{compControllerManager}, ""},
	{paths.APIServerCert, []string{compAPIServer}, ""},
	{paths.APIServerKey, []string{compAPIServer}, ""},
	{paths.APIServerKubeletClientCert, []string{compAPIServer}, ""},
	{paths.APIServerKubeletClientKey, []string{compAPIServer}, ""},
	{paths.APIServerEtcdClientCert, []string{compAPIServer}, ""},
	{paths.APIServerEtcdClientKey, []string{compAPIServer}, ""},
	{paths.FrontProxyCACert, []string{compAPIServer, compControllerManager}, ""},
	{paths.FrontProxyClientCert, []string{compAPIServer}, ""},
	{paths.FrontProxyClientKey, []string{compAPIServer}, ""},
	{paths.SAKey, []string{compAPIServer, compControllerManager}, ""},
	{paths.SAPub, []string{compAPIServer}, ""},
	{paths.KnownTokens, []string{compAPIServer}, ""},
	{paths.EtcdCACert, []string{compEtcd, compAPIServer}, "etcd/ca.crt"},
	{paths.EtcdServerCert, []string{compEtcd}, "etcd/server.crt"},
	{paths.EtcdServerKey, []string{compEtcd}, "etcd/server.key"},
	{paths.EtcdPeerCert, []string{compEtcd}, "etcd/peer.crt"},
	{paths.EtcdPeerKey, []string{compEtcd}, "etcd/peer.key"},
	{paths.EtcdHealthcheckClientCert, []string{compOperator}, "etcd/healthcheck-client.crt"},
	{paths.EtcdHealthcheckClientKey, []string{compOperator}, "etcd/healthcheck-client.key"},
	{paths.ControllerManagerConf, []string{compControllerManager}, "kubeconfig"},
	{paths.SchedulerConf, []string{compScheduler}, "kubeconfig"},
	{paths.AdminConf, []string{compOperator}, ""},
	{paths.SuperAdminConf, []string{compOperator}, ""},

	{paths.KubeletConfig, []string{compKubelet}, "config"},
	{paths.KubeletKubeconfig, []string{compKubelet}, "kubeconfig"},
	{paths.KubeletServingCert, []string{compKubelet}, "serving certificate"},
	{paths.KubeletServingKey, []string{compKubelet}, "serving key"},
	{nodeconfig.KubeletUnit, []string{compKubelet}, "unit"},
	{nodeconfig.KubeletDropIn, []string{compKubelet}, "unit drop-in"},
	{paths.KubeProxyConfig, []string{compKubeProxy}, "config"},
	{paths.KubeProxyKubeconfig, []string{compKubeProxy}, "kubeconfig"},
	{nodeconfig.KubeProxyUnit, []string{compKubeProxy}, "unit"},
	{paths.ContainerdConfig, []string{compContainerd}, "config"},
	{nodeconfig.ContainerdDropIn, []string{compContainerd}, "unit drop-in"},
	{paths.CNIConfDir + "/", []string{compPods}, "CNI config"},
	{nodeconfig.KernelUnit, []string{compKernel}, "unit"},
	{nodeconfig.SysctlConf, []string{compKernel}, ""},
	{nodeconfig.ModulesConf, []string{compKernel}, ""},
	{nodeconfig.RoutesUnit, []string{compRoutes}, "unit"},
	{nodeconfig.RoutesScript, []string{compRoutes}, ""},
	{nodeconfig.MasqueradeUnit, []string{compMasquerade}, "unit"},
	{nodeconfig.MasqueradeScript, []string{compMasquerade}, ""},
	{images.UnitPath, []string{compImages}, "unit"},
	{paths.ImagesDir + "/", []string{compImages}, "image archive"},
}

// lookupImpact returns the rule for a node path.
func lookupImpact(p string) (impactRule, bool) {
	for _, r := range impactTable {
		if r.path == p || (strings.HasSuffix(r.path, "/") && strings.HasPrefix(p, r.path)) {
			return r, true
		}
	}
	return impactRule{}, false
}

// impacts derives the impact summary from the groups.
func impacts(groups []Group, oldBy, newBy map[string]*bundle.File) []Impact {
	var out []Impact
	for _, g := range groups {
		switch {
		case g.Node && g.Status == Added:
			out = append(out, Impact{Node: g.Name, Component: "new node", Reasons: []string{"provision it"}})
			continue
		case g.Node && g.Status == Removed:
			out = append(out, Impact{Node: g.Name, Component: "removed node", Reasons: []string{"drain it and delete its Node object"}})
			continue
		}
		reasons := map[string][]string{}
		var extra []Impact
		for _, f := range g.Files {
			reason := func(what string) string {
				if what == "" {
					what = path.Base(f.Path)
				}
				return what + " " + string(f.Change)
			}
			if !g.Node {
				if im, ok := clusterImpact(f, reason); ok {
					extra = append(extra, im)
				}
				continue
			}
			if !strings.HasPrefix(f.Path, "/") {
				continue // provisioning views: used at first boot only
			}
			r, ok := lookupImpact(f.Path)
			if !ok {
				r = impactRule{components: []string{compUnknown}}
			}
			for _, c := range r.components {
				if m, ok := staticPods[c]; ok && !hasNodeFile(g.Name, m, oldBy, newBy) {
					continue // this node does not run it
				}
				reasons[c] = appendOnce(reasons[c], reason(r.what))
			}
		}
		for _, c := range componentOrder {
			if rs := reasons[c]; len(rs) > 0 {
				out = append(out, Impact{Node: g.Name, Component: c, Reasons: rs})
			}
		}
		out = append(out, extra...)
	}
	return out
}

// clusterImpact maps a cluster-level file: add-ons are applied with kubectl, the admin
// kubeconfig replaces the operator's copy.
func clusterImpact(f FileDiff, reason func(string) string) (Impact, bool) {
	switch {
	case strings.HasPrefix(f.Path, "admin/addons/"):
		name := strings.TrimSuffix(path.Base(f.Path), path.Ext(f.Path))
		r := reason("")
		if f.Change != Removed {
			r += ": kubectl apply -f " + f.Path
		}
		return Impact{Node: ClusterGroup, Component: "add-on " + name, Reasons: []string{r}}, true
	case strings.HasPrefix(f.Path, "admin/"):
		return Impact{Node: ClusterGroup, Component: compOperator, Reasons: []string{reason("")}}, true
	}
	return Impact{}, false
}

func hasNodeFile(node, p string, oldBy, newBy map[string]*bundle.File) bool {
	key := "nodes/" + node + "/rootfs" + p
	return oldBy[key] != nil || newBy[key] != nil
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
