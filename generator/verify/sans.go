package verify

import (
	"crypto/x509"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// need is one name a serving certificate must cover, and why.
type need struct{ host, why string }

// checkCovers reports each needed host the certificate at node path p does not cover.
func (b *checker) checkCovers(n *node, p string, needs []need) {
	c := b.certAt(n, p)
	if c == nil {
		return
	}
	seen := map[string]bool{}
	for _, nd := range needs {
		if nd.host == "" || seen[nd.host] {
			continue
		}
		seen[nd.host] = true
		if !covers(c, nd.host) {
			b.problemf(n.rel(p), "does not cover %s, %s", nd.host, nd.why)
		}
	}
}

// covers reports whether c is valid for host (a DNS name or an IP address).
func covers(c *x509.Certificate, host string) bool {
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		for _, a := range c.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	return c.VerifyHostname(host) == nil
}

// splitURLs parses a comma-separated URL list flag, skipping what does not parse.
func splitURLs(v string) []*url.URL {
	var out []*url.URL
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			out = append(out, u)
		}
	}
	return out
}

// wildcard reports whether a listen host means "every address".
func wildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// firstServiceIP returns the kubernetes Service address: the first address after the
// network address of the first --service-cluster-ip-range.
func firstServiceIP(v string) string {
	first, _, _ := strings.Cut(v, ",")
	p, err := netip.ParsePrefix(strings.TrimSpace(first))
	if err != nil {
		return ""
	}
	return p.Masked().Addr().Next().String()
}

// serviceIPNeeds are the kubernetes Service's addresses: the first of each range of
// --service-cluster-ip-range (one per family on a dual-stack cluster).
func serviceIPNeeds(v string) []need {
	var out []need
	for _, r := range strings.Split(v, ",") {
		out = append(out, need{firstServiceIP(r), "the kubernetes Service address (first of each --service-cluster-ip-range)"})
	}
	return out
}

// etcdMember is one etcd static pod.
type etcdMember struct {
	n                        *node
	pod                      *staticPod
	name                     string
	advertiseClient, listenC []*url.URL
	advertisePeer, listenP   []*url.URL
}

// serves reports whether the member answers clients at u.
func (m *etcdMember) serves(u *url.URL, from *node) bool {
	for _, c := range append(append([]*url.URL(nil), m.advertiseClient...), m.listenC...) {
		if c.Port() != u.Port() {
			continue
		}
		if c.Hostname() == u.Hostname() {
			ip := net.ParseIP(u.Hostname())
			if ip != nil && ip.IsLoopback() && m.n != from {
				continue // loopback reaches only the caller's own node
			}
			return true
		}
	}
	return false
}

// checkSANs checks that serving certificates cover the addresses clients use: API
// servers (advertise address, Service IP and name, the kubeconfigs' endpoint and local
// URLs), etcd (client and peer URLs, and every --etcd-servers entry) and kubelets
// (--node-ip).
func (b *checker) checkSANs() {
	var members []*etcdMember
	for _, n := range b.nodes {
		pod := n.byComponent[component.Etcd]
		if pod == nil {
			continue
		}
		m := &etcdMember{n: n, pod: pod, name: pod.flags["name"],
			advertiseClient: splitURLs(pod.flags["advertise-client-urls"]),
			listenC:         splitURLs(pod.flags["listen-client-urls"]),
			advertisePeer:   splitURLs(pod.flags["initial-advertise-peer-urls"]),
			listenP:         splitURLs(pod.flags["listen-peer-urls"]),
		}
		members = append(members, m)
		var server, peer []need
		for _, u := range m.advertiseClient {
			server = append(server, need{u.Hostname(), "an address etcd advertises to clients (--advertise-client-urls)"})
			if u.Scheme != "https" {
				b.problemf(n.rel(pod.path), "--advertise-client-urls names %s, which is not https", u)
			}
		}
		for _, u := range m.listenC {
			if !wildcard(u.Hostname()) && u.Scheme == "https" {
				server = append(server, need{u.Hostname(), "an address etcd serves clients on (--listen-client-urls)"})
			}
		}
		for _, u := range m.advertisePeer {
			peer = append(peer, need{u.Hostname(), "the address etcd advertises to its peers (--initial-advertise-peer-urls)"})
		}
		for _, u := range m.listenP {
			if !wildcard(u.Hostname()) {
				peer = append(peer, need{u.Hostname(), "an address etcd serves its peers on (--listen-peer-urls)"})
			}
		}
		b.checkCovers(n, pod.flags["cert-file"], server)
		b.checkCovers(n, pod.flags["peer-cert-file"], peer)
	}
	b.checkInitialCluster(members)

	for _, n := range b.nodes {
		api := n.byComponent[component.APIServer]
		if api == nil {
			continue
		}
		needs := []need{
			{api.flags["advertise-address"], "the address kube-apiserver advertises (--advertise-address)"},
			{"kubernetes.default.svc", "the name pods reach the API server at"},
		}
		needs = append(needs, serviceIPNeeds(api.flags["service-cluster-ip-range"])...)
		if u, err := url.Parse(b.endpoint); err == nil && u.Hostname() != "" {
			needs = append(needs, need{u.Hostname(), "the host of " + b.endpoint + ", the server of the kubelet, kube-proxy and admin kubeconfigs"})
		}
		for _, kc := range n.kubeconfigs {
			if _, local := localUsers[kc.kind]; local && kc.url != nil {
				needs = append(needs, need{kc.url.Hostname(), "the server of " + kc.rel})
			}
		}
		b.checkCovers(n, api.flags["tls-cert-file"], needs)

		for _, u := range splitURLs(api.flags["etcd-servers"]) {
			if u.Scheme != "https" {
				b.problemf(n.rel(api.path), "--etcd-servers names %s, which is not https", u)
			}
			var m *etcdMember
			for _, c := range members {
				if c.serves(u, n) {
					m = c
					break
				}
			}
			if m == nil {
				b.problemf(n.rel(api.path), "--etcd-servers names %s, which no etcd member in the bundle advertises or listens on", u)
				continue
			}
			b.checkCovers(m.n, m.pod.flags["cert-file"], []need{{u.Hostname(), "where kube-apiserver on " + n.name + " reaches etcd (--etcd-servers)"}})
		}
	}

	for _, n := range b.nodes {
		ip := n.kubeletFlags["node-ip"]
		if ip == "" {
			continue
		}
		p := paths.KubeletServingCert
		if n.kubeletConfig != nil && n.kubeletConfig.TLSCertFile != "" {
			p = n.kubeletConfig.TLSCertFile
		}
		var needs []need
		for _, a := range strings.Split(ip, ",") {
			needs = append(needs, need{a, "the node's address (--node-ip of the kubelet)"})
		}
		b.checkCovers(n, p, needs)
	}
}

// checkInitialCluster checks each member's --initial-cluster against the members'
// own names and peer URLs.
func (b *checker) checkInitialCluster(members []*etcdMember) {
	byName := map[string]*etcdMember{}
	for _, m := range members {
		byName[m.name] = m
	}
	for _, m := range members {
		rel := m.n.rel(m.pod.path)
		for _, e := range strings.Split(m.pod.flags["initial-cluster"], ",") {
			name, u, ok := strings.Cut(strings.TrimSpace(e), "=")
			if !ok {
				continue
			}
			o := byName[name]
			if o == nil {
				b.problemf(rel, "--initial-cluster names member %s, which no etcd manifest in the bundle runs (--name)", name)
				continue
			}
			found := false
			for _, p := range o.advertisePeer {
				found = found || p.String() == u
			}
			if !found {
				b.problemf(rel, "--initial-cluster gives member %s the peer URL %s, but %s advertises %s", name, u, o.n.name, o.pod.flags["initial-advertise-peer-urls"])
			}
		}
	}
}
