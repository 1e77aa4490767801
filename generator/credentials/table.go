// Package credentials plans the cluster's PKI and credentials: the three CAs, every leaf
// certificate, the service-account key pair, kubeconfigs and known_tokens.csv, placed on
// the nodes that need them and nowhere else. Keys are derived from the root secret and
// certificates are issued deterministically (package pki), so the same spec, lock and
// secret always give the same bytes.
package credentials

import (
	"net/netip"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// CA names.
const (
	CA           = "ca"
	EtcdCA       = "etcd-ca"
	FrontProxyCA = "front-proxy-ca"
)

// Well-known identities (users and groups) the rendered cluster relies on.
const (
	AdminUser            = "kubernetes-admin"
	AdminGroup           = "kubeadm:cluster-admins"
	SuperAdminUser       = "kubernetes-super-admin"
	MastersGroup         = "system:masters"
	NodesGroup           = "system:nodes"
	NodeUserPrefix       = "system:node:"
	KubeProxyUser        = "system:kube-proxy"
	ControllerManagerUsr = "system:kube-controller-manager"
	SchedulerUser        = "system:kube-scheduler"
	APIServerKubeletUser = "kube-apiserver-kubelet-client"
	// SharedKubeletUser is the one kubelet identity of the perRole layout.
	SharedKubeletUser = "kubelet"
)

// Cert describes one certificate identity: who signs it, its subject, usages, SANs and
// where its files go on a node. ID is the lock key.
type Cert struct {
	ID     string
	CA     string // "" for a CA itself
	CN     string
	O      []string
	Usages pki.Usage
	DNS    []string
	IPs    []netip.Addr
	// CertPath and KeyPath are node paths; empty for identities that live only in a kubeconfig.
	CertPath, KeyPath string
}

// cas are the three certificate authorities, self-signed.
var cas = []Cert{
	{ID: CA, CN: "kubernetes", CertPath: paths.CACert, KeyPath: paths.CAKey},
	{ID: EtcdCA, CN: "etcd-ca", CertPath: paths.EtcdCACert, KeyPath: paths.EtcdCAKey},
	{ID: FrontProxyCA, CN: "front-proxy-ca", CertPath: paths.FrontProxyCACert, KeyPath: paths.FrontProxyCAKey},
}

// clusterLeaves are issued once per cluster and copied to every node that needs them.
var clusterLeaves = []Cert{
	{ID: "apiserver-kubelet-client", CA: CA, CN: APIServerKubeletUser, O: []string{AdminGroup}, Usages: pki.ClientAuth,
		CertPath: paths.APIServerKubeletClientCert, KeyPath: paths.APIServerKubeletClientKey},
	{ID: "apiserver-etcd-client", CA: EtcdCA, CN: "kube-apiserver-etcd-client", Usages: pki.ClientAuth,
		CertPath: paths.APIServerEtcdClientCert, KeyPath: paths.APIServerEtcdClientKey},
	{ID: "front-proxy-client", CA: FrontProxyCA, CN: "front-proxy-client", Usages: pki.ClientAuth,
		CertPath: paths.FrontProxyClientCert, KeyPath: paths.FrontProxyClientKey},
	{ID: "etcd-healthcheck-client", CA: EtcdCA, CN: "kube-etcd-healthcheck-client", Usages: pki.ClientAuth,
		CertPath: paths.EtcdHealthcheckClientCert, KeyPath: paths.EtcdHealthcheckClientKey},
	{ID: "controller-manager", CA: CA, CN: ControllerManagerUsr, Usages: pki.ClientAuth},
	{ID: "scheduler", CA: CA, CN: SchedulerUser, Usages: pki.ClientAuth},
	{ID: "admin", CA: CA, CN: AdminUser, O: []string{AdminGroup}, Usages: pki.ClientAuth},
	{ID: "super-admin", CA: CA, CN: SuperAdminUser, O: []string{MastersGroup}, Usages: pki.ClientAuth},
	{ID: "kube-proxy", CA: CA, CN: KubeProxyUser, Usages: pki.ClientAuth},
	// kubelet is the shared kubelet identity of the perRole layout.
	{ID: "kubelet", CA: CA, CN: SharedKubeletUser, O: []string{NodesGroup}, Usages: pki.ClientAuth},
}

// SA identifies the service-account key pair in the lock-free key derivation.
const SA = "sa"

// apiServerCert is the serving certificate of the API server on control-plane node n.
func apiServerCert(c *model.Cluster, n *model.Node) Cert {
	dns := []string{n.Name, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.DNSDomain}
	ips := []netip.Addr{c.APIServiceIP, n.Address}
	if c.Endpoint.IP.IsValid() {
		ips = append(ips, c.Endpoint.IP)
	} else if c.Endpoint.Host != "" {
		dns = append(dns, c.Endpoint.Host)
	}
	// Every control-plane address, so that any API server may answer at any of them
	// (e.g. behind DNS round robin).
	for _, o := range c.ControlPlanes() {
		ips = append(ips, o.Address)
	}
	return Cert{ID: "apiserver/" + n.Name, CA: CA, CN: "kube-apiserver", Usages: pki.ServerAuth,
		DNS: dedup(dns), IPs: dedupAddrs(ips), CertPath: paths.APIServerCert, KeyPath: paths.APIServerKey}
}

// etcdCerts are the server and peer certificates of etcd member n (kubeadm shape).
func etcdCerts(n *model.Node) []Cert {
	dns := []string{n.Name, "localhost"}
	ips := []netip.Addr{n.Address, netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	return []Cert{
		{ID: "etcd-server/" + n.Name, CA: EtcdCA, CN: n.Name, Usages: pki.ServerAuth | pki.ClientAuth, DNS: dns, IPs: ips,
			CertPath: paths.EtcdServerCert, KeyPath: paths.EtcdServerKey},
		{ID: "etcd-peer/" + n.Name, CA: EtcdCA, CN: n.Name, Usages: pki.ServerAuth | pki.ClientAuth, DNS: dns, IPs: ips,
			CertPath: paths.EtcdPeerCert, KeyPath: paths.EtcdPeerKey},
	}
}

// kubeletServingCert is the kubelet's HTTPS serving certificate on node n.
func kubeletServingCert(n *model.Node) Cert {
	return Cert{ID: "kubelet-serving/" + n.Name, CA: CA, CN: NodeUserPrefix + n.Name, O: []string{NodesGroup},
		Usages: pki.ServerAuth, DNS: []string{n.Name}, IPs: []netip.Addr{n.Address},
		CertPath: paths.KubeletServingCert, KeyPath: paths.KubeletServingKey}
}

// kubeletClientCert is node n's own kubelet identity (perNode layout).
func kubeletClientCert(n *model.Node) Cert {
	return Cert{ID: "kubelet-client/" + n.Name, CA: CA, CN: NodeUserPrefix + n.Name, O: []string{NodesGroup}, Usages: pki.ClientAuth}
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func dedupAddrs(in []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range in {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
