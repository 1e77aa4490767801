// Package provision renders a finished node's file list as first-boot provisioning
// configs: a Butane config (node.bu), the Ignition config Butane translates it into
// (ignition.json) and cloud-init user-data (user-data).
//
// All three are views over bundle.Node.Rootfs and bundle.Node.Units, never a second
// description of the node, so they cannot drift from the rendered rootfs/ tree: every
// rootfs file appears with its exact path, mode and content, and every unit is enabled.
// This package is the only one that talks to Butane.
package provision

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/vincent-petithory/dataurl"
	"gopkg.in/yaml.v3"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Names of the files Views returns, relative to the node directory.
const (
	ButaneFile   = "node.bu"
	IgnitionFile = "ignition.json"
	UserDataFile = "user-data"
)

// omittedPrefix starts the comment that lists the secrets a view leaves out.
const omittedPrefix = "# omitted secrets (deliver rootfs/ by rsync): "

// omittedTablesPrefix starts the comment that lists the files a view that is not
// self-contained leaves out because they list the cluster's nodes (bundle.File.Membership):
// such a view needs rootfs/'s secrets delivered anyway, and that delivery brings the
// current table, so no view is rewritten when a node is added.
const omittedTablesPrefix = "# omitted cluster tables (they change whenever a node is added or removed; deliver rootfs/ by rsync with the secrets): "

// omittedImagesPrefix starts the comment that lists the image archives a view leaves out:
// hundreds of megabytes do not belong in user-data or an Ignition config.
const omittedImagesPrefix = "# omitted image archives (deliver rootfs/ by rsync or bake them into the machine image): "

// omittedBinariesPrefix starts the comment that lists the carried binaries a view leaves
// out (kubelet alone is about 80 MB).
const omittedBinariesPrefix = "# omitted binaries (deliver rootfs/ by rsync or bake them into the machine image): "

// target is the Butane variant and version used for one node OS, and the Ignition spec
// version that pair translates to.
type target struct {
	variant, version string
	ignition         string
}

// targets maps a node OS to its Butane target. It is never modified.
//
//   - flatcar: the newest stable Flatcar spec in Butane v0.27 (flatcar 1.1.0 → Ignition 3.4.0).
//   - fcos: the newest stable Fedora CoreOS spec (fcos 1.7.0 → Ignition 3.6.0).
//   - generic: a machine that runs a distribution-packaged Ignition. Debian 12 ships
//     Ignition 2.14, whose newest stable spec is 3.3.0, so generic nodes get the newest
//     fcos spec that still translates to 3.3.0 (fcos 1.4.0); Debian's ignition-validate
//     accepts it.
var targets = map[string]target{
	model.OSGeneric: {variant: "fcos", version: "1.4.0", ignition: "3.3.0"},
	model.OSFlatcar: {variant: "flatcar", version: "1.1.0", ignition: "3.4.0"},
	model.OSFCOS:    {variant: "fcos", version: "1.7.0", ignition: "3.6.0"},
}

// Views returns the per-node provisioning files for a finished node, with paths relative
// to the node directory, in this order:
//
//   - "node.bu": the Butane config: generic → fcos 1.4.0, flatcar → flatcar 1.1.0,
//     fcos → fcos 1.7.0;
//   - "ignition.json": node.bu translated with the Butane library (Ignition spec 3.3.0,
//     3.4.0 and 3.6.0 respectively);
//   - "user-data": a #cloud-config writing the same files and enabling the same units.
//
// Both configs write every rootfs file (sorted by path, overwriting what is there, owned
// by root) and enable every unit in n.Units, in order. Unit files stay ordinary files
// under /etc/systemd/system; Ignition's systemd.units entries only enable them, so the
// files each view writes are exactly n.Rootfs.
//
// With embedSecrets false, files marked Secret are left out of every view (Ignition
// configs and user-data are readable through cloud metadata services) and node.bu and
// user-data carry a leading "# omitted secrets (deliver rootfs/ by rsync): <paths>"
// comment; JSON has no comments, so ignition.json just lacks them. Such a view is
// completed by delivering rootfs/, so it also leaves out the files that list the
// cluster's nodes (bundle.File.Membership: the routes table), under a "# omitted cluster
// tables" comment: adding a node then rewrites no view. With embedSecrets true, every
// file is included, secrets with their own mode; the returned files then hold key
// material and are themselves marked Secret, with mode 0600.
//
// Views rejects an unknown OS, relative, unclean or duplicate paths, paths with spaces
// or control characters, modes with bits other than permissions, duplicate units, and
// any error or warning Butane reports.
func Views(n *bundle.Node, os string, embedSecrets bool) ([]bundle.File, error) {
	return (*Cache)(nil).Views(n, os, embedSecrets)
}

// Views is Views, sharing the work on files other nodes of the cache carry too.
func (c *Cache) Views(n *bundle.Node, os string, embedSecrets bool) ([]bundle.File, error) {
	tgt, ok := targets[os]
	if !ok {
		return nil, fmt.Errorf("unknown OS %q (want %q, %q or %q)",
			os, model.OSGeneric, model.OSFlatcar, model.OSFCOS)
	}
	files, omitted, tables, archives, bins, err := included(n, embedSecrets)
	if err != nil {
		return nil, err
	}
	header := ""
	if len(omitted) > 0 {
		header = omittedPrefix + strings.Join(omitted, " ") + "\n"
	}
	if len(tables) > 0 {
		header += omittedTablesPrefix + strings.Join(tables, " ") + "\n"
	}
	if len(archives) > 0 {
		header += omittedImagesPrefix + strings.Join(archives, " ") + "\n"
	}
	if len(bins) > 0 {
		header += omittedBinariesPrefix + strings.Join(bins, " ") + "\n"
	}
	for _, r := range n.Remote {
		if err := checkPath(r.Path); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(r.URL, "https://") && !strings.HasPrefix(r.URL, "http://") || len(r.SHA512) != 128 {
			return nil, fmt.Errorf("remote file %q: %q with SHA-512 %q is not an http(s) URL with a pinned hash", r.Path, r.URL, r.SHA512)
		}
		if slices.ContainsFunc(files, func(f bundle.File) bool { return f.Path == r.Path }) {
			return nil, fmt.Errorf("remote file %q: rootfs has it too", r.Path)
		}
	}

	keys := make([]entryKey, len(files))
	encs := make([]encoded, len(files))
	for i, f := range files {
		keys[i] = entryKey{fileKey: keyOf(f), target: tgt.variant + "/" + tgt.version}
		encs[i] = c.encode(keys[i].fileKey, f.Data)
	}
	cfg := butaneConfig(tgt, files, encs, n.Remote, n.Units)
	bu, err := c.butaneYAML(cfg, files, keys, header)
	if err != nil {
		return nil, fmt.Errorf("writing Butane config: %w", err)
	}
	ign, err := c.translateNode(tgt, cfg, keys, len(files))
	if err != nil {
		return nil, fmt.Errorf("translating %s (%s %s) to Ignition: %w",
			ButaneFile, tgt.variant, tgt.version, err)
	}
	ud, err := c.userData(files, keys, encs, n.Units, header)
	if err != nil {
		return nil, fmt.Errorf("writing cloud-init user-data: %w", err)
	}

	mode, secret := bundle.ModePublic, false
	if slices.ContainsFunc(files, func(f bundle.File) bool { return f.Secret }) {
		mode, secret = bundle.ModeSecret, true
	}
	return []bundle.File{
		{Path: ButaneFile, Mode: mode, Data: bu, Secret: secret},
		{Path: IgnitionFile, Mode: mode, Data: ign, Secret: secret},
		{Path: UserDataFile, Mode: mode, Data: ud, Secret: secret},
	}, nil
}

// included checks the node and returns the files the views carry, sorted by path, the
// sorted paths of the secrets it left out and of the cluster tables (both only when
// secrets are not embedded), those of the image archives (under paths.ImagesDir) and
// those of the carried binaries, which no view carries.
func included(n *bundle.Node, embedSecrets bool) (files []bundle.File, omitted, tables, archives, bins []string, err error) {
	all := slices.Clone(n.Rootfs)
	bundle.Sort(all)
	for i, f := range all {
		if err := checkPath(f.Path); err != nil {
			return nil, nil, nil, nil, nil, err
		}
		if i > 0 && all[i-1].Path == f.Path {
			return nil, nil, nil, nil, nil, fmt.Errorf("file %q: listed twice", f.Path)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return nil, nil, nil, nil, nil, fmt.Errorf("file %q: mode %v has bits other than permissions", f.Path, f.Mode)
		}
		if f.Secret && !embedSecrets {
			omitted = append(omitted, f.Path)
			continue
		}
		if f.Membership && !embedSecrets {
			tables = append(tables, f.Path)
			continue
		}
		if strings.HasPrefix(f.Path, paths.ImagesDir+"/") {
			archives = append(archives, f.Path)
			continue
		}
		if f.Binary {
			bins = append(bins, f.Path)
			continue
		}
		files = append(files, f)
	}
	seen := map[string]bool{}
	for _, u := range n.Units {
		if u == "" || strings.ContainsFunc(u, notPathRune) || strings.Contains(u, "/") {
			return nil, nil, nil, nil, nil, fmt.Errorf("unit %q: not a unit name", u)
		}
		if seen[u] {
			return nil, nil, nil, nil, nil, fmt.Errorf("unit %q: listed twice", u)
		}
		seen[u] = true
	}
	return files, omitted, tables, archives, bins, nil
}

// checkPath accepts clean absolute paths without whitespace or control characters (which
// would break the omitted-secrets comment and are never rendered anyway).
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || p == "/":
		return fmt.Errorf("file %q: path is not an absolute file path", p)
	case path.Clean(p) != p:
		return fmt.Errorf("file %q: path is not clean (want %q)", p, path.Clean(p))
	case strings.ContainsFunc(p, notPathRune):
		return fmt.Errorf("file %q: path has whitespace or control characters", p)
	}
	return nil
}

func notPathRune(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }

// Butane config, as much of it as scratchgen writes. Butane's own schema types carry only
// yaml tags, which sigs.k8s.io/yaml ignores, hence these mirrors; Butane's strict parser
// rejects any field name they get wrong.
type (
	buConfig struct {
		Variant string     `json:"variant" yaml:"variant"`
		Version string     `json:"version" yaml:"version"`
		Storage *buStorage `json:"storage,omitempty" yaml:"storage,omitempty"`
		Systemd *buSystemd `json:"systemd,omitempty" yaml:"systemd,omitempty"`
	}
	buStorage struct {
		Files []buFile `json:"files" yaml:"files"`
	}
	buFile struct {
		Path      string     `json:"path" yaml:"path"`
		Mode      octalMode  `json:"mode" yaml:"mode"`
		Overwrite bool       `json:"overwrite" yaml:"overwrite"`
		Contents  buResource `json:"contents" yaml:"contents"`
	}
	buResource struct {
		Local        *string         `json:"local,omitempty" yaml:"local,omitempty"`
		Source       *string         `json:"source,omitempty" yaml:"source,omitempty"`
		Compression  *string         `json:"compression,omitempty" yaml:"compression,omitempty"`
		Verification *buVerification `json:"verification,omitempty" yaml:"verification,omitempty"`
	}
	buVerification struct {
		Hash string `json:"hash" yaml:"hash"`
	}
	buSystemd struct {
		Units []buUnit `json:"units" yaml:"units"`
	}
	buUnit struct {
		Name    string `json:"name" yaml:"name"`
		Enabled bool   `json:"enabled" yaml:"enabled"`
	}
)

// butaneConfig is the Butane config Butane translates into ignition.json: node.bu as
// Butane reads it with the node directory as its files directory. Each file's contents
// are what Butane makes of node.bu's "local: rootfs/<path>" (see encode): a data URL,
// gzip-compressed where that is smallest, with the compression stated ("" or "gzip").
//
// Remote files (binaries rootfs/ does not carry) are fetched by Ignition from their URL
// and verified against their pinned SHA-512; they follow the files rootfs/ carries.
func butaneConfig(tgt target, files []bundle.File, encs []encoded, remote []bundle.RemoteFile, units []string) buConfig {
	cfg := buConfig{Variant: tgt.variant, Version: tgt.version}
	if len(files)+len(remote) > 0 {
		cfg.Storage = &buStorage{Files: make([]buFile, 0, len(files)+len(remote))}
		for i, f := range files {
			bf := buFile{Path: f.Path, Mode: octalMode(f.Mode.Perm()), Overwrite: true}
			url, comp := encs[i].url, ""
			if encs[i].gzip {
				comp = "gzip"
			}
			bf.Contents.Source, bf.Contents.Compression = &url, &comp
			cfg.Storage.Files = append(cfg.Storage.Files, bf)
		}
		for _, r := range remote {
			url := r.URL
			cfg.Storage.Files = append(cfg.Storage.Files, buFile{Path: r.Path, Mode: octalMode(r.Mode.Perm()), Overwrite: true,
				Contents: buResource{Source: &url, Verification: &buVerification{Hash: "sha512-" + r.SHA512}}})
		}
	}
	if len(units) > 0 {
		cfg.Systemd = &buSystemd{Units: make([]buUnit, 0, len(units))}
		for _, u := range units {
			cfg.Systemd.Units = append(cfg.Systemd.Units, buUnit{Name: u, Enabled: true})
		}
	}
	return cfg
}

// LocalDir is the directory, relative to the node directory, from which node.bu reads
// the files it writes: `butane --files-dir <node dir> node.bu` makes ignition.json.
const LocalDir = "rootfs"

// localOf is node.bu's local source for the file at path p.
func localOf(p string) string { return LocalDir + p }

// butaneYAML writes node.bu: the header, then the config, each file reading its content
// from the node's rootfs/ ("local: rootfs/<path>"), so node.bu lists what the node gets
// (paths, modes, units) and the content is reviewed once, in rootfs/. Remote files keep
// their URL and hash. Entries are encoded on their own (shared entries once per render).
func (c *Cache) butaneYAML(cfg buConfig, files []bundle.File, keys []entryKey, header string) ([]byte, error) {
	head, err := c.once("head\x00"+cfg.Variant+"\x00"+cfg.Version, func() ([]byte, error) {
		return marshalYAML(buConfig{Variant: cfg.Variant, Version: cfg.Version})
	})
	if err != nil {
		return nil, err
	}
	b := bytes.NewBufferString(header)
	b.Write(head)
	if cfg.Storage != nil {
		b.WriteString("storage:\n  files:\n")
		for i, f := range cfg.Storage.Files {
			if i < len(files) {
				local := localOf(files[i].Path)
				f.Contents = buResource{Local: &local}
			}
			encode := func() ([]byte, error) { return buFileEntry(f) }
			var y []byte
			if i < len(keys) {
				y, err = c.fragment(false, keys[i], encode)
			} else {
				y, err = encode()
			}
			if err != nil {
				return nil, err
			}
			b.Write(y)
		}
	}
	if cfg.Systemd != nil {
		y, err := marshalYAML(struct {
			Systemd *buSystemd `yaml:"systemd"`
		}{cfg.Systemd})
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// cloud-config, as much of it as scratchgen writes.
type (
	cloudConfig struct {
		WriteFiles []writeFile `json:"write_files,omitempty" yaml:"write_files,omitempty"`
		RunCmd     [][]string  `json:"runcmd,omitempty" yaml:"runcmd,omitempty"`
	}
	writeFile struct {
		Path        string `json:"path" yaml:"path"`
		Permissions string `json:"permissions" yaml:"permissions"`
		Owner       string `json:"owner" yaml:"owner"`
		Encoding    string `json:"encoding" yaml:"encoding"`
		Content     string `json:"content" yaml:"content"`
		Defer       bool   `json:"defer" yaml:"defer"`
	}
)

// userData writes the #cloud-config: write_files for every file (gzip+base64 where
// ignition.json compresses it too, base64 otherwise; sorted by path, owned by root,
// written before runcmd), then runcmd reloads systemd and enables and (re)starts each
// unit in order, one command per unit so the start order holds.
func (c *Cache) userData(files []bundle.File, keys []entryKey, encs []encoded, units []string, header string) ([]byte, error) {
	b := bytes.NewBufferString("#cloud-config\n" + header)
	if len(files) > 0 {
		b.WriteString("write_files:\n")
	}
	for i, f := range files {
		y, err := c.fragment(true, keys[i], func() ([]byte, error) {
			enc, content := "b64", f.Data
			if encs[i].gzip {
				enc, content = "gz+b64", encs[i].zipped
			}
			return writeFileEntry(writeFile{
				Path:        f.Path,
				Permissions: fmt.Sprintf("%04o", f.Mode.Perm()),
				Owner:       "root:root",
				Encoding:    enc,
				Content:     base64.StdEncoding.EncodeToString(content),
				Defer:       false,
			})
		})
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	var cfg cloudConfig
	if len(units) > 0 {
		// Restart, not just start: on an image where a unit (containerd) already runs from
		// its package's defaults, it must pick up the files just written.
		cfg.RunCmd = append(cfg.RunCmd, []string{"systemctl", "daemon-reload"})
		for _, u := range units {
			cfg.RunCmd = append(cfg.RunCmd, []string{"systemctl", "enable", u}, []string{"systemctl", "restart", u})
		}
	}
	if len(files) > 0 && len(units) == 0 {
		return b.Bytes(), nil
	}
	// An empty node gets "{}": cloud-init rejects a cloud-config that is not a mapping.
	// Alike nodes enable the same units: their runcmd is encoded once per render.
	y, err := c.once("runcmd\x00"+strings.Join(units, "\x00"), func() ([]byte, error) { return marshalYAML(cfg) })
	if err != nil {
		return nil, err
	}
	b.Write(y)
	return b.Bytes(), nil
}

// writeFileEntry is encodeEntry(w, 2), byte for byte: the entry is written directly
// where every string of it is one YAML writes plain (the path, owner, encoding and the
// base64 content, which have no spaces), the permissions quoted as YAML quotes digits;
// otherwise it goes through the YAML encoder. A 1,000-node render writes about 8,000 of
// these entries; TestWriteFileEntry holds the two to the same bytes.
func writeFileEntry(w writeFile) ([]byte, error) {
	if b, ok := directEntry(w); ok {
		return b, nil
	}
	return encodeEntry(w, 2)
}

// buFileEntry is encodeEntry(f, 4), byte for byte: an entry with a local source is
// written directly where its path and source are strings YAML writes plain (a 1,000-node
// render writes about 4,000 entries only one node carries); any other goes through the
// YAML encoder. TestBuFileEntry holds the two to the same bytes.
func buFileEntry(f buFile) ([]byte, error) {
	r := f.Contents
	if r.Local == nil || r.Source != nil || r.Compression != nil || r.Verification != nil || !plainScalar(f.Path) || !plainScalar(*r.Local) {
		return encodeEntry(f, 4)
	}
	b := make([]byte, 0, 2*len(f.Path)+96)
	b = append(b, "    - path: "...)
	b = append(b, f.Path...)
	b = append(b, "\n      mode: 0"...)
	b = strconv.AppendUint(b, uint64(f.Mode), 8)
	b = append(b, "\n      overwrite: "...)
	b = strconv.AppendBool(b, f.Overwrite)
	b = append(b, "\n      contents:\n        local: "...)
	b = append(b, *r.Local...)
	return append(b, '\n'), nil
}

// directEntry writes w as encodeEntry(w, 2) does, or returns false where it would not.
func directEntry(w writeFile) ([]byte, bool) {
	if !plainScalar(w.Path) || !plainScalar(w.Owner) || !plainScalar(w.Encoding) || !plainScalar(w.Content) ||
		len(w.Permissions) != 4 || strings.Trim(w.Permissions, "01234567") != "" || w.Permissions[0] != '0' {
		return nil, false
	}
	var b bytes.Buffer
	b.Grow(len(w.Path) + len(w.Content) + 128)
	b.WriteString("  - path: ")
	b.WriteString(w.Path)
	b.WriteString("\n    permissions: \"")
	b.WriteString(w.Permissions)
	b.WriteString("\"\n    owner: ")
	b.WriteString(w.Owner)
	b.WriteString("\n    encoding: ")
	b.WriteString(w.Encoding)
	b.WriteString("\n    content: ")
	b.WriteString(w.Content)
	fmt.Fprintf(&b, "\n    defer: %v\n", w.Defer)
	return b.Bytes(), true
}

// plainScalar reports whether the YAML encoder (gopkg.in/yaml.v3) writes s unquoted: a
// conservative test passing only strings that start with a letter or '/', are made of
// letters, digits and "/+=.:_@-", do not end in ':' and are no YAML 1.1 boolean or null.
// What it refuses is encoded by the YAML encoder, so refusing too much costs only time.
func plainScalar(s string) bool {
	if s == "" || s[len(s)-1] == ':' {
		return false
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '/') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/+=.:_@-", c) >= 0) {
			return false
		}
	}
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "null":
		return false
	}
	return true
}

// marshalYAML encodes v with two-space indentation, struct fields in declaration order
// and multi-line strings as literal blocks, so node.bu reads like the files it carries.
// It encodes directly (sigs.k8s.io/yaml's JSON round trip costs several times more, and a
// 1000-node render writes 2000 of these documents).
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// octalMode is a file mode that node.bu shows in octal (mode: 0644), as people write it.
type octalMode uint32

// MarshalYAML writes the mode as a YAML 1.1 octal integer, which Butane reads as such.
func (m octalMode) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprintf("0%o", uint32(m))}, nil
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestCompression); return w }}

// encoded is how the views carry one file's content.
type encoded struct {
	// url is the data URL ignition.json carries; gzip tells whether it holds zipped.
	url    string
	gzip   bool
	zipped []byte
}

// encodeContent is Butane's own choice for a local file (base/util.MakeDataURL with
// automatic compression): the shortest of a URL-escaped data URL, a base64 one, and a
// base64 one of the content gzipped at best compression (counting the "gzip" it adds).
// The pooled compressor writes the same bytes Butane's fresh one does (no name, no
// time), so ignition.json is byte for byte what `butane --files-dir` makes of node.bu.
// Only the winner is built: the other two are compared by length (TestEncodeContent
// holds the result to MakeDataURL's).
func encodeContent(data []byte) encoded {
	const b64Prefix = ";base64,"
	escaped := 1 + escapedLen(data) // ",<escaped>"
	plainB64 := len(b64Prefix) + base64.StdEncoding.EncodedLen(len(data))
	best := min(escaped, plainB64)
	var b bytes.Buffer
	w := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(w)
	w.Reset(&b)
	// A bytes.Buffer cannot fail: neither can the compressor writing to it.
	if _, err := w.Write(data); err == nil && w.Close() == nil {
		if gz := len(b64Prefix) + base64.StdEncoding.EncodedLen(b.Len()); gz+len("gzip") < best {
			return encoded{url: "data:" + b64Prefix + base64.StdEncoding.EncodeToString(b.Bytes()), gzip: true, zipped: b.Bytes()}
		}
	}
	if plainB64 < escaped {
		return encoded{url: "data:" + b64Prefix + base64.StdEncoding.EncodeToString(data)}
	}
	return encoded{url: "data:," + dataurl.Escape(data)}
}

// escapedLen is len(dataurl.Escape(data)): three bytes ("%XX") for each byte RFC 2396
// does not leave unreserved.
func escapedLen(data []byte) int {
	n := len(data)
	for _, c := range data {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0) {
			n += 2
		}
	}
	return n
}
