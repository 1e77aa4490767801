package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// CA names, as the credentials table calls them.
const (
	caCluster    = "ca"
	caEtcd       = "etcd-ca"
	caFrontProxy = "front-proxy-ca"
)

// caSpec is one certificate authority: where nodes keep it and what it is called.
type caSpec struct {
	name, path, desc string
}

// caTable lists the cluster's three CAs.
var caTable = []caSpec{
	{caCluster, paths.CACert, "the cluster CA"},
	{caEtcd, paths.EtcdCACert, "the etcd CA"},
	{caFrontProxy, paths.FrontProxyCACert, "the front-proxy CA"},
}

// caCert is a CA as most nodes carry it: one certificate, or two while it rotates (the
// old and the new generation, both trusted).
type caCert struct {
	spec  caSpec
	certs []*x509.Certificate
}

// signer returns the certificate of the CA that signed c, or nil.
func (ca *caCert) signer(c *x509.Certificate) *x509.Certificate {
	for _, s := range ca.certs {
		if bytes.Equal(c.RawIssuer, s.RawSubject) && c.CheckSignatureFrom(s) == nil {
			return s
		}
	}
	return nil
}

// same reports whether certs are exactly the CA's certificates, in order.
func (ca *caCert) same(certs []*x509.Certificate) bool {
	if len(certs) != len(ca.certs) {
		return false
	}
	for i := range certs {
		if !bytes.Equal(certs[i].Raw, ca.certs[i].Raw) {
			return false
		}
	}
	return true
}

// maxTrusted is how many certificates a CA file may hold: two while a CA rotates.
const maxTrusted = 2

// role is what a leaf certificate is used for.
type role int

const (
	serving role = 1 << iota
	client
)

// leafSpec is a leaf certificate the credentials table places at a fixed node path.
type leafSpec struct {
	path string
	ca   string
	role role
	// why says who uses the certificate for what, for messages ("kube-apiserver serves TLS with it").
	why string
}

// leafTable lists the leaves at fixed paths and their CAs and roles
// (generator/credentials/table.go).
var leafTable = []leafSpec{
	{paths.APIServerCert, caCluster, serving, "kube-apiserver serves TLS with it"},
	{paths.APIServerKubeletClientCert, caCluster, client, "kube-apiserver authenticates to kubelets with it"},
	{paths.APIServerEtcdClientCert, caEtcd, client, "kube-apiserver authenticates to etcd with it"},
	{paths.FrontProxyClientCert, caFrontProxy, client, "kube-apiserver authenticates to aggregated API servers with it"},
	{paths.EtcdServerCert, caEtcd, serving, "etcd serves its clients with it"},
	{paths.EtcdPeerCert, caEtcd, serving | client, "etcd members connect to each other with it, as server and as client"},
	{paths.EtcdHealthcheckClientCert, caEtcd, client, "health checks authenticate to etcd with it"},
	{paths.KubeletServingCert, caCluster, serving, "the kubelet serves TLS with it"},
}

// certAt parses the certificate at a node path, reporting a file that is not one
// (once). It returns nil when the file is missing or unparsable.
func (b *checker) certAt(n *node, p string) *x509.Certificate {
	f := n.file(p)
	if f == nil {
		return nil
	}
	return b.parseCertFile(n.rel(p), f.data)
}

func (b *checker) parseCertFile(rel string, data []byte) *x509.Certificate {
	if c, ok := b.certCache[rel]; ok {
		return c
	}
	if b.certCache == nil {
		b.certCache = map[string]*x509.Certificate{}
	}
	c, err := parseCert(data)
	if err != nil {
		b.problemf(rel, "is not a PEM certificate: %v", err)
	}
	b.certCache[rel] = c
	return c
}

// parseCert parses the first PEM certificate of data.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("PEM block is %q, not CERTIFICATE", block.Type)
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseCerts parses every PEM block of data, which must all be certificates.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; len(bytes.TrimSpace(rest)) > 0; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, errors.New("data after the PEM blocks is not PEM")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block is %q, not CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM block")
	}
	return out, nil
}

// trustAt parses a CA file of node n: its certificates, at most maxTrusted, reporting a
// file that is not one. Nil when missing or unparsable.
func (b *checker) trustAt(n *node, p string) []*x509.Certificate {
	f := n.file(p)
	if f == nil {
		return nil
	}
	certs, err := parseCerts(f.data)
	if err != nil {
		b.problemf(n.rel(p), "is not a PEM certificate bundle: %v", err)
		return nil
	}
	if len(certs) > maxTrusted {
		b.problemf(n.rel(p), "holds %d certificates: a CA file holds its CA, or the old and the new one while it rotates", len(certs))
	}
	return certs
}

// rawOf is the concatenated DER of certs, a map key.
func rawOf(certs []*x509.Certificate) string {
	var b bytes.Buffer
	for _, c := range certs {
		b.Write(c.Raw)
	}
	return b.String()
}

// parseKey parses a PEM private key (SEC 1, PKCS #8 or PKCS #1).
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return s, nil
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case *rsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}

// describe names a certificate for messages: its subject and serial.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("CN=%s", c.Subject.CommonName)
}

// describeAll names certificates for messages.
func describeAll(cs []*x509.Certificate) string {
	var names []string
	for _, c := range cs {
		names = append(names, describe(c))
	}
	return strings.Join(names, " + ")
}

// checkCAs finds each CA's certificate as most nodes carry it, reports the nodes whose
// copy differs, and checks the CA certificates themselves.
func (b *checker) checkCAs() {
	b.cas = map[string]*caCert{}
	for _, spec := range caTable {
		type copyOf struct {
			rel   string
			certs []*x509.Certificate
		}
		var copies []copyOf
		count := map[string]int{}
		for _, n := range b.nodes {
			if cs := b.trustAt(n, spec.path); cs != nil {
				copies = append(copies, copyOf{n.rel(spec.path), cs})
				count[rawOf(cs)]++
			}
		}
		if len(copies) == 0 {
			continue
		}
		// The reference is the copy most nodes carry; on a tie, the first node's.
		ref := copies[0]
		for _, c := range copies {
			if count[rawOf(c.certs)] > count[rawOf(ref.certs)] {
				ref = c
			}
		}
		b.cas[spec.name] = &caCert{spec: spec, certs: ref.certs}
		for _, c := range copies {
			if rawOf(c.certs) != rawOf(ref.certs) {
				b.problemf(c.rel, "differs from %s that %d other node(s) carry (e.g. %s): nodes must agree on their CAs", spec.desc, count[rawOf(ref.certs)], ref.rel)
			}
		}
		checked := map[string]bool{}
		for _, c := range copies {
			for _, cert := range c.certs {
				if !checked[string(cert.Raw)] { // each distinct certificate once
					checked[string(cert.Raw)] = true
					b.checkCA(c.rel, spec, cert)
				}
			}
		}
	}
	if len(b.nodes) > 0 && b.cas[caCluster] == nil {
		b.problemf(".", "no node carries %s (%s)", caTable[0].desc, paths.CACert)
	}
}

// checkCA checks a CA certificate: CA:true, certSign, self-signed, valid.
func (b *checker) checkCA(rel string, spec caSpec, c *x509.Certificate) {
	if !c.BasicConstraintsValid || !c.IsCA {
		b.problemf(rel, "is not a CA certificate (basicConstraints CA:false), but it is %s", spec.desc)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		b.problemf(rel, "lacks the keyCertSign usage, so it cannot sign certificates as %s", spec.desc)
	}
	if err := c.CheckSignatureFrom(c); err != nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
		b.problemf(rel, "is not self-signed (issuer %s), but it is %s, a root", c.Issuer, spec.desc)
	}
	b.checkValidity(rel, "", c, nil)
}

// checkValidity checks that c is valid at the verification time and ends no later than
// its CA.
func (b *checker) checkValidity(rel, pre string, c, ca *x509.Certificate) {
	at := b.opts.At
	if at.Before(c.NotBefore) {
		b.problemf(rel, "%sis not valid before %s (checked at %s)", pre, stamp(c.NotBefore), stamp(at))
	}
	if at.After(c.NotAfter) {
		b.problemf(rel, "%sexpired on %s (checked at %s)", pre, stamp(c.NotAfter), stamp(at))
	}
	if ca != nil && c.NotAfter.After(ca.NotAfter) {
		b.problemf(rel, "%soutlives its CA: notAfter %s is after the CA's %s", pre, stamp(c.NotAfter), stamp(ca.NotAfter))
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkLeafAs checks a leaf certificate: signed by its CA, a leaf, the usages of its
// role, valid within its CA's lifetime. pre starts every message ("" for a certificate
// file, "client-certificate-data " for one embedded in a kubeconfig).
func (b *checker) checkLeafAs(rel, pre string, c *x509.Certificate, caName string, r role, why string) {
	ca := b.cas[caName]
	var signer *x509.Certificate
	if ca == nil {
		b.problemf(rel, "%scannot be checked: no node carries %s (%s)", pre, specOf(caName).desc, specOf(caName).path)
	} else if signer = ca.signer(c); signer == nil {
		b.problemf(rel, "%sis not signed by %s (%s); its issuer is %s", pre, ca.spec.desc, ca.spec.path, c.Issuer)
	}
	if c.IsCA {
		b.problemf(rel, "%sis a CA certificate (CA:true) where a leaf belongs: %s", pre, why)
	}
	if r&serving != 0 && !hasEKU(c, x509.ExtKeyUsageServerAuth) {
		b.problemf(rel, "%shas no serverAuth usage (%s), but %s: a serving certificate is needed", pre, ekus(c), why)
	}
	if r&client != 0 && !hasEKU(c, x509.ExtKeyUsageClientAuth) {
		b.problemf(rel, "%shas no clientAuth usage (%s), but %s: a client certificate is needed", pre, ekus(c), why)
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		b.problemf(rel, "%slacks the digitalSignature usage that TLS needs", pre)
	}
	b.checkValidity(rel, pre, c, signer)
}

func specOf(name string) caSpec {
	for _, s := range caTable {
		if s.name == name {
			return s
		}
	}
	return caSpec{name: name, desc: name}
}

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, e := range c.ExtKeyUsage {
		if e == u || e == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func ekus(c *x509.Certificate) string {
	var names []string
	for _, e := range c.ExtKeyUsage {
		switch e {
		case x509.ExtKeyUsageServerAuth:
			names = append(names, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			names = append(names, "clientAuth")
		default:
			names = append(names, fmt.Sprintf("EKU %d", e))
		}
	}
	if len(names) == 0 {
		return "no extended key usage"
	}
	return "it has " + strings.Join(names, ", ")
}

// checkCertificates checks every certificate and key file of every node: the leaves of
// the table against their CA and role, any other certificate against the CA that signed
// it, keys against their certificates, sa.key against sa.pub, and the kubelet serving
// certificate's subject against the node.
func (b *checker) checkCertificates() {
	known := map[string]leafSpec{}
	for _, l := range leafTable {
		known[l.path] = l
	}
	isCA := map[string]bool{}
	for _, c := range caTable {
		isCA[c.path] = true
	}
	for _, n := range b.nodes {
		var ps []string
		for p := range n.rootfs {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		for _, p := range ps {
			rel := n.rel(p)
			switch {
			case strings.HasSuffix(p, ".crt") && isCA[p]:
				// A CA file (checked in checkCAs); its key, where placed, is one of its CAs'.
				keyPath := strings.TrimSuffix(p, ".crt") + ".key"
				if kf := n.file(keyPath); kf != nil {
					b.checkKeyOfAny(n.rel(keyPath), kf.data, b.trustAt(n, p), rel)
				}
			case strings.HasSuffix(p, ".crt"):
				c := b.certAt(n, p)
				if c == nil {
					continue
				}
				switch l, ok := known[p]; {
				case ok:
					b.checkLeafAs(rel, "", c, l.ca, l.role, l.why)
				case p == paths.CASignerCert:
					b.checkSigner(rel, c)
				default:
					b.checkOtherCert(rel, c)
				}
				keyPath := strings.TrimSuffix(p, ".crt") + ".key"
				if kf := n.file(keyPath); kf != nil {
					b.checkKeyMatches(n.rel(keyPath), kf.data, c, rel)
				} else {
					b.problemf(rel, "has no private key beside it (%s)", keyPath)
				}
			case strings.HasSuffix(p, ".key"):
				if _, err := parseKey(n.rootfs[p].data); err != nil {
					b.problemf(rel, "is not a PEM private key: %v", err)
					continue
				}
				crt := strings.TrimSuffix(p, ".key") + ".crt"
				if p != paths.SAKey && n.file(crt) == nil {
					b.problemf(rel, "has no certificate beside it (%s)", crt)
				}
			}
		}
		b.checkSA(n)
		b.checkPlacement(n)
		if c := b.certAt(n, paths.KubeletServingCert); c != nil {
			b.checkNodeSubject(n.rel(paths.KubeletServingCert), c, n, "", "the kubelet's serving certificate")
		}
	}
}

// checkOtherCert checks a certificate verify has no table entry for: it must be signed
// by one of the cluster's CAs.
func (b *checker) checkOtherCert(rel string, c *x509.Certificate) {
	for _, spec := range caTable {
		if ca := b.cas[spec.name]; ca != nil {
			if s := ca.signer(c); s != nil {
				b.checkValidity(rel, "", c, s)
				return
			}
		}
	}
	b.problemf(rel, "is not signed by any of the cluster's CAs; its issuer is %s", c.Issuer)
}

// checkSigner checks the controller manager's signing CA while the cluster CA rotates:
// one of the CAs ca.crt trusts.
func (b *checker) checkSigner(rel string, c *x509.Certificate) {
	ca := b.cas[caCluster]
	if ca == nil {
		return
	}
	for _, t := range ca.certs {
		if bytes.Equal(t.Raw, c.Raw) {
			return
		}
	}
	b.problemf(rel, "is not one of the CAs %s holds: the controller manager would sign certificates nobody trusts", paths.CACert)
}

// checkKeyOfAny checks that the key in keyData is the private key of one of certs.
func (b *checker) checkKeyOfAny(keyRel string, keyData []byte, certs []*x509.Certificate, certRel string) {
	key, err := parseKey(keyData)
	if err != nil || len(certs) == 0 {
		return
	}
	for _, c := range certs {
		if samePublicKey(key.Public(), c.PublicKey) {
			return
		}
	}
	b.problemf(keyRel, "is not the private key of %s (%s)", certRel, describe(certs[0]))
}

// checkKeyMatches checks that the key in keyData is the private key of c.
func (b *checker) checkKeyMatches(keyRel string, keyData []byte, c *x509.Certificate, certRel string) {
	key, err := parseKey(keyData)
	if err != nil {
		return // reported where the key file is checked
	}
	if !samePublicKey(key.Public(), c.PublicKey) {
		b.problemf(keyRel, "is not the private key of %s (%s)", certRel, describe(c))
	}
}

// checkSA checks that sa.key and sa.pub are a key pair.
func (b *checker) checkSA(n *node) {
	kf, pf := n.file(paths.SAKey), n.file(paths.SAPub)
	switch {
	case kf == nil && pf == nil:
		return
	case kf == nil:
		b.problemf(n.rel(paths.SAPub), "has no private key beside it (%s)", paths.SAKey)
		return
	case pf == nil:
		b.problemf(n.rel(paths.SAKey), "has no public key beside it (%s)", paths.SAPub)
		return
	}
	key, err := parseKey(kf.data)
	if err != nil {
		return
	}
	// sa.pub holds the public key, or the old and the new one while the key rotates.
	var pubs []crypto.PublicKey
	for rest := pf.data; len(bytes.TrimSpace(rest)) > 0; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil || block.Type != "PUBLIC KEY" {
			b.problemf(n.rel(paths.SAPub), "is not a list of PEM public keys")
			return
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			b.problemf(n.rel(paths.SAPub), "is not a PEM public key: %v", err)
			return
		}
		pubs = append(pubs, pub)
	}
	switch {
	case len(pubs) == 0:
		b.problemf(n.rel(paths.SAPub), "is not a PEM public key")
		return
	case len(pubs) > maxTrusted:
		b.problemf(n.rel(paths.SAPub), "holds %d public keys: the key, or the old and the new one while it rotates", len(pubs))
	}
	for _, pub := range pubs {
		if samePublicKey(key.Public(), pub) {
			return
		}
	}
	b.problemf(n.rel(paths.SAKey), "is not the private key of %s: service-account tokens would not verify", paths.SAPub)
}

// checkPlacement reports keys that belong only on control-plane nodes found elsewhere.
func (b *checker) checkPlacement(n *node) {
	if n.byComponent[component.APIServer] != nil || n.byComponent[component.ControllerManager] != nil {
		return
	}
	for _, p := range []string{paths.CAKey, paths.CASignerKey, paths.SAKey, paths.SuperAdminConf} {
		if n.file(p) != nil {
			b.problemf(n.rel(p), "is on a node that runs no control plane: it belongs only on control-plane nodes")
		}
	}
}

// checkNodeSubject checks that a kubelet certificate names node n
// (CN system:node:<n>, O system:nodes).
func (b *checker) checkNodeSubject(rel string, c *x509.Certificate, n *node, pre, what string) {
	if pre != "" {
		pre += " "
	}
	want := nodeUserPrefix + n.name
	if c.Subject.CommonName != want {
		b.problemf(rel, "%snames %s, not this node (%s): %s must name its node", pre, c.Subject.CommonName, want, what)
	}
	if !contains(c.Subject.Organization, nodesGroup) {
		b.problemf(rel, "%sis not in group %s (O=%s): %s must be, for the Node authorizer", pre, nodesGroup, strings.Join(c.Subject.Organization, ","), what)
	}
}

// Identities the Node authorizer relies on.
const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
