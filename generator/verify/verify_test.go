package verify_test

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/pki"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/verify"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// verifyAt runs verify.Bundle at testAt.
func verifyAt(t *testing.T, dir string, opts verify.Options) []verify.Problem {
	t.Helper()
	if opts.At.IsZero() {
		opts.At = testAt
	}
	ps, err := verify.Bundle(dir, opts)
	if err != nil {
		t.Fatalf("verify.Bundle: %v", err)
	}
	return ps
}

func lines(ps []verify.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestCleanBundles: freshly rendered bundles of several specs have no problems (an
// unpinned image is only a warning), and a pinned bundle passes --require-pinned.
func TestCleanBundles(t *testing.T) {
	for _, name := range []string{"example", "ha-3", "ha-5", "per-role", "shared", "none-flatcar", "hyperkube", "example-pinned"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, name)
			opts := verify.Options{RequirePinned: strings.HasSuffix(name, "-pinned")}
			ps := verifyAt(t, dir, opts)
			if errs := verify.Errors(ps); len(errs) > 0 {
				t.Fatalf("a clean bundle has problems:\n%s", lines(errs))
			}
			if opts.RequirePinned && len(ps) > 0 {
				t.Errorf("a pinned bundle has warnings:\n%s", lines(ps))
			}
			if !opts.RequirePinned && len(ps) == 0 {
				t.Errorf("an unpinned bundle has no warnings")
			}
		})
	}
}

// TestEmbeddedSecrets: with provisioning.embedSecrets the views carry keys, must be 0600
// and listed in .gitignore; the clean bundle passes and a 0644 view fails.
func TestEmbeddedSecrets(t *testing.T) {
	data := []byte(strings.Replace(string(specData(t, "example")), "  #   embedSecrets: false", "    embedSecrets: true", 1))
	data = []byte(strings.Replace(string(data), "  # provisioning:", "  provisioning:", 1))
	if !bytes.Contains(data, []byte("\n    embedSecrets: true")) {
		t.Fatal("could not enable embedSecrets in the example spec")
	}
	dir, _ := renderTo(t, t.TempDir(), data, nil)
	if errs := verify.Errors(verifyAt(t, dir, verify.Options{})); len(errs) > 0 {
		t.Fatalf("a clean bundle with embedded secrets has problems:\n%s", lines(errs))
	}
	chmod(t, filepath.Join(dir, "nodes", "worker-1", "ignition.json"), 0o644)
	resum(t, dir)
	expect(t, verifyAt(t, dir, verify.Options{}), "nodes/worker-1/ignition.json", "has mode 0644, want 0600: it carries private keys or tokens")
}

// TestEmbeddedImages: a bundle with image archives in rootfs (left out of the views,
// listed in their header, imported by a unit) passes; removing an archive fails.
func TestEmbeddedImages(t *testing.T) {
	data := specData(t, "example")
	lk := pinnedLock(t, data)
	archives := map[string][]byte{}
	for tag, pin := range lk.Images {
		archives[tag] = fakeArchive(t, pin.Digest)
	}
	out, err := render.Render(data, lk, render.Deps{Secret: testSecret, Now: testNow, WithImages: true, ImageArchives: archives})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), out.Plan.Cluster)
	if _, err := writer.Write(dir, out.Plan.Files(), writer.NoSync()); err != nil {
		t.Fatal(err)
	}
	if ps := verifyAt(t, dir, verify.Options{RequirePinned: true}); len(ps) > 0 {
		t.Fatalf("a clean bundle with embedded images has problems:\n%s", lines(ps))
	}
	matches, _ := filepath.Glob(rootfs(dir, "worker-1", "/var/lib/scratchgen/images/*pause*.tar"))
	if len(matches) != 1 {
		t.Fatalf("no pause archive on worker-1: %v", matches)
	}
	if err := os.Remove(matches[0]); err != nil {
		t.Fatal(err)
	}
	resum(t, dir)
	p := "/var/lib/scratchgen/images/" + filepath.Base(matches[0])
	ps := verifyAt(t, dir, verify.Options{})
	expect(t, ps, "nodes/worker-1/rootfs/etc/systemd/system/scratchgen-images.service", "passes "+p+", which is not in the node's rootfs")
	expect(t, ps, "nodes/worker-1/user-data", "lists "+p+" as an omitted image archive, but rootfs has no such file")
}

// fakeArchive is the smallest tar images.EmbedFiles accepts for a pinned digest: an
// index.json naming it.
func fakeArchive(t *testing.T, digest string) []byte {
	t.Helper()
	idx := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","size":1,"digest":"` + digest + `"}]}`)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: int64(len(idx)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(idx)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// corruption is one deliberate corruption of a good bundle and the problem that must
// report it.
type corruption struct {
	name, spec string
	// break corrupts the bundle in dir; SHA256SUMS is recomputed afterwards unless
	// keepSums is set.
	corrupt  func(t *testing.T, dir string)
	keepSums bool
	opts     verify.Options
	// path and msg: a problem at path whose message contains msg must be reported.
	path, msg string
}

var corruptions = []corruption{
	{
		name: "certificate list with another end for kubelet.crt", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := rootfs(dir, "worker-1", "/etc/scratchgen/certificates")
			var out []string
			for _, l := range strings.Split(string(read(t, p)), "\n") {
				if strings.HasSuffix(l, "\t/var/lib/kubelet/pki/kubelet.crt\tkubelet-serving/worker-1") {
					fs := strings.Split(l, "\t")
					n, _ := strconv.ParseInt(fs[0], 10, 64)
					n += 365 * 24 * 3600
					fs[0], fs[1] = strconv.FormatInt(n, 10), time.Unix(n, 0).UTC().Format(time.RFC3339)
					l = strings.Join(fs, "\t")
				}
				out = append(out, l)
			}
			setFile(t, dir, "worker-1", "/etc/scratchgen/certificates", []byte(strings.Join(out, "\n")))
		},
		path: "nodes/worker-1/rootfs/etc/scratchgen/certificates",
		msg:  "holds no certificate that ends then: the watchdog would warn at the wrong time",
	},
	{
		name: "certificate list without kubelet.crt", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := rootfs(dir, "worker-1", "/etc/scratchgen/certificates")
			var out []string
			for _, l := range strings.Split(string(read(t, p)), "\n") {
				if !strings.Contains(l, "\t/var/lib/kubelet/pki/kubelet.crt\t") {
					out = append(out, l)
				}
			}
			setFile(t, dir, "worker-1", "/etc/scratchgen/certificates", []byte(strings.Join(out, "\n")))
		},
		path: "nodes/worker-1/rootfs/etc/scratchgen/certificates",
		msg:  "does not list every certificate of /var/lib/kubelet/pki/kubelet.crt",
	},
	{
		name: "ca.crt with a third certificate", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			ca := read(t, rootfs(dir, "worker-1", "/etc/kubernetes/pki/ca.crt"))
			front := read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/front-proxy-ca.crt"))
			etcd := read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/etcd/ca.crt"))
			setFile(t, dir, "worker-1", "/etc/kubernetes/pki/ca.crt", append(append(append([]byte{}, ca...), front...), etcd...))
		},
		path: "nodes/worker-1/rootfs/etc/kubernetes/pki/ca.crt",
		msg:  "holds 3 certificates",
	},
	{
		name: "worker kubelet.crt from another node", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "worker-1", "/var/lib/kubelet/pki/kubelet.crt", read(t, rootfs(dir, "worker-2", "/var/lib/kubelet/pki/kubelet.crt")))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/pki/kubelet.crt",
		msg:  "does not cover 10.0.0.21, the node's address (--node-ip of the kubelet)",
	},
	{
		name: "worker kubelet.crt and key from another node", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			for _, p := range []string{"/var/lib/kubelet/pki/kubelet.crt", "/var/lib/kubelet/pki/kubelet.key"} {
				setFile(t, dir, "worker-1", p, read(t, rootfs(dir, "worker-2", p)))
			}
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/pki/kubelet.crt",
		msg:  "names system:node:worker-2, not this node (system:node:worker-1)",
	},
	{
		name: "apiserver.crt without the advertise address", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			crt, key := issue(t, dir, "cp-1", pki.Request{CommonName: "kube-apiserver", Usages: pki.ServerAuth,
				DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}, IPs: []net.IP{net.ParseIP("10.96.0.1")}})
			setFile(t, dir, "cp-1", "/etc/kubernetes/pki/apiserver.crt", crt)
			setFile(t, dir, "cp-1", "/etc/kubernetes/pki/apiserver.key", key)
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt",
		msg:  "does not cover 10.0.0.10, the address kube-apiserver advertises (--advertise-address)",
	},
	{
		name: "key replaced by another key", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "cp-1", "/etc/kubernetes/pki/front-proxy-client.key", read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/apiserver-etcd-client.key")))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/pki/front-proxy-client.key",
		msg:  "is not the private key of nodes/cp-1/rootfs/etc/kubernetes/pki/front-proxy-client.crt",
	},
	{
		name: "key mode 0644", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			chmod(t, rootfs(dir, "worker-2", "/var/lib/kubelet/pki/kubelet.key"), 0o644)
		},
		path: "nodes/worker-2/rootfs/var/lib/kubelet/pki/kubelet.key",
		msg:  "has mode 0644, want 0600",
	},
	{
		name: "kubeconfig server changed", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/var/lib/kubelet/kubeconfig"
			setFile(t, dir, "worker-1", p, bytes.Replace(read(t, rootfs(dir, "worker-1", p)), []byte("https://10.0.0.10:6443"), []byte("https://10.0.0.99:6443"), 1))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/kubeconfig",
		msg:  "server https://10.0.0.99:6443 differs from https://10.0.0.10:6443",
	},
	{
		name: "kubeconfig CA data from another CA", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/var/lib/kube-proxy/kubeconfig"
			ca := base64.StdEncoding.EncodeToString(read(t, rootfs(dir, "worker-1", "/etc/kubernetes/pki/ca.crt")))
			other := base64.StdEncoding.EncodeToString(read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/front-proxy-ca.crt")))
			data := read(t, rootfs(dir, "worker-2", p))
			if !bytes.Contains(data, []byte(ca)) {
				t.Fatal("the kubeconfig does not embed the CA")
			}
			setFile(t, dir, "worker-2", p, bytes.Replace(data, []byte(ca), []byte(other), 1))
		},
		path: "nodes/worker-2/rootfs/var/lib/kube-proxy/kubeconfig",
		msg:  "certificate-authority-data is not the cluster CA (/etc/kubernetes/pki/ca.crt) but CN=front-proxy-ca",
	},
	{
		name: "known_tokens.csv line deleted", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/etc/kubernetes/known_tokens.csv"
			var kept []string
			for _, l := range strings.SplitAfter(string(read(t, rootfs(dir, "cp-1", p))), "\n") {
				if !strings.Contains(l, ",system:node:worker-1,") {
					kept = append(kept, l)
				}
			}
			setFile(t, dir, "cp-1", p, []byte(strings.Join(kept, "")))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/kubeconfig",
		msg:  "the token of system:node:worker-1 is not in known_tokens.csv",
	},
	{
		name: "manifest flag names a missing file", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/etc/kubernetes/manifests/kube-apiserver.yaml"
			setFile(t, dir, "cp-1", p, bytes.Replace(read(t, rootfs(dir, "cp-1", p)), []byte("--tls-cert-file=/etc/kubernetes/pki/apiserver.crt"), []byte("--tls-cert-file=/etc/kubernetes/pki/apiserver-new.crt"), 1))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml",
		msg:  "--tls-cert-file refers to /etc/kubernetes/pki/apiserver-new.crt, which is not in the node's rootfs",
	},
	{
		name: "etcd peer certificate of another member", spec: "ha-3",
		corrupt: func(t *testing.T, dir string) {
			for _, p := range []string{"/etc/kubernetes/pki/etcd/peer.crt", "/etc/kubernetes/pki/etcd/peer.key"} {
				setFile(t, dir, "cp-2", p, read(t, rootfs(dir, "cp-1", p)))
			}
		},
		path: "nodes/cp-2/rootfs/etc/kubernetes/pki/etcd/peer.crt",
		msg:  "does not cover 10.0.0.12, the address etcd advertises to its peers (--initial-advertise-peer-urls)",
	},
	{
		name: "client certificate used as the API server's serving certificate", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "cp-1", "/etc/kubernetes/pki/apiserver.crt", read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/apiserver-kubelet-client.crt")))
			setFile(t, dir, "cp-1", "/etc/kubernetes/pki/apiserver.key", read(t, rootfs(dir, "cp-1", "/etc/kubernetes/pki/apiserver-kubelet-client.key")))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt",
		msg:  "has no serverAuth usage (it has clientAuth), but kube-apiserver serves TLS with it",
	},
	{
		name: "expired certificates", spec: "example",
		corrupt: func(t *testing.T, dir string) {},
		opts:    verify.Options{At: testNow.Add(2 * 365 * 24 * time.Hour)},
		path:    "nodes/worker-1/rootfs/var/lib/kubelet/pki/kubelet.crt",
		msg:     "expired on 2027-01-01T11:55:00Z (checked at 2028-01-01T12:00:00Z)",
	},
	{
		name: "ignition.json content altered", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/etc/systemd/system/kubelet.service.d/10-scratchgen.conf"
			patchIgnition(t, dir, "worker-2", p, bytes.Replace(read(t, rootfs(dir, "worker-2", p)), []byte("--node-ip=10.0.0.22"), []byte("--node-ip=10.0.0.66"), 1))
		},
		path: "nodes/worker-2/ignition.json",
		msg:  "writes /etc/systemd/system/kubelet.service.d/10-scratchgen.conf with content that differs from rootfs",
	},
	{
		name: "user-data mode altered",
		spec: "example",
		corrupt: func(t *testing.T, dir string) {
			editYAMLView(t, dir, "cp-1", "user-data", "/etc/scratchgen/routes.sh", func(m map[string]any) bool {
				m["permissions"] = "0644"
				return true
			})
		},
		path: "nodes/cp-1/user-data",
		msg:  "writes /etc/scratchgen/routes.sh with mode 0644, but rootfs has 0755",
	},
	{
		name: "file removed", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "worker-1", "/var/lib/kube-proxy/config.yaml", nil)
		},
		path: "nodes/worker-1/rootfs/etc/systemd/system/kube-proxy.service",
		msg:  "passes --config=/var/lib/kube-proxy/config.yaml, which is not in the node's rootfs",
	},
	{
		name: "unpinned image under --require-pinned", spec: "example-pinned",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "admin", "addons", "coredns.yaml")
			re := regexp.MustCompile(`(image: registry.k8s.io/coredns/coredns:v[0-9.]+)@sha256:[0-9a-f]{64}`)
			data := read(t, p)
			if !re.Match(data) {
				t.Fatal("coredns.yaml has no pinned image")
			}
			write(t, p, re.ReplaceAll(data, []byte("$1")))
		},
		opts: verify.Options{RequirePinned: true},
		path: "admin/addons/coredns.yaml",
		msg:  "image registry.k8s.io/coredns/coredns:v1.14.1 is not pinned by digest",
	},
	{
		name: "file changed without recomputing SHA256SUMS", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := rootfs(dir, "worker-1", "/etc/sysctl.d/90-scratchgen.conf")
			write(t, p, append(read(t, p), "# edited\n"...))
		},
		keepSums: true,
		path:     "nodes/worker-1/rootfs/etc/sysctl.d/90-scratchgen.conf",
		msg:      "does not match its SHA-256 sum in SHA256SUMS",
	},
	{
		name: "file added", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			write(t, rootfs(dir, "worker-1", "/etc/kubernetes/extra.txt"), []byte("x\n"))
		},
		keepSums: true,
		path:     "nodes/worker-1/rootfs/etc/kubernetes/extra.txt",
		msg:      "is not listed in SHA256SUMS",
	},
	{
		name: "node CA differs", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			key, err := pki.DeriveKey(testSecret, "verify-test/other-ca")
			if err != nil {
				t.Fatal(err)
			}
			_, caPEM, err := pki.NewCA(key, pki.Request{CommonName: "kubernetes", NotBefore: testNow, NotAfter: testNow.Add(24 * 365 * time.Hour), Serial: big.NewInt(7)})
			if err != nil {
				t.Fatal(err)
			}
			setFile(t, dir, "worker-2", "/etc/kubernetes/pki/ca.crt", caPEM)
		},
		path: "nodes/worker-2/rootfs/etc/kubernetes/pki/ca.crt",
		msg:  "differs from the cluster CA that 2 other node(s) carry",
	},
	{
		name: "kubelet kubeconfig of another node", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/var/lib/kubelet/kubeconfig"
			setFile(t, dir, "worker-1", p, read(t, rootfs(dir, "worker-2", p)))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/kubeconfig",
		msg:  "client-certificate-data names system:node:worker-2, not this node (system:node:worker-1)",
	},
	{
		name: "script not executable", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			chmod(t, rootfs(dir, "worker-2", "/etc/scratchgen/routes.sh"), 0o644)
		},
		path: "nodes/worker-2/rootfs/etc/scratchgen/routes.sh",
		msg:  "has mode 0644, want 0755 (a unit runs it)",
	},
	{
		name: "gitignore lets a key through", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, ".gitignore")
			write(t, p, bytes.Replace(read(t, p), []byte("/nodes/cp-1/rootfs/etc/kubernetes/pki/ca.key\n"), nil, 1))
		},
		path: ".gitignore",
		msg:  "does not list /nodes/cp-1/rootfs/etc/kubernetes/pki/ca.key",
	},
	{
		name: "etcd-servers names no member", spec: "ha-3",
		corrupt: func(t *testing.T, dir string) {
			p := "/etc/kubernetes/manifests/kube-apiserver.yaml"
			setFile(t, dir, "cp-3", p, bytes.Replace(read(t, rootfs(dir, "cp-3", p)), []byte("https://10.0.0.13:2379"), []byte("https://10.0.0.14:2379"), 1))
		},
		path: "nodes/cp-3/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml",
		msg:  "--etcd-servers names https://10.0.0.14:2379, which no etcd member in the bundle advertises or listens on",
	},
	{
		name: "known_tokens.csv differs between control-plane nodes", spec: "ha-3",
		corrupt: func(t *testing.T, dir string) {
			p := "/etc/kubernetes/known_tokens.csv"
			setFile(t, dir, "cp-2", p, append(read(t, rootfs(dir, "cp-2", p)), "0123456789abcdef0123456789abcdef,intruder,intruder\n"...))
		},
		path: "nodes/cp-2/rootfs/etc/kubernetes/known_tokens.csv",
		msg:  "differs from the token file of 2 other control-plane node(s)",
	},
	{
		name: "CNI configuration removed", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "worker-2", "/etc/cni/net.d/10-cbr0.conflist", nil)
		},
		path: "nodes/worker-2/rootfs/etc/systemd/system/scratchgen-routes.service",
		msg:  "sets up the routed pod network, but rootfs has no CNI configuration in /etc/cni/net.d",
	},
	{
		name: "token file removed", spec: "ha-3",
		corrupt: func(t *testing.T, dir string) {
			setFile(t, dir, "cp-3", "/etc/kubernetes/known_tokens.csv", nil)
			// The views' header must not list what is gone.
			for _, v := range []string{"user-data", "node.bu"} {
				p := filepath.Join(dir, "nodes", "cp-3", v)
				write(t, p, bytes.Replace(read(t, p), []byte(" /etc/kubernetes/known_tokens.csv"), nil, 1))
			}
		},
		path: "nodes/cp-3/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml",
		msg:  "volume known-tokens mounts host file /etc/kubernetes/known_tokens.csv (type File), which is not in the node's rootfs",
	},
	{
		name: "kubelet does not run the static pods", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := "/var/lib/kubelet/config.yaml"
			setFile(t, dir, "cp-1", p, bytes.Replace(read(t, rootfs(dir, "cp-1", p)), []byte("staticPodPath: /etc/kubernetes/manifests\n"), nil, 1))
		},
		path: "nodes/cp-1/rootfs/var/lib/kubelet/config.yaml",
		msg:  `staticPodPath is "", so the manifests in /etc/kubernetes/manifests never run`,
	},
	{
		name: "CA key on a worker", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			src := rootfs(dir, "cp-1", "/etc/kubernetes/pki/ca.key")
			write(t, rootfs(dir, "worker-1", "/etc/kubernetes/pki/ca.key"), read(t, src))
			chmod(t, rootfs(dir, "worker-1", "/etc/kubernetes/pki/ca.key"), 0o600)
			gi := filepath.Join(dir, ".gitignore")
			write(t, gi, append(read(t, gi), "/nodes/worker-1/rootfs/etc/kubernetes/pki/ca.key\n"...))
		},
		path: "nodes/worker-1/rootfs/etc/kubernetes/pki/ca.key",
		msg:  "is on a node that runs no control plane",
	},
}

// TestCorruptions: each deliberate corruption of a good bundle is reported with its
// specific message, although SHA256SUMS was recomputed afterwards (so the sums check
// cannot be what catches it).
func TestCorruptions(t *testing.T) {
	if len(corruptions) < 12 {
		t.Fatalf("only %d corruptions", len(corruptions))
	}
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, c.spec)
			c.corrupt(t, dir)
			if !c.keepSums {
				resum(t, dir)
			}
			ps := verifyAt(t, dir, c.opts)
			expect(t, ps, c.path, c.msg)
			if !c.keepSums {
				for _, p := range ps {
					if strings.Contains(p.Msg, writer.SumsName) {
						t.Errorf("SHA256SUMS was recomputed, yet: %s", p)
					}
				}
			}
			t.Logf("%d problem(s):\n%s", len(verify.Errors(ps)), lines(verify.Errors(ps)))
		})
	}
}

// expect fails unless ps holds a problem (not a warning) at path whose message contains msg.
func expect(t *testing.T, ps []verify.Problem, path, msg string) {
	t.Helper()
	for _, p := range ps {
		if !p.Warning && p.Path == path && strings.Contains(p.Msg, msg) {
			return
		}
	}
	t.Errorf("want a problem %s: …%s…; got:\n%s", path, msg, lines(ps))
}

// issue signs a certificate with the cluster CA the bundle carries on node, and returns
// it with a new key.
func issue(t *testing.T, dir, node string, req pki.Request) (crtPEM, keyPEM []byte) {
	t.Helper()
	ca, err := pki.ParseCertPEM(read(t, rootfs(dir, node, "/etc/kubernetes/pki/ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(read(t, rootfs(dir, node, "/etc/kubernetes/pki/ca.key")))
	caKey, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.DeriveKey(testSecret, "verify-test/"+req.CommonName)
	if err != nil {
		t.Fatal(err)
	}
	req.NotBefore, req.NotAfter, req.Serial = testNow, testNow.Add(365*24*time.Hour), big.NewInt(42)
	_, crtPEM, err = pki.Sign(ca, caKey, key, req)
	if err != nil {
		t.Fatal(err)
	}
	if keyPEM, err = pki.EncodeKey(key); err != nil {
		t.Fatal(err)
	}
	return crtPEM, keyPEM
}

// TestNotABundle: a directory that is not a bundle is an error, not a list of problems.
func TestNotABundle(t *testing.T) {
	dir := t.TempDir()
	if _, err := verify.Bundle(dir, verify.Options{}); err == nil || !strings.Contains(err.Error(), "not a scratchgen bundle") {
		t.Errorf("empty directory: err = %v", err)
	}
	if _, err := verify.Bundle(filepath.Join(dir, "missing"), verify.Options{}); err == nil {
		t.Error("missing directory: no error")
	}
}

// TestSecretsNeverPrinted: no problem line of a thoroughly broken bundle shows a token
// or key material.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := fixture(t, "example")
	tokens := string(read(t, rootfs(dir, "cp-1", "/etc/kubernetes/known_tokens.csv")))
	// Break every token line and every kubeconfig.
	setFile(t, dir, "cp-1", "/etc/kubernetes/known_tokens.csv", []byte(strings.ReplaceAll(tokens, ",", ";")))
	for _, n := range []string{"worker-1", "worker-2"} {
		setFile(t, dir, n, "/var/lib/kubelet/pki/kubelet.key", []byte("not a key"))
	}
	resum(t, dir)
	out := lines(verifyAt(t, dir, verify.Options{}))
	for _, l := range strings.Split(tokens, "\n") {
		if tok, _, ok := strings.Cut(l, ","); ok && strings.Contains(out, tok) {
			t.Errorf("a token appears in the output:\n%s", out)
		}
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("key material appears in the output:\n%s", out)
	}
}

// TestProblemString pins the line format.
func TestProblemString(t *testing.T) {
	p := verify.Problem{Path: "nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt", Msg: "does not cover 10.0.0.10"}
	if got, want := p.String(), "nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt: does not cover 10.0.0.10"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p.Warning = true
	if got := p.String(); !strings.HasPrefix(got, p.Path+": warning: ") {
		t.Errorf("warning String() = %q", got)
	}
}

// BenchmarkBundle100 verifies a 100-node bundle (3 control-plane nodes, 97 workers).
func BenchmarkBundle100(b *testing.B) {
	var spec strings.Builder
	spec.WriteString("apiVersion: scratchgen.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: big\nspec:\n  kubernetesVersion: v1.36.3\n  controlPlaneEndpoint: 10.0.0.100\n  network:\n    podCIDR: 10.128.0.0/9\n  nodes:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&spec, "  - {name: cp-%d, address: 10.0.0.%d, roles: [control-plane, etcd]}\n", i, i)
	}
	for i := 1; i <= 97; i++ {
		fmt.Fprintf(&spec, "  - {name: worker-%d, address: 10.0.1.%d, roles: [worker]}\n", i, i)
	}
	dir, _ := renderTo(b, b.TempDir(), []byte(spec.String()), nil)
	b.ResetTimer()
	for b.Loop() {
		ps, err := verify.Bundle(dir, verify.Options{At: testAt})
		if err != nil {
			b.Fatal(err)
		}
		if errs := verify.Errors(ps); len(errs) > 0 {
			b.Fatalf("problems:\n%s", lines(errs))
		}
	}
}
