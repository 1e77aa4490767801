package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/verify"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// runVerify checks a bundle on disk without the spec or the secret: one line per problem
// on stdout (warnings too), a summary on stderr, exit 1 on any problem.
func runVerify(r *runner, args []string) error {
	requirePinned := r.flags.Bool("require-pinned", false, "report images not pinned by digest as problems, not warnings")
	noPosture := r.flags.Bool("no-posture", false, "skip the security posture rules, all but binaries-pinned (see the README)")
	at := r.flags.String("at", "", "check certificate validity at this time: RFC 3339, YYYY-MM-DD, or +DURATION from now (+720h, +30d); default now")
	if done, err := r.parse("verify", args); done || err != nil {
		return err
	}
	if r.flags.NArg() > 1 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("verify takes one bundle directory, got %q; run `scratchgen verify --help`", strings.Join(r.flags.Args(), " "))}
	}
	now := r.env.Now()
	when, err := parseAt(*at, now)
	if err != nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("verify: --at %q: %v", *at, err)}
	}
	dir := "bundles"
	explicit := r.flags.NArg() == 1
	if explicit {
		dir = r.flags.Arg(0)
	}
	if dir, err = bundleDir(dir, explicit); err != nil {
		return err
	}
	problems, err := verify.Bundle(dir, verify.Options{At: when, RequirePinned: *requirePinned, NoPosture: *noPosture})
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(r.io.Out, p)
	}
	errs := len(verify.Errors(problems))
	warns := len(problems) - errs
	if errs > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: %d problem(s), %d warning(s)", dir, errs, warns)}
	}
	fmt.Fprintf(r.io.Err, "%s: verified, no problems (%d warning(s))\n", dir, warns)
	return nil
}

// bundleDir resolves the directory to verify: dir itself when it is a bundle, else the
// single bundle inside it (the default ./bundles holds one per cluster).
func bundleDir(dir string, explicit bool) (string, error) {
	if isBundle(dir) {
		return dir, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !explicit && os.IsNotExist(err) {
			return "", &ExitError{Code: 1, Msg: "no bundle directory given and ./bundles does not exist; pass one: scratchgen verify bundles/<cluster>"}
		}
		return "", fmt.Errorf("verify: %w", err)
	}
	var found []string
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); e.IsDir() && isBundle(p) {
			found = append(found, p)
		}
	}
	sort.Strings(found)
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return "", &ExitError{Code: 1, Msg: fmt.Sprintf("%s holds %d bundles (%s); pass one: scratchgen verify %s", dir, len(found), strings.Join(found, ", "), found[0])}
	case explicit:
		return dir, nil // verify.Bundle says what is wrong with it
	}
	return "", &ExitError{Code: 1, Msg: fmt.Sprintf("no bundle directory given and %s holds no bundle; pass one: scratchgen verify bundles/<cluster>", dir)}
}

// isBundle reports whether dir looks like a rendered bundle.
func isBundle(dir string) bool {
	for _, name := range []string{writer.SumsName, "nodes"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// parseAt parses --at: RFC 3339, a date (midnight UTC), or +DURATION from now where the
// duration may also be in days (+30d).
func parseAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		if days, ok := strings.CutSuffix(rest, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n < 0 {
				return time.Time{}, fmt.Errorf("want +<days>d, e.g. +30d")
			}
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("want +<duration>, e.g. +720h or +30d")
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2027-01-02T15:04:05Z), a date (2027-01-02) or +DURATION")
}
