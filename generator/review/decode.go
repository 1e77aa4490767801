package review

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scratchgen/scratchgen/generator/provision"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// Fingerprint is how content that must not be shown is identified: "sha256:" and the
// first 16 hex digits of its SHA-256.
func Fingerprint(data []byte) string {
	h := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(h[:8])
}

// Field is one named value of a decoded file (a certificate's serial, a kubeconfig's
// server). Secret fields hold a fingerprint that is compared, never shown.
type Field struct {
	Name   string
	Value  string
	Secret bool
}

// certFields decodes a PEM bundle of certificates into fields, or returns ok false if
// data is not (only) PEM certificates.
func certFields(data []byte) (fields []Field, summary string, ok bool) {
	certs, ok := parseCerts(data)
	if !ok {
		return nil, "", false
	}
	for i, c := range certs {
		prefix := ""
		if len(certs) > 1 {
			prefix = fmt.Sprintf("certificate[%d] ", i)
		}
		fields = append(fields, describeCert(prefix, c)...)
	}
	return fields, certSummary(certs[0]), true
}

// parseCerts parses data as one or more PEM CERTIFICATE blocks and nothing else.
func parseCerts(data []byte) ([]*x509.Certificate, bool) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, false
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, false
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, false
	}
	return certs, true
}

// describeCert lists a certificate's reviewable fields, in a fixed order.
func describeCert(prefix string, c *x509.Certificate) []Field {
	f := func(name, value string) Field { return Field{Name: prefix + name, Value: value} }
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	out := []Field{
		f("subject", c.Subject.String()),
		f("issuer", c.Issuer.String()),
		f("serial", c.SerialNumber.Text(16)),
		f("notBefore", c.NotBefore.UTC().Format(time.RFC3339)),
		f("notAfter", c.NotAfter.UTC().Format(time.RFC3339)),
		f("dnsNames", strings.Join(c.DNSNames, ", ")),
		f("ipAddresses", strings.Join(ips, ", ")),
		f("keyUsage", keyUsages(c.KeyUsage)),
		f("extKeyUsage", extKeyUsages(c.ExtKeyUsage)),
		f("isCA", fmt.Sprint(c.IsCA)),
		f("publicKey", publicKeyInfo(c.PublicKey, c.RawSubjectPublicKeyInfo)),
		f("authorityKeyId", hex.EncodeToString(c.AuthorityKeyId)),
		f("signature", Fingerprint(c.Signature)),
	}
	return out
}

// certSummary is a one-line description of a certificate for file headers.
func certSummary(c *x509.Certificate) string {
	return "certificate " + c.Subject.String()
}

var keyUsageNames = []struct {
	u    x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsages(u x509.KeyUsage) string {
	var out []string
	for _, k := range keyUsageNames {
		if u&k.u != 0 {
			out = append(out, k.name)
		}
	}
	return strings.Join(out, ", ")
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func extKeyUsages(us []x509.ExtKeyUsage) string {
	var out []string
	for _, u := range us {
		if n, ok := extKeyUsageNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprint(int(u)))
		}
	}
	return strings.Join(out, ", ")
}

// publicKeyInfo names the key type and fingerprints the DER SubjectPublicKeyInfo.
func publicKeyInfo(pub any, spki []byte) string {
	typ := "unknown"
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		typ = "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		typ = fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		typ = "Ed25519"
	}
	return typ + " " + Fingerprint(spki)
}

// publicKeyFields decodes a PEM PUBLIC KEY file (sa.pub).
func publicKeyFields(data []byte) ([]Field, bool) {
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, false
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, false
	}
	return []Field{{Name: "publicKey", Value: publicKeyInfo(pub, b.Bytes)}}, true
}

// hasPrivateKey reports whether data holds a PEM private key anywhere.
func hasPrivateKey(data []byte) bool {
	return bytes.Contains(data, []byte("PRIVATE KEY-----"))
}

// kubeconfigFields decodes the reviewable parts of a kubeconfig: clusters (server, CA),
// users (client certificate decoded) and contexts. Keys and tokens become secret fields:
// compared by fingerprint, reported only as changed.
func kubeconfigFields(data []byte) ([]Field, bool) {
	var cfg clientcmdv1.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil || cfg.Kind != "Config" {
		return nil, false
	}
	var out []Field
	for _, c := range cfg.Clusters {
		p := "cluster " + c.Name + " "
		out = append(out, Field{Name: p + "server", Value: c.Cluster.Server})
		if ca := c.Cluster.CertificateAuthorityData; len(ca) > 0 {
			v := Fingerprint(ca)
			if certs, ok := parseCerts(ca); ok {
				var vs []string
				for _, c := range certs {
					vs = append(vs, c.Subject.String()+" "+Fingerprint(c.Raw))
				}
				v = strings.Join(vs, " + ")
			}
			out = append(out, Field{Name: p + "certificate-authority", Value: v})
		}
		if c.Cluster.CertificateAuthority != "" {
			out = append(out, Field{Name: p + "certificate-authority-file", Value: c.Cluster.CertificateAuthority})
		}
	}
	for _, u := range cfg.AuthInfos {
		p := "user " + u.Name + " "
		a := u.AuthInfo
		if len(a.ClientCertificateData) > 0 {
			if certs, ok := parseCerts(a.ClientCertificateData); ok {
				for _, f := range describeCert("", certs[0]) {
					out = append(out, Field{Name: p + "client-certificate " + f.Name, Value: f.Value})
				}
			} else {
				out = append(out, Field{Name: p + "client-certificate", Value: Fingerprint(a.ClientCertificateData)})
			}
		}
		if a.ClientCertificate != "" {
			out = append(out, Field{Name: p + "client-certificate-file", Value: a.ClientCertificate})
		}
		if len(a.ClientKeyData) > 0 {
			out = append(out, Field{Name: p + "client-key", Value: Fingerprint(a.ClientKeyData), Secret: true})
		}
		if a.ClientKey != "" {
			out = append(out, Field{Name: p + "client-key-file", Value: a.ClientKey})
		}
		if a.Token != "" {
			out = append(out, Field{Name: p + "token", Value: Fingerprint([]byte(a.Token)), Secret: true})
		}
		if a.Username != "" {
			out = append(out, Field{Name: p + "username", Value: a.Username})
		}
		if a.Password != "" {
			out = append(out, Field{Name: p + "password", Value: Fingerprint([]byte(a.Password)), Secret: true})
		}
	}
	for _, c := range cfg.Contexts {
		out = append(out, Field{Name: "context " + c.Name, Value: "cluster " + c.Context.Cluster + ", user " + c.Context.AuthInfo})
	}
	out = append(out, Field{Name: "current-context", Value: cfg.CurrentContext})
	return out, true
}

// carried is what a provisioning view writes to a node: files by path and units.
type carried struct {
	kind  string // "Ignition config", "Butane config", "cloud-init user-data"
	files map[string]carriedFile
	units []string
}

type carriedFile struct {
	mode string
	data []byte
}

// Names of the provisioning views inside a node directory.
const (
	ignitionView = provision.IgnitionFile
	butaneView   = provision.ButaneFile
	userDataView = provision.UserDataFile
)

func isView(name string) bool {
	return name == ignitionView || name == butaneView || name == userDataView
}

// decodeView decodes a provisioning view into the files it carries (provision.Decode).
// A view with problems (an unknown encoding, a file written twice …) is an error here:
// diff cannot say what such a view carries; verify reports each problem.
// With directives, it also returns the view's directives (provision.Directives), and a
// view whose directives cannot be read cannot be decoded.
func decodeView(views *provision.Decoder, name string, data []byte, directives bool) (*carried, []string, error) {
	var d *provision.Decoded
	var dirs []string
	var err error
	if directives {
		d, dirs, err = views.DecodeDirectives(name, data)
	} else {
		d, err = views.Decode(name, data)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(d.Problems) > 0 {
		return nil, nil, fmt.Errorf("reading %s: %s", name, d.Problems[0])
	}
	kinds := map[string]string{ignitionView: "Ignition config", butaneView: "Butane config", userDataView: "cloud-init user-data"}
	out := &carried{kind: kinds[name], files: map[string]carriedFile{}, units: d.Units}
	for p, f := range d.Files {
		data := f.Data
		if f.Local != "" { // node.bu names the rootfs/ file; its content is reviewed there
			data = []byte("local: " + f.Local)
		}
		out.files[p] = carriedFile{mode: fmt.Sprintf("%04o", f.Mode), data: data}
	}
	return out, dirs, nil
}

// compareCarried lists the carried files and units that differ between two views, as
// (change, path) pairs sorted by path; units follow as "unit NAME".
func compareCarried(a, b *carried) []Carried {
	if a == nil {
		a = &carried{}
	}
	if b == nil {
		b = &carried{}
	}
	paths := map[string]bool{}
	for p := range a.files {
		paths[p] = true
	}
	for p := range b.files {
		paths[p] = true
	}
	var sorted []string
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var out []Carried
	for _, p := range sorted {
		of, inA := a.files[p]
		nf, inB := b.files[p]
		switch {
		case !inA:
			out = append(out, Carried{Change: Added, Path: p})
		case !inB:
			out = append(out, Carried{Change: Removed, Path: p})
		case !bytes.Equal(of.data, nf.data):
			out = append(out, Carried{Change: Changed, Path: p})
		case of.mode != nf.mode:
			out = append(out, Carried{Change: Changed, Path: p, Note: "mode " + of.mode + " → " + nf.mode})
		}
	}
	if strings.Join(a.units, "\n") != strings.Join(b.units, "\n") {
		out = append(out, Carried{Change: Changed, Path: "units", Note: strings.Join(a.units, " ") + " → " + strings.Join(b.units, " ")})
	}
	return out
}

// isBinary reports whether data is not reviewable as text.
func isBinary(data []byte) bool {
	return !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0
}
