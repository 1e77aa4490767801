package credentials

import (
	"bytes"
	"crypto/ecdsa"
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
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// Backdate moves a first-issue NotBefore into the past, so that a certificate is valid
// on machines whose clocks run a little behind the one that rendered it (kubeadm: 5m).
const Backdate = 5 * time.Minute

// Options are the inputs that are not in the model.
type Options struct {
	// Secret is the root secret (at least 32 bytes).
	Secret []byte
	// Now is used only for identities the lock has not issued yet; it is recorded in
	// the returned lock, so later renders do not depend on it.
	Now time.Time
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
	Certs map[string]*x509.Certificate
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
	issued map[string]*issued
}

// Plan issues every certificate and key the cluster needs and places them.
func Plan(c *model.Cluster, lk *lock.Lock, opts Options) (*Result, error) {
	if len(opts.Secret) < 32 {
		return nil, fmt.Errorf("planning credentials: the root secret must be at least 32 bytes")
	}
	if lk == nil {
		lk = lock.New(c.Name)
	}
	p := &planner{c: c, opts: opts, in: lk, out: lk.Clone(), issued: map[string]*issued{}}
	p.out.Certificates = map[string]lock.Certificate{}
	if err := p.issueAll(); err != nil {
		return nil, err
	}
	return p.place()
}

// record returns the lock record of id, creating it for a first issue.
func (p *planner) record(id string) lock.Certificate {
	r, ok := p.in.Certificates[id]
	if !ok {
		r = lock.Certificate{Generation: 1, NotBefore: p.opts.Now.Add(-Backdate).UTC().Truncate(time.Second)}
	}
	return r
}

func (p *planner) label(id string, gen int) string {
	return fmt.Sprintf("scratchgen/v1/%s/%s/%d", p.c.Name, id, gen)
}

// leaves lists every leaf identity the cluster needs, in a fixed order.
func (p *planner) leaves() []Cert {
	var out []Cert
	for _, l := range clusterLeaves {
		if l.ID == "kubelet" && p.c.Credentials != model.CredentialsPerRole {
			continue
		}
		out = append(out, l)
	}
	for _, n := range p.c.Nodes {
		if n.ControlPlane() {
			out = append(out, apiServerCert(p.c, n))
		}
		if n.Etcd() {
			out = append(out, etcdCerts(n)...)
		}
		out = append(out, kubeletServingCert(n))
		if p.c.Credentials == model.CredentialsPerNode {
			out = append(out, kubeletClientCert(n))
		}
	}
	return out
}

func (p *planner) issueAll() error {
	issuers := map[string]*pki.Issuer{}
	for _, ca := range cas {
		r := p.record(ca.ID)
		p.out.Certificates[ca.ID] = r
		key, err := pki.DeriveKey(p.opts.Secret, p.label(ca.ID, r.Generation))
		if err != nil {
			return fmt.Errorf("deriving the key of %s: %w", ca.ID, err)
		}
		cert, certPEM, err := pki.NewCA(key, pki.Request{CommonName: ca.CN, NotBefore: r.NotBefore,
			NotAfter: r.NotBefore.Add(p.c.CAValidity), Serial: pki.DeriveSerial(p.c.Name+"/"+ca.ID, r.Generation)})
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
	saRec := p.record(SA)
	p.out.Certificates[SA] = saRec
	saKey, err := pki.DeriveKey(p.opts.Secret, p.label(SA, saRec.Generation))
	if err != nil {
		return fmt.Errorf("deriving the service-account key: %w", err)
	}
	saPEM, err := pki.EncodeKey(saKey)
	if err != nil {
		return err
	}
	p.issued[SA] = &issued{spec: Cert{ID: SA}, key: saKey, keyPEM: saPEM}

	leaves := p.leaves()
	recs := make([]lock.Certificate, len(leaves))
	for i, l := range leaves {
		recs[i] = p.record(l.ID)
		p.out.Certificates[l.ID] = recs[i]
	}
	results := make([]*issued, len(leaves))
	err = parallel.Do(len(leaves), func(i int) error {
		var err error
		if results[i], err = p.issueLeaf(issuers[leaves[i].CA], leaves[i], recs[i]); err != nil {
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

func (p *planner) issueLeaf(ca *pki.Issuer, l Cert, r lock.Certificate) (*issued, error) {
	key, err := pki.DeriveKey(p.opts.Secret, p.label(l.ID, r.Generation))
	if err != nil {
		return nil, err
	}
	notAfter := r.NotBefore.Add(p.c.CertValidity)
	if caEnd := ca.Certificate().NotAfter; notAfter.After(caEnd) {
		notAfter = caEnd // never outlive the CA
	}
	req := pki.Request{CommonName: l.CN, Organization: l.O, DNSNames: l.DNS, Usages: l.Usages,
		NotBefore: r.NotBefore, NotAfter: notAfter, Serial: pki.DeriveSerial(p.c.Name+"/"+l.ID, r.Generation)}
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

// place decides which node gets which file.
func (p *planner) place() (*Result, error) {
	res := &Result{Nodes: map[string][]bundle.File{}, Lock: p.out, Certs: map[string]*x509.Certificate{}}
	for id, is := range p.issued {
		if is.cert != nil {
			res.Certs[id] = is.cert
		}
	}
	tokens := p.tokens()
	nodeFiles := make([][]bundle.File, len(p.c.Nodes))
	err := parallel.Do(len(p.c.Nodes), func(i int) error {
		var err error
		nodeFiles[i], err = p.nodeFiles(p.c.Nodes[i], tokens)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, n := range p.c.Nodes {
		res.Nodes[n.Name] = nodeFiles[i]
	}
	admin, err := p.kubeconfig(p.c.Endpoint.URL(), "admin", AdminUser, tokens[AdminUser])
	if err != nil {
		return nil, err
	}
	res.Admin = []bundle.File{secretFile(paths.AdminKubeconfig, admin)}
	return res, nil
}

// nodeFiles places the credentials of one node.
func (p *planner) nodeFiles(n *model.Node, tokens map[string]string) ([]bundle.File, error) {
	ca := p.issued[CA]
	var files []bundle.File
	add := func(fs ...bundle.File) { files = append(files, fs...) }
	add(public(paths.CACert, ca.certPEM))
	kubeletID, kubeletUser := p.kubeletIdentity(n)
	kc, err := p.kubeconfig(p.c.Endpoint.URL(), kubeletID, kubeletUser, tokens[kubeletUser])
	if err != nil {
		return nil, err
	}
	add(secretFile(paths.KubeletKubeconfig, kc))
	add(p.pair(kubeletServingCert(n).ID)...)
	proxyID, proxyUser := p.proxyIdentity()
	if kc, err = p.kubeconfig(p.c.Endpoint.URL(), proxyID, proxyUser, tokens[proxyUser]); err != nil {
		return nil, err
	}
	add(secretFile(paths.KubeProxyKubeconfig, kc))
	if n.Etcd() {
		add(public(paths.EtcdCACert, p.issued[EtcdCA].certPEM))
		add(p.pair("etcd-server/" + n.Name)...)
		add(p.pair("etcd-peer/" + n.Name)...)
		add(p.pair("etcd-healthcheck-client")...)
	}
	if n.ControlPlane() {
		fs, err := p.controlPlane(n, tokens)
		if err != nil {
			return nil, err
		}
		add(fs...)
	}
	return dedupFiles(files), nil
}

func (p *planner) controlPlane(n *model.Node, tokens map[string]string) ([]bundle.File, error) {
	local := p.c.LocalAPIServerURL(n)
	files := []bundle.File{
		secretFile(paths.CAKey, p.issued[CA].keyPEM), // the controller manager signs CSRs with it
		public(paths.EtcdCACert, p.issued[EtcdCA].certPEM),
		public(paths.FrontProxyCACert, p.issued[FrontProxyCA].certPEM),
	}
	files = append(files, p.pair("apiserver/"+n.Name)...)
	for _, id := range []string{"apiserver-kubelet-client", "apiserver-etcd-client", "front-proxy-client"} {
		files = append(files, p.pair(id)...)
	}
	sa := p.issued[SA]
	saPub, err := pki.EncodePublicKey(sa.key.Public())
	if err != nil {
		return nil, err
	}
	files = append(files, secretFile(paths.SAKey, sa.keyPEM), public(paths.SAPub, saPub))
	for _, kc := range []struct{ path, id, user, server string }{
		{paths.AdminConf, "admin", AdminUser, p.c.Endpoint.URL()},
		{paths.SuperAdminConf, "super-admin", SuperAdminUser, p.c.Endpoint.URL()},
		{paths.ControllerManagerConf, "controller-manager", ControllerManagerUsr, local},
		{paths.SchedulerConf, "scheduler", SchedulerUser, local},
	} {
		data, err := p.kubeconfig(kc.server, kc.id, kc.user, tokens[kc.user])
		if err != nil {
			return nil, err
		}
		files = append(files, secretFile(kc.path, data))
	}
	if p.c.StaticTokens {
		csv, err := p.knownTokens(tokens)
		if err != nil {
			return nil, err
		}
		files = append(files, secretFile(paths.KnownTokens, csv))
	}
	return files, nil
}

// kubeletIdentity returns the certificate identity and user a node's kubelet uses.
func (p *planner) kubeletIdentity(n *model.Node) (id, user string) {
	switch p.c.Credentials {
	case model.CredentialsPerRole:
		return "kubelet", SharedKubeletUser
	case model.CredentialsShared:
		return "admin", AdminUser
	}
	return "kubelet-client/" + n.Name, NodeUserPrefix + n.Name
}

func (p *planner) proxyIdentity() (id, user string) {
	if p.c.Credentials == model.CredentialsShared {
		return "admin", AdminUser
	}
	return "kube-proxy", KubeProxyUser
}

// tokenUser is one line of known_tokens.csv.
type tokenUser struct {
	user   string
	groups []string
	id     string // the identity whose generation rotates the token
}

func (p *planner) tokenUsers() []tokenUser {
	if !p.c.StaticTokens {
		return nil
	}
	users := []tokenUser{{user: AdminUser, groups: []string{AdminGroup}, id: "admin"}}
	switch p.c.Credentials {
	case model.CredentialsPerNode:
		for _, n := range p.c.Nodes {
			users = append(users, tokenUser{user: NodeUserPrefix + n.Name, groups: []string{NodesGroup}, id: "kubelet-client/" + n.Name})
		}
	case model.CredentialsPerRole:
		users = append(users, tokenUser{user: SharedKubeletUser, groups: []string{NodesGroup}, id: "kubelet"})
	}
	if p.c.Credentials != model.CredentialsShared {
		users = append(users, tokenUser{user: KubeProxyUser, id: "kube-proxy"})
	}
	return users
}

// tokens derives each static token from the root secret and its identity's generation.
func (p *planner) tokens() map[string]string {
	out := map[string]string{}
	for _, u := range p.tokenUsers() {
		gen := p.out.Certificates[u.id].Generation
		out[u.user] = pki.DeriveToken(p.opts.Secret, p.label("token/"+u.id, gen))
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

// pair returns an identity's certificate and key files at their table paths.
func (p *planner) pair(id string) []bundle.File {
	is := p.issued[id]
	return []bundle.File{public(is.spec.CertPath, is.certPEM), secretFile(is.spec.KeyPath, is.keyPEM)}
}

func public(path string, data []byte) bundle.File {
	return bundle.File{Path: path, Mode: bundle.ModePublic, Data: data}
}

func secretFile(path string, data []byte) bundle.File {
	return bundle.File{Path: path, Mode: bundle.ModeSecret, Data: data, Secret: true}
}

// dedupFiles drops repeated paths (a CA certificate placed by two roles); the content
// is the same by construction.
func dedupFiles(files []bundle.File) []bundle.File {
	seen := map[string]bool{}
	var out []bundle.File
	for _, f := range files {
		if !seen[f.Path] {
			seen[f.Path] = true
			out = append(out, f)
		}
	}
	bundle.Sort(out)
	return out
}
