// Tests of the check logic against client-go's fake clientset and a fake GetFunc. The
// real peer is the machine e2e test, which runs `scratchgen validate-cluster` against a
// real cluster; the fakes here only cover the logic of this package: which objects and
// answers make which check report which problem.
package livecheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// answer is a fake raw GET's result.
type answer struct {
	status int
	body   string
	err    error
}

// fixture is a healthy cluster of the example spec (cp-1 control plane and etcd, two
// workers), as objects and raw answers that tests change before run.
type fixture struct {
	c     *model.Cluster
	nodes map[string]*corev1.Node
	pods  map[string]*corev1.Pod
	svc   *corev1.Service
	dep   *appsv1.Deployment
	// raw maps "server|path" (server "" for the kubeconfig's) to the answer; others are 404.
	raw map[string]answer
	// listErr, when set, fails the node list.
	listErr error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	res, err := render.Resolve([]byte(spec.Example("demo")), nil, render.ResolveOptions{Now: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Cluster
	f := &fixture{c: c, nodes: map[string]*corev1.Node{}, pods: map[string]*corev1.Pod{}, raw: map[string]answer{
		"|/readyz?verbose": {status: 200, body: "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"},
		"|/readyz/etcd":    {status: 200, body: "ok"},
	}}
	for _, n := range c.Nodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.Address.String()}, {Type: corev1.NodeHostName, Address: n.Name}},
			},
		}
		if n.RunsStaticPods() && !n.Worker() {
			node.Spec.Taints = []corev1.Taint{nodeconfig.ControlPlaneTaint}
		}
		f.nodes[n.Name] = node
		f.raw["|/api/v1/nodes/"+n.Name+"/proxy/configz"] = configzAnswer(n.PodCIDR.String())
		for _, co := range component.Default().StaticPods() {
			if co.Runs(c, n) {
				name := co.Name + "-" + n.Name
				f.pods[name] = &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Annotations: map[string]string{"kubernetes.io/config.mirror": "x"}},
					Spec:       corev1.PodSpec{NodeName: n.Name},
					Status: corev1.PodStatus{
						Phase:             corev1.PodRunning,
						Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
						ContainerStatuses: []corev1.ContainerStatus{{Name: co.Name, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
					},
				}
			}
		}
	}
	for _, n := range c.ControlPlanes() {
		f.raw[fmt.Sprintf("https://%s:%d|/readyz?verbose", n.Address, c.APIServerPort())] = answer{status: 200, body: "readyz check passed"}
	}
	f.svc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"}, Spec: corev1.ServiceSpec{ClusterIP: c.DNSIP.String()}}
	f.dep = &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
		Spec:       appsv1.DeploymentSpec{Replicas: new(int32(2))},
		Status:     appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2},
	}
	return f
}

func configzAnswer(podCIDR string) answer {
	return answer{status: 200, body: `{"kubeletconfig":{"podCIDR":"` + podCIDR + `","clusterDNS":["10.96.0.10"]}}`}
}

func (f *fixture) client() *Client {
	var objs []runtime.Object
	for _, n := range f.nodes {
		objs = append(objs, n)
	}
	for _, p := range f.pods {
		objs = append(objs, p)
	}
	if f.svc != nil {
		objs = append(objs, f.svc)
	}
	if f.dep != nil {
		objs = append(objs, f.dep)
	}
	kube := fake.NewClientset(objs...)
	if f.listErr != nil {
		kube.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, f.listErr })
	}
	get := func(ctx context.Context, server, path string) (int, []byte, error) {
		if _, ok := ctx.Deadline(); !ok {
			return 0, nil, errors.New("request without a deadline")
		}
		a, ok := f.raw[server+"|"+path]
		if !ok {
			return 404, []byte("404 page not found"), nil
		}
		return a.status, []byte(a.body), a.err
	}
	return &Client{Kube: kube, Get: get, Server: "https://10.0.0.10:6443", Source: "admin.kubeconfig", Timeout: 5 * time.Second}
}

func (f *fixture) run(t *testing.T) *Report {
	t.Helper()
	rep, err := Run(context.Background(), f.client(), f.c)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func lines(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems() {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

func TestValidateClusterHealthyPasses(t *testing.T) {
	rep := newFixture(t).run(t)
	if !rep.OK() {
		t.Fatalf("a healthy cluster has problems:\n%s", lines(rep))
	}
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, " "), "nodes node-identity control-plane apiservers etcd dns"; got != want {
		t.Errorf("checks %q, want %q", got, want)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	want := "cluster demo matches the spec: 3 nodes Ready, 3 kubelets with their own pod ranges, 4 control-plane pods Running, 1 API server ready, etcd ready (1 of 1 members), cluster DNS on 10.96.0.10 with 2/2 CoreDNS replicas available\n"
	if out.String() != want {
		t.Errorf("text output\n%q\nwant\n%q", out.String(), want)
	}
}

// TestValidateClusterReportsEachFault: each fault is reported by its check, as one line
// naming its subject, and by no other check.
func TestValidateClusterReportsEachFault(t *testing.T) {
	for _, tc := range []struct {
		name, check, line string
		break_            func(f *fixture)
	}{
		{"missing node", CheckNodes, "node worker-2: not registered: there is no Node worker-2; is its kubelet running",
			func(f *fixture) { delete(f.nodes, "worker-2") }},
		{"extra node", CheckNodes, "node stray-1: registered, but the spec lists no node stray-1; if the machine is gone, `kubectl delete node stray-1`",
			func(f *fixture) { f.nodes["stray-1"] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stray-1"}} }},
		{"NotReady node", CheckNodes, "node worker-1: not Ready (Ready=False: KubeletNotReady: container runtime network not ready, cni plugin not initialized); look at `kubectl describe node worker-1`",
			func(f *fixture) {
				f.nodes["worker-1"].Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime network not ready; cni plugin not initialized"}
			}},
		{"wrong InternalIP", CheckNodes, "node worker-1: its InternalIP is 10.0.0.99, the spec's address is 10.0.0.21; the kubelet's --node-ip",
			func(f *fixture) { f.nodes["worker-1"].Status.Addresses[0].Address = "10.0.0.99" }},
		{"control plane without its taint", CheckNodes, "node cp-1: lacks the taint node-role.kubernetes.io/control-plane:NoSchedule",
			func(f *fixture) { f.nodes["cp-1"].Spec.Taints = nil }},
		{"wrong pod range", CheckNodeIdentity, "kubelet on worker-1: runs with pod range 10.10.7.0/24; the spec (with its lock) gives worker-1 ",
			func(f *fixture) { f.raw["|/api/v1/nodes/worker-1/proxy/configz"] = configzAnswer("10.10.7.0/24") }},
		{"configz unreachable", CheckNodeIdentity, "kubelet on worker-1: its running configuration is unreadable: GET /api/v1/nodes/worker-1/proxy/configz answered 503 (no route to host); is the kubelet on worker-1 serving on 10.0.0.21:10250",
			func(f *fixture) {
				f.raw["|/api/v1/nodes/worker-1/proxy/configz"] = answer{status: 503, body: `{"kind":"Status","message":"no route to host"}`}
			}},
		{"missing mirror pod", CheckControlPlane, "pod kube-system/kube-scheduler-cp-1: missing: the kubelet on cp-1 runs no kube-scheduler mirror pod; is /etc/kubernetes/manifests/kube-scheduler.yaml on cp-1",
			func(f *fixture) { delete(f.pods, "kube-scheduler-cp-1") }},
		{"crashing control-plane pod", CheckControlPlane, "pod kube-system/kube-controller-manager-cp-1: is Running but not Ready (container kube-controller-manager waiting: CrashLoopBackOff, 4 restarts)",
			func(f *fixture) {
				p := f.pods["kube-controller-manager-cp-1"]
				p.Status.Conditions[0].Status = corev1.ConditionFalse
				p.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: "kube-controller-manager", RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}
			}},
		{"endpoint not ready", CheckAPIServers, "API server endpoint https://10.0.0.10:6443: GET /readyz answered 500, failing: poststarthook/rbac/bootstrap-roles;",
			func(f *fixture) {
				f.raw["|/readyz?verbose"] = answer{status: 500, body: "[+]ping ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\nreadyz check failed\n"}
			}},
		{"one API server unreachable", CheckAPIServers, "kube-apiserver on cp-1 (https://10.0.0.10:6443): unreachable: dial tcp 10.0.0.10:6443: connect: connection refused; is it listening on 10.0.0.10:6443",
			func(f *fixture) {
				f.raw["https://10.0.0.10:6443|/readyz?verbose"] = answer{err: errors.New("dial tcp 10.0.0.10:6443: connect: connection refused")}
			}},
		{"etcd check fails", CheckEtcd, "API server endpoint https://10.0.0.10:6443: its etcd check GET /readyz/etcd answered 500, failing: etcd: the API server cannot use etcd",
			func(f *fixture) {
				f.raw["|/readyz/etcd"] = answer{status: 500, body: "[-]etcd failed: reason withheld\nreadyz check failed"}
			}},
		{"not-Ready etcd pod", CheckEtcd, "etcd member cp-1: not ready: pod kube-system/etcd-cp-1 fails its readiness probe (etcd's /readyz) (container etcd running, not ready)",
			func(f *fixture) {
				p := f.pods["etcd-cp-1"]
				p.Status.Conditions[0].Status = corev1.ConditionFalse
				p.Status.ContainerStatuses[0].Ready = false
			}},
		{"wrong DNS IP", CheckDNS, "service kube-system/kube-dns: has cluster IP 10.96.0.53, the spec's cluster DNS IP (every kubelet's clusterDNS) is 10.96.0.10; a Service's IP cannot change",
			func(f *fixture) { f.svc.Spec.ClusterIP = "10.96.0.53" }},
		{"CoreDNS unavailable", CheckDNS, "deployment kube-system/coredns: 0 of 2 replicas available;",
			func(f *fixture) { f.dep.Status.AvailableReplicas = 0 }},
		{"no CoreDNS", CheckDNS, "deployment kube-system/coredns: missing; apply the bundle's admin/addons/coredns.yaml",
			func(f *fixture) { f.dep = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.break_(f)
			rep := f.run(t)
			if rep.OK() {
				t.Fatal("no problem reported")
			}
			for _, c := range rep.Checks {
				if c.Name != tc.check && !c.OK() {
					t.Errorf("check %s reports a problem too:\n%s", c.Name, lines(rep))
				}
			}
			ch := rep.Check(tc.check)
			if len(ch.Problems) != 1 {
				t.Fatalf("check %s: %d problems, want 1:\n%s", tc.check, len(ch.Problems), lines(rep))
			}
			if got := ch.Problems[0].String(); !strings.HasPrefix(got, tc.line) {
				t.Errorf("check %s reports\n%s\nwant a line starting with\n%s", tc.check, got, tc.line)
			}
			if !strings.Contains(rep.Summary(), "does not match the spec: 1 problem(s) ("+tc.check+" 1)") {
				t.Errorf("summary %q", rep.Summary())
			}
		})
	}
}

// TestValidateClusterPodRangeOwner: a kubelet running another node's configuration is
// named as such.
func TestValidateClusterPodRangeOwner(t *testing.T) {
	f := newFixture(t)
	w2 := f.c.Node("worker-2").PodCIDR
	f.raw["|/api/v1/nodes/worker-1/proxy/configz"] = configzAnswer(w2.String())
	got := lines(f.run(t))
	if want := "is the range of worker-2: this kubelet runs worker-2's configuration"; !strings.Contains(got, want) {
		t.Errorf("problems\n%s\nwant %q", got, want)
	}
}

func TestValidateClusterUnreachable(t *testing.T) {
	f := newFixture(t)
	f.listErr = errors.New(`Get "https://10.0.0.10:6443/api/v1/nodes": dial tcp 10.0.0.10:6443: connect: connection refused`)
	_, err := Run(context.Background(), f.client(), f.c)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the API server at https://10.0.0.10:6443 (the server of admin.kubeconfig)") {
		t.Errorf("Run: %v", err)
	}
}

func TestValidateClusterJSON(t *testing.T) {
	f := newFixture(t)
	f.svc.Spec.ClusterIP = "10.96.0.53"
	var out bytes.Buffer
	if err := f.run(t).WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cluster string
		OK      bool
		Checks  []struct {
			Name     string
			OK       bool
			Problems []Problem
		}
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if doc.Cluster != "demo" || doc.OK || len(doc.Checks) != 6 {
		t.Fatalf("document %+v", doc)
	}
	for _, c := range doc.Checks {
		if c.OK != (c.Name != CheckDNS) || c.Problems == nil {
			t.Errorf("check %+v", c)
		}
	}
	if p := doc.Checks[5].Problems; len(p) != 1 || p[0].Subject != "service kube-system/kube-dns" || p[0].What == "" || p[0].Hint == "" {
		t.Errorf("dns problems %+v", p)
	}
	if !strings.Contains(out.String(), `"problems": []`) {
		t.Errorf("a passing check's problems are not an empty list:\n%s", out.String())
	}
}

// TestValidateClusterSameAddr: addresses compare as addresses, not strings.
func TestValidateClusterSameAddr(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	if !sameAddr("::ffff:10.0.0.1", a) || sameAddr("10.0.0.10", a) || sameAddr("", a) {
		t.Error("sameAddr")
	}
}
