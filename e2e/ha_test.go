package e2e

// TestHA boots a highly available control plane from a rendered bundle and takes one
// node away.
//
// # The cluster
//
// Three nodes cp-1, cp-2, cp-3, roles [control-plane, etcd], each in its own network
// namespace on the test's bridge (see Network). Harness.Boot starts, from each node's
// rendered manifests and exactly as TestBoot does, etcd on all three (and waits until the
// members have formed their cluster), then kube-apiserver, kube-controller-manager and
// kube-scheduler on all three: twelve processes.
//
// # The load balancer
//
// With three control planes the spec's controlPlaneEndpoint must be a load balancer's
// name or address, not a node's. The test runs one, as an operator would: haLB, a plain
// TCP (layer 4) forwarder, a goroutine of the test process listening on the bridge's
// host-side address (the subnet's .1, which every node and the test reach) on a free
// port. The spec says controlPlaneEndpoint: <.1>:<that port>, so scratchgen renders
// kubeconfigs that point at the load balancer, on a port other than the API servers'
// (--secure-port 6443), and API server certificates that carry the endpoint's address.
// Its backends are each node's --advertise-address and --secure-port, read from the
// rendered kube-apiserver manifests; each connection goes round-robin to the next backend
// that accepts it (a dead API server refuses at once: its node's namespace still has the
// address). The admin kubeconfig and super-admin.conf are used unchanged through it,
// verifying its certificate against the endpoint address. Operators usually also
// health-check backends; connection-level failover is enough here and keeps the test's
// load balancer too small to hide anything.
//
// (The alternative, a DNS name such as api.ha.test and clients that map it to a node,
// would test the certificates' DNS SAN but not the kubeconfigs as rendered, the port
// mapping or a client's view of a failover.)
//
// # Checks
//
//  1. etcd: on every member, with that node's healthcheck-client certificate and full TLS
//     verification, POST /v3/cluster/member/list lists exactly the three nodes with their
//     rendered client URLs, and GET /health is true; every API server's --etcd-servers
//     names all three members.
//  2. Every kube-apiserver is ready at its node's own address (/readyz with the admin
//     kubeconfig's credentials, TLS verified against that address) and serves its own
//     certificate (the node's name among its DNS SANs); the load balancer answers with
//     the admin kubeconfig unchanged; the kubernetes Service's EndpointSlice lists all
//     three advertise addresses.
//  3. Exactly one kube-controller-manager and one kube-scheduler lead: the Lease in
//     kube-system is held by <node>_<uuid> of a cluster node, and among the three
//     processes exactly that one reports leader_election_master_status 1 on its /metrics.
//  4. One node fails: every process of the node holding the leases (both if one node does,
//     else the controller manager's) gets SIGKILL, as when a machine dies, so no lease is
//     released and the others must wait for it to expire. Then: (a) etcd keeps quorum: the
//     two remaining members are healthy and list three members; (b) each remaining API
//     server, and the load balancer (the admin client's existing connection, then a new
//     connection per backend, so the round robin meets the dead one), serve writes (a
//     ConfigMap each, read back through another API server); (c) leadership moves to a surviving node, measured from the kill to the new
//     holder's acquireTime (expected: about the lease duration, 15s by default, plus the
//     retry period); the failure bound is generous, the time is reported, not asserted;
//     (d) the kubernetes Service's EndpointSlice drops the dead API server.
//
// Run it with `make e2e-ha` (SCRATCHGEN_E2E=1; the same knobs as TestBoot, e.g.
// `make e2e-ha E2E_VERSION=1.34`).

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/scratchgen/scratchgen/generator/paths"
)

var haNodes = []NodeSpec{
	{Name: "cp-1", Roles: []string{"control-plane", "etcd"}},
	{Name: "cp-2", Roles: []string{"control-plane", "etcd"}},
	{Name: "cp-3", Roles: []string{"control-plane", "etcd"}},
}

// Failure bounds (not timing assertions): twelve processes share the machine.
const (
	haReadyBound = 3 * time.Minute // API servers ready, leaders elected
	haStepBound  = 90 * time.Second
)

// The leader-elected components: their Lease in kube-system and default --secure-port.
var haLeaders = []struct{ name, port string }{
	{"kube-controller-manager", "10257"},
	{"kube-scheduler", "10259"},
}

func TestHA(t *testing.T) {
	names := nodeNames(haNodes)
	h := New(t, names...)
	start := time.Now()

	lb, err := newHALB(h.Net.Gateway.String())
	if err != nil {
		t.Fatalf("load balancer on the bridge address %s: %v", h.Net.Gateway, err)
	}
	t.Cleanup(lb.Close) // registered after New's: runs before the processes stop
	endpoint := lb.Addr()
	h.RenderSpec("ha", haSpec(h, endpoint))

	var backends []haBackend
	for _, n := range names {
		pod, err := LoadPod(h.NodeFile(n, paths.APIServerManifest))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		addr, ok := flagValue(pod, "advertise-address")
		if !ok {
			t.Fatalf("%s's kube-apiserver manifest has no --advertise-address; with %d API servers each must advertise its node's address", n, len(names))
		}
		if want := h.Net.Node(n).Addr.String(); addr != want {
			t.Errorf("%s's kube-apiserver: --advertise-address=%s, want the node's address %s", n, addr, want)
		}
		backends = append(backends, haBackend{node: n, addr: net.JoinHostPort(addr, apiserverPort(pod))})
	}
	lb.SetBackends(backends)
	t.Logf("load balancer %s -> %s", endpoint, lb)

	pods := h.Boot(names...)
	for _, n := range names {
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			if pods[n][c] == nil {
				t.Fatalf("%s's rootfs%s has no %s pod", n, paths.ManifestsDir, c)
			}
		}
	}
	t.Logf("etcd cluster formed %s after start", time.Since(start).Round(time.Millisecond))

	admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	superAdmin, err := KubeconfigClient(h.NodeFile("cp-1", paths.SuperAdminConf))
	if err != nil {
		t.Fatal(err)
	}
	nodeAdmin := map[string]*Client{} // admin's credentials at each node's own address
	for _, n := range names {
		if nodeAdmin[n], err = haNodeClient(admin, pods[n]["kube-apiserver"]); err != nil {
			t.Fatal(err)
		}
	}

	if !t.Run("1 etcd: 3 healthy members through TLS", func(t *testing.T) {
		for _, n := range names {
			if err := haCheckEtcdMember(h, pods[n]["etcd"], names, names); err != nil {
				t.Error(err)
			}
		}
		for _, n := range names {
			if err := haCheckEtcdServers(h, pods, pods[n]["kube-apiserver"], names); err != nil {
				t.Error(err)
			}
		}
	}) {
		t.FailNow()
	}

	if !t.Run("2 every kube-apiserver ready at its own address", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, len(names))
		for i, n := range names {
			wg.Go(func() { errs[i] = checkReadyz(pods[n]["kube-apiserver"], nodeAdmin[n], haReadyBound) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		t.Logf("3 kube-apiservers ready %s after start", time.Since(start).Round(time.Millisecond))
		if err := haCheckServingCerts(h, pods, names); err != nil {
			t.Error(err)
		}
		if want := "https://" + endpoint; admin.Config.Host != want {
			t.Errorf("admin kubeconfig server is %s, want the controlPlaneEndpoint %s", admin.Config.Host, want)
		}
		if err := poll(haStepBound, time.Second, func() error {
			ctx, cancel := ctxTimeout()
			defer cancel()
			body, err := admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			if err == nil && string(body) != "ok" {
				err = fmt.Errorf("answered %q", body)
			}
			return err
		}); err != nil {
			t.Errorf("GET /readyz through the load balancer %s with %s unchanged: %v", endpoint, admin.Source, err)
		}
	}) {
		t.FailNow()
	}

	if !t.Run("bootstrap: admin/addons created with super-admin.conf through the load balancer", func(t *testing.T) {
		created, err := superAdmin.ApplyDir(h.AdminFile("addons"))
		if err != nil {
			t.Fatalf("creating the add-ons of %s with %s: %v", h.AdminFile("addons"), superAdmin.Source, err)
		}
		t.Logf("created %d objects", len(created))
	}) {
		t.FailNow()
	}

	t.Run("2b the kubernetes Service lists every API server", func(t *testing.T) {
		var want []string
		for _, b := range backends {
			want = append(want, b.host())
		}
		if err := haWaitKubernetesEndpoints(admin, want); err != nil {
			t.Error(err)
		}
	})

	holders := map[string]string{} // lease -> node
	if !t.Run("3 exactly one controller manager and one scheduler lead", func(t *testing.T) {
		metricsTLS, err := haMetricsTLS(admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range haLeaders {
			procs := haProcs(pods, names, l.name)
			for _, p := range procs {
				if v, ok := flagValue(p.Pod, "leader-elect"); ok && v != "true" {
					t.Errorf("%s on %s: --leader-elect=%s; with %d control planes every instance must take part in leader election", l.name, p.Node.Name, v, len(procs))
				}
			}
			node, err := haWaitLeader(admin, procs, l.name, l.port, metricsTLS, names, haReadyBound)
			if err != nil {
				t.Error(err)
				continue
			}
			holders[l.name] = node
			t.Logf("%s: leader on %s (%s after start)", l.name, node, time.Since(start).Round(time.Millisecond))
		}
	}) {
		t.FailNow()
	}

	// The node to lose: the one holding both leases if there is one, else the controller
	// manager's.
	victim := holders["kube-controller-manager"]
	if holders["kube-scheduler"] != victim {
		t.Logf("the leases are on different nodes (%v): losing %s, the controller manager's", holders, victim)
	}
	var survivors []string
	for _, n := range names {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	etcdLeader := haEtcdLeader(h, pods[survivors[0]]["etcd"], names)

	t.Logf("=== losing %s (etcd leader: %s): SIGKILL to its etcd, kube-apiserver, kube-controller-manager and kube-scheduler", victim, etcdLeader)
	killed := haKillNode(pods[victim])
	t.Logf("%s's processes are gone (%s after the kill)", victim, time.Since(killed).Round(time.Millisecond))

	// Watch the leases from the moment of the kill, while the other checks run.
	type takeover struct {
		lease *coordinationv1.Lease
		seen  time.Time
		err   error
	}
	takeovers := map[string]chan takeover{}
	for _, l := range haLeaders {
		ch := make(chan takeover, 1)
		takeovers[l.name] = ch
		go func() {
			var last string
			deadline := killed.Add(haStepBound + 60*time.Second)
			for {
				ctx, cancel := ctxTimeout()
				lease, err := admin.CoordinationV1().Leases("kube-system").Get(ctx, l.name, metav1.GetOptions{})
				cancel()
				if err == nil {
					holder := deref(lease.Spec.HolderIdentity)
					if node, _, _ := strings.Cut(holder, "_"); contains(survivors, node) {
						ch <- takeover{lease: lease, seen: time.Now()}
						return
					}
					last = "holder " + holder
				} else {
					last = err.Error()
				}
				if time.Now().After(deadline) {
					ch <- takeover{err: fmt.Errorf("Lease kube-system/%s still not held by %s %s after the kill: %s", l.name, strings.Join(survivors, " or "), deadline.Sub(killed).Round(time.Second), last)}
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}

	t.Run("4a etcd keeps quorum without "+victim, func(t *testing.T) {
		for _, n := range survivors {
			if err := haCheckEtcdMember(h, pods[n]["etcd"], names, survivors); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("4b the remaining API servers and the load balancer serve writes", func(t *testing.T) {
		type writer struct {
			via string
			c   *Client
		}
		var writers []writer
		for _, n := range survivors {
			writers = append(writers, writer{"kube-apiserver on " + n, nodeAdmin[n]})
		}
		// Through the load balancer: the admin client as it is (its connection may have
		// gone to the dead API server), then one new connection per backend, so that the
		// round robin meets the dead one.
		writers = append(writers, writer{"the load balancer " + endpoint, admin})
		for i := range backends {
			c, err := haFreshClient(admin)
			if err != nil {
				t.Fatal(err)
			}
			writers = append(writers, writer{fmt.Sprintf("the load balancer %s, new connection %d", endpoint, i+1), c})
		}
		for i, w := range writers {
			via, c := w.via, w.c
			name := fmt.Sprintf("ha-write-%d", i+1)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"via": via}}
			t0 := time.Now()
			err := poll(haStepBound, 500*time.Millisecond, func() error {
				ctx, cancel := ctxTimeout()
				defer cancel()
				_, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) { // an earlier attempt that timed out went through
					return nil
				}
				return err
			})
			if err != nil {
				t.Errorf("%s (%s) creating ConfigMap default/%s without %s: %v", via, c.Config.Host, name, victim, err)
				continue
			}
			// Read it back through another API server: the write is in the replicated store.
			reader := nodeAdmin[survivors[0]]
			if c == nodeAdmin[survivors[0]] {
				reader = nodeAdmin[survivors[1]]
			}
			ctx, cancel := ctxTimeout()
			got, err := reader.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
			cancel()
			if err != nil {
				t.Errorf("ConfigMap default/%s written via %s, reading it via %s: %v", name, via, reader.Config.Host, err)
				continue
			}
			if got.Data["via"] != via {
				t.Errorf("ConfigMap default/%s written via %s, read via %s: data %v", name, via, reader.Config.Host, got.Data)
				continue
			}
			t.Logf("write via %s ok (%s)", via, time.Since(t0).Round(time.Millisecond))
		}
		t.Logf("load balancer: %s", lb)
	})

	t.Run("4c leadership moves to a surviving node", func(t *testing.T) {
		metricsTLS, err := haMetricsTLS(admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range haLeaders {
			r := <-takeovers[l.name]
			if r.err != nil {
				t.Errorf("%s: %v\n%s", l.name, r.err, haLogTails(haProcs(pods, survivors, l.name)))
				continue
			}
			spec := r.lease.Spec
			node, _, _ := strings.Cut(deref(spec.HolderIdentity), "_")
			duration := time.Duration(deref32(spec.LeaseDurationSeconds)) * time.Second
			took := time.Since(killed) // upper bound if acquireTime is missing
			if spec.AcquireTime != nil {
				took = spec.AcquireTime.Sub(killed)
			}
			if holders[l.name] == victim {
				t.Logf("%s: leadership moved from %s to %s %s after the kill (leaseDuration %s; observed %s after the kill; %d transitions)",
					l.name, victim, node, took.Round(time.Millisecond), duration, r.seen.Sub(killed).Round(time.Millisecond), deref32(spec.LeaseTransitions))
			} else {
				t.Logf("%s: leader stays on %s", l.name, node)
			}
			procs := haProcs(pods, survivors, l.name)
			if _, err := haWaitLeader(admin, procs, l.name, l.port, metricsTLS, survivors, haStepBound); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("4d the kubernetes Service drops "+victim+"'s API server", func(t *testing.T) {
		var want []string
		for _, b := range backends {
			if b.node != victim {
				want = append(want, b.host())
			}
		}
		t0 := time.Now()
		if err := haWaitKubernetesEndpoints(admin, want); err != nil {
			t.Error(err)
		}
		t.Logf("%s after the kill (%s in this subtest)", time.Since(killed).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	})

	t.Logf("load balancer: %s", lb)
	t.Logf("boot, failover and checks took %s", time.Since(start).Round(time.Millisecond))
}

// haSpec is the spec of the test cluster: the network's addresses, the load balancer as
// controlPlaneEndpoint.
func haSpec(h *Harness, endpoint string) string {
	return h.Spec("ha", h.Version, endpoint, haNodes)
}

func apiserverPort(pod *corev1.Pod) string {
	if p, ok := flagValue(pod, "secure-port"); ok {
		return p
	}
	return "6443"
}

// haNodeClient has the admin kubeconfig's credentials and CA but talks to one API server
// at its node's address, verifying its certificate against that address.
func haNodeClient(admin *Client, apiserver *Proc) (*Client, error) {
	cfg := rest.CopyConfig(admin.Config)
	cfg.Host = "https://" + net.JoinHostPort(apiserver.Node.Addr.String(), apiserverPort(apiserver.Pod))
	cfg.TLSClientConfig.ServerName = ""
	return newClient(cfg, fmt.Sprintf("%s's credentials at %s (%s's kube-apiserver)", admin.Source, cfg.Host, apiserver.Node.Name))
}

// haFreshClient is c on a connection of its own: client-go shares a transport (and its
// HTTP/2 connection) among clients of equal configs unless the config has a Dial.
func haFreshClient(c *Client) (*Client, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	return newClient(cfg, c.Source)
}

// haProcs are the processes of a component on the given nodes.
func haProcs(pods map[string]Pods, nodes []string, component string) []*Proc {
	var out []*Proc
	for _, n := range nodes {
		out = append(out, pods[n][component])
	}
	return out
}

// haKillNode kills every process of a node at once, as when the machine dies, and waits
// until they are gone. It returns the time of the kill.
func haKillNode(node Pods) time.Time {
	at := time.Now()
	for _, p := range node {
		if done, _ := p.Exited(); !done {
			p.cmd.Process.Kill()
		}
	}
	for _, p := range node {
		<-p.done
	}
	return at
}

func haLogTails(procs []*Proc) string {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "--- last 20 lines of %s on %s (%s) ---\n%s\n", p.Name, p.Node.Name, p.Log, p.LogTail(20))
	}
	return b.String()
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// etcd

// haEtcdClient is an HTTPS client with node's etcd healthcheck-client certificate, verifying
// etcd's serving certificate against the node's etcd CA.
func haEtcdClient(h *Harness, node string) (*http.Client, error) {
	cfg, err := mutualTLS(h.NodeFile(node, paths.EtcdHealthcheckClientCert), h.NodeFile(node, paths.EtcdHealthcheckClientKey), h.NodeFile(node, paths.EtcdCACert))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	return &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}, nil
}

// etcdID is a uint64 of etcd's JSON gateway (a string, as proto3 JSON writes them).
type etcdID string

func (id *etcdID) UnmarshalJSON(b []byte) error {
	*id = etcdID(strings.Trim(string(b), `"`))
	return nil
}

type etcdMember struct {
	ID         etcdID
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// etcdPost POSTs {} to a v3 JSON gateway path of the member at url and decodes the answer.
func etcdPost(c *http.Client, url, path string, out any) error {
	resp, err := c.Post(url+path, "application/json", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding %s: %w", body, err)
	}
	return nil
}

// etcdClientURL is the member's --advertise-client-urls (its first URL).
func etcdClientURL(p *Proc) (string, error) {
	u, ok := flagValue(p.Pod, "advertise-client-urls")
	if !ok {
		return "", p.Failure("the manifest has no --advertise-client-urls")
	}
	u, _, _ = strings.Cut(u, ",")
	return u, nil
}

// haCheckEtcdMember asks the member on etcd's node, with that node's healthcheck-client
// certificate, for the member list (it must be exactly members, with their rendered
// client URLs) and then GETs /health of every healthy member.
func haCheckEtcdMember(h *Harness, etcd *Proc, members, healthy []string) error {
	node := etcd.Node.Name
	c, err := haEtcdClient(h, node)
	if err != nil {
		return err
	}
	url, err := etcdClientURL(etcd)
	if err != nil {
		return err
	}
	var list struct{ Members []etcdMember }
	if err := etcd.Poll(haStepBound, "POST "+url+"/v3/cluster/member/list with "+node+"'s "+paths.EtcdHealthcheckClientCert, func() error {
		err := etcdPost(c, url, "/v3/cluster/member/list", &list)
		if err != nil && isTLSError(err) {
			return permanent{err}
		}
		return err
	}); err != nil {
		return err
	}
	var got []string
	for _, m := range list.Members {
		got = append(got, m.Name)
		if !contains(members, m.Name) {
			return etcd.Failure("member list has %q (%v), not one of the cluster's nodes %v", m.Name, m.PeerURLs, members)
		}
		if m.IsLearner {
			return etcd.Failure("member %s is a learner", m.Name)
		}
		own, err := etcdClientURL(h.haEtcdProc(m.Name))
		if err != nil {
			return err
		}
		if !contains(m.ClientURLs, own) {
			return etcd.Failure("member %s advertises client URLs %v, its manifest says %s", m.Name, m.ClientURLs, own)
		}
	}
	if strings.Join(sortStrings(got), ",") != strings.Join(sortStrings(append([]string{}, members...)), ",") {
		return etcd.Failure("member list (asked at %s) is %v, want %v", url, got, members)
	}
	for _, m := range healthy {
		p := h.haEtcdProc(m)
		u, err := etcdClientURL(p)
		if err != nil {
			return err
		}
		if err := p.Poll(haStepBound, "GET "+u+"/health with "+node+"'s healthcheck-client certificate", func() error {
			resp, err := c.Get(u + "/health")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var health struct{ Health, Reason string }
			err = json.NewDecoder(resp.Body).Decode(&health)
			if err != nil || resp.StatusCode != http.StatusOK || health.Health != "true" {
				return fmt.Errorf("HTTP %d, health %q %s (%v)", resp.StatusCode, health.Health, health.Reason, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// haEtcdProc finds the etcd process of a node among the harness's processes.
func (h *Harness) haEtcdProc(node string) *Proc {
	for i := len(h.procs) - 1; i >= 0; i-- { // the newest: a member may be started again
		if p := h.procs[i]; p.Name == "etcd" && p.Node.Name == node {
			return p
		}
	}
	h.T.Fatalf("no etcd process on %s", node)
	return nil
}

// haCheckEtcdServers: the API server's --etcd-servers is every member's client URL.
func haCheckEtcdServers(h *Harness, pods map[string]Pods, apiserver *Proc, members []string) error {
	v, ok := flagValue(apiserver.Pod, "etcd-servers")
	if !ok {
		return apiserver.Failure("the manifest has no --etcd-servers")
	}
	servers := strings.Split(v, ",")
	for _, m := range members {
		u, err := etcdClientURL(pods[m]["etcd"])
		if err != nil {
			return err
		}
		if !contains(servers, u) {
			return fmt.Errorf("kube-apiserver on %s: --etcd-servers=%s lacks member %s (%s)", apiserver.Node.Name, v, m, u)
		}
	}
	if len(servers) != len(members) {
		return fmt.Errorf("kube-apiserver on %s: --etcd-servers=%s, want exactly the %d members", apiserver.Node.Name, v, len(members))
	}
	return nil
}

// haEtcdLeader names the etcd leader, as the member on etcd's node sees it ("?" if unknown).
func haEtcdLeader(h *Harness, etcd *Proc, members []string) string {
	c, err := haEtcdClient(h, etcd.Node.Name)
	if err != nil {
		return "?"
	}
	url, err := etcdClientURL(etcd)
	if err != nil {
		return "?"
	}
	var status struct{ Leader etcdID }
	var list struct{ Members []etcdMember }
	if etcdPost(c, url, "/v3/maintenance/status", &status) != nil || etcdPost(c, url, "/v3/cluster/member/list", &list) != nil {
		return "?"
	}
	for _, m := range list.Members {
		if m.ID == status.Leader {
			return m.Name
		}
	}
	return "? (id " + string(status.Leader) + ")"
}

// API servers

// haCheckServingCerts: each API server, at its node's address, presents a certificate
// that verifies for that address and carries the node's name: its own, not a shared one.
func haCheckServingCerts(h *Harness, pods map[string]Pods, nodes []string) error {
	var errs []error
	serials := map[string]string{}
	for _, n := range nodes {
		p := pods[n]["kube-apiserver"]
		ca, err := os.ReadFile(h.NodeFile(n, paths.CACert))
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		addr := net.JoinHostPort(n2a(h, n), apiserverPort(p.Pod))
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: n2a(h, n)})
		if err != nil {
			errs = append(errs, p.Failure("TLS to %s verified against %s with %s: %v", addr, n2a(h, n), paths.CACert, err))
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !contains(leaf.DNSNames, n) {
			errs = append(errs, fmt.Errorf("kube-apiserver on %s serves a certificate with DNS SANs %v, without the node's name", n, leaf.DNSNames))
		}
		if other, dup := serials[leaf.SerialNumber.String()]; dup {
			errs = append(errs, fmt.Errorf("kube-apiservers on %s and %s serve the same certificate (serial %s)", other, n, leaf.SerialNumber))
		}
		serials[leaf.SerialNumber.String()] = n
	}
	return errors.Join(errs...)
}

func n2a(h *Harness, node string) string { return h.Net.Node(node).Addr.String() }

// haWaitKubernetesEndpoints waits until the default/kubernetes Service's EndpointSlice
// lists exactly the given addresses (each API server's --advertise-address, maintained
// by the API servers' lease reconciler).
func haWaitKubernetesEndpoints(c *Client, want []string) error {
	want = sortStrings(append([]string{}, want...))
	var got []string
	err := poll(haStepBound, time.Second, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		slices, err := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
		if err != nil {
			return err
		}
		got = nil
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				got = append(got, e.Addresses...)
			}
		}
		if strings.Join(sortStrings(got), ",") != strings.Join(want, ",") {
			return fmt.Errorf("the EndpointSlice of Service default/kubernetes lists %v, want %v", got, want)
		}
		return nil
	})
	return err
}

// Leader election

// haMetricsTLS presents the admin kubeconfig's client certificate (the components
// authenticate it with --client-ca-file and authorize it through the API server) and does
// not verify their self-signed serving certificates.
func haMetricsTLS(admin *Client) (*tls.Config, error) {
	cfg, err := rest.TLSConfigFor(admin.Config)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s has no TLS client configuration", admin.Source)
	}
	cfg = cfg.Clone()
	cfg.InsecureSkipVerify = true
	return cfg, nil
}

// haMasterStatus reads leader_election_master_status{name=component} from the process's
// /metrics (absent: the process never led).
func haMasterStatus(p *Proc, port string, tlsCfg *tls.Config) (bool, error) {
	host, ok := flagValue(p.Pod, "bind-address")
	if !ok || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	if v, ok := flagValue(p.Pod, "secure-port"); ok {
		port = v
	}
	url := "https://" + net.JoinHostPort(host, port) + "/metrics"
	resp, err := p.Node.HTTPClient(tlsCfg).Get(url)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	prefix := `leader_election_master_status{name="` + p.Name + `"}`
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f == 1, err
		}
	}
	return false, sc.Err()
}

// haWaitLeader waits until the component's Lease is held by a process on one of nodes and
// exactly that process reports itself leader; it returns the leader's node.
func haWaitLeader(c *Client, procs []*Proc, component, port string, metricsTLS *tls.Config, nodes []string, bound time.Duration) (string, error) {
	var leader string
	err := poll(bound, 500*time.Millisecond, func() error {
		for _, p := range procs {
			if done, err := p.Exited(); done {
				return permanent{p.Failure("exited (%v)", exitString(err))}
			}
		}
		ctx, cancel := ctxTimeout()
		defer cancel()
		l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, component, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("Lease kube-system/%s: %w", component, err)
		}
		holder := deref(l.Spec.HolderIdentity)
		node, _, ok := strings.Cut(holder, "_")
		if !ok || !contains(nodes, node) {
			return fmt.Errorf("Lease kube-system/%s is held by %q, not <node>_<id> of %v", component, holder, nodes)
		}
		var leaders, status []string
		for _, p := range procs {
			on, err := haMasterStatus(p, port, metricsTLS)
			if err != nil {
				return fmt.Errorf("%s on %s: %w", component, p.Node.Name, err)
			}
			status = append(status, fmt.Sprintf("%s=%v", p.Node.Name, on))
			if on {
				leaders = append(leaders, p.Node.Name)
			}
		}
		if len(leaders) != 1 || leaders[0] != node {
			return fmt.Errorf("Lease kube-system/%s is held by %s but leader_election_master_status is 1 on %v (%s)", component, holder, leaders, strings.Join(status, " "))
		}
		leader = node
		return nil
	})
	var perm permanent
	if errors.As(err, &perm) {
		return "", perm.error
	}
	if err != nil {
		return "", fmt.Errorf("%s: no single leader after %s: %v\n%s", component, bound, err, haLogTails(procs))
	}
	return leader, nil
}

// The load balancer

type haBackend struct{ node, addr string }

func (b haBackend) host() string { h, _, _ := net.SplitHostPort(b.addr); return h }

// haLB forwards each TCP connection to the next API server that accepts it.
type haLB struct {
	ln net.Listener

	mu       sync.Mutex
	backends []haBackend
	counts   map[string]int // connections forwarded
	refused  map[string]int // dials that failed (the next backend was tried)
	conns    map[net.Conn]struct{}
	closed   bool
	next     atomic.Uint32
	wg       sync.WaitGroup
}

func newHALB(host string) (*haLB, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	lb := &haLB{ln: ln, counts: map[string]int{}, refused: map[string]int{}, conns: map[net.Conn]struct{}{}}
	lb.wg.Go(lb.serve)
	return lb, nil
}

// Addr is host:port, the controlPlaneEndpoint.
func (lb *haLB) Addr() string { return lb.ln.Addr().String() }

func (lb *haLB) SetBackends(b []haBackend) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.backends = b
}

func (lb *haLB) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var s []string
	for _, b := range lb.backends {
		s = append(s, fmt.Sprintf("%s %s (%d connections, %d failed dials)", b.node, b.addr, lb.counts[b.node], lb.refused[b.node]))
	}
	return strings.Join(s, ", ")
}

func (lb *haLB) serve() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return // closed
		}
		if !lb.track(c) {
			c.Close()
			return
		}
		lb.wg.Go(func() { lb.forward(c) })
	}
}

func (lb *haLB) track(c net.Conn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return false
	}
	lb.conns[c] = struct{}{}
	return true
}

func (lb *haLB) untrack(c net.Conn) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	delete(lb.conns, c)
}

func (lb *haLB) forward(c net.Conn) {
	defer lb.untrack(c)
	defer c.Close()
	lb.mu.Lock()
	backends := lb.backends
	lb.mu.Unlock()
	first := int(lb.next.Add(1))
	for i := range backends {
		b := backends[(first+i)%len(backends)]
		up, err := net.DialTimeout("tcp4", b.addr, 2*time.Second)
		if err != nil { // refused or unreachable: the next one
			lb.mu.Lock()
			lb.refused[b.node]++
			lb.mu.Unlock()
			continue
		}
		if !lb.track(up) {
			up.Close()
			return
		}
		lb.mu.Lock()
		lb.counts[b.node]++
		lb.mu.Unlock()
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); done <- struct{}{} }()
		go func() { io.Copy(c, up); done <- struct{}{} }()
		<-done // either side closed: close both
		up.Close()
		c.Close()
		<-done
		lb.untrack(up)
		return
	}
}

// Close stops listening and closes every connection.
func (lb *haLB) Close() {
	lb.mu.Lock()
	lb.closed = true
	for c := range lb.conns {
		c.Close()
	}
	lb.mu.Unlock()
	lb.ln.Close()
	lb.wg.Wait()
}
