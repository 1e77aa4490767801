package review

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON. The document holds no secret content:
// secret files and fields appear only as changed, with fingerprints.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.Groups == nil {
		r.Groups = []Group{}
	}
	if r.Impact == nil {
		r.Impact = []Impact{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the report for a human reviewer: a short header per node, one line
// per file ("+" added, "-" removed, "~" changed) with its details indented below, the
// lock's changes, and the impact summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Bundle != "" {
		fmt.Fprintf(&b, "--- %s (on disk)\n", r.Bundle)
		if r.Spec != "" {
			fmt.Fprintf(&b, "+++ %s (rendered)\n", r.Spec)
		}
	}
	if !r.Changed {
		fmt.Fprintf(&b, "no changes\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, g := range r.Groups {
		b.WriteString("\n")
		writeGroup(&b, g)
	}
	if r.Lock != nil {
		b.WriteString("\nlock:\n")
		if r.Lock.Created {
			b.WriteString("  + created (first render)\n")
		}
		for _, e := range r.Lock.Entries {
			switch e.Change {
			case Added:
				fmt.Fprintf(&b, "  + %s: %s\n", e.Key, e.New)
			case Removed:
				fmt.Fprintf(&b, "  - %s: %s\n", e.Key, e.Old)
			default:
				if e.Old == "" && e.New == "" {
					fmt.Fprintf(&b, "  ~ %s\n", e.Key)
					continue
				}
				fmt.Fprintf(&b, "  ~ %s\n    - %s\n    + %s\n", e.Key, e.Old, e.New)
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	if len(r.NeedsSecret) > 0 {
		b.WriteString("\nneeds the root secret (reviewed without it):\n")
		for _, p := range r.NeedsSecret {
			where := strings.Join(p.Nodes, ",")
			if p.Admin {
				where = strings.TrimPrefix(where+",admin/", ",")
			}
			if where == "" {
				where = "no node"
			}
			fmt.Fprintf(&b, "  %s %s (%s): %s\n", p.Verb(), p.ID, where, p.Reason)
		}
	}
	if len(r.Impact) > 0 {
		b.WriteString("\nimpact:\n")
		for _, im := range r.Impact {
			fmt.Fprintf(&b, "  %s: %s (%s)\n", im.Node, im.Component, strings.Join(im.Reasons, ", "))
		}
	}
	b.WriteString("\n" + r.summary() + "\n")
	if r.Unchecked > 0 {
		fmt.Fprintf(&b, "%d secret file(s) not checked (they need the root secret)\n", r.Unchecked)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summary counts files and nodes.
func (r *Report) summary() string {
	var added, changed, removed, nodesAdded, nodesRemoved, nodesChanged int
	for _, g := range r.Groups {
		switch {
		case g.Node && g.Status == Added:
			nodesAdded++
		case g.Node && g.Status == Removed:
			nodesRemoved++
		case g.Node:
			nodesChanged++
		}
		for _, f := range g.Files {
			switch f.Change {
			case Added:
				added++
			case Removed:
				removed++
			default:
				changed++
			}
		}
	}
	s := fmt.Sprintf("%d file(s) added, %d changed, %d removed; nodes: %d added, %d changed, %d removed",
		added, changed, removed, nodesAdded, nodesChanged, nodesRemoved)
	if r.Lock != nil {
		s += "; the lock changes"
	}
	return s
}

func writeGroup(b *strings.Builder, g Group) {
	switch {
	case g.Node && g.Status == Added:
		fmt.Fprintf(b, "%s: new node (%d files)\n", g.Name, len(g.Files))
	case g.Node && g.Status == Removed:
		fmt.Fprintf(b, "%s: removed node (%d files)\n", g.Name, len(g.Files))
		return
	default:
		fmt.Fprintf(b, "%s:\n", g.Name)
	}
	files := g.Files
	for i := 0; i < len(files); i++ {
		f := files[i]
		// Provisioning views carrying the same changes are shown once.
		names := []string{f.Path}
		if f.Kind == KindView {
			for i+1 < len(files) && sameViewChange(f, files[i+1]) {
				i++
				names = append(names, files[i].Path)
			}
		}
		writeFile(b, f, names)
	}
}

func sameViewChange(a, b FileDiff) bool {
	if b.Kind != KindView || a.Change != b.Change || a.Note != b.Note || a.Pending != b.Pending || a.OldMode != b.OldMode || a.NewMode != b.NewMode {
		return false
	}
	if len(a.Carried) != len(b.Carried) {
		return false
	}
	for i := range a.Carried {
		if a.Carried[i] != b.Carried[i] {
			return false
		}
	}
	// Summaries differ by view kind; compare what follows it (the file count).
	_, ac, _ := strings.Cut(a.Summary, ", ")
	_, bc, _ := strings.Cut(b.Summary, ", ")
	return ac == bc
}

func writeFile(b *strings.Builder, f FileDiff, names []string) {
	if f.Pending != "" {
		what := ""
		if f.Summary != "" {
			what = f.Summary + ", "
		}
		fmt.Fprintf(b, "  %s %s (%snot checked: %s; needs the root secret)\n", f.Change.mark(), strings.Join(names, ", "), what, f.Pending)
		return
	}
	var details []string
	switch f.Kind {
	case KindView:
		label, count, _ := strings.Cut(f.Summary, ", ")
		if len(names) > 1 || label == "" {
			label = string(KindView)
			if len(names) > 1 {
				label += "s"
			}
		}
		details = append(details, label)
		if count != "" {
			details = append(details, count)
		}
		if f.OldFingerprint != "" || f.NewFingerprint != "" {
			details = append(details, "secret")
		}
	case KindText:
		if f.Summary != "" {
			details = append(details, f.Summary)
		}
	case KindKubeconfig:
		details = append(details, "kubeconfig", "secret")
	case KindSecret:
		details = append(details, "secret")
	case KindBinary:
		details = append(details, "binary", f.Summary)
	default:
		if f.Summary != "" {
			details = append(details, f.Summary)
		} else {
			details = append(details, string(f.Kind))
		}
	}
	if fp := fingerprints(f); fp != "" && len(names) == 1 {
		details = append(details, fp)
	}
	switch {
	case f.OldMode != "" && f.NewMode != "":
		details = append(details, "mode "+f.OldMode+" → "+f.NewMode)
	case f.Change == Added && f.NewMode != "" && f.NewMode != "0644":
		details = append(details, "mode "+f.NewMode)
	}
	line := "  " + f.Change.mark() + " " + strings.Join(names, ", ")
	if len(details) > 0 {
		line += " (" + strings.Join(details, ", ") + ")"
	}
	if len(f.Carried) > 0 {
		if len(names) > 1 {
			line += " carry:"
		} else {
			line += " carries:"
		}
	}
	b.WriteString(line + "\n")
	if f.Note != "" {
		fmt.Fprintf(b, "    note: %s\n", f.Note)
	}
	for _, fd := range f.Fields {
		writeField(b, fd)
	}
	for _, c := range f.Carried {
		s := "    " + c.Change.mark() + " " + c.Path
		if c.Note != "" {
			s += ": " + c.Note
		}
		b.WriteString(s + "\n")
	}
	if f.Diff != "" {
		for _, l := range strings.SplitAfter(f.Diff, "\n") {
			if l != "" {
				b.WriteString("    " + l)
			}
		}
	}
}

// fingerprints shows the fingerprints of a secret or binary file.
func fingerprints(f FileDiff) string {
	switch {
	case f.OldFingerprint != "" && f.NewFingerprint != "":
		return f.OldFingerprint + " → " + f.NewFingerprint
	case f.NewFingerprint != "":
		return f.NewFingerprint
	}
	return f.OldFingerprint
}

func writeField(b *strings.Builder, fd FieldDiff) {
	if fd.Secret {
		switch fd.Change {
		case Added:
			fmt.Fprintf(b, "    + %s: set (not shown)\n", fd.Name)
		case Removed:
			fmt.Fprintf(b, "    - %s: removed (not shown)\n", fd.Name)
		default:
			fmt.Fprintf(b, "    ~ %s: changed (not shown)\n", fd.Name)
		}
		return
	}
	val := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	if fd.Change != Added {
		fmt.Fprintf(b, "    - %s: %s\n", fd.Name, val(fd.Old))
	}
	if fd.Change != Removed {
		fmt.Fprintf(b, "    + %s: %s\n", fd.Name, val(fd.New))
	}
}
