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
	if !r.writeHead(&b) {
		_, err := io.WriteString(w, b.String())
		return err
	}
	shared, rest := r.sharedChanges()
	if len(shared) > 0 {
		b.WriteString("\nthe same change on several nodes:\n")
		for _, sc := range shared {
			b.WriteString(sc)
		}
	}
	for _, g := range rest {
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
	r.writeNeedsSecret(&b)
	b.WriteString("\n" + r.summary() + "\n")
	if r.Unchecked > 0 {
		fmt.Fprintf(&b, "%d secret file(s) not checked (they need the root secret)\n", r.Unchecked)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHead writes what every text report starts with: the header, then "no changes"
// (returning false) or the impact and the view directives.
func (r *Report) writeHead(b *strings.Builder) bool {
	if r.Bundle != "" {
		fmt.Fprintf(b, "--- %s (on disk)\n", r.Bundle)
		if r.Spec != "" {
			fmt.Fprintf(b, "+++ %s (rendered)\n", r.Spec)
		}
	}
	if !r.Changed {
		b.WriteString("no changes\n")
		return false
	}
	if len(r.Impact) > 0 {
		b.WriteString("\nimpact:\n")
		for _, im := range groupImpacts(r.Impact) {
			b.WriteString("  " + im + "\n")
		}
	}
	writeRollout(b, r.Rollout, "rollout (deliver in this order; after each node, wait until it is Ready and its static pods run):")
	if dirs := r.directives(); len(dirs) > 0 {
		b.WriteString("\nprovisioning views say more than their files (not rendered by scratchgen: read these):\n")
		for _, d := range dirs {
			b.WriteString("  ! " + d + "\n")
		}
	}
	return true
}

// writeNeedsSecret lists what a review without the root secret could not render.
func (r *Report) writeNeedsSecret(b *strings.Builder) {
	if len(r.NeedsSecret) == 0 {
		return
	}
	b.WriteString("\nneeds the root secret (reviewed without it):\n")
	for _, p := range r.NeedsSecret {
		where := CompressNames(p.Nodes)
		if p.Admin {
			where = strings.TrimPrefix(where+", admin/", ", ")
		}
		if where == "" {
			where = "no node"
		}
		fmt.Fprintf(b, "  %s %s (%s): %s\n", p.Verb(), p.ID, where, p.Reason)
	}
}

// WriteSummary writes only the header, the impact, what needs the root secret and the
// counts: a review short enough for any pull-request comment.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	if !r.writeHead(&b) {
		_, err := io.WriteString(w, b.String())
		return err
	}
	r.writeNeedsSecret(&b)
	b.WriteString("\n" + r.summary() + "\n")
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
	for _, e := range entries(g.Files) {
		writeFile(b, e.f, e.names)
	}
}

// entry is one line of a group's listing: a file, or the provisioning views that carry
// the same changes (shown once).
type entry struct {
	names []string
	f     FileDiff
}

func entries(files []FileDiff) []entry {
	var out []entry
	for i := 0; i < len(files); i++ {
		f := files[i]
		names := []string{f.Path}
		if f.Kind == KindView {
			for i+1 < len(files) && sameViewChange(f, files[i+1]) {
				i++
				names = append(names, files[i].Path)
			}
		}
		out = append(out, entry{names, f})
	}
	return out
}

// directives lists every view directive that differs, as "node view: directive".
func (r *Report) directives() []string {
	var out []string
	for _, g := range r.Groups {
		for _, f := range g.Files {
			for _, d := range f.Directives {
				out = append(out, g.Name+" "+f.Path+": "+d)
			}
		}
	}
	return out
}

// changedLines keeps a unified diff's added and removed lines: what changed, whatever
// the context (which differs from node to node).
func changedLines(diff string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(diff, "\n") {
		if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// sharedChanges pulls out the entries that are the same on several changed nodes (text
// diffs compared by their changed lines), rendered with the nodes they apply to, and
// returns the groups with what remains.
func (r *Report) sharedChanges() ([]string, []Group) {
	type shared struct {
		text  string
		nodes []string
	}
	var order []string
	byKey := map[string]*shared{}
	render := func(e entry) string {
		var sb strings.Builder
		if e.f.Diff != "" {
			e.f.Diff = changedLines(e.f.Diff)
		}
		writeFile(&sb, e.f, e.names)
		return sb.String()
	}
	for _, g := range r.Groups {
		if !g.Node || g.Status != Changed {
			continue
		}
		for _, e := range entries(g.Files) {
			key := render(e)
			if byKey[key] == nil {
				byKey[key] = &shared{text: key}
				order = append(order, key)
			}
			byKey[key].nodes = append(byKey[key].nodes, g.Name)
		}
	}
	var out []string
	isShared := map[string]bool{}
	for _, k := range order {
		sh := byKey[k]
		if len(sh.nodes) < 2 {
			continue
		}
		isShared[k] = true
		first, rest, _ := strings.Cut(sh.text, "\n")
		tail := ""
		for _, t := range []string{" carry:", " carries:"} {
			if strings.HasSuffix(first, t) {
				first, tail = strings.TrimSuffix(first, t), t
			}
		}
		out = append(out, fmt.Sprintf("%s on %d nodes (%s)%s\n%s", first, len(sh.nodes), CompressNames(sh.nodes), tail, rest))
	}
	var groups []Group
	for _, g := range r.Groups {
		if !g.Node || g.Status != Changed || len(isShared) == 0 {
			groups = append(groups, g)
			continue
		}
		keep := g
		keep.Files = nil
		for _, e := range entries(g.Files) {
			if !isShared[render(e)] {
				keep.Files = append(keep.Files, e.files()...)
			}
		}
		if len(keep.Files) > 0 {
			groups = append(groups, keep)
		}
	}
	return out, groups
}

// files are the file diffs an entry stands for.
func (e entry) files() []FileDiff {
	out := make([]FileDiff, len(e.names))
	for i, n := range e.names {
		out[i] = e.f
		out[i].Path = n
	}
	return out
}

// groupImpacts lists the impacts, one line each, the same impact on several nodes once
// with the nodes compressed ("scratchgen-routes (routes.sh changed) on 200 nodes: …").
func groupImpacts(impacts []Impact) []string {
	var order []string
	nodes := map[string][]string{}
	for _, im := range impacts {
		key := im.Component + " (" + strings.Join(im.Reasons, ", ") + ")"
		if nodes[key] == nil {
			order = append(order, key)
		}
		nodes[key] = append(nodes[key], im.Node)
	}
	var out []string
	for _, key := range order {
		if ns := nodes[key]; len(ns) == 1 {
			out = append(out, ns[0]+": "+key)
		} else {
			out = append(out, fmt.Sprintf("%s on %d nodes: %s", key, len(ns), CompressNames(ns)))
		}
	}
	return out
}

// CompressNames joins node names, writing runs that differ only in a trailing number
// counting up by one as ranges: "cp-1..cp-3, worker-1..worker-200, db".
func CompressNames(names []string) string {
	split := func(s string) (string, int, bool) {
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		if i == len(s) || (len(s)-i > 1 && s[i] == '0') {
			return s, 0, false
		}
		n := 0
		for _, c := range s[i:] {
			n = n*10 + int(c-'0')
		}
		return s[:i], n, true
	}
	var parts []string
	for i := 0; i < len(names); {
		prefix, n, ok := split(names[i])
		j := i + 1
		for ok && j < len(names) {
			p, m, ok2 := split(names[j])
			if !ok2 || p != prefix || m != n+(j-i) {
				break
			}
			j++
		}
		switch {
		case j-i >= 3:
			parts = append(parts, names[i]+".."+names[j-1])
		default:
			j = i + 1
			parts = append(parts, names[i])
		}
		i = j
	}
	return strings.Join(parts, ", ")
}

func sameViewChange(a, b FileDiff) bool {
	if b.Kind != KindView || a.Change != b.Change || a.Note != b.Note || a.Pending != b.Pending || a.OldMode != b.OldMode || a.NewMode != b.NewMode || len(a.Directives) > 0 || len(b.Directives) > 0 {
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
