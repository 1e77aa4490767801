package nodeconfig

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/kyaml"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// ControlPlaneTaint keeps ordinary workloads off control-plane and etcd nodes that are not
// also workers (kubeadm's taint).
var ControlPlaneTaint = corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}

// systemdResolvedConf is the resolv.conf listing the real upstream servers when
// systemd-resolved runs; its default /etc/resolv.conf points at the 127.0.0.53 stub, which
// is unreachable from a pod and makes CoreDNS's loop plugin stop the pod.
const systemdResolvedConf = "/run/systemd/resolve/resolv.conf"

// KubeletConfiguration returns the kubelet configuration for n. Only fields every
// supported minor (1.34 to 1.36) knows are set, and the container runtime endpoint is a
// config field (1.27+), never a flag; --pod-infra-container-image (removed in 1.35) is never
// used: containerd's sandbox_image names the pause image.
func KubeletConfiguration(c *model.Cluster, n *model.Node) *kubeletv1beta1.KubeletConfiguration {
	k := &kubeletv1beta1.KubeletConfiguration{
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: new(false)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: new(true)},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: paths.CACert},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		CgroupDriver:             "systemd",
		ClusterDNS:               clusterDNS(c),
		ClusterDomain:            c.DNSDomain,
		ContainerRuntimeEndpoint: paths.ContainerdSocket,
		HealthzBindAddress:       "127.0.0.1",
		HealthzPort:              new(int32(10248)),
		// Pod ranges are rendered, not allocated by the controller manager, so the kubelet
		// gets its range from here and passes it to the runtime.
		PodCIDR: model.JoinPrefixes(n.PodCIDRs),
		// The serving certificate is issued by scratchgen's CA, like every other
		// certificate: no CSR bootstrap and no rotation through the certificates API
		// (serverTLSBootstrap and rotateCertificates stay at their default, false). The
		// client certificate in the kubeconfig is scratchgen's too; re-render to renew.
		TLSCertFile:       paths.KubeletServingCert,
		TLSPrivateKeyFile: paths.KubeletServingKey,
	}
	if n.RunsStaticPods() {
		k.StaticPodPath = paths.ManifestsDir
	}
	if n.RunsStaticPods() && !n.Worker() {
		k.RegisterWithTaints = []corev1.Taint{ControlPlaneTaint}
	}
	if n.OS == model.OSFlatcar || n.OS == model.OSFCOS {
		// Both run systemd-resolved by default (Fedora CoreOS points /etc/resolv.conf at
		// its stub); this file lists the real upstream servers whatever that link says.
		k.ResolverConfig = new(systemdResolvedConf)
	}
	k.APIVersion = kubeletv1beta1.SchemeGroupVersion.String()
	k.Kind = "KubeletConfiguration"
	return k
}

// Kubelet is the plan step of the kubelet: its configuration, its unit and the drop-in
// with this node's command line.
func Kubelet(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
	if err := checkResolved(n); err != nil {
		return err
	}
	conf, err := kyaml.Marshal(KubeletConfiguration(c, n))
	if err != nil {
		return err
	}
	conf = append([]byte(`# `+header+`
# The kubelet's serving certificate (tlsCertFile) and its client certificate (kubeconfig)
# are issued by scratchgen's CA, so serverTLSBootstrap and rotateCertificates stay false.
`), conf...)

	base := unit{
		{"Unit", []entry{
			kv("Description", "kubelet: The Kubernetes Node Agent"),
			kv("Documentation", "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/"),
			kv("Wants", "network-online.target", paths.ContainerdService),
			kv("After", "network-online.target", paths.ContainerdService),
			// Never give up restarting: the kubelet waits for the API server and the runtime.
			kv("StartLimitIntervalSec", "0"),
		}},
		{"Service", []entry{
			kv("ExecStart", path.Join(n.BinDir(), "kubelet")),
			kv("Restart", "always"),
			kv("RestartSec", "10"),
		}},
		{"Install", []entry{kv("WantedBy", "multi-user.target")}},
	}
	// Flags only for what is not a config field; sorted.
	argv := []string{
		path.Join(n.BinDir(), "kubelet"),
		"--config=" + paths.KubeletConfig,
		"--hostname-override=" + n.Name,
		"--kubeconfig=" + paths.KubeletKubeconfig,
		"--node-ip=" + model.JoinAddrs(n.Addresses),
	}
	deps := nodeDeps(c)
	dropIn := unit{
		{"Unit", []entry{
			kv("Wants", deps...),
			kv("After", deps...),
		}},
		{"Service", []entry{
			kv("ExecStart"), // clears the base unit's command
			command("ExecStart", argv...),
		}},
	}
	b.Public(paths.KubeletConfig, conf)
	b.Public(paths.KubeletUnit, base.bytes())
	b.Public(paths.KubeletDropIn, dropIn.bytes())
	b.Unit(bundle.Unit{Name: paths.KubeletService, After: append([]string{"network-online.target", paths.ContainerdService}, deps...)})
	return nil
}

// clusterDNS is the cluster DNS Service's IP of each family, primary first: the kubelet
// lists them all as nameservers in every pod's resolv.conf.
func clusterDNS(c *model.Cluster) []string {
	out := make([]string, len(c.DNSIPs))
	for i, a := range c.DNSIPs {
		out[i] = a.String()
	}
	return out
}
