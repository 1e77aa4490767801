package credentials

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// planLocked resolves spec src against lk (as a render does: the model knows the
// rotations in progress) and plans with secret (nil: a review of the bundle in disk).
func planLocked(t testing.TB, src string, lk *lock.Lock, secret []byte, at time.Time, disk map[string][]bundle.File) (*model.Cluster, *Result) {
	t.Helper()
	doc, errs := spec.Parse([]byte(src))
	if len(errs) > 0 {
		t.Fatal(errs.Format(""))
	}
	c, _, errs := model.Resolve(doc, lk)
	if len(errs.Errors()) > 0 {
		t.Fatal(errs.Format(""))
	}
	opts := Options{Secret: secret, Now: at}
	if disk != nil {
		opts.Existing = func(node, p string) []byte {
			for _, f := range disk[node] {
				if f.Path == p {
					return f.Data
				}
			}
			return nil
		}
	}
	res, err := Plan(c, lk, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

// diskOf is a plan's files by node ("" for admin/).
func diskOf(r *Result) map[string][]bundle.File {
	out := map[string][]bundle.File{"": r.Admin}
	for n, fs := range r.Nodes {
		out[n] = fs
	}
	return out
}

func pemCerts(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func verifies(at time.Time, leaf *x509.Certificate, roots ...*x509.Certificate) error {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

var rotSpec = strings.Replace(haSpec, "CREDS", "perNode", 1)

// TestSameKeyCARenewal: `certs renew ca` re-issues the CA with the same key, subject and
// subject key id, a new serial and validity; the leaves it signed are unchanged, and old
// and new leaves verify against the old and the new CA certificate alike (Go and OpenSSL).
func TestSameKeyCARenewal(t *testing.T) {
	_, before := planLocked(t, rotSpec, nil, secretA, now, nil)
	later := now.Add(300 * 24 * time.Hour) // the old admin certificate is still valid
	lk, _, err := Renew(before.Lock, []ID{CA, Admin}, later)
	if err != nil {
		t.Fatal(err)
	}
	_, after := planLocked(t, rotSpec, lk, secretA, later, nil)
	oldCA, newCA := before.Certs[CA], after.Certs[CA]
	if !bytes.Equal(oldCA.RawSubject, newCA.RawSubject) || !bytes.Equal(oldCA.SubjectKeyId, newCA.SubjectKeyId) || !bytes.Equal(oldCA.RawSubjectPublicKeyInfo, newCA.RawSubjectPublicKeyInfo) {
		t.Fatal("the renewed CA has another subject, subject key id or key")
	}
	if oldCA.SerialNumber.Cmp(newCA.SerialNumber) == 0 || !newCA.NotAfter.After(oldCA.NotAfter) {
		t.Errorf("the renewed CA keeps serial %v or validity until %v", newCA.SerialNumber, newCA.NotAfter)
	}
	if got := newCA.NotAfter.Sub(newCA.NotBefore); got != 10*365*24*time.Hour {
		t.Errorf("renewed CA valid for %v, want the spec's caValidity", got)
	}
	// Leaves not renewed are byte-identical; admin (renewed) is new.
	cp1a, cp1b := files(before.Nodes["cp-1"]), files(after.Nodes["cp-1"])
	if !bytes.Equal(cp1a[paths.APIServerCert].Data, cp1b[paths.APIServerCert].Data) {
		t.Error("renewing the CA changed apiserver.crt, which it signed")
	}
	oldLeaf, newLeaf := before.Certs[Admin], after.Certs[Admin]
	for _, c := range []struct {
		name     string
		leaf, ca *x509.Certificate
	}{{"old leaf, new CA", oldLeaf, newCA}, {"new leaf, old CA", newLeaf, oldCA}, {"old leaf, old CA", oldLeaf, oldCA}, {"new leaf, new CA", newLeaf, newCA}} {
		if err := verifies(later.Add(time.Hour), c.leaf, c.ca); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("SKIPPED LOUDLY: openssl is not installed; the cross-verification above used crypto/x509 only")
		return
	}
	dir := t.TempDir()
	write := func(name string, c *x509.Certificate) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
		return p
	}
	oldCAf, newCAf, oldLf, newLf := write("old-ca.crt", oldCA), write("new-ca.crt", newCA), write("old.crt", oldLeaf), write("new.crt", newLeaf)
	at := later.Add(time.Hour).Unix()
	for _, c := range [][2]string{{oldLf, newCAf}, {newLf, oldCAf}} {
		out, err := exec.Command("openssl", "verify", "-attime", itoa(int(at)), "-CAfile", c[1], c[0]).CombinedOutput()
		if err != nil {
			t.Errorf("openssl verify %s against %s: %v\n%s", filepath.Base(c[0]), filepath.Base(c[1]), err, out)
		}
	}
}

// stagePlans renders the stages of a rotation of id: before, stage 1, stage 2 and retired.
func stagePlans(t *testing.T, id ID, validity string) []*Result {
	t.Helper()
	src := rotSpec
	if validity != "" {
		src = strings.Replace(src, "  network:", "  pki: {certValidity: "+validity+"}\n  network:", 1)
	}
	_, r0 := planLocked(t, src, nil, secretA, now, nil)
	t1 := now.Add(30 * 24 * time.Hour)
	lk, err := StartRotation(r0.Lock, id, t1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := AdvanceRotation(lk, id); err == nil || !strings.Contains(err.Error(), "not rendered yet") {
		t.Errorf("advancing an unrendered stage: %v", err)
	}
	_, r1 := planLocked(t, src, lk, secretA, t1, nil)
	if r := r1.Lock.Rotations[string(id)]; !r.Rendered || r.Stage != StageTrustBoth || r.Previous.SHA256 == "" {
		t.Fatalf("stage 1 lock: %+v", r)
	}
	lk, stage, err := AdvanceRotation(r1.Lock, id)
	if err != nil || stage != StageReissue {
		t.Fatal(stage, err)
	}
	_, r2 := planLocked(t, src, lk, secretA, t1, nil)
	lk, stage, err = AdvanceRotation(r2.Lock, id)
	if err != nil || stage != StageRetire || lk.Rotations != nil {
		t.Fatal(stage, err, lk.Rotations)
	}
	_, r3 := planLocked(t, src, lk, secretA, t1, nil)
	// Without the secret, each stage reviews to the same public files from the bundle of
	// that stage on disk, and nothing certificate-bearing is pending.
	for i, lks := range []*lock.Lock{r1.Lock, r2.Lock} {
		rs := []*Result{r1, r2}[i]
		_, rev := planLocked(t, src, lks, nil, t1, diskOf(rs))
		for _, p := range rev.Pending {
			t.Errorf("stage %d reviewed without the secret: %s pending (%s)", i+1, p.ID, p.Reason)
		}
		for node, fs := range rs.Nodes {
			got := files(rev.Nodes[node])
			for _, f := range fs {
				if f.Secret {
					continue
				}
				if !bytes.Equal(got[f.Path].Data, f.Data) {
					t.Errorf("stage %d reviewed without the secret: %s %s differs", i+1, node, f.Path)
				}
			}
		}
	}
	return []*Result{r0, r1, r2, r3}
}

// TestClusterCARotation: stage 1 trusts the old and the new CA everywhere the CA is
// trusted, leaves unchanged, the controller manager signing with the old one from its
// own pair; stage 2 re-issues every leaf of the CA from the new one, trust files
// unchanged; retiring leaves only the new CA, and ca.key its key.
func TestClusterCARotation(t *testing.T) {
	rs := stagePlans(t, CA, "")
	r0, r1, r2, r3 := rs[0], rs[1], rs[2], rs[3]
	oldCA, newCA := r0.Certs[CA], r1.Certs[CA]
	if bytes.Equal(oldCA.RawSubjectPublicKeyInfo, newCA.RawSubjectPublicKeyInfo) {
		t.Fatal("the rotated CA has the same key")
	}
	cp := func(r *Result) map[string]bundle.File { return files(r.Nodes["cp-1"]) }
	trust := func(r *Result, node string) []*x509.Certificate {
		return pemCerts(t, files(r.Nodes[node])[paths.CACert].Data)
	}
	kcCA := func(r *Result, node, p string) []*x509.Certificate {
		cfg, err := clientcmd.Load(files(r.Nodes[node])[p].Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range cfg.Clusters {
			return pemCerts(t, cl.CertificateAuthorityData)
		}
		return nil
	}
	for _, st := range []struct {
		name                     string
		r                        *Result
		trusted                  []*x509.Certificate
		signer                   *x509.Certificate
		signerFiles, leavesFromN bool
	}{
		{"stage 1", r1, []*x509.Certificate{oldCA, newCA}, oldCA, true, false},
		{"stage 2", r2, []*x509.Certificate{oldCA, newCA}, newCA, true, true},
		{"retired", r3, []*x509.Certificate{newCA}, newCA, false, true},
	} {
		for _, node := range []string{"cp-1", "worker-1"} {
			for _, got := range [][]*x509.Certificate{trust(st.r, node), kcCA(st.r, node, paths.KubeletKubeconfig)} {
				if len(got) != len(st.trusted) {
					t.Fatalf("%s: %s trusts %d CA(s), want %d", st.name, node, len(got), len(st.trusted))
				}
				for i := range got {
					if !got[i].Equal(st.trusted[i]) {
						t.Errorf("%s: %s trusts the wrong CA at %d", st.name, node, i)
					}
				}
			}
		}
		f := cp(st.r)
		_, hasKey := f[paths.CAKey]
		_, hasSigner := f[paths.CASignerCert]
		if hasSigner != st.signerFiles || hasKey == st.signerFiles {
			t.Errorf("%s: ca.key %v, ca-signer.crt %v", st.name, hasKey, hasSigner)
		}
		if st.signerFiles {
			if s := pemCerts(t, f[paths.CASignerCert].Data); len(s) != 1 || !s[0].Equal(st.signer) {
				t.Errorf("%s: ca-signer.crt is not the signing CA", st.name)
			}
		}
		apiserver := pemCerts(t, f[paths.APIServerCert].Data)[0]
		want := oldCA
		if st.leavesFromN {
			want = newCA
		}
		if err := apiserver.CheckSignatureFrom(want); err != nil {
			t.Errorf("%s: apiserver.crt is not signed by the %s CA: %v", st.name, map[bool]string{true: "new", false: "old"}[st.leavesFromN], err)
		}
		if err := verifies(now.Add(31*24*time.Hour), apiserver, st.trusted...); err != nil {
			t.Errorf("%s: apiserver.crt does not verify against the trusted CAs: %v", st.name, err)
		}
	}
	// Stage 1 changes only trust and the signer pair; stage 2 only leaves of the CA (and
	// the kubeconfigs that embed them); the trust files stay byte-identical.
	a, b := cp(r0), cp(r1)
	for p, f := range b {
		if f.Secret {
			continue // kubeconfigs embed the trust
		}
		if old, ok := a[p]; ok && !bytes.Equal(old.Data, f.Data) && p != paths.CACert {
			t.Errorf("stage 1 changed %s", p)
		}
	}
	if !bytes.Equal(cp(r1)[paths.CACert].Data, cp(r2)[paths.CACert].Data) {
		t.Error("stage 2 changed ca.crt")
	}
	if !bytes.Equal(cp(r1)[paths.EtcdServerCert].Data, cp(r2)[paths.EtcdServerCert].Data) {
		t.Error("stage 2 of the cluster CA re-issued an etcd certificate")
	}
	if bytes.Equal(cp(r1)[paths.KubeletServingCert].Data, cp(r2)[paths.KubeletServingCert].Data) {
		t.Error("stage 2 did not re-issue the kubelet serving certificate")
	}
	// Re-issued leaves: the same key, a serial of their own.
	if a, b := r1.Certs[APIServerID("cp-1")], r2.Certs[APIServerID("cp-1")]; !bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) || a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Error("stage 2 changed the apiserver's key, or kept its serial")
	}
	if !bytes.Equal(cp(r3)[paths.CAKey].Data, cp(r2)[paths.CASignerKey].Data) {
		t.Error("after retiring, ca.key is not the new CA's key")
	}
}

// TestEtcdCARotation: only etcd trust and etcd leaves move; the cluster CA is untouched.
func TestEtcdCARotation(t *testing.T) {
	rs := stagePlans(t, EtcdCA, "")
	for i, r := range rs[1:3] {
		f := files(r.Nodes["cp-1"])
		if n := len(pemCerts(t, f[paths.EtcdCACert].Data)); n != 2 {
			t.Errorf("stage %d: etcd/ca.crt holds %d CAs", i+1, n)
		}
		if n := len(pemCerts(t, f[paths.CACert].Data)); n != 1 {
			t.Errorf("stage %d: ca.crt holds %d CAs", i+1, n)
		}
		if _, ok := f[paths.CASignerCert]; ok {
			t.Errorf("stage %d: an etcd CA rotation placed the cluster CA's signer pair", i+1)
		}
	}
	if bytes.Equal(files(rs[1].Nodes["cp-1"])[paths.EtcdPeerCert].Data, files(rs[2].Nodes["cp-1"])[paths.EtcdPeerCert].Data) {
		t.Error("stage 2 did not re-issue the etcd peer certificate")
	}
}

// TestSARotation: sa.pub holds both public keys in stages 1 and 2, sa.key signs with the
// old one in stage 1 and the new one in stage 2; retiring leaves the new public key.
func TestSARotation(t *testing.T) {
	rs := stagePlans(t, SA, "")
	keys := func(r *Result) (pubs [][]byte, key []byte) {
		f := files(r.Nodes["cp-1"])
		data := f[paths.SAPub].Data
		for len(data) > 0 {
			var b *pem.Block
			if b, data = pem.Decode(data); b == nil {
				break
			}
			pubs = append(pubs, b.Bytes)
		}
		return pubs, f[paths.SAKey].Data
	}
	p0, k0 := keys(rs[0])
	p1, k1 := keys(rs[1])
	p2, k2 := keys(rs[2])
	p3, k3 := keys(rs[3])
	if len(p0) != 1 || len(p1) != 2 || len(p2) != 2 || len(p3) != 1 {
		t.Fatalf("public keys per stage: %d %d %d %d, want 1 2 2 1", len(p0), len(p1), len(p2), len(p3))
	}
	if !bytes.Equal(p1[0], p0[0]) || bytes.Equal(p1[1], p0[0]) || !bytes.Equal(p3[0], p1[1]) {
		t.Error("sa.pub does not hold the old then the new key, and then the new one alone")
	}
	if !bytes.Equal(k1, k0) || bytes.Equal(k2, k1) || !bytes.Equal(k3, k2) {
		t.Error("sa.key does not sign with the old key in stage 1 and the new one from stage 2")
	}
	for i, r := range rs {
		if !bytes.Equal(files(r.Nodes["cp-1"])[paths.CACert].Data, files(rs[0].Nodes["cp-1"])[paths.CACert].Data) {
			t.Errorf("stage %d of the SA rotation changed ca.crt", i)
		}
	}
}

// TestLifetimesSurviveRenewAndRotation: a custom certValidity is what renewed and
// re-issued certificates get.
func TestLifetimesSurviveRenewAndRotation(t *testing.T) {
	rs := stagePlans(t, CA, "2160h")
	for i, r := range rs {
		c := r.Certs[APIServerID("cp-1")]
		if got := c.NotAfter.Sub(c.NotBefore); got != 2160*time.Hour {
			t.Errorf("stage %d: apiserver.crt valid for %v, want the spec's 2160h", i, got)
		}
	}
	src := strings.Replace(rotSpec, "  network:", "  pki: {certValidity: 2160h}\n  network:", 1)
	lk, _, err := Renew(rs[3].Lock, []ID{APIServerID("cp-1"), CA}, now.Add(60*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, r := planLocked(t, src, lk, secretA, now.Add(60*24*time.Hour), nil)
	if c := r.Certs[APIServerID("cp-1")]; c.NotAfter.Sub(c.NotBefore) != 2160*time.Hour {
		t.Errorf("renewed apiserver.crt valid for %v, want 2160h", c.NotAfter.Sub(c.NotBefore))
	}
}
