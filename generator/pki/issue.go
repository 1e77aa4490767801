package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/cloudflare/cfssl/config"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"
)

var silenceOnce sync.Once

// silenceCfssl lowers cfssl's package-global logger to Fatal, once: cfssl logs every
// issued certificate at Info level and a renderer must stay quiet. It runs from init and
// from newPolicy, because package-level policies are built before init functions run.
func silenceCfssl() {
	silenceOnce.Do(func() { cflog.Level = cflog.LevelFatal })
}

func init() { silenceCfssl() }

// Usage selects the extended key usages of a leaf certificate (bit flags).
type Usage int

const (
	// ServerAuth adds ExtKeyUsage serverAuth.
	ServerAuth Usage = 1 << iota
	// ClientAuth adds ExtKeyUsage clientAuth.
	ClientAuth
)

// Request describes one certificate. All fields that influence the output are explicit:
// nothing is taken from the clock or from a random source.
type Request struct {
	// CommonName is the subject CN; required.
	CommonName string
	// Organization is the subject O. Several values form one multi-valued RDN, a DER
	// SET, which crypto/x509 sorts: they parse back in sorted order, as kubeadm's do.
	Organization []string
	// DNSNames are the DNS subjectAltNames. A CA given neither DNSNames nor IPs gets
	// DNS:CommonName, as kubeadm's CAs do.
	DNSNames []string
	// IPs are the IP subjectAltNames (IPv4 addresses are encoded in 4 octets).
	IPs []net.IP
	// Usages is ServerAuth, ClientAuth or both for a leaf; it must be 0 for a CA.
	Usages Usage
	// NotBefore and NotAfter bound the validity; both required. X.509 has second
	// precision, so fractions of a second are dropped.
	NotBefore, NotAfter time.Time
	// Serial is the serial number (see DeriveSerial); required, positive, ≤ 20 octets.
	Serial *big.Int
}

// cfssl profile names.
const (
	profileCA           = "ca"
	profileServer       = "server"
	profileClient       = "client"
	profileServerClient = "server-client"
)

// oidSubjectAltName is the subjectAltName extension, which the CA profile whitelists so
// that a CA can carry SAN DNS:<CN> (see NewCA).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Policies are built once and shared read-only by every cfssl signer: cfssl only reads
// a config.Signing while signing, so one value serves any number of concurrent issuers.
var (
	caPolicy   = newPolicy(profileCA)
	leafPolicy = newPolicy(profileServerClient)
)

func newPolicy(def string) *config.Signing {
	silenceCfssl()
	leaf := func(usages ...string) *config.SigningProfile {
		return &config.SigningProfile{
			Usage: append([]string{"digital signature", "key encipherment"}, usages...),
			// Expiry only satisfies cfssl's policy validation: every SignRequest
			// carries NotBefore/NotAfter, which take precedence.
			Expiry:       365 * 24 * time.Hour,
			ExpiryString: "8760h",
			// Without this cfssl ignores SignRequest.Serial and draws 20 random bytes.
			ClientProvidesSerialNumbers: true,
			ExtensionWhitelist:          map[string]bool{},
		}
	}
	profiles := map[string]*config.SigningProfile{
		profileServer:       leaf("server auth"),
		profileClient:       leaf("client auth"),
		profileServerClient: leaf("server auth", "client auth"),
		profileCA: {
			Usage:        []string{"digital signature", "key encipherment", "cert sign"},
			Expiry:       10 * 365 * 24 * time.Hour,
			ExpiryString: "87600h",
			// No pathlen constraint, like kubeadm (client-go's NewSelfSignedCACert):
			// MaxPathLen 0 with MaxPathLenZero false omits the field.
			CAConstraint:                config.CAConstraint{IsCA: true},
			ClientProvidesSerialNumbers: true,
			// cfssl strips DNSNames from every CA template; the SAN is re-added as
			// a raw extension, which must be whitelisted.
			ExtensionWhitelist: map[string]bool{oidSubjectAltName.String(): true},
		},
	}
	p := &config.Signing{Profiles: profiles, Default: profiles[def]}
	if !p.Valid() {
		panic("pki: built-in cfssl signing policy is invalid")
	}
	return p
}

func (u Usage) profile() (string, error) {
	switch u {
	case ServerAuth:
		return profileServer, nil
	case ClientAuth:
		return profileClient, nil
	case ServerAuth | ClientAuth:
		return profileServerClient, nil
	default:
		return "", fmt.Errorf("pki: leaf usages must be ServerAuth, ClientAuth or both, got %d", int(u))
	}
}

func (r *Request) validate() error {
	if r.CommonName == "" {
		return errors.New("pki: request has no CommonName")
	}
	if r.NotBefore.IsZero() || r.NotAfter.IsZero() {
		// cfssl would fill a zero time from the clock.
		return fmt.Errorf("pki: %q: NotBefore and NotAfter are required", r.CommonName)
	}
	if !r.NotAfter.After(r.NotBefore) {
		return fmt.Errorf("pki: %q: NotAfter %v is not after NotBefore %v", r.CommonName, r.NotAfter, r.NotBefore)
	}
	if r.Serial == nil || r.Serial.Sign() <= 0 || r.Serial.BitLen() > 159 {
		return fmt.Errorf("pki: %q: serial must be positive and fit 20 DER octets", r.CommonName)
	}
	for _, n := range r.DNSNames {
		if n == "" || !isASCII(n) {
			return fmt.Errorf("pki: %q: invalid DNS name %q", r.CommonName, n)
		}
	}
	for _, ip := range r.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return fmt.Errorf("pki: %q: invalid IP %v", r.CommonName, ip)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func checkP256(key *ecdsa.PrivateKey, what string) error {
	if key == nil {
		return fmt.Errorf("pki: %s key is nil", what)
	}
	if key.Curve != elliptic.P256() {
		return fmt.Errorf("pki: %s key is not P-256", what)
	}
	return nil
}

// csrPEM builds the PEM CSR that cfssl's Sign requires. Only its subject, public key and
// SANs reach the certificate; it is signed deterministically anyway (cfssl checks the
// signature, so it must be made with key).
func csrPEM(key *ecdsa.PrivateKey, req *Request, withSANs bool) (string, error) {
	der, err := csrDER(key, req, withSANs)
	if err != nil {
		return "", fmt.Errorf("pki: %q: create CSR: %w", req.CommonName, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// csrDER is what x509.CreateCertificateRequest makes of the request (subject CN and O,
// the SANs as an extensionRequest attribute, ECDSA with SHA-256), byte for byte
// (TestCSRDERIsCrypto509s), without the check crypto/x509 makes of every signature it
// has just made: cfssl verifies the CSR again before signing, so that check was the
// third ECDSA verification per leaf (about a sixth of a 1,000-node render's issuing).
func csrDER(key *ecdsa.PrivateKey, req *Request, withSANs bool) ([]byte, error) {
	subject, err := asn1.Marshal(pkix.Name{CommonName: req.CommonName, Organization: req.Organization}.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tbs := struct {
		Version       int
		Subject       asn1.RawValue
		PublicKey     asn1.RawValue
		RawAttributes []asn1.RawValue `asn1:"tag:0"`
	}{Subject: asn1.RawValue{FullBytes: subject}, PublicKey: asn1.RawValue{FullBytes: spki}, RawAttributes: []asn1.RawValue{}}
	if withSANs && (len(req.DNSNames) > 0 || len(req.IPs) > 0) {
		san, err := sanExtension(req.DNSNames, req.IPs)
		if err != nil {
			return nil, err
		}
		attr, err := asn1.Marshal(struct {
			Type  asn1.ObjectIdentifier
			Value [][]pkix.Extension `asn1:"set"`
		}{Type: oidExtensionRequest, Value: [][]pkix.Extension{{{Id: oidSubjectAltName, Value: san}}}})
		if err != nil {
			return nil, err
		}
		tbs.RawAttributes = append(tbs.RawAttributes, asn1.RawValue{FullBytes: attr})
	}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbsDER)
	sig, err := DeterministicSigner(key).Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		TBS                asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		SignatureValue     asn1.BitString
	}{asn1.RawValue{FullBytes: tbsDER}, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// The OIDs a CSR names: PKCS #9 extensionRequest, and ecdsa-with-SHA256 (RFC 5758).
var (
	oidExtensionRequest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	oidECDSAWithSHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// sanExtension encodes subjectAltName GeneralNames the way crypto/x509 does
// (dNSName [2] IA5String, iPAddress [7] 4 or 16 octets; DNS names first).
func sanExtension(dnsNames []string, ips []net.IP) ([]byte, error) {
	var names []asn1.RawValue
	for _, n := range dnsNames {
		names = append(names, asn1.RawValue{Tag: 2, Class: asn1.ClassContextSpecific, Bytes: []byte(n)})
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		names = append(names, asn1.RawValue{Tag: 7, Class: asn1.ClassContextSpecific, Bytes: ip})
	}
	return asn1.Marshal(names)
}

// finish decodes cfssl's PEM output into a parsed certificate and a canonical PEM.
func finish(out []byte, cn string) (*x509.Certificate, []byte, error) {
	block, _ := pem.Decode(out)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("pki: %q: cfssl returned no certificate", cn)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %q: parse issued certificate: %w", cn, err)
	}
	return cert, out, nil
}

// NewCA self-signs a CA certificate for key: KeyUsage
// DigitalSignature|KeyEncipherment|CertSign, BasicConstraints CA:true without a path
// length constraint (as kubeadm), SubjectKeyId = SHA-1 of the public key (RFC 5280
// method 1), no AuthorityKeyId, and SAN DNS = CommonName unless req lists SANs.
// It returns the parsed certificate and its PEM encoding.
func NewCA(key *ecdsa.PrivateKey, req Request) (*x509.Certificate, []byte, error) {
	if err := checkP256(key, "CA"); err != nil {
		return nil, nil, err
	}
	if err := req.validate(); err != nil {
		return nil, nil, err
	}
	if req.Usages != 0 {
		return nil, nil, fmt.Errorf("pki: %q: a CA request takes no Usages", req.CommonName)
	}
	dnsNames := req.DNSNames
	if len(dnsNames) == 0 && len(req.IPs) == 0 {
		dnsNames = []string{req.CommonName}
	}
	san, err := sanExtension(dnsNames, req.IPs)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %q: encode SAN: %w", req.CommonName, err)
	}
	csr, err := csrPEM(key, &req, false)
	if err != nil {
		return nil, nil, err
	}
	// A cfssl local signer without a CA certificate self-signs its first request and
	// then becomes that CA, so it is created per call and never reused.
	s, err := local.NewSigner(DeterministicSigner(key), nil, x509.ECDSAWithSHA256, caPolicy)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %q: cfssl signer: %w", req.CommonName, err)
	}
	out, err := s.Sign(signer.SignRequest{
		Request:   csr,
		Profile:   profileCA,
		Serial:    req.Serial,
		NotBefore: req.NotBefore,
		NotAfter:  req.NotAfter,
		// cfssl's FillTemplate and its root path both set DNSNames = nil for CA
		// templates, so Hosts cannot give a CA a SAN. A whitelisted raw extension
		// goes through ExtraExtensions untouched.
		Extensions: []signer.Extension{{
			ID:    config.OID(oidSubjectAltName),
			Value: hex.EncodeToString(san),
		}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %q: cfssl sign: %w", req.CommonName, err)
	}
	return finish(out, req.CommonName)
}

// Issuer signs leaf certificates with one CA. It keeps the cfssl signer (and its
// policy) so that only per-certificate work is repeated. It is safe for concurrent use.
type Issuer struct {
	cert   *x509.Certificate
	signer *local.Signer
}

// NewIssuer returns an Issuer for the CA certificate ca and its private key caKey.
// ca must be a CA certificate with a SubjectKeyId (so leaves get AuthorityKeyId = it)
// and caKey must match its public key.
func NewIssuer(ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*Issuer, error) {
	if ca == nil {
		return nil, errors.New("pki: CA certificate is nil")
	}
	if err := checkP256(caKey, "CA"); err != nil {
		return nil, err
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %q is not a CA certificate", ca.Subject.CommonName)
	}
	if len(ca.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("pki: CA %q has no SubjectKeyId", ca.Subject.CommonName)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(caKey.Public()) {
		return nil, fmt.Errorf("pki: key does not match CA %q", ca.Subject.CommonName)
	}
	s, err := local.NewSigner(DeterministicSigner(caKey), ca, x509.ECDSAWithSHA256, leafPolicy)
	if err != nil {
		return nil, fmt.Errorf("pki: CA %q: cfssl signer: %w", ca.Subject.CommonName, err)
	}
	return &Issuer{cert: ca, signer: s}, nil
}

// Certificate returns the issuer's CA certificate.
func (is *Issuer) Certificate() *x509.Certificate { return is.cert }

// Sign issues a leaf certificate for key's public key: KeyUsage
// DigitalSignature|KeyEncipherment, ExtKeyUsage from req.Usages (serverAuth before
// clientAuth), CA:false, SANs from req, SubjectKeyId = SHA-1 of the public key and
// AuthorityKeyId = the CA's SubjectKeyId. The private key is needed because cfssl
// only accepts a CSR signed by it. It returns the parsed certificate and its PEM.
func (is *Issuer) Sign(key *ecdsa.PrivateKey, req Request) (*x509.Certificate, []byte, error) {
	if err := checkP256(key, "leaf"); err != nil {
		return nil, nil, err
	}
	if err := req.validate(); err != nil {
		return nil, nil, err
	}
	profile, err := req.Usages.profile()
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%q)", err, req.CommonName)
	}
	// Cost per leaf (BenchmarkSignLeaf) is dominated by ECDSA: 2 RFC 6979 signatures
	// (CSR, certificate) and 2 verifications (cfssl checks the CSR; crypto/x509 re-checks
	// the certificate it makes, which cannot be turned off). csrDER makes the CSR
	// without crypto/x509's own re-check, which was a third. Only the cfssl signer and
	// policy can be reused across leaves; the CSR is per key. Callers may sign
	// concurrently on one Issuer.
	csr, err := csrPEM(key, &req, true)
	if err != nil {
		return nil, nil, err
	}
	out, err := is.signer.Sign(signer.SignRequest{
		Request:   csr,
		Profile:   profile,
		Serial:    req.Serial,
		NotBefore: req.NotBefore,
		NotAfter:  req.NotAfter,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %q: cfssl sign: %w", req.CommonName, err)
	}
	return finish(out, req.CommonName)
}

// Sign issues one leaf certificate for key signed by ca/caKey; see Issuer.Sign. Use an
// Issuer when signing many leaves with the same CA.
func Sign(ca *x509.Certificate, caKey *ecdsa.PrivateKey, key *ecdsa.PrivateKey, req Request) (*x509.Certificate, []byte, error) {
	is, err := NewIssuer(ca, caKey)
	if err != nil {
		return nil, nil, err
	}
	return is.Sign(key, req)
}

// EncodeKey returns key as PEM "EC PRIVATE KEY" (SEC 1), like kubeadm's keyutil.
func EncodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey returns pub as PEM "PUBLIC KEY" (PKIX), the format of sa.pub.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParseCertPEM parses the first PEM "CERTIFICATE" block of data; anything after it
// other than whitespace is an error.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("pki: no PEM data")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: PEM block is %q, want CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("pki: trailing data after certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate: %w", err)
	}
	return cert, nil
}
