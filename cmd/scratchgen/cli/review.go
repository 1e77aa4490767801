package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	f := r.addSpecFlags(true)
	r.flags.Lookup("secret").Usage = "the root secret (default: <spec stem>.secret beside the spec)"
	out := r.flags.StringP("bundles", "o", "bundles", "output directory of render; the bundle is <bundles>/<cluster>")
	format := r.flags.String("output", "text", "text, or json for tools")
	newPKI := r.flags.Bool("new-pki", false, "show what render --new-pki would change: a new PKI issued from the given secret")
	withImages := r.flags.Bool("with-images", false, "compare with a render --with-images (images read from the image cache)")
	imageCache := r.flags.String("image-cache", "", cacheHelp)
	summary := r.flags.Bool("summary", false, "text output: only the impact, what needs the secret and the counts")
	maxLines := r.flags.Int("max-lines", 0, "text output: stop after this many lines, saying how many were left out (0: no limit; e.g. for a pull-request comment)")
	if done, err := r.parse("diff", args); done || err != nil {
		return err
	}
	if err := r.noArgs("diff"); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("diff: --output %q is not text or json (the bundle directory is -o/--bundles)", *format)}
	}
	f.defaults()
	rv, err := r.reviewPlan(f, *out, renderOpts{withImages: *withImages, imageCache: *imageCache, newPKI: *newPKI})
	if err != nil {
		return err
	}
	res, dir := rv.res, rv.dir
	newFiles := writer.WithSums(res.Plan.Files(), dir)
	oldFiles, dirs, err := writer.ReadBundle(dir, newFiles)
	if err != nil {
		return err
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
	switch {
	case *format == "json":
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

// runCerts dispatches `certs status` and `certs renew`.
func runCerts(r *runner, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if done, err := r.parse("certs", args); done || err != nil {
			return err
		}
		return &ExitError{Code: 1, Msg: "certs needs a subcommand: status or renew; run `scratchgen certs --help`"}
	}
	switch args[0] {
	case "status":
		return runCertsStatus(r, args[1:])
	case "renew":
		return runCertsRenew(r, args[1:])
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("certs: unknown subcommand %q (want status or renew); run `scratchgen certs --help`", args[0])}
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
	all := r.flags.Bool("all", false, "renew every certificate (the service-account key pair \"sa\" only when named)")
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
	valid := map[string]bool{string(credentials.SA): true}
	var validNames []string
	for _, row := range rows {
		valid[row.Name] = true
		validNames = append(validNames, row.Name)
	}
	validNames = append(validNames, string(credentials.SA))
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
		if len(unknown) > 0 {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("certs renew: unknown certificate(s) %s; valid names: %s", strings.Join(unknown, ", "), strings.Join(validNames, ", "))}
		}
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
		fmt.Fprintf(r.io.Out, "  %s: generation %d → %d, notBefore %s\n", d.ID, d.Old.Generation, d.New.Generation, d.New.NotBefore.Format(time.RFC3339))
	}
	for _, d := range done {
		if credentials.IsCA(d.ID) {
			fmt.Fprintf(r.io.Out, "note: %s is renewed: it gets a new key, so every certificate it signs is re-signed (same keys and serials, new signature and authority key id) and every kubeconfig embedding them changes\n", d.ID)
		}
	}
	fmt.Fprintf(r.io.Out, "review with `scratchgen diff -f %s`, then `scratchgen render -f %s` re-issues them\n", f.spec, f.spec)
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
