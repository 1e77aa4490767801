package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/scratchgen/scratchgen/generator/rootsecret"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// The render cache lets a render whose inputs did not change since the last render of
// the same bundle, into a bundle nobody touched since, stop before planning: re-planning
// 1,000 nodes to write nothing took seconds.
//
// Its entry for a bundle directory (one small JSON file per directory, named by the
// SHA-256 of its absolute path) records:
//
//   - inputs: a digest of everything a render reads: the scratchgen executable itself
//     (its stat data, so a rebuilt scratchgen never trusts an older one's work), the spec's
//     bytes, the lock's bytes as the render left them, the root secret (its verifier),
//     and the flags that change the output. The clock is not an input once the lock
//     records every certificate, and a render that issues anything writes a new lock;
//   - state: writer.State of the bundle right after that render (paths, modes, sizes,
//     inodes, times; see writer.State).
//
// A render that finds both equal (the lock file byte for byte, so a lock a person
// reformatted is rewritten) would write exactly what is there, so it does not plan. Any
// doubt is a miss: no entry, an unreadable one, another input, any change on disk. The
// cache is only ever a shortcut to "nothing to write"; it is never read for content.
// Every command but render (diff, render --check, verify, plan) ignores it.
type renderCache struct {
	dir string // the cache directory ("" = no cache)
	// ahead is the bundle's State being read ahead (readAhead), or nil.
	ahead *stateAhead
}

// stateAhead is a bundle's State read in the background while the render resolves.
type stateAhead struct {
	bundle string
	cancel context.CancelFunc
	done   chan struct{}
	state  string
	files  int
	err    error
}

// readAhead starts reading bundle's State, which fresh needs, beside the work that
// comes before it (parsing and checking spec, lock and secret). stop ends it.
func (c *renderCache) readAhead(bundle string) {
	if c.dir == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &stateAhead{bundle: bundle, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.state, a.files, a.err = writer.StateContext(ctx, bundle)
	}()
	c.ahead = a
}

// stop ends a read ahead that is no longer needed and waits for it.
func (c *renderCache) stop() {
	if c.ahead != nil {
		c.ahead.cancel()
		<-c.ahead.done
	}
}

// stateTick is more than the kernel's timestamp granularity (a jiffy: 1–10 ms).
const stateTick = 20 * time.Millisecond

// renderCacheEntry is one bundle directory's entry.
type renderCacheEntry struct {
	Bundle string `json:"bundle"`
	Inputs string `json:"inputs"`
	State  string `json:"state"`
}

// renderInputs are what a render's output depends on besides the bundle on disk.
type renderInputs struct {
	spec, lock []byte
	secret     []byte
	cluster    string
	flags      []string
}

// executableDigest identifies the running scratchgen: its version and the stat data of
// its executable (path, size, inode, modification and change time), which change with
// every rebuild or replacement, as the bundle's do (see writer.State); hashing its 70 MB
// would cost more than the rest of a cached render.
var executableDigest = sync.OnceValues(func() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("%s: no stat data", p)
	}
	return fmt.Sprintf("%s\x00%s\x00%d %d %d %d.%d %d.%d", Version, p, st.Dev, st.Ino, fi.Size(), st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec), nil
})

// digest is the inputs' digest ("" when they cannot be known).
func (in renderInputs) digest() string {
	exe, err := executableDigest()
	if err != nil || in.spec == nil || in.lock == nil || in.secret == nil {
		return ""
	}
	h := sha256.New()
	field := func(b []byte) { fmt.Fprintf(h, "%d:", len(b)); h.Write(b) }
	field([]byte("scratchgen/v1 render inputs"))
	field([]byte(exe))
	field(in.spec)
	field(in.lock)
	field([]byte(rootsecret.Verifier(in.secret, in.cluster)))
	for _, f := range in.flags {
		field([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c renderCache) entryPath(bundle string) (string, string, bool) {
	if c.dir == "" {
		return "", "", false
	}
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(c.dir, "render", hex.EncodeToString(sum[:])+".json"), abs, true
}

// fresh reports whether bundle is exactly what a render of inputs would write, and its
// file count.
func (c renderCache) fresh(bundle string, in renderInputs) (bool, int) {
	p, abs, ok := c.entryPath(bundle)
	if !ok {
		return false, 0
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return false, 0
	}
	var e renderCacheEntry
	if json.Unmarshal(data, &e) != nil || e.Bundle != abs || e.Inputs == "" || e.State == "" {
		return false, 0
	}
	d := in.digest()
	if d == "" || d != e.Inputs {
		return false, 0
	}
	var state string
	var files int
	if a := c.ahead; a != nil && a.bundle == bundle {
		<-a.done
		state, files, err = a.state, a.files, a.err
	} else {
		state, files, err = writer.State(bundle)
	}
	if err != nil || state != e.State {
		return false, 0
	}
	return true, files
}

// store records that bundle is what a render of inputs wrote. Failing to record is only
// a lost shortcut: the error is returned for a warning.
func (c renderCache) store(bundle string, in renderInputs) error {
	p, abs, ok := c.entryPath(bundle)
	if !ok {
		return nil
	}
	d := in.digest()
	if d == "" {
		return nil
	}
	// Wait until the kernel's clock has ticked past the newest change in the bundle, so
	// that any later change moves some change time (see writer.StateAt).
	state, _, newest, err := writer.StateAt(bundle)
	if err != nil {
		return err
	}
	if wait := time.Until(newest.Add(stateTick)); wait > 0 {
		time.Sleep(min(wait, stateTick))
		if state, _, err = writer.State(bundle); err != nil {
			return err
		}
	}
	data, err := json.Marshal(renderCacheEntry{Bundle: abs, Inputs: d, State: state})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(p, append(data, '\n'), 0o600)
}
