package e2e

// TestDay2 changes a running highly available control plane by rendering and following
// `scratchgen plan`, on the HA harness (processes from the rendered manifests, each node
// in its own network namespace, the test's TCP load balancer in front of the API
// servers; see TestHA):
//
//  1. Replace a failed member: cp-3 dies for good (SIGKILL); the spec replaces it with
//     cp-4; the runbook (plan --output json) is followed step by step: its etcdctl
//     commands run on the named node with the node's rendered certificates (the built
//     etcdctl, in the node's network namespace), the removed member's manifest and data
//     directory go, the new node's static pods start (its etcd joins as a learner), the
//     promotion is repeated until etcd accepts it, the other API servers restart with
//     their new --etcd-servers one at a time.
//  2. Grow 3 → 5 and shrink back to 3, one member per render, each by its runbook.
//  3. A skew-violating change (a node's kubelet newer than the control plane) is refused
//     offline by plan and render.
//  4. Upgrade 1.35 → 1.36 by the runbook's waves, with the real binaries of both
//     releases: each control plane's API server, controller manager and scheduler restart
//     from the 1.36 binaries, one node at a time.
//
// Throughout, a poller GETs the API through the load balancer every 200 ms with the admin
// kubeconfig; failed requests and the longest gap are reported per phase (connections
// to a restarting API server may fail: reported, not asserted). A ConfigMap written at
// the start reads back after every phase; etcd lists exactly the expected voting members,
// all healthy; at the end every API server, controller manager and scheduler reports 1.36.
//
// The harness runs no kubelets: the runbook's host steps (systemctl, kubectl drain,
// installing kubelet binaries) are logged, not run; the machine and rotation tests cover
// them under systemd.
//
// Run it with `make e2e-day2` (SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_DAY2=1).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/review"
)

// envDay2=1 (with envEnable=1) runs TestDay2: `make e2e-day2`.
const envDay2 = "SCRATCHGEN_E2E_DAY2"

// The releases of the upgrade (their etcd is the same 3.6 release).
const (
	day2From = "v1.35.4"
	day2To   = "v1.36.3"
	day2Etcd = "v3.6.8"
)

func TestDay2(t *testing.T) {
	if os.Getenv(envEnable) != "1" || os.Getenv(envDay2) != "1" {
		t.Skip("SKIPPED: the day-2 test runs etcd and control planes of two releases as root; run `make e2e-day2` " +
			"(or set " + envEnable + "=1 " + envDay2 + "=1)")
	}
	all := []string{"cp-1", "cp-2", "cp-3", "cp-4", "cp-5"}
	h := New(t, all...)
	d := &day2{t: t, h: h, procs: map[string]Pods{}}
	d.bins = map[string]string{day2From: d2Binaries(t, day2From), day2To: d2Binaries(t, day2To)}
	h.Bin = d.bins[day2From]
	lb, err := newHALB(h.Net.Gateway.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	d.lb = lb

	d.render(day2From, []string{"cp-1", "cp-2", "cp-3"})
	h.Delivered = true // each node runs its own copy of rootfs/, updated by the runbook's deliveries
	for _, n := range []string{"cp-1", "cp-2", "cp-3"} {
		h.Deliver(n)
	}
	for n, ps := range h.Boot("cp-1", "cp-2", "cp-3") {
		d.procs[n] = ps
	}
	d.setBackends([]string{"cp-1", "cp-2", "cp-3"})
	admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	d.admin = admin
	if err := poll(haReadyBound, time.Second, func() error { _, err := admin.Discovery().ServerVersion(); return err }); err != nil {
		t.Fatalf("the API through the load balancer: %v", err)
	}
	superAdmin, err := KubeconfigClient(h.NodeFile("cp-1", paths.SuperAdminConf))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := superAdmin.ApplyDir(h.AdminFile("addons")); err != nil {
		t.Fatal(err)
	}
	d.writeMarker()
	d.poller = startPoller(t, func() *Client { return admin })
	d.checkEtcd([]string{"cp-1", "cp-2", "cp-3"})

	d.phase("replace failed member cp-3 with cp-4", func() {
		t.Logf("cp-3 fails for good: SIGKILL to its processes")
		haKillNode(d.procs["cp-3"])
		d.setBackends([]string{"cp-1", "cp-2"})
		d.change(day2From, []string{"cp-1", "cp-2", "cp-4"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4"})
	})
	d.phase("grow 3 → 5, one member at a time", func() {
		d.change(day2From, []string{"cp-1", "cp-2", "cp-4", "cp-5"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4", "cp-5"})
		d.change(day2From, []string{"cp-1", "cp-2", "cp-4", "cp-5", "cp-3"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4", "cp-5", "cp-3"})
	})
	d.phase("shrink 5 → 3, one member at a time", func() {
		d.change(day2From, []string{"cp-1", "cp-2", "cp-4", "cp-5"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4", "cp-5"})
		d.change(day2From, []string{"cp-1", "cp-2", "cp-4"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4"})
	})
	t.Run("a kubelet newer than the control plane is refused offline", func(t *testing.T) {
		worker := fmt.Sprintf("  - name: worker-9\n    address: %s\n    roles: [worker]\n    kubernetesVersion: %s",
			h.Net.Subnet.Addr().Next().Next().Next(), day2To)
		spec := d.spec(day2From, []string{"cp-1", "cp-2", "cp-4"}, worker)
		file := filepath.Join(h.State, "skew.yaml")
		os.WriteFile(file, []byte(spec), 0o644)
		lock := filepath.Join(h.State, "day2.lock")
		for _, cmd := range []string{"plan", "render"} {
			out, code := d.cli(cmd, "-f", file, "--lock", lock, "-o", filepath.Dir(h.Bundle))
			if code != 1 || !strings.Contains(out, "newer than the control plane's "+day2From) {
				t.Errorf("%s with worker-9's kubelet at %s: exit %d, want 1 naming the skew\n%s", cmd, day2To, code, out)
			}
		}
	})
	d.phase("upgrade "+day2From+" → "+day2To+" by the waves", func() {
		h.Bin = d.bins[day2To]
		d.change(day2To, []string{"cp-1", "cp-2", "cp-4"})
		d.checkEtcd([]string{"cp-1", "cp-2", "cp-4"})
		d.checkVersions([]string{"cp-1", "cp-2", "cp-4"}, day2To)
	})
	d.poller.stop()
	t.Logf("availability through the load balancer (poller every %s with the admin kubeconfig):\n  %s", pollInterval, strings.Join(d.lines, "\n  "))
}

// day2 is the test's cluster and its operator.
type day2 struct {
	t      *testing.T
	h      *Harness
	bins   map[string]string // release → binaries (with etcdctl)
	lb     *haLB
	admin  *Client
	poller *poller
	procs  map[string]Pods // node → its running static pods
	lines  []string
}

// d2Binaries builds (or reuses) a release's control-plane binaries and etcd's, with etcdctl.
func d2Binaries(t *testing.T, kube string) string {
	t.Helper()
	cache := os.Getenv(envCache)
	if cache == "" {
		cache = ".cache"
	}
	dir, err := k8sbin.Build(context.Background(), k8sbin.Options{Kubernetes: kube, Etcd: day2Etcd, CacheDir: cache,
		Components: append(append([]string{}, components...), "etcdctl"), Log: logWriter{t}})
	if err != nil {
		t.Fatalf("building %s and etcd %s: %v", kube, day2Etcd, err)
	}
	return dir
}

func (d *day2) spec(version string, members []string, extra ...string) string {
	var nodes []NodeSpec
	for _, n := range members {
		nodes = append(nodes, NodeSpec{Name: n, Roles: []string{"control-plane", "etcd"}})
	}
	return d.h.Spec("day2", version, d.lb.Addr(), nodes, extra...)
}

func (d *day2) render(version string, members []string) {
	d.h.RenderSpec("day2", d.spec(version, members))
}

// cli runs scratchgen; its output is stdout and stderr together.
func (d *day2) cli(args ...string) (string, int) {
	stdout, stderr, code := d.cli2(args...)
	return stderr + stdout, code
}

// cli2 runs scratchgen and returns its stdout and stderr apart (warnings go to stderr).
func (d *day2) cli2(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Main(args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// phase runs f and reports the poller's figures for it.
func (d *day2) phase(name string, f func()) {
	d.t.Logf("=== %s", name)
	began := time.Now()
	f()
	total, failed, _, gap, samples := d.poller.stats(began, time.Now())
	line := fmt.Sprintf("%s: %s, %d requests, %d failed, longest gap %s", name, time.Since(began).Round(100*time.Millisecond), total, failed, gap.Round(100*time.Millisecond))
	if failed > 0 {
		line += " (e.g. " + strings.Join(samples, "; ") + ")"
	}
	d.lines = append(d.lines, line)
	d.t.Log(line)
	d.checkMarker()
}

// change writes the spec with the members at version, asks plan for the runbook, renders
// and follows the runbook.
func (d *day2) change(version string, members []string) {
	t, h := d.t, d.h
	specFile := filepath.Join(h.State, "day2.yaml")
	if err := os.WriteFile(specFile, []byte(d.spec(version, members)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Dir(h.Bundle)
	text, code := d.cli("plan", "-f", specFile, "-o", out)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, text)
	}
	t.Logf("scratchgen plan:\n%s", text)
	js, _, code := d.cli2("plan", "-f", specFile, "-o", out, "--output", "json")
	var plan struct{ Runbook []review.RolloutStep }
	if err := json.Unmarshal([]byte(js), &plan); err != nil || code != 0 {
		t.Fatalf("plan --output json: exit %d, %v\n%s", code, err, js)
	}
	if text, code := d.cli("render", "-f", specFile, "-o", out); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, text)
	}
	for _, step := range plan.Runbook {
		d.follow(step, members)
	}
	// The runbook must have named every node whose files changed: nothing is left to deliver.
	for _, n := range members {
		if diff := d.undelivered(n); diff != "" {
			t.Errorf("the runbook never delivered %s, whose files changed:\n%s", n, diff)
		}
	}
	d.setBackends(members)
}

// undelivered lists what rsync would still change on node (itemized, by checksum).
func (d *day2) undelivered(node string) string {
	src := filepath.Join(d.h.Bundle, "nodes", node, "rootfs") + "/"
	dst := filepath.Join(d.h.State, "nodes", node, "rootfs") + "/"
	out, err := exec.Command("rsync", "-a", "-n", "-c", "--itemize-changes", "--chown=root:root", src, dst).CombinedOutput()
	if err != nil {
		d.t.Fatalf("rsync -n %s %s: %v\n%s", src, dst, err, out)
	}
	return strings.TrimSpace(string(out))
}

// follow carries out one runbook step as an operator would on this harness.
func (d *day2) follow(step review.RolloutStep, members []string) {
	t := d.t
	switch {
	case step.Phase == "etcd: promote the new member":
		for _, n := range step.Nodes {
			for _, c := range step.Commands {
				var last string
				err := poll(haStepBound, time.Second, func() error {
					out, err := d.shell(n, c)
					last = out
					return err
				})
				if err != nil {
					t.Fatalf("on %s: %s: %v\n%s", n, c, err, last)
				}
				t.Logf("on %s: %s\n%s", n, c, last)
			}
		}
	case step.Phase == "etcd: stop the removed member":
		for _, n := range step.Nodes {
			d.stopNode(n, "etcd")
			for _, c := range step.Commands {
				if out, err := d.shell(n, c); err != nil {
					t.Fatalf("on %s: %s: %v\n%s", n, c, err, out)
				}
				t.Logf("on %s: %s", n, c)
			}
		}
	case strings.HasPrefix(step.Phase, "etcd: "):
		for _, n := range step.Nodes {
			for _, c := range step.Commands {
				out, err := d.shell(n, c)
				if err != nil {
					t.Fatalf("on %s: %s: %v\n%s", n, c, err, out)
				}
				t.Logf("on %s: %s\n%s", n, c, out)
			}
		}
	case step.Phase == "new nodes":
		for _, n := range step.Nodes {
			d.h.Deliver(n)
			d.bootJoining(n)
		}
	case step.Phase == "removed nodes":
		for _, n := range step.Nodes {
			d.stopNode(n, "")
			t.Logf("%s removed: its processes stopped (%s)", n, strings.Join(step.Commands, "; "))
		}
	case step.Phase == "cluster":
		t.Logf("cluster step: %s", strings.Join(step.Commands, "; "))
	default: // etcd members, control planes, other nodes: one node after another
		for _, n := range step.Nodes {
			d.h.Deliver(n)
			for _, c := range step.SelfRestart {
				d.restart(n, c)
			}
			if len(step.Before)+len(step.Commands) > 0 {
				t.Logf("%s: host steps not run by this harness (no kubelet): %s", n, strings.Join(append(append([]string{}, step.Before...), step.Commands...), "; "))
			}
		}
	}
}

// bootJoining starts every static pod of a new node as its kubelet would, without
// waiting for one before the next. Its etcd joins as a learner, which etcd reports alive
// but not ready until the runbook's next step promotes it: the test waits for etcd's
// liveness and for the other components' readiness (the API servers reach the voting
// members).
func (d *day2) bootJoining(n string) {
	t, h := d.t, d.h
	entries, err := os.ReadDir(h.NodeFile(n, paths.ManifestsDir))
	if err != nil {
		t.Fatalf("new node %s has no static pod manifests: %v", n, err)
	}
	ps := Pods{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p, err := h.StartStaticPod(n, filepath.Join(paths.ManifestsDir, e.Name()))
		if err != nil {
			t.Fatalf("%s on new node %s: %v", e.Name(), n, err)
		}
		ps[p.Name] = p
	}
	d.procs[n] = ps
	for name, p := range ps {
		wait := p.WaitReady
		if name == "etcd" {
			wait = p.WaitLive
		}
		if err := wait(haReadyBound); err != nil {
			t.Fatalf("%s on new node %s: %v", name, n, err)
		}
	}
	t.Logf("%s provisioned: %d static pods started (etcd live as a learner, the others ready)", n, len(ps))
}

// restart stops a node's static pod and starts it again from its (new) manifest, as the
// kubelet does when the manifest changes, and waits until it is ready.
func (d *day2) restart(node, component string) {
	t := d.t
	if p := d.procs[node][component]; p != nil {
		p.Stop()
	}
	p, err := d.h.StartStaticPod(node, filepath.Join(paths.ManifestsDir, component+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if d.procs[node] == nil {
		d.procs[node] = Pods{}
	}
	d.procs[node][component] = p
	if err := p.WaitReady(haReadyBound); err != nil {
		t.Fatalf("%s on %s after its restart: %v", component, node, err)
	}
	t.Logf("%s on %s restarted from its new manifest, ready", component, node)
}

// stopNode stops a node's static pods (only the one named, when component is set).
func (d *day2) stopNode(node, component string) {
	for name, p := range d.procs[node] {
		if component == "" || name == component {
			p.Stop()
			delete(d.procs[node], name)
		}
	}
}

// shell runs a runbook command on node: in its network namespace, etcdctl the built one,
// node paths the node's files (its rendered rootfs, or its scratch directory for what the
// bundle does not hold, such as etcd's data).
func (d *day2) shell(node, cmd string) (string, error) {
	etcdctl := filepath.Join(d.h.Bin, "etcdctl")
	cmd = strings.ReplaceAll(cmd, "etcdctl ", etcdctl+" ")
	for _, p := range []string{paths.EtcdDataDir, paths.KubernetesDir} {
		cmd = strings.ReplaceAll(cmd, p, d.nodePath(node, p))
	}
	out, err := exec.Command("ip", "netns", "exec", d.h.Net.Node(node).NS, "sh", "-c", cmd).CombinedOutput()
	return string(out), err
}

// nodePath is where the harness keeps a node path: the rendered rootfs when the bundle
// holds it, else the node's scratch directory (where hostPath volumes of files the bundle
// does not hold live).
func (d *day2) nodePath(node, p string) string {
	if _, err := os.Stat(d.h.NodeFile(node, p)); err == nil {
		return d.h.NodeFile(node, p)
	}
	return filepath.Join(d.h.State, "nodes", node, "host", p)
}

// setBackends points the load balancer at the members' API servers.
func (d *day2) setBackends(members []string) {
	var bs []haBackend
	for _, n := range members {
		pod, err := LoadPod(d.h.NodeFile(n, paths.APIServerManifest))
		if err != nil {
			d.t.Fatal(err)
		}
		bs = append(bs, haBackend{node: n, addr: net.JoinHostPort(d.h.Net.Node(n).Addr.String(), apiserverPort(pod))})
	}
	d.lb.SetBackends(bs)
}

// checkEtcd: every member lists exactly members, voting, all healthy.
func (d *day2) checkEtcd(members []string) {
	for _, n := range members {
		if err := haCheckEtcdMember(d.h, d.h.haEtcdProc(n), members, members); err != nil {
			d.t.Fatalf("etcd after the change: %v", err)
		}
	}
	d.t.Logf("etcd: %d voting members, all healthy: %s", len(members), strings.Join(members, ", "))
}

const day2Marker = "day2-marker"

func (d *day2) writeMarker() {
	ctx, cancel := ctxTimeout()
	defer cancel()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: day2Marker, Namespace: "default"}, Data: map[string]string{"written": "before every change"}}
	if _, err := d.admin.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *day2) checkMarker() {
	err := poll(haStepBound, time.Second, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		cm, err := d.admin.CoreV1().ConfigMaps("default").Get(ctx, day2Marker, metav1.GetOptions{})
		if err == nil && cm.Data["written"] != "before every change" {
			err = fmt.Errorf("data %v", cm.Data)
		}
		return err
	})
	if err != nil {
		d.t.Errorf("the ConfigMap written at the start: %v", err)
	}
}

// checkVersions: every API server (its /version), controller manager and scheduler (their
// /metrics' kubernetes_build_info; they serve no /version) reports version.
func (d *day2) checkVersions(nodes []string, version string) {
	tlsCfg, err := haMetricsTLS(d.admin)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, n := range nodes {
		nn := d.h.Net.Node(n)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: nn.DialContext, TLSClientConfig: tlsCfg}}
		for _, c := range []struct{ name, url string }{
			{"kube-apiserver", "https://" + net.JoinHostPort(nn.Addr.String(), "6443") + "/version"},
			{"kube-controller-manager", "https://127.0.0.1:10257/metrics"},
			{"kube-scheduler", "https://127.0.0.1:10259/metrics"},
		} {
			got, err := reportedVersion(client, c.url)
			switch {
			case err != nil:
				d.t.Errorf("%s on %s: %v", c.name, n, err)
			case got != version:
				d.t.Errorf("%s on %s reports %s, want %s", c.name, n, got, version)
			default:
				d.t.Logf("%s on %s reports %s (%s)", c.name, n, got, c.url)
			}
		}
	}
}

// reportedVersion reads a component's version: gitVersion from /version, or the
// git_version label of kubernetes_build_info from /metrics.
func reportedVersion(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, body)
	}
	if strings.HasSuffix(url, "/version") {
		var v struct{ GitVersion string }
		if err := json.Unmarshal(body, &v); err != nil {
			return "", fmt.Errorf("GET %s: %v", url, err)
		}
		return v.GitVersion, nil
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "kubernetes_build_info{") {
			continue
		}
		if _, rest, ok := strings.Cut(line, `git_version="`); ok {
			if v, _, ok := strings.Cut(rest, `"`); ok {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("GET %s: no kubernetes_build_info with a git_version", url)
}
