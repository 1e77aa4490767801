package review

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/lock"
)

// LockDiff is what would change in the lock file.
type LockDiff struct {
	// Created is set when there is no lock yet; Entries is then empty.
	Created bool `json:"created,omitempty"`
	// Entries are the entries that differ, sorted by key ("certificates.ca",
	// "podCIDRs.worker-3", "images.registry.k8s.io/pause:3.10.1").
	Entries []LockEntry `json:"entries,omitempty"`
}

// LockEntry is one lock entry that differs.
type LockEntry struct {
	Key    string `json:"key"`
	Change Change `json:"change"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
}

// CompareLocks lists what differs between the lock on disk (nil: none yet) and the lock
// a render would write. The lock holds no secrets, so values are shown.
func CompareLocks(old, new *lock.Lock) *LockDiff {
	if old == nil {
		return &LockDiff{Created: true}
	}
	if new == nil {
		new = &lock.Lock{}
	}
	d := &LockDiff{}
	add := func(key string, o, n string, inOld, inNew bool) {
		switch {
		case !inOld && inNew:
			d.Entries = append(d.Entries, LockEntry{Key: key, Change: Added, New: n})
		case inOld && !inNew:
			d.Entries = append(d.Entries, LockEntry{Key: key, Change: Removed, Old: o})
		case o != n:
			d.Entries = append(d.Entries, LockEntry{Key: key, Change: Changed, Old: o, New: n})
		}
	}
	add("cluster", old.Cluster, new.Cluster, true, true)
	add("rootSecret.verifier", verifier(old.RootSecret), verifier(new.RootSecret), old.RootSecret != nil, new.RootSecret != nil)
	add("network", network(old.Network), network(new.Network), old.Network != nil, new.Network != nil)
	for _, k := range keys(old.PodCIDRs, new.PodCIDRs) {
		o, inOld := old.PodCIDRs[k]
		n, inNew := new.PodCIDRs[k]
		add("podCIDRs."+k, o, n, inOld, inNew)
	}
	for _, k := range keys(old.Certificates, new.Certificates) {
		o, inOld := old.Certificates[k]
		n, inNew := new.Certificates[k]
		add("certificates."+k, certRecord(o), certRecord(n), inOld, inNew)
	}
	add("kubernetesVersion", old.KubernetesVersion, new.KubernetesVersion, old.KubernetesVersion != "", new.KubernetesVersion != "")
	if old.Etcd != nil || new.Etcd != nil {
		oe, ne := etcdRecords(old.Etcd), etcdRecords(new.Etcd)
		for _, k := range keys(oe, ne) {
			o, inOld := oe[k]
			n, inNew := ne[k]
			add("etcd."+k, o, n, inOld, inNew)
		}
	}
	for _, k := range keys(old.Rotations, new.Rotations) {
		o, inOld := old.Rotations[k]
		n, inNew := new.Rotations[k]
		add("rotations."+k, rotationRecord(o), rotationRecord(n), inOld, inNew)
	}
	for _, k := range keys(old.Images, new.Images) {
		o, inOld := old.Images[k]
		n, inNew := new.Images[k]
		add("images."+k, imageRecord(o), imageRecord(n), inOld, inNew)
	}
	for _, k := range keys(old.Binaries, new.Binaries) {
		o, inOld := old.Binaries[k]
		n, inNew := new.Binaries[k]
		add("binaries."+k, binaryRecord(o), binaryRecord(n), inOld, inNew)
	}
	if len(d.Entries) == 0 {
		// Same content, different bytes: formatting or the header comment.
		d.Entries = append(d.Entries, LockEntry{Key: "(formatting)", Change: Changed})
	}
	return d
}

func binaryRecord(b lock.Binary) string {
	return fmt.Sprintf("sha256:%s, %d bytes", b.SHA256, b.Size)
}

func certRecord(c lock.Certificate) string {
	s := fmt.Sprintf("generation %d", c.Generation)
	if c.Renewal > 0 {
		s += fmt.Sprintf(", renewal %d", c.Renewal)
	}
	s += ", notBefore " + c.NotBefore.UTC().Format(time.RFC3339)
	if c.SHA256 != "" {
		s += ", sha256:" + c.SHA256[:16]
	}
	return s
}

// etcdRecords flattens the etcd topology into entries: the token and one per member.
func etcdRecords(e *lock.Etcd) map[string]string {
	out := map[string]string{}
	if e == nil {
		return out
	}
	out["token"] = e.Token
	for i, m := range e.Members {
		out["members."+m.Name] = fmt.Sprintf("#%d %s, state %s, initial cluster %s", i+1, m.PeerURL, m.State, m.InitialCluster)
	}
	return out
}

// rotationRecord shows a rotation in progress: its stage and the generation it replaces.
func rotationRecord(r lock.Rotation) string {
	s := fmt.Sprintf("stage %d (%s), replacing %s", r.Stage, credentials.StageName(r.Stage), certRecord(r.Previous))
	if r.Rendered {
		s += "; rendered"
	}
	return s
}

// verifier shows a root secret verifier shortened (it reveals nothing, but 64 digits
// are noise).
func verifier(r *lock.RootSecret) string {
	if r == nil || len(r.Verifier) < 16 {
		return ""
	}
	return r.Verifier[:16] + "…"
}

func network(n *lock.Network) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf("podCIDR %s, serviceCIDR %s, nodePodCIDRMaskSize %d", n.PodCIDR, n.ServiceCIDR, n.NodePodCIDRMaskSize)
}

func imageRecord(i lock.Image) string {
	var ps []string
	for _, p := range keys(i.Platforms, nil) {
		ps = append(ps, p+"="+i.Platforms[p])
	}
	if len(ps) == 0 {
		return i.Digest
	}
	return i.Digest + " (" + strings.Join(ps, ", ") + ")"
}

func keys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
