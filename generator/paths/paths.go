// Package paths is the one table of where things live on a node. Certificate paths follow
// kubeadm (/etc/kubernetes/pki) so kubeadm's documentation and `kubeadm certs
// check-expiration` apply; kubelet and kube-proxy kubeconfigs follow the from-scratch guide.
package paths

// Directories.
const (
	KubernetesDir = "/etc/kubernetes"
	PKIDir        = "/etc/kubernetes/pki"
	EtcdPKIDir    = "/etc/kubernetes/pki/etcd"
	ManifestsDir  = "/etc/kubernetes/manifests"
	EtcdDataDir   = "/var/lib/etcd"
	KubeletDir    = "/var/lib/kubelet"
	KubeProxyDir  = "/var/lib/kube-proxy"
	SystemdDir    = "/etc/systemd/system"
	CNIConfDir    = "/etc/cni/net.d"
	CNIBinDir     = "/opt/cni/bin"
	ImagesDir     = "/var/lib/scratchgen/images"
	// DownloadsDir stages the pinned downloads a node fetches itself (named by their
	// SHA-256), where install-binaries.sh verifies and installs them from.
	DownloadsDir = "/var/lib/scratchgen/downloads"
)

// Cluster CA, its leaves, and the service-account key pair (control-plane nodes).
const (
	CACert = PKIDir + "/ca.crt"
	CAKey  = PKIDir + "/ca.key"
	// CASignerCert and CASignerKey replace ca.key while the cluster CA rotates: ca.crt
	// then holds the old and the new CA, and the controller manager's signer takes exactly
	// one certificate, the CA that signs in the current stage.
	CASignerCert               = PKIDir + "/ca-signer.crt"
	CASignerKey                = PKIDir + "/ca-signer.key"
	APIServerCert              = PKIDir + "/apiserver.crt"
	APIServerKey               = PKIDir + "/apiserver.key"
	APIServerKubeletClientCert = PKIDir + "/apiserver-kubelet-client.crt"
	APIServerKubeletClientKey  = PKIDir + "/apiserver-kubelet-client.key"
	APIServerEtcdClientCert    = PKIDir + "/apiserver-etcd-client.crt"
	APIServerEtcdClientKey     = PKIDir + "/apiserver-etcd-client.key"
	FrontProxyCACert           = PKIDir + "/front-proxy-ca.crt"
	FrontProxyCAKey            = PKIDir + "/front-proxy-ca.key"
	FrontProxyClientCert       = PKIDir + "/front-proxy-client.crt"
	FrontProxyClientKey        = PKIDir + "/front-proxy-client.key"
	SAKey                      = PKIDir + "/sa.key"
	SAPub                      = PKIDir + "/sa.pub"
	// KnownTokens is the static token file (--token-auth-file).
	KnownTokens = KubernetesDir + "/known_tokens.csv"
)

// etcd CA and its leaves (etcd members; the CA certificate also on control-plane nodes).
const (
	EtcdCACert                = EtcdPKIDir + "/ca.crt"
	EtcdCAKey                 = EtcdPKIDir + "/ca.key"
	EtcdServerCert            = EtcdPKIDir + "/server.crt"
	EtcdServerKey             = EtcdPKIDir + "/server.key"
	EtcdPeerCert              = EtcdPKIDir + "/peer.crt"
	EtcdPeerKey               = EtcdPKIDir + "/peer.key"
	EtcdHealthcheckClientCert = EtcdPKIDir + "/healthcheck-client.crt"
	EtcdHealthcheckClientKey  = EtcdPKIDir + "/healthcheck-client.key"
)

// Kubeconfigs.
const (
	AdminConf             = KubernetesDir + "/admin.conf"
	SuperAdminConf        = KubernetesDir + "/super-admin.conf"
	ControllerManagerConf = KubernetesDir + "/controller-manager.conf"
	SchedulerConf         = KubernetesDir + "/scheduler.conf"
	KubeletKubeconfig     = KubeletDir + "/kubeconfig"
	KubeProxyKubeconfig   = KubeProxyDir + "/kubeconfig"
	// AdminKubeconfig is the operator's copy, relative to the bundle's admin/ directory.
	AdminKubeconfig = "admin.kubeconfig"
)

// Kubelet and kube-proxy files (every node).
const (
	KubeletConfig      = KubeletDir + "/config.yaml"
	KubeletPKIDir      = KubeletDir + "/pki"
	KubeletServingCert = KubeletPKIDir + "/kubelet.crt"
	KubeletServingKey  = KubeletPKIDir + "/kubelet.key"
	KubeProxyConfig    = KubeProxyDir + "/config.yaml"
)

// Static pod manifests.
const (
	EtcdManifest              = ManifestsDir + "/etcd.yaml"
	APIServerManifest         = ManifestsDir + "/kube-apiserver.yaml"
	ControllerManagerManifest = ManifestsDir + "/kube-controller-manager.yaml"
	SchedulerManifest         = ManifestsDir + "/kube-scheduler.yaml"
)

// Container runtime.
const (
	ContainerdConfig = "/etc/containerd/config.toml"
	ContainerdSocket = "unix:///run/containerd/containerd.sock"
)

// systemd units the bundle enables, by unit name.
const (
	KernelService = "scratchgen-kernel.service"
	RoutesService = "scratchgen-routes.service"
	// RoutesPath starts RoutesService when the routes table arrives after boot (a node
	// provisioned from a view that leaves the table out, see bundle.File.Membership).
	RoutesPath        = "scratchgen-routes.path"
	MasqueradeService = "scratchgen-masquerade.service"
	ImagesService     = "scratchgen-images.service"
	ContainerdService = "containerd.service"
	KubeletService    = "kubelet.service"
	KubeProxyService  = "kube-proxy.service"
	// CertCheckTimer runs CertCheckService, the certificate watchdog, daily.
	CertCheckTimer   = "scratchgen-certcheck.timer"
	CertCheckService = "scratchgen-certcheck.service"
	// BinariesService installs the node's pinned binaries (when rootfs/ does not carry them).
	BinariesService = "scratchgen-binaries.service"
)

// Unit files, drop-ins and the scripts scratchgen's own units run.
const (
	// KubeletUnit and KubeletDropIn are the kubelet's unit, in kubeadm's packaging shape:
	// a generic unit and a drop-in carrying this node's command line.
	KubeletUnit   = SystemdDir + "/" + KubeletService
	KubeletDropIn = SystemdDir + "/" + KubeletService + ".d/10-scratchgen.conf"
	// KubeProxyUnit runs kube-proxy as a host service.
	KubeProxyUnit = SystemdDir + "/" + KubeProxyService
	// ContainerdDropIn amends the containerd.service the OS package ships.
	ContainerdDropIn = SystemdDir + "/" + ContainerdService + ".d/10-scratchgen.conf"
	// CNIConflist is the routed bridge network.
	CNIConflist = CNIConfDir + "/10-cbr0.conflist"
	// ScriptDir holds the scripts scratchgen's own units run.
	ScriptDir = "/etc/scratchgen"
	// RoutesScript and RoutesUnit install the static routes to other nodes' pod ranges,
	// read from RoutesTable: every node's name, address and pod range, the same file on
	// every node (so adding a node changes one shared file, not every node's script).
	RoutesScript   = ScriptDir + "/routes.sh"
	RoutesTable    = ScriptDir + "/routes"
	RoutesUnit     = SystemdDir + "/" + RoutesService
	RoutesPathUnit = SystemdDir + "/" + RoutesPath
	// MasqueradeScript and MasqueradeUnit NAT pod traffic leaving the cluster network.
	MasqueradeScript = ScriptDir + "/masquerade.sh"
	MasqueradeUnit   = SystemdDir + "/" + MasqueradeService
	// KernelUnit loads the modules and applies the sysctls without a reboot.
	KernelUnit = SystemdDir + "/" + KernelService
	// SysctlConf and ModulesConf are read by systemd-sysctl and systemd-modules-load at boot.
	SysctlConf  = "/etc/sysctl.d/90-scratchgen.conf"
	ModulesConf = "/etc/modules-load.d/scratchgen.conf"
	// ImagesUnit imports the image archives under ImagesDir into containerd.
	ImagesUnit = SystemdDir + "/" + ImagesService
	// UnitList lists the units the node enables, one per line in start order: what the
	// operator enables after copying rootfs/ onto a running machine (EnableCommand).
	UnitList = ScriptDir + "/units"
	// CertList lists the node's certificates with their expiry (written at render time);
	// CertCheckScript, run by CertCheckService, warns about those that expire soon and
	// exports their expiry as node-exporter textfile metrics (CertMetricsFile in the
	// spec's metrics directory).
	CertList           = ScriptDir + "/certificates"
	CertCheckScript    = ScriptDir + "/certcheck.sh"
	CertCheckUnit      = SystemdDir + "/" + CertCheckService
	CertCheckTimerUnit = SystemdDir + "/" + CertCheckTimer
	CertMetricsFile    = "scratchgen_certificates.prom"
	// BinariesScript, run by BinariesUnit, downloads (or takes from DownloadsDir) the
	// node's pinned binaries, verifies their SHA-256 and installs them.
	BinariesScript = ScriptDir + "/install-binaries.sh"
	BinariesUnit   = SystemdDir + "/" + BinariesService
)

// RsyncFlags are the flags of the README's rsync of a node's rootfs/ onto the machine (a
// test holds the README to them, and the machine test runs them).
const RsyncFlags = "-a --chown=root:root"

// EnableCommand enables the units a node's bundle lists and (re)starts them in order, once
// rootfs/ is on the machine (restarted, because a unit the OS already runs, such as
// containerd, must read the files just copied): the README's "Deliver a bundle" command
// (a test holds it to the README, and the machine test runs it).
const EnableCommand = "systemctl daemon-reload && xargs systemctl enable < " + UnitList + " && xargs -n1 systemctl restart < " + UnitList

// Ports.
const (
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	EtcdMetricsPort       = 2381
	KubeletPort           = 10250
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
)
