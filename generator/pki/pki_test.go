package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testSecret  = bytes.Repeat([]byte("0123456789abcdef"), 2)
	otherSecret = bytes.Repeat([]byte("fedcba9876543210"), 2)
	caNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(-5 * time.Minute)
	caNotAfter  = caNotBefore.AddDate(10, 0, 0)
	leafNotAft  = caNotBefore.AddDate(1, 0, 0)
	checkTime   = caNotBefore.Add(24 * time.Hour)
)

var (
	oidCN  = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO   = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidKU  = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidEKU = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBC  = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSKI = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAKI = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// bundle is a small rendered PKI: a CA and a server leaf, as PEM plus parsed forms.
type bundle struct {
	caKey, leafKey       *ecdsa.PrivateKey
	ca, leaf             *x509.Certificate
	caPEM, leafPEM       []byte
	caKeyPEM, leafKeyPEM []byte
}

func caRequest() Request {
	return Request{
		CommonName: "kubernetes",
		NotBefore:  caNotBefore,
		NotAfter:   caNotAfter,
		Serial:     DeriveSerial("ca", 0),
	}
}

func apiserverRequest() Request {
	return Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"cp-1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.ParseIP("10.96.0.1"), net.ParseIP("192.168.0.10"), net.ParseIP("fd00::1")},
		Usages:     ServerAuth,
		NotBefore:  caNotBefore,
		NotAfter:   leafNotAft,
		Serial:     DeriveSerial("apiserver", 0),
	}
}

func render(t testing.TB, secret []byte) bundle {
	t.Helper()
	var b bundle
	var err error
	if b.caKey, err = DeriveKey(secret, "ca"); err != nil {
		t.Fatal(err)
	}
	if b.leafKey, err = DeriveKey(secret, "apiserver"); err != nil {
		t.Fatal(err)
	}
	if b.ca, b.caPEM, err = NewCA(b.caKey, caRequest()); err != nil {
		t.Fatal(err)
	}
	if b.leaf, b.leafPEM, err = Sign(b.ca, b.caKey, b.leafKey, apiserverRequest()); err != nil {
		t.Fatal(err)
	}
	if b.caKeyPEM, err = EncodeKey(b.caKey); err != nil {
		t.Fatal(err)
	}
	if b.leafKeyPEM, err = EncodeKey(b.leafKey); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustIssuer(t testing.TB, b bundle) *Issuer {
	t.Helper()
	is, err := NewIssuer(b.ca, b.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestDeriveKeyDeterministic(t *testing.T) {
	k1, err := DeriveKey(testSecret, "ca")
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := DeriveKey(testSecret, "ca")
	if !k1.Equal(k2) {
		t.Error("same secret and label gave different keys")
	}
	if k1.Curve != elliptic.P256() {
		t.Error("key is not P-256")
	}
	k3, _ := DeriveKey(testSecret, "front-proxy-ca")
	k4, _ := DeriveKey(otherSecret, "ca")
	if k1.Equal(k3) || k1.Equal(k4) {
		t.Error("different label or secret gave the same key")
	}
	// The key is exactly the HKDF output read as a scalar.
	raw, _ := hkdf.Key(sha256.New, testSecret, []byte("scratchgen/v1 key"), "ca", 32)
	if want, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw); !k1.Equal(want) {
		t.Error("DeriveKey is not HKDF-SHA256(secret, salt, label)")
	}
	if _, err := DeriveKey(testSecret[:31], "ca"); err == nil {
		t.Error("31-byte secret accepted")
	}
	if _, err := DeriveKey(testSecret, ""); err == nil {
		t.Error("empty label accepted")
	}
}

func TestDeriveKeyCounter(t *testing.T) {
	orig := keyMaterial
	t.Cleanup(func() { keyMaterial = orig })

	var infos []string
	keyMaterial = func(secret []byte, info string) ([]byte, error) {
		infos = append(infos, info)
		switch info {
		case "sa": // zero scalar: rejected
			return make([]byte, 32), nil
		case "sa\x001": // ≥ group order: rejected
			return bytes.Repeat([]byte{0xff}, 32), nil
		}
		return orig(secret, info)
	}
	got, err := DeriveKey(testSecret, "sa")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sa", "sa\x001", "sa\x002"}; !slices.Equal(infos, want) {
		t.Fatalf("attempt infos = %q, want %q", infos, want)
	}
	raw, _ := orig(testSecret, "sa\x002")
	want, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if !got.Equal(want) {
		t.Error("counter path did not return the key of the third attempt")
	}
	plain, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), must(orig(testSecret, "sa")))
	if got.Equal(plain) {
		t.Error("counter path returned the attempt-0 key")
	}

	keyMaterial = func([]byte, string) ([]byte, error) { return make([]byte, 32), nil }
	if _, err := DeriveKey(testSecret, "sa"); err == nil {
		t.Error("always-rejected material did not give an error")
	}
	keyMaterial = func([]byte, string) ([]byte, error) { return nil, errors.New("boom") }
	if _, err := DeriveKey(testSecret, "sa"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("hkdf error not propagated: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestDeriveToken(t *testing.T) {
	tok := DeriveToken(testSecret, "bootstrap")
	if len(tok) != TokenLen || TokenLen != 32 {
		t.Fatalf("token length %d", len(tok))
	}
	for _, c := range tok {
		if !strings.ContainsRune(tokenAlphabet, c) {
			t.Fatalf("token %q has %q outside [A-Za-z0-9]", tok, c)
		}
	}
	if DeriveToken(testSecret, "bootstrap") != tok {
		t.Error("token not deterministic")
	}
	if DeriveToken(testSecret, "admin") == tok || DeriveToken(otherSecret, "bootstrap") == tok {
		t.Error("different label or secret gave the same token")
	}
	// Rejection sampling: recompute from the raw stream, skipping bytes ≥ 248. Over
	// several labels at least one stream byte must have been rejected, otherwise the
	// skip branch is untested.
	rejected := 0
	for i := range 20 {
		label := "tok-" + strconv.Itoa(i)
		stream, _ := hkdf.Key(sha256.New, testSecret, []byte("scratchgen/v1 token"), label, 64)
		var want []byte
		for _, c := range stream {
			if c >= 248 {
				if len(want) < 32 {
					rejected++
				}
				continue
			}
			if len(want) < 32 {
				want = append(want, tokenAlphabet[c%62])
			}
		}
		if got := DeriveToken(testSecret, label); got != string(want) {
			t.Errorf("DeriveToken(%q) = %q, want %q", label, got, want)
		}
	}
	if rejected == 0 {
		t.Error("no stream byte was rejected; rejection path not exercised")
	}
	for _, f := range []func(){
		func() { DeriveToken(testSecret[:16], "x") },
		func() { DeriveToken(testSecret, "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("invalid input did not panic")
				}
			}()
			f()
		}()
	}
}

func TestDeriveSerial(t *testing.T) {
	seen := map[string]bool{}
	for _, id := range []string{"ca", "apiserver", "kubelet-client/worker-1"} {
		for gen := range 3 {
			s := DeriveSerial(id, gen)
			if s.Sign() <= 0 || s.BitLen() != 127 {
				t.Errorf("serial %s/%d = %x: want positive 127-bit", id, gen, s)
			}
			if DeriveSerial(id, gen).Cmp(s) != 0 {
				t.Error("serial not deterministic")
			}
			der, _ := asn1.Marshal(s)
			if len(der) != 2+16 {
				t.Errorf("serial DER is %d bytes, want 18", len(der))
			}
			if seen[s.String()] {
				t.Errorf("serial collision at %s/%d", id, gen)
			}
			seen[s.String()] = true
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("random source used") }

func TestDeterministicSigner(t *testing.T) {
	key := must(DeriveKey(testSecret, "sig"))
	s := DeterministicSigner(key)
	digest := sha256.Sum256([]byte("hello"))
	a, err := s.Sign(failReader{}, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Sign(failReader{}, digest[:], crypto.SHA256)
	if !bytes.Equal(a, b) {
		t.Error("signatures differ")
	}
	if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], a) {
		t.Error("signature does not verify")
	}
	if !key.PublicKey.Equal(s.Public()) {
		t.Error("Public() mismatch")
	}
}

func TestReproducible(t *testing.T) {
	a, b := render(t, testSecret), render(t, testSecret)
	for name, pair := range map[string][2][]byte{
		"ca.crt":        {a.caPEM, b.caPEM},
		"ca.key":        {a.caKeyPEM, b.caKeyPEM},
		"apiserver.crt": {a.leafPEM, b.leafPEM},
		"apiserver.key": {a.leafKeyPEM, b.leafKeyPEM},
	} {
		if !bytes.Equal(pair[0], pair[1]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
	// A reused Issuer gives the same bytes as the one-shot Sign.
	_, pemB, err := mustIssuer(t, a).Sign(a.leafKey, apiserverRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemB, a.leafPEM) {
		t.Error("Issuer.Sign and Sign differ")
	}
}

// TestGolden pins the exact bytes. If it fails after a Go or cfssl upgrade, every
// existing cluster bundle would re-render differently: investigate before updating.
func TestGolden(t *testing.T) {
	b := render(t, testSecret)
	sum := func(p []byte) string { h := sha256.Sum256(p); return hex.EncodeToString(h[:]) }
	got := map[string]string{
		"ca.key":  sum(b.caKeyPEM),
		"ca.crt":  sum(b.caPEM),
		"leaf":    sum(b.leafPEM),
		"token":   DeriveToken(testSecret, "bootstrap"),
		"serial0": DeriveSerial("ca", 0).Text(16),
	}
	want := map[string]string{
		"ca.key":  "c36311899b0c7ff62914a116cea3bb71f3a93a705fab368844ef030c0d44f6ba",
		"ca.crt":  "45cb34089032afeaf78e79a9ef46dce4c3050d304f9f15ef83b73e675db2cca5",
		"leaf":    "bbc3829a4b7245377121b610e559097cfe457314687f61834fab7d0a23fc1dfc",
		"token":   "KbL5KyZqfQIWla7uAj4PXFJHRyGZ2isp",
		"serial0": "4f0dc6155dca3f4b9274b583cad33733",
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s = %q, want %q", k, got[k], want[k])
		}
	}
}

func TestDifferentSecret(t *testing.T) {
	a, b := render(t, testSecret), render(t, otherSecret)
	if a.caKey.Equal(b.caKey) || a.leafKey.Equal(b.leafKey) {
		t.Error("different secrets gave equal keys")
	}
	if bytes.Equal(a.caPEM, b.caPEM) || bytes.Equal(a.leafPEM, b.leafPEM) {
		t.Error("different secrets gave equal certificates")
	}
}

// rdnTypes lists the attribute types of a raw subject in encoding order.
func rdnTypes(t *testing.T, raw []byte) []string {
	t.Helper()
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) != 0 {
		t.Fatalf("bad subject: %v", err)
	}
	var out []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			out = append(out, atv.Type.String())
		}
	}
	return out
}

func extOIDs(c *x509.Certificate) []string {
	var out []string
	for _, e := range c.Extensions {
		out = append(out, e.Id.String())
	}
	return out
}

func TestCAFields(t *testing.T) {
	b := render(t, testSecret)
	// Check the DER, not the returned struct.
	ca, err := ParseCertPEM(b.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.Raw, b.ca.Raw) {
		t.Fatal("returned certificate and PEM differ")
	}
	req := caRequest()
	if ca.Subject.CommonName != "kubernetes" || len(ca.Subject.Organization) != 0 {
		t.Errorf("subject = %v", ca.Subject)
	}
	if got := rdnTypes(t, ca.RawSubject); !slices.Equal(got, []string{oidCN.String()}) {
		t.Errorf("subject attributes = %v, want only CN", got)
	}
	if !bytes.Equal(ca.RawIssuer, ca.RawSubject) {
		t.Error("issuer != subject")
	}
	if !slices.Equal(ca.DNSNames, []string{"kubernetes"}) || len(ca.IPAddresses) != 0 {
		t.Errorf("SANs = %v %v, want DNS:kubernetes", ca.DNSNames, ca.IPAddresses)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != -1 || ca.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v pathlen=%d zero=%v", ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign; ca.KeyUsage != want {
		t.Errorf("KeyUsage = %b, want %b", ca.KeyUsage, want)
	}
	if len(ca.ExtKeyUsage) != 0 {
		t.Errorf("CA has ExtKeyUsage %v", ca.ExtKeyUsage)
	}
	if !ca.NotBefore.Equal(req.NotBefore) || !ca.NotAfter.Equal(req.NotAfter) {
		t.Errorf("validity %v..%v", ca.NotBefore, ca.NotAfter)
	}
	if ca.SerialNumber.Cmp(req.Serial) != 0 {
		t.Errorf("serial %x, want %x", ca.SerialNumber, req.Serial)
	}
	if ca.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v", ca.SignatureAlgorithm)
	}
	if want := keyID(&b.caKey.PublicKey); !bytes.Equal(ca.SubjectKeyId, want) {
		t.Errorf("SKI = %x, want SHA-1(pubkey) %x", ca.SubjectKeyId, want)
	}
	if len(ca.AuthorityKeyId) != 0 {
		t.Errorf("self-signed CA has AKI %x", ca.AuthorityKeyId)
	}
	if got, want := extOIDs(ca), []string{oidKU.String(), oidBC.String(), oidSKI.String(), oidSAN.String()}; !slices.Equal(got, want) {
		t.Errorf("extensions = %v, want %v", got, want)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("self-signature: %v", err)
	}
}

// keyID is RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents.
func keyID(pub *ecdsa.PublicKey) []byte {
	raw, err := pub.Bytes() // uncompressed point, as in the SPKI BIT STRING
	if err != nil {
		panic(err)
	}
	h := sha1.Sum(raw)
	return h[:]
}

func TestLeafFields(t *testing.T) {
	b := render(t, testSecret)
	leaf, err := ParseCertPEM(b.leafPEM)
	if err != nil {
		t.Fatal(err)
	}
	req := apiserverRequest()
	if leaf.Subject.CommonName != req.CommonName || len(leaf.Subject.Organization) != 0 {
		t.Errorf("subject = %v", leaf.Subject)
	}
	if got := rdnTypes(t, leaf.RawSubject); !slices.Equal(got, []string{oidCN.String()}) {
		t.Errorf("subject attributes = %v", got)
	}
	if !bytes.Equal(leaf.RawIssuer, b.ca.RawSubject) {
		t.Error("issuer != CA subject")
	}
	if !slices.Equal(leaf.DNSNames, req.DNSNames) {
		t.Errorf("DNSNames = %v", leaf.DNSNames)
	}
	if !slices.EqualFunc(leaf.IPAddresses, req.IPs, net.IP.Equal) {
		t.Errorf("IPs = %v", leaf.IPAddresses)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("basic constraints IsCA=%v valid=%v", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; leaf.KeyUsage != want {
		t.Errorf("KeyUsage = %b, want %b", leaf.KeyUsage, want)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if !leaf.NotBefore.Equal(req.NotBefore) || !leaf.NotAfter.Equal(req.NotAfter) {
		t.Errorf("validity %v..%v", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.SerialNumber.Cmp(req.Serial) != 0 {
		t.Errorf("serial %x, want %x", leaf.SerialNumber, req.Serial)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, b.ca.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AKI %x != CA SKI %x", leaf.AuthorityKeyId, b.ca.SubjectKeyId)
	}
	if !bytes.Equal(leaf.SubjectKeyId, keyID(&b.leafKey.PublicKey)) {
		t.Errorf("leaf SKI %x not SHA-1(pubkey)", leaf.SubjectKeyId)
	}
	if got, want := extOIDs(leaf), []string{oidKU.String(), oidEKU.String(), oidBC.String(), oidSKI.String(), oidAKI.String(), oidSAN.String()}; !slices.Equal(got, want) {
		t.Errorf("extensions = %v, want %v", got, want)
	}

	// A client certificate with an organization and no SANs.
	is := mustIssuer(t, b)
	c, _, err := is.Sign(b.leafKey, Request{
		CommonName:   "kube-apiserver-kubelet-client",
		Organization: []string{"kubeadm:cluster-admins"},
		Usages:       ClientAuth,
		NotBefore:    caNotBefore,
		NotAfter:     leafNotAft,
		Serial:       DeriveSerial("apiserver-kubelet-client", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rdnTypes(t, c.RawSubject); !slices.Equal(got, []string{oidO.String(), oidCN.String()}) {
		t.Errorf("subject attributes = %v, want O, CN", got)
	}
	if !slices.Equal(c.Subject.Organization, []string{"kubeadm:cluster-admins"}) {
		t.Errorf("O = %v", c.Subject.Organization)
	}
	if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs) != 0 || slices.Contains(extOIDs(c), oidSAN.String()) {
		t.Errorf("client cert has SANs")
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}

	// Both usages, in kubeadm's order.
	c, _, err = is.Sign(b.leafKey, Request{CommonName: "etcd", Usages: ServerAuth | ClientAuth,
		NotBefore: caNotBefore, NotAfter: leafNotAft, Serial: big.NewInt(7)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
}

func TestMultipleOrganizations(t *testing.T) {
	b := render(t, testSecret)
	orgs := []string{"system:nodes", "b-group", "a-group"}
	c, _, err := mustIssuer(t, b).Sign(b.leafKey, Request{CommonName: "system:node:w1", Organization: orgs,
		Usages: ClientAuth, NotBefore: caNotBefore, NotAfter: leafNotAft, Serial: big.NewInt(9)})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(c.Subject.Organization)
	want := slices.Clone(orgs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("O = %v, want the set %v", c.Subject.Organization, orgs)
	}
}

func TestVerifyUsages(t *testing.T) {
	b := render(t, testSecret)
	is := mustIssuer(t, b)
	roots := x509.NewCertPool()
	roots.AddCert(b.ca)
	verify := func(c *x509.Certificate, u x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: checkTime, KeyUsages: []x509.ExtKeyUsage{u}})
		return err
	}
	for _, tc := range []struct {
		usages         Usage
		server, client bool
	}{
		{ServerAuth, true, false},
		{ClientAuth, false, true},
		{ServerAuth | ClientAuth, true, true},
	} {
		c, _, err := is.Sign(b.leafKey, Request{CommonName: "x", DNSNames: []string{"x"}, Usages: tc.usages,
			NotBefore: caNotBefore, NotAfter: leafNotAft, Serial: big.NewInt(int64(tc.usages))})
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(c, x509.ExtKeyUsageServerAuth); (err == nil) != tc.server {
			t.Errorf("usages %d: verify serverAuth err=%v, want ok=%v", tc.usages, err, tc.server)
		}
		if err := verify(c, x509.ExtKeyUsageClientAuth); (err == nil) != tc.client {
			t.Errorf("usages %d: verify clientAuth err=%v, want ok=%v", tc.usages, err, tc.client)
		}
	}
	// And the apiserver leaf by hostname.
	if _, err := b.leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: checkTime, DNSName: "kubernetes.default.svc"}); err != nil {
		t.Error(err)
	}
	// Outside the validity window.
	if _, err := b.leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: leafNotAft.Add(time.Second)}); err == nil {
		t.Error("expired leaf verified")
	}
	// Against another CA.
	other := render(t, otherSecret)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.ca)
	if _, err := b.leaf.Verify(x509.VerifyOptions{Roots: otherRoots, CurrentTime: checkTime}); err == nil {
		t.Error("leaf verified against a foreign CA")
	}
}

func TestKeyMatchesCertificate(t *testing.T) {
	b := render(t, testSecret)
	if !b.leafKey.PublicKey.Equal(b.leaf.PublicKey) || !b.caKey.PublicKey.Equal(b.ca.PublicKey) {
		t.Error("certificate public key != derived key")
	}
	if _, err := tls.X509KeyPair(b.leafPEM, b.leafKeyPEM); err != nil {
		t.Errorf("leaf pair: %v", err)
	}
	if _, err := tls.X509KeyPair(b.caPEM, b.caKeyPEM); err != nil {
		t.Errorf("CA pair: %v", err)
	}
	if _, err := tls.X509KeyPair(b.leafPEM, b.caKeyPEM); err == nil {
		t.Error("leaf cert matched the CA key")
	}
}

func TestEncode(t *testing.T) {
	key := must(DeriveKey(testSecret, "sa"))
	kp := must(EncodeKey(key))
	blk, rest := pem.Decode(kp)
	if blk == nil || blk.Type != "EC PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("key PEM = %q", kp)
	}
	if k2, err := x509.ParseECPrivateKey(blk.Bytes); err != nil || !k2.Equal(key) {
		t.Errorf("key round trip: %v", err)
	}
	pp := must(EncodePublicKey(key.Public()))
	blk, _ = pem.Decode(pp)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public PEM = %q", pp)
	}
	if pub, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("public key round trip: %v", err)
	}
	if _, err := EncodePublicKey("not a key"); err == nil {
		t.Error("EncodePublicKey accepted a string")
	}
}

func TestParseCertPEM(t *testing.T) {
	b := render(t, testSecret)
	if _, err := ParseCertPEM(append(slices.Clone(b.caPEM), '\n')); err != nil {
		t.Error(err)
	}
	for name, in := range map[string][]byte{
		"empty":    nil,
		"key":      b.caKeyPEM,
		"two":      append(slices.Clone(b.caPEM), b.leafPEM...),
		"garbage":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}),
		"not-pem ": []byte("hello"),
	} {
		if _, err := ParseCertPEM(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	b := render(t, testSecret)
	is := mustIssuer(t, b)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), nil)
	base := apiserverRequest
	cases := map[string]func(*Request){
		"no CN":          func(r *Request) { r.CommonName = "" },
		"no serial":      func(r *Request) { r.Serial = nil },
		"zero serial":    func(r *Request) { r.Serial = big.NewInt(0) },
		"negative":       func(r *Request) { r.Serial = big.NewInt(-1) },
		"21-octet":       func(r *Request) { r.Serial = new(big.Int).Lsh(big.NewInt(1), 159) },
		"no NotBefore":   func(r *Request) { r.NotBefore = time.Time{} },
		"no NotAfter":    func(r *Request) { r.NotAfter = time.Time{} },
		"inverted":       func(r *Request) { r.NotAfter = r.NotBefore.Add(-time.Hour) },
		"no usages":      func(r *Request) { r.Usages = 0 },
		"unknown usage":  func(r *Request) { r.Usages = 4 },
		"bad IP":         func(r *Request) { r.IPs = []net.IP{{1, 2, 3}} },
		"non-ASCII name": func(r *Request) { r.DNSNames = []string{"bücher.example"} },
	}
	for name, mod := range cases {
		r := base()
		mod(&r)
		if _, _, err := is.Sign(b.leafKey, r); err == nil {
			t.Errorf("Sign: %s accepted", name)
		}
	}
	if _, _, err := is.Sign(p384, base()); err == nil {
		t.Error("P-384 leaf key accepted")
	}
	if _, _, err := is.Sign(nil, base()); err == nil {
		t.Error("nil leaf key accepted")
	}
	r := caRequest()
	r.Usages = ServerAuth
	if _, _, err := NewCA(b.caKey, r); err == nil {
		t.Error("CA with Usages accepted")
	}
	r = caRequest()
	r.Serial = nil
	if _, _, err := NewCA(b.caKey, r); err == nil {
		t.Error("CA without serial accepted")
	}
	if _, err := NewIssuer(b.ca, b.leafKey); err == nil {
		t.Error("NewIssuer accepted a key that does not match the CA")
	}
	if _, err := NewIssuer(b.leaf, b.leafKey); err == nil {
		t.Error("NewIssuer accepted a leaf as CA")
	}
	// The largest allowed serial (20 octets) works.
	r = base()
	r.Serial = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))
	if c, _, err := is.Sign(b.leafKey, r); err != nil || c.SerialNumber.Cmp(r.Serial) != 0 {
		t.Errorf("159-bit serial: %v", err)
	}
}

func TestCASANsAndFractionalTimes(t *testing.T) {
	key := must(DeriveKey(testSecret, "etcd-ca"))
	req := Request{CommonName: "etcd-ca", Organization: []string{"etcd"},
		DNSNames: []string{"etcd-ca", "etcd.local"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: caNotBefore.Add(300 * time.Millisecond), NotAfter: caNotAfter, Serial: DeriveSerial("etcd-ca", 1)}
	ca, _, err := NewCA(key, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ca.DNSNames, req.DNSNames) || len(ca.IPAddresses) != 1 || !ca.IPAddresses[0].Equal(req.IPs[0]) {
		t.Errorf("SANs = %v %v", ca.DNSNames, ca.IPAddresses)
	}
	if !ca.NotBefore.Equal(caNotBefore) {
		t.Errorf("NotBefore = %v, want the second-truncated %v", ca.NotBefore, caNotBefore)
	}
	if got := rdnTypes(t, ca.RawSubject); !slices.Equal(got, []string{oidO.String(), oidCN.String()}) {
		t.Errorf("subject attributes = %v", got)
	}
}

// TestConcurrentSign issues from one Issuer on many goroutines (run with -race) and
// checks the result equals serial issuance.
func TestConcurrentSign(t *testing.T) {
	b := render(t, testSecret)
	is := mustIssuer(t, b)
	const n = 32
	req := func(i int) Request {
		return Request{CommonName: "node-" + strconv.Itoa(i), DNSNames: []string{"node-" + strconv.Itoa(i)},
			Usages: ServerAuth, NotBefore: caNotBefore, NotAfter: leafNotAft, Serial: DeriveSerial("node", i)}
	}
	par := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, p, err := is.Sign(b.leafKey, req(i))
			if err != nil {
				t.Error(err)
			}
			par[i] = p
		})
	}
	wg.Wait()
	for i := range n {
		_, p, err := is.Sign(b.leafKey, req(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, par[i]) {
			t.Errorf("leaf %d differs between concurrent and serial issuance", i)
		}
	}
}

// TestQuiet checks that cfssl's logger, which writes through the standard log package,
// stays silent while issuing.
func TestQuiet(t *testing.T) {
	var buf bytes.Buffer
	prev := log.Writer()
	log.SetOutput(&buf)
	t.Cleanup(func() { log.SetOutput(prev) })
	render(t, testSecret)
	if buf.Len() != 0 {
		t.Errorf("cfssl logged: %q", buf.String())
	}
}

func TestOpenSSLVerify(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("SKIPPING openssl interoperability check: openssl binary not found in PATH")
	}
	b := render(t, testSecret)
	client, _, err := mustIssuer(t, b).Sign(b.leafKey, Request{CommonName: "kube-apiserver-etcd-client",
		Usages: ClientAuth, NotBefore: caNotBefore, NotAfter: leafNotAft, Serial: DeriveSerial("etcd-client", 0)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.crt", b.caPEM)
	serverFile := write("apiserver.crt", b.leafPEM)
	clientFile := write("client.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Raw}))
	keyFile := write("apiserver.key", b.leafKeyPEM)
	at := strconv.FormatInt(checkTime.Unix(), 10)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		file, purpose string
		ok            bool
	}{
		{caFile, "any", true},
		{serverFile, "sslserver", true},
		{serverFile, "sslclient", false},
		{clientFile, "sslclient", true},
		{clientFile, "sslserver", false},
	} {
		out, err := run("verify", "-attime", at, "-purpose", tc.purpose, "-CAfile", caFile, tc.file)
		if (err == nil) != tc.ok {
			t.Errorf("openssl verify -purpose %s %s: ok=%v, want %v\n%s", tc.purpose, filepath.Base(tc.file), err == nil, tc.ok, out)
		}
	}
	// The apiserver certificate matches its host names per openssl too.
	if out, err := run("verify", "-attime", at, "-verify_hostname", "kubernetes.default.svc", "-CAfile", caFile, serverFile); err != nil {
		t.Errorf("openssl verify_hostname: %v\n%s", err, out)
	}
	// openssl reads the SEC1 key and finds it matches the certificate.
	pubFromKey, err := run("pkey", "-in", keyFile, "-pubout")
	if err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, pubFromKey)
	}
	pubFromCert, err := run("x509", "-in", serverFile, "-noout", "-pubkey")
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, pubFromCert)
	}
	if pubFromKey != pubFromCert {
		t.Errorf("openssl: key and certificate public keys differ:\n%s\n%s", pubFromKey, pubFromCert)
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		if _, err := DeriveKey(testSecret, "node-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignLeaf(b *testing.B) {
	bd := render(b, testSecret)
	is := mustIssuer(b, bd)
	req := apiserverRequest()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.Serial = DeriveSerial("bench", i)
		if _, _, err := is.Sign(bd.leafKey, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignLeafOneShot measures the package-level Sign, which builds an Issuer
// (and a cfssl signer) per call.
func BenchmarkSignLeafOneShot(b *testing.B) {
	bd := render(b, testSecret)
	req := apiserverRequest()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.Serial = DeriveSerial("bench", i)
		if _, _, err := Sign(bd.ca, bd.caKey, bd.leafKey, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCSRDERIsCrypto509s: the CSR csrDER builds is, byte for byte, the one
// x509.CreateCertificateRequest makes of the same template and key (RFC 6979 signatures
// make both deterministic), with and without SANs, organizations, IPv4 and IPv6
// addresses; and it parses with a valid signature.
func TestCSRDERIsCrypto509s(t *testing.T) {
	reqs := []Request{
		{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes", "kubernetes.default.svc.cluster.local"}, IPs: []net.IP{net.ParseIP("10.96.0.1"), net.ParseIP("fd00::1"), net.ParseIP("192.0.2.10")}},
		{CommonName: "system:node:w-1", Organization: []string{"system:nodes"}},
		{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins", "system:masters"}},
		{CommonName: "w-1", DNSNames: []string{"w-1"}},
		{CommonName: "etcd", IPs: []net.IP{net.ParseIP("127.0.0.1")}},
		{CommonName: "ünïcode and, commas = +"},
	}
	for i, req := range reqs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, withSANs := range []bool{false, true} {
			tpl := x509.CertificateRequest{Subject: pkix.Name{CommonName: req.CommonName, Organization: req.Organization}, SignatureAlgorithm: x509.ECDSAWithSHA256}
			if withSANs {
				tpl.DNSNames, tpl.IPAddresses = req.DNSNames, req.IPs
			}
			want, err := x509.CreateCertificateRequest(nil, &tpl, DeterministicSigner(key))
			if err != nil {
				t.Fatal(err)
			}
			got, err := csrDER(key, &req, withSANs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("request %d (SANs %v): csrDER differs from crypto/x509's CSR:\n got %x\nwant %x", i, withSANs, got, want)
			}
			csr, err := x509.ParseCertificateRequest(got)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
	}
}
