package provision

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/vincent-petithory/dataurl"
	"gopkg.in/yaml.v3"
)

// Decoded is a provisioning view read back into the files it writes and the units it
// enables: the inverse of Views, for the tools that check and compare views (verify,
// diff). It accepts any config of the formats, not only what Views writes, and records
// what a view should not do (append, define units itself, fetch content) as Problems.
type Decoded struct {
	// Files maps each path the view writes to its mode and content.
	Files map[string]DecodedFile
	// Units lists the units the view enables, in order.
	Units []string
	// Omitted lists the secrets the header comment of node.bu or user-data says are left
	// out; HasOmittedHeader tells whether there was such a comment.
	Omitted          []string
	HasOmittedHeader bool
	// Tables lists the cluster tables (files that list the nodes) the header says are
	// left out.
	Tables []string
	// Archives lists the image archives the header says are left out.
	Archives []string
	// Binaries lists the carried binaries the header says are left out.
	Binaries []string
	// Remote are the files the view fetches by URL (Ignition's remote files), each with
	// the hash it must have; a remote file without a hash is a Problem instead.
	Remote []DecodedRemote
	// Problems found while decoding, one message each.
	Problems []string

	read func(local string) ([]byte, bool)
	dec  *Decoder
}

// DecodedRemote is one file a view fetches.
type DecodedRemote struct {
	Path string
	Mode fs.FileMode
	// URL is the source; Hash the verification hash as written ("sha512-<hex>").
	URL, Hash string
}

// DecodedFile is one file a view writes.
type DecodedFile struct {
	Mode fs.FileMode
	Data []byte
	// Local is the file node.bu reads the content from (relative to the node directory)
	// when Decode was given no way to read it; Data is then nil.
	Local string
}

// Decode reads the view named name (ButaneFile, IgnitionFile or UserDataFile). An error
// means the view cannot be read at all; anything wrong with single entries is a Problem.
// node.bu's local files are not read: each such file has Local set instead of Data.
func Decode(name string, data []byte) (*Decoded, error) { return DecodeIn(name, data, nil) }

// DecodeIn is Decode reading node.bu's local files with read (a path relative to the
// node directory; false if there is no such file).
func DecodeIn(name string, data []byte, read func(local string) ([]byte, bool)) (*Decoded, error) {
	return (*Decoder)(nil).DecodeIn(name, data, read)
}

// A Decoder decodes views as Decode does, each distinct encoded content once: the views
// of a bundle carry the same files on every node (the routes table, units, scripts, the
// CA certificate), and verify and diff decode the views of every node (at 1,000 nodes,
// 2,000 views of about 23 files each, mostly gzip streams). The memo is keyed by the
// encoded content and its encoding, so a content decodes, or fails to, exactly as it
// would alone. Data in what it returns may be shared between views: read it only. Safe
// for concurrent use; the zero value is ready, and a nil *Decoder keeps no memo.
type Decoder struct {
	memo sync.Map // contentKey → decodedContent
}

// contentKey is an encoded content as a view carries it: how (an Ignition or Butane
// source with its compression, or a cloud-init encoding) and the encoded text.
type contentKey struct {
	kind, encoding, text string
}

type decodedContent struct {
	data []byte
	err  error
}

// content returns decode's result for k, from the memo when k was decoded before.
func (d *Decoder) content(k contentKey, decode func() ([]byte, error)) ([]byte, error) {
	if d == nil {
		return decode()
	}
	if c, ok := d.memo.Load(k); ok {
		c := c.(decodedContent)
		return c.data, c.err
	}
	data, err := decode()
	d.memo.Store(k, decodedContent{data: data, err: err})
	return data, err
}

// Decode is Decode with d's memo.
func (d *Decoder) Decode(name string, data []byte) (*Decoded, error) {
	return d.DecodeIn(name, data, nil)
}

// DecodeIn is DecodeIn with d's memo.
func (d *Decoder) DecodeIn(name string, data []byte, read func(local string) ([]byte, bool)) (*Decoded, error) {
	v := d.decoded(data, read)
	switch name {
	case IgnitionFile:
		return v, readIgnition(v, data)
	case ButaneFile:
		return v, readButane(v, yamlOf(data))
	case UserDataFile:
		return v, readUserData(v, data, yamlOf(data))
	}
	return nil, fmt.Errorf("%s is not a provisioning view", name)
}

// DecodeDirectives is Decode and Directives of one view, parsing a YAML view (node.bu,
// user-data) once for both. Where the view decodes but its directives cannot be read
// (say a merge key whose value is no mapping, under a key Decode does not read), that
// is the error: a view is read whole or not at all.
func (d *Decoder) DecodeDirectives(name string, data []byte) (*Decoded, []string, error) {
	var unmarshal func(any) error
	switch name {
	case IgnitionFile:
		v, err := d.Decode(name, data)
		if err != nil {
			return v, nil, err
		}
		dirs, err := Directives(name, data)
		if err != nil {
			return v, nil, fmt.Errorf("reading its directives: %w", err)
		}
		return v, dirs, nil
	case ButaneFile, UserDataFile:
		var node yaml.Node
		var parsed bool
		var parseErr error
		unmarshal = func(out any) error {
			if !parsed {
				parsed, parseErr = true, yaml.Unmarshal(data, &node)
			}
			if parseErr != nil {
				return parseErr
			}
			return node.Decode(out)
		}
	default:
		return nil, nil, fmt.Errorf("%s is not a provisioning view", name)
	}
	v := d.decoded(data, nil)
	var err error
	if name == ButaneFile {
		err = readButane(v, unmarshal)
	} else {
		err = readUserData(v, data, unmarshal)
	}
	if err != nil {
		return v, nil, err
	}
	var doc any
	if err := unmarshal(&doc); err != nil {
		return v, nil, fmt.Errorf("reading its directives: %w", err)
	}
	return v, directivesOf(data, doc), nil
}

// decoded starts the Decoded of view data: its header's lists.
func (d *Decoder) decoded(data []byte, read func(local string) ([]byte, bool)) *Decoded {
	v := &Decoded{Files: map[string]DecodedFile{}, read: read, dec: d}
	v.Omitted, v.HasOmittedHeader = omittedHeader(data, strings.TrimSuffix(omittedPrefix, ": "))
	v.Tables, _ = omittedHeader(data, strings.TrimSuffix(omittedTablesPrefix, ": "))
	v.Archives, _ = omittedHeader(data, strings.TrimSuffix(omittedImagesPrefix, ": "))
	v.Binaries, _ = omittedHeader(data, strings.TrimSuffix(omittedBinariesPrefix, ": "))
	return v
}

// yamlOf decodes data into a value, as yaml.Unmarshal does.
func yamlOf(data []byte) func(any) error {
	return func(out any) error { return yaml.Unmarshal(data, out) }
}

func (v *Decoded) problemf(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// add records a file the view writes, reporting a path written twice.
func (v *Decoded) add(p string, mode fs.FileMode, data []byte) {
	v.addFile(p, DecodedFile{Mode: mode, Data: data})
}

func (v *Decoded) addFile(p string, f DecodedFile) {
	if _, dup := v.Files[p]; dup {
		v.problemf("writes %s twice", p)
	}
	v.Files[p] = f
}

// headerLines returns the lines at the head of data that start with '#' (a YAML view's
// header comments), reading no further: views are tens of kilobytes, their headers a few
// lines.
func headerLines(data []byte) []string {
	var out []string
	for len(data) > 0 && data[0] == '#' {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		out = append(out, string(line))
		data = rest
	}
	return out
}

// omittedHeader reads a "# omitted …: <paths>" comment from the head of a YAML view.
func omittedHeader(data []byte, marker string) ([]string, bool) {
	for _, line := range headerLines(data) {
		if strings.HasPrefix(line, marker) {
			_, list, _ := strings.Cut(line, ": ")
			return strings.Fields(list), true
		}
	}
	return nil, false
}

// parseOctal parses a cloud-init permissions string such as "0644".
func parseOctal(s string) (fs.FileMode, error) {
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil {
		return 0, fmt.Errorf("permissions %q are not octal", s)
	}
	return fs.FileMode(m), nil
}

// decodedIgnition is the part of an Ignition config (spec 3.x) Decode reads.
type decodedIgnition struct {
	Ignition struct {
		Version string `json:"version"`
	} `json:"ignition"`
	Storage struct {
		Files []struct {
			Path     string           `json:"path"`
			Mode     *int             `json:"mode"`
			Contents ignitionSource   `json:"contents"`
			Append   []ignitionSource `json:"append"`
		} `json:"files"`
	} `json:"storage"`
	Systemd struct {
		Units []struct {
			Name     string  `json:"name"`
			Enabled  *bool   `json:"enabled"`
			Contents *string `json:"contents"`
		} `json:"units"`
	} `json:"systemd"`
}

type ignitionSource struct {
	Source       *string `json:"source"`
	Compression  *string `json:"compression"`
	Verification struct {
		Hash *string `json:"hash" yaml:"hash"`
	} `json:"verification" yaml:"verification"`
}

// remote records a file fetched by URL and reports whether source is such a URL: only
// with a verification hash is that acceptable (the bundle pins what it fetches).
func (v *Decoded) remote(p string, mode *int, source, compression, hash *string) bool {
	if source == nil || !(strings.HasPrefix(*source, "https://") || strings.HasPrefix(*source, "http://")) {
		return false
	}
	switch {
	case hash == nil || *hash == "":
		v.problemf("%s: fetches its content from %q without a verification hash", p, *source)
	case compression != nil && *compression != "":
		v.problemf("%s: fetches %q with compression %q; pinned downloads are verified as fetched", p, *source, *compression)
	default:
		m := 0o644
		if mode != nil {
			m = *mode
		}
		v.Remote = append(v.Remote, DecodedRemote{Path: p, Mode: fs.FileMode(m), URL: *source, Hash: *hash})
	}
	return true
}

func readIgnition(v *Decoded, data []byte) error {
	var cfg decodedIgnition
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	if !strings.HasPrefix(cfg.Ignition.Version, "3.") {
		return fmt.Errorf("ignition.version %q is not a 3.x spec", cfg.Ignition.Version)
	}
	for _, f := range cfg.Storage.Files {
		if len(f.Append) > 0 {
			v.problemf("appends to %s: views write whole files", f.Path)
		}
		if v.remote(f.Path, f.Mode, f.Contents.Source, f.Contents.Compression, f.Contents.Verification.Hash) {
			continue
		}
		content, err := v.source(f.Contents.Source, f.Contents.Compression, "")
		if err != nil {
			v.problemf("%s: %v", f.Path, err)
			continue
		}
		mode := 0o644 // Ignition's default
		if f.Mode != nil {
			mode = *f.Mode
		}
		v.add(f.Path, fs.FileMode(mode), content)
	}
	for _, u := range cfg.Systemd.Units {
		if u.Contents != nil {
			v.problemf("defines unit %s itself: views only enable the units rootfs defines", u.Name)
		}
		if u.Enabled != nil && *u.Enabled {
			v.Units = append(v.Units, u.Name)
		}
	}
	return nil
}

// source is decodeSource through the Decoder's memo.
func (v *Decoded) source(source, compression *string, inline string) ([]byte, error) {
	if source == nil {
		return []byte(inline), nil
	}
	k := contentKey{kind: "source", text: *source}
	if compression != nil {
		// "" and no compression decode alike, but the key keeps them apart anyway.
		k.encoding = "compression:" + *compression
	}
	return v.dec.content(k, func() ([]byte, error) { return decodeSource(source, compression, inline) })
}

// decodeSource decodes an Ignition or Butane contents source: a data URL, optionally
// gzip-compressed. Other URLs would fetch content the bundle does not hold.
func decodeSource(source, compression *string, inline string) ([]byte, error) {
	if source == nil {
		return []byte(inline), nil
	}
	if !strings.HasPrefix(*source, "data:") {
		return nil, fmt.Errorf("fetches its content from %q; views carry every file inline", *source)
	}
	du, err := dataurl.DecodeString(*source)
	if err != nil {
		return nil, fmt.Errorf("bad data URL: %v", err)
	}
	out := du.Data
	if compression != nil && *compression != "" {
		if *compression != "gzip" {
			return nil, fmt.Errorf("unknown compression %q", *compression)
		}
		if out, err = gunzip(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gzipReaders holds gzip readers for reuse: each new one allocates a 32 KiB window, and
// verify and diff of a large bundle decode tens of thousands of small gzip streams.
var gzipReaders sync.Pool // *gzip.Reader

func gunzip(data []byte) ([]byte, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr != nil {
		err = zr.Reset(bytes.NewReader(data)) // what gzip.NewReader does, on a used reader
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	defer gzipReaders.Put(zr)
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	return out, nil
}

// decodedButane is the part of a Butane config Decode reads.
type decodedButane struct {
	Variant string `json:"variant" yaml:"variant"`
	Version string `json:"version" yaml:"version"`
	Storage struct {
		Files []struct {
			Path     string `json:"path" yaml:"path"`
			Mode     *int   `json:"mode" yaml:"mode"`
			Contents struct {
				Inline       *string `json:"inline" yaml:"inline"`
				Source       *string `json:"source" yaml:"source"`
				Local        *string `json:"local" yaml:"local"`
				Compression  *string `json:"compression" yaml:"compression"`
				Verification struct {
					Hash *string `json:"hash" yaml:"hash"`
				} `json:"verification" yaml:"verification"`
			} `json:"contents" yaml:"contents"`
		} `json:"files" yaml:"files"`
	} `json:"storage" yaml:"storage"`
	Systemd struct {
		Units []struct {
			Name     string  `json:"name" yaml:"name"`
			Enabled  *bool   `json:"enabled" yaml:"enabled"`
			Contents *string `json:"contents" yaml:"contents"`
		} `json:"units" yaml:"units"`
	} `json:"systemd" yaml:"systemd"`
}

func readButane(v *Decoded, unmarshal func(any) error) error {
	var cfg decodedButane
	if err := unmarshal(&cfg); err != nil {
		return err
	}
	if cfg.Variant == "" || cfg.Version == "" {
		return fmt.Errorf("no variant and version")
	}
	for _, f := range cfg.Storage.Files {
		c := f.Contents
		mode := 0o644
		if f.Mode != nil {
			mode = *f.Mode
		}
		if c.Local != nil {
			switch {
			case *c.Local != localOf(f.Path):
				v.problemf("%s: reads local file %s; node.bu reads each file from %s at its own path (%s)", f.Path, *c.Local, LocalDir+"/", localOf(f.Path))
			case c.Compression != nil && *c.Compression != "":
				v.problemf("%s: reads local file %s as %s-compressed; rootfs/ holds files as they are", f.Path, *c.Local, *c.Compression)
			case v.read == nil:
				v.addFile(f.Path, DecodedFile{Mode: fs.FileMode(mode), Local: *c.Local})
			default:
				data, ok := v.read(*c.Local)
				if !ok {
					v.problemf("%s: reads local file %s, which the node directory does not hold", f.Path, *c.Local)
					continue
				}
				v.add(f.Path, fs.FileMode(mode), data)
			}
			continue
		}
		if v.remote(f.Path, f.Mode, c.Source, c.Compression, c.Verification.Hash) {
			continue
		}
		inline := ""
		if c.Inline != nil {
			inline = *c.Inline
		}
		content, err := v.source(c.Source, c.Compression, inline)
		if err != nil {
			v.problemf("%s: %v", f.Path, err)
			continue
		}
		v.add(f.Path, fs.FileMode(mode), content)
	}
	for _, u := range cfg.Systemd.Units {
		if u.Contents != nil {
			v.problemf("defines unit %s itself: views only enable the units rootfs defines", u.Name)
		}
		if u.Enabled != nil && *u.Enabled {
			v.Units = append(v.Units, u.Name)
		}
	}
	return nil
}

// decodedCloudConfig is the part of a #cloud-config Decode reads.
type decodedCloudConfig struct {
	WriteFiles []struct {
		Path        string `json:"path" yaml:"path"`
		Permissions string `json:"permissions" yaml:"permissions"`
		Encoding    string `json:"encoding" yaml:"encoding"`
		Content     string `json:"content" yaml:"content"`
		Append      bool   `json:"append" yaml:"append"`
	} `json:"write_files" yaml:"write_files"`
	RunCmd []any `json:"runcmd" yaml:"runcmd"`
}

func readUserData(v *Decoded, data []byte, unmarshal func(any) error) error {
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		return fmt.Errorf("does not start with #cloud-config")
	}
	var cfg decodedCloudConfig
	if err := unmarshal(&cfg); err != nil {
		return err
	}
	for _, f := range cfg.WriteFiles {
		if f.Append {
			v.problemf("appends to %s: views write whole files", f.Path)
		}
		mode := fs.FileMode(0o644) // cloud-init's default
		if f.Permissions != "" {
			m, err := parseOctal(f.Permissions)
			if err != nil {
				v.problemf("%s: %v", f.Path, err)
				continue
			}
			mode = m
		}
		content, err := v.dec.content(contentKey{kind: "cloud-init", encoding: f.Encoding, text: f.Content}, func() ([]byte, error) {
			return decodeCloudInit(f.Encoding, f.Content)
		})
		if err != nil {
			v.problemf("%s: %v", f.Path, err)
			continue
		}
		v.add(f.Path, mode, content)
	}
	// runcmd: "systemctl enable [--now] <unit>", as a list or a shell string.
	for _, c := range cfg.RunCmd {
		var args []string
		switch t := c.(type) {
		case string:
			args = strings.Fields(t)
		case []any:
			for _, a := range t {
				args = append(args, fmt.Sprint(a))
			}
		}
		if len(args) >= 3 && args[0] == "systemctl" && args[1] == "enable" {
			for _, a := range args[2:] {
				if !strings.HasPrefix(a, "-") {
					v.Units = append(v.Units, a)
				}
			}
		}
	}
	return nil
}

// decodeCloudInit decodes a write_files content in the given encoding.
func decodeCloudInit(encoding, content string) ([]byte, error) {
	switch encoding {
	case "", "text/plain":
		return []byte(content), nil
	case "b64", "base64":
		return base64.StdEncoding.DecodeString(content)
	case "gz+b64", "gzip+base64", "gz+base64", "gzip+b64":
		data, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, err
		}
		return gunzip(data)
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}
