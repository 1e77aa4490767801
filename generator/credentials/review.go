package credentials

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"time"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// Review without the root secret. A certificate is a deterministic function of the
// secret, the lock record and the template; so a certificate on disk whose SHA-256 the
// lock records, and which matches the template the spec now asks for (subject, SANs,
// usages, validity, serial, issuer), is exactly what a render with the secret would
// write again, and is reused. Everything else that needs the secret is pending: keys,
// tokens and kubeconfigs (secret files, never checked), and the certificates that would
// be issued or re-issued (reported with the reason).

// needsSecret is the Pending reason of secret files.
const needsSecret = "needs the root secret"

// reviewPlan is Plan without a secret (opts.Secret nil).
func reviewPlan(c *model.Cluster, lk *lock.Lock, opts Options) (*Result, error) {
	if opts.Existing == nil {
		opts.Existing = func(string, string) []byte { return nil }
	}
	if lk == nil {
		lk = lock.New(c.Name)
	}
	p := &planner{c: c, opts: opts, in: lk, out: lk.Clone(), issued: map[ID]*issued{}, prev: map[ID]*issued{},
		dates: Schedule(c, lk, opts.Now), certs: templates(c), pending: map[ID]string{}}
	p.out.Certificates = map[string]lock.Certificate{}
	p.markRendered()
	found := p.existingCerts()
	for _, id := range Identities(c) {
		d := p.dates[id.ID]
		rec := lock.Certificate{Generation: d.Generation, Renewal: d.Renewal, NotBefore: d.NotBefore}
		switch id.Kind {
		case KindKeyPair:
			p.reuseKeyPair(id)
		default:
			p.reuse(id, found[id.ID])
			if id.Kind == KindCA {
				p.reusePrevious(id, found[id.ID])
			}
		}
		if p.pending[id.ID] == "" {
			rec.SHA256 = lk.Certificates[string(id.ID)].SHA256
		}
		p.out.Certificates[string(id.ID)] = rec
	}
	res, err := p.place()
	if err != nil {
		return nil, err
	}
	for _, id := range Identities(c) {
		if r := p.pending[id.ID]; r != "" {
			res.Pending = append(res.Pending, Pending{ID: id.ID, Reason: r, Nodes: id.Nodes, Admin: id.Admin})
		}
	}
	return res, nil
}

// existingCerts collects, by identity, the certificates the bundle on disk holds where
// the plan would place them.
func (p *planner) existingCerts() map[ID][]*x509.Certificate {
	return DiskCertificates(p.c, p.opts.Existing)
}

// DiskCertificates collects, by identity, the certificates a bundle on disk holds where
// a render of c places them: certificate files and the certificates inside kubeconfigs,
// on every node that holds the identity and in admin/. existing reads the bundle (see
// Options.Existing).
func DiskCertificates(c *model.Cluster, existing func(node, path string) []byte) map[ID][]*x509.Certificate {
	p := &planner{c: c, opts: Options{Existing: existing}, certs: templates(c)}
	out := map[ID][]*x509.Certificate{}
	add := func(id ID, data []byte) {
		for len(data) > 0 {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				return
			}
			if cert, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" {
				out[id] = append(out[id], cert)
			}
		}
	}
	visit := func(node string, h holding) {
		switch h.kind {
		case holdCert, holdSignerCert:
			add(h.id, p.opts.Existing(node, h.path))
		case holdKubeconfig:
			data := p.opts.Existing(node, h.path)
			var cfg clientcmdv1.Config
			if data == nil || yaml.Unmarshal(data, &cfg) != nil {
				return
			}
			for _, cl := range cfg.Clusters {
				add(CA, cl.Cluster.CertificateAuthorityData)
			}
			for _, u := range cfg.AuthInfos {
				add(h.id, u.AuthInfo.ClientCertificateData)
			}
		}
	}
	for _, n := range p.c.Nodes {
		for _, h := range holdings(p.c, n, p.certs) {
			visit(n.Name, h)
		}
	}
	visit("", adminHolding(p.c))
	return out
}

// reuse takes identity id's certificate from candidates if it is the one the lock
// records and still what the spec asks for; otherwise the identity is pending.
func (p *planner) reuse(id Identity, candidates []*x509.Certificate) {
	d := p.dates[id.ID]
	rec, recorded := p.in.Certificates[string(id.ID)]
	if !recorded {
		p.pending[id.ID] = "new"
		return
	}
	if rec.SHA256 == "" {
		p.pending[id.ID] = "the lock records no fingerprint of it yet (render once with the secret)"
		return
	}
	var cert *x509.Certificate
	for _, c := range candidates {
		if sum := sha256.Sum256(c.Raw); lock.HexSum(sum) == rec.SHA256 {
			cert = c
			break
		}
	}
	if cert == nil {
		p.pending[id.ID] = "the bundle on disk does not hold the certificate the lock records"
		return
	}
	var ca *x509.Certificate
	if id.Kind == KindLeaf {
		s := p.signer(id.Cert.CA)
		if p.pending[id.Cert.CA] != "" || s == nil {
			p.pending[id.ID] = fmt.Sprintf("its CA %s would be re-issued", id.Cert.CA)
			return
		}
		ca = s.cert
	}
	if why := mismatch(cert, id, d, Serial(p.c.Name, id.ID, d), ca); why != "" {
		p.pending[id.ID] = why
		return
	}
	p.issued[id.ID] = &issued{spec: id.Cert, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}

// reusePrevious takes, for a CA rotating, the generation it replaces from candidates:
// the certificate the rotation records. Without it the CA's trust files are pending.
func (p *planner) reusePrevious(id Identity, candidates []*x509.Certificate) {
	r, ok := rotation(p.in, id.ID)
	if !ok || p.pending[id.ID] != "" {
		return
	}
	d, _ := Previous(p.c, p.in, id.ID)
	for _, c := range candidates {
		if sum := sha256.Sum256(c.Raw); r.Previous.SHA256 != "" && lock.HexSum(sum) == r.Previous.SHA256 && mismatch(c, id, d, Serial(p.c.Name, id.ID, d), nil) == "" {
			p.prev[id.ID] = &issued{spec: id.Cert, cert: c, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})}
			return
		}
	}
	p.pending[id.ID] = "the bundle on disk does not hold the generation its rotation replaces, which the lock records"
}

// reuseKeyPair takes the service-account public key from a control plane's sa.pub when
// it is the one the lock records.
func (p *planner) reuseKeyPair(id Identity) {
	rec, ok := p.in.Certificates[string(id.ID)]
	switch {
	case !ok:
		p.pending[id.ID] = "new"
		return
	case rec.SHA256 == "":
		p.pending[id.ID] = "the lock records no fingerprint of it yet (render once with the secret)"
		return
	case rec.Generation != p.dates[id.ID].Generation:
		p.pending[id.ID] = "it is renewed"
		return
	}
	prev, rotating := rotation(p.in, SA)
	for _, n := range p.c.ControlPlanes() {
		data := p.opts.Existing(n.Name, paths.SAPub)
		var cur, old []byte
		for len(data) > 0 {
			var b *pem.Block
			if b, data = pem.Decode(data); b == nil {
				break
			}
			if b.Type != "PUBLIC KEY" {
				continue
			}
			sum := lock.HexSum(sha256.Sum256(b.Bytes))
			switch {
			case sum == rec.SHA256:
				cur = pem.EncodeToMemory(b)
			case rotating && prev.Previous.SHA256 != "" && sum == prev.Previous.SHA256:
				old = pem.EncodeToMemory(b)
			}
		}
		if cur != nil && (!rotating || old != nil) {
			p.saPub, p.saPubPrev = cur, old
			return
		}
	}
	if rotating {
		p.pending[id.ID] = "the bundle on disk does not hold both public keys of its rotation, which the lock records"
		return
	}
	p.pending[id.ID] = "the bundle on disk does not hold the public key the lock records"
}

// mismatch says how cert differs from what a render would issue for id now ("" when it
// is exactly that): the template, the dates and serial of its generation, the issuer.
func mismatch(cert *x509.Certificate, id Identity, d Dates, serial *big.Int, ca *x509.Certificate) string {
	t := id.Cert
	switch {
	case cert.SerialNumber.Cmp(serial) != 0:
		return fmt.Sprintf("it is renewed (generation %d)", d.Generation)
	case !cert.NotBefore.Equal(d.NotBefore.Truncate(time.Second)) || !cert.NotAfter.Equal(d.NotAfter.Truncate(time.Second)):
		return fmt.Sprintf("its validity changes (to %s – %s)", d.NotBefore.UTC().Format(time.RFC3339), d.NotAfter.UTC().Format(time.RFC3339))
	case cert.Subject.CommonName != t.CN || !slices.Equal(cert.Subject.Organization, sortedCopy(t.O)):
		return "its subject changes"
	}
	dns, ips := t.DNS, t.IPs
	if id.Kind == KindCA && len(dns) == 0 && len(ips) == 0 {
		dns = []string{t.CN}
	}
	var gotIPs, wantIPs []string
	for _, ip := range cert.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	for _, ip := range ips {
		wantIPs = append(wantIPs, ip.String())
	}
	if !slices.Equal(cert.DNSNames, dns) || !slices.Equal(gotIPs, wantIPs) {
		return "its SANs change"
	}
	if id.Kind == KindLeaf {
		if !slices.Equal(cert.ExtKeyUsage, extUsages(t.Usages)) {
			return "its key usages change"
		}
		if !bytes.Equal(cert.RawIssuer, ca.RawSubject) || cert.CheckSignatureFrom(ca) != nil {
			return "its CA changes"
		}
	}
	return ""
}

func extUsages(u pki.Usage) []x509.ExtKeyUsage {
	var out []x509.ExtKeyUsage
	if u&pki.ServerAuth != 0 {
		out = append(out, x509.ExtKeyUsageServerAuth)
	}
	if u&pki.ClientAuth != 0 {
		out = append(out, x509.ExtKeyUsageClientAuth)
	}
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// OnDisk is an identity's certificate as the bundle on disk holds it.
type OnDisk struct {
	// NotAfter is the earliest end of the certificates found for the identity (zero when
	// none was found).
	NotAfter time.Time
	// Note says where the disk and the lock disagree: "renewed in the lock (generation
	// 2), not rendered yet", "not rendered yet", "differs from the lock (render to
	// update)"; empty when they agree.
	Note string
}

// CertificatesOnDisk reports, per certificate identity of c, what the bundle on disk
// (read through existing) holds compared with the lock lk.
func CertificatesOnDisk(c *model.Cluster, lk *lock.Lock, now time.Time, existing func(node, path string) []byte) map[ID]OnDisk {
	dates := Schedule(c, lk, now)
	disk := DiskCertificates(c, existing)
	out := map[ID]OnDisk{}
	for _, id := range Identities(c) {
		if id.Kind == KindKeyPair {
			continue
		}
		d := dates[id.ID]
		var st OnDisk
		for _, cert := range disk[id.ID] {
			if st.NotAfter.IsZero() || cert.NotAfter.Before(st.NotAfter) {
				st.NotAfter = cert.NotAfter.UTC()
			}
		}
		switch {
		case len(disk[id.ID]) == 0 && d.Issued:
			st.Note = "not on disk: render to write it"
		case len(disk[id.ID]) == 0:
		default:
			want := []*big.Int{Serial(c.Name, id.ID, d)}
			if prev, ok := Previous(c, lk, id.ID); ok {
				want = append(want, Serial(c.Name, id.ID, prev)) // still trusted while it rotates
			}
			for _, cert := range disk[id.ID] {
				if slices.ContainsFunc(want, func(s *big.Int) bool { return cert.SerialNumber.Cmp(s) == 0 }) {
					continue
				}
				st.Note = "differs from the lock: render to update it"
				if older(c.Name, id.ID, d, cert.SerialNumber) {
					st.Note = fmt.Sprintf("renewed in the lock (%s), not rendered yet", describeDates(id.Kind, d))
				}
				break
			}
		}
		out[id.ID] = st
	}
	return out
}

// older reports whether serial is that of an earlier generation or renewal of id (with
// any signer generation up to the current one).
func older(cluster string, id ID, d Dates, serial *big.Int) bool {
	for g := d.Generation; g >= 1; g-- {
		for r := d.Renewal; r >= 0; r-- {
			for sg := max(d.SignerGeneration, 1); sg >= 1; sg-- {
				o := Dates{Generation: g, Renewal: r, SignerGeneration: sg}
				if o.Generation == d.Generation && o.Renewal == d.Renewal && o.SignerGeneration == d.SignerGeneration {
					continue
				}
				if serial.Cmp(Serial(cluster, id, o)) == 0 {
					return true
				}
			}
		}
	}
	return false
}

// describeDates says which version of an identity d is ("generation 2", "generation 1,
// renewal 1").
func describeDates(k Kind, d Dates) string {
	if k == KindCA && d.Renewal > 0 {
		return fmt.Sprintf("generation %d, renewal %d", d.Generation, d.Renewal)
	}
	return fmt.Sprintf("generation %d", d.Generation)
}
