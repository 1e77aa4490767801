package review

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/pem"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/provision"
	"github.com/scratchgen/scratchgen/generator/render"
)

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func secretA() []byte { return bytes.Repeat([]byte{1}, 32) }
func secretB() []byte { return bytes.Repeat([]byte{2}, 32) }

// spec builds a small cluster spec; extra is appended under spec:.
func spec(nodes string, extra string) []byte {
	return []byte(`apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.10
  network:
    podCIDR: 10.10.0.0/16
  nodes:
` + nodes + extra)
}

const threeNodes = `  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  - {name: worker-2, address: 10.0.0.22, roles: [worker], os: flatcar}
`

func mustRender(t testing.TB, specData []byte, lk *lock.Lock, secret []byte) *render.Output {
	t.Helper()
	out, err := render.Render(specData, lk, render.Deps{Secret: secret, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// asOnDisk drops the Secret marks, as files read back from disk have none.
func asOnDisk(files []bundle.File) []bundle.File {
	out := slices.Clone(files)
	for i := range out {
		out[i].Secret = false
	}
	return out
}

// secretsOf lists every secret string of a bundle: the body lines of each PEM private
// key, each token of known_tokens.csv, and each kubeconfig's client-key-data (base64, as
// written) and token.
func secretsOf(t testing.TB, files []bundle.File) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		rest := f.Data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if strings.Contains(b.Type, "PRIVATE KEY") {
				body := base64.StdEncoding.EncodeToString(b.Bytes)
				for len(body) > 0 {
					n := min(64, len(body))
					out = append(out, body[:n])
					body = body[n:]
				}
			}
		}
		if strings.HasSuffix(f.Path, "known_tokens.csv") {
			r := csv.NewReader(bytes.NewReader(f.Data))
			r.FieldsPerRecord = -1
			recs, err := r.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out = append(out, r[0])
			}
		}
		var cfg clientcmdv1.Config
		if kubeconfigPath(f.Path) && yaml.Unmarshal(f.Data, &cfg) == nil && cfg.Kind == "Config" {
			for _, u := range cfg.AuthInfos {
				out = append(out, base64.StdEncoding.EncodeToString(u.AuthInfo.ClientKeyData))
				if u.AuthInfo.Token != "" {
					out = append(out, u.AuthInfo.Token)
				}
			}
		}
	}
	var long []string
	for _, s := range out {
		if len(s) >= 16 { // the last PEM line may be short; 16 characters cannot match by chance
			long = append(long, s)
		}
	}
	return long
}

func reportTexts(t testing.TB, rep *Report) (string, string) {
	t.Helper()
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	return text.String(), js.String()
}

// TestNoSecretInOutput changes every secret of a bundle (a new root secret) that embeds
// secrets in its provisioning views, adds and removes nodes, and searches the text and
// JSON reports for every secret of both bundles.
func TestNoSecretInOutput(t *testing.T) {
	oldSpec := spec(threeNodes, "  provisioning:\n    embedSecrets: true\n")
	newSpec := spec(strings.Replace(threeNodes, "worker-2, address: 10.0.0.22", "worker-3, address: 10.0.0.23", 1),
		"  provisioning:\n    embedSecrets: true\n")
	old := mustRender(t, oldSpec, nil, secretA())
	new := mustRender(t, newSpec, nil, secretB())
	oldFiles, newFiles := asOnDisk(old.Plan.Files()), new.Plan.Files()
	secrets := append(secretsOf(t, oldFiles), secretsOf(t, newFiles)...)
	if len(secrets) < 50 {
		t.Fatalf("only %d secrets found; the search would prove little", len(secrets))
	}
	rep := Compare(oldFiles, newFiles, Options{Cluster: "demo", Nodes: []string{"cp-1", "worker-1", "worker-3"},
		OldLock: old.Lock, NewLock: new.Lock, LockChanged: true})
	text, js := reportTexts(t, rep)
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(js, s) {
			t.Errorf("secret %q…%q appears in the report", s[:6], s[len(s)-6:])
		}
	}
	// No PEM at all, and every view shown as its carried files.
	for _, out := range []string{text, js} {
		if strings.Contains(out, "-----BEGIN") {
			t.Errorf("a PEM block appears in the report")
		}
	}
	if !strings.Contains(text, "worker-3: new node") || !strings.Contains(text, "worker-2: removed node") {
		t.Errorf("added and removed nodes missing:\n%s", text)
	}
	for _, g := range rep.Groups {
		for _, f := range g.Files {
			if f.Kind == KindText && (isSecretPath(f.Path) || f.Diff != "" && strings.Contains(f.Diff, "PRIVATE KEY")) {
				t.Errorf("%s/%s shown as text", g.Name, f.Path)
			}
			if f.Kind == KindView && g.Status == Changed && f.NewFingerprint == "" {
				t.Errorf("%s/%s: a view carrying secrets has no fingerprint", g.Name, f.Path)
			}
		}
	}
}

func isSecretPath(p string) bool { return secretPath(p) }

// TestSecretByModeOrContent: a file the render side does not mark, but that is 0600 on
// disk or holds a private key, is still never shown.
func TestSecretByModeOrContent(t *testing.T) {
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAoAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n"
	old := []bundle.File{
		{Path: "nodes/n/rootfs/etc/x.txt", Mode: 0o600, Data: []byte("hunter2-hunter2-hunter2\n")},
		{Path: "nodes/n/rootfs/etc/y.txt", Mode: 0o644, Data: []byte(key)},
	}
	new := []bundle.File{
		{Path: "nodes/n/rootfs/etc/x.txt", Mode: 0o644, Data: []byte("public\n")},
		{Path: "nodes/n/rootfs/etc/y.txt", Mode: 0o644, Data: []byte("public\n")},
	}
	text, js := reportTexts(t, Compare(old, new, Options{Nodes: []string{"n"}}))
	for _, s := range []string{"hunter2", "MHcCAQEE"} {
		if strings.Contains(text, s) || strings.Contains(js, s) {
			t.Errorf("%q shown:\n%s", s, text)
		}
	}
}

func findFile(rep *Report, group, path string) *FileDiff {
	for _, g := range rep.Groups {
		if g.Name != group {
			continue
		}
		for i := range g.Files {
			if g.Files[i].Path == path {
				return &g.Files[i]
			}
		}
	}
	return nil
}

func fieldNames(fs []FieldDiff) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

// TestRenewedCertificate: renewing one identity changes exactly its files (and the
// views carrying their content: not node.bu, which names rootfs/ files); the certificate
// is compared field by field.
func TestRenewedCertificate(t *testing.T) {
	s := spec(threeNodes, "")
	old := mustRender(t, s, nil, secretA())
	lk, _, err := credentials.Renew(old.Lock, []credentials.ID{credentials.KubeletServingID("worker-1")}, testNow.AddDate(0, 6, 0))
	if err != nil {
		t.Fatal(err)
	}
	new := mustRender(t, s, lk, secretA())
	rep := Compare(asOnDisk(old.Plan.Files()), new.Plan.Files(), Options{Nodes: []string{"cp-1", "worker-1", "worker-2"}})
	var changed []string
	for _, g := range rep.Groups {
		for _, f := range g.Files {
			changed = append(changed, g.Name+":"+f.Path)
		}
	}
	want := []string{"cluster:SHA256SUMS", "worker-1:/etc/scratchgen/certificates", "worker-1:/var/lib/kubelet/pki/kubelet.crt", "worker-1:/var/lib/kubelet/pki/kubelet.key",
		"worker-1:ignition.json", "worker-1:user-data"}
	if strings.Join(changed, " ") != strings.Join(want[1:], " ") {
		// SHA256SUMS is not part of Plan.Files(); the CLI adds it.
		t.Errorf("changed files %v, want %v", changed, want[1:])
	}
	crt := findFile(rep, "worker-1", "/var/lib/kubelet/pki/kubelet.crt")
	if got := strings.Join(fieldNames(crt.Fields), " "); got != "serial notBefore notAfter publicKey signature" {
		t.Errorf("changed fields %q", got)
	}
	if crt.Kind != KindCertificate || crt.Diff != "" {
		t.Errorf("certificate shown as %s with diff %q", crt.Kind, crt.Diff)
	}
	for _, v := range []string{"ignition.json", "user-data"} {
		f := findFile(rep, "worker-1", v)
		if len(f.Carried) != 2 || f.Carried[0] != (Carried{Change: Changed, Path: "/etc/scratchgen/certificates"}) ||
			f.Carried[1] != (Carried{Change: Changed, Path: "/var/lib/kubelet/pki/kubelet.crt"}) {
			t.Errorf("%s carries %+v", v, f.Carried)
		}
	}
	// The kubelet restarts; the watchdog's list names the new expiry.
	if len(rep.Impact) != 2 || rep.Impact[0].Node != "worker-1" || rep.Impact[0].Component != "kubelet" || rep.Impact[1].Component != "certificate watchdog" {
		t.Errorf("impact %+v", rep.Impact)
	}
}

// TestViewsDecodeToRootfs: each view of each OS carries exactly the node's rootfs files
// other than secrets and the routes table (which lists the nodes), byte for byte, and
// enables its units.
func TestViewsDecodeToRootfs(t *testing.T) {
	nodes := `  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd], os: fcos}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
  - {name: worker-2, address: 10.0.0.22, roles: [worker], os: flatcar}
`
	out := mustRender(t, spec(nodes, ""), nil, secretA())
	var views provision.Decoder // one memo for every node's views, as Compare uses it
	for _, n := range out.Plan.Nodes {
		for _, v := range n.Extra {
			c, _, err := decodeView(&views, v.Path, v.Data, false)
			if err != nil {
				t.Fatalf("%s/%s: %v", n.Name, v.Path, err)
			}
			want := 0
			for _, f := range n.Rootfs {
				if f.Secret || f.Membership {
					if _, ok := c.files[f.Path]; ok {
						t.Errorf("%s/%s carries %s", n.Name, v.Path, f.Path)
					}
					continue
				}
				want++
				got, ok := c.files[f.Path]
				data := f.Data
				if v.Path == butaneView { // node.bu names the rootfs/ file
					data = []byte("local: rootfs" + f.Path)
				}
				if !ok || !bytes.Equal(got.data, data) {
					t.Errorf("%s/%s: %s carried wrong (present %v)", n.Name, v.Path, f.Path, ok)
				}
			}
			if len(c.files) != want {
				t.Errorf("%s/%s carries %d files, want %d", n.Name, v.Path, len(c.files), want)
			}
			if !slices.Equal(c.units, n.Units) {
				t.Errorf("%s/%s enables %v, want %v", n.Name, v.Path, c.units, n.Units)
			}
		}
	}
}

// TestImpactTableMatchesManifests: every node file a static pod manifest, the kubelet's
// configuration or kube-proxy's names is mapped to that component.
func TestImpactTableMatchesManifests(t *testing.T) {
	out := mustRender(t, spec(threeNodes, ""), nil, secretA())
	n := out.Plan.Node("cp-1")
	files := map[string]bundle.File{}
	for _, f := range n.Rootfs {
		files[f.Path] = f
	}
	readers := map[string][]string{
		"etcd":                    {"/etc/kubernetes/manifests/etcd.yaml"},
		"kube-apiserver":          {"/etc/kubernetes/manifests/kube-apiserver.yaml"},
		"kube-controller-manager": {"/etc/kubernetes/manifests/kube-controller-manager.yaml"},
		"kube-scheduler":          {"/etc/kubernetes/manifests/kube-scheduler.yaml"},
		"kubelet":                 {"/var/lib/kubelet/config.yaml", "/etc/systemd/system/kubelet.service.d/10-scratchgen.conf"},
		"kube-proxy":              {"/var/lib/kube-proxy/config.yaml", "/etc/systemd/system/kube-proxy.service"},
		"scratchgen-routes":       {"/etc/systemd/system/scratchgen-routes.service"},
		"scratchgen-masquerade":   {"/etc/systemd/system/scratchgen-masquerade.service"},
	}
	pathRE := regexp.MustCompile(`/(etc|var)/[A-Za-z0-9_./-]+`)
	checked := 0
	for comp, srcs := range readers {
		for _, src := range srcs {
			f, ok := files[src]
			if !ok {
				t.Fatalf("%s not rendered", src)
			}
			for _, p := range pathRE.FindAllString(string(f.Data), -1) {
				if _, isFile := files[p]; !isFile {
					continue // a directory or a path outside the bundle
				}
				checked++
				r, ok := lookupImpact(component.Default(), p)
				if !ok || !slices.ContainsFunc(r.components, func(co *component.Component) bool { return co.Name == comp }) {
					t.Errorf("%s names %s, but the component table does not list it among %s's reads", src, p, comp)
				}
			}
		}
	}
	if checked < 25 {
		t.Errorf("only %d references checked", checked)
	}
	// Every rendered node file has a rule (no "unknown component").
	for _, node := range out.Plan.Nodes {
		for _, f := range node.Rootfs {
			if _, ok := lookupImpact(component.Default(), f.Path); !ok {
				t.Errorf("%s: no impact rule", f.Path)
			}
		}
	}
}

func TestKubeconfigFieldsHideKeyAndToken(t *testing.T) {
	out := mustRender(t, spec(threeNodes, ""), nil, secretA())
	var kc bundle.File
	for _, f := range out.Plan.Admin {
		if f.Path == "admin.kubeconfig" {
			kc = f
		}
	}
	fields, ok := kubeconfigFields(kc.Data)
	if !ok {
		t.Fatal("admin.kubeconfig not decoded")
	}
	var secretNames []string
	for _, f := range fields {
		if f.Secret {
			secretNames = append(secretNames, f.Name)
		}
	}
	if strings.Join(secretNames, ",") != "user kubernetes-admin client-key,user kubernetes-admin token" {
		t.Errorf("secret fields %v", secretNames)
	}
	rep := Compare(nil, out.Plan.Files(), Options{})
	text, _ := reportTexts(t, rep)
	if !strings.Contains(text, "+ user kubernetes-admin client-key: set (not shown)") ||
		!strings.Contains(text, "+ cluster demo server: https://10.0.0.10:6443") {
		t.Errorf("admin.kubeconfig not shown by its fields:\n%s", text)
	}
}

func TestCompareLocks(t *testing.T) {
	old := &lock.Lock{Cluster: "demo", PodCIDRs: map[string]string{"a": "10.0.0.0/24", "b": "10.0.1.0/24"},
		Certificates: map[string]lock.Certificate{"ca": {Generation: 1, NotBefore: testNow}}}
	new := old.Clone()
	delete(new.PodCIDRs, "b")
	new.PodCIDRs["c"] = "10.0.2.0/24"
	new.Certificates["ca"] = lock.Certificate{Generation: 2, NotBefore: testNow}
	new.Images = map[string]lock.Image{"pause:3": {Digest: "sha256:abc"}}
	d := CompareLocks(old, new)
	var got []string
	for _, e := range d.Entries {
		got = append(got, string(e.Change)+" "+e.Key+" "+e.Old+" | "+e.New)
	}
	want := []string{
		"removed podCIDRs.b 10.0.1.0/24 | ",
		"added podCIDRs.c  | 10.0.2.0/24",
		"changed certificates.ca generation 1, notBefore 2026-01-01T12:00:00Z | generation 2, notBefore 2026-01-01T12:00:00Z",
		"added images.pause:3  | sha256:abc",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lock entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !CompareLocks(nil, new).Created {
		t.Error("a missing lock is not reported as created")
	}
}

func TestStatus(t *testing.T) {
	s := spec(threeNodes, "")
	out := mustRender(t, s, nil, secretA())
	r, err := render.Resolve(s, out.Lock)
	if err != nil {
		t.Fatal(err)
	}
	rows := Status(credentials.Identities(r.Cluster), credentials.Schedule(r.Cluster, out.Lock, testNow), nil)
	if len(rows) != len(out.Lock.Certificates)-1 { // all but the service-account key pair
		t.Errorf("%d rows for %d lock entries", len(rows), len(out.Lock.Certificates))
	}
	byName := map[string]CertStatus{}
	for _, r := range rows {
		byName[r.Name] = r
		if !r.Issued {
			t.Errorf("%s not marked issued", r.Name)
		}
	}
	for name, want := range map[string]string{
		"ca": "|cp-1,worker-1,worker-2|true", "etcd-server/cp-1": "etcd-ca|cp-1|false",
		"kubelet-serving/worker-2": "ca|worker-2|false", "front-proxy-client": "front-proxy-ca|cp-1|false",
		"admin": "ca|cp-1|true", "kube-proxy": "ca|cp-1,worker-1,worker-2|false",
	} {
		r := byName[name]
		if got := r.CA + "|" + strings.Join(r.Nodes, ",") + "|" + map[bool]string{true: "true", false: "false"}[r.Admin]; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if rows[0].Name != "ca" || rows[3].CA == "" {
		t.Errorf("CAs are not listed first: %v", rows[:4])
	}
	if got := Residual(byName["admin"].NotAfter, testNow); got != "364d" {
		t.Errorf("residual %q, want 364d", got)
	}
	if n := len(Expiring(rows, testNow, 400*24*time.Hour)); n != len(rows)-3 {
		t.Errorf("%d expiring within 400d, want every leaf", n)
	}
}
