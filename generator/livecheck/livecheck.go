package livecheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/scratchgen/scratchgen/generator/addons"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
)

// systemNamespace holds the mirror pods of the static pods.
const systemNamespace = metav1.NamespaceSystem

// kubeletPort is the kubelet API's port (the kubelet's default, which scratchgen keeps).
const kubeletPort = 10250

// Run checks the cluster cl reaches against the resolved cluster c. It returns an error,
// and no report, only when nothing can be checked: the API server cannot be reached, or
// refuses the kubeconfig's credentials to list nodes.
func Run(ctx context.Context, cl *Client, c *model.Cluster) (*Report, error) {
	x := &run{ctx: ctx, cl: cl, c: c, nodes: map[string]*corev1.Node{}, pods: map[string]*corev1.Pod{}}
	lctx, cancel := cl.bounded(ctx)
	nodes, err := cl.Kube.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		return nil, x.unreachable(err)
	}
	for i := range nodes.Items {
		x.nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	lctx, cancel = cl.bounded(ctx)
	pods, err := cl.Kube.CoreV1().Pods(systemNamespace).List(lctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		x.podsErr = err
	} else {
		for i := range pods.Items {
			x.pods[pods.Items[i].Name] = &pods.Items[i]
		}
	}
	return &Report{Cluster: c.Name, Checks: []*Check{
		x.checkNodes(), x.checkNodeIdentity(), x.checkControlPlane(), x.checkAPIServers(), x.checkEtcd(), x.checkDNS(),
	}}, nil
}

// run is one Run: the cluster, the client and the objects every check reads.
type run struct {
	ctx     context.Context
	cl      *Client
	c       *model.Cluster
	nodes   map[string]*corev1.Node
	pods    map[string]*corev1.Pod // kube-system, by name
	podsErr error
}

// unreachable explains why the first request (listing nodes) failed.
func (x *run) unreachable(err error) error {
	server := x.cl.Server
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s refuses the credentials of %s (401 Unauthorized); is it this cluster's kubeconfig, rendered from the same root secret and lock?", server, x.cl.Source)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the user of %s may not list nodes at %s (403 Forbidden); use the bundle's admin/admin.kubeconfig and apply admin/addons/rbac.yaml (it makes its group cluster-admin)", x.cl.Source, server)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Errorf("the API server at %s cannot list nodes: %v; look at `kubectl --kubeconfig %s get --raw '/readyz?verbose'`", server, err, x.cl.Source)
	}
	return fmt.Errorf("cannot reach the API server at %s (the server of %s): %v; is the cluster running and its endpoint reachable from here?", server, x.cl.Source, err)
}

// ---- 1. nodes ----

func (x *run) checkNodes() *Check {
	ch := &Check{Name: CheckNodes}
	ready := 0
	for _, n := range x.c.Nodes {
		subject := "node " + n.Name
		node, ok := x.nodes[n.Name]
		if !ok {
			ch.add(subject, "not registered: there is no Node "+n.Name,
				fmt.Sprintf("is its kubelet running with the bundle's nodes/%s/rootfs? look at `journalctl -u kubelet` on %s", n.Name, n.Address))
			continue
		}
		switch cond := nodeCondition(node, corev1.NodeReady); {
		case cond == nil:
			ch.add(subject, "has no Ready condition yet", fmt.Sprintf("look at `journalctl -u kubelet` on %s", n.Address))
		case cond.Status != corev1.ConditionTrue:
			ch.add(subject, "not Ready (Ready="+string(cond.Status)+reason(cond.Reason, cond.Message)+")",
				fmt.Sprintf("look at `kubectl describe node %s` and `journalctl -u kubelet -u containerd` on %s", n.Name, n.Address))
		default:
			ready++
		}
		if ips := internalIPs(node); !hasAll(ips, n.Addresses) {
			ch.add(subject, fmt.Sprintf("its InternalIP is %s, the spec's address is %s", orNone(ips), model.JoinAddrs(n.Addresses)),
				fmt.Sprintf("the kubelet's --node-ip comes from the bundle's nodes/%s/rootfs (kubelet.service.d/10-scratchgen.conf): deliver it to the machine at %s and restart the kubelet", n.Name, n.Address))
		}
		if n.RunsStaticPods() && !n.Worker() && !hasTaint(node, nodeconfig.ControlPlaneTaint) {
			t := nodeconfig.ControlPlaneTaint
			ch.add(subject, fmt.Sprintf("lacks the taint %s:%s, so ordinary workloads may run on it", t.Key, t.Effect),
				fmt.Sprintf("the kubelet applies registerWithTaints only when it registers the node: `kubectl taint node %s %s:%s`", n.Name, t.Key, t.Effect))
		}
	}
	var extra []string
	for name := range x.nodes {
		if x.c.Node(name) == nil {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		ch.add("node "+name, "registered, but the spec lists no node "+name,
			fmt.Sprintf("if the machine is gone, `kubectl delete node %s`; if it belongs to the cluster, add it to the spec and render", name))
	}
	ch.Summary = fmt.Sprintf("%d nodes Ready", ready)
	return ch
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func internalIPs(n *corev1.Node) []string {
	var out []string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			out = append(out, a.Address)
		}
	}
	return out
}

// hasAll reports whether the address strings include every one of want.
func hasAll(ips []string, want []netip.Addr) bool {
	for _, a := range want {
		if !slices.ContainsFunc(ips, func(s string) bool { return sameAddr(s, a) }) {
			return false
		}
	}
	return true
}

func sameAddr(s string, a netip.Addr) bool {
	b, err := netip.ParseAddr(s)
	return err == nil && b.Unmap() == a.Unmap()
}

func hasTaint(n *corev1.Node, t corev1.Taint) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(x corev1.Taint) bool { return x.Key == t.Key && x.Effect == t.Effect })
}

// ---- 2. node-identity ----

// configz is the part of the kubelet's /configz answer this check reads.
type configz struct {
	KubeletConfig *struct {
		PodCIDR string `json:"podCIDR"`
	} `json:"kubeletconfig"`
}

func (x *run) checkNodeIdentity() *Check {
	ch := &Check{Name: CheckNodeIdentity}
	ok := 0
	for _, n := range x.c.Nodes {
		if _, registered := x.nodes[n.Name]; !registered || !n.PodCIDR.IsValid() {
			continue // the nodes check reports a node that is not registered
		}
		subject := "kubelet on " + n.Name
		path := "/api/v1/nodes/" + url.PathEscape(n.Name) + "/proxy/configz"
		reach := fmt.Sprintf("is the kubelet on %s serving on %s, reachable from the control plane? look at `journalctl -u kubelet` on %s",
			n.Name, net.JoinHostPort(n.Address.String(), strconv.Itoa(kubeletPort)), n.Address)
		status, body, err := x.cl.get(x.ctx, "", path)
		switch {
		case err != nil:
			ch.add(subject, "its running configuration is unreadable: "+clip(err.Error()), reach)
			continue
		case status == 401 || status == 403:
			ch.add(subject, fmt.Sprintf("its running configuration is unreadable: GET %s answered %d%s", path, status, detail(body)),
				"the kubeconfig's user needs nodes/proxy (cluster-admin through admin/addons/rbac.yaml), and the API server's kubelet client needs system:kube-apiserver-to-kubelet (same file)")
			continue
		case status != 200:
			ch.add(subject, fmt.Sprintf("its running configuration is unreadable: GET %s answered %d%s", path, status, detail(body)), reach)
			continue
		}
		var cz configz
		if err := json.Unmarshal(body, &cz); err != nil || cz.KubeletConfig == nil {
			ch.add(subject, "GET "+path+" did not answer a kubelet configuration ({\"kubeletconfig\": …})", "is "+x.cl.Server+" this cluster's API server?")
			continue
		}
		deliver := fmt.Sprintf("its /var/lib/kubelet/config.yaml is not this node's: deliver the bundle's nodes/%s/rootfs to %s and restart the kubelet", n.Name, n.Address)
		got := cz.KubeletConfig.PodCIDR
		p, perr := netip.ParsePrefix(strings.Split(got, ",")[0])
		want := model.JoinPrefixes(n.PodCIDRs)
		switch {
		case got == "":
			ch.add(subject, fmt.Sprintf("runs without a pod range; the spec (with its lock) gives %s %s", n.Name, want), deliver)
		case perr != nil || got != want:
			what := fmt.Sprintf("runs with pod range %s; the spec (with its lock) gives %s %s", got, n.Name, want)
			if owner := x.podRangeOwner(p); owner != nil && owner != n {
				what += ", and " + got + " is the range of " + owner.Name + ": this kubelet runs " + owner.Name + "'s configuration"
			}
			ch.add(subject, what, deliver+" (or, if the lock was lost, pass the lock the cluster was rendered with)")
		default:
			ok++
		}
	}
	ch.Summary = fmt.Sprintf("%d kubelets with their own pod ranges", ok)
	return ch
}

func (x *run) podRangeOwner(p netip.Prefix) *model.Node {
	if !p.IsValid() {
		return nil
	}
	for _, n := range x.c.Nodes {
		if n.PodCIDR.Masked() == p.Masked() {
			return n
		}
	}
	return nil
}

// ---- 3. control-plane ----

func (x *run) checkControlPlane() *Check {
	ch := &Check{Name: CheckControlPlane}
	if x.podsErr != nil {
		ch.add("namespace "+systemNamespace, "its pods are unreadable: "+clip(x.podsErr.Error()), "the kubeconfig's user needs to list pods in kube-system (use the admin kubeconfig)")
		return ch
	}
	running := 0
	for _, n := range x.c.Nodes {
		for _, co := range component.Default().StaticPods() {
			if !co.Runs(x.c, n) {
				continue
			}
			name := co.Name + "-" + n.Name
			subject := "pod " + systemNamespace + "/" + name
			pod, ok := x.pods[name]
			if !ok {
				ch.add(subject, fmt.Sprintf("missing: the kubelet on %s runs no %s mirror pod", n.Name, co.Name),
					fmt.Sprintf("is %s on %s and its kubelet running? look at `journalctl -u kubelet` and `crictl ps -a` on %s", co.Manifest, n.Name, n.Address))
				continue
			}
			if pod.Status.Phase != corev1.PodRunning {
				ch.add(subject, fmt.Sprintf("is %s, not Running%s", orUnknown(string(pod.Status.Phase)), containers(pod)), logsHint(name))
				continue
			}
			if co.Name == component.Etcd {
				running++ // its readiness is the etcd check's
				continue
			}
			if !podReady(pod) {
				ch.add(subject, "is Running but not Ready"+containers(pod), logsHint(name))
				continue
			}
			running++
		}
	}
	ch.Summary = fmt.Sprintf("%d control-plane pods Running", running)
	return ch
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containers describes the containers of p that are not ready: " (container etcd:
// CrashLoopBackOff, 4 restarts)".
func containers(p *corev1.Pod) string {
	var parts []string
	for _, s := range p.Status.ContainerStatuses {
		if s.Ready {
			continue
		}
		state := "not ready"
		switch {
		case s.State.Waiting != nil:
			state = "waiting: " + orUnknown(s.State.Waiting.Reason)
		case s.State.Terminated != nil:
			state = fmt.Sprintf("exited %d", s.State.Terminated.ExitCode)
			if s.State.Terminated.Reason != "" {
				state += " (" + s.State.Terminated.Reason + ")"
			}
		case s.State.Running != nil:
			state = "running, not ready"
		}
		if s.RestartCount > 0 {
			state += fmt.Sprintf(", %d restarts", s.RestartCount)
		}
		parts = append(parts, "container "+s.Name+" "+state)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func logsHint(pod string) string {
	return fmt.Sprintf("look at `kubectl -n %s describe pod %s` and `kubectl -n %s logs %s`", systemNamespace, pod, systemNamespace, pod)
}

// ---- 4. apiservers ----

func (x *run) checkAPIServers() *Check {
	ch := &Check{Name: CheckAPIServers}
	subject := "API server endpoint " + x.cl.Server
	status, body, err := x.cl.get(x.ctx, "", "/readyz?verbose")
	switch {
	case err != nil:
		ch.add(subject, "GET /readyz: "+clip(err.Error()), "is the kubeconfig's server (the spec's controlPlaneEndpoint) reachable from here, and its load balancer forwarding to port "+strconv.Itoa(x.c.APIServerPort())+" of the control-plane nodes?")
	case status != 200:
		ch.add(subject, fmt.Sprintf("GET /readyz answered %d%s", status, failing(body)), "look at `kubectl get --raw '/readyz?verbose'` and the kube-apiserver pods' logs")
	}
	port := strconv.Itoa(x.c.APIServerPort())
	ready := 0
	for _, n := range x.c.ControlPlanes() {
		server := "https://" + net.JoinHostPort(n.Address.String(), port)
		subject := "kube-apiserver on " + n.Name + " (" + server + ")"
		logs := fmt.Sprintf("look at `kubectl -n %s logs kube-apiserver-%s`", systemNamespace, n.Name)
		status, body, err := x.cl.get(x.ctx, server, "/readyz?verbose")
		switch {
		case err != nil && strings.Contains(err.Error(), "x509"):
			ch.add(subject, "its certificate does not verify: "+clip(err.Error()),
				fmt.Sprintf("its certificate must chain to the kubeconfig's CA and carry %s: deliver /etc/kubernetes/pki/apiserver.{crt,key} of the bundle's nodes/%s/rootfs (render re-issues them when control planes change)", n.Address, n.Name))
		case err != nil:
			ch.add(subject, "unreachable: "+clip(err.Error()), fmt.Sprintf("is it listening on %s:%s and is the port open from here? %s", n.Address, port, logs))
		case status != 200:
			ch.add(subject, fmt.Sprintf("GET /readyz answered %d%s", status, failing(body)), logs)
		default:
			ready++
		}
	}
	if ready == 1 {
		ch.Summary = "1 API server ready"
	} else {
		ch.Summary = fmt.Sprintf("%d API servers ready", ready)
	}
	return ch
}

// failing lists the failed checks of a verbose health answer ("[-]etcd failed: …"), or
// gives the start of any other body.
func failing(body []byte) string {
	var names []string
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "[-]"); ok {
			name, _, _ := strings.Cut(rest, " ")
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		return ", failing: " + strings.Join(names, ", ")
	}
	return detail(body)
}

// detail gives a Status answer's message, or the start of a plain body: " (…)".
func detail(body []byte) string {
	var st metav1.Status
	msg := ""
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		msg = st.Message
	} else {
		msg = strings.TrimSpace(string(body))
	}
	if msg == "" {
		return ""
	}
	return " (" + clip(strings.Join(strings.Fields(msg), " ")) + ")"
}

// ---- 5. etcd ----

func (x *run) checkEtcd() *Check {
	ch := &Check{Name: CheckEtcd}
	subject := "API server endpoint " + x.cl.Server
	path := "/readyz/etcd"
	status, body, err := x.cl.get(x.ctx, "", path)
	if err == nil && status == 404 {
		path = "/livez/etcd"
		status, body, err = x.cl.get(x.ctx, "", path)
	}
	servers := fmt.Sprintf("look at the etcd pods (`kubectl -n %s get pods -l component=etcd`) and --etcd-servers in the control planes' /etc/kubernetes/manifests/kube-apiserver.yaml", systemNamespace)
	switch {
	case err != nil:
		ch.add(subject, "GET "+path+": "+clip(err.Error()), "is the kubeconfig's server reachable from here?")
	case status != 200:
		ch.add(subject, fmt.Sprintf("its etcd check GET %s answered %d%s: the API server cannot use etcd", path, status, failing(body)), servers)
	}
	ready := 0
	members := x.c.EtcdMembers()
	for _, n := range members {
		name := component.Etcd + "-" + n.Name
		pod, ok := x.pods[name]
		if !ok || pod.Status.Phase != corev1.PodRunning {
			continue // the control-plane check reports a missing or stopped pod
		}
		if !podReady(pod) {
			ch.add("etcd member "+n.Name, fmt.Sprintf("not ready: pod %s/%s fails its readiness probe (etcd's /readyz)%s", systemNamespace, name, containers(pod)),
				fmt.Sprintf("look at `kubectl -n %s logs %s`; a member that cannot reach a quorum of its peers (port 2380) is not ready", systemNamespace, name))
			continue
		}
		ready++
	}
	ch.Summary = fmt.Sprintf("etcd ready (%d of %d members)", ready, len(members))
	return ch
}

// ---- 6. dns ----

func (x *run) checkDNS() *Check {
	ch := &Check{Name: CheckDNS}
	apply := "apply the bundle's admin/addons/coredns.yaml with admin/admin.kubeconfig"
	svcSubject := "service " + addons.DNSNamespace + "/" + addons.DNSServiceName
	ctx, cancel := x.cl.bounded(x.ctx)
	svc, err := x.cl.Kube.CoreV1().Services(addons.DNSNamespace).Get(ctx, addons.DNSServiceName, metav1.GetOptions{})
	cancel()
	dnsOK := false
	switch {
	case apierrors.IsNotFound(err):
		ch.add(svcSubject, "missing", apply)
	case err != nil:
		ch.add(svcSubject, "unreadable: "+clip(err.Error()), "the kubeconfig's user needs to read services in kube-system (use the admin kubeconfig)")
	case !sameAddr(svc.Spec.ClusterIP, x.c.DNSIP):
		ch.add(svcSubject, fmt.Sprintf("has cluster IP %s, the spec's cluster DNS IP (every kubelet's clusterDNS) is %s", orNone([]string{svc.Spec.ClusterIP}), x.c.DNSIP),
			fmt.Sprintf("a Service's IP cannot change: `kubectl -n %s delete service %s`, then %s", addons.DNSNamespace, addons.DNSServiceName, apply))
	default:
		dnsOK = true
	}
	depSubject := "deployment " + addons.DNSNamespace + "/" + addons.CoreDNSName
	ctx, cancel = x.cl.bounded(x.ctx)
	dep, err := x.cl.Kube.AppsV1().Deployments(addons.DNSNamespace).Get(ctx, addons.CoreDNSName, metav1.GetOptions{})
	cancel()
	var available, want int32
	switch {
	case apierrors.IsNotFound(err):
		ch.add(depSubject, "missing", apply)
	case err != nil:
		ch.add(depSubject, "unreadable: "+clip(err.Error()), "the kubeconfig's user needs to read deployments in kube-system (use the admin kubeconfig)")
	default:
		want = 1
		if dep.Spec.Replicas != nil {
			want = *dep.Spec.Replicas
		}
		available = dep.Status.AvailableReplicas
		switch {
		case want == 0:
			ch.add(depSubject, "is scaled to 0 replicas, so nothing answers on the cluster DNS IP", fmt.Sprintf("%s again (it runs %d replicas)", apply, addons.CoreDNSReplicas))
		case available < want:
			ch.add(depSubject, fmt.Sprintf("%d of %d replicas available", available, want),
				fmt.Sprintf("look at `kubectl -n %s get pods -l k8s-app=%s -o wide` and their events; CoreDNS needs the pod network and a reachable upstream resolver", addons.DNSNamespace, addons.CoreDNSAppLabel))
		}
	}
	if dnsOK {
		ch.Summary = fmt.Sprintf("cluster DNS on %s with %d/%d CoreDNS replicas available", x.c.DNSIP, available, want)
	}
	return ch
}

// ---- text helpers ----

func reason(r, msg string) string {
	out := ""
	if r != "" {
		out += ": " + r
	}
	if msg != "" {
		out += ": " + clip(msg)
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 || (len(s) == 1 && s[0] == "") {
		return "none"
	}
	return strings.Join(s, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// clip shortens a message from the cluster to keep a problem on one readable line, and
// turns its semicolons into commas (the line's one semicolon separates what from hint).
func clip(s string) string {
	s = strings.ReplaceAll(strings.Join(strings.Fields(s), " "), ";", ",")
	const max = 300
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
