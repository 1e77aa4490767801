package nodeconfig

import (
	"path"

	proxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/kyaml"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// KubeProxyConfiguration returns kube-proxy's configuration for n (API still v1alpha1 in
// every supported minor). Everything else keeps kube-proxy's defaults.
func KubeProxyConfiguration(c *model.Cluster, n *model.Node) *proxyv1alpha1.KubeProxyConfiguration {
	k := &proxyv1alpha1.KubeProxyConfiguration{
		BindAddress:      bindAny(c),
		ClusterCIDR:      model.JoinPrefixes(c.PodCIDRs),
		HostnameOverride: n.Name,
		Mode:             proxyv1alpha1.ProxyMode(c.ProxyMode),
	}
	k.ClientConnection.Kubeconfig = paths.KubeProxyKubeconfig
	k.APIVersion = proxyv1alpha1.SchemeGroupVersion.String()
	k.Kind = "KubeProxyConfiguration"
	return k
}

// Proxy is the plan step of kube-proxy: its configuration and unit.
func Proxy(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
	if err := checkResolved(n); err != nil {
		return err
	}
	conf, err := kyaml.Marshal(KubeProxyConfiguration(c, n))
	if err != nil {
		return err
	}
	conf = append([]byte("# "+header+"\n"), conf...)
	deps := append([]string{"network-online.target"}, nodeDeps(c)...)
	u := unit{
		{"Unit", []entry{
			kv("Description", "kube-proxy: The Kubernetes Network Proxy"),
			kv("Documentation", "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/"),
			kv("Wants", deps...),
			kv("After", deps...),
			kv("StartLimitIntervalSec", "0"),
		}},
		{"Service", []entry{
			command("ExecStart",
				path.Join(n.BinDir(), "kube-proxy"),
				"--config="+paths.KubeProxyConfig,
				"--hostname-override="+n.Name),
			kv("Restart", "always"),
			kv("RestartSec", "10"),
		}},
		{"Install", []entry{kv("WantedBy", "multi-user.target")}},
	}
	b.Public(paths.KubeProxyConfig, conf)
	b.Public(paths.KubeProxyUnit, u.bytes())
	b.Unit(bundle.Unit{Name: paths.KubeProxyService, After: deps})
	return nil
}

// bindAny is the unspecified address of the cluster's primary family (kubeadm's choice
// for kube-proxy's bindAddress, from which kube-proxy also takes its primary family).
func bindAny(c *model.Cluster) string {
	if c.PodCIDR.Addr().Is6() {
		return "::"
	}
	return "0.0.0.0"
}
