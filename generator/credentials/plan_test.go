package credentials

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
	"github.com/scratchgen/scratchgen/generator/spec"
)

var (
	secretA = bytes.Repeat([]byte{1}, 32)
	secretB = bytes.Repeat([]byte{2}, 32)
	now     = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
)

const haSpec = `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata: {name: ha}
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: api.example.com:443
  network: {podCIDR: 10.10.0.0/16}
  auth: {credentials: CREDS}
  nodes:
  - {name: cp-1, address: 10.0.0.11, roles: [control-plane, etcd]}
  - {name: cp-2, address: 10.0.0.12, roles: [control-plane, etcd]}
  - {name: cp-3, address: 10.0.0.13, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
`

func resolve(t testing.TB, src string) *model.Cluster {
	t.Helper()
	doc, errs := spec.Parse([]byte(src))
	if len(errs) > 0 {
		t.Fatal(errs.Format(""))
	}
	c, _, errs := model.Resolve(doc, nil)
	if len(errs.Errors()) > 0 {
		t.Fatal(errs.Format(""))
	}
	return c
}

func plan(t testing.TB, creds string, secret []byte, lk *lock.Lock) (*model.Cluster, *Result) {
	t.Helper()
	c := resolve(t, strings.Replace(haSpec, "CREDS", creds, 1))
	res, err := Plan(c, lk, Options{Secret: secret, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

func files(fs []bundle.File) map[string]bundle.File {
	m := map[string]bundle.File{}
	for _, f := range fs {
		m[f.Path] = f
	}
	return m
}

func TestDeterministicAndSecretBound(t *testing.T) {
	_, a := plan(t, "perNode", secretA, nil)
	_, b := plan(t, "perNode", secretA, nil)
	_, c := plan(t, "perNode", secretB, nil)
	for node, fa := range a.Nodes {
		fb, fc := files(b.Nodes[node]), files(c.Nodes[node])
		for _, f := range fa {
			if !bytes.Equal(f.Data, fb[f.Path].Data) {
				t.Errorf("%s %s differs between two renders with the same inputs", node, f.Path)
			}
			if f.Path != paths.KnownTokens && bytes.Equal(f.Data, fc[f.Path].Data) && strings.HasSuffix(f.Path, ".key") {
				t.Errorf("%s %s is the same under another root secret", node, f.Path)
			}
		}
	}
	// The lock pins first-issue times: a later render with the lock gives the same bytes.
	_, d := plan(t, "perNode", secretA, a.Lock)
	later, err := Plan(resolve(t, strings.Replace(haSpec, "CREDS", "perNode", 1)), a.Lock, Options{Secret: secretA, Now: now.Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for node, fa := range a.Nodes {
		fd, fl := files(d.Nodes[node]), files(later.Nodes[node])
		for _, f := range fa {
			if !bytes.Equal(f.Data, fd[f.Path].Data) || !bytes.Equal(f.Data, fl[f.Path].Data) {
				t.Errorf("%s %s changed when rendered again with the lock", node, f.Path)
			}
		}
	}
}

func TestPlacementAndChains(t *testing.T) {
	c, res := plan(t, "perNode", secretA, nil)
	roots := map[ID]*x509.CertPool{}
	for _, ca := range CAs {
		roots[ca] = x509.NewCertPool()
		roots[ca].AddCert(res.Certs[ca])
	}
	for _, n := range c.Nodes {
		fs := files(res.Nodes[n.Name])
		for p, f := range fs {
			if strings.HasSuffix(p, ".key") || strings.HasSuffix(p, ".conf") || strings.Contains(p, "kubeconfig") || p == paths.KnownTokens {
				if f.Mode != bundle.ModeSecret || !f.Secret {
					t.Errorf("%s %s: mode %o secret %v, want 0600 and secret", n.Name, p, f.Mode, f.Secret)
				}
			} else if f.Mode != bundle.ModePublic || f.Secret {
				t.Errorf("%s %s: mode %o, want 0644", n.Name, p, f.Mode)
			}
		}
		_, hasCAKey := fs[paths.CAKey]
		if hasCAKey != n.ControlPlane() {
			t.Errorf("%s: ca.key present=%v, want only on control planes", n.Name, hasCAKey)
		}
		for _, forbidden := range []string{paths.EtcdCAKey, paths.FrontProxyCAKey} {
			if _, ok := fs[forbidden]; ok {
				t.Errorf("%s holds %s: no CA key but the cluster CA's may leave the renderer", n.Name, forbidden)
			}
		}
		// Every certificate chains to its CA and matches its key.
		for p, f := range fs {
			if !strings.HasSuffix(p, ".crt") {
				continue
			}
			cert, err := pki.ParseCertPEM(f.Data)
			if err != nil {
				t.Fatalf("%s %s: %v", n.Name, p, err)
			}
			if cert.IsCA {
				continue
			}
			ca := CA
			if strings.Contains(p, "/etcd/") || strings.Contains(p, "etcd-client") {
				ca = EtcdCA
			} else if strings.Contains(p, "front-proxy") {
				ca = FrontProxyCA
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots[ca], CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("%s %s does not chain to %s: %v", n.Name, p, ca, err)
			}
			key := fs[strings.TrimSuffix(p, ".crt")+".key"]
			if _, err := tls.X509KeyPair(f.Data, key.Data); err != nil {
				t.Errorf("%s %s: key does not match: %v", n.Name, p, err)
			}
		}
		// Kubelet credentials name this node.
		cfg, err := clientcmd.Load(fs[paths.KubeletKubeconfig].Data)
		if err != nil {
			t.Fatalf("%s kubelet kubeconfig: %v", n.Name, err)
		}
		for _, ai := range cfg.AuthInfos {
			cert, err := pki.ParseCertPEM(ai.ClientCertificateData)
			if err != nil {
				t.Fatal(err)
			}
			if want := "system:node:" + n.Name; cert.Subject.CommonName != want || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
				t.Errorf("%s kubelet client cert is %s %v, want %s system:nodes", n.Name, cert.Subject.CommonName, cert.Subject.Organization, want)
			}
			if ai.Token == "" {
				t.Errorf("%s kubelet kubeconfig has no token though staticTokens is on", n.Name)
			}
		}
		if cfg.Clusters[c.Name].Server != "https://api.example.com:443" {
			t.Errorf("%s kubelet server %s", n.Name, cfg.Clusters[c.Name].Server)
		}
		serving, _ := pki.ParseCertPEM(fs[paths.KubeletServingCert].Data)
		if err := serving.VerifyHostname(n.Address.String()); err != nil {
			t.Errorf("%s kubelet serving cert: %v", n.Name, err)
		}
		if n.ControlPlane() {
			api, _ := pki.ParseCertPEM(fs[paths.APIServerCert].Data)
			for _, host := range []string{"api.example.com", n.Name, "kubernetes.default.svc.cluster.local", "10.96.0.1", n.Address.String()} {
				if err := api.VerifyHostname(host); err != nil {
					t.Errorf("%s apiserver cert does not cover %s: %v", n.Name, host, err)
				}
			}
			cm, _ := clientcmd.Load(fs[paths.ControllerManagerConf].Data)
			if got, want := cm.Clusters[c.Name].Server, "https://"+n.Address.String()+":6443"; got != want {
				t.Errorf("%s controller-manager talks to %s, want its local API server %s", n.Name, got, want)
			}
		}
		if n.Etcd() {
			srv, _ := pki.ParseCertPEM(fs[paths.EtcdServerCert].Data)
			if srv.Subject.CommonName != n.Name {
				t.Errorf("%s etcd server CN %s", n.Name, srv.Subject.CommonName)
			}
		}
	}
}

func TestKnownTokens(t *testing.T) {
	for _, mode := range []string{"perNode", "perRole", "shared"} {
		c, res := plan(t, mode, secretA, nil)
		fs := files(res.Nodes["cp-1"])
		rd := csv.NewReader(bytes.NewReader(fs[paths.KnownTokens].Data))
		rd.FieldsPerRecord = -1 // as the API server's tokenfile reader
		recs, err := rd.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		users := map[string]string{}
		for _, r := range recs {
			if len(r) < 3 || len(r[0]) != pki.TokenLen {
				t.Errorf("%s: bad record %q", mode, r)
			}
			users[r[1]] = r[0]
		}
		want := map[string]int{"perNode": 2 + len(c.Nodes), "perRole": 3, "shared": 1}[mode]
		if len(recs) != want {
			t.Errorf("%s: %d token records, want %d", mode, len(recs), want)
		}
		// Every token a kubeconfig carries is in the file.
		for _, n := range c.Nodes {
			for _, p := range []string{paths.KubeletKubeconfig, paths.KubeProxyKubeconfig} {
				cfg, _ := clientcmd.Load(files(res.Nodes[n.Name])[p].Data)
				for name, ai := range cfg.AuthInfos {
					if users[name] != ai.Token {
						t.Errorf("%s %s %s: token of %s not in known_tokens.csv", mode, n.Name, p, name)
					}
				}
			}
		}
	}
}

func TestOpenSSLVerify(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIPPED LOUDLY: openssl is not installed; chains are still checked with crypto/x509 in TestPlacementAndChains")
	}
	c, res := plan(t, "perNode", secretA, nil)
	dir := t.TempDir()
	for _, n := range c.Nodes {
		for _, f := range res.Nodes[n.Name] {
			p := filepath.Join(dir, n.Name, f.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, f.Data, 0o600)
		}
	}
	cp := filepath.Join(dir, "cp-1")
	pairs := map[string]string{
		paths.APIServerCert: paths.CACert, paths.APIServerKubeletClientCert: paths.CACert,
		paths.APIServerEtcdClientCert: paths.EtcdCACert, paths.FrontProxyClientCert: paths.FrontProxyCACert,
		paths.EtcdServerCert: paths.EtcdCACert, paths.EtcdPeerCert: paths.EtcdCACert, paths.KubeletServingCert: paths.CACert,
	}
	for leaf, ca := range pairs {
		out, err := exec.Command("openssl", "verify", "-attime", "1767272400", "-CAfile", cp+ca, cp+leaf).CombinedOutput()
		if err != nil {
			t.Errorf("openssl verify %s: %v\n%s", leaf, err, out)
		}
	}
}

func TestRenewBumpsOnlyThatIdentity(t *testing.T) {
	_, a := plan(t, "perNode", secretA, nil)
	lk := a.Lock.Clone()
	r := lk.Certificates["kubelet-serving/worker-1"]
	r.Generation++
	lk.Certificates["kubelet-serving/worker-1"] = r
	_, b := plan(t, "perNode", secretA, lk)
	for node, fa := range a.Nodes {
		fb := files(b.Nodes[node])
		for _, f := range fa {
			changed := !bytes.Equal(f.Data, fb[f.Path].Data)
			want := node == "worker-1" && (f.Path == paths.KubeletServingCert || f.Path == paths.KubeletServingKey)
			if changed != want {
				t.Errorf("%s %s changed=%v after renewing worker-1's serving cert, want %v", node, f.Path, changed, want)
			}
		}
	}
}

func BenchmarkPlan1000(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(strings.Split(strings.Replace(haSpec, "CREDS", "perNode", 1), "  nodes:\n")[0])
	sb.WriteString("  nodes:\n  - {name: cp-1, address: 10.0.0.11, roles: [control-plane, etcd]}\n")
	for i := 0; i < 999; i++ {
		sb.WriteString("  - {name: w-" + strings.Repeat("x", 0) + itoa(i) + ", address: 10.1." + itoa(i/250) + "." + itoa(i%250+1) + ", roles: [worker]}\n")
	}
	c := resolve(b, strings.Replace(sb.String(), "10.10.0.0/16", "10.128.0.0/9", 1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Plan(c, nil, Options{Secret: secretA, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
