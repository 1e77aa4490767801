package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// nodeMeta returns bundle.json's record of node n (nil when there is none).
func (b *checker) nodeMeta(n *node) *bundle.NodeMetadata {
	if b.meta == nil {
		return nil
	}
	return b.meta.Node(n.name)
}

// carriedBinary is one file of a pinned download that rootfs/ carries.
type carriedBinary struct {
	download bundle.BinaryMetadata
	file     bundle.BinaryFile
}

// carriedBinaries maps the node paths of the binaries bundle.json says rootfs/ carries
// (none unless the node's BinariesCarried) to their records.
func (b *checker) carriedBinaries(n *node) map[string]*carriedBinary {
	out := map[string]*carriedBinary{}
	nm := b.nodeMeta(n)
	if nm == nil || !nm.BinariesCarried {
		return out
	}
	for _, m := range nm.Binaries {
		for _, f := range m.Files {
			out[f.Path] = &carriedBinary{download: m, file: f}
		}
	}
	return out
}

// pinnedExecutables are the rootfs paths of node n that pinned binaries make 0755: the
// carried binaries, and install-binaries.sh where the node fetches them.
func (b *checker) pinnedExecutables(n *node) map[string]string {
	out := map[string]string{}
	for p := range b.carriedBinaries(n) {
		out[p] = "a carried binary"
	}
	if nm := b.nodeMeta(n); nm != nil && !nm.BinariesCarried && len(nm.Binaries) > 0 {
		out[paths.BinariesScript] = "the script that installs the node's binaries"
	}
	return out
}

var (
	hex64RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex128RE = regexp.MustCompile(`^[0-9a-f]{128}$`)
)

// checkBinaries checks what bundle.json records about each node's pinned binaries, and
// that rootfs/ matches how they reach the node: carried (every file there, no install
// script), fetched (install-binaries.sh and its unit, enabled), or neither (the operator
// installs them: no script, no unit). Whether the files and the script hold what the pins
// say is the binaries-pinned posture rule's.
func (b *checker) checkBinaries() {
	if b.meta == nil {
		return
	}
	for _, n := range b.nodes {
		nm := b.nodeMeta(n)
		if nm == nil {
			continue
		}
		b.checkBinaryMetadata(n, nm)
		fetched := !nm.BinariesCarried && len(nm.Binaries) > 0
		for _, p := range []string{paths.BinariesScript, paths.BinariesUnit} {
			if fetched {
				if n.file(p) == nil {
					b.problemf(n.rel(p), "is missing: bundle.json says node %s fetches its pinned binaries, which %s installs", n.name, paths.BinariesService)
				}
				continue
			}
			if n.file(p) != nil {
				why := "bundle.json records no pinned binaries for the node"
				if nm.BinariesCarried {
					why = "bundle.json says rootfs/ carries the node's binaries"
				}
				b.problemf(n.rel(p), "is in rootfs, but %s: nothing is to be downloaded", why)
			}
		}
		switch listed := slices.Contains(nm.Units, paths.BinariesService); {
		case fetched && !listed:
			b.metaProblemf(n, "does not enable %s, which installs the binaries the node fetches", paths.BinariesService)
		case !fetched && listed:
			b.metaProblemf(n, "enables %s, but the node fetches no binaries", paths.BinariesService)
		}
		for p, c := range b.carriedBinaries(n) {
			if n.file(p) == nil {
				b.problemf(n.rel(p), "is missing: bundle.json says rootfs/ carries it (%s from %s)", c.download.Name, c.download.URL)
			}
		}
	}
	if b.opts.RequirePinned {
		for _, n := range b.nodes {
			nm := b.nodeMeta(n)
			if nm == nil {
				continue
			}
			var missing []string
			for _, name := range model.NodeBinaryNames {
				if !slices.ContainsFunc(nm.Binaries, func(m bundle.BinaryMetadata) bool { return m.Name == name }) {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				b.metaProblemf(n, "lists no pinned %s: the node runs whatever binaries the machine has; run `scratchgen binaries pin` and re-render", strings.Join(missing, " or "))
			}
		}
	}
}

// metaProblemf reports a problem with bundle.json's record of node n.
func (b *checker) metaProblemf(n *node, format string, args ...any) {
	b.add(Problem{Node: n.name, Path: bundle.MetadataName, Msg: "node " + n.name + " " + fmt.Sprintf(format, args...)})
}

// checkBinaryMetadata checks bundle.json's record of a node's downloads on its own: hex
// hashes, sizes, http(s) URLs, clean paths, each path once.
func (b *checker) checkBinaryMetadata(n *node, nm *bundle.NodeMetadata) {
	if nm.BinariesCarried && len(nm.Binaries) == 0 {
		b.metaProblemf(n, "says rootfs/ carries its binaries, but lists none")
	}
	seen := map[string]string{}
	names := map[string]bool{}
	for i, m := range nm.Binaries {
		what := fmt.Sprintf("binary %d (%s)", i, m.Name)
		if m.Name == "" {
			b.metaProblemf(n, "%s has no name", what)
		} else if names[m.Name] {
			b.metaProblemf(n, "lists binary %s twice", m.Name)
		}
		names[m.Name] = true
		if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			b.metaProblemf(n, "%s has URL %q, not an http or https URL", what, m.URL)
		}
		if !hex64RE.MatchString(m.SHA256) {
			b.metaProblemf(n, "%s has sha256 %q, not 64 lowercase hexadecimal digits", what, m.SHA256)
		}
		if !hex128RE.MatchString(m.SHA512) {
			b.metaProblemf(n, "%s has sha512 %q, not 128 lowercase hexadecimal digits", what, m.SHA512)
		}
		if m.Size <= 0 {
			b.metaProblemf(n, "%s has size %d; a pinned download has a positive size", what, m.Size)
		}
		if len(m.Files) == 0 {
			b.metaProblemf(n, "%s lists no files", what)
		}
		archive := m.Archive()
		for _, f := range m.Files {
			if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
				b.metaProblemf(n, "%s has file path %q, not a clean absolute path", what, f.Path)
			} else if other, dup := seen[f.Path]; dup {
				b.metaProblemf(n, "%s and %s both install %s", other, m.Name, f.Path)
			}
			seen[f.Path] = m.Name
			switch {
			case (f.Member != "") != archive:
				b.metaProblemf(n, "%s mixes archive members and a single file (%s)", what, f.Path)
			case archive && !cleanMember(f.Member):
				b.metaProblemf(n, "%s has archive member %q, not a clean relative path", what, f.Member)
			}
			switch {
			case f.SHA256 != "" && !hex64RE.MatchString(f.SHA256):
				b.metaProblemf(n, "%s has file %s with sha256 %q, not 64 lowercase hexadecimal digits", what, f.Path, f.SHA256)
			case !archive && f.SHA256 != m.SHA256:
				b.metaProblemf(n, "%s installs %s with sha256 %s, but the download's pin is %s", what, f.Path, f.SHA256, m.SHA256)
			case nm.BinariesCarried && f.SHA256 == "":
				b.metaProblemf(n, "%s has carried file %s without its sha256", what, f.Path)
			}
		}
	}
}

// cleanMember reports whether an archive member name is a clean relative path (with an
// optional leading "./", as release archives name their members).
func cleanMember(m string) bool {
	c := strings.TrimPrefix(m, "./")
	return c != "" && !path.IsAbs(c) && path.Clean(c) == c && c != ".." && !strings.HasPrefix(c, "../")
}

// binariesRule is the ID of the rule on pinned binaries.
const binariesRule = "binaries-pinned"

// checkBinariesPinned: the carried binaries hold the SHA-256 bundle.json records, and a
// node that fetches its binaries runs exactly the install-binaries.sh scratchgen renders
// for the pins bundle.json records (Ignition's remote files are compared with the same
// pins by checkViews, whatever the rules).
func checkBinariesPinned(b *checker, r Rule) {
	for _, n := range b.nodes {
		nm := b.nodeMeta(n)
		if nm == nil || len(nm.Binaries) == 0 {
			continue
		}
		if nm.BinariesCarried {
			carried := b.carriedBinaries(n)
			for _, p := range slices.Sorted(maps.Keys(carried)) {
				c, f := carried[p], n.file(p)
				if f == nil || c.file.SHA256 == "" {
					continue // checkBinaries
				}
				sum := sha256.Sum256(f.data)
				if got := hex.EncodeToString(sum[:]); got != c.file.SHA256 {
					b.fail(r, n.rel(p), "has SHA-256 %s, but bundle.json pins %s for it (%s from %s): not the binary the lock pins", got, c.file.SHA256, c.download.Name, c.download.URL)
				}
			}
			continue
		}
		if f := n.file(paths.BinariesScript); f != nil {
			if want := binaries.Script(nm.Binaries); !bytes.Equal(f.data, want) {
				b.fail(r, n.rel(paths.BinariesScript), "is not the script scratchgen renders for the downloads bundle.json pins: %s", scriptDiff(f.data, want))
			}
		}
		if u := n.units[paths.BinariesService]; u != nil && u.base != "" {
			for _, key := range slices.Sorted(maps.Keys(u.exec)) {
				cmds := u.exec[key]
				if key != "ExecStart" || len(cmds) != 1 || !slices.Equal(cmds[0], []string{paths.BinariesScript}) {
					b.fail(r, n.rel(u.execFile[key]), "%s runs %s; %s runs only %s", key, commandsString(cmds), paths.BinariesService, paths.BinariesScript)
				}
			}
			if len(u.files) > 1 {
				b.fail(r, n.rel(u.files[1]), "is a drop-in for %s, which scratchgen never extends", paths.BinariesService)
			}
		}
		if f := n.file(paths.BinariesUnit); f != nil && !bytes.Equal(f.data, []byte(binaries.UnitFile)) {
			b.fail(r, n.rel(paths.BinariesUnit), "is not the unit scratchgen renders: %s", scriptDiff(f.data, []byte(binaries.UnitFile)))
		}
	}
}

// scriptDiff names the lines a script adds to or drops from the one scratchgen renders.
func scriptDiff(got, want []byte) string {
	count := func(data []byte) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(string(data), "\n") {
			m[l]++
		}
		return m
	}
	gotN, wantN := count(got), count(want)
	var diffs []string
	for _, l := range strings.Split(string(got), "\n") {
		if wantN[l] == 0 {
			diffs = append(diffs, fmt.Sprintf("adds %q", strings.TrimSpace(l)))
		} else {
			wantN[l]--
		}
	}
	for _, l := range strings.Split(string(want), "\n") {
		if gotN[l] == 0 {
			diffs = append(diffs, fmt.Sprintf("drops %q", strings.TrimSpace(l)))
		} else {
			gotN[l]--
		}
	}
	if len(diffs) == 0 {
		return "its lines are reordered"
	}
	shown := diffs[:min(3, len(diffs))]
	s := strings.Join(shown, "; ")
	if len(diffs) > len(shown) {
		s += fmt.Sprintf("; and %d more", len(diffs)-len(shown))
	}
	return s
}

func commandsString(cmds [][]string) string {
	var out []string
	for _, c := range cmds {
		out = append(out, strings.Join(c, " "))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}
