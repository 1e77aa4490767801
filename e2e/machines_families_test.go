package e2e

// TestMachinesIPFamilies is the machine test (machines_test.go) for an IPv6-only and a
// dual-stack cluster (IPv4 primary): the same three machines delivered the same three
// ways (rsync, Ignition, cloud-init), on a test network whose namespaces have an IPv6
// address (fd5c:241:<n>::/64, without duplicate address detection) beside or instead of
// the IPv4 one. Checks, as the machine test's: (1) the control plane as static pods under
// systemd's kubelet; (2) every node Ready with its rendered --node-ip, one InternalIP per
// family in order; (3) the workload's pods get one address per family, each in its node's
// rendered range of that family, and each worker's pod reaches the other's at every one
// of its addresses (the per-family routes of routes.sh); (5) Service web at its ClusterIP,
// and a Service with ipFamilies [IPv6], through kube-proxy (ip6tables), from a pod and from
// a node; (6) CoreDNS from admin/addons, its Service with the kubelets' clusterDNS (both
// families for dual-stack), resolves Service web from a pod. The machine test's other
// checks (logs and exec, systemd unit checks, validate-cluster, reboots) do not depend on
// the IP family and are not repeated.
//
//	make e2e-machines   # runs it after TestMachines

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestMachinesIPFamilies(t *testing.T) {
	if os.Getenv(envEnable) != "1" || os.Getenv(envMachines) != "1" {
		t.Skip("SKIPPED: the machine test boots systemd-nspawn machines as root; run `make e2e-machines` " +
			"(or set " + envEnable + "=1 " + envMachines + "=1)")
	}
	for _, family := range []Family{IPv6, DualStack} {
		t.Run(string(family), func(t *testing.T) { machinesFamily(t, family) })
	}
}

func machinesFamily(t *testing.T, family Family) {
	w := mBringUpFamily(t, family)
	h, prep, booted, admin := w.h, w.prep, w.booted, w.admin
	kubelets, services, nets := w.kubelets, w.services, w.nets
	cpKubelet := kubelets["cp-1"]

	if !t.Run("1 control plane as static pods under systemd's kubelet", func(t *testing.T) {
		if err := checkReadyz(cpKubelet, admin, nbBootBound); err != nil {
			t.Fatalf("kube-apiserver, a static pod of cp-1's kubelet, is not ready: %v", err)
		}
		t.Logf("kube-apiserver at %s ready %s after the machines booted", admin.Config.Host, time.Since(booted).Round(time.Second))
		if err := mApplyAddons(h, prep.Bins); err != nil {
			t.Fatal(err)
		}
		if err := nbCheckMirrorPods(h, cpKubelet, admin); err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}
	if !t.Run("2 every node Ready with one InternalIP per family", func(t *testing.T) {
		if err := nbCheckNodes(h, kubelets, admin); err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}
	var web *nbWeb
	if !t.Run("3 pods get an address of each family in their node's ranges and reach each other across nodes", func(t *testing.T) {
		var err error
		web, err = nbCheckDeployment(h, nets, kubelets, admin, prep.WorkloadRef)
		if err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow()
	}
	t.Run("5 Service web and a Service with ipFamilies [IPv6] through kube-proxy", func(t *testing.T) {
		if err := nbCheckService(h, nets, services, web); err != nil {
			t.Fatal(err)
		}
		ip, err := mCreateIPv6Service(admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Service web6 (ipFamilies [IPv6]): ClusterIP %s", ip)
		if err := nbCheckClusterIP(h, nets, services, web, "web6", ip); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("6 CoreDNS resolves the Service's name from a pod", func(t *testing.T) {
		if prep.NoDNS != "" {
			t.Skipf("SKIPPED (LOUD): CoreDNS could not be built: %s", prep.NoDNS)
		}
		if err := nbCheckDNS(h, nets, services, admin, web); err != nil {
			t.Fatal(err)
		}
	})
}

// mCreateIPv6Service creates Service web6 for the workload with ipFamilies [IPv6]
// (SingleStack) and returns its ClusterIP, which must be IPv6.
func mCreateIPv6Service(admin *Client) (string, error) {
	single := corev1.IPFamilyPolicySingleStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web6", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector:       map[string]string{"app": "web"},
			IPFamilies:     []corev1.IPFamily{corev1.IPv6Protocol},
			IPFamilyPolicy: &single,
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	got, err := admin.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("admin (%s) creating Service web6 with ipFamilies [IPv6]: %w", admin.Source, err)
	}
	ip, err := netip.ParseAddr(got.Spec.ClusterIP)
	if err != nil || !ip.Is6() {
		return "", fmt.Errorf("Service web6 (ipFamilies [IPv6]) got ClusterIP %q, want an IPv6 address", got.Spec.ClusterIP)
	}
	return got.Spec.ClusterIP, nil
}
