package addons

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/model"
)

// RBAC object names.
const (
	// ClusterAdminsBinding is kubeadm's binding (1.29+) that makes admin.conf's group
	// (O=kubeadm:cluster-admins) cluster-admin; without it admin.conf is powerless.
	ClusterAdminsBinding = "kubeadm:cluster-admins"
	// APIServerToKubeletRole lets the API server's kubelet client reach the kubelet API
	// (logs, exec, port-forward, metrics, …).
	APIServerToKubeletRole = "system:kube-apiserver-to-kubelet"
	// NodesBinding gives the shared kubelet identity of the perRole layout system:node.
	NodesBinding = "scratchgen:nodes"
	// NodeProxierBinding gives kube-proxy's client certificate system:node-proxier.
	NodeProxierBinding = "scratchgen:node-proxier"
)

// kubeletAPIResources are the kubelet API's authorization subresources: nodes/proxy (exec,
// attach, port-forward, and everything without a finer one), nodes/log, nodes/stats,
// nodes/metrics, nodes/spec, and the fine-grained ones (KubeletFineGrainedAuthz, on by
// default since 1.33) nodes/pods, nodes/configz, nodes/healthz.
var kubeletAPIResources = []string{
	"nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec", "nodes/metrics",
	"nodes/pods", "nodes/configz", "nodes/healthz",
}

func rbacObjects(c *model.Cluster) ([]any, error) {
	crbMeta := metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"}
	ref := func(role string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}
	}
	objs := []any{
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   crbMeta,
			ObjectMeta: metav1.ObjectMeta{Name: ClusterAdminsBinding},
			RoleRef:    ref("cluster-admin"),
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: credentials.AdminGroup}},
		},
		// The apiserver-kubelet-client certificate also carries O=kubeadm:cluster-admins (as
		// kubeadm's does), which the binding above already makes cluster-admin. This role
		// grants the same kubelet access by name, so it keeps working, with least privilege,
		// if that organization is ever dropped from the certificate.
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: APIServerToKubeletRole},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: kubeletAPIResources, Verbs: []string{"*"}}},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   crbMeta,
			ObjectMeta: metav1.ObjectMeta{Name: APIServerToKubeletRole},
			RoleRef:    ref(APIServerToKubeletRole),
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: credentials.APIServerKubeletUser}},
		},
	}
	if c.Credentials == model.CredentialsPerRole {
		// One kubelet identity for all nodes: the Node authorizer cannot tell nodes apart,
		// so the group gets the system:node role through RBAC instead.
		objs = append(objs, &rbacv1.ClusterRoleBinding{
			TypeMeta:   crbMeta,
			ObjectMeta: metav1.ObjectMeta{Name: NodesBinding},
			RoleRef:    ref("system:node"),
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: credentials.NodesGroup}},
		})
	}
	// The default system:node-proxier binding names this user already; an explicit one
	// does not depend on that default and documents the identity.
	objs = append(objs, &rbacv1.ClusterRoleBinding{
		TypeMeta:   crbMeta,
		ObjectMeta: metav1.ObjectMeta{Name: NodeProxierBinding},
		RoleRef:    ref("system:node-proxier"),
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: credentials.KubeProxyUser}},
	})
	return objs, nil
}
