package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/review"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// runDiff compares what render would write with the bundle on disk (see package review).
func runDiff(r *runner, args []string) error {
	summary := r.flags.Bool("summary", false, "text output: only the impact, what needs the secret and the counts")
	maxLines := r.flags.Int("max-lines", 0, "text output: stop after this many lines, saying how many were left out (0: no limit; e.g. for a pull-request comment)")
	rep, format, err := r.compare("diff", args)
	if err != nil || rep == nil { // rep is nil after --help
		return err
	}
	switch {
	case format == "json":
		err = rep.WriteJSON(r.io.Out)
	case *summary:
		err = rep.WriteSummary(r.io.Out)
	default:
		err = rep.WriteText(&lineLimit{w: r.io.Out, max: *maxLines})
	}
	if err != nil {
		return err
	}
	if rep.Changed {
		return exitChanges
	}
	return nil
}

// runPlan prints the runbook of what render would change: the change of the cluster's
// shape (etcd members, versions) and the rollout, every command written out. It is diff's
// rollout (one source), without the files.
func runPlan(r *runner, args []string) error {
	rep, format, err := r.compare("plan", args)
	if err != nil || rep == nil {
		return err
	}
	if format == "json" {
		return writeJSON(r.io.Out, struct {
			Cluster  string               `json:"cluster"`
			Changed  bool                 `json:"changed"`
			Topology *review.Topology     `json:"topology,omitempty"`
			Runbook  []review.RolloutStep `json:"runbook"`
		}{rep.Cluster, rep.Changed, rep.Topology, rep.Rollout})
	}
	return rep.WritePlan(r.io.Out)
}

// compare is diff's and plan's common part: their flags, the render without writing,
// and the comparison with the bundle on disk.
func (r *runner) compare(cmd string, args []string) (*review.Report, string, error) {
	f := r.addSpecFlags(true)
	r.flags.Lookup("secret").Usage = "the root secret (default: <spec stem>.secret beside the spec)"
	out := r.flags.StringP("bundles", "o", "bundles", "output directory of render; the bundle is <bundles>/<cluster>")
	format := r.flags.String("output", "text", "text, or json for tools")
	newPKI := r.flags.Bool("new-pki", false, "show what render --new-pki would change: a new PKI issued from the given secret")
	withImages := r.flags.Bool("with-images", false, "compare with a render --with-images (images read from the image cache)")
	withBinaries := r.flags.Bool("with-binaries", false, "compare with a render --with-binaries (binaries read from the cache)")
	imageCache := r.flags.String("image-cache", "", cacheHelp)
	if done, err := r.parse(cmd, args); done || err != nil {
		return nil, "", err
	}
	if err := r.noArgs(cmd); err != nil {
		return nil, "", err
	}
	if err := checkOutput(*out); err != nil {
		return nil, "", err
	}
	if *format != "text" && *format != "json" {
		return nil, "", &ExitError{Code: 1, Msg: fmt.Sprintf("%s: --output %q is not text or json (the bundle directory is -o/--bundles)", cmd, *format)}
	}
	f.defaults()
	rv, err := r.reviewPlan(f, *out, renderOpts{withImages: *withImages, withBinaries: *withBinaries, imageCache: *imageCache, newPKI: *newPKI})
	if err != nil {
		return nil, "", err
	}
	res, dir := rv.res, rv.dir
	newFiles := writer.WithSums(res.Plan.Files(), dir)
	oldFiles, dirs, err := writer.ReadBundle(dir, newFiles)
	if err != nil {
		return nil, "", err
	}
	warnLeftover(r, dir)
	var nodes []string
	for _, n := range res.Plan.Nodes {
		nodes = append(nodes, n.Name)
	}
	var pending []review.PendingIdentity
	for _, p := range res.Pending {
		pending = append(pending, review.PendingIdentity{ID: string(p.ID), Reason: p.Reason, Nodes: p.Nodes, Admin: p.Admin})
	}
	rep := review.Compare(oldFiles, newFiles, review.Options{
		Cluster: res.Plan.Cluster, Nodes: nodes,
		OldLock: rv.lock, NewLock: res.Lock, LockChanged: rv.lockChanged,
		Pending: pending,
	})
	rep.Bundle, rep.Spec = dir, f.spec
	for _, d := range dirs {
		rep.Notes = append(rep.Notes, fmt.Sprintf("directory %s has the wrong mode; render resets it to 0755", d))
		rep.Changed = true
	}
	return rep, *format, nil
}

// runCerts dispatches `certs status` and `certs renew`.
func runCerts(r *runner, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if done, err := r.parse("certs", args); done || err != nil {
			return err
		}
		return &ExitError{Code: 1, Msg: "certs needs a subcommand: status, renew, rotate-ca or rotate-sa; run `scratchgen certs --help`"}
	}
	switch args[0] {
	case "status":
		return runCertsStatus(r, args[1:])
	case "renew":
		return runCertsRenew(r, args[1:])
	case "rotate-ca":
		return runCertsRotate(r, args[1:], false)
	case "rotate-sa":
		return runCertsRotate(r, args[1:], true)
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("certs: unknown subcommand %q (want status, renew, rotate-ca or rotate-sa); run `scratchgen certs --help`", args[0])}
}

// certTable is the certificate status of a cluster: its identities and their dates under
// the lock, listed without issuing anything (so without the root secret).
type certTable struct {
	lock  *lock.Lock
	nodes []string
	ids   []credentials.Identity
	rows  []review.CertStatus
	// note says where the dates come from when not from a bundle.
	note string
}

// certIdentities resolves the spec against the lock and lists the cluster's identities
// with their dates: as the bundle in out holds them when there is one, else as the lock
// records them.
func (r *runner) certIdentities(f *specFlags, out string) (*certTable, error) {
	res, lk, err := r.resolve(f, "", render.ResolveOptions{})
	if err != nil {
		return nil, err
	}
	c := res.Cluster
	t := &certTable{lock: lk, ids: credentials.Identities(c)}
	for _, n := range c.Nodes {
		t.nodes = append(t.nodes, n.Name)
	}
	var disk map[credentials.ID]credentials.OnDisk
	dir := filepath.Join(out, c.Name)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		disk = credentials.CertificatesOnDisk(c, lk, r.env.Now(), existingFiles(dir))
	} else {
		t.note = fmt.Sprintf("no bundle at %s: the dates are the lock's, as the next render would issue them", dir)
	}
	t.rows = review.Status(t.ids, credentials.Schedule(c, lk, r.env.Now()), disk)
	return t, nil
}

// runCertsStatus prints every certificate with its expiry.
func runCertsStatus(r *runner, args []string) error {
	f := r.addSpecFlags(true)
	r.flags.MarkHidden("secret") // accepted for old scripts; names and dates do not depend on it
	r.flags.MarkHidden("age-identity")
	out := r.flags.StringP("bundles", "o", "bundles", "where the rendered bundles are: the expiry shown is the certificates' on disk")
	warn := r.flags.String("warn-within", "", "exit 2 when a certificate expires within this window (e.g. 30d, 2w, 720h)")
	if done, err := r.parse("certs", args); done || err != nil {
		return err
	}
	if err := r.noArgs("certs status"); err != nil {
		return err
	}
	var within time.Duration
	if *warn != "" {
		d, err := model.ParseDuration(*warn)
		if err != nil {
			return &ExitError{Code: 1, Msg: "certs status: --warn-within " + err.Error()}
		}
		within = d
	}
	f.defaults()
	t, err := r.certIdentities(f, *out)
	if err != nil {
		return err
	}
	now := r.env.Now()
	rows := t.rows
	if err := review.WriteStatus(r.io.Out, rows, t.nodes, now); err != nil {
		return err
	}
	if t.note != "" {
		fmt.Fprintln(r.io.Out, t.note)
	}
	writeRotations(r.io.Out, t.lock)
	if *warn == "" {
		return nil
	}
	exp := review.Expiring(rows, now, within)
	if len(exp) == 0 {
		fmt.Fprintf(r.io.Out, "no certificate expires within %s\n", *warn)
		return nil
	}
	var names []string
	for _, e := range exp {
		names = append(names, e.Name)
	}
	fmt.Fprintf(r.io.Out, "%d certificate(s) expire within %s: %s\nrenew them with `scratchgen certs renew --expiring-within %s -f %s`, then render\n",
		len(exp), *warn, strings.Join(names, ", "), *warn, f.spec)
	return exitChanges
}

// runCertsRenew bumps certificate generations in the lock.
func runCertsRenew(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	out := r.flags.StringP("bundles", "o", "bundles", "where the rendered bundles are (--expiring-within reads their certificates)")
	all := r.flags.Bool("all", false, "renew every certificate (CAs keep their keys; the service-account key is rotated with `certs rotate-sa`, never renewed)")
	expiring := r.flags.String("expiring-within", "", "renew the certificates that expire within this window (e.g. 30d)")
	if done, err := r.parse("certs", args); done || err != nil {
		return err
	}
	names := r.flags.Args()
	modes := 0
	for _, set := range []bool{len(names) > 0, *all, *expiring != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return &ExitError{Code: 1, Msg: "certs renew: name the certificates, or pass --all or --expiring-within (exactly one); run `scratchgen certs status` for the names"}
	}
	f.defaults()
	if _, err := os.Stat(f.lock); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lock %s does not exist: nothing was issued yet, render first", f.lock)
	}
	t, err := r.certIdentities(f, *out)
	if err != nil {
		return err
	}
	lk, rows, now := t.lock, t.rows, r.env.Now()
	valid := map[string]bool{}
	var validNames []string
	for _, row := range rows {
		valid[row.Name] = true
		validNames = append(validNames, row.Name)
	}
	var pick []string
	switch {
	case *all:
		for _, row := range rows {
			pick = append(pick, row.Name)
		}
	case *expiring != "":
		d, err := model.ParseDuration(*expiring)
		if err != nil {
			return &ExitError{Code: 1, Msg: "certs renew: --expiring-within " + err.Error()}
		}
		for _, row := range review.Expiring(rows, now, d) {
			pick = append(pick, row.Name)
		}
		if len(pick) == 0 {
			fmt.Fprintf(r.io.Out, "no certificate expires within %s; the lock is unchanged\n", *expiring)
			return nil
		}
	default:
		var unknown []string
		for _, n := range names {
			if !valid[n] {
				unknown = append(unknown, n)
			}
			if !slices.Contains(pick, n) {
				pick = append(pick, n)
			}
		}
		if slices.Contains(names, string(credentials.SA)) {
			return &ExitError{Code: 1, Msg: "certs renew: the service-account key is not renewed but rotated, in stages, so that existing tokens keep working: run `scratchgen certs rotate-sa`"}
		}
		if len(unknown) > 0 {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("certs renew: unknown certificate(s) %s; valid names: %s", strings.Join(unknown, ", "), strings.Join(validNames, ", "))}
		}
	}
	if *all || *expiring != "" {
		// A CA rotating is not renewed; its rotation issues it anew.
		pick = slices.DeleteFunc(pick, func(n string) bool { _, rotating := lk.Rotations[n]; return rotating })
	}
	ids := make([]credentials.ID, len(pick))
	for i, p := range pick {
		ids[i] = credentials.ID(p)
	}
	newLock, done, err := credentials.Renew(lk, ids, now)
	if err != nil {
		return fmt.Errorf("certs renew: %w", err)
	}
	data, err := newLock.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.lock, data, 0o644); err != nil {
		return fmt.Errorf("writing lock: %w", err)
	}
	fmt.Fprintf(r.io.Out, "renewed %d certificate(s) in %s:\n", len(done), f.lock)
	for _, d := range done {
		if credentials.IsCA(d.ID) {
			fmt.Fprintf(r.io.Out, "  %s: renewal %d → %d with the same key, notBefore %s\n", d.ID, d.Old.Renewal, d.New.Renewal, d.New.NotBefore.Format(time.RFC3339))
			continue
		}
		fmt.Fprintf(r.io.Out, "  %s: generation %d → %d, notBefore %s\n", d.ID, d.Old.Generation, d.New.Generation, d.New.NotBefore.Format(time.RFC3339))
	}
	for _, d := range done {
		if credentials.IsCA(d.ID) {
			fmt.Fprintf(r.io.Out, "note: %s keeps its key and subject, so every certificate it signed stays valid under the old and the new certificate; deliver the new one everywhere before the old one expires (to replace the key, rotate it: `scratchgen certs rotate-ca %s`)\n", d.ID, credentials.RotationTarget(d.ID))
		}
	}
	fmt.Fprintf(r.io.Out, "review with `scratchgen diff -f %s`, then `scratchgen render -f %s` re-issues them\n", f.spec, f.spec)
	return nil
}

// writeRotations lists the rotations in progress the lock records.
func writeRotations(w io.Writer, lk *lock.Lock) {
	if lk == nil {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(lk.Rotations)) {
		rot := lk.Rotations[id]
		cmd := "certs rotate-sa"
		if id != string(credentials.SA) {
			cmd = "certs rotate-ca " + credentials.RotationTarget(credentials.ID(id))
		}
		next := fmt.Sprintf("render it, deliver it, then `scratchgen %s --next`", cmd)
		if rot.Rendered {
			next = fmt.Sprintf("rendered; once delivered to every node, `scratchgen %s --next`", cmd)
		}
		fmt.Fprintf(w, "rotation of %s: stage %d of 3 (%s), generation %d replacing %d; %s\n",
			id, rot.Stage, credentials.StageName(rot.Stage), lk.Certificates[id].Generation, rot.Previous.Generation, next)
	}
}

// runCertsRotate starts or advances the staged rotation of a CA (rotate-ca) or of the
// service-account key (rotate-sa) in the lock.
func runCertsRotate(r *runner, args []string, sa bool) error {
	cmd := "certs rotate-ca"
	if sa {
		cmd = "certs rotate-sa"
	}
	f := r.addSpecFlags(false)
	next := r.flags.Bool("next", false, "advance the rotation in progress to its next stage, once the current stage is rendered and delivered")
	if done, err := r.parse("certs", args); done || err != nil {
		return err
	}
	id := credentials.SA
	if sa {
		if err := r.noArgs(cmd); err != nil {
			return err
		}
	} else {
		names := r.flags.Args()
		var ok bool
		if len(names) == 1 {
			id, ok = credentials.RotationTargetID(names[0])
		}
		if !ok {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("%s takes one CA: cluster, etcd or front-proxy (got %q); run `scratchgen certs --help`", cmd, strings.Join(names, " "))}
		}
	}
	f.defaults()
	if _, err := os.Stat(f.lock); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lock %s does not exist: nothing was issued yet, render first", f.lock)
	}
	_, lk, err := r.resolve(f, "", render.ResolveOptions{})
	if err != nil {
		return err
	}
	var newLock *lock.Lock
	stage := credentials.StageTrustBoth
	if *next {
		newLock, stage, err = credentials.AdvanceRotation(lk, id)
	} else {
		newLock, err = credentials.StartRotation(lk, id, r.env.Now())
	}
	if err != nil {
		return &ExitError{Code: 1, Msg: cmd + ": " + err.Error()}
	}
	data, err := newLock.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.lock, data, 0o644); err != nil {
		return fmt.Errorf("writing lock: %w", err)
	}
	st := credentials.RotationStages(id)[stage-1]
	fmt.Fprintf(r.io.Out, "%s: stage %d of 3, %s, recorded in %s\n", id, stage, st.Name, f.lock)
	fmt.Fprintf(r.io.Out, "the render of this stage: %s\n", st.Renders)
	if st.Before != "" {
		fmt.Fprintf(r.io.Out, "before: %s\n", st.Before)
	}
	next2 := fmt.Sprintf("scratchgen %s --next", cmd)
	if !sa {
		next2 = fmt.Sprintf("scratchgen %s %s --next", cmd, credentials.RotationTarget(id))
	}
	fmt.Fprintf(r.io.Out, "next: review with `scratchgen diff -f %s`, render, deliver node by node in the rollout order diff shows", f.spec)
	if stage < credentials.StageRetire {
		fmt.Fprintf(r.io.Out, ", then `%s`\n", next2)
	} else {
		fmt.Fprintf(r.io.Out, "; that ends the rotation\n")
	}
	return nil
}

// lineLimit passes at most max lines (0: all) and then says how many it left out.
type lineLimit struct {
	w       io.Writer
	max     int
	written int
	dropped int
}

func (l *lineLimit) Write(p []byte) (int, error) {
	if l.max <= 0 {
		return l.w.Write(p)
	}
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if l.written >= l.max {
			if strings.HasSuffix(line, "\n") {
				l.dropped++
			}
			continue
		}
		if _, err := io.WriteString(l.w, line); err != nil {
			return 0, err
		}
		if strings.HasSuffix(line, "\n") {
			l.written++
		}
	}
	if l.dropped > 0 && l.written >= l.max {
		// Reported once, after the report (WriteText writes in one call).
		fmt.Fprintf(l.w, "… %d more line(s) left out (--max-lines %d); run diff --summary, or --output json for everything\n", l.dropped, l.max)
		l.dropped = 0
	}
	return len(p), nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
