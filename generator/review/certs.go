package review

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/lock"
)

// CertStatus is one row of `scratchgen certs status`.
type CertStatus struct {
	// Name is the identity, as in the lock ("ca", "apiserver/cp-1").
	Name string `json:"name"`
	// CA is the identity of the signing CA; empty for a CA.
	CA string `json:"ca,omitempty"`
	// Nodes are the nodes whose bundle holds the certificate (as a file or inside a
	// kubeconfig), in spec order; Admin is set when admin/ holds it.
	Nodes []string `json:"nodes"`
	Admin bool     `json:"admin,omitempty"`
	// NotAfter is when it expires.
	NotAfter time.Time `json:"notAfter"`
	// Issued is false for an identity the lock does not record yet (its dates assume a
	// render now).
	Issued bool `json:"issued"`
}

// Status lists every certificate of a credentials plan: CAs first, then leaves, each
// sorted by name. nodes is the spec's node order; lk is the lock the plan was made from
// (nil if none).
func Status(res *credentials.Result, nodes []string, lk *lock.Lock) []CertStatus {
	byRaw := map[string]string{}
	for id, c := range res.Certs {
		byRaw[string(c.Raw)] = id
	}
	holders := map[string]map[string]bool{}
	admin := map[string]bool{}
	for _, n := range nodes {
		for _, id := range certsIn(res.Nodes[n], byRaw) {
			if holders[id] == nil {
				holders[id] = map[string]bool{}
			}
			holders[id][n] = true
		}
	}
	for _, id := range certsIn(res.Admin, byRaw) {
		admin[id] = true
	}
	var out []CertStatus
	for id, c := range res.Certs {
		s := CertStatus{Name: id, NotAfter: c.NotAfter.UTC(), Admin: admin[id]}
		if lk != nil {
			_, s.Issued = lk.Certificates[id]
		}
		if !c.IsCA {
			s.CA = issuerOf(c, res.Certs)
		}
		for _, n := range nodes {
			if holders[id][n] {
				s.Nodes = append(s.Nodes, n)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].CA == "") != (out[j].CA == "") {
			return out[i].CA == ""
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// issuerOf names the CA that signed c.
func issuerOf(c *x509.Certificate, certs map[string]*x509.Certificate) string {
	var ids []string
	for id, ca := range certs {
		if ca.IsCA && bytes.Equal(c.RawIssuer, ca.RawSubject) && bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "?"
	}
	return ids[0]
}

// certsIn returns the identities of the certificates in files: PEM files and the
// client and CA certificates embedded in kubeconfigs.
func certsIn(files []bundle.File, byRaw map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(data []byte) {
		certs, ok := parseCerts(data)
		if !ok {
			return
		}
		for _, c := range certs {
			if id, ok := byRaw[string(c.Raw)]; ok && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	for _, f := range files {
		add(f.Data)
		var cfg clientcmdv1.Config
		if kubeconfigPath(f.Path) && yaml.Unmarshal(f.Data, &cfg) == nil {
			for _, c := range cfg.Clusters {
				add(c.Cluster.CertificateAuthorityData)
			}
			for _, u := range cfg.AuthInfos {
				add(u.AuthInfo.ClientCertificateData)
			}
		}
	}
	return out
}

// WriteStatus prints the status table, like `kubeadm certs check-expiration`: RESIDUAL
// is the time left (days, or years beyond two), "expired" once past.
func WriteStatus(w io.Writer, rows []CertStatus, nodes []string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CERTIFICATE\tEXPIRES\tRESIDUAL\tCA\tNODES")
	pending := false
	for _, r := range rows {
		ca := r.CA
		if ca == "" {
			ca = "-"
		}
		name := r.Name
		if !r.Issued {
			name += " *"
			pending = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, r.NotAfter.Format(time.RFC3339), Residual(r.NotAfter, now), ca, holders(r, nodes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pending {
		_, err := fmt.Fprintln(w, "* not in the lock yet: issued by the next render, dates assume it happens now")
		return err
	}
	return nil
}

// Residual is the time left until notAfter, as kubeadm shows it.
func Residual(notAfter, now time.Time) string {
	if !notAfter.After(now) {
		return "expired"
	}
	return duration.ShortHumanDuration(notAfter.Sub(now))
}

// holders shows where a certificate is: "all" nodes, or their names, plus "admin/".
func holders(r CertStatus, nodes []string) string {
	var parts []string
	switch {
	case len(r.Nodes) == len(nodes) && len(nodes) > 1:
		parts = append(parts, "all nodes")
	case len(r.Nodes) > 0:
		parts = append(parts, strings.Join(r.Nodes, ","))
	}
	if r.Admin {
		parts = append(parts, "admin/")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " + ")
}

// ParseWithin parses a window like "30d", "2w", "36h" or any Go duration ("1h30m").
func ParseWithin(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"y", 365 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.Atoi(n)
			if err == nil && v >= 0 {
				return time.Duration(v) * u.d, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30d, 2w, 720h)", s)
	}
	return d, nil
}

// Expiring returns the rows that expire before now+within.
func Expiring(rows []CertStatus, now time.Time, within time.Duration) []CertStatus {
	var out []CertStatus
	for _, r := range rows {
		if !r.NotAfter.After(now.Add(within)) {
			out = append(out, r)
		}
	}
	return out
}

// Renewal is one identity renewed in the lock.
type Renewal struct {
	Name     string
	Old, New lock.Certificate
}

// Renew returns a copy of lk in which each named identity gets the next generation and a
// NotBefore of now minus credentials.Backdate (UTC, whole seconds), as at first issue.
// Every name must be recorded in lk.
func Renew(lk *lock.Lock, names []string, now time.Time) (*lock.Lock, []Renewal, error) {
	out := lk.Clone()
	out.Certificates = map[string]lock.Certificate{}
	for k, v := range lk.Certificates {
		out.Certificates[k] = v
	}
	var done []Renewal
	for _, id := range names {
		old, ok := lk.Certificates[id]
		if !ok {
			return nil, nil, fmt.Errorf("%s is not in the lock yet: render first, which issues it", id)
		}
		n := lock.Certificate{Generation: old.Generation + 1, NotBefore: now.Add(-credentials.Backdate).UTC().Truncate(time.Second)}
		out.Certificates[id] = n
		done = append(done, Renewal{Name: id, Old: old, New: n})
	}
	return out, done, nil
}

// IsCA reports whether an identity is one of the certificate authorities.
func IsCA(id string) bool {
	for _, c := range caIDs {
		if c == id {
			return true
		}
	}
	return false
}
