// Package livecheck checks a running cluster against its resolved spec: the
// from-scratch guide's "validate-cluster" step, behind `scratchgen validate-cluster`.
// Besides `images pin` and `images pull` (package images), it is scratchgen's only online
// code, and it is read-only: it lists and gets objects and issues GET requests, never
// anything that changes the cluster.
//
// Run performs six named checks, in this order, and collects every problem in a Report
// (one line each: "<subject>: <what is wrong>; <what to do or look at>"):
//
//  1. nodes: every node of the spec has a Node object of its name that is Ready and whose
//     InternalIP addresses include the spec's address; no Node exists that the spec does
//     not list; control-plane and etcd nodes that are not workers carry the taint
//     node-role.kubernetes.io/control-plane:NoSchedule (nodeconfig.ControlPlaneTaint).
//  2. node-identity: each registered node's kubelet runs its own configuration: its
//     running configuration, read through the API server's node proxy
//     (/api/v1/nodes/<node>/proxy/configz), has the node's pod range from the model
//     (model.Node.PodCIDR, which the lock keeps).
//  3. control-plane: the mirror pods of the node's static pods (the StaticPod rows of the
//     component table: kube-apiserver, kube-controller-manager and kube-scheduler on
//     control-plane nodes, etcd on etcd members), kube-system/<component>-<node>, exist and
//     are Running; those of the control-plane components are Ready too (the readiness of
//     the etcd pods is the etcd check's, so that one fault is one line).
//  4. apiservers: /readyz?verbose through the kubeconfig's endpoint answers 200, and so
//     does https://<address>:<port>/readyz of every control-plane node, asked directly
//     with the kubeconfig's CA and credentials (port: model.Cluster.APIServerPort()).
//  5. etcd: the API server's etcd check (/readyz/etcd, else /livez/etcd) is ok, and every
//     running etcd mirror pod is Ready (its readiness probe is etcd's own /readyz).
//  6. dns: the Service kube-system/kube-dns has the cluster DNS IP (model.Cluster.DNSIP)
//     and the Deployment kube-system/coredns has all its replicas available.
//
// The cluster is reached through a Client: a kubernetes.Interface for objects and a
// GetFunc for raw GET requests (health endpoints, the node proxy), so that the logic is
// tested with client-go's fake clientset; Connect builds the real one from a kubeconfig.
// Nothing here prints a token or a key: problems name objects, addresses and HTTP
// statuses only.
package livecheck
