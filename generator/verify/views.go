package verify

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/vincent-petithory/dataurl"
	yaml3 "gopkg.in/yaml.v3"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/provision"
)

// viewNames are the provisioning views render writes beside each node's rootfs/.
var viewNames = []string{provision.ButaneFile, provision.IgnitionFile, provision.UserDataFile}

func isView(name string) bool { return slices.Contains(viewNames, name) }

// Comments at the head of node.bu and user-data that list what the views leave out
// (provision.Views): secrets, and image archives (under paths.ImagesDir).
const (
	omittedSecretsMarker  = "# omitted secrets"
	omittedArchivesMarker = "# omitted image archives"
)

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
	// archives lists the image archives the header says are left out.
	archives []string
	// problems found while decoding, reported against rel.
	problems []string
}

func (v *view) problemf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

type viewFile struct {
	mode fs.FileMode
	data []byte
}

// add records a file the view writes, reporting a path written twice.
func (v *view) add(p string, mode fs.FileMode, data []byte) {
	if _, dup := v.files[p]; dup {
		v.problemf("writes %s twice", p)
	}
	v.files[p] = viewFile{mode: mode, data: data}
}

// checkViews decodes each node's Ignition, Butane and cloud-init configs and compares
// them with its rootfs: the same paths, modes and contents (less the secrets the header
// says are omitted), the same units, and modes that fit the secrets they carry.
func (b *checker) checkViews() {
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
	for _, n := range b.nodes {
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
		j.v, j.err = decodeView(j.name, j.f)
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
	for _, n := range b.nodes {
		b.compareViews(n, views[n])
	}
}

// decodeView decodes one provisioning view.
func decodeView(name string, f *file) (*view, error) {
	v := &view{rel: f.rel, files: map[string]viewFile{}}
	v.omitted, v.hasHeader = omittedHeader(f.data, omittedSecretsMarker)
	v.archives, _ = omittedHeader(f.data, omittedArchivesMarker)
	var err error
	switch name {
	case provision.IgnitionFile:
		err = decodeIgnition(v, f.data)
	case provision.ButaneFile:
		err = decodeButane(v, f.data)
	case provision.UserDataFile:
		err = decodeUserData(v, f.data)
	}
	return v, err
}

// omittedHeader reads a "# omitted …: <paths>" comment from the head of a YAML view.
func omittedHeader(data []byte, marker string) ([]string, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if strings.HasPrefix(line, marker) {
			_, list, _ := strings.Cut(line, ": ")
			return strings.Fields(list), true
		}
	}
	return nil, false
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
	if ud != nil && bu != nil && !slices.Equal(ud.archives, bu.archives) {
		b.problemf(bu.rel, "lists other omitted image archives than %s", ud.rel)
	}
	omit := map[string]bool{}
	if from != nil {
		for _, p := range from.archives {
			omit[p] = true
			switch {
			case n.file(p) == nil:
				b.problemf(from.rel, "lists %s as an omitted image archive, but rootfs has no such file", p)
			case !under(p, paths.ImagesDir):
				b.problemf(from.rel, "omits %s as an image archive, but archives live in %s: the node would not get it", p, paths.ImagesDir)
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
				if n.units[u].base != "" && !slices.Contains(v.units, u) {
					b.problemf(v.rel, "does not enable %s, which rootfs defines", u)
				}
			}
		} else if !slices.Equal(v.units, firstUnits.units) {
			b.problemf(v.rel, "enables %s, but %s enables %s", listOrNone(v.units), firstUnits.rel, listOrNone(firstUnits.units))
		}
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no units"
	}
	return strings.Join(s, " ")
}

// ignitionConfig is the part of an Ignition config (spec 3.x) verify reads.
type ignitionConfig struct {
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
	Source      *string `json:"source"`
	Compression *string `json:"compression"`
}

func decodeIgnition(v *view, data []byte) error {
	var cfg ignitionConfig
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
		content, err := decodeSource(f.Contents.Source, f.Contents.Compression, "")
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
			v.units = append(v.units, u.Name)
		}
	}
	return nil
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

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %v", err)
	}
	return out, nil
}

// butaneConfig is the part of a Butane config verify reads.
type butaneConfig struct {
	Variant string `json:"variant" yaml:"variant"`
	Version string `json:"version" yaml:"version"`
	Storage struct {
		Files []struct {
			Path     string `json:"path" yaml:"path"`
			Mode     *int   `json:"mode" yaml:"mode"`
			Contents struct {
				Inline      *string `json:"inline" yaml:"inline"`
				Source      *string `json:"source" yaml:"source"`
				Local       *string `json:"local" yaml:"local"`
				Compression *string `json:"compression" yaml:"compression"`
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

func decodeButane(v *view, data []byte) error {
	var cfg butaneConfig
	if err := yaml3.Unmarshal(data, &cfg); err != nil {
		return err
	}
	if cfg.Variant == "" || cfg.Version == "" {
		return fmt.Errorf("no variant and version")
	}
	for _, f := range cfg.Storage.Files {
		c := f.Contents
		if c.Local != nil {
			v.problemf("%s: reads local file %s where butane runs; views carry every file inline", f.Path, *c.Local)
			continue
		}
		inline := ""
		if c.Inline != nil {
			inline = *c.Inline
		}
		content, err := decodeSource(c.Source, c.Compression, inline)
		if err != nil {
			v.problemf("%s: %v", f.Path, err)
			continue
		}
		mode := 0o644
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
			v.units = append(v.units, u.Name)
		}
	}
	return nil
}

// cloudConfig is the part of a #cloud-config verify reads.
type cloudConfig struct {
	WriteFiles []struct {
		Path        string `json:"path" yaml:"path"`
		Permissions string `json:"permissions" yaml:"permissions"`
		Encoding    string `json:"encoding" yaml:"encoding"`
		Content     string `json:"content" yaml:"content"`
		Append      bool   `json:"append" yaml:"append"`
	} `json:"write_files" yaml:"write_files"`
	RunCmd []any `json:"runcmd" yaml:"runcmd"`
}

func decodeUserData(v *view, data []byte) error {
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		return fmt.Errorf("does not start with #cloud-config")
	}
	var cfg cloudConfig
	if err := yaml3.Unmarshal(data, &cfg); err != nil {
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
		content := []byte(f.Content)
		var err error
		switch f.Encoding {
		case "", "text/plain":
		case "b64", "base64":
			content, err = base64.StdEncoding.DecodeString(f.Content)
		case "gz+b64", "gzip+base64", "gz+base64", "gzip+b64":
			if content, err = base64.StdEncoding.DecodeString(f.Content); err == nil {
				content, err = gunzip(content)
			}
		default:
			err = fmt.Errorf("unknown encoding %q", f.Encoding)
		}
		if err != nil {
			v.problemf("%s: %v", f.Path, err)
			continue
		}
		v.add(f.Path, mode, content)
	}
	// runcmd: "systemctl enable --now <unit>", as a list or a shell string.
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
					v.units = append(v.units, a)
				}
			}
		}
	}
	return nil
}
