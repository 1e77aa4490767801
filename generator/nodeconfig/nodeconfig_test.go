package nodeconfig

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	proxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

func TestDeterministic(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		again, units, err := Node(r.c, r.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(units, r.units) {
			t.Errorf("units differ: %v vs %v", units, r.units)
		}
		if len(again) != len(r.files) {
			t.Fatalf("%d files, then %d", len(r.files), len(again))
		}
		for i := range again {
			if again[i].Path != r.files[i].Path || again[i].Mode != r.files[i].Mode || !bytes.Equal(again[i].Data, r.files[i].Data) {
				t.Errorf("%s differs between two calls", again[i].Path)
			}
		}
	})
}

func TestFileListAndModes(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		var got []string
		for i, f := range r.files {
			got = append(got, f.Path)
			if i > 0 && r.files[i-1].Path >= f.Path {
				t.Errorf("files not sorted or duplicated at %s", f.Path)
			}
			if f.Secret {
				t.Errorf("%s is marked secret; nodeconfig renders none", f.Path)
			}
			want := bundle.ModePublic
			if strings.HasSuffix(f.Path, ".sh") {
				want = bundle.ModeExecute
			}
			if f.Mode != want {
				t.Errorf("%s mode %o, want %o", f.Path, f.Mode, want)
			}
			if bytes.Contains(f.Data, []byte("pod-infra-container-image")) {
				t.Errorf("%s mentions --pod-infra-container-image (removed in 1.35)", f.Path)
			}
		}
		want := []string{paths.ModulesConf, paths.SysctlConf, paths.KernelUnit, paths.ContainerdConfig, paths.ContainerdDropIn,
			paths.KubeletConfig, paths.KubeletUnit, paths.KubeletDropIn, paths.KubeProxyConfig, paths.KubeProxyUnit}
		wantUnits := []string{paths.KernelService}
		if r.c.NetworkMode == model.NetworkRouted {
			want = append(want, paths.CNIConflist, paths.RoutesScript, paths.RoutesTable, paths.RoutesUnit, paths.RoutesPathUnit)
			wantUnits = append(wantUnits, paths.RoutesService, paths.RoutesPath)
			if r.c.Masquerade {
				want = append(want, paths.MasqueradeScript, paths.MasqueradeUnit)
				wantUnits = append(wantUnits, paths.MasqueradeService)
			}
		}
		wantUnits = append(wantUnits, paths.ContainerdService, paths.KubeletService, paths.KubeProxyService, paths.CertCheckTimer)
		want = append(want, paths.CertList, paths.CertCheckScript, paths.CertCheckUnit, paths.CertCheckTimerUnit)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("files\n got %v\nwant %v", got, want)
		}
		if !slices.Equal(r.units, wantUnits) {
			t.Errorf("units %v, want %v", r.units, wantUnits)
		}
	})
}

// TestKubeletConfigStrict decodes the rendered kubelet configuration strictly into the
// upstream type, checks it round-trips to the value rendered, and checks the per-role fields.
func TestKubeletConfigStrict(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		f, _ := r.file(paths.KubeletConfig)
		var k kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict(f.Data, &k); err != nil {
			t.Fatalf("strict decode: %v\n%s", err, f.Data)
		}
		if !apiequality.Semantic.DeepEqual(&k, KubeletConfiguration(r.c, r.n)) {
			t.Errorf("decoded configuration differs from the rendered value:\n%s", f.Data)
		}
		if k.APIVersion != "kubelet.config.k8s.io/v1beta1" || k.Kind != "KubeletConfiguration" {
			t.Errorf("type meta %s %s", k.APIVersion, k.Kind)
		}
		if k.PodCIDR != model.JoinPrefixes(r.n.PodCIDRs) || strings.Join(k.ClusterDNS, ",") != model.JoinAddrs(r.c.DNSIPs) || k.ClusterDomain != r.c.DNSDomain {
			t.Errorf("podCIDR %s clusterDNS %v domain %s", k.PodCIDR, k.ClusterDNS, k.ClusterDomain)
		}
		if k.Authentication.Anonymous.Enabled == nil || *k.Authentication.Anonymous.Enabled {
			t.Error("anonymous authentication not explicitly disabled")
		}
		if k.ServerTLSBootstrap || k.RotateCertificates {
			t.Error("serverTLSBootstrap/rotateCertificates must stay off: scratchgen issues kubelet certificates")
		}
		if (k.StaticPodPath != "") != r.n.RunsStaticPods() {
			t.Errorf("staticPodPath %q on a node with roles %v", k.StaticPodPath, r.n.Roles)
		}
		tainted := len(k.RegisterWithTaints) == 1 && k.RegisterWithTaints[0] == ControlPlaneTaint
		if tainted != (r.n.RunsStaticPods() && !r.n.Worker()) || (!tainted && len(k.RegisterWithTaints) > 0) {
			t.Errorf("registerWithTaints %v on a node with roles %v", k.RegisterWithTaints, r.n.Roles)
		}
		for _, noise := range []string{"null", "{}", "0s", `""`} {
			if bytes.Contains(f.Data, []byte(noise)) {
				t.Errorf("kubelet config contains %s:\n%s", noise, f.Data)
			}
		}
	})
}

func TestKubeProxyConfigStrict(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		f, _ := r.file(paths.KubeProxyConfig)
		var k proxyv1alpha1.KubeProxyConfiguration
		if err := yaml.UnmarshalStrict(f.Data, &k); err != nil {
			t.Fatalf("strict decode: %v\n%s", err, f.Data)
		}
		if !apiequality.Semantic.DeepEqual(&k, KubeProxyConfiguration(r.c, r.n)) {
			t.Errorf("decoded configuration differs from the rendered value:\n%s", f.Data)
		}
		bind := "0.0.0.0" // kube-proxy takes its primary family from the bind address
		if r.c.PodCIDR.Addr().Is6() {
			bind = "::"
		}
		if k.ClientConnection.Kubeconfig != paths.KubeProxyKubeconfig || k.ClusterCIDR != model.JoinPrefixes(r.c.PodCIDRs) ||
			string(k.Mode) != r.c.ProxyMode || k.HostnameOverride != r.n.Name || k.BindAddress != bind {
			t.Errorf("unexpected configuration:\n%s", f.Data)
		}
		for _, noise := range []string{"null", "{}", "0s", `""`} {
			if bytes.Contains(f.Data, []byte(noise)) {
				t.Errorf("kube-proxy config contains %s:\n%s", noise, f.Data)
			}
		}
	})
}

func TestCNIConflist(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		f, ok := r.file(paths.CNIConflist)
		if r.c.NetworkMode != model.NetworkRouted {
			if ok {
				t.Fatal("CNI configuration rendered in network mode none")
			}
			return
		}
		var conf Conflist
		d := json.NewDecoder(bytes.NewReader(f.Data))
		d.DisallowUnknownFields()
		if err := d.Decode(&conf); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if conf.CNIVersion != "1.0.0" || conf.Name != "cbr0" || len(conf.Plugins) != 2 {
			t.Fatalf("unexpected list:\n%s", f.Data)
		}
		br, pm := conf.Plugins[0], conf.Plugins[1]
		if br.Type != "bridge" || br.Bridge != "cbr0" || !br.IsGateway || br.IPMasq == nil || *br.IPMasq || !br.HairpinMode || br.MTU != r.c.MTU {
			t.Errorf("bridge plugin:\n%s", f.Data)
		}
		// One range set per family (host-local gives a pod one address of each), in the
		// cluster's family order, and a default route per family.
		if br.IPAM == nil || br.IPAM.Type != "host-local" || len(br.IPAM.Ranges) != len(r.n.PodCIDRs) || len(br.IPAM.Routes) != len(r.n.PodCIDRs) {
			t.Fatalf("ipam:\n%s", f.Data)
		}
		for i, rs := range br.IPAM.Ranges {
			if len(rs) != 1 {
				t.Fatalf("ipam range set %d:\n%s", i, f.Data)
			}
			rg := rs[0]
			subnet, err := netip.ParsePrefix(rg.Subnet)
			if err != nil || subnet != r.n.PodCIDRs[i] {
				t.Errorf("subnet %s, want the node's pod range %s", rg.Subnet, r.n.PodCIDRs[i])
			}
			gw, err := netip.ParseAddr(rg.Gateway)
			if err != nil || gw != subnet.Addr().Next() || gw != r.n.BridgeAddrs[i].Addr() {
				t.Errorf("gateway %s, want the first address of %s", rg.Gateway, subnet)
			}
			dst := "0.0.0.0/0"
			if subnet.Addr().Is6() {
				dst = "::/0"
			}
			if br.IPAM.Routes[i].Dst != dst {
				t.Errorf("pod routes %v, want %s for %s", br.IPAM.Routes, dst, subnet)
			}
		}
		if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
			t.Errorf("portmap plugin:\n%s", f.Data)
		}
		if !bytes.HasPrefix(f.Data, []byte("{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"cbr0\",\n")) {
			t.Errorf("field order or indentation changed:\n%s", f.Data)
		}
	})
}

// TestRoutes runs the routes script with the node's table and unit arguments (against a
// stand-in ip): start routes every other node's pod range to that node and never the
// node's own range, stop deletes the same routes; every node has the same table and
// script, and its unit passes its own name.
func TestRoutes(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		script, ok := r.file(paths.RoutesScript)
		if !ok {
			return
		}
		table, _ := r.file(paths.RoutesTable)
		unit, _ := r.file(paths.RoutesUnit)
		if string(script.Data) != RoutesScript || string(table.Data) != string(RoutesTable(r.c)) {
			t.Errorf("%s or %s differ from the cluster's", paths.RoutesScript, paths.RoutesTable)
		}
		if !strings.Contains(string(unit.Data), "ExecStart="+paths.RoutesScript+" start "+r.n.Name+"\n") {
			t.Errorf("the routes unit does not pass the node's name:\n%s", unit.Data)
		}
		// A view that leaves the table out (it lists the nodes) boots the node without it:
		// the routes unit waits for it, and the path unit starts it when it arrives.
		if !table.Membership {
			t.Errorf("%s is not marked as listing the cluster's nodes", paths.RoutesTable)
		}
		if !strings.Contains(string(unit.Data), "\nConditionPathExists="+paths.RoutesTable+"\n") {
			t.Errorf("the routes unit runs without the routes table:\n%s", unit.Data)
		}
		if pu, _ := r.file(paths.RoutesPathUnit); !strings.Contains(string(pu.Data), "[Path]\nPathChanged="+paths.RoutesTable+"\nUnit="+paths.RoutesService+"\n") {
			t.Errorf("%s does not start %s when %s arrives:\n%s", paths.RoutesPathUnit, paths.RoutesService, paths.RoutesTable, pu.Data)
		}
		env, log := fakeTools(t)
		dir := t.TempDir()
		writeRoot(t, dir, []bundle.File{script, table})
		run := func(action string) []string {
			cmd := exec.Command("sh", filepath.Join(dir, paths.RoutesScript), action, r.n.Name)
			cmd.Env = env
			os.Remove(log)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("routes.sh %s %s: %v\n%s", action, r.n.Name, err, out)
			}
			data, _ := os.ReadFile(log)
			return strings.Split(strings.TrimSpace(string(data)), "\n")
		}
		var start, stop []string
		for _, o := range r.c.Nodes {
			if o == r.n {
				continue
			}
			for f := range o.PodCIDRs { // one route per family, via the node's address of that family
				start = append(start, "ip route replace "+o.PodCIDRs[f].String()+" via "+o.Addresses[f].String())
				stop = append(stop, "ip route del "+o.PodCIDRs[f].String()+" via "+o.Addresses[f].String())
			}
		}
		if got := run("start"); strings.Join(got, "\n") != strings.Join(start, "\n") {
			t.Errorf("routes.sh start ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(start, "\n"))
		}
		if got := run("stop"); strings.Join(got, "\n") != strings.Join(stop, "\n") {
			t.Errorf("routes.sh stop ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(stop, "\n"))
		}
		// A node the table does not list is an error, not a node with no routes.
		cmd := exec.Command("sh", filepath.Join(dir, paths.RoutesScript), "start", "no-such-node")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "node no-such-node is not in") {
			t.Errorf("routes.sh for a node not in the table: %v\n%s", err, out)
		}
	})
}

func TestUnitsReferenceNodeValues(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		d, _ := r.file(paths.KubeletDropIn)
		s := string(d.Data)
		for _, want := range []string{
			"ExecStart=\n",
			"ExecStart=" + r.n.BinDir() + "/kubelet \\\n",
			"--config=" + paths.KubeletConfig,
			"--kubeconfig=" + paths.KubeletKubeconfig,
			"--node-ip=" + r.n.Address.String(),
			"--hostname-override=" + r.n.Name + " \\\n",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("kubelet drop-in lacks %q:\n%s", want, s)
			}
		}
		for _, u := range networkUnits(r.c) {
			if !strings.Contains(s, "After=scratchgen-kernel.service "+strings.Join(networkUnits(r.c), " ")) || !strings.Contains(s, u) {
				t.Errorf("kubelet drop-in does not order after %s:\n%s", u, s)
			}
		}
		p, _ := r.file(paths.KubeProxyUnit)
		if !strings.Contains(string(p.Data), r.n.BinDir()+"/kube-proxy \\\n    --config="+paths.KubeProxyConfig+" \\\n    --hostname-override="+r.n.Name+"\n") {
			t.Errorf("kube-proxy unit:\n%s", p.Data)
		}
		k, _ := r.file(paths.KubeletConfig)
		flatcar := r.n.OS != model.OSGeneric
		if strings.Contains(string(k.Data), "resolvConf: /run/systemd/resolve/resolv.conf") != flatcar {
			t.Errorf("resolvConf on OS %s:\n%s", r.n.OS, k.Data)
		}
	})
}

func TestTOMLString(t *testing.T) {
	if q, err := tomlString(`a"b\c`); err != nil || q != `"a\"b\\c"` {
		t.Errorf("got %s %v", q, err)
	}
	if _, err := tomlString("a\nb"); err == nil {
		t.Error("control character accepted")
	}
}

func TestUnresolvedNodeIsAnError(t *testing.T) {
	c := resolve(t, variants()[0])
	n := *c.Nodes[0]
	n.PodCIDR = netip.Prefix{}
	if _, _, err := Node(c, &n); err == nil {
		t.Error("a node without pod range rendered")
	}
	delete(c.Images.Refs, model.ImagePause)
	if _, _, err := Node(c, c.Nodes[0]); err == nil || !strings.Contains(err.Error(), "pause") {
		t.Errorf("missing pause image: %v", err)
	}
}
