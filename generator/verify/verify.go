// Package verify checks a rendered bundle on disk without the spec or the root secret:
// that its files are the ones SHA256SUMS lists, with the right modes; that every
// certificate chains to the right CA, matches its key, has the usages of its role, is
// valid and covers the addresses the manifests and kubeconfigs use; that kubeconfigs
// name the cluster CA and one API endpoint, and kubelets their own node; that tokens
// exist in known_tokens.csv; that every file a manifest, unit or config refers to is in
// the node's rootfs; that images are pinned; that pinned node binaries are carried or
// fetched as bundle.json records; and that Ignition and cloud-init carry exactly the
// node's rootfs.
//
// SHA256SUMS is one check among many: a bundle whose sums were recomputed after it was
// tampered with still fails the deep checks. Verification reads the bundle only; it
// never writes, never talks to the network and never needs a secret.
package verify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/provision"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// Options tune a verification.
type Options struct {
	// At is the time certificates must be valid at; the zero value means time.Now().
	At time.Time
	// RequirePinned turns unpinned images from warnings into problems, and requires every
	// node's bundle.json record to list its pinned binaries (kubelet, kube-proxy).
	RequirePinned bool
	// Components is the component table manifests are checked against (nil: the
	// built-in one).
	Components component.Table
	// NoPosture skips the security posture rules (Rules), all but binaries-pinned: a
	// carried binary or install script that is not the pinned one is always reported.
	NoPosture bool
}

// Problem is one thing wrong with a bundle.
type Problem struct {
	// Node is the node the problem belongs to ("" for the bundle root and admin/).
	Node string
	// Path is the file the problem is about, relative to the bundle root
	// ("nodes/cp-1/rootfs/etc/kubernetes/pki/apiserver.crt"), or "." for the bundle.
	Path string
	// Msg says what is wrong, and with what.
	Msg string
	// Warning marks a problem that does not fail verification (an unpinned image).
	Warning bool
	// Rule is the posture rule the problem breaks ("" for consistency problems).
	Rule string
}

// String formats the problem as one line: "<path>: <msg>", with "warning: " before the
// message of a warning.
func (p Problem) String() string {
	if p.Warning {
		return p.Path + ": warning: " + p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Errors returns the problems that are not warnings.
func Errors(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Bundle verifies the bundle in dir (e.g. bundles/demo) and returns every problem found,
// sorted by path and message. The error is for a directory that cannot be read or is
// not a bundle at all; everything wrong inside a bundle is a Problem.
func Bundle(dir string, opts Options) ([]Problem, error) {
	if opts.At.IsZero() {
		opts.At = time.Now()
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("verifying bundle %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("verifying bundle %s: not a directory", dir)
	}
	_, errSums := os.Lstat(filepath.Join(dir, writer.SumsName))
	_, errNodes := os.Lstat(filepath.Join(dir, "nodes"))
	if errors.Is(errSums, fs.ErrNotExist) && errors.Is(errNodes, fs.ErrNotExist) {
		return nil, fmt.Errorf("verifying bundle %s: not a scratchgen bundle (no %s and no nodes/); pass a bundle directory such as bundles/<cluster>", dir, writer.SumsName)
	}
	if opts.Components == nil {
		opts.Components = component.Default()
	}
	b := &checker{opts: opts, files: map[string]*file{}, dirs: map[string]fs.FileMode{}}
	if err := b.load(dir); err != nil {
		return nil, fmt.Errorf("verifying bundle %s: %w", dir, err)
	}
	b.run()
	if p := writer.Leftover(dir); p != "" {
		b.add(Problem{Path: ".", Warning: true, Msg: fmt.Sprintf("an interrupted render left %s beside the bundle (a half-written bundle, keys included); the next render removes it", p)})
	}
	sortProblems(b.problems)
	return dedupProblems(b.problems), nil
}

// file is one regular file of the bundle.
type file struct {
	rel  string // path relative to the bundle root
	data []byte
	mode fs.FileMode // permission bits
}

// checker holds a loaded bundle and the problems found so far.
type checker struct {
	opts     Options
	files    map[string]*file       // by path relative to the bundle root
	dirs     map[string]fs.FileMode // directories (relative), with their permission bits
	nodes    []*node                // sorted by name
	problems []Problem
	// cas are the cluster's CA certificates by CA name, as most nodes carry them.
	cas map[string]*caCert
	// tokens is the reference known_tokens.csv (nil when the bundle has none).
	tokens map[string]tokenLine
	// endpoint is the API server URL most kubeconfigs use (kubelet, kube-proxy, admin):
	// every API server's serving certificate must cover its host.
	endpoint string
	// secrets are the bundle-relative files that hold keys or tokens (.gitignore must list them).
	secrets map[string]bool
	// adminKubeconfig is admin/admin.kubeconfig, parsed (nil when missing or broken).
	adminKubeconfig *kubeconfig
	// meta is bundle.json (nil when missing or unreadable).
	meta *bundle.Metadata
	// certCache holds every certificate file parsed so far, by bundle-relative path
	// (nil for a file that is not a certificate).
	certCache map[string]*x509.Certificate
	// views decodes the nodes' views, each distinct carried content once.
	views provision.Decoder
}

// load reads every file and directory of the bundle into memory.
func (b *checker) load(dir string) error {
	l, err := writer.Load(dir)
	if err != nil {
		return err
	}
	for rel, f := range l.Files {
		b.files[rel] = &file{rel: rel, data: f.Data, mode: f.Mode}
	}
	b.dirs = l.Dirs
	for rel, typ := range l.Special {
		b.add(Problem{Path: rel, Msg: fmt.Sprintf("is a %s, not a regular file; scratchgen writes only files and directories", typeName(typ))})
	}
	return nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// run performs every check, in an order where later checks can use what earlier ones
// parsed.
func (b *checker) run() {
	b.checkSums()
	b.loadNodes()
	b.loadMetadata()
	b.parseNodes()
	b.checkModes()
	b.checkCAs()
	b.checkCertificates()
	b.checkCertList()
	b.checkKubeconfigs()
	b.checkTokens()
	b.checkSANs()
	b.checkReferences()
	b.checkImages()
	b.checkBinaries()
	b.checkViews()
	b.checkViewBytes()
	if !b.opts.NoPosture {
		b.checkPosture()
	} else {
		// A binary that is not the pinned one is never a posture choice: its rule runs
		// whatever the options.
		for _, r := range rules {
			if r.ID == binariesRule {
				r.run(b, r)
			}
		}
	}
	b.checkGitignore()
}

func (b *checker) add(p Problem) { b.problems = append(b.problems, p) }

// problemf reports a problem with a bundle-relative file.
func (b *checker) problemf(rel, format string, args ...any) {
	b.add(Problem{Node: nodeOf(rel), Path: rel, Msg: fmt.Sprintf(format, args...)})
}

// warnf reports a warning with a bundle-relative file.
func (b *checker) warnf(rel, format string, args ...any) {
	b.add(Problem{Node: nodeOf(rel), Path: rel, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// nodeOf returns the node a bundle-relative path belongs to.
func nodeOf(rel string) string {
	if rest, ok := strings.CutPrefix(rel, "nodes/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return ""
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Path != ps[j].Path {
			return ps[i].Path < ps[j].Path
		}
		if ps[i].Warning != ps[j].Warning {
			return !ps[i].Warning
		}
		return ps[i].Msg < ps[j].Msg
	})
}

func dedupProblems(ps []Problem) []Problem {
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// node is one nodes/<name> directory.
type node struct {
	name string
	base string // "nodes/<name>"
	// rootfs maps an absolute node path to its file.
	rootfs map[string]*file
	// rootDirs holds the absolute node paths of rootfs directories.
	rootDirs map[string]bool
	// parsed is what parseNodes read from the rootfs.
	*parsed
}

// rel returns the bundle-relative path of an absolute node path.
func (n *node) rel(p string) string { return n.base + "/rootfs" + p }

// file returns the rootfs file at an absolute node path, or nil.
func (n *node) file(p string) *file { return n.rootfs[p] }

// has reports whether the rootfs holds a file or a directory at p.
func (n *node) has(p string) bool { return n.rootfs[p] != nil || n.rootDirs[p] }

// loadNodes groups the files of nodes/<name>/rootfs by node.
func (b *checker) loadNodes() {
	byName := map[string]*node{}
	get := func(name string) *node {
		n := byName[name]
		if n == nil {
			n = &node{name: name, base: "nodes/" + name, rootfs: map[string]*file{}, rootDirs: map[string]bool{}}
			byName[name] = n
		}
		return n
	}
	for rel := range b.dirs {
		rest, ok := strings.CutPrefix(rel, "nodes/")
		if !ok {
			continue
		}
		name, sub, _ := strings.Cut(rest, "/")
		n := get(name)
		if p, ok := strings.CutPrefix(sub, "rootfs/"); ok {
			n.rootDirs["/"+p] = true
		}
	}
	for rel, f := range b.files {
		rest, ok := strings.CutPrefix(rel, "nodes/")
		if !ok {
			continue
		}
		name, sub, found := strings.Cut(rest, "/")
		if !found {
			b.problemf(rel, "is a file where a node directory belongs")
			continue
		}
		n := get(name)
		if p, ok := strings.CutPrefix(sub, "rootfs/"); ok {
			n.rootfs["/"+p] = f
		} else if !isView(sub) {
			b.problemf(rel, "is not a file scratchgen writes beside rootfs/ (only %s)", strings.Join(viewNames, ", "))
		}
	}
	for _, n := range byName {
		b.nodes = append(b.nodes, n)
	}
	sort.Slice(b.nodes, func(i, j int) bool { return b.nodes[i].name < b.nodes[j].name })
	if len(b.nodes) == 0 {
		b.problemf(".", "has no nodes/<node> directories")
	}
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0) && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
