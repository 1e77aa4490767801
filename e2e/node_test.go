package e2e

// The cluster checks of the machine test (machines_test.go), and its preparation: the
// binaries, the images and the bundle rendered with them. (The "nb" prefix is from the node
// boot test, which ran the same checks with the test process playing the init system; the
// machine test replaced it.)
//
// # Images and render
//
// The test builds single-layer OCI images (linux/<this machine's arch>) from the built
// binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
// CoreDNS (github.com/coredns/coredns at the profile's version, built with its own
// go.mod), a pause program and a workload program (an HTTP server that also makes the
// checks' GETs and DNS lookups from inside its pod). Layers are cached in e2e/.cache/images
// by binary hash. It pushes them to an in-process registry on 127.0.0.1 under their real
// repository names (kube-apiserver:v1.36.3, ...): the spec's images.registry is that
// registry. Then it renders as a user would: `scratchgen images pin`, `images pull
// --cache`, `render --with-images --image-cache --require-pinned`. Nodes never reach the
// registry: every image a pod runs comes from the node's bundle (the workload image, which
// no bundle carries, is imported on the workers). SCRATCHGEN_E2E_COREDNS=0 skips building
// CoreDNS (and check 6).
//
// # Checks
//
// One subtest each, with the bundle's credentials and full TLS verification: (1) the
// control plane runs as static pods, its mirror pods are visible through the API, Running
// and Ready, from the pinned image digests; (2) every node registered with its own kubelet
// credentials and is Ready, with its rendered address and taints; (3) a Deployment of the
// workload (pinned digest) runs one pod on each worker, each pod's IP lies in its node's
// rendered pod range, and each worker's pod reaches the other's across nodes (routed
// mode); (4) pods/log and `kubectl exec` through the API server (its kubelet client
// certificate against the kubelet's webhook authn/authz), and every kubelet's serving
// certificate verifies against the cluster CA for its address; (5) a Service's ClusterIP
// reaches both pods through kube-proxy, from a pod and from a node; (6) CoreDNS from
// admin/addons resolves the Service's name from a pod.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/render"
)

// Failure bounds of the machine test (not timing assertions).
const (
	nbBootBound = 5 * time.Minute // static pods up, API server ready
	nbStepBound = 3 * time.Minute // nodes Ready, pods running, rules programmed
)

// nbCluster is the rendered cluster's name.
const nbCluster = "e2e-node"

// watched is what a check polls with and blames when it fails: a process a boot test
// started, or a unit systemd runs in a booted machine (the machine test).
type watched interface {
	// Poll calls f until it returns nil, a permanent error, or bound passes; the error
	// names the service and carries its log.
	Poll(bound time.Duration, what string, f func() error) error
	// Failure is an error about the service with its log.
	Failure(format string, a ...any) error
	// Exited reports whether the service has ended for good.
	Exited() (bool, error)
}

var _ watched = (*Proc)(nil)

// nbPrepared is what the machine test boots: the binaries, the images in the
// test's registry and the bundle rendered with them.
type nbPrepared struct {
	Bins  string // kubelet, kube-proxy, kubectl, ... of the test's version
	NoDNS string // why CoreDNS was not built ("" when it was)
	// WorkloadRef is the workload image (tag@digest); WorkloadArchive its OCI archive,
	// which no bundle carries: the tests import it on the workers.
	WorkloadRef, WorkloadArchive string
	Ctx                          context.Context
	Built                        time.Time // when binaries and images were ready
	// RenderArgs re-render the bundle as it was rendered (spec, output, images);
	// DiffArgs review a change of it with the same options.
	RenderArgs, DiffArgs []string
	// SpecFile is the spec; its lock and secret are beside it.
	SpecFile string
}

// nbPrepare builds the binaries and images, pushes the images to an in-process registry,
// serves kubelet and kube-proxy (and a CNI plugins release archive made of the files in
// cniDir) from an in-process mirror under the official URL layout, and renders the test's
// spec as a user would: images pin, images pull, binaries pin, binaries pull, render
// --with-images --with-binaries --require-pinned. h.Bundle is the rendered bundle afterwards.
func nbPrepare(t *testing.T, h *Harness, start time.Time, cniDir string) *nbPrepared {
	t.Helper()
	// 1. Binaries and images.
	bins := nbBuildBinaries(t, h)
	cache := nbCacheDir(t)
	pause, workload := nbBuildTools(t, cache)
	coredns, noDNS := nbBuildCoreDNS(t, cache, h.Profile.CoreDNS)
	if noDNS != "" {
		t.Logf("CoreDNS is not built (%s): its image is the pause program, and check 6 is skipped", noDNS)
	}
	reg := nbStartRegistry(t)
	mirror := nbStartMirror(t, h, bins, cniDir)
	spec := nbSpec(h, reg.Host) + mirror.spec
	resolved, err := render.Resolve([]byte(spec), nil)
	if err != nil {
		t.Fatalf("resolving the test's spec: %v\n%s", err, spec)
	}
	c := resolved.Cluster
	ims, err := nbClusterImages(c, bins, pause, coredns)
	if err != nil {
		t.Fatal(err)
	}
	wref := reg.Host + "/scratchgen-e2e/workload:v1"
	ims = append(ims, nbImage{ref: wref, bin: workload, path: "/workload", entrypoint: []string{"/workload"}})
	ctx := nbContext(t)
	for _, im := range ims {
		img, err := nbBuildImage(cache, im)
		if err != nil {
			t.Fatalf("image %s: %v", im.ref, err)
		}
		d, err := reg.Push(ctx, im.ref, img)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pushed %s@%s (%s at %s)", im.ref, d, filepath.Base(im.bin), im.path)
	}
	built := time.Now()
	t.Logf("binaries and images ready after %s", built.Sub(start).Round(time.Second))

	// 2. Pin, pull, render with the images.
	specFile := filepath.Join(h.State, nbCluster+".yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	imageCache := filepath.Join(h.State, "image-cache")
	nbCLI(t, "images", "pin", "-f", specFile, "--insecure")
	nbCLI(t, "images", "pull", "-f", specFile, "--cache", imageCache, "--insecure")
	nbCLI(t, "binaries", "pin", "-f", specFile)
	nbCLI(t, "binaries", "pull", "-f", specFile, "--cache", imageCache)
	out := filepath.Join(h.State, "bundles")
	renderArgs := []string{"render", "-f", specFile, "-o", out, "--with-images", "--with-binaries", "--image-cache", imageCache, "--require-pinned"}
	nbCLI(t, renderArgs...)
	h.Bundle = filepath.Join(out, nbCluster)
	workloadRef, workloadArchive := nbWorkloadArchive(t, ctx, h, wref, imageCache)

	return &nbPrepared{Bins: bins, NoDNS: noDNS, WorkloadRef: workloadRef, WorkloadArchive: workloadArchive, Ctx: ctx, Built: built,
		RenderArgs: renderArgs, SpecFile: specFile,
		DiffArgs: []string{"diff", "-f", specFile, "-o", out, "--with-images", "--with-binaries", "--image-cache", imageCache}}
}

// nbMirror is the test's release mirror.
type nbMirror struct {
	spec string // the spec's binaries section
}

// nbCNIPlugins are the plugins the routed network runs (bridge, host-local, portmap; the
// kubelet's loopback).
var nbCNIPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// nbStartMirror serves the built kubelet and kube-proxy at the official layout
// (/release/<version>/bin/linux/amd64/<name>) and a .tgz of the CNI plugins in cniDir (as
// the plugins' releases are packed: ./<plugin>), on an in-process HTTP server.
func nbStartMirror(t *testing.T, h *Harness, bins, cniDir string) *nbMirror {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{"kubelet", "kube-proxy"} {
		data, err := os.ReadFile(filepath.Join(bins, name))
		if err != nil {
			t.Fatal(err)
		}
		files["/release/"+h.Version+"/bin/linux/amd64/"+name] = data
	}
	plugins := map[string][]byte{}
	var members []string
	for _, p := range nbCNIPlugins {
		data, err := os.ReadFile(filepath.Join(cniDir, p))
		if err != nil {
			t.Fatalf("the CNI plugins archive: %v (Debian's containernetworking-plugins in the machine image)", err)
		}
		plugins["./"+p] = data
		members = append(members, "./"+p)
	}
	files["/cni/cni-plugins-linux-amd64.tgz"] = releaseArchive(t, plugins, members)
	srv := startMirror(t, files)
	var b strings.Builder
	fmt.Fprintf(&b, "  binaries:\n    url: %s/release/{version}/bin/linux/{arch}/{name}\n    extra:\n    - name: cni-plugins\n      url: %s/cni/cni-plugins-linux-{arch}.tgz\n      extract:\n", srv.URL, srv.URL)
	for _, p := range nbCNIPlugins {
		fmt.Fprintf(&b, "        ./%s: %s/%s\n", p, paths.CNIBinDir, p)
	}
	t.Logf("release mirror %s: kubelet and kube-proxy %s, CNI plugins %s from %s", srv.URL, h.Version, strings.Join(nbCNIPlugins, ", "), cniDir)
	return &nbMirror{spec: b.String()}
}

// nbExited returns the failure of the first service that has exited (with its log tail).
func nbExited(services []watched) error {
	for _, p := range services {
		if done, _ := p.Exited(); done {
			return p.Failure("exited")
		}
	}
	return nil
}

// nbPoll calls f every interval until it returns nil, returns a permanent error, a
// service exits, or bound passes; it returns the last error.
func nbPoll(bound, interval time.Duration, services []watched, f func() error) error {
	deadline := time.Now().Add(bound)
	for {
		if err := nbExited(services); err != nil {
			return err
		}
		err := f()
		var perm permanent
		if err == nil || errors.As(err, &perm) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// nbSpec is the test's cluster: the boot test's nodes at their namespaces' addresses,
// images from the test's registry.
func nbSpec(h *Harness, registry string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  controlPlaneEndpoint: %q
  network:
%s
  images:
    registry: %s
  nodes:
`, nbCluster, h.Version, h.Net.Node("cp-1").Addr.String(), h.Net.Family.SpecNetwork(), registry)
	for _, n := range bootNodes {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    roles: [%s]\n", n.Name, h.Net.Node(n.Name).AddrList(), strings.Join(n.Roles, ", "))
	}
	return b.String()
}

// nbCLI runs scratchgen as a user would and fails the test on a non-zero exit.
func nbCLI(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := cli.Main(args, cli.Stdio{In: strings.NewReader(""), Out: &stdout, Err: &stderr}); code != 0 {
		t.Fatalf("scratchgen %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	t.Logf("scratchgen %s:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

// nbWorkloadArchive pins, pulls and archives the workload image with scratchgen's image
// library, as for a bundle; it returns the reference to run (tag@digest) and the archive.
func nbWorkloadArchive(t *testing.T, ctx context.Context, h *Harness, ref, cache string) (string, string) {
	t.Helper()
	pins, err := images.Pin(ctx, []string{ref}, images.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := images.Pull(ctx, pins, cache, images.WithInsecure()); err != nil {
		t.Fatal(err)
	}
	data, err := images.Archive(cache, ref, pins[ref])
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(h.State, "images", "workload.tar")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return ref + "@" + pins[ref].Digest, file
}

// nbCheckMirrorPods: every manifest of cp-1 runs, its mirror pod is Running and Ready,
// and the container runs the manifest's image, whose digest is the pinned one.
func nbCheckMirrorPods(h *Harness, kubelet watched, c *Client) error {
	dir := h.NodeFile("cp-1", paths.ManifestsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		pod, err := LoadPod(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		ref := pod.Spec.Containers[0].Image
		_, digest, ok := strings.Cut(ref, "@")
		if !ok {
			return fmt.Errorf("%s: image %s is not pinned by digest", e.Name(), ref)
		}
		mirror := pod.Name + "-cp-1"
		names = append(names, mirror)
		err = kubelet.Poll(nbStepBound, "mirror pod "+pod.Namespace+"/"+mirror+" Running and Ready", func() error {
			ctx, cancel := ctxTimeout()
			defer cancel()
			p, err := c.CoreV1().Pods(pod.Namespace).Get(ctx, mirror, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if _, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; !ok {
				return permanent{fmt.Errorf("pod %s has no %s annotation: not a mirror pod", mirror, corev1.MirrorPodAnnotationKey)}
			}
			if p.Status.Phase != corev1.PodRunning || !nbPodReady(p) {
				return fmt.Errorf("phase %s, ready %v: %s", p.Status.Phase, nbPodReady(p), nbContainerStates(p))
			}
			st := p.Status.ContainerStatuses[0]
			if !strings.HasSuffix(st.ImageID, "@"+digest) {
				return permanent{fmt.Errorf("container %s runs image %s (%s), want the pinned digest %s of %s", st.Name, st.Image, st.ImageID, digest, e.Name())}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	list, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=cp-1"})
	if err != nil {
		return err
	}
	var got []string
	for _, p := range list.Items {
		var ids []string
		for _, st := range p.Status.ContainerStatuses {
			ids = append(ids, st.ImageID)
		}
		got = append(got, fmt.Sprintf("%s (%s, %s)", p.Name, p.Status.Phase, strings.Join(ids, " ")))
	}
	h.T.Logf("mirror pods of cp-1's static pods %v; kube-system pods on cp-1: %s", names, strings.Join(got, ", "))
	return nil
}

func nbPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nbContainerStates(p *corev1.Pod) string {
	var s []string
	for _, c := range p.Status.ContainerStatuses {
		st := "?"
		switch {
		case c.State.Running != nil:
			st = "running"
		case c.State.Waiting != nil:
			st = "waiting: " + c.State.Waiting.Reason + " " + c.State.Waiting.Message
		case c.State.Terminated != nil:
			st = fmt.Sprintf("terminated: %s exit %d %s", c.State.Terminated.Reason, c.State.Terminated.ExitCode, c.State.Terminated.Message)
		}
		s = append(s, fmt.Sprintf("%s %s (restarts %d)", c.Name, st, c.RestartCount))
	}
	if len(s) == 0 {
		return "no container status; conditions " + fmt.Sprint(p.Status.Conditions)
	}
	return strings.Join(s, "; ")
}

// nbCheckNodes: every kubelet kubeconfig is its node's identity, and every Node is Ready
// with the kubelet's version, the rendered address and, for cp-1, the rendered taint.
func nbCheckNodes(h *Harness, kubelets map[string]watched, c *Client) error {
	for _, n := range bootNodes {
		kc, err := KubeconfigClient(h.NodeFile(n.Name, paths.KubeletKubeconfig))
		if err != nil {
			return err
		}
		if err := kc.ExpectUser("system:node:"+n.Name, "system:nodes"); err != nil {
			return kubelets[n.Name].Failure("%v", err)
		}
		addr := h.Net.Node(n.Name).AddrList()
		err = kubelets[n.Name].Poll(nbStepBound, "Node "+n.Name+" Ready", func() error {
			ctx, cancel := ctxTimeout()
			defer cancel()
			node, err := c.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready := false
			var conds []string
			for _, cd := range node.Status.Conditions {
				conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", cd.Type, cd.Status, cd.Reason, cd.Message))
				if cd.Type == corev1.NodeReady && cd.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if !ready {
				return fmt.Errorf("not Ready: %s", strings.Join(conds, "; "))
			}
			if v := node.Status.NodeInfo.KubeletVersion; v != h.Version {
				return permanent{fmt.Errorf("kubelet version %s, want %s", v, h.Version)}
			}
			var internal []string
			for _, a := range node.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					internal = append(internal, a.Address)
				}
			}
			if strings.Join(internal, ",") != addr {
				return permanent{fmt.Errorf("InternalIP %v, want the rendered --node-ip %s (one per family, in order)", internal, addr)}
			}
			tainted := false
			for _, tn := range node.Spec.Taints {
				tainted = tainted || tn.Key == "node-role.kubernetes.io/control-plane" && tn.Effect == corev1.TaintEffectNoSchedule
			}
			if want := contains(n.Roles, "control-plane"); tainted != want {
				return permanent{fmt.Errorf("control-plane NoSchedule taint %v, want %v (registerWithTaints)", tainted, want)}
			}
			h.T.Logf("Node %s Ready: %s, %s, %s, InternalIPs %s, podCIDR %q", n.Name, node.Status.NodeInfo.KubeletVersion,
				node.Status.NodeInfo.ContainerRuntimeVersion, node.Status.NodeInfo.KernelVersion, addr, node.Spec.PodCIDR)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// nbWeb is the workload of checks 3 to 6: a pod per worker behind a Service.
type nbWeb struct {
	Pods      map[string]*corev1.Pod // by node
	ClusterIP string
}

// nbPodRanges reads a node's pod ranges (one per family, primary first) from its rendered
// CNI config, and checks that the kubelet config renders the same ones.
func nbPodRanges(h *Harness, node string) ([]netip.Prefix, error) {
	file := h.NodeFile(node, paths.CNIConfDir+"/10-cbr0.conflist")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var conf struct {
		Plugins []struct {
			Type string
			IPAM struct {
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var prs []netip.Prefix
	for _, p := range conf.Plugins {
		for _, rs := range p.IPAM.Ranges {
			for _, r := range rs {
				pr, err := netip.ParsePrefix(r.Subnet)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
				prs = append(prs, pr)
			}
		}
	}
	if want := len(h.Net.Subnets); len(prs) != want {
		return nil, fmt.Errorf("%s: %d IPAM subnets %v, want %d (one per family of the %s cluster)", file, len(prs), prs, want, h.Net.Family)
	}
	for i, pr := range prs {
		if pr.Addr().Is6() != h.Net.Subnets[i].Addr().Is6() {
			return nil, fmt.Errorf("%s: IPAM subnets %v are not of the cluster's families in order (%s)", file, prs, h.Net.Family)
		}
	}
	kc, err := os.ReadFile(h.NodeFile(node, paths.KubeletConfig))
	if err != nil {
		return prs, err
	}
	var cfg struct {
		PodCIDR string `json:"podCIDR"`
	}
	if err := yaml.Unmarshal(kc, &cfg); err != nil {
		return prs, err
	}
	var join []string
	for _, p := range prs {
		join = append(join, p.String())
	}
	if cfg.PodCIDR != "" && cfg.PodCIDR != strings.Join(join, ",") {
		return prs, fmt.Errorf("%s: podCIDR %s, but the node's CNI config %s assigns %s", paths.KubeletConfig, cfg.PodCIDR, file, strings.Join(join, ","))
	}
	return prs, nil
}

// nbPodGet asks the workload in a pod to GET u, through a connection started in node's
// network namespace (nodes route to every pod range).
func nbPodGet(m *NetNode, pod *corev1.Pod, u string) (string, error) {
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: m.DialContext, DisableKeepAlives: true}}
	target := "http://" + net.JoinHostPort(pod.Status.PodIP, "8080") + u
	resp, err := client.Get(target)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s from %s: HTTP %d: %s", target, m.Name, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// nbCheckDeployment creates the workload (one pod per worker) and its Service, and checks
// pod addresses and pod-to-pod traffic across nodes.
func nbCheckDeployment(h *Harness, ms map[string]*NetNode, kubelets map[string]watched, c *Client, image string) (*nbWeb, error) {
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	grace := int64(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "web", Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Args: []string{"serve"},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, PeriodSeconds: 2},
					}},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: "kubernetes.io/hostname",
						}},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := c.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("admin (%s) creating Deployment web: %w", c.Source, err)
	}
	s, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("admin (%s) creating Service web: %w", c.Source, err)
	}
	web := &nbWeb{ClusterIP: s.Spec.ClusterIP}
	workers := []string{"worker-1", "worker-2"}
	err = kubelets["worker-1"].Poll(nbStepBound, "one Ready pod of Deployment web on each worker", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		web.Pods = map[string]*corev1.Pod{}
		var states []string
		for i := range list.Items {
			p := &list.Items[i]
			states = append(states, fmt.Sprintf("%s on %q: %s ready=%v %s", p.Name, p.Spec.NodeName, p.Status.Phase, nbPodReady(p), nbContainerStates(p)))
			if p.Spec.NodeName == "cp-1" {
				return permanent{fmt.Errorf("pod %s scheduled on cp-1 despite its control-plane taint", p.Name)}
			}
			if p.Status.Phase == corev1.PodRunning && nbPodReady(p) && p.Status.PodIP != "" {
				web.Pods[p.Spec.NodeName] = p
			}
		}
		for _, w := range workers {
			if web.Pods[w] == nil {
				return fmt.Errorf("no Ready pod on %s yet: %s", w, strings.Join(states, "; "))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, w := range workers {
		p := web.Pods[w]
		prs, err := nbPodRanges(h, w)
		if err != nil {
			return nil, err
		}
		var ips []string
		for _, pip := range p.Status.PodIPs {
			ips = append(ips, pip.IP)
		}
		if len(ips) != len(prs) {
			return nil, fmt.Errorf("pod %s on %s has IPs %v, want one in each of the node's rendered pod ranges %v", p.Name, w, ips, prs)
		}
		for i, s := range ips {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			if !prs[i].Contains(ip) {
				return nil, fmt.Errorf("pod %s on %s has IPs %v: %s is outside the node's rendered pod range %s", p.Name, w, ips, ip, prs[i])
			}
		}
		if !strings.HasSuffix(p.Status.ContainerStatuses[0].ImageID, "@"+image[strings.Index(image, "@")+1:]) {
			return nil, fmt.Errorf("pod %s runs %s, want %s", p.Name, p.Status.ContainerStatuses[0].ImageID, image)
		}
		h.T.Logf("pod %s on %s: IPs %v in %s's ranges %v", p.Name, w, ips, w, prs)
	}
	// Across nodes, to every address of the other pod: each family's routes.
	for _, d := range [][2]string{{"worker-1", "worker-2"}, {"worker-2", "worker-1"}} {
		from, to := web.Pods[d[0]], web.Pods[d[1]]
		for _, pip := range to.Status.PodIPs {
			u := "/get?url=" + url.QueryEscape("http://"+net.JoinHostPort(pip.IP, "8080")+"/")
			var got string
			err := poll(30*time.Second, time.Second, func() error {
				var err error
				got, err = nbPodGet(ms[d[0]], from, u)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("pod %s on %s GET pod %s on %s (%s): %v (routes: the bundles' routes.sh)", from.Name, d[0], to.Name, d[1], pip.IP, err)
			}
			if got != to.Name {
				return nil, fmt.Errorf("pod %s on %s GET %s: answered %q, want %q", from.Name, d[0], pip.IP, got, to.Name)
			}
			h.T.Logf("pod %s on %s reached pod %s on %s at %s", from.Name, d[0], to.Name, d[1], pip.IP)
		}
	}
	return web, nil
}

// nbCheckLogsExec: pods/log and pods/exec through the API server, which calls the
// kubelet with its kubelet client certificate; the kubelet authenticates it (x509) and
// authorizes it (webhook).
func nbCheckLogsExec(h *Harness, bins string, c *Client, web *nbWeb) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	for _, w := range []string{"worker-1", "worker-2"} {
		p := web.Pods[w]
		logs, err := c.CoreV1().Pods("default").GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("pods/log of %s on %s with %s: %w", p.Name, w, c.Source, err)
		}
		if want := "workload " + p.Name + " listening on :8080"; !strings.Contains(string(logs), want) {
			return fmt.Errorf("pods/log of %s on %s: no %q in:\n%s", p.Name, w, want, logs)
		}
		h.T.Logf("pods/log of %s on %s:\n%s", p.Name, w, nbTail(string(logs), 4))
	}
	kubectl := func(args ...string) (string, error) {
		args = append([]string{"--kubeconfig", h.AdminFile(paths.AdminKubeconfig)}, args...)
		cmd := exec.Command(filepath.Join(bins, "kubectl"), args...)
		cmd.Env = []string{"HOME=" + h.State, "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	p := web.Pods["worker-1"]
	out, err := kubectl("exec", "-n", "default", p.Name, "--", "/workload", "get", "http://127.0.0.1:8080/")
	if err != nil || out != p.Name {
		return fmt.Errorf("kubectl exec %s -- /workload get http://127.0.0.1:8080/: %q (%v), want %q", p.Name, out, err, p.Name)
	}
	h.T.Logf("kubectl exec %s -- /workload get http://127.0.0.1:8080/: %s", p.Name, out)
	out, err = kubectl("exec", "-n", "default", p.Name, "--", "/workload", "get", "http://127.0.0.1:1/")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "connection refused") {
		return fmt.Errorf("kubectl exec of a failing command: %q (%v), want exit code 1 and the command's error", out, err)
	}
	out, err = kubectl("logs", "-n", "default", web.Pods["worker-2"].Name, "--tail=1")
	if err != nil {
		return fmt.Errorf("kubectl logs: %v: %s", err, out)
	}
	return nil
}

// nbCheckKubeletServing connects to every kubelet's port 10250 at its node address as the
// API server does, but verifying the serving certificate against the cluster CA (the
// rendered kube-apiserver has no --kubelet-certificate-authority, so it does not).
func nbCheckKubeletServing(h *Harness) error {
	tlsCfg, err := mutualTLS(h.NodeFile("cp-1", paths.APIServerKubeletClientCert), h.NodeFile("cp-1", paths.APIServerKubeletClientKey), h.NodeFile("cp-1", paths.CACert))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	for _, n := range bootNodes {
		u := fmt.Sprintf("https://%s/healthz", net.JoinHostPort(h.Net.Node(n.Name).Addr.String(), fmt.Sprint(paths.KubeletPort)))
		if err := get(client, u); err != nil {
			return fmt.Errorf("kubelet of %s: GET %s with apiserver-kubelet-client, verifying the serving certificate against the cluster CA: %v", n.Name, u, err)
		}
	}
	h.T.Logf("every kubelet's serving certificate verifies against the cluster CA for its address")
	return nil
}

// nbCheckService: the Service's ClusterIP answers from both pods, asked from a pod on
// worker-1 (kube-proxy's PREROUTING rules) and from worker-2 itself (OUTPUT rules).
func nbCheckService(h *Harness, ms map[string]*NetNode, services []watched, web *nbWeb) error {
	return nbCheckClusterIP(h, ms, services, web, "web", web.ClusterIP)
}

// nbCheckClusterIP is nbCheckService for Service name at clusterIP.
func nbCheckClusterIP(h *Harness, ms map[string]*NetNode, services []watched, web *nbWeb, name, clusterIP string) error {
	want := map[string]bool{web.Pods["worker-1"].Name: true, web.Pods["worker-2"].Name: true}
	svcURL := "http://" + net.JoinHostPort(clusterIP, "80") + "/"
	for _, via := range []struct {
		what string
		get  func() (string, error)
	}{
		{"pod " + web.Pods["worker-1"].Name + " on worker-1", func() (string, error) {
			return nbPodGet(ms["worker-1"], web.Pods["worker-1"], "/get?url="+url.QueryEscape(svcURL))
		}},
		{"node worker-2", func() (string, error) {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: ms["worker-2"].DialContext, DisableKeepAlives: true}}
			resp, err := client.Get(svcURL)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
			}
			return strings.TrimSpace(string(body)), nil
		}},
	} {
		seen := map[string]bool{}
		var last error
		deadline := time.Now().Add(nbStepBound)
		for len(seen) < len(want) && time.Now().Before(deadline) {
			if err := nbExited(services); err != nil {
				return err
			}
			got, err := via.get()
			if err != nil {
				last = err
				time.Sleep(time.Second)
				continue
			}
			if !want[got] {
				return fmt.Errorf("GET %s from %s answered %q, not a pod of Service %s", svcURL, via.what, got, name)
			}
			seen[got] = true
		}
		if len(seen) < len(want) {
			return fmt.Errorf("GET %s (Service %s) from %s: answers from %v after %s, want both pods %v; last error: %v", svcURL, name, via.what, seen, nbStepBound, want, last)
		}
		h.T.Logf("Service %s %s answered from %s by both pods", name, svcURL, via.what)
	}
	return nil
}

// nbCheckDNS: CoreDNS (admin/addons/coredns.yaml) becomes available, its Service has the
// kubelets' clusterDNS address, and a pod resolves the Service by full and short name.
func nbCheckDNS(h *Harness, ms map[string]*NetNode, services []watched, c *Client, web *nbWeb) error {
	kc, err := os.ReadFile(h.NodeFile("worker-1", paths.KubeletConfig))
	if err != nil {
		return err
	}
	var cfg struct {
		ClusterDNS    []string `json:"clusterDNS"`
		ClusterDomain string   `json:"clusterDomain"`
	}
	if err := yaml.Unmarshal(kc, &cfg); err != nil {
		return err
	}
	err = nbPoll(nbStepBound, 2*time.Second, services, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		d, err := c.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas < 1 {
			pods, _ := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
			var s []string
			for i := range pods.Items {
				p := &pods.Items[i]
				s = append(s, fmt.Sprintf("%s on %q: %s %s", p.Name, p.Spec.NodeName, p.Status.Phase, nbContainerStates(p)))
			}
			return fmt.Errorf("Deployment kube-system/coredns: %d available: %s", d.Status.AvailableReplicas, strings.Join(s, "; "))
		}
		return nil
	})
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	dns, err := c.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if len(cfg.ClusterDNS) == 0 || dns.Spec.ClusterIP != cfg.ClusterDNS[0] || strings.Join(dns.Spec.ClusterIPs, ",") != strings.Join(cfg.ClusterDNS, ",") {
		return fmt.Errorf("Service kube-system/kube-dns has ClusterIPs %v, the kubelets' clusterDNS is %v", dns.Spec.ClusterIPs, cfg.ClusterDNS)
	}
	pod := web.Pods["worker-1"]
	for _, name := range []string{"web.default.svc." + cfg.ClusterDomain, "web"} {
		var got string
		err := nbPoll(time.Minute, 2*time.Second, services, func() error {
			var err error
			got, err = nbPodGet(ms["worker-1"], pod, "/lookup?name="+url.QueryEscape(name))
			return err
		})
		if err != nil {
			return fmt.Errorf("pod %s on worker-1 resolving %s through %s: %v", pod.Name, name, cfg.ClusterDNS[0], err)
		}
		if got != web.ClusterIP {
			return fmt.Errorf("pod %s on worker-1 resolved %s to %q, want Service web's ClusterIP %s", pod.Name, name, got, web.ClusterIP)
		}
		h.T.Logf("pod %s on worker-1 resolved %s to %s", pod.Name, name, got)
	}
	return nil
}
