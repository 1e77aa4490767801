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
	// Without a secret: the identities that cannot be reused, with why, and the
	// service-account public key found on disk.
	pending  map[ID]string
	saPubPEM []byte
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
	p := &planner{c: c, opts: opts, in: lk, out: lk.Clone(), issued: map[ID]*issued{},
		dates: Schedule(c, lk, opts.Now), certs: templates(c)}
	p.out.Certificates = map[string]lock.Certificate{}
	for id, d := range p.dates {
		p.out.Certificates[string(id)] = lock.Certificate{Generation: d.Generation, NotBefore: d.NotBefore}
	}
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
	return p.place()
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

func (p *planner) issueAll() error {
	issuers := map[ID]*pki.Issuer{}
	for _, ca := range cas {
		d := p.dates[ca.ID]
		key, err := pki.DeriveKey(p.opts.Secret, p.label(ca.ID, d.Generation))
		if err != nil {
			return fmt.Errorf("deriving the key of %s: %w", ca.ID, err)
		}
		cert, certPEM, err := pki.NewCA(key, pki.Request{CommonName: ca.CN, NotBefore: d.NotBefore,
			NotAfter: d.NotAfter, Serial: pki.DeriveSerial(p.c.Name+"/"+string(ca.ID), d.Generation)})
		if err != nil {
			return fmt.Errorf("issuing CA %s: %w", ca.ID, err)
		}
		keyPEM, err := pki.EncodeKey(key)
		if err != nil {
			return err
		}
		p.issued[ca.ID] = &issued{spec: ca, cert: cert, certPEM: certPEM, key: key, keyPEM: keyPEM}
		if issuers[ca.ID], err = pki.NewIssuer(cert, key); err != nil {
			return fmt.Errorf("CA %s: %w", ca.ID, err)
		}
	}
	// The service-account key pair has no certificate but a generation, for renewal.
	saKey, err := pki.DeriveKey(p.opts.Secret, p.label(SA, p.dates[SA].Generation))
	if err != nil {
		return fmt.Errorf("deriving the service-account key: %w", err)
	}
	saPEM, err := pki.EncodeKey(saKey)
	if err != nil {
		return err
	}
	p.issued[SA] = &issued{spec: Cert{ID: SA}, key: saKey, keyPEM: saPEM}

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
		NotBefore: d.NotBefore, NotAfter: d.NotAfter, Serial: pki.DeriveSerial(p.c.Name+"/"+string(l.ID), d.Generation)}
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
			files = append(files, public(h.path, p.issued[h.id].certPEM))
		case holdKey:
			files = append(files, secretFile(h.path, p.issued[h.id].keyPEM))
		case holdSAPub:
			pub, err := pki.EncodePublicKey(p.issued[SA].key.Public())
			if err != nil {
				return nil, err
			}
			files = append(files, public(h.path, pub))
		case holdKubeconfig:
			data, err := p.kubeconfig(h.server, h.id, h.user, tokens[h.user])
			if err != nil {
				return nil, err
			}
			files = append(files, secretFile(h.path, data))
		case holdKnownTokens:
			csv, err := p.knownTokens(tokens)
			if err != nil {
				return nil, err
			}
			files = append(files, secretFile(h.path, csv))
		}
	}
	bundle.Sort(files)
	return files, nil
}

// reviewFile is a holding's file without the secret: a reused certificate or public
// key, or a pending file.
func (p *planner) reviewFile(h holding) bundle.File {
	switch h.kind {
	case holdCert:
		if is := p.issued[h.id]; is != nil {
			return public(h.path, is.certPEM)
		}
		return bundle.File{Path: h.path, Mode: bundle.ModePublic, Pending: issueVerb(p.pending[h.id]) + ": " + p.pending[h.id]}
	case holdSAPub:
		if p.saPubPEM != nil {
			return public(h.path, p.saPubPEM)
		}
		return bundle.File{Path: h.path, Mode: bundle.ModePublic, Pending: issueVerb(p.pending[SA]) + ": " + p.pending[SA]}
	}
	return bundle.File{Path: h.path, Mode: bundle.ModeSecret, Secret: true, Pending: needsSecret}
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
