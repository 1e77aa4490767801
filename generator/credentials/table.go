// Package credentials plans the cluster's PKI and credentials: the three CAs, every leaf
// certificate, the service-account key pair, kubeconfigs and known_tokens.csv, placed on
// the nodes that need them and nowhere else. Keys are derived from the root secret and
// certificates are issued deterministically (package pki), so the same spec, lock and
// secret always give the same bytes.
package credentials

import (
	"net/netip"
	"slices"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// ID names a certificate identity (or the service-account key pair): the key of its
// record in the lock and part of the label its key is derived under. Make per-node IDs
// with the constructors below, never by concatenation.
type ID string

// The cluster-wide identities.
const (
	CA                     ID = "ca"
	EtcdCA                 ID = "etcd-ca"
	FrontProxyCA           ID = "front-proxy-ca"
	APIServerKubeletClient ID = "apiserver-kubelet-client"
	APIServerEtcdClient    ID = "apiserver-etcd-client"
	FrontProxyClient       ID = "front-proxy-client"
	EtcdHealthcheckClient  ID = "etcd-healthcheck-client"
	ControllerManager      ID = "controller-manager"
	Scheduler              ID = "scheduler"
	Admin                  ID = "admin"
	SuperAdmin             ID = "super-admin"
	KubeProxy              ID = "kube-proxy"
	// SharedKubelet is the one kubelet identity of the perRole layout.
	SharedKubelet ID = "kubelet"
	// SA is the service-account key pair: it has no certificate, but a generation.
	SA ID = "sa"
)

// Per-node identities.

// APIServerID is the serving certificate of the API server on control-plane node node.
func APIServerID(node string) ID { return ID("apiserver/" + node) }

// EtcdServerID is etcd member node's server certificate.
func EtcdServerID(node string) ID { return ID("etcd-server/" + node) }

// EtcdPeerID is etcd member node's peer certificate.
func EtcdPeerID(node string) ID { return ID("etcd-peer/" + node) }

// KubeletServingID is the kubelet's serving certificate on node.
func KubeletServingID(node string) ID { return ID("kubelet-serving/" + node) }

// KubeletClientID is node's own kubelet identity (perNode layout).
func KubeletClientID(node string) ID { return ID("kubelet-client/" + node) }

// tokenID is the label of the static token of identity id.
func tokenID(id ID) ID { return "token/" + id }

// CAs are the three certificate authorities.
var CAs = []ID{CA, EtcdCA, FrontProxyCA}

// IsCA reports whether id is one of the certificate authorities.
func IsCA(id ID) bool { return id == CA || id == EtcdCA || id == FrontProxyCA }

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
	ID     ID
	CA     ID // "" for a CA itself
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
	{ID: APIServerKubeletClient, CA: CA, CN: APIServerKubeletUser, O: []string{AdminGroup}, Usages: pki.ClientAuth,
		CertPath: paths.APIServerKubeletClientCert, KeyPath: paths.APIServerKubeletClientKey},
	{ID: APIServerEtcdClient, CA: EtcdCA, CN: "kube-apiserver-etcd-client", Usages: pki.ClientAuth,
		CertPath: paths.APIServerEtcdClientCert, KeyPath: paths.APIServerEtcdClientKey},
	{ID: FrontProxyClient, CA: FrontProxyCA, CN: "front-proxy-client", Usages: pki.ClientAuth,
		CertPath: paths.FrontProxyClientCert, KeyPath: paths.FrontProxyClientKey},
	{ID: EtcdHealthcheckClient, CA: EtcdCA, CN: "kube-etcd-healthcheck-client", Usages: pki.ClientAuth,
		CertPath: paths.EtcdHealthcheckClientCert, KeyPath: paths.EtcdHealthcheckClientKey},
	{ID: ControllerManager, CA: CA, CN: ControllerManagerUsr, Usages: pki.ClientAuth},
	{ID: Scheduler, CA: CA, CN: SchedulerUser, Usages: pki.ClientAuth},
	{ID: Admin, CA: CA, CN: AdminUser, O: []string{AdminGroup}, Usages: pki.ClientAuth},
	{ID: SuperAdmin, CA: CA, CN: SuperAdminUser, O: []string{MastersGroup}, Usages: pki.ClientAuth},
	{ID: KubeProxy, CA: CA, CN: KubeProxyUser, Usages: pki.ClientAuth},
	// kubelet is the shared kubelet identity of the perRole layout.
	{ID: SharedKubelet, CA: CA, CN: SharedKubeletUser, O: []string{NodesGroup}, Usages: pki.ClientAuth},
}

// apiServerCert is the serving certificate of the API server on control-plane node n.
func apiServerCert(c *model.Cluster, n *model.Node) Cert {
	dns := []string{n.Name, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.DNSDomain}
	ips := append(slices.Clone(c.APIServiceIPs), n.Addresses...)
	if c.Endpoint.IP.IsValid() {
		ips = append(ips, c.Endpoint.IP)
	} else if c.Endpoint.Host != "" {
		dns = append(dns, c.Endpoint.Host)
	}
	// Every control-plane address, so that any API server may answer at any of them
	// (e.g. behind DNS round robin).
	for _, o := range c.ControlPlanes() {
		ips = append(ips, o.Addresses...)
	}
	return Cert{ID: APIServerID(n.Name), CA: CA, CN: "kube-apiserver", Usages: pki.ServerAuth,
		DNS: dedup(dns), IPs: dedupAddrs(ips), CertPath: paths.APIServerCert, KeyPath: paths.APIServerKey}
}

// etcdCerts are the server and peer certificates of etcd member n (kubeadm shape).
func etcdCerts(n *model.Node) []Cert {
	dns := []string{n.Name, "localhost"}
	ips := append(slices.Clone(n.Addresses), netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback())
	return []Cert{
		{ID: EtcdServerID(n.Name), CA: EtcdCA, CN: n.Name, Usages: pki.ServerAuth | pki.ClientAuth, DNS: dns, IPs: ips,
			CertPath: paths.EtcdServerCert, KeyPath: paths.EtcdServerKey},
		{ID: EtcdPeerID(n.Name), CA: EtcdCA, CN: n.Name, Usages: pki.ServerAuth | pki.ClientAuth, DNS: dns, IPs: ips,
			CertPath: paths.EtcdPeerCert, KeyPath: paths.EtcdPeerKey},
	}
}

// kubeletServingCert is the kubelet's HTTPS serving certificate on node n.
func kubeletServingCert(n *model.Node) Cert {
	return Cert{ID: KubeletServingID(n.Name), CA: CA, CN: NodeUserPrefix + n.Name, O: []string{NodesGroup},
		Usages: pki.ServerAuth, DNS: []string{n.Name}, IPs: slices.Clone(n.Addresses),
		CertPath: paths.KubeletServingCert, KeyPath: paths.KubeletServingKey}
}

// kubeletClientCert is node n's own kubelet identity (perNode layout).
func kubeletClientCert(n *model.Node) Cert {
	return Cert{ID: KubeletClientID(n.Name), CA: CA, CN: NodeUserPrefix + n.Name, O: []string{NodesGroup}, Usages: pki.ClientAuth}
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
