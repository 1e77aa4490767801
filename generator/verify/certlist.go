package verify

import (
	"crypto/x509"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// checkCertList checks each node's certificate list, which the watchdog reads instead
// of the certificates: every line names a certificate the node holds with its real end,
// and every certificate file and kubeconfig client certificate of the node is listed
// (else the watchdog would never warn about it).
func (b *checker) checkCertList() {
	for _, n := range b.nodes {
		f := n.file(paths.CertList)
		if f == nil {
			if n.file(paths.CertCheckScript) != nil {
				b.problemf(n.rel(paths.CertCheckScript), "has no certificate list to read (%s)", paths.CertList)
			}
			continue
		}
		rel := n.rel(paths.CertList)
		held := map[string][]*x509.Certificate{} // node path → certificates it holds
		for p, file := range n.rootfs {
			if strings.HasSuffix(p, ".crt") {
				if cs, err := parseCerts(file.data); err == nil {
					held[p] = cs
				}
			}
		}
		for _, kc := range n.kubeconfigs {
			if kc.cert != nil {
				held[kc.path] = append(held[kc.path], kc.cert)
			}
		}
		listed := map[string]int{}
		for i, line := range strings.Split(string(f.data), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fs := strings.Split(line, "\t")
			unix, err := strconv.ParseInt(fs[0], 10, 64)
			if len(fs) != 4 || err != nil {
				b.problemf(rel, "line %d is not notAfter<TAB>date<TAB>file<TAB>identity: %q", i+1, line)
				continue
			}
			end := time.Unix(unix, 0).UTC()
			if fs[1] != end.Format(time.RFC3339) {
				b.problemf(rel, "line %d: %s is not %d", i+1, fs[1], unix)
			}
			certs, ok := held[fs[2]]
			if !ok {
				b.problemf(rel, "line %d lists %s, which holds no certificate on this node", i+1, fs[2])
				continue
			}
			match := false
			for _, c := range certs {
				if c.NotAfter.Equal(end) {
					match = true
				}
			}
			if !match {
				b.problemf(rel, "line %d says %s (%s) expires %s, but it holds no certificate that ends then: the watchdog would warn at the wrong time", i+1, fs[2], fs[3], fs[1])
			}
			listed[fs[2]]++
		}
		var missing []string
		for p, certs := range held {
			if listed[p] < len(certs) {
				missing = append(missing, p)
			}
		}
		sort.Strings(missing)
		for _, p := range missing {
			b.problemf(rel, "does not list every certificate of %s: the watchdog would never warn about it", p)
		}
	}
}
