package verify

import (
	"bytes"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/provision"
)

// viewNames are the provisioning views render writes beside each node's rootfs/.
var viewNames = []string{provision.ButaneFile, provision.IgnitionFile, provision.UserDataFile}

func isView(name string) bool { return slices.Contains(viewNames, name) }

// view is a provisioning config decoded into the files it writes and the units it
// enables.
type view struct {
	rel   string
	files map[string]viewFile
	units []string
	// omitted lists the secrets the header comment says are left out; hasHeader tells
	// whether there was such a comment.
	omitted   []string
	hasHeader bool
	// tables lists the cluster tables the header says are left out.
	tables []string
	// archives lists the image archives the header says are left out.
	archives []string
	// binaries lists the carried binaries the header says are left out.
	binaries []string
	// remote are the files the view fetches by URL (Ignition's remote files).
	remote []provision.DecodedRemote
	// problems found while decoding, reported against rel.
	problems []string
}

type viewFile struct {
	mode fs.FileMode
	data []byte
}

// checkViews decodes each node's Ignition, Butane and cloud-init configs and compares
// them with its rootfs: the same paths, modes and contents (less the secrets the header
// says are omitted), the same units, and modes that fit the secrets they carry.
func (b *checker) checkViews() {
	// Decoded views hold every file of their node, the routes table of the whole cluster
	// among them: decoded all at once, a 10,000-node bundle needed more than 20 GB. Nodes
	// are therefore checked in batches; each batch's views are dropped before the next.
	const batch = 64
	for start := 0; start < len(b.nodes); start += batch {
		b.checkViewsOf(b.nodes[start:min(start+batch, len(b.nodes))])
	}
}

func (b *checker) checkViewsOf(nodes []*node) {
	// Decoding dominates the cost of a large bundle and is independent per file, so
	// it runs in parallel; comparing and reporting stay sequential.
	type job struct {
		n    *node
		name string
		f    *file
		v    *view
		err  error
	}
	var jobs []*job
	for _, n := range nodes {
		for _, name := range viewNames {
			rel := n.base + "/" + name
			f := b.files[rel]
			if f == nil {
				b.problemf(rel, "is missing: render writes %s for every node", strings.Join(viewNames, ", "))
				continue
			}
			jobs = append(jobs, &job{n: n, name: name, f: f})
		}
	}
	parallel(len(jobs), func(i int) {
		j := jobs[i]
		j.v, j.err = b.decodeView(j.n, j.name, j.f)
	})
	views := map[*node]map[string]*view{}
	for _, j := range jobs {
		if j.err != nil {
			b.problemf(j.f.rel, "cannot be decoded: %v", j.err)
			continue
		}
		for _, msg := range j.v.problems {
			b.problemf(j.f.rel, "%s", msg)
		}
		if views[j.n] == nil {
			views[j.n] = map[string]*view{}
		}
		views[j.n][j.name] = j.v
	}
	for _, n := range nodes {
		b.compareViews(n, views[n])
	}
}

// decodeView decodes one provisioning view (provision.DecodeIn) for checking; node.bu's
// local files are read from the node's directory in the bundle.
func (b *checker) decodeView(n *node, name string, f *file) (*view, error) {
	d, err := b.views.DecodeIn(name, f.data, func(local string) ([]byte, bool) {
		if lf := b.files[n.base+"/"+local]; lf != nil {
			return lf.data, true
		}
		return nil, false
	})
	if err != nil {
		return nil, err
	}
	v := &view{rel: f.rel, files: map[string]viewFile{}, units: d.Units, omitted: d.Omitted,
		hasHeader: d.HasOmittedHeader, tables: d.Tables, archives: d.Archives, binaries: d.Binaries, remote: d.Remote,
		problems: d.Problems}
	for p, df := range d.Files {
		v.files[p] = viewFile{mode: df.Mode, data: df.Data}
	}
	return v, nil
}

func (b *checker) compareViews(n *node, views map[string]*view) {
	// The secrets left out: as user-data's header says, else node.bu's (Ignition JSON
	// has no comments).
	var omitted []string
	var from *view
	for _, name := range []string{provision.UserDataFile, provision.ButaneFile} {
		if v := views[name]; v != nil && from == nil {
			omitted, from = v.omitted, v
		}
	}
	ud, bu := views[provision.UserDataFile], views[provision.ButaneFile]
	if ud != nil && bu != nil && (ud.hasHeader != bu.hasHeader || !slices.Equal(ud.omitted, bu.omitted)) {
		b.problemf(bu.rel, "lists other omitted secrets than %s", ud.rel)
	}
	if ud != nil && bu != nil && !slices.Equal(ud.tables, bu.tables) {
		b.problemf(bu.rel, "lists other omitted cluster tables than %s", ud.rel)
	}
	if ud != nil && bu != nil && !slices.Equal(ud.archives, bu.archives) {
		b.problemf(bu.rel, "lists other omitted image archives than %s", ud.rel)
	}
	if ud != nil && bu != nil && !slices.Equal(ud.binaries, bu.binaries) {
		b.problemf(bu.rel, "lists other omitted binaries than %s", ud.rel)
	}
	omit := map[string]bool{}
	if from != nil {
		carried := b.carriedBinaries(n)
		for _, p := range from.binaries {
			omit[p] = true
			switch {
			case carried[p] == nil:
				b.problemf(from.rel, "lists %s as an omitted binary, but bundle.json records no binary the node carries there: the node would not get it", p)
			case n.file(p) == nil:
				b.problemf(from.rel, "lists %s as an omitted binary, but rootfs has no such file", p)
			}
		}
		for _, p := range from.archives {
			omit[p] = true
			switch {
			case n.file(p) == nil:
				b.problemf(from.rel, "lists %s as an omitted image archive, but rootfs has no such file", p)
			case !under(p, paths.ImagesDir):
				b.problemf(from.rel, "omits %s as an image archive, but archives live in %s: the node would not get it", p, paths.ImagesDir)
			}
		}
		for _, p := range from.tables {
			omit[p] = true
			switch {
			case n.file(p) == nil:
				b.problemf(from.rel, "lists %s as an omitted cluster table, but rootfs has no such file", p)
			case !isClusterTable(p):
				b.problemf(from.rel, "omits %s as a cluster table, but the only cluster table is %s: the node would not get it", p, paths.RoutesTable)
			case b.meta != nil && b.meta.EmbedSecrets:
				b.problemf(from.rel, "omits %s, but bundle.json says the views embed secrets: a self-contained view carries the cluster tables too", p)
			}
		}
		for _, p := range omitted {
			omit[p] = true
			f := n.file(p)
			switch {
			case f == nil:
				b.problemf(from.rel, "lists %s as an omitted secret, but rootfs has no such file", p)
			case !isSecretFile(p, f):
				b.problemf(from.rel, "omits %s, which holds no secret: the node would not get it", p)
			}
		}
	}
	var firstUnits *view
	for _, name := range viewNames {
		v := views[name]
		if v == nil {
			continue
		}
		b.compareRemote(n, v, name)
		secret := false
		for _, p := range slices.Sorted(maps.Keys(n.rootfs)) {
			f := n.rootfs[p]
			vf, ok := v.files[p]
			if omit[p] {
				if ok {
					b.problemf(v.rel, "writes %s, which its header lists as omitted", p)
				}
				continue
			}
			switch {
			case !ok:
				if isSecretFile(p, f) && from != nil && !from.hasHeader {
					b.problemf(v.rel, "does not write %s, and no header says it omits secrets", p)
				} else {
					b.problemf(v.rel, "does not write %s, which is in rootfs", p)
				}
			case !bytes.Equal(vf.data, f.data):
				b.problemf(v.rel, "writes %s with content that differs from rootfs", p)
			case vf.mode != f.mode:
				b.problemf(v.rel, "writes %s with mode %04o, but rootfs has %04o", p, vf.mode, f.mode)
			}
			if ok && isSecretFile(p, f) {
				secret = true
			}
		}
		for _, p := range slices.Sorted(maps.Keys(v.files)) {
			if n.rootfs[p] == nil {
				b.problemf(v.rel, "writes %s, which is not in rootfs", p)
			}
			if holdsPrivateKey(v.files[p].data) {
				secret = true
			}
		}
		f := b.files[v.rel]
		if secret {
			b.secret(v.rel)
			if f.mode != bundle.ModeSecret {
				b.problemf(v.rel, "has mode %04o, want %04o: it carries private keys or tokens", f.mode, bundle.ModeSecret)
			}
		} else if f.mode != bundle.ModePublic {
			b.problemf(v.rel, "has mode %04o, want %04o (it carries no secrets)", f.mode, bundle.ModePublic)
		}
		// Units: the same in every view, each defined by rootfs, every rootfs unit enabled.
		if firstUnits == nil {
			firstUnits = v
			for _, u := range v.units {
				if nu := n.units[u]; nu == nil {
					b.problemf(v.rel, "enables %s, which rootfs neither defines nor extends with a drop-in", u)
				}
			}
			for _, u := range slices.Sorted(maps.Keys(n.units)) {
				// A service its timer starts (same name, .timer) is not enabled itself.
				timer := strings.TrimSuffix(u, ".service") + ".timer"
				if strings.HasSuffix(u, ".service") && n.units[timer] != nil && slices.Contains(v.units, timer) {
					continue
				}
				if n.units[u].base != "" && !slices.Contains(v.units, u) {
					b.problemf(v.rel, "does not enable %s, which rootfs defines", u)
				}
			}
		} else if !slices.Equal(v.units, firstUnits.units) {
			b.problemf(v.rel, "enables %s, but %s enables %s", listOrNone(v.units), firstUnits.rel, listOrNone(firstUnits.units))
		}
	}
}

// compareRemote checks the files a view fetches by URL: exactly binaries.Remote of the
// node's downloads in bundle.json, when Ignition fetches them (node.bu, ignition.json of
// a node whose binaries rootfs/ does not carry), and none otherwise.
func (b *checker) compareRemote(n *node, v *view, name string) {
	var want []bundle.RemoteFile
	if nm := b.nodeMeta(n); nm != nil && !nm.BinariesCarried && name != provision.UserDataFile {
		want = binaries.Remote(nm.Binaries)
	}
	wantBy := map[string]bundle.RemoteFile{}
	for _, r := range want {
		wantBy[r.Path] = r
	}
	seen := map[string]bool{}
	for _, r := range v.remote {
		if seen[r.Path] {
			b.problemf(v.rel, "fetches %s twice", r.Path)
			continue
		}
		seen[r.Path] = true
		w, ok := wantBy[r.Path]
		switch {
		case !ok && name == provision.UserDataFile:
			b.problemf(v.rel, "fetches %s from %s: cloud-init fetches nothing, install-binaries.sh does", r.Path, r.URL)
		case !ok:
			b.problemf(v.rel, "fetches %s from %s, but bundle.json pins no download of the node there", r.Path, r.URL)
		case r.URL != w.URL:
			b.problemf(v.rel, "fetches %s from %s, but bundle.json pins %s", r.Path, r.URL, w.URL)
		case r.Hash != "sha512-"+w.SHA512:
			b.problemf(v.rel, "fetches %s from %s with verification hash %s, but bundle.json pins sha512-%s", r.Path, r.URL, r.Hash, w.SHA512)
		case r.Mode != w.Mode:
			b.problemf(v.rel, "fetches %s with mode %04o, want %04o", r.Path, r.Mode, w.Mode)
		}
		if n.rootfs[r.Path] != nil {
			b.problemf(v.rel, "fetches %s, which rootfs also holds", r.Path)
		}
	}
	for _, w := range want {
		if !seen[w.Path] {
			b.problemf(v.rel, "does not fetch %s from %s, which bundle.json pins for the node", w.Path, w.URL)
		}
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no units"
	}
	return strings.Join(s, " ")
}

// isClusterTable reports whether rootfs path p lists the cluster's nodes
// (bundle.File.Membership): the routes table is the only such file scratchgen renders.
func isClusterTable(p string) bool { return p == paths.RoutesTable }
