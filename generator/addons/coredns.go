package addons

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
)

// Names of the cluster DNS objects (kubeadm's, so kubeadm documentation and tooling apply).
const (
	DNSNamespace      = metav1.NamespaceSystem
	DNSServiceName    = "kube-dns"
	CoreDNSName       = "coredns"
	CoreDNSRoleName   = "system:coredns"
	CoreDNSAppLabel   = "kube-dns"
	CoreDNSReplicas   = 2
	corefileKey       = "Corefile"
	corefileMountPath = "/etc/coredns"
)

// Corefile returns CoreDNS's configuration, kubeadm's: answer for the cluster domain and
// reverse zones from the API, forward everything else to the node's resolvers (the pod
// runs with dnsPolicy Default, so /etc/resolv.conf is the kubelet's resolvConf), and do
// not cache cluster answers (Service changes show at once).
func Corefile(dnsDomain string) string {
	return fmt.Sprintf(`.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes %[1]s in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success %[1]s
       disable denial %[1]s
    }
    loop
    reload
    loadbalance
}
`, dnsDomain)
}

func coreDNSObjects(c *model.Cluster) ([]any, error) {
	image := c.Images.Refs[model.ImageCoreDNS]
	if image == "" {
		return nil, fmt.Errorf("no %s image resolved", model.ImageCoreDNS)
	}
	if !c.DNSIP.IsValid() || c.DNSDomain == "" {
		return nil, fmt.Errorf("cluster DNS IP %v or domain %q not resolved", c.DNSIP, c.DNSDomain)
	}
	labels := map[string]string{"k8s-app": CoreDNSAppLabel}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: DNSNamespace}
	}

	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(CoreDNSName),
	}
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: CoreDNSRoleName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: CoreDNSRoleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: CoreDNSRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: CoreDNSName, Namespace: DNSNamespace}},
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(CoreDNSName),
		Data:       map[string]string{corefileKey: Corefile(c.DNSDomain)},
	}

	httpProbe := func(path, port string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port), Scheme: corev1.URISchemeHTTP}}
	}
	maxUnavailable := intstr.FromInt32(1)
	deploy := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: CoreDNSName, Namespace: DNSNamespace, Labels: labels,
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(CoreDNSReplicas)),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
			},
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					PriorityClassName:  "system-cluster-critical",
					ServiceAccountName: CoreDNSName,
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
									Key: "k8s-app", Operator: metav1.LabelSelectorOpIn, Values: []string{CoreDNSAppLabel},
								}}},
								TopologyKey: corev1.LabelHostname,
							},
						}},
					}},
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: nodeconfig.ControlPlaneTaint.Key, Effect: nodeconfig.ControlPlaneTaint.Effect},
					},
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
					Containers: []corev1.Container{{
						Name:            CoreDNSName,
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Resources: corev1.ResourceRequirements{
							Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("100m"),
								corev1.ResourceMemory: resource.MustParse("70Mi"),
							},
						},
						Args:         []string{"-conf", corefileMountPath + "/" + corefileKey},
						VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: corefileMountPath, ReadOnly: true}},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
							{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP},
							{Name: "liveness-probe", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
							{Name: "readiness-probe", ContainerPort: 8181, Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:        httpProbe("/health", "liveness-probe"),
							InitialDelaySeconds: 60,
							TimeoutSeconds:      5,
							SuccessThreshold:    1,
							FailureThreshold:    5,
						},
						ReadinessProbe: &corev1.Probe{ProbeHandler: httpProbe("/ready", "readiness-probe")},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: new(false),
							Capabilities: &corev1.Capabilities{
								Add:  []corev1.Capability{"NET_BIND_SERVICE"},
								Drop: []corev1.Capability{"ALL"},
							},
							ReadOnlyRootFilesystem: new(true),
						},
					}},
					// The node's resolvers, not the cluster DNS itself.
					DNSPolicy: corev1.DNSDefault,
					Volumes: []corev1.Volume{{
						Name: "config-volume",
						VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: CoreDNSName},
							Items:                []corev1.KeyToPath{{Key: corefileKey, Path: corefileKey}},
						}},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: DNSServiceName, Namespace: DNSNamespace,
			Labels:      map[string]string{"k8s-app": CoreDNSAppLabel, "kubernetes.io/name": "CoreDNS"},
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
		},
		Spec: corev1.ServiceSpec{
			Selector:  labels,
			ClusterIP: c.DNSIP.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	dualStackDNS(c, &svc.Spec)
	return []any{sa, role, binding, cm, deploy, svc}, nil
}

// dualStackDNS makes the DNS Service of a dual-stack cluster require both families, with
// the tenth service IP of each (primary first), so that pods resolve over either family
// and the Service fails to create rather than silently losing one. A single-stack
// Service keeps what the API server defaults (SingleStack, the clusterIP's family).
func dualStackDNS(c *model.Cluster, s *corev1.ServiceSpec) {
	if len(c.DNSIPs) != 2 {
		return
	}
	policy := corev1.IPFamilyPolicyRequireDualStack
	s.IPFamilyPolicy = &policy
	for _, a := range c.DNSIPs {
		s.ClusterIPs = append(s.ClusterIPs, a.String())
		fam := corev1.IPv4Protocol
		if a.Is6() {
			fam = corev1.IPv6Protocol
		}
		s.IPFamilies = append(s.IPFamilies, fam)
	}
}
