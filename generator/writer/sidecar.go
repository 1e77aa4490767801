package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// Sidecar is a file outside the bundle that must change together with it: the lock, a
// new root secret. Write commits the bundle and its sidecars as one transaction: after
// a crash or an error at any point, the bundle and every sidecar are all the previous
// version or all the new one (the next Write or Recover finishes or undoes an
// interrupted one).
type Sidecar struct {
	// Path is the sidecar's OS path.
	Path string
	Data []byte
	// Mode is its exact permission bits (0600 for a secret).
	Mode fs.FileMode
}

// WithSidecars commits files outside the bundle together with it (see Sidecar).
func WithSidecars(s ...Sidecar) Option {
	return func(c *config) { c.sidecars = append(c.sidecars, s...) }
}

const (
	// PendingSuffix names a sidecar's new content before the commit.
	PendingSuffix = ".scratchgen-pending"
	// CommitName is the commit record in the live bundle: it lists the sidecars (absolute
	// path and SHA-256 of the committed content) whose pending copies must be moved into
	// place. It exists only between a swap and the end of that Write, or after a crash in
	// that window; it is never listed in SHA256SUMS.
	CommitName = ".scratchgen-commit"
)

// How a transaction runs:
//
//  1. every changed sidecar is written to <path>.scratchgen-pending;
//  2. the staged bundle gets a commit record listing those sidecars and their SHA-256;
//  3. the swap makes the new bundle, record included, live: the commit point;
//  4. each pending file is renamed over its sidecar;
//  5. the record is removed.
//
// Recovery: a live record means the commit happened, so pending copies whose hash it
// lists are moved into place, then the record goes; without a record, pending copies
// were never committed and are removed.

// commitLine is one entry of the commit record.
type commitLine struct {
	sum  string
	path string
}

func formatCommit(lines []commitLine) []byte {
	var b strings.Builder
	b.WriteString("# scratchgen: a write of this bundle was interrupted after its commit; the next scratchgen render finishes it.\n")
	for _, l := range lines {
		b.WriteString(l.sum + "  " + l.path + "\n")
	}
	return []byte(b.String())
}

func parseCommit(data []byte) ([]commitLine, error) {
	var out []commitLine
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, p, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || !filepath.IsAbs(p) {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		out = append(out, commitLine{sum: sum, path: p})
	}
	return out, nil
}

func hexSum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// changedSidecars returns the sidecars whose content or mode differs on disk, with
// absolute paths.
func (c *config) changedSidecars() ([]Sidecar, error) {
	var out []Sidecar
	seen := map[string]bool{}
	for _, s := range c.sidecars {
		abs, err := filepath.Abs(s.Path)
		if err != nil {
			return nil, err
		}
		if seen[abs] {
			return nil, fmt.Errorf("sidecar %s given twice", abs)
		}
		seen[abs] = true
		if s.Mode&^fs.ModePerm != 0 {
			return nil, fmt.Errorf("sidecar %s: mode %v has bits other than permissions", abs, s.Mode)
		}
		same, err := c.fs.Same(abs, s.Data, s.Mode)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", abs, err)
		}
		if !same {
			s.Path = abs
			out = append(out, s)
		}
	}
	return out, nil
}

// writePending writes s's new content beside it, replacing an older pending copy.
func (c *config) writePending(s Sidecar) error {
	p := s.Path + PendingSuffix
	if err := c.fs.RemoveAll(p); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	if err := c.fs.WriteFile(p, s.Data, s.Mode); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// abortSidecars removes the pending copies of sidecars (never committed).
func (c *config) abortSidecars(sidecars []Sidecar) error {
	var errs []error
	for _, s := range sidecars {
		abs, err := filepath.Abs(s.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.fs.RemoveAll(abs + PendingSuffix); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", abs+PendingSuffix, err))
		}
	}
	return errors.Join(errs...)
}

// finishCommit moves the pending copies listed in dir's commit record into place and
// removes the record. Without a record it removes the pending copies of the sidecars
// this write was given (they were never committed).
func (c *config) finishCommit(dir string) error {
	record := filepath.Join(dir, CommitName)
	data, err := c.fs.ReadFile(record)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return c.abortSidecars(c.sidecars) // (a dir that is not a directory is refused later)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", record, err)
	}
	lines, err := parseCommit(data)
	if err != nil {
		return fmt.Errorf("%s: %w; restore the files it names from version control, then remove it", record, err)
	}
	for _, l := range lines {
		pending := l.path + PendingSuffix
		pdata, err := c.fs.ReadFile(pending)
		switch {
		case err == nil && hexSum(pdata) == l.sum:
			if err := c.fs.Rename(pending, l.path); err != nil {
				return fmt.Errorf("committing %s: %w", l.path, err)
			}
		case err == nil || errors.Is(err, fs.ErrNotExist):
			// Already moved into place (the crash came after the rename), or a pending
			// copy of a later, uncommitted write.
			cur, cerr := c.fs.ReadFile(l.path)
			if cerr != nil || hexSum(cur) != l.sum {
				return fmt.Errorf("the bundle %s was committed with a new %s, but neither it nor %s holds that content; restore it from your backup", dir, l.path, pending)
			}
		default:
			return fmt.Errorf("reading %s: %w", pending, err)
		}
	}
	if c.sync && len(lines) > 0 {
		if err := c.fs.Sync(filepath.Dir(lines[0].path)); err != nil {
			return fmt.Errorf("syncing %s: %w", lines[0].path, err)
		}
	}
	if err := c.fs.RemoveAll(record); err != nil {
		return fmt.Errorf("removing %s: %w", record, err)
	}
	// Pending copies not in the record were never committed.
	return c.abortSidecars(slices.DeleteFunc(slices.Clone(c.sidecars), func(s Sidecar) bool {
		abs, _ := filepath.Abs(s.Path)
		return slices.ContainsFunc(lines, func(l commitLine) bool { return l.path == abs })
	}))
}

// writeSidecarsAlone replaces changed sidecars when the bundle itself does not change:
// each is written pending and renamed over the old one, so each is atomic on its own.
func (c *config) writeSidecarsAlone(sidecars []Sidecar) error {
	for _, s := range sidecars {
		if err := c.writePending(s); err != nil {
			return err
		}
		if err := c.fs.Rename(s.Path+PendingSuffix, s.Path); err != nil {
			return fmt.Errorf("replacing %s: %w", s.Path, err)
		}
	}
	return nil
}

// commitRecord is the record staged into the new bundle for sidecars.
func commitRecord(sidecars []Sidecar) bundle.File {
	lines := make([]commitLine, len(sidecars))
	for i, s := range sidecars {
		lines[i] = commitLine{sum: hexSum(s.Data), path: s.Path}
	}
	return bundle.File{Path: CommitName, Mode: bundle.ModePublic, Data: formatCommit(lines)}
}

// hasCommitRecord reports whether dir holds a commit record (an interrupted write).
func hasCommitRecord(fsys fileSystem, dir string) bool {
	_, err := fsys.Lstat(filepath.Join(dir, CommitName))
	return err == nil
}
