// Package review explains what a render would change in a bundle on disk, for humans in
// a pull request and for tools: per node, the files added, removed and changed, with
// unified diffs for text, certificates decoded and compared field by field, provisioning
// views (Ignition, Butane, cloud-init) compared as the files they carry, and the
// components each change restarts. It never shows secret content: private keys, tokens,
// known_tokens.csv and kubeconfigs appear only as "changed" with a fingerprint (and, for
// kubeconfigs, their non-secret fields).
//
// The package is pure: callers pass both file lists and both locks. It also holds the
// certificate status table and the lock update behind `scratchgen certs`.
package review

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/parallel"
	"github.com/scratchgen/scratchgen/generator/provision"
)

// Change is what happens to a file, a field or a lock entry.
type Change string

// Changes.
const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
)

// mark is the one-character sign of a change in text output.
func (c Change) mark() string {
	switch c {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "~"
}

// Kind says how a file is shown.
type Kind string

// Kinds of files.
const (
	// KindText files are shown as a unified diff.
	KindText Kind = "text"
	// KindCertificate files (PEM certificates) are decoded and compared field by field.
	KindCertificate Kind = "certificate"
	// KindPublicKey files (PEM public keys) are shown by key type and fingerprint.
	KindPublicKey Kind = "public key"
	// KindKubeconfig files are secret; only their non-secret fields are shown.
	KindKubeconfig Kind = "kubeconfig"
	// KindSecret files (private keys, token files) are shown only by fingerprint.
	KindSecret Kind = "secret"
	// KindView files (ignition.json, node.bu, user-data) are shown as the files they carry.
	KindView Kind = "provisioning view"
	// KindBinary files are shown by size and fingerprint.
	KindBinary Kind = "binary"
	// KindChecksums is the bundle's SHA256SUMS, which follows from the other files.
	KindChecksums Kind = "checksums"
)

// Report is the complete comparison.
type Report struct {
	// Cluster is the cluster name.
	Cluster string `json:"cluster"`
	// Bundle and Spec are for the header (set by the caller; may be empty).
	Bundle string `json:"bundle,omitempty"`
	Spec   string `json:"spec,omitempty"`
	// Changed reports whether anything differs (files or lock).
	Changed bool `json:"changed"`
	// Groups are "cluster" (bundle root and admin/) first, then nodes in spec order, then
	// removed nodes; only groups with changes are listed.
	Groups []Group `json:"groups"`
	// Lock is the lock file's would-be changes.
	Lock *LockDiff `json:"lock,omitempty"`
	// Impact says which component on which node must restart or reload.
	Impact []Impact `json:"impact"`
	// Rollout orders the delivery: etcd membership changes, etcd members, then control
	// planes, one at a time, then the other nodes, then the operator's cluster-level steps.
	Rollout []RolloutStep `json:"rollout,omitempty"`
	// Topology is the change of the cluster's shape: etcd members and versions (nil when
	// neither changes).
	Topology *Topology `json:"topology,omitempty"`
	// Notes explain changes that follow from others (a renewed CA re-signs its leaves).
	Notes []string `json:"notes,omitempty"`
	// NeedsSecret lists, for a review made without the root secret, the identities a
	// render with it would issue or re-issue.
	NeedsSecret []PendingIdentity `json:"needsSecret,omitempty"`
	// Unchecked counts the secret files on disk that a review without the root secret
	// could not compare.
	Unchecked int `json:"unchecked,omitempty"`
}

// Group is the changes of one node, or of the cluster-level files.
type Group struct {
	// Name is a node name, or "cluster".
	Name string `json:"name"`
	// Node is false for the cluster-level group.
	Node bool `json:"node"`
	// Status is Added for a new node, Removed for a node no longer in the spec, Changed otherwise.
	Status Change `json:"status"`
	// Files are the files that differ, sorted by path.
	Files []FileDiff `json:"files"`
}

// FileDiff is one file that differs.
type FileDiff struct {
	// Path is the path on the node ("/etc/kubernetes/pki/ca.crt") for rootfs files, the
	// name in the node directory ("ignition.json") for views, and the path in the bundle
	// ("admin/admin.kubeconfig") for cluster-level files.
	Path   string `json:"path"`
	Change Change `json:"change"`
	Kind   Kind   `json:"kind"`
	// Summary describes the file in a few words ("certificate CN=kube-apiserver").
	Summary string `json:"summary,omitempty"`
	// OldMode and NewMode are set when the mode differs (or the file is added/removed).
	OldMode string `json:"oldMode,omitempty"`
	NewMode string `json:"newMode,omitempty"`
	// OldFingerprint and NewFingerprint identify secret and binary content (see Fingerprint).
	OldFingerprint string `json:"oldFingerprint,omitempty"`
	NewFingerprint string `json:"newFingerprint,omitempty"`
	// Diff holds unified diff hunks of a text file.
	Diff string `json:"diff,omitempty"`
	// Fields are the decoded fields that differ (certificates, public keys, kubeconfigs).
	Fields []FieldDiff `json:"fields,omitempty"`
	// Carried are the files a provisioning view writes that differ.
	Carried []Carried `json:"carried,omitempty"`
	// Note explains anything unusual (a view that could not be decoded).
	Note string `json:"note,omitempty"`
	// Pending is set when the new content needs the root secret (a review without it):
	// why it cannot be shown ("would be issued: its SANs change").
	Pending string `json:"pending,omitempty"`
	// Directives are, for a provisioning view, what differs besides the files it writes
	// and the units it enables (commands, users, links, remote sources, …): "on disk, not
	// rendered: runcmd: curl … | sh" or "rendered, not on disk: …".
	Directives []string `json:"directives,omitempty"`
}

// FieldDiff is one decoded field that differs. Secret fields carry no values.
type FieldDiff struct {
	Name   string `json:"name"`
	Change Change `json:"change"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// Carried is a file carried by a provisioning view that differs (or "units").
type Carried struct {
	Change Change `json:"change"`
	Path   string `json:"path"`
	Note   string `json:"note,omitempty"`
}

// Impact is one component on one node that must restart or reload.
type Impact struct {
	// Node is a node name, or "cluster" for add-ons and operator files.
	Node      string   `json:"node"`
	Component string   `json:"component"`
	Reasons   []string `json:"reasons"`
}

// Options complete the inputs of Compare.
type Options struct {
	// Cluster is the cluster name.
	Cluster string
	// Nodes is the node order of the spec; nodes found only on disk follow, sorted.
	Nodes []string
	// OldLock is the lock on disk (nil if there is none); NewLock the lock render would
	// write. LockChanged says whether the lock file's bytes would change.
	OldLock, NewLock *lock.Lock
	LockChanged      bool
	// Components is the component table the impact summary reads (nil: the built-in one).
	Components component.Table
	// Pending are the identities a render with the root secret would issue, for a
	// review made without it.
	Pending []PendingIdentity
}

// PendingIdentity is an identity a render with the root secret would issue or re-issue.
type PendingIdentity struct {
	ID     string   `json:"id"`
	Reason string   `json:"reason"`
	Nodes  []string `json:"nodes,omitempty"`
	Admin  bool     `json:"admin,omitempty"`
}

// Verb is "would issue" for a new identity, "would re-issue" for one the lock records.
func (p PendingIdentity) Verb() string {
	if p.Reason == "new" {
		return "would issue"
	}
	return "would re-issue"
}

// Compare reports how the bundle on disk (old) differs from the rendered one (new). Both
// are complete file lists with paths relative to the bundle root, each path once. Secret
// files are recognised by bundle.File.Secret, by mode (no access for group and others),
// by path (keys, kubeconfigs, token files) and by content (PEM private keys), on either side.
func Compare(old, new []bundle.File, opts Options) *Report {
	rep := &Report{Cluster: opts.Cluster}
	oldBy, newBy := byPath(old), byPath(new)
	groups := map[string]*groupFiles{}
	groupOf := func(p string) *groupFiles {
		name, node, _ := split(p)
		g := groups[name]
		if g == nil {
			g = &groupFiles{name: name, node: node, oldFiles: map[string]bool{}, newFiles: map[string]bool{}}
			groups[name] = g
		}
		return g
	}
	for p := range oldBy {
		groupOf(p).oldFiles[p] = true
	}
	for p := range newBy {
		groupOf(p).newFiles[p] = true
	}
	// Comparing a file (decoding views, diffing text) is independent of every other file:
	// the comparisons run in parallel, their results are placed in order.
	type job struct {
		display, path string
		o, n          *bundle.File
		status        Change
		out           *FileDiff
	}
	var jobs []*job
	var order []*Group
	for _, name := range groupOrder(groups, opts.Nodes) {
		g := groups[name]
		grp := &Group{Name: name, Node: g.node, Status: Changed}
		switch {
		case g.node && len(g.oldFiles) == 0:
			grp.Status = Added
		case g.node && len(g.newFiles) == 0:
			grp.Status = Removed
		}
		for _, p := range g.paths() {
			o, n := oldBy[p], newBy[p]
			_, _, display := split(p)
			switch {
			case n != nil && n.Pending != "" && o != nil && (n.Secret || isSecret(p, o)):
				rep.Unchecked++ // a secret file: nothing to say without the secret
				continue
			case n != nil && n.Pending != "":
				f := pendingFile(display, p, o, n)
				jobs = append(jobs, &job{out: &f})
				grp.Files = append(grp.Files, FileDiff{}) // placeholder, filled below
				continue
			case o != nil && n != nil && bytes.Equal(o.Data, n.Data) && o.Mode.Perm() == n.Mode.Perm():
				continue
			}
			jobs = append(jobs, &job{display: display, path: p, o: o, n: n, status: grp.Status})
			grp.Files = append(grp.Files, FileDiff{})
		}
		order = append(order, grp)
	}
	// Views decode through one memo: every node's views carry mostly the same files.
	var views provision.Decoder
	parallel.Do(len(jobs), func(i int) error {
		if j := jobs[i]; j.out == nil {
			f := compareFile(&views, j.display, j.path, j.o, j.n, j.status)
			j.out = &f
		}
		return nil
	})
	next := 0
	for _, grp := range order {
		for i := range grp.Files {
			grp.Files[i] = *jobs[next].out
			next++
		}
		if len(grp.Files) > 0 {
			rep.Groups = append(rep.Groups, *grp)
		}
	}
	if opts.LockChanged {
		rep.Lock = CompareLocks(opts.OldLock, opts.NewLock)
	}
	table := opts.Components
	if table == nil {
		table = component.Default()
	}
	rep.Impact = impacts(table, rep.Groups, oldBy, newBy)
	sh := readShape(oldBy, newBy, opts.OldLock, opts.NewLock)
	rep.Rollout = rollout(table, rep.Groups, rep.Impact, sh)
	rep.Topology = sh.topology()
	rep.NeedsSecret = opts.Pending
	rep.Changed = len(rep.Groups) > 0 || rep.Lock != nil || len(rep.NeedsSecret) > 0
	return rep
}

// pendingFile is a file whose new content needs the root secret: shown with why, and
// what it is (the old one decoded, if it is a certificate).
func pendingFile(display, bundlePath string, o, n *bundle.File) FileDiff {
	d := FileDiff{Path: display, Change: Changed, Pending: n.Pending}
	if o == nil {
		d.Change = Added
		d.NewMode = modeString(n.Mode)
	}
	group, _, _ := split(bundlePath)
	switch {
	case bundlePath == "SHA256SUMS":
		d.Kind = KindChecksums
	case group != ClusterGroup && !strings.HasPrefix(display, "/") && isView(display):
		d.Kind = KindView
	case o != nil:
		if _, summary, ok := certFields(o.Data); ok {
			d.Kind, d.Summary = KindCertificate, summary
		} else {
			d.Kind = KindText
		}
	default:
		d.Kind = KindCertificate
	}
	return d
}

// groupFiles collects the paths of one group on both sides.
type groupFiles struct {
	name               string
	node               bool
	oldFiles, newFiles map[string]bool
}

func (g *groupFiles) paths() []string {
	var out []string
	for p := range g.oldFiles {
		out = append(out, p)
	}
	for p := range g.newFiles {
		if !g.oldFiles[p] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		_, _, a := split(out[i])
		_, _, b := split(out[j])
		// Rootfs files (absolute) before views, then by path.
		if (a[0] == '/') != (b[0] == '/') {
			return a[0] == '/'
		}
		return a < b
	})
	return out
}

// ClusterGroup is the name of the group of files outside nodes/.
const ClusterGroup = "cluster"

// split maps a bundle path to its group, whether that is a node, and the path to show.
func split(p string) (group string, node bool, display string) {
	rest, ok := strings.CutPrefix(p, "nodes/")
	if !ok {
		return ClusterGroup, false, p
	}
	name, inNode, ok := strings.Cut(rest, "/")
	if !ok {
		return ClusterGroup, false, p
	}
	if fsPath, ok := strings.CutPrefix(inNode, "rootfs/"); ok {
		return name, true, "/" + fsPath
	}
	return name, true, inNode
}

// groupOrder is cluster, the spec's nodes, then other nodes sorted.
func groupOrder(groups map[string]*groupFiles, nodes []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if groups[n] != nil && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(ClusterGroup)
	for _, n := range nodes {
		add(n)
	}
	var rest []string
	for n := range groups {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		add(n)
	}
	return out
}

func byPath(files []bundle.File) map[string]*bundle.File {
	out := make(map[string]*bundle.File, len(files))
	for i := range files {
		out[files[i].Path] = &files[i]
	}
	return out
}

// isSecret reports whether a file must not be shown. bundlePath is relative to the
// bundle root.
func isSecret(bundlePath string, f *bundle.File) bool {
	if f == nil {
		return false
	}
	if f.Secret || f.Mode.Perm()&0o077 == 0 || hasPrivateKey(f.Data) {
		return true
	}
	return secretPath(bundlePath)
}

// secretPath matches the paths scratchgen writes secrets at.
func secretPath(p string) bool {
	base := path.Base(p)
	switch {
	case strings.HasSuffix(base, ".key"), base == "known_tokens.csv", base == "kubeconfig",
		strings.HasSuffix(base, ".kubeconfig"), strings.HasSuffix(base, ".secret"):
		return true
	case strings.HasSuffix(base, ".conf") && strings.HasSuffix(path.Dir(p), "/etc/kubernetes"):
		return true // admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf
	}
	return false
}

// compareFile describes one differing file. o or n is nil for an added or removed file.
func compareFile(views *provision.Decoder, display, bundlePath string, o, n *bundle.File, status Change) FileDiff {
	d := FileDiff{Path: display, Change: Changed}
	switch {
	case o == nil:
		d.Change = Added
	case n == nil:
		d.Change = Removed
	}
	if o != nil && (n == nil || o.Mode.Perm() != n.Mode.Perm()) {
		d.OldMode = modeString(o.Mode)
	}
	if n != nil && (o == nil || o.Mode.Perm() != n.Mode.Perm()) {
		d.NewMode = modeString(n.Mode)
	}
	secret := isSecret(bundlePath, o) || isSecret(bundlePath, n)
	cur := n
	if cur == nil {
		cur = o
	}
	data := func(f *bundle.File) []byte {
		if f == nil {
			return nil
		}
		return f.Data
	}
	fingerprints := func() {
		if o != nil {
			d.OldFingerprint = Fingerprint(o.Data)
		}
		if n != nil {
			d.NewFingerprint = Fingerprint(n.Data)
		}
	}
	// A removed file is listed, not shown.
	removedOnly := d.Change == Removed
	group, _, _ := split(bundlePath)
	inNodeDir := group != ClusterGroup && !strings.HasPrefix(display, "/")

	switch {
	case bundlePath == "SHA256SUMS":
		d.Kind = KindChecksums
		d.Summary = "checksums of the bundle's files"
	case inNodeDir && isView(display):
		d.Kind = KindView
		if secret {
			fingerprints()
		}
		if removedOnly {
			break
		}
		// Both sides: their directives are compared too.
		both := o != nil && n != nil
		var oc, nc *carried
		var odirs, ndirs []string
		var err error
		if o != nil {
			oc, odirs, err = decodeView(views, display, o.Data, both)
		}
		if err == nil && n != nil {
			nc, ndirs, err = decodeView(views, display, n.Data, both)
		}
		if err != nil {
			d.Note = "could not be decoded: " + err.Error()
			if !secret {
				d.Kind = KindText
				d.Diff = UnifiedDiff(string(data(o)), string(data(n)))
			}
			break
		}
		d.Summary = nc.kind
		if status == Added || d.Change == Added {
			d.Summary = fmt.Sprintf("%s, %d files", nc.kind, len(nc.files))
			if d.Change == Added {
				break
			}
		}
		d.Carried = compareCarried(oc, nc)
		if both {
			for _, l := range provision.CompareDirectives(ndirs, odirs) {
				if rest, ok := strings.CutPrefix(l, "adds "); ok {
					d.Directives = append(d.Directives, "on disk, not rendered: "+rest)
				} else if rest, ok := strings.CutPrefix(l, "lacks "); ok {
					d.Directives = append(d.Directives, "rendered, not on disk: "+rest)
				}
			}
		}
	case secret:
		fingerprints()
		d.Kind = KindSecret
		if fields, ok := kubeconfigFields(cur.Data); ok && kubeconfigPath(display) {
			d.Kind = KindKubeconfig
			d.Summary = "kubeconfig"
			if !removedOnly {
				var of []Field
				if o != nil {
					of, _ = kubeconfigFields(o.Data)
				}
				var nf []Field
				if n != nil {
					nf = fields
				}
				d.Fields = diffFields(of, nf)
			}
		}
	case isBinary(cur.Data):
		d.Kind = KindBinary
		fingerprints()
		d.Summary = sizes(o, n)
	default:
		if _, summary, ok := certFields(cur.Data); ok {
			d.Kind, d.Summary = KindCertificate, summary
			if !removedOnly {
				list := certFieldList
				if certCount(o) > 1 || certCount(n) > 1 {
					// A CA file during a rotation: match certificates by serial, so
					// that the one added or dropped shows as such.
					list = certFieldListBySerial
				}
				d.Fields = diffFields(decodeOr(o, list), decodeOr(n, list))
				if len(d.Fields) == 0 && d.Change == Changed {
					d.Note = "same certificate, different encoding"
				}
			}
			break
		}
		if _, ok := publicKeyFields(cur.Data); ok {
			d.Kind = KindPublicKey
			if !removedOnly {
				d.Fields = diffFields(decodeOr(o, publicKeyFields), decodeOr(n, publicKeyFields))
			}
			break
		}
		d.Kind = KindText
		switch {
		case removedOnly:
		case status == Added:
			lines, _ := splitLines(string(n.Data))
			d.Summary = fmt.Sprintf("%d lines", len(lines))
		default:
			d.Diff = UnifiedDiff(string(data(o)), string(data(n)))
		}
	}
	if status == Added && d.Kind == KindText {
		d.Diff = ""
	}
	return d
}

// certFieldList is certFields without the summary.
func certFieldList(data []byte) ([]Field, bool) {
	f, _, ok := certFields(data)
	return f, ok
}

// certFieldListBySerial decodes a PEM bundle of certificates into fields named after
// each certificate's serial ("certificate 54576ae9…: notAfter").
func certFieldListBySerial(data []byte) ([]Field, bool) {
	certs, ok := parseCerts(data)
	if !ok {
		return nil, false
	}
	var fields []Field
	for _, c := range certs {
		fields = append(fields, describeCert(fmt.Sprintf("certificate %x: ", c.SerialNumber), c)...)
	}
	return fields, true
}

// certCount is how many certificates a file holds (0 if it is not a certificate file).
func certCount(f *bundle.File) int {
	if f == nil {
		return 0
	}
	certs, _ := parseCerts(f.Data)
	return len(certs)
}

// decodeOr decodes f with dec, or returns nil for a missing or undecodable file.
func decodeOr(f *bundle.File, dec func([]byte) ([]Field, bool)) []Field {
	if f == nil {
		return nil
	}
	out, ok := dec(f.Data)
	if !ok {
		return []Field{{Name: "content", Value: Fingerprint(f.Data)}}
	}
	return out
}

// kubeconfigPath reports whether a path is one of scratchgen's kubeconfigs.
func kubeconfigPath(p string) bool {
	base := path.Base(p)
	return base == "kubeconfig" || strings.HasSuffix(base, ".kubeconfig") || strings.HasSuffix(base, ".conf")
}

func sizes(o, n *bundle.File) string {
	switch {
	case o == nil:
		return fmt.Sprintf("%d bytes", len(n.Data))
	case n == nil:
		return fmt.Sprintf("%d bytes", len(o.Data))
	}
	return fmt.Sprintf("%d → %d bytes", len(o.Data), len(n.Data))
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// diffFields compares two field lists by name: new order first, then fields only in old.
func diffFields(old, new []Field) []FieldDiff {
	oldBy := map[string]Field{}
	for _, f := range old {
		oldBy[f.Name] = f
	}
	newBy := map[string]bool{}
	var out []FieldDiff
	for _, f := range new {
		newBy[f.Name] = true
		o, ok := oldBy[f.Name]
		switch {
		case !ok && old == nil && f.Value == "":
			// An added file: its empty fields say nothing.
		case !ok:
			out = append(out, fieldDiff(f.Name, Added, "", f.Value, f.Secret))
		case o.Value != f.Value:
			out = append(out, fieldDiff(f.Name, Changed, o.Value, f.Value, f.Secret || o.Secret))
		}
	}
	for _, f := range old {
		if !newBy[f.Name] {
			out = append(out, fieldDiff(f.Name, Removed, f.Value, "", f.Secret))
		}
	}
	return out
}

func fieldDiff(name string, c Change, old, new string, secret bool) FieldDiff {
	if secret {
		return FieldDiff{Name: name, Change: c, Secret: true}
	}
	return FieldDiff{Name: name, Change: c, Old: old, New: new}
}
