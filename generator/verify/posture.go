package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Rule is one security posture rule: what a bundle must say about how the cluster is
// secured, whatever else is consistent. A clean render passes every rule; a bundle that
// was edited consistently (rootfs and views alike, sums recomputed) into a weaker cluster
// fails the rule that names the weakness.
type Rule struct {
	// ID names the rule in problems ("api-authorization").
	ID string
	// Checks says what the rule requires.
	Checks string
	// CIS is the CIS Kubernetes Benchmark item (v1.23 numbering) the rule corresponds
	// to, "" where none does.
	CIS string
	run func(b *checker, r Rule)
}

// Rules returns the posture rules, in the order they run.
func Rules() []Rule { return slices.Clone(rules) }

var rules = []Rule{
	{ID: "api-authorization", CIS: "1.2.7, 1.2.8, 1.2.9",
		Checks: "kube-apiserver's --authorization-mode includes RBAC, and Node where every kubelet has its own identity, and never AlwaysAllow",
		run:    checkAPIAuthorization},
	{ID: "api-anonymous-auth", CIS: "1.2.1",
		Checks: "kube-apiserver does not turn anonymous authentication on (scratchgen leaves the default, which RBAC limits to the health and version endpoints)",
		run:    apiFlag("anonymous-auth", func(v string, set bool) bool { return !set || v == "false" })},
	{ID: "api-kubelet-tls", CIS: "1.2.5, 1.2.6",
		Checks: "kube-apiserver authenticates to kubelets with a client certificate and verifies their serving certificates (--kubelet-client-certificate, --kubelet-client-key, --kubelet-certificate-authority)",
		run:    apiFlagsSet("kubelet-client-certificate", "kubelet-client-key", "kubelet-certificate-authority")},
	{ID: "api-node-restriction", CIS: "1.2.16",
		Checks: "kube-apiserver enables the NodeRestriction admission plugin where every kubelet has its own identity",
		run:    checkNodeRestriction},
	{ID: "api-tls", CIS: "1.2.26, 1.2.27, 1.2.28, 1.2.29",
		Checks: "kube-apiserver serves TLS and authenticates client certificates and etcd over TLS (--tls-cert-file, --tls-private-key-file, --client-ca-file, --etcd-certfile, --etcd-keyfile, --etcd-cafile, https etcd servers)",
		run:    checkAPITLS},
	{ID: "service-account-keys", CIS: "1.2.24, 1.2.25, 1.3.3, 1.3.4, 1.3.5",
		Checks: "service-account tokens are signed with sa.key and verified with its public key: kube-apiserver's --service-account-key-file and --service-account-signing-key-file and the controller manager's --service-account-private-key-file hold one key pair; --service-account-lookup is not off; the controller manager uses per-controller credentials and --root-ca-file",
		run:    checkServiceAccountKeys},
	{ID: "profiling-off", CIS: "1.3.2, 1.4.1",
		Checks: "kube-apiserver, kube-controller-manager and kube-scheduler run with --profiling=false",
		run:    checkProfiling},
	{ID: "local-bind", CIS: "1.3.7, 1.4.2",
		Checks: "kube-controller-manager and kube-scheduler serve only on 127.0.0.1",
		run:    checkLocalBind},
	{ID: "etcd-tls", CIS: "2.1, 2.2, 2.3, 2.4, 2.5, 2.6",
		Checks: "etcd serves clients and peers over TLS with certificates and requires client certificates from both (--cert-file, --key-file, --client-cert-auth, --peer-cert-file, --peer-key-file, --peer-client-cert-auth, trusted CA files, no --auto-tls or --peer-auto-tls, https URLs)",
		run:    checkEtcdTLS},
	{ID: "etcd-own-ca", CIS: "2.7",
		Checks: "etcd trusts its own CA, not the cluster CA that signs every client of the API server",
		run:    checkEtcdCA},
	{ID: "kubelet-authn", CIS: "4.2.1, 4.2.3",
		Checks: "every kubelet refuses anonymous requests and authenticates client certificates against the cluster CA and tokens through the API server (authentication.anonymous.enabled false, x509.clientCAFile, webhook.enabled true)",
		run:    checkKubeletAuthn},
	{ID: "kubelet-authz", CIS: "4.2.2",
		Checks: "every kubelet authorizes requests through the API server (authorization.mode Webhook, never AlwaysAllow)",
		run: kubeletCheck(func(n *node) string {
			if m := n.kubeletConfig.Authorization.Mode; m != "Webhook" {
				return fmt.Sprintf("authorization.mode is %q, want Webhook", m)
			}
			return ""
		})},
	{ID: "kubelet-read-only-port", CIS: "4.2.4",
		Checks: "no kubelet serves the unauthenticated read-only port (readOnlyPort 0 or unset)",
		run: kubeletCheck(func(n *node) string {
			if p := n.kubeletConfig.ReadOnlyPort; p != 0 {
				return fmt.Sprintf("readOnlyPort is %d: an unauthenticated read-only API; set it to 0", p)
			}
			return ""
		})},
	{ID: "images", Checks: "every image a static pod, containerd's sandbox or an add-on runs is one the spec resolves (bundle.json's images, so from the spec's registry and pinned as the lock pins it)",
		run: checkPostureImages},
	{ID: "unit-binaries", Checks: "every ExecStart runs a binary from the node's binary directory, a script scratchgen renders under /etc/scratchgen, or one of the system commands its units use (modprobe, sysctl, ctr)",
		run: checkUnitBinaries},
	{ID: "routes", Checks: "pod routes lead only to other cluster nodes' pod ranges, via those nodes' addresses: the routes table lists exactly bundle.json's nodes, routes.sh and scratchgen-routes.path are what scratchgen renders, and the routes unit passes the node's own name",
		run: checkRoutes},
	{ID: "pod-ranges", Checks: "every node's pod range (its kubelet's podCIDR) is the one bundle.json records, and no two nodes' ranges overlap",
		run: checkPodRanges},
	{ID: binariesRule, Checks: "every node binary the bundle carries or has fetched is pinned: carried files hold the SHA-256 bundle.json records, Ignition fetches only bundle.json's URLs with their SHA-512, and install-binaries.sh is exactly the script scratchgen renders for those pins",
		run: checkBinariesPinned},
}

// checkPosture runs every rule.
func (b *checker) checkPosture() {
	for _, r := range rules {
		r.run(b, r)
	}
}

// fail reports a posture problem of rule r at a bundle-relative path.
func (b *checker) fail(r Rule, rel, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	cis := ""
	if r.CIS != "" {
		cis = " (CIS " + r.CIS + ")"
	}
	b.add(Problem{Node: nodeOf(rel), Path: rel, Msg: "posture " + r.ID + cis + ": " + msg, Rule: r.ID})
}

// pods calls f for each node's static pod of component.
func (b *checker) pods(name string, f func(n *node, sp *staticPod)) {
	for _, n := range b.nodes {
		if n.parsed == nil {
			continue
		}
		if sp := n.byComponent[name]; sp != nil {
			f(n, sp)
		}
	}
}

// perNodeKubelets reports whether every kubelet has its own identity (system:node:<name>),
// which the Node authorizer and NodeRestriction need.
func (b *checker) perNodeKubelets() bool {
	any := false
	for _, n := range b.nodes {
		for _, kc := range n.kubeconfigs {
			if kc.kind != "kubelet" || kc.cert == nil {
				continue
			}
			any = true
			if kc.cert.Subject.CommonName != "system:node:"+n.name {
				return false
			}
		}
	}
	return any
}

func checkAPIAuthorization(b *checker, r Rule) {
	perNode := b.perNodeKubelets()
	b.pods(component.APIServer, func(n *node, sp *staticPod) {
		modes := strings.Split(sp.flags["authorization-mode"], ",")
		switch {
		case slices.Contains(modes, "AlwaysAllow"):
			b.fail(r, n.rel(sp.path), "--authorization-mode=%s lets every authenticated request do anything", sp.flags["authorization-mode"])
		case !slices.Contains(modes, "RBAC"):
			b.fail(r, n.rel(sp.path), "--authorization-mode=%s does not include RBAC", sp.flags["authorization-mode"])
		case perNode && !slices.Contains(modes, "Node"):
			b.fail(r, n.rel(sp.path), "--authorization-mode=%s does not include Node, though every kubelet has its own identity", sp.flags["authorization-mode"])
		}
	})
}

func checkNodeRestriction(b *checker, r Rule) {
	if !b.perNodeKubelets() {
		return
	}
	b.pods(component.APIServer, func(n *node, sp *staticPod) {
		if !slices.Contains(strings.Split(sp.flags["enable-admission-plugins"], ","), "NodeRestriction") {
			b.fail(r, n.rel(sp.path), "--enable-admission-plugins=%q lacks NodeRestriction: a kubelet could change other nodes' objects", sp.flags["enable-admission-plugins"])
		}
		if slices.Contains(strings.Split(sp.flags["disable-admission-plugins"], ","), "NodeRestriction") {
			b.fail(r, n.rel(sp.path), "--disable-admission-plugins turns NodeRestriction off")
		}
	})
}

// apiFlag is a rule on one kube-apiserver flag: ok reports whether its value is right.
func apiFlag(name string, ok func(v string, set bool) bool) func(*checker, Rule) {
	return func(b *checker, r Rule) {
		b.pods(component.APIServer, func(n *node, sp *staticPod) {
			if v, set := sp.flags[name]; !ok(v, set) {
				b.fail(r, n.rel(sp.path), "--%s=%s", name, v)
			}
		})
	}
}

// apiFlagsSet requires kube-apiserver flags to be set to something.
func apiFlagsSet(names ...string) func(*checker, Rule) {
	return func(b *checker, r Rule) {
		b.pods(component.APIServer, func(n *node, sp *staticPod) {
			for _, name := range names {
				if sp.flags[name] == "" {
					b.fail(r, n.rel(sp.path), "--%s is not set", name)
				}
			}
		})
	}
}

func checkAPITLS(b *checker, r Rule) {
	apiFlagsSet("tls-cert-file", "tls-private-key-file", "client-ca-file", "etcd-certfile", "etcd-keyfile", "etcd-cafile")(b, r)
	b.pods(component.APIServer, func(n *node, sp *staticPod) {
		for _, u := range strings.Split(sp.flags["etcd-servers"], ",") {
			if u != "" && !strings.HasPrefix(u, "https://") {
				b.fail(r, n.rel(sp.path), "--etcd-servers lists %s without TLS", u)
			}
		}
	})
}

// publicKeyDER returns the PKIX DER of a PEM public key, or of a PEM private key's
// public half.
func publicKeyDER(data []byte) []byte {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	switch block.Type {
	case "PUBLIC KEY":
		return block.Bytes
	case "EC PRIVATE KEY":
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			return der
		}
	case "PRIVATE KEY":
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			if s, ok := k.(interface{ Public() any }); ok {
				der, _ := x509.MarshalPKIXPublicKey(s.Public())
				return der
			}
		}
	}
	return nil
}

func checkServiceAccountKeys(b *checker, r Rule) {
	b.pods(component.APIServer, func(n *node, sp *staticPod) {
		signing, verifying := sp.flags["service-account-signing-key-file"], sp.flags["service-account-key-file"]
		if signing == "" || verifying == "" {
			b.fail(r, n.rel(sp.path), "--service-account-signing-key-file and --service-account-key-file must both be set")
			return
		}
		if sp.flags["service-account-lookup"] == "false" {
			b.fail(r, n.rel(sp.path), "--service-account-lookup=false accepts tokens of deleted service accounts")
		}
		key, pub := n.file(signing), n.file(verifying)
		if key != nil && pub != nil && !bytes.Contains(pub.data, pemOf(publicKeyDER(key.data))) {
			b.fail(r, n.rel(verifying), "does not hold the public key of %s, the key tokens are signed with", signing)
		}
		if kcm := n.byComponent[component.ControllerManager]; kcm != nil {
			if kf := n.file(kcm.flags["service-account-private-key-file"]); kf == nil || key == nil || !bytes.Equal(publicKeyDER(kf.data), publicKeyDER(key.data)) {
				b.fail(r, n.rel(kcm.path), "--service-account-private-key-file is not the key kube-apiserver signs tokens with (%s)", signing)
			}
		}
	})
	b.pods(component.ControllerManager, func(n *node, sp *staticPod) {
		if sp.flags["use-service-account-credentials"] != "true" {
			b.fail(r, n.rel(sp.path), "--use-service-account-credentials is not true: every controller would act with the controller manager's own rights")
		}
		if sp.flags["root-ca-file"] == "" {
			b.fail(r, n.rel(sp.path), "--root-ca-file is not set: pods could not verify the API server")
		}
	})
}

func pemOf(der []byte) []byte {
	if der == nil {
		return []byte("\x00no key\x00")
	}
	return bytes.TrimSpace(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func checkProfiling(b *checker, r Rule) {
	for _, c := range []string{component.APIServer, component.ControllerManager, component.Scheduler} {
		b.pods(c, func(n *node, sp *staticPod) {
			if sp.flags["profiling"] != "false" {
				b.fail(r, n.rel(sp.path), "%s runs without --profiling=false", c)
			}
		})
	}
}

func checkLocalBind(b *checker, r Rule) {
	for _, c := range []string{component.ControllerManager, component.Scheduler} {
		b.pods(c, func(n *node, sp *staticPod) {
			if a := sp.flags["bind-address"]; a != "127.0.0.1" {
				b.fail(r, n.rel(sp.path), "%s --bind-address=%q serves beyond the node itself", c, a)
			}
		})
	}
}

func checkEtcdTLS(b *checker, r Rule) {
	b.pods(component.Etcd, func(n *node, sp *staticPod) {
		rel := n.rel(sp.path)
		for _, f := range []string{"cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file"} {
			if sp.flags[f] == "" {
				b.fail(r, rel, "--%s is not set", f)
			}
		}
		for _, f := range []string{"client-cert-auth", "peer-client-cert-auth"} {
			if sp.flags[f] != "true" {
				b.fail(r, rel, "--%s is %q, want true: etcd would accept connections without a client certificate", f, sp.flags[f])
			}
		}
		for _, f := range []string{"auto-tls", "peer-auto-tls"} {
			if sp.flags[f] == "true" {
				b.fail(r, rel, "--%s=true makes etcd use self-signed certificates", f)
			}
		}
		for _, f := range []string{"listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"} {
			for _, u := range strings.Split(sp.flags[f], ",") {
				if u != "" && !strings.HasPrefix(u, "https://") {
					b.fail(r, rel, "--%s lists %s without TLS", f, u)
				}
			}
		}
	})
}

func checkEtcdCA(b *checker, r Rule) {
	b.pods(component.Etcd, func(n *node, sp *staticPod) {
		etcdCA, clusterCA := n.file(sp.flags["trusted-ca-file"]), n.file(paths.CACert)
		if etcdCA != nil && clusterCA != nil && bytes.Equal(bytes.TrimSpace(etcdCA.data), bytes.TrimSpace(clusterCA.data)) {
			b.fail(r, n.rel(sp.path), "--trusted-ca-file is the cluster CA: every client certificate of the cluster could reach etcd")
		}
	})
}

// kubeletCheck is a rule on each node's KubeletConfiguration: check says what is wrong.
func kubeletCheck(check func(n *node) string) func(*checker, Rule) {
	return func(b *checker, r Rule) {
		for _, n := range b.nodes {
			if n.parsed == nil || n.kubeletConfig == nil {
				continue
			}
			if msg := check(n); msg != "" {
				b.fail(r, n.rel(n.kubeletConfigP), "%s", msg)
			}
		}
	}
}

var checkKubeletAuthn = kubeletCheck(func(n *node) string {
	a := n.kubeletConfig.Authentication
	switch {
	case a.Anonymous.Enabled == nil || *a.Anonymous.Enabled:
		return "authentication.anonymous.enabled is not false: anyone reaching port 10250 is served"
	case a.X509.ClientCAFile == "":
		return "authentication.x509.clientCAFile is not set"
	case a.Webhook.Enabled == nil || !*a.Webhook.Enabled:
		return "authentication.webhook.enabled is not true: tokens are not checked with the API server"
	}
	return ""
})

// allowedImages are bundle.json's images.
func (b *checker) allowedImages() map[string]bool {
	out := map[string]bool{}
	if b.meta != nil {
		for _, ref := range b.meta.Images {
			out[ref] = true
		}
	}
	return out
}

func checkPostureImages(b *checker, r Rule) {
	if b.meta == nil {
		return
	}
	allowed := b.allowedImages()
	check := func(rel, image string) {
		if !allowed[image] {
			b.fail(r, rel, "runs image %s, which is not among the images the spec resolves (bundle.json)", image)
		}
	}
	for _, n := range b.nodes {
		if n.parsed == nil {
			continue
		}
		for _, sp := range n.pods {
			for _, c := range append(slices.Clone(sp.pod.Spec.InitContainers), sp.pod.Spec.Containers...) {
				check(n.rel(sp.path), c.Image)
			}
			if co, ok := b.opts.Components.ByManifest(sp.path); ok && co.Image != "" && len(sp.pod.Spec.Containers) > 0 {
				if want := b.meta.Images[co.Image]; want != "" && sp.pod.Spec.Containers[0].Image != want {
					b.fail(r, n.rel(sp.path), "runs %s, but bundle.json renders %s for %s", sp.pod.Spec.Containers[0].Image, want, co.Name)
				}
			}
		}
		if f := n.file(paths.ContainerdConfig); f != nil {
			for _, m := range sandboxImageRE.FindAllSubmatch(f.data, -1) {
				check(n.rel(paths.ContainerdConfig), string(m[1]))
			}
		}
	}
	for rel, f := range b.files {
		if !strings.HasPrefix(rel, "admin/addons/") {
			continue
		}
		for _, doc := range splitYAML(f.data) {
			var obj any
			if yaml.Unmarshal(doc, &obj) == nil {
				for _, img := range images(obj) {
					check(rel, img)
				}
			}
		}
	}
}

// systemCommands are the bare command names scratchgen's units run (systemd finds them on
// its fixed search path).
var systemCommands = []string{"modprobe", "sysctl", "ctr"}

func checkUnitBinaries(b *checker, r Rule) {
	for _, n := range b.nodes {
		if n.parsed == nil || b.meta == nil || b.meta.Node(n.name) == nil {
			continue
		}
		binDir := b.meta.Node(n.name).BinDir
		for _, name := range slices.Sorted(maps.Keys(n.units)) {
			u := n.units[name]
			for key, cmds := range u.exec {
				for _, c := range cmds {
					if len(c) == 0 {
						continue
					}
					bin := c[0]
					switch {
					case !strings.Contains(bin, "/") && slices.Contains(systemCommands, bin):
					case path.Dir(bin) == binDir:
					case strings.HasPrefix(bin, paths.ScriptDir+"/") && n.file(bin) != nil:
					default:
						b.fail(r, n.rel(u.execFile[key]), "%s runs %s, which is neither in the node's binary directory %s nor a script scratchgen renders", key, bin, binDir)
					}
				}
			}
		}
	}
}

// checkRoutes: every node's routes table lists exactly the cluster's nodes, each with the
// address and pod range bundle.json records (routes.sh routes every line but the node's
// own), routes.sh and the path unit that starts the routes are what scratchgen renders,
// and the routes unit names the node itself.
func checkRoutes(b *checker, r Rule) {
	if b.meta == nil {
		return
	}
	want := map[string][]string{}
	for _, nm := range b.meta.Nodes {
		addrs, ranges := strings.Split(nm.Address, ","), strings.Split(nm.PodCIDR, ",")
		for i := range min(len(addrs), len(ranges)) {
			want[nm.Name] = append(want[nm.Name], addrs[i]+" "+ranges[i])
		}
	}
	// Every node holds the same table: each distinct content is read once.
	tables := map[string][]string{}
	for _, n := range b.nodes {
		f := n.file(paths.RoutesTable)
		if f == nil {
			continue
		}
		msgs, done := tables[string(f.data)]
		if !done {
			msgs = routesTableProblems(f.data, want, b.meta.Nodes)
			tables[string(f.data)] = msgs
		}
		for _, m := range msgs {
			b.fail(r, n.rel(paths.RoutesTable), "%s", m)
		}
		if s := n.file(paths.RoutesScript); s == nil || string(s.data) != nodeconfig.RoutesScript {
			b.fail(r, n.rel(paths.RoutesScript), "is not the routes script scratchgen renders (it must route exactly the table's other nodes)")
		}
		if pu := n.file(paths.RoutesPathUnit); pu == nil || string(pu.data) != nodeconfig.RoutesPathUnit {
			b.fail(r, n.rel(paths.RoutesPathUnit), "is not the path unit scratchgen renders (it must start %s when %s arrives, nothing else)", paths.RoutesService, paths.RoutesTable)
		}
		if u := n.units[paths.RoutesService]; u != nil {
			for _, key := range []string{"ExecStart", "ExecStop"} {
				for _, c := range u.exec[key] {
					if len(c) != 3 || c[0] != paths.RoutesScript || c[2] != n.name {
						b.fail(r, n.rel(u.execFile[key]), "%s runs %s; it must run %s with the node's own name (%s)", key, strings.Join(c, " "), paths.RoutesScript, n.name)
					}
				}
			}
		}
	}
}

// routesTableProblems says what is wrong with a routes table: want maps each node of
// bundle.json to "address pod-range".
func routesTableProblems(data []byte, want map[string][]string, nodes []bundle.NodeMetadata) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 3 {
			out = append(out, fmt.Sprintf("line %q is not: node address pod-range", line))
			continue
		}
		name, rest := fields[0], fields[1]+" "+fields[2]
		w, ok := want[name]
		i := seen[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("routes %s via %s for node %s, which is not a cluster node", fields[2], fields[1], name))
		case i >= len(w):
			out = append(out, fmt.Sprintf("lists node %s more than once per IP family", name))
		case rest != w[i]:
			out = append(out, fmt.Sprintf("routes %s via %s for node %s, whose address and pod range are %s", fields[2], fields[1], name, strings.Join(w, ", ")))
		}
		seen[name]++
	}
	for _, nm := range nodes {
		if seen[nm.Name] < len(want[nm.Name]) {
			out = append(out, fmt.Sprintf("does not list node %s for every IP family: no route would reach its pods", nm.Name))
		}
	}
	return out
}

func checkPodRanges(b *checker, r Rule) {
	if b.meta == nil {
		return
	}
	type owned struct {
		node string
		p    netip.Prefix
	}
	var seen []owned
	for _, n := range b.nodes {
		if n.parsed == nil || n.kubeletConfig == nil || b.meta.Node(n.name) == nil {
			continue
		}
		rel := n.rel(n.kubeletConfigP)
		got := n.kubeletConfig.PodCIDR
		ps, err := lock.ParsePrefixes(got)
		if err != nil {
			if got != "" {
				b.fail(r, rel, "podCIDR %q is not a range (or one per IP family)", got)
			}
			continue
		}
		if want := b.meta.Node(n.name).PodCIDR; got != want {
			b.fail(r, rel, "podCIDR is %s, but bundle.json records %s for the node", got, want)
		}
		for _, p := range ps {
			for _, o := range seen {
				if o.p.Overlaps(p) {
					b.fail(r, rel, "podCIDR %s overlaps node %s's %s", p, o.node, o.p)
				}
			}
		}
		for _, p := range ps {
			seen = append(seen, owned{n.name, p})
		}
	}
}

// RulesMarkdown is the rules as the README's table lists them.
func RulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| rule | checks | CIS Kubernetes Benchmark (v1.23) |\n|---|---|---|\n")
	for _, r := range rules {
		cis := r.CIS
		if cis == "" {
			cis = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.ID, r.Checks, cis)
	}
	return b.String()
}
