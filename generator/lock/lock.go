// Package lock reads and writes the lock file (<spec stem>.lock): what scratchgen decided
// once and must keep deciding the same way — pod range allocations and the ranges they
// were made in, certificate generations, first-issue times and fingerprints, image
// digests, and a verifier of the root secret. It is committed by users and holds no
// secrets. It is input like the spec: Parse reports every problem with its field path
// and line.
package lock

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/strict"
)

// APIVersion and Kind identify the lock format.
const (
	APIVersion = "scratchgen.dev/v1alpha1"
	Kind       = "Lock"
)

// MaxSize bounds the lock file: a 10,000-node lock is a few megabytes.
const MaxSize = 64 << 20

// Lock is the lock file.
type Lock struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Cluster is the cluster the lock belongs to; a lock of another cluster is refused.
	Cluster string `json:"cluster"`
	// RootSecret identifies the root secret the PKI was issued from, without revealing it.
	RootSecret *RootSecret `json:"rootSecret,omitempty"`
	// Network records the ranges the pod ranges were allocated in.
	Network *Network `json:"network,omitempty"`
	// PodCIDRs maps node name to its allocated pod range.
	PodCIDRs map[string]string `json:"podCIDRs,omitempty"`
	// Certificates maps an identity (e.g. "ca", "kubelet-client/worker-1") to its issue record.
	Certificates map[string]Certificate `json:"certificates,omitempty"`
	// Rotations are the staged rotations in progress, by CA ("ca", "etcd-ca",
	// "front-proxy-ca") or "sa" for the service-account key.
	Rotations map[string]Rotation `json:"rotations,omitempty"`
	// Etcd is the etcd cluster as renders made it: how each member joined.
	Etcd *Etcd `json:"etcd,omitempty"`
	// KubernetesVersion is the release the last render rendered the control plane at
	// (upgrades go one minor at a time).
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Images maps an image reference as rendered by tag ("registry.k8s.io/pause:3.10.1") to its pin.
	Images map[string]Image `json:"images,omitempty"`
	// Binaries maps a binary's download URL as rendered to its pin.
	Binaries map[string]Binary `json:"binaries,omitempty"`

	// positions of every field, from Parse (nil for a lock made in memory).
	positions map[field.Path]field.Position
}

// RootSecret is a verifier of the root secret: a keyed hash derived from it under its own
// label (pki.SecretVerifier), which tells a wrong or missing secret from the right one and
// reveals nothing that helps guess it.
type RootSecret struct {
	Verifier string `json:"verifier"`
}

// Network is the addressing the allocations were made in: the ranges as the spec's
// network lists them (one per family, comma-separated for dual-stack) and the node range
// size of each family the cluster has.
type Network struct {
	PodCIDR                 string `json:"podCIDR"`
	ServiceCIDR             string `json:"serviceCIDR"`
	NodePodCIDRMaskSize     int    `json:"nodePodCIDRMaskSize,omitempty"`
	NodePodCIDRMaskSizeIPv6 int    `json:"nodePodCIDRMaskSizeIPv6,omitempty"`
}

// ParsePrefixes reads one network range or two of different families, comma-separated
// (the form of Network's ranges and of PodCIDRs' values).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	items := strings.Split(s, ",")
	if len(items) > 2 {
		return nil, fmt.Errorf("%q has more than two ranges", s)
	}
	var out []netip.Prefix
	for _, it := range items {
		p, err := netip.ParsePrefix(it)
		if err != nil || p.Masked() != p {
			return nil, fmt.Errorf("%q is not a network range", it)
		}
		out = append(out, p)
	}
	if len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4() {
		return nil, fmt.Errorf("%q has two ranges of one family", s)
	}
	return out, nil
}

// Certificate records when and in which generation an identity was issued.
type Certificate struct {
	// Generation starts at 1; `certs renew` bumps it for a leaf, and a rotation for a CA
	// or the service-account key, which derives a new key and serial.
	Generation int `json:"generation"`
	// Renewal counts the same-key renewals of a CA within its generation (`certs renew
	// ca`): a new serial and validity, the same key and subject, so every certificate it
	// signed stays valid.
	Renewal int `json:"renewal,omitempty"`
	// NotBefore is fixed at first issue of this generation; NotAfter = NotBefore + validity.
	NotBefore time.Time `json:"notBefore"`
	// SHA256 is the hex SHA-256 of the certificate's DER (of the public key's PKIX DER for
	// the service-account key pair), so that a certificate on disk can be recognised
	// without the root secret.
	SHA256 string `json:"sha256,omitempty"`
}

// Rotation is a staged rotation of a CA (or of the service-account key) in progress: the
// Certificates record is the new generation, Previous the one it replaces.
type Rotation struct {
	// Stage is 1 (trust both: the new CA is trusted beside the old, which still signs)
	// or 2 (re-issue: the new CA signs, both are trusted). Retiring the old one ends the
	// rotation, and the record goes.
	Stage int `json:"stage"`
	// Rendered is set by the first render of the stage; advancing needs it.
	Rendered bool `json:"rendered,omitempty"`
	// Previous is the record of the generation being replaced.
	Previous Certificate `json:"previous"`
}

// Etcd records the etcd cluster's live shape, so that re-renders keep each member's
// bootstrap flags (etcd reads them only once, but a changed manifest restarts the member)
// and a member added later joins the running cluster.
type Etcd struct {
	// Token is the --initial-cluster-token the cluster bootstrapped with.
	Token string `json:"token"`
	// Members in the order they bootstrapped or joined.
	Members []EtcdMember `json:"members"`
}

// EtcdMember is one member and the bootstrap flags it was rendered with.
type EtcdMember struct {
	Name    string `json:"name"`
	PeerURL string `json:"peerURL"`
	// State is "new" for a member that bootstrapped the cluster, "existing" for one
	// added to it later (--initial-cluster-state).
	State string `json:"state"`
	// InitialCluster is its --initial-cluster: the members when it started.
	InitialCluster string `json:"initialCluster"`
}

// Image pins a tag to digests.
type Image struct {
	// Digest is the digest of what the tag resolved to (an index for multi-platform images).
	Digest string `json:"digest"`
	// Platforms maps "linux/amd64" etc. to that platform's manifest digest, where the tag is an index.
	Platforms map[string]string `json:"platforms,omitempty"`
}

// Binary pins a download by its content: SHA-256 (what scratchgen and install-binaries.sh
// verify, and the cache's key) and SHA-512 (what Ignition's remote-file verification
// accepts), and its size.
type Binary struct {
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
	Size   int64  `json:"size"`
}

// New returns an empty lock for a cluster.
func New(cluster string) *Lock {
	return &Lock{APIVersion: APIVersion, Kind: Kind, Cluster: cluster}
}

var (
	hex64    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex128   = regexp.MustCompile(`^[0-9a-f]{128}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Parse reads a lock strictly and checks what can be checked without the spec: every
// problem is returned with its field path and line. The lock is nil only when the file
// is not YAML at all.
func Parse(data []byte) (*Lock, field.List) {
	l := &Lock{}
	pos, errs := strict.Decode(data, l, strict.Options{
		What: "lock", MaxSize: MaxSize, Empty: "the lock is empty; remove it (the next render writes a new one) or restore it from version control",
		Second: "a second YAML document follows the lock; a lock file holds exactly one",
	})
	if pos == nil {
		return nil, errs
	}
	l.positions = pos
	// A record that failed to decode is not checked again (its zero values would only
	// repeat the problem).
	decodeErrs := slices.Clone(errs)
	for _, e := range l.check() {
		if !slices.ContainsFunc(decodeErrs, func(d *field.Error) bool { return sameRecord(d.Path, e.Path) }) {
			errs = append(errs, e)
		}
	}
	for _, e := range errs {
		e.Input = field.InputLock
	}
	l.Locate(errs)
	return l, errs
}

// sameRecord reports whether two paths are in the same record (the same map entry, or
// the same top-level field).
func sameRecord(a, b field.Path) bool {
	rec := func(p field.Path) string {
		s := string(p)
		if i := strings.Index(s, "]"); i >= 0 {
			return s[:i+1]
		}
		if i := strings.Index(s, "."); i >= 0 {
			return s[:i]
		}
		return s
	}
	return a != "" && rec(a) == rec(b)
}

// check validates the lock on its own.
func (l *Lock) check() field.List {
	var errs field.List
	if l.APIVersion != APIVersion {
		errs.Add("apiVersion", "%q is not a lock version this scratchgen reads; want %s", l.APIVersion, APIVersion)
	}
	if l.Kind != Kind {
		errs.Add("kind", "%q is not %s", l.Kind, Kind)
	}
	if l.Cluster == "" {
		errs.Add("cluster", "missing; a lock names the cluster it belongs to")
	}
	if l.RootSecret != nil && !hex64.MatchString(l.RootSecret.Verifier) {
		errs.Add("rootSecret.verifier", "is not 64 lowercase hexadecimal digits; restore the lock from version control")
	}
	if n := l.Network; n != nil {
		for _, f := range []struct{ name, v string }{{"podCIDR", n.PodCIDR}, {"serviceCIDR", n.ServiceCIDR}} {
			if _, err := ParsePrefixes(f.v); err != nil {
				errs.Add(field.Path("network").Child(f.name), "%q is not one network range per IP family; restore the lock from version control", f.v)
			}
		}
		if n.NodePodCIDRMaskSize < 0 || n.NodePodCIDRMaskSize > 32 {
			errs.Add("network.nodePodCIDRMaskSize", "%d is not an IPv4 prefix length", n.NodePodCIDRMaskSize)
		}
		if n.NodePodCIDRMaskSizeIPv6 < 0 || n.NodePodCIDRMaskSizeIPv6 > 128 {
			errs.Add("network.nodePodCIDRMaskSizeIPv6", "%d is not an IPv6 prefix length", n.NodePodCIDRMaskSizeIPv6)
		}
		if n.NodePodCIDRMaskSize == 0 && n.NodePodCIDRMaskSizeIPv6 == 0 {
			errs.Add("network.nodePodCIDRMaskSize", "missing; restore the lock from version control")
		}
	}
	// Pod ranges: valid, and no two nodes share addresses (never silently reassigned).
	names := make([]string, 0, len(l.PodCIDRs))
	for name := range l.PodCIDRs {
		names = append(names, name)
	}
	slices.Sort(names)
	owner := map[netip.Prefix]string{}
	for _, name := range names {
		p := field.Path("podCIDRs").Key(name)
		prs, err := ParsePrefixes(l.PodCIDRs[name])
		if err != nil {
			errs.Add(p, "%q is not a network range such as 10.10.1.0/24 (or one per IP family, comma-separated)", l.PodCIDRs[name])
			continue
		}
		for _, pr := range prs {
			for q, other := range owner {
				if q.Overlaps(pr) {
					errs.Add(p, "%s overlaps %s of node %q; every node needs its own range: give one of them back its own range from version control, or delete one entry to allocate it anew", pr, q, other)
				}
			}
			owner[pr] = name
		}
	}
	for _, id := range slices.Sorted(maps.Keys(l.Certificates)) {
		c, p := l.Certificates[id], field.Path("certificates").Key(id)
		if c.Generation < 1 {
			errs.Add(p.Child("generation"), "%d; generations start at 1", c.Generation)
		}
		if c.NotBefore.IsZero() {
			errs.Add(p.Child("notBefore"), "missing; every issued certificate records its first-issue time")
		}
		if c.Renewal < 0 {
			errs.Add(p.Child("renewal"), "%d; renewals count from 0", c.Renewal)
		}
		if c.SHA256 != "" && !hex64.MatchString(c.SHA256) {
			errs.Add(p.Child("sha256"), "%q is not 64 lowercase hexadecimal digits", c.SHA256)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(l.Rotations)) {
		r, p := l.Rotations[id], field.Path("rotations").Key(id)
		if r.Stage != 1 && r.Stage != 2 {
			errs.Add(p.Child("stage"), "%d; a rotation in progress is at stage 1 or 2 (retiring ends it); restore the lock from version control", r.Stage)
		}
		cur, ok := l.Certificates[id]
		switch {
		case !ok:
			errs.Add(p, "rotates %s, which the lock does not record; restore the lock from version control", id)
		case r.Previous.Generation < 1 || r.Previous.Generation >= cur.Generation:
			errs.Add(p.Child("previous").Child("generation"), "%d; the generation replaced must be below the new one (%d); restore the lock from version control", r.Previous.Generation, cur.Generation)
		}
		if r.Previous.NotBefore.IsZero() {
			errs.Add(p.Child("previous").Child("notBefore"), "missing; restore the lock from version control")
		}
		if r.Previous.SHA256 != "" && !hex64.MatchString(r.Previous.SHA256) {
			errs.Add(p.Child("previous").Child("sha256"), "%q is not 64 lowercase hexadecimal digits", r.Previous.SHA256)
		}
	}
	if e := l.Etcd; e != nil {
		if e.Token == "" {
			errs.Add("etcd.token", "missing; restore the lock from version control")
		}
		seen := map[string]bool{}
		for i, m := range e.Members {
			p := field.Path("etcd.members").Index(i)
			switch {
			case m.Name == "" || seen[m.Name]:
				errs.Add(p.Child("name"), "%q is empty or listed twice; restore the lock from version control", m.Name)
			case m.State != "new" && m.State != "existing":
				errs.Add(p.Child("state"), "%q is neither new nor existing", m.State)
			case !strings.Contains(m.InitialCluster, m.Name+"="+m.PeerURL):
				errs.Add(p.Child("initialCluster"), "%q does not list the member itself (%s=%s)", m.InitialCluster, m.Name, m.PeerURL)
			}
			seen[m.Name] = true
		}
	}
	for _, ref := range slices.Sorted(maps.Keys(l.Images)) {
		im, p := l.Images[ref], field.Path("images").Key(ref)
		if !digestRE.MatchString(im.Digest) {
			errs.Add(p.Child("digest"), "%q is not a digest such as sha256:<64 hex digits>; run `scratchgen images pin`", im.Digest)
		}
		for _, plat := range slices.Sorted(maps.Keys(im.Platforms)) {
			if !digestRE.MatchString(im.Platforms[plat]) {
				errs.Add(p.Child("platforms").Key(plat), "%q is not a digest such as sha256:<64 hex digits>", im.Platforms[plat])
			}
		}
	}
	for _, url := range slices.Sorted(maps.Keys(l.Binaries)) {
		b, p := l.Binaries[url], field.Path("binaries").Key(url)
		if !hex64.MatchString(b.SHA256) {
			errs.Add(p.Child("sha256"), "%q is not 64 lowercase hexadecimal digits; run `scratchgen binaries pin`", b.SHA256)
		}
		if !hex128.MatchString(b.SHA512) {
			errs.Add(p.Child("sha512"), "%q is not 128 lowercase hexadecimal digits; run `scratchgen binaries pin`", b.SHA512)
		}
		if b.Size <= 0 {
			errs.Add(p.Child("size"), "%d; a pinned download has a positive size; run `scratchgen binaries pin`", b.Size)
		}
	}
	return errs
}

// Locate fills in the line and column of problems about this lock's fields (those with
// Input field.InputLock).
func (l *Lock) Locate(errs field.List) {
	if l != nil {
		errs.LocateIn(field.InputLock, l.positions)
	}
}

// Marshal writes the lock as YAML with sorted keys, so the same lock gives the same bytes.
func (l *Lock) Marshal() ([]byte, error) {
	out, err := yaml.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	return append([]byte("# scratchgen lock: commit it beside the spec. It holds no secrets.\n"), out...), nil
}

// Issued reports whether the lock records any issued identity (its PKI exists).
func (l *Lock) Issued() bool { return l != nil && len(l.Certificates) > 0 }

// Clone returns a deep copy.
func (l *Lock) Clone() *Lock {
	c := *l
	c.PodCIDRs = cloneMap(l.PodCIDRs)
	c.Certificates = cloneMap(l.Certificates)
	c.Rotations = cloneMap(l.Rotations)
	if l.Etcd != nil {
		e := *l.Etcd
		e.Members = slices.Clone(l.Etcd.Members)
		c.Etcd = &e
	}
	if l.RootSecret != nil {
		r := *l.RootSecret
		c.RootSecret = &r
	}
	if l.Network != nil {
		n := *l.Network
		c.Network = &n
	}
	c.Images = make(map[string]Image, len(l.Images))
	for k, v := range l.Images {
		v.Platforms = cloneMap(v.Platforms)
		c.Images[k] = v
	}
	if l.Images == nil {
		c.Images = nil
	}
	c.Binaries = cloneMap(l.Binaries)
	return &c
}

// HexSum formats a SHA-256 sum as the lock records it.
func HexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
