package review

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/scratchgen/scratchgen/generator/credentials"
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
	// OnDisk is set when NotAfter comes from the certificate in the bundle on disk (not
	// from the lock); Note says where disk and lock disagree.
	OnDisk bool   `json:"onDisk,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Status lists every certificate of a cluster (identities from credentials.Identities,
// dates from credentials.Schedule): CAs first, then leaves, each sorted by name. The
// service-account key pair has no certificate and is not listed.
//
// disk (nil when there is no bundle) is what the bundle on disk holds: its expiry is the
// one reported, and where it disagrees with the lock the row says so.
func Status(ids []credentials.Identity, dates map[credentials.ID]credentials.Dates, disk map[credentials.ID]credentials.OnDisk) []CertStatus {
	var out []CertStatus
	for _, id := range ids {
		if id.Kind == credentials.KindKeyPair {
			continue
		}
		d := dates[id.ID]
		row := CertStatus{Name: string(id.ID), CA: string(id.Cert.CA), Nodes: id.Nodes, Admin: id.Admin,
			NotAfter: d.NotAfter.UTC(), Issued: d.Issued}
		if od, ok := disk[id.ID]; ok {
			row.Note = od.Note
			if !od.NotAfter.IsZero() {
				row.NotAfter, row.OnDisk = od.NotAfter, true
			}
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].CA == "") != (out[j].CA == "") {
			return out[i].CA == ""
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// WriteStatus prints the status table, like `kubeadm certs check-expiration`: RESIDUAL
// is the time left (days, or years beyond two), "expired" once past.
func WriteStatus(w io.Writer, rows []CertStatus, nodes []string, now time.Time) error {
	var buf bytes.Buffer
	defer func() {
		for _, l := range strings.SplitAfter(buf.String(), "\n") {
			if strings.HasSuffix(l, "\n") {
				l = strings.TrimRight(l[:len(l)-1], " ") + "\n"
			}
			io.WriteString(w, l)
		}
	}()
	tw := tabwriter.NewWriter(&buf, 0, 0, 3, ' ', 0)
	notes := slices.ContainsFunc(rows, func(r CertStatus) bool { return r.Note != "" })
	if notes {
		fmt.Fprintln(tw, "CERTIFICATE\tEXPIRES\tRESIDUAL\tCA\tNODES\tNOTE")
	} else {
		fmt.Fprintln(tw, "CERTIFICATE\tEXPIRES\tRESIDUAL\tCA\tNODES")
	}
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
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", name, r.NotAfter.Format(time.RFC3339), Residual(r.NotAfter, now), ca, holders(r, nodes))
		if notes {
			line += "\t" + r.Note
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pending {
		fmt.Fprintln(&buf, "* not in the lock yet: issued by the next render, dates assume it happens now")
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
