// Package component is the one table of what runs on a node: each row says what a
// component is (a static pod, a host service, an add-on, a runtime image), which nodes run
// it, its image, its manifest or unit, and the node files it reads, so that a change to
// one of them means restarting it. Static pods (paths, flags), images (which node needs
// which image), diff's impact summary and verify all read this table; none keeps its own
// list of components.
//
// Adding a component is one row here, one plan step that renders its files (see package
// render's step list), and the spec and model fields it needs.
package component

import (
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Kind says how a component runs.
type Kind int

// Kinds of components.
const (
	// StaticPod runs from a manifest in paths.ManifestsDir; the kubelet recreates the pod
	// when the manifest changes.
	StaticPod Kind = iota + 1
	// Service is a systemd unit the bundle renders or amends (restart it after a change).
	Service
	// AddOn runs as ordinary pods from a manifest the operator applies with kubectl.
	AddOn
	// Other is neither a process nor a unit: the CNI configuration new pods read, the
	// sandbox image containerd runs every pod in, the operator's credentials.
	Other
)

// Read is a node file a component reads: a change to it restarts (or reloads) the
// component.
type Read struct {
	// Path is an absolute node path, or a directory ending in "/" for every file below it.
	Path string
	// What names the file in impact reasons ("manifest", "kubeconfig"); empty means the
	// file's base name.
	What string
}

// Component is one row of the table.
type Component struct {
	// Name is the component's name: the static pod's component label, the name diff's
	// impact summary shows.
	Name string
	Kind Kind
	// On reports whether node n runs (or, for images, needs) the component; nil means
	// every node.
	On func(c *model.Cluster, n *model.Node) bool
	// Image is the key of the component's image in model.Images (model.Image*), "" for
	// components that run from a host binary or have no image.
	Image string
	// Manifest is the static pod manifest (node path) of a StaticPod component.
	Manifest string
	// Unit is the systemd unit of a Service component.
	Unit string
	// Reads are the node files whose change restarts the component.
	Reads []Read
}

// Runs reports whether node n of cluster c runs the component.
func (co *Component) Runs(c *model.Cluster, n *model.Node) bool { return co.On == nil || co.On(c, n) }

// ReadsPath returns the Read that covers node path p, if any.
func (co *Component) ReadsPath(p string) (Read, bool) {
	for _, r := range co.Reads {
		if r.Path == p || (strings.HasSuffix(r.Path, "/") && strings.HasPrefix(p, r.Path)) {
			return r, true
		}
	}
	return Read{}, false
}

// Table is an ordered list of components; the order is the output order of everything
// that lists components (images, impact).
type Table []Component

// Lookup returns the component named name.
func (t Table) Lookup(name string) (*Component, bool) {
	for i := range t {
		if t[i].Name == name {
			return &t[i], true
		}
	}
	return nil, false
}

// ByManifest returns the static pod component whose manifest is the node path p.
func (t Table) ByManifest(p string) (*Component, bool) {
	for i := range t {
		if t[i].Kind == StaticPod && t[i].Manifest == p {
			return &t[i], true
		}
	}
	return nil, false
}

// Readers returns the components that read node path p, in table order.
func (t Table) Readers(p string) []*Component {
	var out []*Component
	for i := range t {
		if _, ok := t[i].ReadsPath(p); ok {
			out = append(out, &t[i])
		}
	}
	return out
}

// StaticPods returns the static pod components.
func (t Table) StaticPods() []*Component {
	var out []*Component
	for i := range t {
		if t[i].Kind == StaticPod {
			out = append(out, &t[i])
		}
	}
	return out
}

// Images returns the image keys (model.Image*) of the components node n runs, in table
// order, without duplicates.
func (t Table) Images(c *model.Cluster, n *model.Node) []string {
	var out []string
	for i := range t {
		if t[i].Image != "" && t[i].Runs(c, n) && !slices.Contains(out, t[i].Image) {
			out = append(out, t[i].Image)
		}
	}
	return out
}

// Names of the built-in components.
const (
	Pause             = "pause"
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	CoreDNS           = "coredns"
	Containerd        = "containerd"
	Kubelet           = "kubelet"
	KubeProxy         = "kube-proxy"
	Pods              = "pods"
	Kernel            = "scratchgen-kernel"
	Routes            = "scratchgen-routes"
	Masquerade        = "scratchgen-masquerade"
	Images            = "scratchgen-images"
	EnabledUnits      = "enabled units"
	CertCheck         = "certificate watchdog"
	Binaries          = "scratchgen-binaries"
	Operator          = "operator credentials"
)

func etcdMember(_ *model.Cluster, n *model.Node) bool     { return n.Etcd() }
func controlPlane(_ *model.Cluster, n *model.Node) bool   { return n.ControlPlane() }
func routed(c *model.Cluster, _ *model.Node) bool         { return c.NetworkMode == model.NetworkRouted }
func masquerading(c *model.Cluster, n *model.Node) bool   { return routed(c, n) && c.Masquerade }
func pinnedBinaries(c *model.Cluster, _ *model.Node) bool { return c.BinariesPinned() }

// Reads shared by several components.
var (
	readCA       = Read{Path: paths.CACert}
	readEtcdCA   = Read{Path: paths.EtcdCACert, What: "etcd/ca.crt"}
	readFrontCA  = Read{Path: paths.FrontProxyCACert}
	readSAKey    = Read{Path: paths.SAKey}
	readManifest = func(p string) Read { return Read{Path: p, What: "manifest"} }
)

// Default returns the built-in table (a new slice on every call: callers may extend
// their copy, the built-in rows are never modified).
//
// Order: pause, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, coredns
// (the order of a node's images), then the host services in start order, the CNI
// configuration and the operator's credentials (the order of diff's impact summary).
func Default() Table {
	return Table{
		// containerd's sandbox image: every pod, static or not, runs in one.
		{Name: Pause, Kind: Other, Image: model.ImagePause},
		{Name: Etcd, Kind: StaticPod, On: etcdMember, Image: model.ImageEtcd, Manifest: paths.EtcdManifest,
			Reads: []Read{readManifest(paths.EtcdManifest), readEtcdCA,
				{Path: paths.EtcdServerCert, What: "etcd/server.crt"}, {Path: paths.EtcdServerKey, What: "etcd/server.key"},
				{Path: paths.EtcdPeerCert, What: "etcd/peer.crt"}, {Path: paths.EtcdPeerKey, What: "etcd/peer.key"}}},
		{Name: APIServer, Kind: StaticPod, On: controlPlane, Image: model.ImageAPIServer, Manifest: paths.APIServerManifest,
			Reads: []Read{readManifest(paths.APIServerManifest), readCA,
				{Path: paths.APIServerCert}, {Path: paths.APIServerKey},
				{Path: paths.APIServerKubeletClientCert}, {Path: paths.APIServerKubeletClientKey},
				{Path: paths.APIServerEtcdClientCert}, {Path: paths.APIServerEtcdClientKey},
				readFrontCA, {Path: paths.FrontProxyClientCert}, {Path: paths.FrontProxyClientKey},
				readSAKey, {Path: paths.SAPub}, {Path: paths.KnownTokens}, readEtcdCA}},
		{Name: ControllerManager, Kind: StaticPod, On: controlPlane, Image: model.ImageControllerManager, Manifest: paths.ControllerManagerManifest,
			Reads: []Read{readManifest(paths.ControllerManagerManifest), readCA, {Path: paths.CAKey},
				{Path: paths.CASignerCert, What: "signing CA"}, {Path: paths.CASignerKey, What: "signing CA key"}, readFrontCA, readSAKey,
				{Path: paths.ControllerManagerConf, What: "kubeconfig"}}},
		{Name: Scheduler, Kind: StaticPod, On: controlPlane, Image: model.ImageScheduler, Manifest: paths.SchedulerManifest,
			Reads: []Read{readManifest(paths.SchedulerManifest), {Path: paths.SchedulerConf, What: "kubeconfig"}}},
		// The CoreDNS Deployment tolerates the control-plane taint (as kubeadm's does), so
		// the scheduler may place it on any node: every node needs its image.
		{Name: CoreDNS, Kind: AddOn, Image: model.ImageCoreDNS},
		// Installs the pinned binaries the bundle does not carry (install-binaries.sh),
		// before containerd, the kubelet and kube-proxy start.
		{Name: Binaries, Kind: Service, On: pinnedBinaries, Unit: paths.BinariesService,
			Reads: []Read{{Path: paths.BinariesUnit, What: "unit"}, {Path: paths.BinariesScript}}},
		{Name: Containerd, Kind: Service, Unit: paths.ContainerdService,
			Reads: []Read{{Path: paths.ContainerdConfig, What: "config"}, {Path: paths.ContainerdDropIn, What: "unit drop-in"}}},
		{Name: Kubelet, Kind: Service, Unit: paths.KubeletService,
			Reads: []Read{readCA, {Path: paths.KubeletConfig, What: "config"}, {Path: paths.KubeletKubeconfig, What: "kubeconfig"},
				{Path: paths.KubeletServingCert, What: "serving certificate"}, {Path: paths.KubeletServingKey, What: "serving key"},
				{Path: paths.KubeletUnit, What: "unit"}, {Path: paths.KubeletDropIn, What: "unit drop-in"},
				{Path: "/usr/local/bin/kubelet", What: "binary"}, {Path: "/opt/bin/kubelet", What: "binary"}}},
		// kube-proxy runs as a host service from its binary: no node needs its image.
		{Name: KubeProxy, Kind: Service, Unit: paths.KubeProxyService,
			Reads: []Read{{Path: paths.KubeProxyConfig, What: "config"}, {Path: paths.KubeProxyKubeconfig, What: "kubeconfig"},
				{Path: paths.KubeProxyUnit, What: "unit"},
				{Path: "/usr/local/bin/kube-proxy", What: "binary"}, {Path: "/opt/bin/kube-proxy", What: "binary"}}},
		// New pods read the CNI configuration; running pods keep their network.
		{Name: Pods, Kind: Other, Reads: []Read{{Path: paths.CNIConfDir + "/", What: "CNI config"}}},
		{Name: Kernel, Kind: Service, Unit: paths.KernelService,
			Reads: []Read{{Path: paths.KernelUnit, What: "unit"}, {Path: paths.SysctlConf}, {Path: paths.ModulesConf}}},
		{Name: Routes, Kind: Service, On: routed, Unit: paths.RoutesService,
			Reads: []Read{{Path: paths.RoutesUnit, What: "unit"}, {Path: paths.RoutesPathUnit, What: "path unit"}, {Path: paths.RoutesScript}, {Path: paths.RoutesTable, What: "routes table"}}},
		{Name: Masquerade, Kind: Service, On: masquerading, Unit: paths.MasqueradeService,
			Reads: []Read{{Path: paths.MasqueradeUnit, What: "unit"}, {Path: paths.MasqueradeScript}}},
		{Name: Images, Kind: Service, Unit: paths.ImagesService,
			Reads: []Read{{Path: paths.ImagesUnit, What: "unit"}, {Path: paths.ImagesDir + "/", What: "image archive"}}},
		// The certificate watchdog: a changed list is checked at once by starting the check.
		{Name: CertCheck, Kind: Service, Unit: paths.CertCheckService,
			Reads: []Read{{Path: paths.CertList, What: "certificate list"}, {Path: paths.CertCheckScript},
				{Path: paths.CertCheckUnit, What: "unit"}, {Path: paths.CertCheckTimerUnit, What: "timer"}}},
		// The units the node enables: after a change, enable them again (EnableCommand).
		{Name: EnabledUnits, Kind: Other, Reads: []Read{{Path: paths.UnitList, What: "unit list"}}},
		{Name: Operator, Kind: Other,
			Reads: []Read{{Path: paths.EtcdHealthcheckClientCert, What: "etcd/healthcheck-client.crt"},
				{Path: paths.EtcdHealthcheckClientKey, What: "etcd/healthcheck-client.key"},
				{Path: paths.AdminConf}, {Path: paths.SuperAdminConf}}},
	}
}
