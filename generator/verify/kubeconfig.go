package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/csv"
	"net"
	"net/url"
	"strings"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/pki"
)

// kubeconfig is one parsed kubeconfig, resolved through its current context.
type kubeconfig struct {
	rel  string // bundle-relative path
	path string // node path ("" for admin/admin.kubeconfig)
	node *node  // nil for admin/admin.kubeconfig
	// kind is "kubelet", "kube-proxy", "admin", "super-admin", "controller-manager",
	// "scheduler" or "other".
	kind   string
	server string
	url    *url.URL
	caPEM  []byte
	cert   *x509.Certificate
	keyPEM []byte
	token  string
	user   string // the auth-info name
}

// identity is the user the kubeconfig authenticates as: its certificate's CN, or the
// auth-info name for a token-only kubeconfig.
func (k *kubeconfig) identity() string {
	if k.cert != nil {
		return k.cert.Subject.CommonName
	}
	return k.user
}

// parseKubeconfig reads a kubeconfig and resolves its current context. Files a
// kubeconfig names by path are read from the node's rootfs.
func (b *checker) parseKubeconfig(n *node, rel string, data []byte, kind string) *kubeconfig {
	var cfg clientcmdv1.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		b.problemf(rel, "is not a kubeconfig: %v", err)
		return nil
	}
	ctxName := cfg.CurrentContext
	if ctxName == "" && len(cfg.Contexts) == 1 {
		ctxName = cfg.Contexts[0].Name
	}
	var ctx *clientcmdv1.Context
	for i := range cfg.Contexts {
		if cfg.Contexts[i].Name == ctxName {
			ctx = &cfg.Contexts[i].Context
		}
	}
	if ctx == nil {
		b.problemf(rel, "current-context %q names no context", ctxName)
		return nil
	}
	var cluster *clientcmdv1.Cluster
	for i := range cfg.Clusters {
		if cfg.Clusters[i].Name == ctx.Cluster {
			cluster = &cfg.Clusters[i].Cluster
		}
	}
	var auth *clientcmdv1.AuthInfo
	for i := range cfg.AuthInfos {
		if cfg.AuthInfos[i].Name == ctx.AuthInfo {
			auth = &cfg.AuthInfos[i].AuthInfo
		}
	}
	if cluster == nil || auth == nil {
		b.problemf(rel, "context %q names cluster %q and user %q, which the kubeconfig does not define", ctxName, ctx.Cluster, ctx.AuthInfo)
		return nil
	}
	kc := &kubeconfig{rel: rel, node: n, kind: kind, server: cluster.Server, user: ctx.AuthInfo}
	// read returns inline data, or the content of a file the kubeconfig names.
	read := func(inline []byte, file, what string) []byte {
		if len(inline) > 0 || file == "" {
			return inline
		}
		if n != nil {
			if f := n.file(file); f != nil {
				return f.data
			}
		}
		b.problemf(rel, "names %s %s, which is not in the node's rootfs", what, file)
		return nil
	}
	kc.caPEM = read(cluster.CertificateAuthorityData, cluster.CertificateAuthority, "certificate-authority")
	if cluster.InsecureSkipTLSVerify {
		b.problemf(rel, "sets insecure-skip-tls-verify: the API server's certificate would not be checked")
	}
	if certPEM := read(auth.ClientCertificateData, auth.ClientCertificate, "client-certificate"); len(certPEM) > 0 {
		c, err := parseCert(certPEM)
		if err != nil {
			b.problemf(rel, "client-certificate-data is not a PEM certificate: %v", err)
		}
		kc.cert = c
	}
	kc.keyPEM = read(auth.ClientKeyData, auth.ClientKey, "client-key")
	kc.token = auth.Token
	if auth.TokenFile != "" && kc.token == "" {
		kc.token = strings.TrimSpace(string(read(nil, auth.TokenFile, "tokenFile")))
	}
	if u, err := url.Parse(kc.server); err == nil {
		kc.url = u
	}
	return kc
}

// allKubeconfigs returns admin/admin.kubeconfig and every node's kubeconfigs.
func (b *checker) allKubeconfigs() []*kubeconfig {
	var out []*kubeconfig
	if b.adminKubeconfig != nil {
		out = append(out, b.adminKubeconfig)
	}
	for _, n := range b.nodes {
		out = append(out, n.kubeconfigs...)
	}
	return out
}

// endpointKinds are the kubeconfigs that reach the API through the cluster endpoint.
var endpointKinds = map[string]bool{"kubelet": true, "kube-proxy": true, "admin": true, "super-admin": true}

// localUsers are the identities of the kubeconfigs with a fixed user.
var localUsers = map[string]string{
	"controller-manager": "system:kube-controller-manager",
	"scheduler":          "system:kube-scheduler",
}

// checkKubeconfigs checks every kubeconfig: an https server, the cluster CA, a client
// certificate signed by it with a matching key, one endpoint for all of them, local
// components talking to their own node's API server, and kubelets naming their node.
func (b *checker) checkKubeconfigs() {
	all := b.allKubeconfigs()
	if b.files["admin/"+paths.AdminKubeconfig] == nil && len(b.nodes) > 0 {
		b.problemf("admin/"+paths.AdminKubeconfig, "is missing: render writes the operator's kubeconfig")
	}
	ca := b.cas[caCluster]
	for _, kc := range all {
		if kc.url == nil || kc.url.Scheme != "https" || kc.url.Hostname() == "" {
			b.problemf(kc.rel, "server %q is not an https URL", kc.server)
		}
		if len(kc.caPEM) == 0 {
			b.problemf(kc.rel, "names no certificate authority: the API server's certificate could not be verified")
		} else if cs, err := parseCerts(kc.caPEM); err != nil {
			b.problemf(kc.rel, "certificate-authority-data is not a PEM certificate: %v", err)
		} else if ca != nil && !ca.same(cs) {
			b.problemf(kc.rel, "certificate-authority-data is not %s (%s) but %s", ca.spec.desc, paths.CACert, describeAll(cs))
		}
		if kc.cert != nil {
			b.checkLeafAs(kc.rel, "client-certificate-data ", kc.cert, caCluster, client, kc.kind+" authenticates to the API server with it")
			if len(kc.keyPEM) == 0 {
				b.problemf(kc.rel, "has a client certificate but no client key")
			} else if key, err := parseKey(kc.keyPEM); err != nil {
				b.problemf(kc.rel, "client-key-data is not a PEM private key: %v", err)
			} else if !samePublicKey(key.Public(), kc.cert.PublicKey) {
				b.problemf(kc.rel, "client-key-data is not the private key of client-certificate-data (%s)", describe(kc.cert))
			}
		} else if kc.token == "" {
			b.problemf(kc.rel, "has no client credentials (no client certificate, no token)")
		}
		if want, ok := localUsers[kc.kind]; ok && kc.identity() != want {
			b.problemf(kc.rel, "authenticates as %s, but %s must be %s", kc.identity(), kc.kind, want)
		}
	}
	b.checkEndpoint(all)
	b.checkLocalServers()
	b.checkKubeletIdentities()
}

// checkEndpoint checks that every kubeconfig that goes through the cluster endpoint uses
// the same server.
func (b *checker) checkEndpoint(all []*kubeconfig) {
	count := map[string]int{}
	first := map[string]string{}
	var servers []string
	for _, kc := range all {
		if !endpointKinds[kc.kind] {
			continue
		}
		if count[kc.server] == 0 {
			first[kc.server] = kc.rel
			servers = append(servers, kc.server)
		}
		count[kc.server]++
	}
	if len(servers) == 0 {
		return
	}
	ref := servers[0]
	for _, s := range servers {
		if count[s] > count[ref] {
			ref = s
		}
	}
	b.endpoint = ref
	for _, kc := range all {
		if endpointKinds[kc.kind] && kc.server != ref {
			b.problemf(kc.rel, "server %s differs from %s, which %d other kubeconfig(s) use (e.g. %s)", kc.server, ref, count[ref], first[ref])
		}
	}
}

// checkLocalServers checks that the controller manager's and scheduler's kubeconfigs
// point at the API server of their own node.
func (b *checker) checkLocalServers() {
	for _, n := range b.nodes {
		for _, kc := range n.kubeconfigs {
			if _, ok := localUsers[kc.kind]; !ok || kc.url == nil {
				continue
			}
			api := n.byComponent[component.APIServer]
			if api == nil {
				b.problemf(kc.rel, "points at %s, but this node runs no kube-apiserver", kc.server)
				continue
			}
			host := kc.url.Hostname()
			adv := api.flags["advertise-address"]
			if ip := net.ParseIP(host); host != adv && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
				b.problemf(kc.rel, "server %s is not this node's kube-apiserver (--advertise-address=%s)", kc.server, adv)
			}
			port := api.flags["secure-port"]
			if port == "" {
				port = "6443"
			}
			if p := kc.url.Port(); p != port {
				b.problemf(kc.rel, "server %s uses port %s, but this node's kube-apiserver listens on --secure-port=%s", kc.server, p, port)
			}
		}
	}
}

// checkKubeletIdentities checks that each kubelet's client certificate names its node
// when the bundle gives every kubelet its own identity (perNode). A bundle whose
// kubelets share one identity (perRole, shared) must use the same one everywhere.
func (b *checker) checkKubeletIdentities() {
	var kubelets []*kubeconfig
	perNode := false
	for _, n := range b.nodes {
		for _, kc := range n.kubeconfigs {
			if kc.kind == "kubelet" {
				kubelets = append(kubelets, kc)
				perNode = perNode || strings.HasPrefix(kc.identity(), nodeUserPrefix)
			}
		}
	}
	if perNode {
		for _, kc := range kubelets {
			if kc.cert != nil {
				b.checkNodeSubject(kc.rel, kc.cert, kc.node, "client-certificate-data", "in this bundle each kubelet's client certificate")
			} else if kc.user != nodeUserPrefix+kc.node.name {
				b.problemf(kc.rel, "authenticates as %s, not this node (%s%s): other kubelets name their nodes", kc.user, nodeUserPrefix, kc.node.name)
			}
		}
		return
	}
	count := map[string]int{}
	for _, kc := range kubelets {
		count[kc.identity()]++
	}
	if len(count) > 1 {
		ref := kubelets[0].identity()
		for id, c := range count {
			if c > count[ref] || c == count[ref] && id < ref {
				ref = id
			}
		}
		for _, kc := range kubelets {
			if kc.identity() != ref {
				b.warnf(kc.rel, "the kubelet authenticates as %s, but %d other kubelet(s) as %s: a shared kubelet identity should be the same on every node", kc.identity(), count[ref], ref)
			}
		}
	}
}

// tokenLine is one line of known_tokens.csv.
type tokenLine struct {
	user string
	line int
}

// checkTokens checks known_tokens.csv on every control-plane node (parseable, 32
// character tokens, no token twice, the same on every node) and that every kubeconfig's
// token is in it, for the user the kubeconfig authenticates as.
func (b *checker) checkTokens() {
	type tokenFile struct {
		rel  string
		data []byte
	}
	var files []tokenFile
	count := map[string]int{}
	for _, n := range b.nodes {
		api := n.byComponent[component.APIServer]
		if api == nil {
			if n.file(paths.KnownTokens) != nil {
				b.problemf(n.rel(paths.KnownTokens), "is on a node that runs no kube-apiserver: it belongs only on control-plane nodes")
			}
			continue
		}
		p := api.flags["token-auth-file"]
		f := n.file(p)
		if p == "" || f == nil {
			continue // a missing file is reported with the flag that names it
		}
		files = append(files, tokenFile{n.rel(p), f.data})
		count[string(f.data)]++
	}
	if len(files) > 0 {
		ref := files[0]
		for _, f := range files {
			if count[string(f.data)] > count[string(ref.data)] {
				ref = f
			}
		}
		checked := map[string]bool{}
		for _, f := range files {
			if !bytes.Equal(f.data, ref.data) {
				b.problemf(f.rel, "differs from the token file of %d other control-plane node(s) (e.g. %s): every API server must accept the same tokens", count[string(ref.data)], ref.rel)
			}
			if !checked[string(f.data)] {
				checked[string(f.data)] = true
				tokens := b.parseTokens(f.rel, f.data)
				if bytes.Equal(f.data, ref.data) {
					b.tokens = tokens
				}
			}
		}
	}
	for _, kc := range b.allKubeconfigs() {
		if kc.token == "" {
			continue
		}
		if b.tokens == nil {
			b.problemf(kc.rel, "has a token, but no kube-apiserver reads a token file (--token-auth-file)")
			continue
		}
		tl, ok := b.tokens[kc.token]
		switch {
		case !ok:
			b.problemf(kc.rel, "the token of %s is not in known_tokens.csv: the API server would reject it", kc.identity())
		case tl.user != kc.identity():
			b.problemf(kc.rel, "the token belongs to %s (known_tokens.csv line %d), but the kubeconfig authenticates as %s", tl.user, tl.line, kc.identity())
		}
	}
}

// parseTokens parses a known_tokens.csv, reporting malformed lines. Tokens never appear
// in messages.
func (b *checker) parseTokens(rel string, data []byte) map[string]tokenLine {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		b.problemf(rel, "is not CSV: %v", err)
		return map[string]tokenLine{}
	}
	out := map[string]tokenLine{}
	users := map[string]int{}
	for i, rec := range recs {
		line := i + 1
		if len(rec) < 3 {
			b.problemf(rel, "line %d has %d column(s), want token,user,uid[,\"groups\"]", line, len(rec))
			continue
		}
		tok, user := rec[0], rec[1]
		if len(tok) != pki.TokenLen {
			b.problemf(rel, "line %d: the token of %s has %d characters, want %d", line, user, len(tok), pki.TokenLen)
		}
		if prev, dup := out[tok]; dup {
			b.problemf(rel, "line %d repeats the token of line %d", line, prev.line)
			continue
		}
		if prev, dup := users[user]; dup {
			b.problemf(rel, "line %d gives %s a second token (first on line %d)", line, user, prev)
		}
		users[user] = line
		out[tok] = tokenLine{user: user, line: line}
	}
	return out
}
