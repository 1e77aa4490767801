// Package e2e boots a rendered bundle on real etcd and Kubernetes binaries. It is the proof
// that a bundle works, and the shortest complete description of how one boots.
//
// # How a bundle boots
//
// The test plays the machines and their kubelets; everything else comes from the bundle.
//
//  1. Machines. Each node is a network namespace sg-<pid>-<node> whose eth0 is a veth on
//     the bridge sgbr<pid> in the host namespace. Addresses come from a free
//     10.241.<n>.0/24: the bridge has .1, so the test process reaches every node, and
//     nodes have .10, .11, ... and no default route, so nothing leaves the subnet.
//
//  2. Render. The test writes a spec (cp-1: control-plane and etcd; worker-1, worker-2:
//     workers; controlPlaneEndpoint: cp-1's address) and runs `scratchgen render` on it.
//
//  3. Static pods. For every manifest in cp-1's rootfs/etc/kubernetes/manifests the test
//     writes a small wrapper script and runs
//
//     ip netns exec sg-<pid>-cp-1 unshare --mount --uts --propagation private sh <script>
//
//     The script sets the node's hostname (hostNetwork pods share it), makes /etc, /var
//     and /usr copy-on-write overlays of the host's (so mount points never appear on the
//     host), bind-mounts every hostPath volume of the pod from the node's rootfs/ at its
//     mountPath (read-only where the pod says so; a path the bundle does not hold, such
//     as /etc/ssl/certs or /var/lib/etcd, from a per-node scratch directory, as the node's
//     OS or kubelet would provide it), then execs the binary with the container's command
//     and args exactly as rendered: command[0] names the component, or is /hyperkube and
//     command[1] does. Nothing is rewritten. etcd starts first; once its readiness probe
//     passes, kube-apiserver, kube-controller-manager and kube-scheduler start together.
//     The scheduler's script, for example (state directory abbreviated to $S):
//
//     #!/bin/sh
//     set -eu
//     hostname 'cp-1'
//     mount -t overlay overlay -o lowerdir=/etc,upperdir=$S/nodes/cp-1/overlay/kube-scheduler/etc/upper,workdir=… /etc
//     # volume kubeconfig: hostPath /etc/kubernetes/scheduler.conf (FileOrCreate), from the bundle, read-only
//     mkdir -p '/etc/kubernetes' && touch '/etc/kubernetes/scheduler.conf'
//     mount --bind '$S/bundles/e2e/nodes/cp-1/rootfs/etc/kubernetes/scheduler.conf' '/etc/kubernetes/scheduler.conf'
//     mount -o remount,bind,ro '/etc/kubernetes/scheduler.conf'
//     cd /
//     exec 'e2e/.cache/bin/k8s-v1.36.3-etcd-v3.6.8/kube-scheduler' \
//     '--authentication-kubeconfig=/etc/kubernetes/scheduler.conf' … '--leader-elect=true'
//
//  4. Add-ons. admin/addons/ is created with cp-1's super-admin.conf (system:masters), as
//     an operator bootstraps a new cluster: among others, the ClusterRoleBinding that gives
//     the admin kubeconfig's group (kubeadm:cluster-admins) its rights.
//
//  5. Checks, one subtest each, with the bundle's own credentials and full TLS
//     verification: (1) kube-apiserver /readyz with admin/admin.kubeconfig; (2) etcd
//     /health with the apiserver's etcd client certificate; (3) controller manager
//     /healthz, the default ServiceAccount, a TokenRequest token and a token-controller
//     token authenticate; (4) scheduler /healthz and lease, and a pod is bound to worker-1,
//     whose Node the test registers with worker-1's kubelet kubeconfig and a Ready status,
//     as its kubelet would; (5) every kubelet kubeconfig is system:node:<name>, may create
//     its Node and not another's; (6) kube-proxy's may list Services and EndpointSlices and
//     not Secrets; (7) every known_tokens.csv line authenticates as its user and groups;
//     (8) controller-manager.conf and scheduler.conf authenticate as their components;
//     (9) every probe of every manifest passes when run as the kubelet runs it.
//
// Processes get SIGTERM, then SIGKILL, when the test ends (also on failure and panic;
// they also die with the test binary); on failure the tail of every component's log is
// printed. Namespaces and the bridge are removed, and leftovers of a killed run are removed
// by the next one.
//
// # Running it
//
//	make e2e        # Kubernetes v1.36 (builds the binaries into e2e/.cache on first use)
//	make e2e-all    # 1.34, 1.35 and 1.36, one go test run each
//
// The test is skipped unless SCRATCHGEN_E2E=1; it needs root, ip(8), unshare(1) and
// overlayfs. SCRATCHGEN_E2E_VERSION selects a minor ("1.35") or version ("v1.35.4"),
// SCRATCHGEN_E2E_CACHE the binary cache, SCRATCHGEN_E2E_KEEP=1 keeps the state directory
// (spec, bundle, wrapper scripts, logs). TestBootBrokenFlag breaks one flag in a manifest
// and checks that the failure names the component and shows its log.
package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// The test cluster: one control-plane and etcd node, two workers.
var bootNodes = []NodeSpec{
	{Name: "cp-1", Roles: []string{"control-plane", "etcd"}},
	{Name: "worker-1", Roles: []string{"worker"}},
	{Name: "worker-2", Roles: []string{"worker"}},
}

// Failure bounds (not timing assertions).
const (
	readyBound = 90 * time.Second // kube-apiserver /readyz
	stepBound  = 60 * time.Second // everything else that converges
)

func nodeNames(ns []NodeSpec) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestBoot(t *testing.T) { bootTest(t, IPv4) }

// TestBootIPv6 boots an IPv6-only cluster: node addresses, the endpoint, etcd URLs and the
// service range are IPv6.
func TestBootIPv6(t *testing.T) { bootTest(t, IPv6) }

// TestBootDualStack boots a dual-stack cluster (IPv4 primary): every node has an address
// of each family, the service range is one per family.
func TestBootDualStack(t *testing.T) { bootTest(t, DualStack) }

func bootTest(t *testing.T, family Family) {
	h := NewFamily(t, family, nodeNames(bootNodes)...)
	h.Render("e2e", bootNodes)
	start := time.Now()
	pods := h.Boot("cp-1")["cp-1"]
	apiserver, kcm, sched := pods["kube-apiserver"], pods["kube-controller-manager"], pods["kube-scheduler"]
	for name, p := range map[string]*Proc{"kube-apiserver": apiserver, "kube-controller-manager": kcm, "kube-scheduler": sched} {
		if p == nil {
			t.Fatalf("cp-1's rootfs%s has no %s pod", paths.ManifestsDir, name)
		}
	}
	admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	superAdmin, err := KubeconfigClient(h.NodeFile("cp-1", paths.SuperAdminConf))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(h.NodeFile("cp-1", paths.CACert))
	if err != nil {
		t.Fatal(err)
	}

	if !t.Run("1 kube-apiserver readyz with the admin kubeconfig", func(t *testing.T) {
		want := "https://" + net.JoinHostPort(h.Net.Node("cp-1").Addr.String(), "6443")
		if admin.Config.Host != want {
			t.Errorf("admin kubeconfig server is %s, want the controlPlaneEndpoint %s", admin.Config.Host, want)
		}
		if err := checkReadyz(apiserver, admin, readyBound); err != nil {
			t.Fatal(err)
		}
		t.Logf("kube-apiserver ready %s after start", time.Since(start).Round(time.Millisecond))
	}) {
		t.FailNow() // every other check needs the API server
	}

	t.Run("bootstrap: admin/addons created with super-admin.conf", func(t *testing.T) {
		created, err := superAdmin.ApplyDir(h.AdminFile("addons"))
		if err != nil {
			t.Fatalf("creating the add-ons of %s: %v", h.AdminFile("addons"), err)
		}
		if len(created) == 0 {
			t.Fatalf("%s holds no objects: the admin kubeconfig's group %q has no ClusterRoleBinding", h.AdminFile("addons"), "kubeadm:cluster-admins")
		}
		t.Logf("created %d objects: %s", len(created), strings.Join(created, "; "))
	})

	t.Run("2 etcd healthy through the apiserver-etcd-client certificate", func(t *testing.T) {
		if err := checkEtcd(h, pods["etcd"], apiserver); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("3 kube-controller-manager healthy, service-account tokens work", func(t *testing.T) {
		if err := checkHealthz(kcm, "10257"); err != nil {
			t.Fatal(err)
		}
		if err := checkLease(kcm, superAdmin, "kube-controller-manager", "cp-1"); err != nil {
			t.Error(err)
		}
		if err := checkServiceAccounts(kcm, superAdmin, ca); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("4 kube-scheduler healthy, holds its lease, binds a pod", func(t *testing.T) {
		if err := checkHealthz(sched, "10259"); err != nil {
			t.Fatal(err)
		}
		if err := checkLease(sched, superAdmin, "kube-scheduler", "cp-1"); err != nil {
			t.Fatal(err)
		}
		kubelet, err := KubeconfigClient(h.NodeFile("worker-1", paths.KubeletKubeconfig))
		if err != nil {
			t.Fatal(err)
		}
		if err := registerNode(kubelet, "worker-1", h.Net.Node("worker-1").Addr.String(), h.Version); err != nil {
			t.Fatal(err)
		}
		if err := checkScheduling(sched, admin, superAdmin, h.Profile.Pause); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("5 kubelet kubeconfigs: node identity and NodeRestriction", func(t *testing.T) {
		names := nodeNames(bootNodes)
		for i, n := range names {
			other := names[(i+1)%len(names)]
			if err := checkKubelet(h.NodeFile(n, paths.KubeletKubeconfig), n, other); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("6 kube-proxy kubeconfig: Services and EndpointSlices, no Secrets", func(t *testing.T) {
		for _, n := range nodeNames(bootNodes) {
			if err := checkKubeProxy(h.NodeFile(n, paths.KubeProxyKubeconfig)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("7 every known_tokens.csv line authenticates as its user and groups", func(t *testing.T) {
		file, ok := flagValue(apiserver.Pod, "token-auth-file")
		if !ok {
			t.Skip("kube-apiserver has no --token-auth-file (static tokens disabled)")
		}
		if err := checkKnownTokens(h.NodeFile("cp-1", file), admin.Config.Host, ca); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("8 controller-manager.conf and scheduler.conf authenticate as their components", func(t *testing.T) {
		for _, c := range []struct {
			p    *Proc
			user string
		}{{kcm, "system:kube-controller-manager"}, {sched, "system:kube-scheduler"}} {
			file, ok := flagValue(c.p.Pod, "kubeconfig")
			if !ok {
				t.Errorf("%s: the manifest has no --kubeconfig", c.p.Name)
				continue
			}
			cl, err := KubeconfigClient(h.NodeFile("cp-1", file))
			if err == nil {
				err = cl.ExpectUser(c.user)
			}
			if err != nil {
				t.Errorf("%s's kubeconfig (--kubeconfig=%s): %v", c.p.Name, file, err)
			}
		}
	})
	t.Run("9 every probe of every manifest passes, run as the kubelet would", func(t *testing.T) {
		for _, p := range []*Proc{pods["etcd"], apiserver, kcm, sched} {
			probes, err := p.Probes()
			if err != nil {
				t.Error(p.Failure("%v", err))
			}
			for _, pr := range probes {
				if err := p.RunProbe(pr); err != nil {
					t.Error(p.Failure("%s probe GET %s: %v", pr.Kind, pr.URL, err))
				}
			}
		}
	})
	t.Run("10 Services get ClusterIPs of the cluster's families, each from its service range", func(t *testing.T) {
		if err := checkServiceFamilies(h, apiserver, admin); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("boot and checks took %s", time.Since(start).Round(time.Millisecond))
}

// checkServiceFamilies: the kubernetes Service has the first IP of the primary rendered
// service range (the API server keeps it single-stack); a Service asking for each family alone
// (ipFamilies: [IPv6] on an IPv6 or dual-stack cluster) gets an address of that family
// in its range, and one asking for both gets both (RequireDualStack) or, single-stack,
// is refused.
func checkServiceFamilies(h *Harness, apiserver *Proc, admin *Client) error {
	flag, ok := flagValue(apiserver.Pod, "service-cluster-ip-range")
	if !ok {
		return apiserver.Failure("kube-apiserver has no --service-cluster-ip-range")
	}
	var ranges []netip.Prefix
	for _, r := range strings.Split(flag, ",") {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return fmt.Errorf("--service-cluster-ip-range=%s: %v", flag, err)
		}
		ranges = append(ranges, p)
	}
	if len(ranges) != len(h.Net.Subnets) {
		return fmt.Errorf("--service-cluster-ip-range=%s: %d ranges for a %s cluster", flag, len(ranges), h.Net.Family)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	k, err := admin.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return err
	}
	// The API server keeps its own Service single-stack, of the primary family.
	if want := ranges[0].Addr().Next().String(); strings.Join(k.Spec.ClusterIPs, ",") != want {
		return fmt.Errorf("Service default/kubernetes has ClusterIPs %v, want the first IP of the primary service range, [%s]", k.Spec.ClusterIPs, want)
	}
	h.T.Logf("Service default/kubernetes: ClusterIPs %v, families %v", k.Spec.ClusterIPs, k.Spec.IPFamilies)
	single := corev1.IPFamilyPolicySingleStack
	both := corev1.IPFamilyPolicyRequireDualStack
	for i, r := range ranges {
		fam := corev1.IPv4Protocol
		if r.Addr().Is6() {
			fam = corev1.IPv6Protocol
		}
		name := "family-" + strings.ToLower(string(fam))
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{IPFamilies: []corev1.IPFamily{fam}, IPFamilyPolicy: &single,
				Ports: []corev1.ServicePort{{Port: 80}}},
		}
		got, err := admin.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Service %s with ipFamilies [%s]: %v", name, fam, err)
		}
		ip, err := netip.ParseAddr(got.Spec.ClusterIP)
		if err != nil || !ranges[i].Contains(ip) {
			return fmt.Errorf("Service %s (ipFamilies [%s]) got ClusterIP %q, not in the rendered range %s", name, fam, got.Spec.ClusterIP, ranges[i])
		}
		h.T.Logf("Service %s (ipFamilies [%s]): ClusterIP %s in %s", name, fam, ip, ranges[i])
	}
	dual := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "family-dual", Namespace: "default"},
		Spec:       corev1.ServiceSpec{IPFamilyPolicy: &both, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	got, err := admin.CoreV1().Services("default").Create(ctx, dual, metav1.CreateOptions{})
	switch {
	case len(ranges) == 2 && err != nil:
		return fmt.Errorf("creating a RequireDualStack Service on a dual-stack cluster: %v", err)
	case len(ranges) == 2 && len(got.Spec.ClusterIPs) != 2:
		return fmt.Errorf("RequireDualStack Service got ClusterIPs %v, want one per family", got.Spec.ClusterIPs)
	case len(ranges) == 1 && err == nil:
		return fmt.Errorf("a RequireDualStack Service was accepted by a single-stack (%s) cluster: ClusterIPs %v", h.Net.Family, got.Spec.ClusterIPs)
	case len(ranges) == 2:
		h.T.Logf("Service family-dual (RequireDualStack): ClusterIPs %v", got.Spec.ClusterIPs)
	}
	return nil
}

// TestBootBrokenFlag breaks a flag in a rendered manifest and checks that the harness
// reports that component, with its log, through the same checks TestBoot uses.
func TestBootBrokenFlag(t *testing.T) {
	h := New(t, "cp-1")
	h.Render("e2e-broken", bootNodes[:1])

	t.Run("kube-scheduler with an unknown flag exits", func(t *testing.T) {
		editCommand(t, h.NodeFile("cp-1", paths.SchedulerManifest), func(argv []string) []string {
			return append(argv, "--no-such-flag=true")
		})
		p, err := h.StartStaticPod("cp-1", paths.SchedulerManifest)
		if err != nil {
			t.Fatal(err)
		}
		err = checkHealthz(p, "10259")
		expectComponentFailure(t, err, "kube-scheduler on cp-1", "exited", "unknown flag: --no-such-flag")
	})

	t.Run("kube-apiserver with a wrong --etcd-servers port never gets ready", func(t *testing.T) {
		editCommand(t, h.NodeFile("cp-1", paths.APIServerManifest), func(argv []string) []string {
			for i, a := range argv {
				if strings.HasPrefix(a, "--etcd-servers=") {
					argv[i] = strings.ReplaceAll(a, ":2379", ":2399")
				}
			}
			return argv
		})
		etcd, err := h.StartStaticPod("cp-1", paths.EtcdManifest)
		if err != nil {
			t.Fatal(err)
		}
		if err := etcd.WaitReady(stepBound); err != nil {
			t.Fatal(err)
		}
		apiserver, err := h.StartStaticPod("cp-1", paths.APIServerManifest)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := KubeconfigClient(h.AdminFile(paths.AdminKubeconfig))
		if err != nil {
			t.Fatal(err)
		}
		err = checkReadyz(apiserver, admin, 10*time.Second)
		expectComponentFailure(t, err, "kube-apiserver on cp-1", "/readyz", ":2399")
	})
}

func expectComponentFailure(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the check passed with a broken manifest; want a failure mentioning %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("the failure does not mention %q:\n%v", w, err)
		}
	}
	t.Logf("failure reported as expected:\n%v", err)
}

// editCommand rewrites a manifest's container command in place, as someone breaking a
// flag by hand would.
func editCommand(t *testing.T, file string, edit func([]string) []string) {
	t.Helper()
	pod, err := LoadPod(file)
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].Command = edit(pod.Spec.Containers[0].Command)
	data, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkReadyz waits until GET /readyz with c answers "ok".
func checkReadyz(apiserver watched, c *Client, bound time.Duration) error {
	return apiserver.Poll(bound, "GET /readyz with "+c.Source, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		body, err := c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			if isTLSError(err) {
				return permanent{err}
			}
			return fmt.Errorf("%v %s", err, strings.TrimSpace(string(body)))
		}
		if string(body) != "ok" {
			return fmt.Errorf("answered %q", body)
		}
		return nil
	})
}

func isTLSError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "x509:") || strings.Contains(s, "tls:")
}

// checkEtcd GETs /health of every --etcd-servers URL of the API server's manifest with
// the client certificate and CA the manifest names, read from the node's rootfs.
func checkEtcd(h *Harness, etcd, apiserver *Proc) error {
	if etcd == nil {
		return fmt.Errorf("cp-1 runs no etcd pod")
	}
	flags := map[string]string{}
	for _, f := range []string{"etcd-servers", "etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		v, ok := flagValue(apiserver.Pod, f)
		if !ok {
			return apiserver.Failure("the manifest has no --%s", f)
		}
		flags[f] = v
	}
	node := apiserver.Node.Name
	tlsCfg, err := mutualTLS(h.NodeFile(node, flags["etcd-certfile"]), h.NodeFile(node, flags["etcd-keyfile"]), h.NodeFile(node, flags["etcd-cafile"]))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	for _, u := range strings.Split(flags["etcd-servers"], ",") {
		resp, err := client.Get(u + "/health")
		if err != nil {
			return etcd.Failure("GET %s/health with %s: %v", u, flags["etcd-certfile"], err)
		}
		var health struct{ Health string }
		err = json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || health.Health != "true" {
			return etcd.Failure("GET %s/health: HTTP %d, health %q (%v)", u, resp.StatusCode, health.Health, err)
		}
	}
	return nil
}

// checkHealthz GETs /healthz on 127.0.0.1:<--secure-port, default port> inside the
// component's node: controller manager and scheduler bind there (--bind-address). Their
// serving certificates are self-signed at start (not rendered), so they are not verified.
func checkHealthz(p *Proc, defaultPort string) error {
	host, ok := flagValue(p.Pod, "bind-address")
	if !ok {
		host = "0.0.0.0"
	}
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	port, ok := flagValue(p.Pod, "secure-port")
	if !ok {
		port = defaultPort
	}
	url := "https://" + host + ":" + port + "/healthz"
	client := p.Node.HTTPClient(insecureTLS())
	return p.Poll(stepBound, "GET "+url+" in "+p.Node.Name+"'s network namespace", func() error { return get(client, url) })
}

// checkLease waits until the leader-election lease is held by a process on node (whose
// identity is <hostname>_<uuid>).
func checkLease(p *Proc, c *Client, lease, node string) error {
	return p.Poll(stepBound, "Lease kube-system/"+lease+" held by "+node, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, lease, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || !strings.HasPrefix(*l.Spec.HolderIdentity, node+"_") {
			return fmt.Errorf("holder is %v", deref(l.Spec.HolderIdentity))
		}
		return nil
	})
}

// checkServiceAccounts: the service-account controller creates default/default; a
// TokenRequest token (signed by the API server's --service-account-signing-key-file) and
// a token-controller token (signed by the controller manager's
// --service-account-private-key-file) both authenticate against --service-account-key-file.
func checkServiceAccounts(kcm *Proc, c *Client, ca []byte) error {
	const user = "system:serviceaccount:default:default"
	if err := kcm.Poll(stepBound, "ServiceAccount default/default exists", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		_, err := c.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	exp := int64(600)
	tr, err := c.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("TokenRequest for default/default: %w", err)
	}
	tc, err := TokenClient(c.Config.Host, ca, tr.Status.Token, "the TokenRequest token of default/default")
	if err != nil {
		return err
	}
	if err := tc.ExpectUser(user, "system:serviceaccounts", "system:serviceaccounts:default"); err != nil {
		return fmt.Errorf("kube-apiserver: %w (--service-account-signing-key-file and --service-account-key-file disagree?)", err)
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "boot-test-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}
	if _, err := c.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating a service-account token Secret: %w", err)
	}
	var token []byte
	if err := kcm.Poll(stepBound, "the token controller fills Secret default/boot-test-token", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		s, err := c.CoreV1().Secrets("default").Get(ctx, secret.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if token = s.Data[corev1.ServiceAccountTokenKey]; len(token) == 0 {
			return fmt.Errorf("no %q in the Secret yet", corev1.ServiceAccountTokenKey)
		}
		return nil
	}); err != nil {
		return err
	}
	if tc, err = TokenClient(c.Config.Host, ca, string(token), "the token controller's token of default/default"); err != nil {
		return err
	}
	if err := tc.ExpectUser(user); err != nil {
		return kcm.Failure("%v (--service-account-private-key-file does not match kube-apiserver's --service-account-key-file?)", err)
	}
	return nil
}

// registerNode does what a kubelet does first: create its Node with the usual labels, then
// report addresses, capacity and a Ready condition (the scheduler binds only to nodes with
// allocatable pods).
func registerNode(kubelet *Client, name, addr, version string) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
	}}}
	n, err := kubelet.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		n, err = kubelet.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering Node %s with %s: %w", name, kubelet.Source, err)
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "the boot test plays this node's kubelet", LastHeartbeatTime: now, LastTransitionTime: now}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: version, OperatingSystem: "linux", Architecture: runtime.GOARCH},
	}
	if _, err := kubelet.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating Node %s's status with %s: %w", name, kubelet.Source, err)
	}
	return nil
}

// checkScheduling creates, as admin, a pod tolerating every taint and waits until the
// scheduler binds it.
func checkScheduling(sched *Proc, admin, superAdmin *Client, pause string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "boot-test", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:" + pause}},
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			AutomountServiceAccountToken: new(false),
		},
	}
	err := poll(stepBound, time.Second, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		_, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			return permanent{err}
		}
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err // e.g. the default ServiceAccount not there yet
	})
	if err != nil {
		return fmt.Errorf("admin (%s) creating a pod: %w", admin.Source, err)
	}
	return sched.Poll(stepBound, "pod default/boot-test bound to worker-1", func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		p, err := superAdmin.CoreV1().Pods("default").Get(ctx, "boot-test", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName == "" {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled {
					return fmt.Errorf("not bound: %s %s", c.Reason, c.Message)
				}
			}
			return fmt.Errorf("not bound, no PodScheduled condition yet")
		}
		if p.Spec.NodeName != "worker-1" {
			return permanent{fmt.Errorf("bound to %q, the only Ready node is worker-1", p.Spec.NodeName)}
		}
		return nil
	})
}

// checkKubelet: the kubeconfig is system:node:<node> in system:nodes, may create its own
// Node (AlreadyExists also proves authorization and admission passed: storage is last),
// and NodeRestriction forbids it to create other's.
func checkKubelet(file, node, other string) error {
	c, err := KubeconfigClient(file)
	if err != nil {
		return err
	}
	if err := c.ExpectUser("system:node:"+node, "system:nodes"); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	mk := func(name string) error {
		_, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}
	if err := mk(node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s (system:node:%s) creating its own Node: %w", file, node, err)
	}
	err = mk(other)
	if err == nil {
		return fmt.Errorf("%s (system:node:%s) created Node %s: NodeRestriction is not in force", file, node, other)
	}
	if !apierrors.IsForbidden(err) {
		return fmt.Errorf("%s (system:node:%s) creating Node %s: %v, want Forbidden by NodeRestriction", file, node, other, err)
	}
	return nil
}

// checkKubeProxy: system:node-proxier may list Services and EndpointSlices, not Secrets.
func checkKubeProxy(file string) error {
	c, err := KubeconfigClient(file)
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if _, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("%s listing Services: %w", file, err)
	}
	if _, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("%s listing EndpointSlices: %w", file, err)
	}
	_, err = c.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		return fmt.Errorf("%s listing Secrets in kube-system: %v, want Forbidden", file, err)
	}
	return nil
}

// checkKnownTokens: each line token,user,uid[,"group1,group2"] authenticates, with a
// bearer token only, as that user, uid and groups.
func checkKnownTokens(file, server string, ca []byte) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	lines, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("parsing %s: %w", file, err)
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s is empty", file)
	}
	var errs []string
	for i, l := range lines {
		if len(l) < 3 {
			errs = append(errs, fmt.Sprintf("line %d has %d fields, want token,user,uid[,groups]", i+1, len(l)))
			continue
		}
		var groups []string
		if len(l) > 3 && l[3] != "" {
			groups = strings.Split(l[3], ",")
		}
		c, err := TokenClient(server, ca, l[0], fmt.Sprintf("%s line %d (%s)", file, i+1, l[1]))
		if err != nil {
			return err
		}
		ui, err := c.WhoAmI()
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case ui.Username != l[1] || ui.UID != l[2]:
			errs = append(errs, fmt.Sprintf("%s: authenticates as user %q uid %q, want %q uid %q", c.Source, ui.Username, ui.UID, l[1], l[2]))
		default:
			for _, g := range groups {
				if !contains(ui.Groups, g) {
					errs = append(errs, fmt.Sprintf("%s: groups %v lack %q", c.Source, ui.Groups, g))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("known tokens:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}
