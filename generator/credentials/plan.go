package credentials

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/parallel"
	"github.com/scratchgen/scratchgen/generator/pki"
	"github.com/scratchgen/scratchgen/generator/rootsecret"
)

// Backdate moves a first-issue NotBefore into the past, so that a certificate is valid
// on machines whose clocks run a little behind the one that rendered it (kubeadm: 5m).
const Backdate = 5 * time.Minute

// Options are the inputs that are not in the model.
type Options struct {
	// Secret is the root secret (at least 32 bytes). Without it (nil) the plan is made
	// for review only: certificates still right are reused from the bundle on disk (see
	// Existing), everything else is a pending file (bundle.File.Pending).
	Secret []byte
	// Now is used only for identities the lock has not issued yet; it is recorded in
	// the returned lock, so later renders do not depend on it.
	Now time.Time
	// Existing returns a file of the bundle on disk: a node's file at its node path, or
	// an admin/ file when node is ""; nil when it is absent. Read only without a secret.
	Existing func(node, path string) []byte
}

// Result is the planned credentials.
type Result struct {
	// Nodes maps node name to its credential files (absolute node paths).
	Nodes map[string][]bundle.File
	// Admin holds the operator's files, relative to admin/.
	Admin []bundle.File
	// Lock is the input lock with the certificate records of this PKI (identities no
	// longer rendered are dropped).
	Lock *lock.Lock
	// Certs maps identity ID to its issued certificate, for callers that report on them.
	Certs map[ID]*x509.Certificate
	// Pending lists, without a secret, the identities a render with the secret would
	// issue or re-issue, in Identities order.
	Pending []Pending
}

// Pending is an identity that cannot be reused from the bundle on disk.
type Pending struct {
	ID ID
	// Reason says why: "new", "its SANs change", …
	Reason string
	// Nodes hold it (spec order); Admin when admin/ does.
	Nodes []string
	Admin bool
}

// issued is one certificate with its key.
type issued struct {
	spec    Cert
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

type planner struct {
	c      *model.Cluster
	opts   Options
	in     *lock.Lock
	out    *lock.Lock
	dates  map[ID]Dates
	certs  map[ID]Cert
	issued map[ID]*issued
	// prev holds, for a CA or the service-account key rotating, the generation it
	// replaces (still trusted, and still signing in stage 1).
	prev map[ID]*issued
	// Without a secret: the identities that cannot be reused, with why, and the
	// service-account public key found on disk.
	pending map[ID]string
	// saPub and saPubPrev are the service-account public keys found on disk (PEM): the
	// current one and, during its rotation, the previous one.
	saPub, saPubPrev []byte
	// labels is tokenLabels, computed once.
	labelsOnce sync.Once
	labels     map[string]string
}

// Plan issues every certificate and key the cluster needs and places them.
func Plan(c *model.Cluster, lk *lock.Lock, opts Options) (*Result, error) {
	if opts.Secret == nil {
		return reviewPlan(c, lk, opts)
	}
	if len(opts.Secret) < 32 {
		return nil, fmt.Errorf("planning credentials: the root secret must be at least 32 bytes")
	}
	if lk == nil {
		lk = lock.New(c.Name)
	}
	p := &planner{c: c, opts: opts, in: lk, out: lk.Clone(), issued: map[ID]*issued{}, prev: map[ID]*issued{},
		dates: Schedule(c, lk, opts.Now), certs: templates(c)}
	p.out.Certificates = map[string]lock.Certificate{}
	for id, d := range p.dates {
		p.out.Certificates[string(id)] = lock.Certificate{Generation: d.Generation, Renewal: d.Renewal, NotBefore: d.NotBefore}
	}
	p.markRendered()
	var err error
	if err = p.issueAll(); err != nil {
		return nil, err
	}
	// The lock recognises the secret and every certificate without holding either.
	p.out.RootSecret = &lock.RootSecret{Verifier: rootsecret.Verifier(opts.Secret, c.Name)}
	for id, is := range p.issued {
		r := p.out.Certificates[string(id)]
		if r.SHA256, err = fingerprint(is); err != nil {
			return nil, err
		}
		p.out.Certificates[string(id)] = r
	}
	for id, is := range p.prev {
		r := p.out.Rotations[string(id)]
		if r.Previous.SHA256, err = fingerprint(is); err != nil {
			return nil, err
		}
		p.out.Rotations[string(id)] = r
	}
	return p.place()
}

// markRendered records in the output lock that each rotation in progress has been
// rendered at its stage (what advancing it requires).
func (p *planner) markRendered() {
	for id, r := range p.out.Rotations {
		r.Rendered = true
		p.out.Rotations[id] = r
	}
}

// rotating reports whether id (a CA or SA) is rotating, and at which stage.
func (p *planner) rotating(id ID) (int, bool) {
	r, ok := rotation(p.in, id)
	return r.Stage, ok
}

// signer is the generation of CA (or SA) id that signs now: the previous one in stage 1
// of a rotation.
func (p *planner) signer(id ID) *issued {
	if stage, ok := p.rotating(id); ok && stage == StageTrustBoth {
		return p.prev[id]
	}
	return p.issued[id]
}

// trustPEM is what a file trusting CA id holds: its certificate, or during a rotation
// the previous and the new one (in that order, so the file does not change between
// stages 1 and 2). Nil when a certificate is missing (a review without the secret).
func (p *planner) trustPEM(id ID) []byte {
	cur := p.issued[id]
	if cur == nil {
		return nil
	}
	if _, ok := p.rotating(id); !ok {
		return cur.certPEM
	}
	prev := p.prev[id]
	if prev == nil {
		return nil
	}
	return append(append([]byte(nil), prev.certPEM...), cur.certPEM...)
}

// saPubPEM is sa.pub: the public key, or during a rotation the previous and the new one.
func (p *planner) saPubPEM(cur, prev []byte) []byte {
	if _, ok := p.rotating(SA); !ok {
		return cur
	}
	if cur == nil || prev == nil {
		return nil
	}
	return append(append([]byte(nil), prev...), cur...)
}

// fingerprint is what the lock records of an issued identity: the SHA-256 of its
// certificate's DER, or of its public key's PKIX DER for the key pair.
func fingerprint(is *issued) (string, error) {
	if is.cert != nil {
		return lock.HexSum(sha256.Sum256(is.cert.Raw)), nil
	}
	der, err := x509.MarshalPKIXPublicKey(is.key.Public())
	if err != nil {
		return "", err
	}
	return lock.HexSum(sha256.Sum256(der)), nil
}

func (p *planner) label(id ID, gen int) string { return label(p.c.Name, id, gen) }

// label is the derivation label of identity id's key (and token) in generation gen.
func label(cluster string, id ID, gen int) string {
	return fmt.Sprintf("scratchgen/v1/%s/%s/%d", cluster, id, gen)
}

// issueCA issues generation d of CA ca.
func (p *planner) issueCA(ca Cert, d Dates) (*issued, error) {
	key, err := pki.DeriveKey(p.opts.Secret, p.label(ca.ID, d.Generation))
	if err != nil {
		return nil, fmt.Errorf("deriving the key of %s: %w", ca.ID, err)
	}
	cert, certPEM, err := pki.NewCA(key, pki.Request{CommonName: ca.CN, NotBefore: d.NotBefore,
		NotAfter: d.NotAfter, Serial: Serial(p.c.Name, ca.ID, d)})
	if err != nil {
		return nil, fmt.Errorf("issuing CA %s: %w", ca.ID, err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &issued{spec: ca, cert: cert, certPEM: certPEM, key: key, keyPEM: keyPEM}, nil
}

// issueSA derives generation gen of the service-account key pair (no certificate).
func (p *planner) issueSA(gen int) (*issued, error) {
	key, err := pki.DeriveKey(p.opts.Secret, p.label(SA, gen))
	if err != nil {
		return nil, fmt.Errorf("deriving the service-account key: %w", err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &issued{spec: Cert{ID: SA}, key: key, keyPEM: keyPEM}, nil
}

func (p *planner) issueAll() error {
	var err error
	issuers := map[ID]*pki.Issuer{}
	for _, ca := range cas {
		if p.issued[ca.ID], err = p.issueCA(ca, p.dates[ca.ID]); err != nil {
			return err
		}
		if prev, ok := Previous(p.c, p.in, ca.ID); ok {
			if p.prev[ca.ID], err = p.issueCA(ca, prev); err != nil {
				return err
			}
		}
		s := p.signer(ca.ID)
		if issuers[ca.ID], err = pki.NewIssuer(s.cert, s.key); err != nil {
			return fmt.Errorf("CA %s: %w", ca.ID, err)
		}
	}
	// The service-account key pair has no certificate but a generation, for rotation.
	if p.issued[SA], err = p.issueSA(p.dates[SA].Generation); err != nil {
		return err
	}
	if prev, ok := Previous(p.c, p.in, SA); ok {
		if p.prev[SA], err = p.issueSA(prev.Generation); err != nil {
			return err
		}
	}

	leaves := leaves(p.c)
	results := make([]*issued, len(leaves))
	err = parallel.Do(len(leaves), func(i int) error {
		var err error
		if results[i], err = p.issueLeaf(issuers[leaves[i].CA], leaves[i], p.dates[leaves[i].ID]); err != nil {
			return fmt.Errorf("issuing %s: %w", leaves[i].ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, l := range leaves {
		p.issued[l.ID] = results[i]
	}
	return nil
}

func (p *planner) issueLeaf(ca *pki.Issuer, l Cert, d Dates) (*issued, error) {
	key, err := pki.DeriveKey(p.opts.Secret, p.label(l.ID, d.Generation))
	if err != nil {
		return nil, err
	}
	req := pki.Request{CommonName: l.CN, Organization: l.O, DNSNames: l.DNS, Usages: l.Usages,
		NotBefore: d.NotBefore, NotAfter: d.NotAfter, Serial: Serial(p.c.Name, l.ID, d)}
	for _, a := range l.IPs {
		req.IPs = append(req.IPs, net.IP(a.AsSlice()))
	}
	cert, certPEM, err := ca.Sign(key, req)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &issued{spec: l, cert: cert, certPEM: certPEM, key: key, keyPEM: keyPEM}, nil
}

// place decides which node gets which file (see holdings).
func (p *planner) place() (*Result, error) {
	res := &Result{Nodes: map[string][]bundle.File{}, Lock: p.out, Certs: map[ID]*x509.Certificate{}}
	for id, is := range p.issued {
		if is.cert != nil {
			res.Certs[id] = is.cert
		}
	}
	tokens := p.tokens()
	nodeFiles := make([][]bundle.File, len(p.c.Nodes))
	err := parallel.Do(len(p.c.Nodes), func(i int) error {
		var err error
		nodeFiles[i], err = p.files(holdings(p.c, p.c.Nodes[i], p.certs), tokens)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, n := range p.c.Nodes {
		res.Nodes[n.Name] = nodeFiles[i]
	}
	admin, err := p.files([]holding{adminHolding(p.c)}, tokens)
	if err != nil {
		return nil, err
	}
	res.Admin = admin
	return res, nil
}

// files renders holdings as files, each path once, sorted by path.
func (p *planner) files(hs []holding, tokens map[string]string) ([]bundle.File, error) {
	seen := map[string]bool{}
	var files []bundle.File
	for _, h := range hs {
		if seen[h.path] {
			continue // the same file placed by two roles
		}
		seen[h.path] = true
		if p.opts.Secret == nil {
			files = append(files, p.reviewFile(h))
			continue
		}
		switch h.kind {
		case holdCert:
			if IsCA(h.id) {
				files = append(files, public(h.path, p.trustPEM(h.id)))
			} else {
				files = append(files, public(h.path, p.issued[h.id].certPEM))
			}
		case holdKey:
			if h.id == SA {
				files = append(files, p.versioned(h, p.signer(SA).keyPEM)) // the key that signs tokens now
			} else {
				files = append(files, p.versioned(h, p.issued[h.id].keyPEM))
			}
		case holdSignerCert:
			files = append(files, public(h.path, p.signer(h.id).certPEM))
		case holdSignerKey:
			files = append(files, p.versioned(h, p.signer(h.id).keyPEM))
		case holdSAPub:
			cur, err := pki.EncodePublicKey(p.issued[SA].key.Public())
			if err != nil {
				return nil, err
			}
			var prev []byte
			if is := p.prev[SA]; is != nil {
				if prev, err = pki.EncodePublicKey(is.key.Public()); err != nil {
					return nil, err
				}
			}
			files = append(files, public(h.path, p.saPubPEM(cur, prev)))
		case holdKubeconfig:
			is, ok := p.issued[h.id]
			if !ok {
				return nil, fmt.Errorf("kubeconfig for %s: identity %s was not issued", h.user, h.id)
			}
			data, err := p.kubeconfig(h.server, h.user, p.trustPEM(CA), is.certPEM, is.keyPEM, tokens[h.user])
			if err != nil {
				return nil, err
			}
			files = append(files, p.versioned(h, data))
		case holdKnownTokens:
			csv, err := p.knownTokens(tokens)
			if err != nil {
				return nil, err
			}
			files = append(files, p.versioned(h, csv))
		}
	}
	bundle.Sort(files)
	return files, nil
}

// reviewFile is a holding's file without the secret: a reused certificate or public
// key, or a pending file.
func (p *planner) reviewFile(h holding) bundle.File {
	pending := func(id ID) bundle.File {
		return bundle.File{Path: h.path, Mode: bundle.ModePublic, Pending: issueVerb(p.pending[id]) + ": " + p.pending[id]}
	}
	switch h.kind {
	case holdCert:
		if IsCA(h.id) {
			if data := p.trustPEM(h.id); data != nil {
				return public(h.path, data)
			}
		} else if is := p.issued[h.id]; is != nil {
			return public(h.path, is.certPEM)
		}
		return pending(h.id)
	case holdSignerCert:
		if is := p.signer(h.id); is != nil {
			return public(h.path, is.certPEM)
		}
		return pending(h.id)
	case holdSAPub:
		if data := p.saPubPEM(p.saPub, p.saPubPrev); data != nil {
			return public(h.path, data)
		}
		return pending(SA)
	}
	f := bundle.File{Path: h.path, Mode: bundle.ModeSecret, Secret: true, Pending: needsSecret}
	f.Version, _ = p.version(h)
	return f
}

// versioned is a secret file of holding h with its Version.
func (p *planner) versioned(h holding, data []byte) bundle.File {
	f := secretFile(h.path, data)
	f.Version, _ = p.version(h)
	return f
}

// version is the Version of the secret file of holding h (see bundle.File.Version): a
// digest of its content with every key and token replaced by its derivation label, and
// the root secret's verifier. ok is false when it cannot be known (a review in which a
// certificate the file embeds would be re-issued).
func (p *planner) version(h holding) (string, bool) {
	verifier := ""
	if rs := p.out.RootSecret; rs != nil {
		verifier = rs.Verifier
	} else if rs := p.in.RootSecret; rs != nil {
		verifier = rs.Verifier
	}
	var shadow []byte
	switch h.kind {
	case holdKey, holdSignerKey:
		shadow = []byte("key " + p.keyLabel(h))
	case holdKubeconfig:
		trust, is := p.trustPEM(CA), p.issued[h.id]
		if trust == nil || is == nil || is.certPEM == nil {
			return "", false
		}
		var err error
		key := []byte("key " + p.label(h.id, p.dates[h.id].Generation))
		if shadow, err = p.kubeconfig(h.server, h.user, trust, is.certPEM, key, p.tokenLabels()[h.user]); err != nil {
			return "", false
		}
	case holdKnownTokens:
		var err error
		if shadow, err = p.knownTokens(p.tokenLabels()); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	sum := sha256.Sum256(append([]byte("scratchgen/v1 version\x00"+verifier+"\x00"), shadow...))
	return "sha256:" + lock.HexSum(sum), true
}

// keyLabel is the derivation label of the key a key holding places.
func (p *planner) keyLabel(h holding) string {
	gen := p.dates[h.id].Generation
	if h.kind == holdSignerKey || h.id == SA {
		if stage, ok := p.rotating(h.id); ok && stage == StageTrustBoth {
			prev, _ := Previous(p.c, p.in, h.id)
			gen = prev.Generation
		}
	}
	return p.label(h.id, gen)
}

// tokenLabels maps each static token user to the derivation label of its token. It is
// computed once (every kubeconfig's version asks for it, from parallel goroutines).
func (p *planner) tokenLabels() map[string]string {
	p.labelsOnce.Do(func() { p.labels = p.computeTokenLabels() })
	return p.labels
}

func (p *planner) computeTokenLabels() map[string]string {
	out := map[string]string{}
	for _, u := range p.tokenUsers() {
		out[u.user] = "token " + p.label(tokenID(u.id), p.dates[u.id].Generation)
	}
	return out
}

// issueVerb is how a pending certificate file comes about.
func issueVerb(reason string) string {
	if reason == "new" {
		return "would be issued"
	}
	return "would be re-issued"
}

// tokenUser is one line of known_tokens.csv.
type tokenUser struct {
	user   string
	groups []string
	id     ID // the identity whose generation rotates the token
}

func (p *planner) tokenUsers() []tokenUser {
	if !p.c.StaticTokens {
		return nil
	}
	users := []tokenUser{{user: AdminUser, groups: []string{AdminGroup}, id: Admin}}
	switch p.c.Credentials {
	case model.CredentialsPerNode:
		for _, n := range p.c.Nodes {
			users = append(users, tokenUser{user: NodeUserPrefix + n.Name, groups: []string{NodesGroup}, id: KubeletClientID(n.Name)})
		}
	case model.CredentialsPerRole:
		users = append(users, tokenUser{user: SharedKubeletUser, groups: []string{NodesGroup}, id: SharedKubelet})
	}
	if p.c.Credentials != model.CredentialsShared {
		users = append(users, tokenUser{user: KubeProxyUser, id: KubeProxy})
	}
	return users
}

// tokens derives each static token from the root secret and its identity's generation.
func (p *planner) tokens() map[string]string {
	out := map[string]string{}
	if p.opts.Secret == nil {
		return out // review: token files are pending
	}
	for _, u := range p.tokenUsers() {
		gen := p.dates[u.id].Generation
		out[u.user] = pki.DeriveToken(p.opts.Secret, p.label(tokenID(u.id), gen))
	}
	return out
}

// knownTokens renders known_tokens.csv: token,user,uid,"group1,group2".
func (p *planner) knownTokens(tokens map[string]string) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, u := range p.tokenUsers() {
		rec := []string{tokens[u.user], u.user, u.user}
		if len(u.groups) > 0 {
			g := append([]string(nil), u.groups...)
			sort.Strings(g)
			rec = append(rec, joinComma(g))
		}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

func public(path string, data []byte) bundle.File {
	return bundle.File{Path: path, Mode: bundle.ModePublic, Data: data}
}

func secretFile(path string, data []byte) bundle.File {
	return bundle.File{Path: path, Mode: bundle.ModeSecret, Data: data, Secret: true}
}
