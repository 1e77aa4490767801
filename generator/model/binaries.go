package model

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/lock"
)

// DefaultBinaryURL is where kubelet and kube-proxy are downloaded from unless the spec
// names a mirror: the official Kubernetes release location.
const DefaultBinaryURL = "https://dl.k8s.io/release/{version}/bin/linux/{arch}/{name}"

// Architectures are the node architectures binaries.arch accepts.
var Architectures = []string{"amd64", "arm64"}

// Binaries are the node binaries the spec names, resolved.
type Binaries struct {
	// Arch is the nodes' architecture (amd64, arm64).
	Arch string
	// URL is kubelet's and kube-proxy's URL template ({version}, {arch}, {name}).
	URL string
	// Extra are the further downloads every node gets, in spec order.
	Extra []ExtraBinary
	// Embed carries the pinned binaries in rootfs/; RequirePinned fails a render that
	// has an unpinned one.
	Embed, RequirePinned bool
	// Pins are the lock's pins of the URLs this spec renders.
	Pins map[string]lock.Binary
	// URLs are every URL the nodes download and Unpinned those the lock does not pin,
	// sorted, computed once by Resolve (render asks per node).
	URLs, Unpinned []string
}

// ExtraBinary is one further download: a single file (Install) or a release archive
// whose members Extract maps to node paths.
type ExtraBinary struct {
	Name    string
	URL     string // {arch} expanded
	Install string
	Extract map[string]string
}

// Download is one file a node needs, by URL.
type Download struct {
	// Name is kubelet, kube-proxy or the extra binary's name.
	Name string
	URL  string
	// Pin is the lock's pin; Pinned says whether there is one.
	Pin    lock.Binary
	Pinned bool
	// Files are where its content goes on the node, sorted by path: one file with an
	// empty Member for a single-file download, else the archive members extracted.
	Files []DownloadFile
}

// Archive reports whether the download is a release archive to extract from.
func (d Download) Archive() bool { return len(d.Files) > 0 && d.Files[0].Member != "" }

// DownloadFile is one node file a download provides.
type DownloadFile struct {
	// Member is the path inside the archive ("" for a single file).
	Member string
	// Path is the node path (installed with mode 0755).
	Path string
}

// NodeBinaryNames are the binaries every node gets from the release URL.
var NodeBinaryNames = []string{"kubelet", "kube-proxy"}

// BinaryURL expands a URL template.
func BinaryURL(template, version, arch, name string) string {
	return strings.NewReplacer("{version}", version, "{arch}", arch, "{name}", name).Replace(template)
}

// Downloads are the files node n needs: kubelet and kube-proxy at the node's kubelet
// release into its binary directory, then the extras in spec order.
func (c *Cluster) Downloads(n *Node) []Download {
	b := &c.Binaries
	var out []Download
	for _, name := range NodeBinaryNames {
		u := BinaryURL(b.URL, n.KubeletVersion.String(), b.Arch, name)
		out = append(out, b.download(name, u, []DownloadFile{{Path: n.BinDir() + "/" + name}}))
	}
	for _, e := range b.Extra {
		var files []DownloadFile
		if e.Install != "" {
			files = []DownloadFile{{Path: e.Install}}
		}
		for member, to := range e.Extract {
			files = append(files, DownloadFile{Member: member, Path: to})
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
		out = append(out, b.download(e.Name, e.URL, files))
	}
	return out
}

func (b *Binaries) download(name, u string, files []DownloadFile) Download {
	p, ok := b.Pins[u]
	return Download{Name: name, URL: u, Pin: p, Pinned: ok, Files: files}
}

// BinaryURLs are every URL the cluster's nodes download, sorted, without duplicates.
func (c *Cluster) BinaryURLs() []string { return c.Binaries.URLs }

// UnpinnedBinaries are the URLs the lock does not pin, sorted.
func (c *Cluster) UnpinnedBinaries() []string { return c.Binaries.Unpinned }

// BinariesPinned reports whether the lock pins every binary the nodes need; only then
// does a render carry or reference them (otherwise the operator installs them, as before).
func (c *Cluster) BinariesPinned() bool { return len(c.Binaries.Unpinned) == 0 }

var (
	binaryNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	placeholder  = regexp.MustCompile(`\{[^}]*\}`)
)

func (r *resolver) binaries(c *Cluster) {
	in := r.in.Spec.Binaries
	p := pSpec.Child("binaries")
	b := Binaries{Arch: in.Arch, URL: in.URL, Embed: in.Embed, RequirePinned: in.RequirePinned, Pins: map[string]lock.Binary{}}
	if b.Arch == "" {
		b.Arch = "amd64"
	} else if !slices.Contains(Architectures, b.Arch) {
		r.errs.Add(p.Child("arch"), "%q is not a supported architecture; use %s", in.Arch, strings.Join(Architectures, " or "))
	}
	if b.URL == "" {
		b.URL = DefaultBinaryURL
	} else {
		r.urlTemplate(p.Child("url"), b.URL, []string{"{version}", "{arch}", "{name}"}, []string{"{version}", "{name}"})
	}
	names := map[string]bool{"kubelet": true, "kube-proxy": true}
	targets := map[string]field.Path{}
	for i, e := range in.Extra {
		ep := p.Child("extra").Index(i)
		switch {
		case !binaryNameRE.MatchString(e.Name):
			r.errs.Add(ep.Child("name"), "%q is not a name; use lowercase letters, digits, '.', '_' and '-', e.g. cni-plugins", e.Name)
		case names[e.Name]:
			r.errs.Add(ep.Child("name"), "%q is listed twice (kubelet and kube-proxy are always there)", e.Name)
		}
		names[e.Name] = true
		if e.URL == "" {
			r.errs.Add(ep.Child("url"), "missing: the download URL (with {arch} where the file differs per architecture)")
		} else {
			r.urlTemplate(ep.Child("url"), e.URL, []string{"{arch}"}, nil)
		}
		x := ExtraBinary{Name: e.Name, URL: BinaryURL(e.URL, "", b.Arch, ""), Install: e.Install, Extract: map[string]string{}}
		switch {
		case e.Install == "" && len(e.Extract) == 0:
			r.errs.Add(ep, "names no file: set install (a single file's node path) or extract (archive members to node paths)")
		case e.Install != "" && len(e.Extract) > 0:
			r.errs.Add(ep, "sets both install and extract; a download is either one file or an archive")
		case e.Install != "":
			r.binaryTarget(ep.Child("install"), e.Install, targets)
		default:
			if u := strings.ToLower(strings.SplitN(x.URL, "?", 2)[0]); !strings.HasSuffix(u, ".tar.gz") && !strings.HasSuffix(u, ".tgz") {
				r.errs.Add(ep.Child("url"), "%q: extract reads gzip-compressed tar archives; the URL must end in .tar.gz or .tgz", e.URL)
			}
			for _, member := range slices.Sorted(maps.Keys(e.Extract)) {
				mp := ep.Child("extract").Key(member)
				// Members are matched exactly as the archive names them ("./bridge" and
				// "bridge" differ), as tar -x matches them on the node.
				clean := strings.TrimPrefix(member, "./")
				if clean == "" || path.IsAbs(clean) || path.Clean(clean) != clean || strings.HasPrefix(clean, "../") || clean == ".." || strings.ContainsAny(member, " \t\n'\"\\$`*?[") {
					r.errs.Add(mp, "%q is not a clean relative path inside the archive (exactly as the archive names it, without spaces, quotes or wildcards), e.g. ./bridge or bin/containerd", member)
					continue
				}
				r.binaryTarget(mp, e.Extract[member], targets)
				x.Extract[member] = e.Extract[member]
			}
		}
		b.Extra = append(b.Extra, x)
	}
	reported := map[string]bool{}
	for _, n := range c.Nodes {
		for _, name := range NodeBinaryNames {
			to := n.BinDir() + "/" + name
			if prev, ok := targets[to]; ok && !reported[to] {
				reported[to] = true
				r.errs.Add(prev, "%s is where the nodes' %s goes (node %s and others on its OS); choose another path", to, name, n.Name)
			}
		}
	}
	c.Binaries = b
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		for _, d := range c.Downloads(n) {
			seen[d.URL] = true
		}
	}
	c.Binaries.URLs = slices.Sorted(maps.Keys(seen))
	for _, u := range c.Binaries.URLs {
		var pin lock.Binary
		ok := false
		if r.lock != nil {
			pin, ok = r.lock.Binaries[u]
		}
		if ok {
			c.Binaries.Pins[u] = pin
		} else {
			c.Binaries.Unpinned = append(c.Binaries.Unpinned, u)
		}
	}
	unpinned := c.Binaries.Unpinned
	switch {
	case len(unpinned) == 0:
	case b.RequirePinned:
		r.errs.Add(p.Child("requirePinned"), "the lock does not pin %d binary download(s) (%s); run `scratchgen binaries pin`", len(unpinned), strings.Join(unpinned, ", "))
	case b.Embed:
		r.errs.Add(p.Child("embed"), "carrying binaries needs them pinned, and the lock does not pin %d download(s) (%s); run `scratchgen binaries pin` and `scratchgen binaries pull`", len(unpinned), strings.Join(unpinned, ", "))
	case r.lock != nil && len(r.lock.Binaries) > 0:
		// The cluster's binaries are pinned, but not these (a new release, a changed
		// URL): render refuses (render.Plan) rather than drop them from the bundle.
		r.errs.Warn(p, "the lock pins binaries, but not %d download(s) the spec now needs (%s); render refuses until `scratchgen binaries pin` pins them", len(unpinned), strings.Join(unpinned, ", "))
	}
}

// urlTemplate checks a download URL template: http or https, only the allowed
// placeholders, and the required ones.
func (r *resolver) urlTemplate(p field.Path, tmpl string, allowed, required []string) {
	for _, ph := range placeholder.FindAllString(tmpl, -1) {
		if !slices.Contains(allowed, ph) {
			r.errs.Add(p, "%q: unknown placeholder %s; use %s", tmpl, ph, strings.Join(allowed, ", "))
			return
		}
	}
	for _, ph := range required {
		if !strings.Contains(tmpl, ph) {
			why := map[string]string{"{name}": "kubelet and kube-proxy would share one URL", "{version}": "an upgrade would keep the old release's pin"}[ph]
			r.errs.Add(p, "%q has no %s: %s", tmpl, ph, why)
			return
		}
	}
	u, err := url.Parse(BinaryURL(tmpl, "v1.0.0", "amd64", "kubelet"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		r.errs.Add(p, "%q is not an http or https URL", tmpl)
		return
	}
	if strings.ContainsAny(tmpl, " \t\n'\"\\$`") {
		r.errs.Add(p, "%q contains a space, quote, backslash, $ or backquote; percent-encode it", tmpl)
	}
}

// binaryTarget checks a node path a binary goes to.
func (r *resolver) binaryTarget(p field.Path, to string, seen map[string]field.Path) {
	if !path.IsAbs(to) || path.Clean(to) != to || to == "/" || strings.ContainsAny(to, " \t\n'\"\\$`") {
		r.errs.Add(p, "%q is not a clean absolute node path without spaces or quotes, e.g. /opt/cni/bin/bridge", to)
		return
	}
	if prev, ok := seen[to]; ok {
		r.errs.Add(p, "%s also gets %s; each node path gets one binary", prev, to)
		return
	}
	seen[to] = p
}

// String describes a download for messages.
func (d Download) String() string { return fmt.Sprintf("%s (%s)", d.Name, d.URL) }
