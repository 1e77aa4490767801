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
		BindAddress:      "0.0.0.0",
		ClusterCIDR:      c.PodCIDR.String(),
		HostnameOverride: n.Name,
		Mode:             proxyv1alpha1.ProxyMode(c.ProxyMode),
	}
	k.ClientConnection.Kubeconfig = paths.KubeProxyKubeconfig
	k.APIVersion = proxyv1alpha1.SchemeGroupVersion.String()
	k.Kind = "KubeProxyConfiguration"
	return k
}

func proxyFiles(c *model.Cluster, n *model.Node) ([]bundle.File, error) {
	conf, err := kyaml.Marshal(KubeProxyConfiguration(c, n))
	if err != nil {
		return nil, err
	}
	conf = append([]byte("# "+header+"\n"), conf...)
	deps := append([]string{KernelService}, networkUnits(c)...)
	u := unit{
		{"Unit", []entry{
			kv("Description", "kube-proxy: The Kubernetes Network Proxy"),
			kv("Documentation", "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/"),
			kv("Wants", append([]string{"network-online.target"}, deps...)...),
			kv("After", append([]string{"network-online.target"}, deps...)...),
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
	return []bundle.File{
		public(paths.KubeProxyConfig, conf),
		public(KubeProxyUnit, u.bytes()),
	}, nil
}
