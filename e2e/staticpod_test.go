package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// Proc is a static pod's container running as a process of its node: in the node's
// network namespace, in a private mount namespace where each hostPath volume is bind-mounted
// from the node's rootfs/, with the node's hostname (hostNetwork pods share it).
type Proc struct {
	Name     string // the pod's name, e.g. kube-apiserver
	Node     *NetNode
	Manifest string // the rendered manifest it was started from
	Pod      *corev1.Pod
	Script   string // the wrapper: mounts, then exec of the binary with the manifest's command
	Log      string // stdout and stderr

	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error // valid once done is closed
}

// components whose binaries the harness has: a manifest's command[0] (or, for the hyperkube
// style, command[1] after "/hyperkube") must name one of them.
var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// LoadPod reads a static pod manifest strictly: a field Kubernetes does not know is an error.
func LoadPod(file string) (*corev1.Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("decoding %s as a v1 Pod: %w", file, err)
	}
	if pod.Kind != "Pod" || pod.APIVersion != "v1" {
		return nil, fmt.Errorf("%s: kind %q apiVersion %q, want a v1 Pod", file, pod.Kind, pod.APIVersion)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) > 0 {
		return nil, fmt.Errorf("%s: the harness runs pods of exactly one container and no init containers", file)
	}
	if !pod.Spec.HostNetwork {
		return nil, fmt.Errorf("%s: not hostNetwork; a control-plane static pod must use the node's network", file)
	}
	return &pod, nil
}

// StartStaticPod starts the manifest at node path manifest (e.g. paths.SchedulerManifest)
// from node's rootfs. It returns once the process is started; see WaitReady.
func (h *Harness) StartStaticPod(node, manifest string) (*Proc, error) {
	h.T.Helper()
	nn := h.Net.Node(node)
	file := h.NodeFile(node, manifest)
	pod, err := LoadPod(file)
	if err != nil {
		return nil, err
	}
	p := &Proc{Name: pod.Name, Node: nn, Manifest: file, Pod: pod, done: make(chan struct{})}
	dir := filepath.Join(h.State, "nodes", node)
	p.Script = filepath.Join(dir, "run", p.Name+".sh")
	p.Log = filepath.Join(h.State, "logs", node+"-"+p.Name+".log")
	script, err := h.wrapper(p)
	if err != nil {
		return nil, fmt.Errorf("%s on %s (%s): %w", p.Name, node, file, err)
	}
	for _, d := range []string{filepath.Dir(p.Script), filepath.Dir(p.Log)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(p.Script, []byte(script), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) // appended to if restarted
	if err != nil {
		return nil, err
	}
	ctr := pod.Spec.Containers[0]
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + node}
	for _, e := range ctr.Env {
		if e.ValueFrom != nil {
			logf.Close()
			return nil, fmt.Errorf("%s: env %s uses valueFrom, which the harness does not support", file, e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	p.cmd = exec.Command("ip", "netns", "exec", nn.NS, "unshare", "--mount", "--uts", "--propagation", "private", "sh", p.Script)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// If the test binary dies without cleaning up, its components die with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s on %s: %w", p.Name, node, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	h.procs = append(h.procs, p)
	h.T.Logf("started %s on %s (pid %d): %s, log %s", p.Name, node, p.cmd.Process.Pid, p.Script, p.Log)
	return p, nil
}

// bindMount is one volumeMount satisfied from the node's files.
type bindMount struct {
	volume, hostPath, target string
	typ                      corev1.HostPathType
	src                      string
	dir, fromBundle, ro      bool
}

// wrapper writes the shell script that turns the pod's hostPath volumes into bind mounts
// and execs the component's binary with the manifest's command and args, unchanged.
func (h *Harness) wrapper(p *Proc) (string, error) {
	ctr := p.Pod.Spec.Containers[0]
	argv := append(append([]string{}, ctr.Command...), ctr.Args...)
	bin, args, err := h.binary(argv)
	if err != nil {
		return "", err
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range p.Pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []bindMount
	for _, vm := range ctr.VolumeMounts {
		v, ok := volumes[vm.Name]
		switch {
		case !ok:
			return "", fmt.Errorf("volumeMount %q names no volume of the pod", vm.Name)
		case v.HostPath == nil:
			return "", fmt.Errorf("volume %q is not a hostPath; the harness (like a static pod) supports hostPath only", vm.Name)
		case vm.SubPath != "" || vm.SubPathExpr != "":
			return "", fmt.Errorf("volumeMount %q uses subPath, which the harness does not support", vm.Name)
		}
		m := bindMount{volume: vm.Name, hostPath: v.HostPath.Path, target: vm.MountPath, ro: vm.ReadOnly}
		if v.HostPath.Type != nil {
			m.typ = *v.HostPath.Type
		}
		if m.src, m.dir, m.fromBundle, err = h.hostPathSource(p.Node.Name, m.hostPath, m.typ); err != nil {
			return "", fmt.Errorf("volume %q: %w", vm.Name, err)
		}
		mounts = append(mounts, m)
	}
	// Parents before children, so a mount inside another volume lands on top of it.
	sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].target < mounts[j].target })

	// Mount points that do not exist on this machine are created inside copy-on-write
	// overlays of their top-level directories, so the host's /etc, /var... stay untouched.
	var tops []string
	for _, m := range mounts {
		top := "/" + strings.SplitN(strings.TrimPrefix(filepath.Clean(m.target), "/"), "/", 2)[0]
		if top == "/" {
			return "", fmt.Errorf("volume %q is mounted at /", m.volume)
		}
		if !contains(tops, top) {
			tops = append(tops, top)
		}
	}
	for _, top := range tops {
		for _, own := range []string{h.State, h.Bin, h.Bundle} {
			if own == top || strings.HasPrefix(own, top+"/") {
				return "", fmt.Errorf("the harness would overlay %s, which holds %s; set TMPDIR or move the repository elsewhere", top, own)
			}
		}
	}

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/sh")
	w("# %s of node %s, from %s.", p.Name, p.Node.Name, p.Manifest)
	w("# The boot test runs it as: ip netns exec %s unshare --mount --uts --propagation private sh %s", p.Node.NS, p.Script)
	w("set -eu")
	w("hostname %s", shq(p.Node.Name))
	w("")
	w("# Copy-on-write views of this machine's %s: mount points are created in them, not on the host.", strings.Join(tops, ", "))
	for _, top := range tops {
		ov := filepath.Join(h.State, "nodes", p.Node.Name, "overlay", p.Name, strings.TrimPrefix(top, "/"))
		for _, d := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(ov, d), 0o755); err != nil {
				return "", err
			}
		}
		w("mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s", top, ov, ov, top)
	}
	w("")
	w("# The pod's hostPath volumes.")
	for _, m := range mounts {
		origin := "from the bundle"
		if !m.fromBundle {
			origin = "not in the bundle: per-node scratch " + map[bool]string{true: "directory", false: "file"}[m.dir]
		}
		mode := map[bool]string{true: "read-only", false: "read-write"}[m.ro]
		w("# volume %s: hostPath %s (%s), %s, %s", m.volume, m.hostPath, typeName(m.typ), origin, mode)
		if m.dir {
			w("mkdir -p %s", shq(m.target))
		} else {
			w("mkdir -p %s && touch %s", shq(path.Dir(m.target)), shq(m.target))
		}
		w("mount --bind %s %s", shq(m.src), shq(m.target))
		if m.ro {
			w("mount -o remount,bind,ro %s", shq(m.target))
		}
	}
	w("")
	w("cd /")
	w("# The container's command and args exactly as rendered (%s -> %s).", argv[0], bin)
	b.WriteString("exec " + shq(bin))
	for _, a := range args {
		b.WriteString(" \\\n  " + shq(a))
	}
	b.WriteString("\n")
	return b.String(), nil
}

// binary maps a container command to a built binary: command[0] names the component
// (any directory is dropped), or is /hyperkube and command[1] names it.
func (h *Harness) binary(argv []string) (string, []string, error) {
	if len(argv) == 0 {
		return "", nil, errors.New("the container has no command")
	}
	name, args := path.Base(argv[0]), argv[1:]
	if name == "hyperkube" {
		if len(args) == 0 {
			return "", nil, fmt.Errorf("command %q: /hyperkube without a component name", argv[0])
		}
		name, args = args[0], args[1:]
	}
	if !contains(components, name) {
		return "", nil, fmt.Errorf("command %q: %q is not a component the harness has a binary for (%s)", strings.Join(argv[:min(2, len(argv))], " "), name, strings.Join(components, ", "))
	}
	return filepath.Join(h.Bin, name), args, nil
}

// hostPathSource finds what a node path is on the test machine: the bundle's file when
// the node's rootfs has it, else a per-node scratch directory (or empty file) standing in
// for what the node's OS or the kubelet would provide, e.g. /etc/ssl/certs, /var/lib/etcd.
// It applies the kubelet's hostPath type checks.
func (h *Harness) hostPathSource(node, hostPath string, typ corev1.HostPathType) (src string, dir, fromBundle bool, err error) {
	if !filepath.IsAbs(hostPath) {
		return "", false, false, fmt.Errorf("hostPath %q is not absolute", hostPath)
	}
	wantDir := typ == corev1.HostPathDirectory || typ == corev1.HostPathDirectoryOrCreate
	wantFile := typ == corev1.HostPathFile || typ == corev1.HostPathFileOrCreate
	if !wantDir && !wantFile && typ != corev1.HostPathUnset {
		return "", false, false, fmt.Errorf("hostPath %s: type %s is not supported by the harness", hostPath, typ)
	}
	inBundle := h.NodeFile(node, hostPath)
	if fi, err := os.Stat(inBundle); err == nil {
		if wantDir && !fi.IsDir() || wantFile && fi.IsDir() {
			return "", false, false, fmt.Errorf("hostPath %s has type %s but the bundle's %s is %s", hostPath, typ, inBundle, fi.Mode().Type())
		}
		return inBundle, fi.IsDir(), true, nil
	}
	if typ == corev1.HostPathFile {
		return "", false, false, fmt.Errorf("hostPath %s has type File (must exist on the node) but the node's rootfs has no %s", hostPath, inBundle)
	}
	scratch := filepath.Join(h.State, "nodes", node, "host", hostPath)
	if wantFile {
		if err := os.MkdirAll(filepath.Dir(scratch), 0o755); err != nil {
			return "", false, false, err
		}
		f, err := os.OpenFile(scratch, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return "", false, false, err
		}
		f.Close()
		return scratch, false, false, nil
	}
	return scratch, true, false, os.MkdirAll(scratch, 0o755)
}

func typeName(t corev1.HostPathType) string {
	if t == corev1.HostPathUnset {
		return "no type"
	}
	return string(t)
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, then SIGKILL after a grace period, and waits for the exit.
func (p *Proc) Stop() {
	if done, _ := p.Exited(); done {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Failure is an error about this component: what went wrong, whether the process is
// still running, and the tail of its log.
func (p *Proc) Failure(format string, a ...any) error {
	state := "still running"
	if done, err := p.Exited(); done {
		state = fmt.Sprintf("process exited: %v", exitString(err))
	}
	return fmt.Errorf("%s on %s: %s (%s)\n--- last %d lines of %s ---\n%s", p.Name, p.Node.Name,
		fmt.Sprintf(format, a...), state, logTailLines, p.Log, p.LogTail(logTailLines))
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

const logTailLines = 60

// LogTail returns the last n lines of the component's log.
func (p *Proc) LogTail(n int) string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogContains reports whether the component's log contains s.
func (p *Proc) LogContains(s string) bool {
	data, _ := os.ReadFile(p.Log)
	return bytes.Contains(data, []byte(s))
}

// Probe is one of a container's probes, as the kubelet would run it.
type Probe struct {
	Kind string // readiness, startup or liveness
	URL  string
}

// Probes returns the container's HTTP probes: readiness, startup, liveness (those present).
func (p *Proc) Probes() ([]Probe, error) {
	ctr := p.Pod.Spec.Containers[0]
	var out []Probe
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"readiness", ctr.ReadinessProbe}, {"startup", ctr.StartupProbe}, {"liveness", ctr.LivenessProbe}} {
		if pr.probe == nil {
			continue
		}
		if pr.probe.HTTPGet == nil {
			return nil, fmt.Errorf("%s probe: only httpGet probes are supported by the harness", pr.kind)
		}
		url, err := p.probeURL(pr.probe.HTTPGet)
		if err != nil {
			return nil, fmt.Errorf("%s probe: %w", pr.kind, err)
		}
		out = append(out, Probe{pr.kind, url})
	}
	return out, nil
}

// RunProbe runs a probe once, from inside the node's network namespace and, like the
// kubelet, without verifying the serving certificate.
func (p *Proc) RunProbe(pr Probe) error {
	return get(p.Node.HTTPClient(insecureTLS()), pr.URL)
}

// WaitReady runs the manifest's readiness probe (else its startup, else its liveness
// probe) until it succeeds. It fails as soon as the process exits, or when the bound
// passes; the error names the component and carries its log tail.
func (p *Proc) WaitReady(bound time.Duration) error {
	probes, err := p.Probes()
	if err != nil {
		return p.Failure("%v", err)
	}
	if len(probes) == 0 {
		return p.Failure("the manifest has no probe to wait on")
	}
	pr := probes[0]
	return p.Poll(bound, pr.Kind+" probe GET "+pr.URL, func() error { return p.RunProbe(pr) })
}

// WaitLive runs the manifest's liveness probe until it succeeds (bounded as WaitReady):
// for a component that is alive but, by design, not ready yet, such as an etcd learner
// (etcd's /readyz fails for a learner until it is promoted).
func (p *Proc) WaitLive(bound time.Duration) error {
	probes, err := p.Probes()
	if err != nil {
		return p.Failure("%v", err)
	}
	for _, pr := range probes {
		if pr.Kind == "liveness" {
			return p.Poll(bound, pr.Kind+" probe GET "+pr.URL, func() error { return p.RunProbe(pr) })
		}
	}
	return p.Failure("the manifest has no liveness probe to wait on")
}

// Poll calls f until it returns nil. It gives up at once when the process exits or f
// returns a Permanent error, and after bound (a failure bound, not a timing assertion).
// The error names the component, says what was awaited and carries the log tail.
func (p *Proc) Poll(bound time.Duration, what string, f func() error) error {
	return pollWatched(p, bound, what, f, func() {
		select {
		case <-p.done:
		case <-time.After(500 * time.Millisecond):
		}
	})
}

// pollWatched calls f until it returns nil, a permanent error, w ends, or bound passes,
// sleeping with sleep between calls; a failure names w and carries its log.
func pollWatched(w watched, bound time.Duration, what string, f func() error, sleep func()) error {
	deadline := time.Now().Add(bound)
	for {
		if done, err := w.Exited(); done {
			return w.Failure("ended while waiting for: %s (%v)", what, exitString(err))
		}
		err := f()
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return w.Failure("%s: %v", what, perm.error)
		}
		if time.Now().After(deadline) {
			return w.Failure("%s: still failing after %s: %v", what, bound, err)
		}
		sleep()
	}
}

// permanent marks an error that waiting cannot fix (e.g. a certificate that does not verify).
type permanent struct{ error }

func (p *Proc) probeURL(g *corev1.HTTPGetAction) (string, error) {
	host := g.Host
	if host == "" {
		host = p.Node.Addr.String() // a hostNetwork pod's IP is the node's
	}
	port := g.Port.IntValue()
	if g.Port.StrVal != "" {
		port = 0
		for _, cp := range p.Pod.Spec.Containers[0].Ports {
			if cp.Name == g.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
		if port == 0 {
			return "", fmt.Errorf("port %q names no container port", g.Port.StrVal)
		}
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path, nil
}

// HTTPClient returns a client whose connections start inside the node's network namespace.
func (nn *NetNode) HTTPClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: nn.DialContext, TLSClientConfig: tlsConfig, DisableKeepAlives: true},
	}
}

// get succeeds on a 2xx or 3xx answer, as a kubelet HTTP probe does.
func get(client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// Pods are a node's running static pods by pod name (kube-apiserver, etcd...).
type Pods map[string]*Proc

// Boot starts the static pods of the given nodes as their kubelets would run every file
// of rootfs/etc/kubernetes/manifests: the etcd members first, all of them, then waits until
// each is ready (a multi-member etcd needs its quorum before any member is ready); then
// every other manifest of every node, without waiting: callers check what they need.
func (h *Harness) Boot(nodes ...string) map[string]Pods {
	t := h.T
	t.Helper()
	out := map[string]Pods{}
	var etcds []*Proc
	for _, n := range nodes {
		out[n] = Pods{}
		if _, err := os.Stat(h.NodeFile(n, paths.EtcdManifest)); err != nil {
			continue
		}
		p, err := h.StartStaticPod(n, paths.EtcdManifest)
		if err != nil {
			t.Fatalf("etcd on %s: %v", n, err)
		}
		out[n][p.Name] = p
		etcds = append(etcds, p)
	}
	for _, p := range etcds {
		if err := p.WaitReady(60 * time.Second); err != nil {
			t.Fatalf("etcd is not ready, nothing else can start: %v", err)
		}
	}
	for _, n := range nodes {
		entries, err := os.ReadDir(h.NodeFile(n, paths.ManifestsDir))
		if err != nil {
			t.Fatalf("node %s has no static pod manifests: %v", n, err)
		}
		for _, e := range entries { // sorted by name
			manifest := path.Join(paths.ManifestsDir, e.Name())
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") || manifest == paths.EtcdManifest {
				continue
			}
			p, err := h.StartStaticPod(n, manifest)
			if err != nil {
				t.Fatalf("%s on %s: %v", manifest, n, err)
			}
			out[n][p.Name] = p
		}
	}
	return out
}

// insecureTLS is for the self-signed serving certificates the controller manager and
// scheduler generate at start (nothing rendered can verify them), and for probes.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// TestCommandMapping runs without root: how a container command picks the binary.
func TestCommandMapping(t *testing.T) {
	h := &Harness{Bin: "/bin-dir"}
	for _, c := range []struct {
		argv     []string
		bin      string
		args     []string
		wantFail bool
	}{
		{argv: []string{"kube-apiserver", "--a=1"}, bin: "/bin-dir/kube-apiserver", args: []string{"--a=1"}},
		{argv: []string{"/usr/local/bin/etcd", "--name=x"}, bin: "/bin-dir/etcd", args: []string{"--name=x"}},
		{argv: []string{"/hyperkube", "kube-scheduler", "--b=2"}, bin: "/bin-dir/kube-scheduler", args: []string{"--b=2"}},
		{argv: []string{"/hyperkube"}, wantFail: true},
		{argv: []string{"/hyperkube", "scheduler"}, wantFail: true}, // short names are gone since 1.17
		{argv: []string{"kubelet"}, wantFail: true},
		{argv: nil, wantFail: true},
	} {
		bin, args, err := h.binary(c.argv)
		if c.wantFail {
			if err == nil {
				t.Errorf("%q: mapped to %s, want an error", c.argv, bin)
			}
			continue
		}
		if err != nil || bin != c.bin || strings.Join(args, " ") != strings.Join(c.args, " ") {
			t.Errorf("%q: got %s %q (%v), want %s %q", c.argv, bin, args, err, c.bin, c.args)
		}
	}
}
