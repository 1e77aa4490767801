package credentials

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// Kind is what an identity is.
type Kind int

// Kinds of identities.
const (
	// KindCA is a self-signed certificate authority.
	KindCA Kind = iota + 1
	// KindLeaf is a certificate signed by one of the CAs.
	KindLeaf
	// KindKeyPair is a key pair without a certificate (the service-account key).
	KindKeyPair
)

// Identity is one certificate identity (or the service-account key pair) of a cluster,
// described without issuing anything: who signs it, its template, and where it is held.
type Identity struct {
	ID   ID
	Kind Kind
	// Cert is the template: subject, SANs, usages and file paths (CA is its signer).
	Cert Cert
	// Nodes are the nodes whose bundle holds the certificate (as a file or inside a
	// kubeconfig), in spec order; Admin is set when the bundle's admin/ holds it.
	Nodes []string
	Admin bool
}

// Identities lists every identity cluster c needs, in a fixed order: the CAs, the
// service-account key pair, then the leaves (cluster-wide ones, then per node in spec
// order). It issues nothing and needs no secret.
func Identities(c *model.Cluster) []Identity {
	certs := templates(c)
	held := map[ID][]string{}
	for _, n := range c.Nodes {
		seen := map[ID]bool{}
		for _, h := range holdings(c, n, certs) {
			for _, id := range h.identities() {
				if !seen[id] {
					seen[id] = true
					held[id] = append(held[id], n.Name)
				}
			}
		}
	}
	admin := map[ID]bool{}
	for _, id := range adminHolding(c).identities() {
		admin[id] = true
	}
	var out []Identity
	add := func(cert Cert, kind Kind) {
		out = append(out, Identity{ID: cert.ID, Kind: kind, Cert: cert, Nodes: held[cert.ID], Admin: admin[cert.ID]})
	}
	for _, ca := range cas {
		add(ca, KindCA)
	}
	add(Cert{ID: SA, KeyPath: paths.SAKey}, KindKeyPair)
	for _, l := range leaves(c) {
		add(l, KindLeaf)
	}
	return out
}

// templates maps every certificate identity of c to its template.
func templates(c *model.Cluster) map[ID]Cert {
	out := map[ID]Cert{}
	for _, ca := range cas {
		out[ca.ID] = ca
	}
	for _, l := range leaves(c) {
		out[l.ID] = l
	}
	return out
}

// leaves lists every leaf identity the cluster needs, in a fixed order.
func leaves(c *model.Cluster) []Cert {
	var out []Cert
	for _, l := range clusterLeaves {
		if l.ID == SharedKubelet && c.Credentials != model.CredentialsPerRole {
			continue
		}
		out = append(out, l)
	}
	for _, n := range c.Nodes {
		if n.ControlPlane() {
			out = append(out, apiServerCert(c, n))
		}
		if n.Etcd() {
			out = append(out, etcdCerts(n)...)
		}
		out = append(out, kubeletServingCert(n))
		if c.Credentials == model.CredentialsPerNode {
			out = append(out, kubeletClientCert(n))
		}
	}
	return out
}

// Dates are an identity's generation and validity, as the lock records them (or as a
// render now would record them).
type Dates struct {
	Generation int
	// Renewal counts a CA's same-key renewals within its generation.
	Renewal             int
	NotBefore, NotAfter time.Time
	// Issued is false for an identity the lock does not record yet.
	Issued bool
	// SignerGeneration is, for a leaf, the generation of the CA that signs it: the
	// previous one in stage 1 of a rotation of that CA.
	SignerGeneration int
}

// Serial is the serial number of identity id issued with dates d in cluster: a hash of
// the cluster, the identity, its generation and, when not the first, its renewal and its
// signer's generation, so that no two certificates of one issuer name share a serial.
func Serial(cluster string, id ID, d Dates) *big.Int {
	label := cluster + "/" + string(id)
	if d.Renewal > 0 {
		label += fmt.Sprintf("/renewal-%d", d.Renewal)
	}
	if d.SignerGeneration > 1 {
		label += fmt.Sprintf("/ca-%d", d.SignerGeneration)
	}
	return pki.DeriveSerial(label, d.Generation)
}

// Rotatable are the identities `certs rotate-ca` and `certs rotate-sa` rotate.
var Rotatable = []ID{CA, EtcdCA, FrontProxyCA, SA}

// Stage names of a staged rotation. Stage 3 (retire) is not recorded: advancing from
// stage 2 ends the rotation.
const (
	StageTrustBoth = 1
	StageReissue   = 2
	StageRetire    = 3
)

// rotation returns lk's rotation of id in progress.
func rotation(lk *lock.Lock, id ID) (lock.Rotation, bool) {
	if lk == nil {
		return lock.Rotation{}, false
	}
	r, ok := lk.Rotations[string(id)]
	return r, ok
}

// Previous returns the dates of the generation that the rotation of id in progress
// replaces; ok is false when id is not rotating.
func Previous(c *model.Cluster, lk *lock.Lock, id ID) (Dates, bool) {
	r, ok := rotation(lk, id)
	if !ok {
		return Dates{}, false
	}
	d := Dates{Generation: r.Previous.Generation, Renewal: r.Previous.Renewal, NotBefore: r.Previous.NotBefore, Issued: true}
	if IsCA(id) {
		d.NotAfter = d.NotBefore.Add(c.CAValidity)
	}
	return d, true
}

// Schedule returns the dates of every identity of c under lock lk (nil: none yet): the
// lock's generation and NotBefore, or generation 1 and now minus Backdate for an identity
// it does not record; NotAfter is NotBefore plus caValidity for a CA, plus certValidity
// for a leaf, but never after its CA's NotAfter. The key pair has no NotAfter.
func Schedule(c *model.Cluster, lk *lock.Lock, now time.Time) map[ID]Dates {
	out := map[ID]Dates{}
	record := func(id ID) Dates {
		if lk != nil {
			if r, ok := lk.Certificates[string(id)]; ok {
				return Dates{Generation: r.Generation, Renewal: r.Renewal, NotBefore: r.NotBefore, Issued: true}
			}
		}
		return Dates{Generation: 1, NotBefore: now.Add(-Backdate).UTC().Truncate(time.Second)}
	}
	for _, id := range Identities(c) {
		d := record(id.ID)
		switch id.Kind {
		case KindCA:
			d.NotAfter = d.NotBefore.Add(c.CAValidity)
		case KindLeaf:
			signer := Signer(c, lk, out, id.Cert.CA)
			d.SignerGeneration = signer.Generation
			d.NotAfter = d.NotBefore.Add(c.CertValidity)
			if d.NotAfter.After(signer.NotAfter) {
				d.NotAfter = signer.NotAfter // never outlive the CA
			}
		}
		out[id.ID] = d
	}
	return out
}

// Signer returns the dates of the generation of CA (or of the service-account key) that
// signs now: the previous one in stage 1 of its rotation, else the current one (dates
// holds the current ones, as Schedule computes them).
func Signer(c *model.Cluster, lk *lock.Lock, dates map[ID]Dates, ca ID) Dates {
	if r, ok := rotation(lk, ca); ok && r.Stage == StageTrustBoth {
		prev, _ := Previous(c, lk, ca)
		return prev
	}
	return dates[ca]
}

// Renewal is one identity renewed in the lock.
type Renewal struct {
	ID       ID
	Old, New lock.Certificate
}

// Renew returns a copy of lk in which each identity is renewed with a NotBefore of now
// minus Backdate (UTC, whole seconds), as at first issue, so with the spec's lifetimes: a
// leaf gets the next generation (the next render derives a new key and serial for
// exactly those); a CA keeps its generation and key and gets the next renewal (a new
// serial and validity, the same subject and key: every certificate it signed stays
// valid). The service-account key pair is not renewed but rotated (StartRotation): a new
// key at once would invalidate every token. Every identity must be recorded in lk, and a
// CA must not be rotating.
func Renew(lk *lock.Lock, ids []ID, now time.Time) (*lock.Lock, []Renewal, error) {
	out := lk.Clone()
	if out.Certificates == nil {
		out.Certificates = map[string]lock.Certificate{}
	}
	var done []Renewal
	for _, id := range ids {
		old, ok := lk.Certificates[string(id)]
		if !ok {
			return nil, nil, fmt.Errorf("%s is not in the lock yet: render first, which issues it", id)
		}
		nb := now.Add(-Backdate).UTC().Truncate(time.Second)
		n := lock.Certificate{Generation: old.Generation + 1, NotBefore: nb}
		switch {
		case id == SA:
			return nil, nil, fmt.Errorf("the service-account key is not renewed but rotated, in stages, so that existing tokens keep working: run `scratchgen certs rotate-sa`")
		case IsCA(id):
			if r, rotating := rotation(lk, id); rotating {
				return nil, nil, fmt.Errorf("%s is rotating (stage %d): finish the rotation with `scratchgen certs rotate-ca %s --next` first", id, r.Stage, RotationTarget(id))
			}
			n = lock.Certificate{Generation: old.Generation, Renewal: old.Renewal + 1, NotBefore: nb}
		}
		out.Certificates[string(id)] = n
		done = append(done, Renewal{ID: id, Old: old, New: n})
	}
	return out, done, nil
}

// rotationTargets are the names `certs rotate-ca` takes.
var rotationTargets = map[string]ID{"cluster": CA, "etcd": EtcdCA, "front-proxy": FrontProxyCA}

// RotationTargetID returns the CA that `certs rotate-ca name` rotates.
func RotationTargetID(name string) (ID, bool) {
	id, ok := rotationTargets[name]
	return id, ok
}

// RotationTarget returns the `certs rotate-ca` name of CA id ("sa" for the key pair).
func RotationTarget(id ID) string {
	for name, t := range rotationTargets {
		if t == id {
			return name
		}
	}
	return string(id)
}

// StartRotation returns a copy of lk in which id (a CA or SA) starts a staged rotation:
// its record becomes the next generation (a new key, NotBefore now minus Backdate) and
// the rotation, at stage 1, keeps the previous record.
func StartRotation(lk *lock.Lock, id ID, now time.Time) (*lock.Lock, error) {
	if !slices.Contains(Rotatable, id) {
		return nil, fmt.Errorf("%s cannot be rotated; rotate one of %v", id, Rotatable)
	}
	old, ok := lk.Certificates[string(id)]
	if !ok {
		return nil, fmt.Errorf("%s is not in the lock yet: render first, which issues it", id)
	}
	if r, rotating := rotation(lk, id); rotating {
		return nil, fmt.Errorf("%s is already rotating, at stage %d (%s): advance it with --next", id, r.Stage, StageName(r.Stage))
	}
	out := lk.Clone()
	out.Certificates[string(id)] = lock.Certificate{Generation: old.Generation + 1, NotBefore: now.Add(-Backdate).UTC().Truncate(time.Second)}
	if out.Rotations == nil {
		out.Rotations = map[string]lock.Rotation{}
	}
	out.Rotations[string(id)] = lock.Rotation{Stage: StageTrustBoth, Previous: old}
	return out, nil
}

// AdvanceRotation returns a copy of lk in which the rotation of id moves to its next
// stage, and that stage (StageRetire ends the rotation: the record goes). The current
// stage must have been rendered.
func AdvanceRotation(lk *lock.Lock, id ID) (*lock.Lock, int, error) {
	r, ok := rotation(lk, id)
	if !ok {
		return nil, 0, fmt.Errorf("%s is not rotating: start its rotation without --next", id)
	}
	if !r.Rendered {
		return nil, 0, fmt.Errorf("stage %d (%s) of the rotation of %s is not rendered yet: render it and deliver it to every node (in the order diff lists), then advance", r.Stage, StageName(r.Stage), id)
	}
	out := lk.Clone()
	if r.Stage == StageReissue {
		delete(out.Rotations, string(id))
		if len(out.Rotations) == 0 {
			out.Rotations = nil
		}
		return out, StageRetire, nil
	}
	out.Rotations[string(id)] = lock.Rotation{Stage: r.Stage + 1, Previous: r.Previous}
	return out, r.Stage + 1, nil
}

// StageName names a rotation stage.
func StageName(stage int) string {
	switch stage {
	case StageTrustBoth:
		return "trust both"
	case StageReissue:
		return "re-issue"
	case StageRetire:
		return "retire"
	}
	return fmt.Sprintf("stage %d", stage)
}

// holdKind is what a holding puts at its path.
type holdKind int

const (
	holdCert        holdKind = iota // the identity's certificate (PEM)
	holdKey                         // the identity's private key (PEM)
	holdKubeconfig                  // a kubeconfig: the cluster CA, the identity's certificate and key, its token
	holdSAPub                       // the service-account public key(s)
	holdKnownTokens                 // known_tokens.csv
	holdSignerCert                  // the certificate of the generation of a CA that signs now
	holdSignerKey                   // its private key
)

// holding is one credential file on a node: what it holds and where.
type holding struct {
	path string
	kind holdKind
	id   ID
	// user and server are a kubeconfig's user and API server URL.
	user, server string
}

// identities returns the identities whose certificate the file carries.
func (h holding) identities() []ID {
	switch h.kind {
	case holdCert, holdSignerCert:
		return []ID{h.id}
	case holdKubeconfig:
		return []ID{CA, h.id}
	}
	return nil
}

// holdings decides which credential files node n holds; certs are the templates
// (templates(c)). Paths may repeat (a CA certificate placed by two roles) with the same
// content; the first one wins.
func holdings(c *model.Cluster, n *model.Node, certs map[ID]Cert) []holding {
	var out []holding
	pair := func(id ID) {
		t := certs[id]
		out = append(out, holding{path: t.CertPath, kind: holdCert, id: id}, holding{path: t.KeyPath, kind: holdKey, id: id})
	}
	endpoint := c.Endpoint.URL()
	kubeletID, kubeletUser := kubeletIdentity(c, n)
	proxyID, proxyUser := proxyIdentity(c)
	out = append(out,
		holding{path: paths.CACert, kind: holdCert, id: CA},
		holding{path: paths.KubeletKubeconfig, kind: holdKubeconfig, id: kubeletID, user: kubeletUser, server: endpoint})
	pair(KubeletServingID(n.Name))
	out = append(out, holding{path: paths.KubeProxyKubeconfig, kind: holdKubeconfig, id: proxyID, user: proxyUser, server: endpoint})
	if n.Etcd() {
		out = append(out, holding{path: paths.EtcdCACert, kind: holdCert, id: EtcdCA})
		pair(EtcdServerID(n.Name))
		pair(EtcdPeerID(n.Name))
		pair(EtcdHealthcheckClient)
	}
	if n.ControlPlane() {
		local := c.LocalAPIServerURL(n)
		if c.RotationStage(string(CA)) > 0 {
			// ca.crt holds two CAs: the controller manager signs with the one that signs now.
			out = append(out,
				holding{path: paths.CASignerCert, kind: holdSignerCert, id: CA},
				holding{path: paths.CASignerKey, kind: holdSignerKey, id: CA})
		} else {
			out = append(out, holding{path: paths.CAKey, kind: holdKey, id: CA}) // the controller manager signs CSRs with it
		}
		out = append(out,
			holding{path: paths.EtcdCACert, kind: holdCert, id: EtcdCA},
			holding{path: paths.FrontProxyCACert, kind: holdCert, id: FrontProxyCA})
		pair(APIServerID(n.Name))
		for _, id := range []ID{APIServerKubeletClient, APIServerEtcdClient, FrontProxyClient} {
			pair(id)
		}
		out = append(out,
			holding{path: paths.SAKey, kind: holdKey, id: SA},
			holding{path: paths.SAPub, kind: holdSAPub, id: SA},
			holding{path: paths.AdminConf, kind: holdKubeconfig, id: Admin, user: AdminUser, server: endpoint},
			holding{path: paths.SuperAdminConf, kind: holdKubeconfig, id: SuperAdmin, user: SuperAdminUser, server: endpoint},
			holding{path: paths.ControllerManagerConf, kind: holdKubeconfig, id: ControllerManager, user: ControllerManagerUsr, server: local},
			holding{path: paths.SchedulerConf, kind: holdKubeconfig, id: Scheduler, user: SchedulerUser, server: local})
		if c.StaticTokens {
			out = append(out, holding{path: paths.KnownTokens, kind: holdKnownTokens})
		}
	}
	return out
}

// adminHolding is the operator's kubeconfig in the bundle's admin/ directory.
func adminHolding(c *model.Cluster) holding {
	return holding{path: paths.AdminKubeconfig, kind: holdKubeconfig, id: Admin, user: AdminUser, server: c.Endpoint.URL()}
}

// kubeletIdentity returns the certificate identity and user a node's kubelet uses.
func kubeletIdentity(c *model.Cluster, n *model.Node) (ID, string) {
	switch c.Credentials {
	case model.CredentialsPerRole:
		return SharedKubelet, SharedKubeletUser
	case model.CredentialsShared:
		return Admin, AdminUser
	}
	return KubeletClientID(n.Name), NodeUserPrefix + n.Name
}

// proxyIdentity returns the certificate identity and user kube-proxy uses.
func proxyIdentity(c *model.Cluster) (ID, string) {
	if c.Credentials == model.CredentialsShared {
		return Admin, AdminUser
	}
	return KubeProxy, KubeProxyUser
}

// CheckLock reports certificate records of lk that cannot be right at time now: a
// NotBefore in the future (a hand edit, or a clock far behind the one that rendered), and
// a leaf whose NotBefore is not before its CA's NotAfter. Problems have Input
// field.InputLock and the record's path.
func CheckLock(c *model.Cluster, lk *lock.Lock, now time.Time) field.List {
	var errs field.List
	if lk == nil {
		return nil
	}
	dates := Schedule(c, lk, now)
	for _, id := range slices.Sorted(maps.Keys(lk.Rotations)) {
		if !slices.Contains(Rotatable, ID(id)) {
			errs.AddIn(field.InputLock, field.Path("rotations").Key(id), "%s cannot be rotating: only %v rotate; restore the lock from version control", id, Rotatable)
		}
	}
	for _, id := range Identities(c) {
		d := dates[id.ID]
		if !d.Issued {
			continue
		}
		p := field.Path("certificates").Key(string(id.ID)).Child("notBefore")
		switch {
		case d.NotBefore.After(now):
			errs.AddIn(field.InputLock, p, "%s is in the future (now %s): certificates would not be valid yet; restore the lock from version control, or delete this entry to issue %s anew",
				d.NotBefore.Format(time.RFC3339), now.UTC().Truncate(time.Second).Format(time.RFC3339), id.ID)
		case id.Kind == KindLeaf && !d.NotBefore.Before(dates[id.Cert.CA].NotAfter):
			errs.AddIn(field.InputLock, p, "%s is not before %s's end (%s): the certificate could never be valid; restore the lock from version control, or renew %s",
				d.NotBefore.Format(time.RFC3339), id.Cert.CA, dates[id.Cert.CA].NotAfter.Format(time.RFC3339), id.Cert.CA)
		}
	}
	lk.Locate(errs)
	return errs
}

// SecretMatchesCA reports whether secret derives the key of ca, the cluster CA
// certificate of cluster at the generation lk records: how a root secret is checked
// against a bundle whose lock has no verifier.
func SecretMatchesCA(cluster string, lk *lock.Lock, secret []byte, ca *x509.Certificate) bool {
	gen := 1
	if r, ok := lk.Certificates[string(CA)]; ok {
		gen = r.Generation
	}
	key, err := pki.DeriveKey(secret, label(cluster, CA, gen))
	if err != nil {
		return false
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(key.Public())
}

// Expiry is one certificate a node holds, with its end: a line of the node's certificate
// list, which the watchdog reads.
type Expiry struct {
	// Path is the file holding it (a certificate file or a kubeconfig).
	Path string
	// Identity is the identity ("ca", "apiserver/cp-1"); the previous generation of a CA
	// rotating is "<ca>/previous".
	Identity string
	NotAfter time.Time
}

// ExpiryTable lists, for every node of one cluster, the certificates the node holds
// under a lock, from one schedule computed once (see Node).
type ExpiryTable struct {
	c     *model.Cluster
	lk    *lock.Lock
	dates map[ID]Dates
	certs map[ID]Cert
}

// NewExpiryTable computes the schedule of c under lk once.
func NewExpiryTable(c *model.Cluster, lk *lock.Lock, now time.Time) *ExpiryTable {
	return &ExpiryTable{c: c, lk: lk, dates: Schedule(c, lk, now), certs: templates(c)}
}

// Node lists the certificates node n holds, sorted by path and identity: every
// certificate file (each CA of a trust file) and the client certificate of every
// kubeconfig. The dates are the schedule's, so no secret is needed. It only reads the
// table, so it is safe for concurrent use.
func (t *ExpiryTable) Node(n *model.Node) []Expiry {
	c, lk, dates := t.c, t.lk, t.dates
	var out []Expiry
	seen := map[string]bool{}
	add := func(p string, id ID, d Dates) {
		e := Expiry{Path: p, Identity: string(id), NotAfter: d.NotAfter.UTC()}
		if key := e.Path + "\x00" + e.Identity; !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	for _, h := range holdings(c, n, t.certs) {
		switch h.kind {
		case holdCert:
			add(h.path, h.id, dates[h.id])
			if prev, ok := Previous(c, lk, h.id); ok && IsCA(h.id) {
				add(h.path, h.id+"/previous", prev)
			}
		case holdSignerCert:
			id := h.id
			if r, ok := rotation(lk, id); ok && r.Stage == StageTrustBoth {
				id += "/previous"
			}
			add(h.path, id, Signer(c, lk, dates, h.id))
		case holdKubeconfig:
			add(h.path, h.id, dates[h.id])
		}
	}
	slices.SortFunc(out, func(a, b Expiry) int {
		if a.Path != b.Path {
			return strings.Compare(a.Path, b.Path)
		}
		return strings.Compare(a.Identity, b.Identity)
	})
	return out
}
