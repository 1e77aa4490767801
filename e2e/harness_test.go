package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
	"github.com/scratchgen/scratchgen/generator/versions"
)

// Environment knobs (the Makefile's e2e targets set them).
const (
	// envEnable must be "1": the boot test needs root, namespaces and minutes of building.
	envEnable = "SCRATCHGEN_E2E"
	// envVersion is the Kubernetes version to boot: a minor ("1.35") for its tested patch,
	// or a full version ("v1.35.4"). Default: versions.Default.
	envVersion = "SCRATCHGEN_E2E_VERSION"
	// envCache is where binaries are built and cached (default e2e/.cache).
	envCache = "SCRATCHGEN_E2E_CACHE"
	// envKeep=1 keeps the state directory (bundle, scripts, logs, etcd data) after the test.
	envKeep = "SCRATCHGEN_E2E_KEEP"
)

// Harness is one boot test's world: the binaries, a state directory, the network and
// the processes started in it. Everything is undone in t.Cleanup (processes first).
type Harness struct {
	T       *testing.T
	Version string           // Kubernetes version, e.g. v1.36.3
	Profile versions.Profile // its minor's profile (etcd version...)
	Bin     string           // directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler
	State   string           // scratch: spec, bundles/, per-node scratch, scripts, logs
	Net     *Network
	Bundle  string // bundles/<cluster> once rendered
	// Delivered: the nodes run from their own copies of rootfs/ (State/nodes/<n>/rootfs),
	// updated only by Deliver, as machines are by the operator's rsync; a new render does
	// not reach a running node until it is delivered. Unset: nodes read the bundle itself.
	Delivered bool

	procs []*Proc
}

// New skips the test unless SCRATCHGEN_E2E=1, builds (or reuses) the binaries of the
// selected version and creates the network with the given nodes.
func New(t *testing.T, nodes ...string) *Harness {
	t.Helper()
	return NewFamily(t, IPv4, nodes...)
}

// NewFamily is New with a network and test cluster of the IP family setup.
func NewFamily(t *testing.T, family Family, nodes ...string) *Harness {
	t.Helper()
	if os.Getenv(envEnable) != "1" {
		t.Skip("SKIPPED: the boot test runs real etcd and Kubernetes binaries as root in network namespaces; " +
			"run `make e2e` (or set " + envEnable + "=1) to run it")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the boot test needs root (network namespaces, mounts)")
	}
	h := &Harness{T: t}
	h.Version, h.Profile = selectVersion(t)
	h.State = stateDir(t)
	// The profile's etcd release; an image-style tag such as "3.6.8-0" names module v3.6.8.
	etcd, _, _ := strings.Cut(strings.TrimPrefix(h.Profile.Etcd, "v"), "-")
	h.Bin = buildBinaries(t, h.Version, "v"+etcd)
	h.Net = NewNetworkFamily(t, family, nodes...)
	// Registered last, so it runs first: stop processes before the network goes away.
	t.Cleanup(h.stopAll)
	return h
}

func selectVersion(t *testing.T) (string, versions.Profile) {
	t.Helper()
	want := strings.TrimSpace(os.Getenv(envVersion))
	if want == "" {
		want = versions.Default
	}
	full := "v" + strings.TrimPrefix(want, "v")
	minorOnly := strings.Count(full, ".") == 1
	if minorOnly {
		full += ".0"
	}
	v, err := versions.Parse(full)
	if err != nil {
		t.Fatalf("%s=%q: %v", envVersion, want, err)
	}
	p, err := versions.Lookup(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", envVersion, want, err)
	}
	if minorOnly {
		full = p.TestedPatch
	}
	t.Logf("Kubernetes %s (minor %s, tested patch %s), etcd %s", full, p.Minor, p.TestedPatch, p.Etcd)
	return full, p
}

func stateDir(t *testing.T) string {
	t.Helper()
	if os.Getenv(envKeep) != "1" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "scratchgen-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { t.Logf("%s=1: kept %s", envKeep, dir) })
	return dir
}

// buildBinaries builds the components at the tested versions into the cache (minutes
// when cold, instant when cached).
func buildBinaries(t *testing.T, kube, etcd string) string {
	t.Helper()
	cache := os.Getenv(envCache)
	if cache == "" {
		cache = ".cache" // go test runs in the package directory, e2e/
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	start := time.Now()
	dir, err := k8sbin.Build(ctx, k8sbin.Options{
		Kubernetes: kube,
		Etcd:       etcd,
		CacheDir:   cache,
		Components: components,
		Log:        logWriter{t},
	})
	if err != nil {
		t.Fatalf("building binaries (Kubernetes %s, etcd %s): %v\n(a cold build takes minutes: raise make's E2E_TIMEOUT, "+
			"or build first with go run ./e2e/tools/buildbins -k8s %s -etcd %s)", kube, etcd, err, kube, etcd)
	}
	t.Logf("binaries in %s (%s)", dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// stopAll stops every process, newest first, and on failure prints each log's tail.
func (h *Harness) stopAll() {
	for i := len(h.procs) - 1; i >= 0; i-- {
		h.procs[i].Stop()
	}
	if h.T.Failed() {
		for _, p := range h.procs {
			h.T.Logf("--- %s on %s (%s): last %d lines of %s ---\n%s", p.Name, p.Node.Name, exitString(p.exitErr), logTailLines, p.Log, p.LogTail(logTailLines))
		}
	}
	h.procs = nil
}

// NodeSpec is a node of the rendered test cluster; its address comes from the network.
type NodeSpec struct {
	Name  string
	Roles []string
}

var specTemplate = template.Must(template.New("spec").Parse(`apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: {{.Name}}
spec:
  kubernetesVersion: {{.Version}}
  controlPlaneEndpoint: {{printf "%q" .Endpoint}}
  network:
{{.Network}}
  nodes:
{{- range .Nodes}}
  - name: {{.Name}}
    address: {{printf "%q" .Addr}}
    roles: [{{.Roles}}]
{{- end}}
{{- range .Extra}}
{{.}}
{{- end}}
`))

// Render writes a spec for the nodes (addresses from the network; the endpoint is the
// first control-plane node's address) and renders it; see RenderSpec.
func (h *Harness) Render(cluster string, nodes []NodeSpec) string {
	h.T.Helper()
	return h.RenderSpec(cluster, h.Spec(cluster, h.Version, "", nodes))
}

// Spec is the test cluster's spec: the nodes at their network addresses, at version,
// behind endpoint ("": the first control-plane node's address), then the extra lines
// (further node entries, indented as list items of spec.nodes).
func (h *Harness) Spec(cluster, version, endpoint string, nodes []NodeSpec, extra ...string) string {
	h.T.Helper()
	type node struct{ Name, Addr, Roles string }
	data := struct {
		Name, Version, Endpoint string
		Network                 string
		Nodes                   []node
		Extra                   []string
	}{Name: cluster, Version: version, Endpoint: endpoint, Network: h.Net.Family.SpecNetwork(), Extra: extra}
	for _, n := range nodes {
		nn := h.Net.Node(n.Name)
		if data.Endpoint == "" && contains(n.Roles, "control-plane") {
			data.Endpoint = nn.Addr.String()
		}
		data.Nodes = append(data.Nodes, node{n.Name, nn.AddrList(), strings.Join(n.Roles, ", ")})
	}
	var spec bytes.Buffer
	if err := specTemplate.Execute(&spec, data); err != nil {
		h.T.Fatal(err)
	}
	return spec.String()
}

// RenderSpec renders a spec (whose metadata.name is cluster) with the scratchgen CLI,
// exactly as a user would, into the state directory. It returns the bundle directory.
func (h *Harness) RenderSpec(cluster, spec string) string {
	t := h.T
	t.Helper()
	specFile := filepath.Join(h.State, cluster+".yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(h.State, "bundles")
	var stdout, stderr bytes.Buffer
	args := []string{"render", "-f", specFile, "-o", out}
	if code := cli.Main(args, cli.Stdio{In: strings.NewReader(""), Out: &stdout, Err: &stderr}); code != 0 {
		t.Fatalf("scratchgen %s: exit %d\n%s%s\nspec:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String(), spec)
	}
	h.Bundle = filepath.Join(out, cluster)
	if _, err := os.Stat(h.Bundle); err != nil {
		t.Fatalf("scratchgen %s: no bundle %s: %v", strings.Join(args, " "), h.Bundle, err)
	}
	t.Logf("rendered %s from:\n%s", h.Bundle, spec)
	return h.Bundle
}

// NodeFile is the bundle's copy of a node path, e.g. NodeFile("cp-1", "/etc/kubernetes/pki/ca.crt").
func (h *Harness) NodeFile(node, nodePath string) string {
	if h.Delivered {
		return filepath.Join(h.State, "nodes", node, "rootfs", filepath.FromSlash(nodePath))
	}
	return filepath.Join(h.Bundle, "nodes", node, "rootfs", filepath.FromSlash(nodePath))
}

// Deliver copies the node's rootfs/ from the bundle onto the node (its copy, see
// Delivered) with the README's command: rsync -a --chown=root:root rootfs/ <node>:/.
// Files the bundle no longer has stay, as they do on a machine.
func (h *Harness) Deliver(node string) {
	h.T.Helper()
	dst := filepath.Join(h.State, "nodes", node, "rootfs")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		h.T.Fatal(err)
	}
	src := filepath.Join(h.Bundle, "nodes", node, "rootfs") + "/"
	if out, err := exec.Command("rsync", "-a", "--chown=root:root", src, dst+"/").CombinedOutput(); err != nil {
		h.T.Fatalf("delivering %s: rsync -a --chown=root:root %s %s/: %v\n%s", node, src, dst, err, out)
	}
}

// AdminFile is a file of the bundle's admin/ directory.
func (h *Harness) AdminFile(name string) string { return filepath.Join(h.Bundle, "admin", name) }

// logWriter sends whole lines to t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}

// poll calls f every interval until it returns nil or bound passes; it returns f's last error.
func poll(bound, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortStrings(s []string) []string { sort.Strings(s); return s }
