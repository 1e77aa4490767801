package e2e

// TestMachines delivers a rendered bundle to booted machines the three documented ways
// and checks that the cluster comes up under systemd, with no test process playing the
// init system.
//
// # The machines
//
// Each node is a systemd-nspawn container with systemd 252 as PID 1, booted from one
// cached Debian bookworm image (package e2e/internal/machine: debootstrap plus containerd,
// runc, the CNI plugins, conntrack, cloud-init and rsync; built once into e2e/.cache), in
// the harness's network namespace for that node (one bridge, no default route). The node
// binaries come with the bundle: kubelet and kube-proxy (built from the Kubernetes module
// like the boot test's) and the CNI plugins (Debian's, from the image's packages, as a
// release archive) are served by an in-process mirror under the official URL layout,
// pinned (`binaries pin`), pulled into the cache (`binaries pull`) and carried in each
// node's rootfs/ (`render --with-binaries`); nothing is installed on the machines beside
// the bundle. Each node is delivered a different way, so one
// cluster proves all three (three clusters would triple the boot time for no new fact:
// each path delivers the same files, which the equivalence tests already compare):
//
//   - cp-1, rsync: `rsync -a --chown=root:root nodes/cp-1/rootfs/ <machine root>/` (the
//     README's line, paths.RsyncFlags) into the stopped machine, boot, then the README's
//     `ssh` command verbatim (paths.EnableCommand) inside the machine.
//   - worker-1, Ignition: the real Ignition v2.24.0, built from its module, applies the
//     node's ignition.json to the machine root (stages fetch-offline and files, then
//     `systemctl --root preset` of the units it enabled: Ignition's first-boot preset);
//     the image archives and binaries the view leaves out are baked into the root (as a
//     machine image carries them); the machine boots and its units start by themselves; the secrets
//     and the routes table the view leaves out arrive afterwards by rsync: the kubelet's
//     restart policy picks up the secrets, scratchgen-routes.path the table.
//   - worker-2, cloud-init: the node's user-data is the machine's NoCloud seed; the
//     machine boots, Debian's cloud-init writes the files and runs the commands to
//     `status: done`; secrets arrive by rsync afterwards, as for worker-1.
//
// The workload image, which no bundle carries, is imported on the workers with ctr.
// Then rbac.yaml (with cp-1's super-admin.conf) and coredns.yaml (with the admin
// kubeconfig) are applied with kubectl exactly as the README's lines do.
//
// # The checks
//
// The node boot test's checks, against systemd's units instead of processes: (1) static
// pods as containers with mirror pods from the pinned digests, (2) every node Ready with
// its own identity, (3) pods on both workers reach each other over the rendered routes,
// (4) logs and exec, kubelet serving certificates, (5) a Service's ClusterIP through
// kube-proxy, (6) CoreDNS resolves; then (7) systemd: no failed unit on any machine,
// every unit of /etc/scratchgen/units enabled, every unit a delivered unit names in
// Requires/Wants/BindsTo/Requisite/PartOf/After/Before exists; (8) a unit made wrong on
// purpose (no [Install], an After= on a unit that does not exist) fails those checks
// with messages naming it; (9) `scratchgen validate-cluster` passes against the cluster,
// and names a spec node the cluster lacks; (10) worker-1, then cp-1, rebooted (the
// nspawn container stopped and booted again) come back with no manual step: Ready, a
// fresh node lease, the workload pod on worker-1 serving again, the API server ready,
// validate-cluster passing.
//
// The kubelet runs with the rendered cgroupDriver: systemd and containerd with
// SystemdCgroup = true. The environment overrides left are in mOverrides, each with the
// host fact that forces it, printed at the start.
//
// # Running it
//
//	make e2e-machines   # as root; the first run builds the image and Ignition into e2e/.cache
//
// It is skipped unless SCRATCHGEN_E2E=1 and SCRATCHGEN_E2E_MACHINES=1. It needs the
// Debian packages systemd-container, debootstrap, rsync, iproute2, util-linux and
// libblkid-dev (Ignition's build). SCRATCHGEN_E2E_KEEP=1 keeps the state directory
// (machine roots included).

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/e2e/internal/machine"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/provision"
)

// envMachines=1 (with envEnable=1) runs TestMachines: `make e2e-machines`.
const envMachines = "SCRATCHGEN_E2E_MACHINES"

// Delivery paths.
const (
	viaRsync     = "rsync"
	viaIgnition  = "Ignition"
	viaCloudInit = "cloud-init"
)

// mNode is one machine of the test.
type mNode struct {
	Name, Via string
	M         *machine.Machine
	Net       *NetNode
	Dir       string // the bundle's nodes/<name>
	Meta      *bundle.NodeMetadata
}

func (n *mNode) rootfs() string { return filepath.Join(n.Dir, "rootfs") }

// mOverride is one environment override: where, what, and the host fact that forces it.
// Unit overrides run as an ExecStartPre of that unit (a drop-in the machine carries, so
// every delivery path gets them and every restart re-applies them after a new delivery);
// the others are facts of the machine image or of the test's network.
type mOverride struct {
	Where, What, Why string
	Unit             string // "" for image and network facts
	Sh               string // for a unit: shell lines, $f the file; exit 1 when the rendered file no longer fits
	File             string
}

var mOverrides = []mOverride{
	{
		Where: paths.KubeletConfig, What: "failCgroupV1: false", Unit: "kubelet.service", File: paths.KubeletConfig,
		Why: "the host has a hybrid cgroup v1 hierarchy and cgroup v2 cannot be had inside the machine (the host binds " +
			"cpu and memory to v1); kubelets since v1.35 refuse cgroup v1 unless told",
		Sh: `grep -q '^failCgroupV1:' "$f" && { echo "$f already sets failCgroupV1: the override no longer fits" >&2; exit 1; }
printf 'failCgroupV1: false # scratchgen machine test override\n' >> "$f"`,
	},
	{
		Where: paths.KubeProxyConfig, What: "conntrack.maxPerCore: 0 (leave nf_conntrack_max alone)", Unit: "kube-proxy.service", File: paths.KubeProxyConfig,
		Why: "nf_conntrack_max is machine-wide and read-only outside the host's network namespace; kube-proxy exits when " +
			"it cannot set it; 0 skips it, as kind does",
		Sh: `grep -q '^conntrack:' "$f" && { echo "$f already has a conntrack section: the override no longer fits" >&2; exit 1; }
printf 'conntrack: # scratchgen machine test override\n  maxPerCore: 0\n' >> "$f"`,
	},
	{
		Where: paths.ContainerdConfig, What: `restrict_oom_score_adj = true in [plugins."io.containerd.grpc.v1.cri"]`, Unit: "containerd.service", File: paths.ContainerdConfig,
		Why: "the host's capability bounding set lacks CAP_SYS_RESOURCE, so the kernel refuses the negative " +
			"oom_score_adj of critical pods; restricted, containerd keeps it at its own",
		Sh: `n=$(grep -c '^ *\[plugins\."io\.containerd\.grpc\.v1\.cri"\]$' "$f")
[ "$n" = 1 ] || { echo "$f has the CRI plugin table $n times, want once: the override no longer fits" >&2; exit 1; }
sed -i 's/^\( *\)\[plugins\."io\.containerd\.grpc\.v1\.cri"\]$/&\n\1  restrict_oom_score_adj = true # scratchgen machine test override/' "$f"`,
	},
	{
		Where: "machine image", What: "/lib/modules/<host kernel>/modules.builtin lists br_netfilter and overlay",
		Why: "the host kernel has no loadable modules and no /lib/modules; scratchgen-kernel's modprobe finds them built in",
	},
	{
		Where: "machine image", What: "PID 1 is a shim that remounts the cgroup v1 controllers read-write and hides " +
			"vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.root_maxkeys and root_maxbytes behind read-only per-machine files, then execs systemd",
		Why: "nspawn mounts v1 controllers read-only without user namespaces; the kubelet would set those machine-wide " +
			"sysctls on the shared host kernel",
	},
	{
		Where: "network", What: "ip route replace <serviceCIDR> dev eth0 in each node's namespace (each family's range)",
		Why: "a machine has a default route; the test's namespaces have none (nothing leaves the test's subnet), so the kernel " +
			"would refuse a node's own connections to a ClusterIP before kube-proxy's rules rewrite them",
	},
}

// mOverrideScript is the ExecStartPre of the unit overrides: it applies each to its file
// unless already applied (a restart without a new delivery).
const mOverrideScript = "/usr/local/sbin/scratchgen-e2e-override"

func mOverridesTable() string {
	var b strings.Builder
	b.WriteString("environment overrides (the only differences from the rendered bundle; every other byte is used as rendered):\n")
	for i, o := range mOverrides {
		how := ""
		if o.Unit != "" {
			how = " (ExecStartPre of " + o.Unit + ")"
		}
		fmt.Fprintf(&b, "  %d. %s: %s%s\n     why: %s\n", i+1, o.Where, o.What, how, o.Why)
	}
	return b.String()
}

// mInstallOverrides writes the override script and one drop-in per unit into a machine root.
func mInstallOverrides(root string) error {
	var script strings.Builder
	script.WriteString("#!/bin/sh\n# scratchgen machine test: environment overrides (see e2e/machines_test.go)\nset -eu\ncase \"$1\" in\n")
	units := map[string]bool{}
	for _, o := range mOverrides {
		if o.Unit == "" {
			continue
		}
		units[o.Unit] = true
		fmt.Fprintf(&script, "%s)\n  f=%s\n  if ! grep -q 'scratchgen machine test override' \"$f\"; then\n", o.Unit, o.File)
		for _, line := range strings.Split(o.Sh, "\n") {
			script.WriteString("    " + line + "\n")
		}
		fmt.Fprintf(&script, "    echo \"override applied to $f: %s\"\n  fi\n  ;;\n", strings.ReplaceAll(o.What, `"`, `\"`))
	}
	script.WriteString("esac\n")
	if err := writeRootFile(root, mOverrideScript, []byte(script.String()), 0o755); err != nil {
		return err
	}
	for u := range units {
		dropin := fmt.Sprintf("# scratchgen machine test: environment overrides\n[Service]\nExecStartPre=%s %s\n", mOverrideScript, u)
		if err := writeRootFile(root, paths.SystemdDir+"/"+u+".d/90-scratchgen-e2e-override.conf", []byte(dropin), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeRootFile writes a file at an absolute path inside a machine root.
func writeRootFile(root, p string, data []byte, mode os.FileMode) error {
	f := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f, data, mode)
}

// mWorld is a cluster of booted machines, delivered the three ways (see TestMachines).
type mWorld struct {
	h                     *Harness
	prep                  *nbPrepared
	ctx                   context.Context
	nodes                 []*mNode
	byName                map[string]*mNode
	admin                 *Client
	kubelets              map[string]watched
	services              []watched // every node's containerd, kubelet and kube-proxy
	nets                  map[string]*NetNode
	start, imaged, booted time.Time
}

// mBringUp builds the binaries, images and machine image, renders the bundle, and
// delivers it to three booted machines: cp-1 by rsync, worker-1 by Ignition, worker-2
// by cloud-init. The machines are stopped in t.Cleanup.
func mBringUp(t *testing.T) *mWorld {
	t.Helper()
	return mBringUpFamily(t, IPv4)
}

// mBringUpFamily is mBringUp with a network and cluster of the IP family setup.
func mBringUpFamily(t *testing.T, family Family) *mWorld {
	t.Helper()
	mPrerequisites(t)
	start := time.Now()
	h := NewFamily(t, family, nodeNames(bootNodes)...)
	t.Log(mOverridesTable())

	cache := nbCacheDir(t)
	image, err := machine.Image(nbContext(t), cache, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	// The bundle carries the CNI plugins: Debian's, from the machine image's packages,
	// served as a release archive.
	prep := nbPrepare(t, h, start, filepath.Join(image, "usr/lib/cni"))
	ctx := prep.Ctx
	ignition, err := machine.Ignition(ctx, cache, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	imaged := time.Now()
	t.Logf("machine image %s and Ignition %s ready %s after start", image, ignition, imaged.Sub(start).Round(time.Second))

	metaData, err := os.ReadFile(filepath.Join(h.Bundle, bundle.MetadataName))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := bundle.ParseMetadata(metaData)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*mNode{{Name: "cp-1", Via: viaRsync}, {Name: "worker-1", Via: viaIgnition}, {Name: "worker-2", Via: viaCloudInit}}
	byName := map[string]*mNode{}
	t.Cleanup(func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			n := nodes[i]
			if n.M == nil {
				continue
			}
			if t.Failed() {
				t.Log(mDiagnostics(n))
			}
			// Teardown is not under test: a machine that does not power off within 15 s
			// is killed (see mReboot for why cp-1 can take long), and that is only logged.
			stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := n.M.Stop(stopCtx); err != nil {
				t.Logf("teardown: %v", err)
			}
			cancel()
		}
	})
	serviceCIDR, err := mServiceCIDR(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		byName[n.Name] = n
		n.Net = h.Net.Node(n.Name)
		n.Dir = filepath.Join(h.Bundle, "nodes", n.Name)
		if n.Meta = meta.Node(n.Name); n.Meta == nil {
			t.Fatalf("%s lists no node %s", bundle.MetadataName, n.Name)
		}
		n.M, err = machine.New(ctx, image, filepath.Join(h.State, "machines", n.Name), n.Name, "/run/netns/"+n.Net.NS, logWriter{t})
		if err != nil {
			t.Fatal(err)
		}
		if err := mInstallOverrides(n.M.Root()); err != nil {
			t.Fatal(err)
		}
		for _, r := range strings.Split(serviceCIDR, ",") { // one per family
			ipCmd(t, "-n", n.Net.NS, "route", "replace", r, "dev", "eth0")
		}
	}

	// Delivery.
	for _, n := range nodes {
		began := time.Now()
		if err := mDeliver(ctx, t, n, ignition, filepath.Join(h.State, "ignition-state", n.Name)); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s delivered by %s and booted in %s", n.Name, n.Via, time.Since(began).Round(time.Millisecond))
	}
	for _, n := range nodes[1:] {
		if err := mImport(ctx, n, prep.WorkloadArchive); err != nil {
			t.Fatal(err)
		}
	}
	booted := time.Now()
	t.Logf("machines delivered and booted %s after start", booted.Sub(start).Round(time.Second))

	admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	kubelets := map[string]watched{}
	var services []watched
	nets := map[string]*NetNode{}
	for _, n := range nodes {
		nets[n.Name] = n.Net
		for _, u := range []string{"containerd.service", "kubelet.service", "kube-proxy.service"} {
			w := &unitWatch{n: n, unit: u}
			services = append(services, w)
			if u == "kubelet.service" {
				kubelets[n.Name] = w
			}
		}
	}
	return &mWorld{h: h, prep: prep, ctx: ctx, nodes: nodes, byName: byName, admin: admin, kubelets: kubelets,
		services: services, nets: nets, start: start, imaged: imaged, booted: booted}
}

func TestMachines(t *testing.T) {
	if os.Getenv(envEnable) != "1" || os.Getenv(envMachines) != "1" {
		t.Skip("SKIPPED: the machine test boots systemd-nspawn machines as root; run `make e2e-machines` " +
			"(or set " + envEnable + "=1 " + envMachines + "=1)")
	}
	w := mBringUp(t)
	h, prep, ctx, booted, admin := w.h, w.prep, w.ctx, w.booted, w.admin
	nodes, byName, kubelets, services, nets := w.nodes, w.byName, w.kubelets, w.services, w.nets
	start, imaged := w.start, w.imaged
	cpKubelet := kubelets["cp-1"]

	if !t.Run("1 control plane as static pods under systemd's kubelet, mirror pods visible through the API", func(t *testing.T) {
		if err := checkReadyz(cpKubelet, admin, nbBootBound); err != nil {
			t.Fatalf("kube-apiserver, a static pod of cp-1's kubelet, is not ready: %v", err)
		}
		t.Logf("kube-apiserver ready %s after the machines booted", time.Since(booted).Round(time.Second))
		if err := mApplyAddons(h, prep.Bins); err != nil {
			t.Fatal(err)
		}
		if err := nbCheckMirrorPods(h, cpKubelet, admin); err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}
	if !t.Run("2 every node registers with its own kubelet credentials and is Ready", func(t *testing.T) {
		if err := nbCheckNodes(h, kubelets, admin); err != nil {
			t.Fatal(err)
		}
		t.Logf("all nodes Ready %s after the machines booted", time.Since(booted).Round(time.Second))
	}) {
		t.FailNow()
	}
	var web *nbWeb
	if !t.Run("3 a Deployment runs on the workers, pods in their nodes' ranges, reaching each other", func(t *testing.T) {
		var err error
		web, err = nbCheckDeployment(h, nets, kubelets, admin, prep.WorkloadRef)
		if err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}
	t.Run("4 kubectl logs and exec through the API server; kubelet serving certificates", func(t *testing.T) {
		if err := nbCheckLogsExec(h, prep.Bins, admin, web); err != nil {
			t.Error(err)
		}
		if err := nbCheckKubeletServing(h); err != nil {
			t.Error(err)
		}
	})
	t.Run("5 a Service's ClusterIP reaches the pods through kube-proxy", func(t *testing.T) {
		if err := nbCheckService(h, nets, services, web); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("6 CoreDNS from admin/addons resolves the Service's name from a pod", func(t *testing.T) {
		if prep.NoDNS != "" {
			t.Skipf("SKIPPED (LOUD): CoreDNS could not be built: %s", prep.NoDNS)
		}
		if err := nbCheckDNS(h, nets, services, admin, web); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("7 systemd: no failed unit, every listed unit enabled and active, every unit named exists; containerd runs the delivered config", func(t *testing.T) {
		for _, n := range nodes {
			if !slices.Equal(n.Meta.Units, mUnitList(t, n)) {
				t.Errorf("%s: %s lists %v, bundle.json %v", n.Name, paths.UnitList, mUnitList(t, n), n.Meta.Units)
			}
			for _, err := range mCheckUnits(ctx, n, n.Meta.Units) {
				t.Error(err)
			}
			if err := mCheckContainerdConfig(ctx, n); err != nil {
				t.Error(err)
			}
			t.Logf("%s (%s): units %s enabled and active, no failed unit, every dependency exists", n.Name, n.Via, strings.Join(n.Meta.Units, " "))
		}
	})
	t.Run("7b the certificate watchdog runs, writes every certificate's expiry, and warns in the journal", func(t *testing.T) {
		for _, n := range nodes {
			if err := mCheckWatchdog(ctx, n); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("8 a unit made wrong on purpose fails the unit checks, naming it", func(t *testing.T) {
		if err := mCheckWrongUnit(ctx, byName["cp-1"]); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("9 scratchgen validate-cluster passes, and names a spec node the cluster lacks", func(t *testing.T) {
		if err := mValidateCluster(h, true); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("10 rebooted machines come back with no manual step", func(t *testing.T) {
		for _, name := range []string{"worker-1", "cp-1"} {
			if err := mReboot(ctx, h, byName[name], kubelets, services, admin, web); err != nil {
				t.Fatal(err)
			}
		}
		if err := mValidateCluster(h, false); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("timings: binaries and images %s; render, machine image and Ignition %s; machines and delivery %s; checks %s; total %s",
		prep.Built.Sub(start).Round(time.Second), imaged.Sub(prep.Built).Round(time.Second), booted.Sub(imaged).Round(time.Second),
		time.Since(booted).Round(time.Second), time.Since(start).Round(time.Second))
}

// mPrerequisites fails, naming the packages, when a tool of the machine test is missing.
func mPrerequisites(t *testing.T) {
	t.Helper()
	var missing []string
	for tool, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "systemd-machine-id-setup": "systemd",
		"debootstrap": "debootstrap", "rsync": "rsync", "nsenter": "util-linux", "ip": "iproute2", "gcc": "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" ("+pkg+")")
		}
	}
	if _, err := os.Stat("/usr/include/blkid/blkid.h"); err != nil {
		missing = append(missing, "blkid.h (libblkid-dev, to build Ignition)")
	}
	if len(missing) > 0 {
		t.Fatalf("the machine test needs: %s\n(apt-get install -y systemd-container debootstrap rsync libblkid-dev)", strings.Join(sortStrings(missing), ", "))
	}
}

// mServiceCIDR reads the service range from cp-1's rendered API server manifest.
func mServiceCIDR(h *Harness) (string, error) {
	pod, err := LoadPod(h.NodeFile("cp-1", paths.APIServerManifest))
	if err != nil {
		return "", err
	}
	cidr, ok := flagValue(pod, "service-cluster-ip-range")
	if !ok {
		return "", fmt.Errorf("cp-1's %s has no --service-cluster-ip-range", paths.APIServerManifest)
	}
	return cidr, nil
}

// rsyncArgs is the README's rsync of a node's rootfs/ (paths.RsyncFlags) into dst.
func rsyncArgs(src, dst string, extra ...string) []string {
	return append(append(strings.Fields(paths.RsyncFlags), extra...), strings.TrimSuffix(src, "/")+"/", strings.TrimSuffix(dst, "/")+"/")
}

func mRsync(args []string) error {
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rsync %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// mDeliver delivers the node's bundle its way and boots the machine.
func mDeliver(ctx context.Context, t *testing.T, n *mNode, ignition, ignitionState string) error {
	root := n.M.Root()
	switch n.Via {
	case viaRsync:
		if err := mRsync(rsyncArgs(n.rootfs(), root)); err != nil {
			return err
		}
		if err := n.M.Boot(ctx); err != nil {
			return err
		}
		out, err := n.M.Exec(ctx, "sh", "-c", paths.EnableCommand)
		if err != nil {
			return fmt.Errorf("%s: the README's delivery command: %w", n.Name, err)
		}
		t.Logf("%s: %s\n%s", n.Name, paths.EnableCommand, out)
		return nil
	case viaIgnition, viaCloudInit:
		view := provision.ButaneFile // node.bu carries the header of what ignition.json leaves out
		if n.Via == viaCloudInit {
			view = provision.UserDataFile
		}
		data, err := os.ReadFile(filepath.Join(n.Dir, view))
		if err != nil {
			return err
		}
		dec, err := provision.Decode(view, data)
		if err != nil {
			return err
		}
		if baked := append(slices.Clone(dec.Archives), dec.Binaries...); len(baked) > 0 { // baked into the machine image
			if err := mRsync(rsyncArgs(n.rootfs(), root, "--files-from="+mFileList(t, baked))); err != nil {
				return err
			}
		}
		if n.Via == viaIgnition {
			if err := machine.ApplyIgnition(ctx, ignition, filepath.Join(n.Dir, provision.IgnitionFile), root, ignitionState); err != nil {
				return err
			}
		} else {
			userData, err := os.ReadFile(filepath.Join(n.Dir, provision.UserDataFile))
			if err != nil {
				return err
			}
			if err := machine.SeedCloudInit(root, n.Name, string(userData)); err != nil {
				return err
			}
		}
		if err := n.M.Boot(ctx); err != nil {
			return err
		}
		if n.Via == viaCloudInit {
			status, err := machine.CloudInitStatus(ctx, n.M)
			if err != nil {
				return err
			}
			t.Logf("%s: cloud-init status --long:\n%s", n.Name, status)
		}
		if !dec.HasOmittedHeader {
			return fmt.Errorf("%s's %s does not say which secrets it leaves out", n.Name, view)
		}
		if len(dec.Tables) == 0 {
			return fmt.Errorf("%s's %s does not say it leaves out the routes table", n.Name, view)
		}
		// Booted without the table, the routes unit was skipped (its condition), not failed.
		routes := func() string {
			out, _ := n.M.Exec(ctx, "systemctl", "show", paths.RoutesService, "-p", "ActiveState", "-p", "ConditionResult")
			f := strings.Fields(out)
			slices.Sort(f) // ActiveState=…, ConditionResult=…, in whatever order systemctl printed them
			return strings.Join(f, " ")
		}
		if st := routes(); st != "ActiveState=inactive ConditionResult=no" {
			return fmt.Errorf("%s booted without the routes table, yet %s is %q, want inactive by its condition", n.Name, paths.RoutesService, st)
		}
		// The secrets and the routes table the view leaves out, by rsync after boot: the
		// kubelet and kube-proxy restart (Restart=always) until they find theirs, and
		// scratchgen-routes.path starts the routes unit when the table arrives.
		if err := mRsync(rsyncArgs(n.rootfs(), root, "--files-from="+mFileList(t, append(slices.Clone(dec.Omitted), dec.Tables...)))); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for st := routes(); st != "ActiveState=active ConditionResult=yes"; st = routes() {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: 30 s after the routes table arrived, %s is %q: %s did not start it", n.Name, paths.RoutesService, st, paths.RoutesPath)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%s: %s, skipped at boot without the table, started by %s when rsync delivered it", n.Name, paths.RoutesService, paths.RoutesPath)
		return nil
	}
	return fmt.Errorf("unknown delivery %q", n.Via)
}

// mFileList writes an rsync --files-from list of absolute node paths.
func mFileList(t *testing.T, files []string) string {
	f, err := os.CreateTemp(t.TempDir(), "files-from")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range files {
		fmt.Fprintln(f, strings.TrimPrefix(p, "/"))
	}
	return f.Name()
}

// mImport imports the workload image (which no bundle carries) into a worker's containerd,
// once containerd runs with the delivered configuration.
func mImport(ctx context.Context, n *mNode, archive string) error {
	data, err := os.ReadFile(archive)
	if err != nil {
		return err
	}
	if err := writeRootFile(n.M.Root(), "/var/tmp/workload.tar", data, 0o644); err != nil {
		return err
	}
	w := &unitWatch{n: n, unit: "containerd.service"}
	return w.Poll(time.Minute, "importing the workload image", func() error {
		_, err := n.M.Exec(ctx, "ctr", "-n", "k8s.io", "images", "import", "/var/tmp/workload.tar")
		return err
	})
}

// mApplyAddons runs the README's two kubectl lines: rbac.yaml with cp-1's super-admin.conf,
// coredns.yaml with the admin kubeconfig.
func mApplyAddons(h *Harness, bins string) error {
	for _, l := range mAddonLines(h.Bundle) {
		cmd := exec.Command(filepath.Join(bins, "kubectl"), "apply", "-f", l.file)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+l.kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("KUBECONFIG=%s kubectl apply -f %s: %v\n%s", l.kubeconfig, l.file, err, out)
		}
		h.T.Logf("KUBECONFIG=%s kubectl apply -f %s:\n%s", l.kubeconfig, l.file, out)
	}
	return nil
}

type addonLine struct{ kubeconfig, file string }

// mAddonLines are the README's add-on lines for the bundle dir b.
func mAddonLines(b string) []addonLine {
	return []addonLine{
		{filepath.Join(b, "nodes", "cp-1", "rootfs", strings.TrimPrefix(paths.SuperAdminConf, "/")), filepath.Join(b, "admin", "addons", "rbac.yaml")},
		{filepath.Join(b, "admin", paths.AdminKubeconfig), filepath.Join(b, "admin", "addons", "coredns.yaml")},
	}
}

// TestREADMEDeliveryLines: the README's "Deliver a bundle" block is what the machine test
// runs: the rsync flags, the enable command (paths_test.go) and the add-on lines.
func TestREADMEDeliveryLines(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	want := []string{"rsync " + paths.RsyncFlags + " bundles/demo/nodes/worker-1/rootfs/ root@10.0.0.21:/"}
	for _, l := range mAddonLines("bundles/demo") {
		want = append(want, "KUBECONFIG="+l.kubeconfig+" kubectl apply -f "+l.file)
	}
	for _, w := range want {
		if !strings.Contains(readme, w) {
			t.Errorf("README.md's Deliver a bundle section does not say %q, which the machine test runs", w)
		}
	}
}

// unitWatch is a unit of a booted machine, as checks watch it.
type unitWatch struct {
	n    *mNode
	unit string
}

var _ watched = (*unitWatch)(nil)

func (u *unitWatch) show() map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := u.n.M.Exec(ctx, "systemctl", "show", u.unit, "-p", "ActiveState", "-p", "SubState", "-p", "Result", "-p", "NRestarts", "-p", "ExecMainStatus")
	props := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			props[k] = v
		}
	}
	return props
}

func (u *unitWatch) Exited() (bool, error) {
	if !u.n.M.Booted() {
		return true, fmt.Errorf("machine %s is not running", u.n.Name)
	}
	p := u.show()
	if p["ActiveState"] == "failed" || (p["ActiveState"] == "inactive" && p["Result"] != "" && p["Result"] != "success") {
		return true, fmt.Errorf("%s %s/%s, result %s", u.unit, p["ActiveState"], p["SubState"], p["Result"])
	}
	return false, nil
}

func (u *unitWatch) Failure(format string, a ...any) error {
	p := u.show()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	journal, err := u.n.M.Exec(ctx, "journalctl", "-u", u.unit, "-n", fmt.Sprint(logTailLines), "--no-pager", "-o", "short-precise")
	if err != nil && journal == "" {
		journal = err.Error()
	}
	return fmt.Errorf("%s on %s (delivered by %s): %s (%s/%s, result %s, %s restarts, last exit status %s)\n--- journalctl -u %s -n %d ---\n%s",
		u.unit, u.n.Name, u.n.Via, fmt.Sprintf(format, a...), p["ActiveState"], p["SubState"], p["Result"], p["NRestarts"], p["ExecMainStatus"],
		u.unit, logTailLines, journal)
}

func (u *unitWatch) Poll(bound time.Duration, what string, f func() error) error {
	return pollWatched(u, bound, what, f, func() { time.Sleep(time.Second) })
}

// mUnitList reads /etc/scratchgen/units as delivered to the machine.
func mUnitList(t *testing.T, n *mNode) []string {
	data, err := os.ReadFile(filepath.Join(n.M.Root(), filepath.FromSlash(paths.UnitList)))
	if err != nil {
		t.Errorf("%s: %v", n.Name, err)
		return nil
	}
	return strings.Fields(string(data))
}

// mDependencyProps are the unit properties that name other units.
var mDependencyProps = []string{"Requires", "Wants", "BindsTo", "Requisite", "PartOf", "After", "Before"}

// mCheckUnits checks, with the machine's systemd, that no unit failed, that each unit of
// units is enabled and active, and that every unit they name exists. Each error names
// the unit.
func mCheckUnits(ctx context.Context, n *mNode, units []string) []error {
	var errs []error
	if out, err := n.M.Exec(ctx, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"); err != nil {
		errs = append(errs, err)
	} else if strings.TrimSpace(out) != "" {
		errs = append(errs, fmt.Errorf("%s (%s): systemctl --failed lists:\n%s", n.Name, n.Via, out))
	}
	for _, u := range units {
		out, _ := n.M.Exec(ctx, "systemctl", "is-enabled", u)
		if state := strings.TrimSpace(out); state != "enabled" {
			hint := ""
			if state == "static" {
				hint = ": it has no [Install] section, so `systemctl enable` does nothing and it will not start at boot"
			}
			errs = append(errs, fmt.Errorf("%s (%s): unit %s is %q, not enabled%s", n.Name, n.Via, u, state, hint))
		}
		args := []string{"systemctl", "show", u}
		for _, p := range mDependencyProps {
			args = append(args, "-p", p)
		}
		out, err := n.M.Exec(ctx, args...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range strings.Split(out, "\n") {
			prop, deps, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			for _, d := range strings.Fields(deps) {
				ls, _ := n.M.Exec(ctx, "systemctl", "show", "-p", "LoadState", "--value", "--", d)
				if ls = strings.TrimSpace(ls); ls != "loaded" {
					errs = append(errs, fmt.Errorf("%s (%s): unit %s: %s=%s names a unit that is %s on the machine", n.Name, n.Via, u, prop, d, ls))
				}
			}
		}
	}
	for _, u := range units {
		out, _ := n.M.Exec(ctx, "systemctl", "is-active", u)
		if state := strings.TrimSpace(out); state != "active" {
			errs = append(errs, fmt.Errorf("%s (%s): unit %s is %q, not active", n.Name, n.Via, u, state))
		}
	}
	return errs
}

// mCheckWrongUnit installs, on a running machine, a copy of a rendered unit made wrong in
// two ways (no [Install] section, an After= on a unit that does not exist) and checks that
// mCheckUnits fails on it with messages naming the unit and each fault.
func mCheckWrongUnit(ctx context.Context, n *mNode) error {
	const wrong, missing = "scratchgen-e2e-wrong.service", "scratchgen-e2e-missing.service"
	data, err := os.ReadFile(filepath.Join(n.rootfs(), filepath.FromSlash(paths.SystemdDir), "scratchgen-routes.service"))
	if err != nil {
		return err
	}
	text, _, ok := strings.Cut(string(data), "[Install]")
	if !ok {
		return fmt.Errorf("the rendered scratchgen-routes.service has no [Install] section to remove")
	}
	text = strings.Replace(text, "[Unit]\n", "[Unit]\nAfter="+missing+"\n", 1)
	file := paths.SystemdDir + "/" + wrong
	if err := writeRootFile(n.M.Root(), file, []byte(text), 0o644); err != nil {
		return err
	}
	defer func() {
		os.Remove(filepath.Join(n.M.Root(), filepath.FromSlash(file)))
		n.M.Exec(ctx, "systemctl", "daemon-reload")
	}()
	if _, err := n.M.Exec(ctx, "sh", "-c", "systemctl daemon-reload && systemctl enable "+wrong); err != nil {
		return err
	}
	errs := mCheckUnits(ctx, n, []string{wrong})
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"unit " + wrong + " is \"static\", not enabled", "unit " + wrong + ": After=" + missing} {
		if !strings.Contains(all, want) {
			return fmt.Errorf("the unit checks did not report %q for the wrong unit; they said:\n%s", want, all)
		}
	}
	return nil
}

// mValidateCluster runs `scratchgen validate-cluster` against the cluster; with
// withMissing, also against the spec plus a node the cluster lacks, which must fail
// naming it.
func mValidateCluster(h *Harness, withMissing bool) error {
	specFile := filepath.Join(h.State, nbCluster+".yaml")
	lock := strings.TrimSuffix(specFile, ".yaml") + ".lock"
	bundles := filepath.Dir(h.Bundle)
	run := func(spec string) (int, string) {
		var out, errOut bytes.Buffer
		code := cli.Main([]string{"validate-cluster", "-f", spec, "--lock", lock, "-o", bundles, "--kubeconfig", h.AdminFile(paths.AdminKubeconfig)},
			cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
		return code, out.String() + errOut.String()
	}
	var last string
	err := poll(nbStepBound, 2*time.Second, func() error {
		code, out := run(specFile)
		last = out
		if code != 0 {
			return fmt.Errorf("exit %d", code)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scratchgen validate-cluster: %v\n%s", err, last)
	}
	h.T.Logf("scratchgen validate-cluster:\n%s", last)
	if !withMissing {
		return nil
	}
	spec, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	extra := filepath.Join(h.State, "validate-missing.yaml")
	missing := fmt.Sprintf("  - name: worker-9\n    address: %s\n    roles: [worker]\n", h.Net.Subnet.Addr().Next().Next().Next())
	added := strings.Replace(string(spec), "\n  nodes:\n", "\n  nodes:\n"+missing, 1)
	if added == string(spec) {
		return fmt.Errorf("%s has no nodes: list to add worker-9 to", specFile)
	}
	if err := os.WriteFile(extra, []byte(added), 0o644); err != nil {
		return err
	}
	code, out := run(extra)
	if code != 1 || !strings.Contains(out, "worker-9") {
		return fmt.Errorf("validate-cluster with worker-9 in the spec but not in the cluster: exit %d, want 1 naming worker-9:\n%s", code, out)
	}
	h.T.Logf("validate-cluster with a node the cluster lacks (exit 1):\n%s", out)
	return nil
}

// mReboot stops and boots a machine again and checks that it comes back by itself: its
// units active, its node Ready with a node lease renewed after the boot, the API server
// ready (cp-1), and the workload pod on a worker Running and serving again.
func mReboot(ctx context.Context, h *Harness, n *mNode, kubelets map[string]watched, services []watched, admin *Client, web *nbWeb) error {
	began := time.Now()
	// A clean poweroff is not always quick: when systemd stops every container scope at
	// once, etcd goes while kube-apiserver drains its requests, and the API server's scope
	// can sit in stop-sigterm until systemd's 90 s stop timeout (seen here). The machine
	// gets 30 s, then it is killed: the reboot becomes a power cut, which it must survive
	// as well. Either way it must come back by itself.
	if err := n.M.Stop(ctx); err != nil {
		h.T.Logf("%s: not a clean poweroff, the reboot became a power cut: %v\n%s", n.Name, err, mConsoleTail(n))
	}
	if err := n.M.Boot(ctx); err != nil {
		return err
	}
	booted := time.Now()
	h.T.Logf("%s rebooted in %s", n.Name, booted.Sub(began).Round(time.Millisecond))
	kubelet := kubelets[n.Name]
	if n.Name == "cp-1" {
		if err := checkReadyz(kubelet, admin, nbBootBound); err != nil {
			return fmt.Errorf("after cp-1's reboot: %v", err)
		}
	}
	err := kubelet.Poll(nbStepBound, n.Name+" Ready with its node lease renewed after the reboot", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		node, err := admin.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return fmt.Errorf("node %s not Ready", n.Name)
		}
		var lease *coordinationv1.Lease
		if lease, err = admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(booted) {
			return fmt.Errorf("node lease %s last renewed %v, before the reboot at %s", n.Name, lease.Spec.RenewTime, booted.Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if pod := web.Pods[n.Name]; pod != nil {
		other := "worker-2"
		if n.Name == other {
			other = "worker-1"
		}
		err := kubelet.Poll(nbStepBound, "the workload pod on "+n.Name+" serving again after the reboot", func() error {
			ctx, cancel := ctxTimeout()
			defer cancel()
			p, err := admin.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pod %s is %s with IP %q", p.Name, p.Status.Phase, p.Status.PodIP)
			}
			got, err := nbPodGet(h.Net.Node(other), p, "/")
			if err != nil {
				return err
			}
			if got != p.Name {
				return fmt.Errorf("pod %s at %s answered %q", p.Name, p.Status.PodIP, got)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, u := range n.Meta.Units {
		out, _ := n.M.Exec(ctx, "systemctl", "is-active", u)
		if strings.TrimSpace(out) != "active" {
			return (&unitWatch{n: n, unit: u}).Failure("not active after the reboot")
		}
	}
	if err := nbExited(services); err != nil {
		return err
	}
	h.T.Logf("%s back with no manual step %s after the reboot began: units active, Ready, lease renewed", n.Name, time.Since(began).Round(time.Second))
	return nil
}

// mCheckContainerdConfig asks the machine's containerd for its effective configuration:
// every setting of the rendered config.toml is in force (plus the one override).
func mCheckContainerdConfig(ctx context.Context, n *mNode) error {
	out, err := n.M.Exec(ctx, "containerd", "config", "dump")
	if err != nil {
		return err
	}
	rendered, err := os.ReadFile(filepath.Join(n.rootfs(), filepath.FromSlash(paths.ContainerdConfig)))
	if err != nil {
		return err
	}
	want := []string{"restrict_oom_score_adj = true"}
	for _, line := range strings.Split(string(rendered), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok && k != "version" && !strings.HasPrefix(k, "#") {
			want = append(want, k+" = "+v)
		}
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fmt.Errorf("%s (%s): containerd config dump lacks %q (the rendered %s plus the override)", n.Name, n.Via, w, paths.ContainerdConfig)
		}
	}
	return nil
}

// mCheckWatchdog starts the node's certificate check as its timer would, and compares the
// metrics it writes with the certificates the bundle holds (parsed here, on the host);
// then runs the script with a window of ten years under systemd-run and finds its
// warnings in the journal at priority warning.
func mCheckWatchdog(ctx context.Context, n *mNode) error {
	if out, err := n.M.Exec(ctx, "systemctl", "is-active", paths.CertCheckTimer); err != nil {
		return fmt.Errorf("%s: %s is %s", n.Name, paths.CertCheckTimer, strings.TrimSpace(out))
	}
	if _, err := n.M.Exec(ctx, "systemctl", "start", paths.CertCheckService); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	prom, err := os.ReadFile(filepath.Join(n.M.Root(), filepath.FromSlash(model.DefaultMetricsDir), paths.CertMetricsFile))
	if err != nil {
		return fmt.Errorf("%s: the watchdog wrote no metrics: %w", n.Name, err)
	}
	values := map[string][]string{} // path → the values of its series
	for _, l := range strings.Split(string(prom), "\n") {
		if rest, ok := strings.CutPrefix(l, "scratchgen_certificate_expiry_seconds{path=\""); ok {
			p, _, _ := strings.Cut(rest, "\"")
			values[p] = append(values[p], l[strings.LastIndex(l, " ")+1:])
		}
	}
	// Every certificate file and kubeconfig client certificate of the node, as rendered.
	want := map[string][]string{}
	err = filepath.WalkDir(n.rootfs(), func(f string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		p := "/" + filepath.ToSlash(strings.TrimPrefix(f, n.rootfs()+"/"))
		if strings.HasPrefix(p, paths.ImagesDir+"/") {
			return nil // image archives
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var certs []*x509.Certificate
		if strings.HasSuffix(p, ".crt") {
			for rest := data; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if c, err := x509.ParseCertificate(b.Bytes); err == nil {
					certs = append(certs, c)
				}
			}
		} else if cfg, err := clientcmd.Load(data); err == nil && len(cfg.AuthInfos) > 0 {
			for _, a := range cfg.AuthInfos {
				if b, _ := pem.Decode(a.ClientCertificateData); b != nil {
					if c, err := x509.ParseCertificate(b.Bytes); err == nil {
						certs = append(certs, c)
					}
				}
			}
		}
		for _, c := range certs {
			want[p] = append(want[p], strconv.FormatInt(c.NotAfter.Unix(), 10))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for p, ws := range want {
		slices.Sort(ws)
		got := slices.Sorted(slices.Values(values[p]))
		if !slices.Equal(got, ws) {
			return fmt.Errorf("%s: the watchdog's metrics for %s are %v, the certificates end at %v", n.Name, p, got, ws)
		}
	}
	if len(values) != len(want) {
		return fmt.Errorf("%s: the watchdog reports %d files, the node holds certificates in %d", n.Name, len(values), len(want))
	}
	// A window of ten years: every certificate warns, at priority warning.
	unit := "scratchgen-e2e-certcheck-window"
	if out, err := n.M.Exec(ctx, "systemd-run", "--unit="+unit, "--wait", "--quiet", paths.CertCheckScript, "315360000", "/run/scratchgen-e2e-metrics"); err != nil {
		return fmt.Errorf("%s: %s with a ten-year window: %v\n%s", n.Name, paths.CertCheckScript, err, out)
	}
	journal, err := n.M.Exec(ctx, "journalctl", "-u", unit, "-p", "warning", "--no-pager", "-o", "cat")
	if err != nil {
		return err
	}
	total := 0
	for _, ws := range want {
		total += len(ws)
	}
	if got := strings.Count(journal, "expires at"); got != total {
		return fmt.Errorf("%s: %d warning(s) in the journal at priority warning, want one per certificate (%d):\n%s", n.Name, got, total, journal)
	}
	return nil
}

// mDiagnostics is what a failed run prints of a machine.
func mDiagnostics(n *mNode) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "=== machine %s (delivered by %s)\n", n.Name, n.Via)
	if n.M.Booted() {
		out, _ := n.M.Exec(ctx, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")
		fmt.Fprintf(&b, "--- systemctl --failed:\n%s", out)
		out, _ = n.M.Exec(ctx, "journalctl", "-n", "120", "--no-pager", "-o", "short-precise",
			"-u", "kubelet", "-u", "kube-proxy", "-u", "containerd", "-u", "scratchgen-*", "-u", "cloud-*")
		fmt.Fprintf(&b, "--- journal (last 120 lines of the node's units):\n%s", out)
	} else {
		b.WriteString("(not running)\n")
	}
	b.WriteString(mConsoleTail(n))
	return b.String()
}

// mConsoleTail is the tail of the machine's console (systemd's boot and shutdown messages).
func mConsoleTail(n *mNode) string {
	data, err := os.ReadFile(n.M.ConsoleLog())
	if err != nil {
		return fmt.Sprintf("(no console log: %v)\n", err)
	}
	s := string(data)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return fmt.Sprintf("--- console of %s (tail):\n%s\n", n.Name, s)
}
