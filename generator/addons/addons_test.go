package addons

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/spec"
)

func cluster(t *testing.T, edits ...string) *model.Cluster {
	t.Helper()
	y := spec.Example("")
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(y, edits[i]) {
			t.Fatalf("the example spec no longer contains %q", edits[i])
		}
		y = strings.Replace(y, edits[i], edits[i+1], 1)
	}
	doc, errs := spec.Parse([]byte(y))
	if len(errs.Errors()) > 0 {
		t.Fatalf("parse: %s", errs.Format("example"))
	}
	c, _, errs := model.Resolve(doc, nil)
	if len(errs.Errors()) > 0 {
		t.Fatalf("resolve: %s", errs.Format("example"))
	}
	return c
}

var perRole = []string{"  # auth:\n  #   credentials: perNode", "  auth:\n    credentials: perRole"}

// typed returns an empty value of the API type for a document's kind.
func typed(kind string) any {
	switch kind {
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "ConfigMap":
		return &corev1.ConfigMap{}
	case "Service":
		return &corev1.Service{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	}
	return nil
}

// decodeAll strictly decodes every document of a stream into its API type.
func decodeAll(t *testing.T, data []byte) []any {
	t.Helper()
	var out []any
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		obj := typed(tm.Kind)
		if obj == nil {
			t.Fatalf("document %d: unexpected kind %q", i+1, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): strict decode: %v\n%s", i+1, tm.Kind, err, doc)
		}
		if strings.Contains(doc, "null") || strings.Contains(doc, "{}") || strings.Contains(doc, "creationTimestamp") {
			t.Errorf("document %d (%s) carries empty noise:\n%s", i+1, tm.Kind, doc)
		}
		out = append(out, obj)
	}
	return out
}

func files(t *testing.T, c *model.Cluster) map[string][]byte {
	t.Helper()
	fs, err := Files(c)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for i, f := range fs {
		if i > 0 && fs[i-1].Path >= f.Path {
			t.Errorf("not sorted at %s", f.Path)
		}
		if strings.HasPrefix(f.Path, "/") || !strings.HasPrefix(f.Path, "addons/") || f.Mode != 0o644 || f.Secret {
			t.Errorf("%s: mode %o secret %v", f.Path, f.Mode, f.Secret)
		}
		m[f.Path] = f.Data
	}
	if len(m) != 2 || m[CoreDNS] == nil || m[RBAC] == nil {
		t.Fatalf("files %v", reflect.ValueOf(m).MapKeys())
	}
	return m
}

func TestDeterministic(t *testing.T) {
	for _, c := range []*model.Cluster{cluster(t), cluster(t, perRole...)} {
		a, b := files(t, c), files(t, c)
		for p := range a {
			if !bytes.Equal(a[p], b[p]) {
				t.Errorf("%s differs between two calls", p)
			}
		}
	}
}

func TestCoreDNS(t *testing.T) {
	c := cluster(t, "dnsDomain: cluster.local", "dnsDomain: example.internal")
	objs := decodeAll(t, files(t, c)[CoreDNS])
	want, err := coreDNSObjects(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(want) {
		t.Fatalf("%d documents, want %d", len(objs), len(want))
	}
	for i := range objs {
		if !apiequality.Semantic.DeepEqual(objs[i], want[i]) {
			t.Errorf("document %d does not round-trip to the rendered object", i+1)
		}
	}
	svc := objs[5].(*corev1.Service)
	if svc.Name != "kube-dns" || svc.Namespace != "kube-system" || svc.Spec.ClusterIP != c.DNSIP.String() {
		t.Errorf("service %s/%s clusterIP %s, want kube-system/kube-dns %s", svc.Namespace, svc.Name, svc.Spec.ClusterIP, c.DNSIP)
	}
	d := objs[4].(*appsv1.Deployment)
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	if *d.Spec.Replicas != 2 || ctr.Image != c.Images.Refs[model.ImageCoreDNS] || pod.PriorityClassName != "system-cluster-critical" {
		t.Errorf("deployment replicas %d image %s priority %s", *d.Spec.Replicas, ctr.Image, pod.PriorityClassName)
	}
	if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Error("selectors do not match the pod labels")
	}
	if strings.Join(ctr.Args, " ") != "-conf /etc/coredns/Corefile" || pod.DNSPolicy != corev1.DNSDefault || pod.ServiceAccountName != "coredns" {
		t.Errorf("args %v dnsPolicy %s", ctr.Args, pod.DNSPolicy)
	}
	sc := ctr.SecurityContext
	if sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
		!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !reflect.DeepEqual(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) {
		t.Errorf("security context %+v", sc)
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/health" || ctr.ReadinessProbe.HTTPGet.Path != "/ready" {
		t.Error("probes")
	}
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["dns"] != 53 || ports["dns-tcp"] != 53 || ports["metrics"] != 9153 ||
		ports[ctr.LivenessProbe.HTTPGet.Port.StrVal] != 8080 || ports[ctr.ReadinessProbe.HTTPGet.Port.StrVal] != 8181 {
		t.Errorf("ports %v", ports)
	}
	tolerated := false
	for _, tol := range pod.Tolerations {
		taint := nodeconfig.ControlPlaneTaint
		tolerated = tolerated || (tol.Key == taint.Key && (tol.Effect == "" || tol.Effect == taint.Effect) &&
			(tol.Operator == corev1.TolerationOpExists || tol.Value == taint.Value))
	}
	if !tolerated {
		t.Error("CoreDNS does not tolerate the control-plane taint the kubelets register with")
	}
	cf := objs[3].(*corev1.ConfigMap).Data["Corefile"]
	for _, want := range []string{"kubernetes example.internal in-addr.arpa ip6.arpa {", "forward . /etc/resolv.conf", "health {\n       lameduck 5s", "prometheus :9153", "loop\n", "reload\n", "loadbalance\n", "ready\n", "errors\n", "cache 30"} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Count(cf, "{") != strings.Count(cf, "}") {
		t.Errorf("unbalanced Corefile:\n%s", cf)
	}
	role := objs[1].(*rbacv1.ClusterRole)
	if len(role.Rules) != 2 || role.Rules[1].APIGroups[0] != "discovery.k8s.io" || role.Rules[1].Resources[0] != "endpointslices" {
		t.Errorf("role %+v", role.Rules)
	}
	b := objs[2].(*rbacv1.ClusterRoleBinding)
	if b.RoleRef.Name != role.Name || b.Subjects[0].Name != objs[0].(*corev1.ServiceAccount).Name || b.Subjects[0].Namespace != "kube-system" {
		t.Errorf("binding %+v", b)
	}
}

func TestRBAC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     *model.Cluster
		nodes bool
	}{
		{"perNode", cluster(t), false},
		{"perRole", cluster(t, perRole...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := decodeAll(t, files(t, tc.c)[RBAC])
			bindings := map[string]*rbacv1.ClusterRoleBinding{}
			roles := map[string]*rbacv1.ClusterRole{}
			for _, o := range objs {
				switch o := o.(type) {
				case *rbacv1.ClusterRoleBinding:
					bindings[o.Name] = o
				case *rbacv1.ClusterRole:
					roles[o.Name] = o
				}
			}
			expect := func(binding, role, kind, subject string) {
				t.Helper()
				b := bindings[binding]
				if b == nil {
					t.Errorf("no binding %s", binding)
					return
				}
				if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != role || len(b.Subjects) != 1 ||
					b.Subjects[0].Kind != kind || b.Subjects[0].Name != subject || b.Subjects[0].APIGroup != rbacv1.GroupName {
					t.Errorf("binding %s: %+v", binding, b)
				}
			}
			expect("kubeadm:cluster-admins", "cluster-admin", rbacv1.GroupKind, credentials.AdminGroup)
			expect("system:kube-apiserver-to-kubelet", "system:kube-apiserver-to-kubelet", rbacv1.UserKind, "kube-apiserver-kubelet-client")
			expect("scratchgen:node-proxier", "system:node-proxier", rbacv1.UserKind, "system:kube-proxy")
			if _, ok := bindings[NodesBinding]; ok != tc.nodes {
				t.Errorf("binding %s present %v, want %v", NodesBinding, ok, tc.nodes)
			}
			if tc.nodes {
				expect(NodesBinding, "system:node", rbacv1.GroupKind, "system:nodes")
			}
			r := roles["system:kube-apiserver-to-kubelet"]
			if r == nil || len(r.Rules) != 1 {
				t.Fatalf("role %+v", r)
			}
			got := strings.Join(r.Rules[0].Resources, ",")
			if got != "nodes/proxy,nodes/stats,nodes/log,nodes/spec,nodes/metrics,nodes/pods,nodes/configz,nodes/healthz" || r.Rules[0].APIGroups[0] != "" {
				t.Errorf("kubelet API resources %s", got)
			}
		})
	}
}

func TestMissingImageIsAnError(t *testing.T) {
	c := cluster(t)
	delete(c.Images.Refs, model.ImageCoreDNS)
	if _, err := Files(c); err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Errorf("got %v", err)
	}
}
