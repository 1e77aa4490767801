package provision

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"sync"

	json "github.com/clarketm/json" // Butane's marshaler: it omits empty structs, as ignition.json always has

	"github.com/coreos/butane/config/common"
	fcos14 "github.com/coreos/butane/config/fcos/v1_4"
	fcos17 "github.com/coreos/butane/config/fcos/v1_7"
	flatcar11 "github.com/coreos/butane/config/flatcar/v1_1"
	"github.com/coreos/vcontext/report"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// Cache shares, between the nodes of one render, the view work on files that several
// nodes carry with the same path, mode and content (the CA, the shared scripts, the
// routes table): each such file is encoded (data URL, gzip), written into node.bu and
// user-data, and translated by Butane once, and every node's view reuses the result.
// Files only one node carries are not kept. A nil *Cache shares nothing.
//
// What a node's views hold never depends on the cache: a view assembled from shared
// entries is byte for byte the view made alone (TestCacheEqualsAlone), because every
// entry is translated, encoded and compressed on its own, exactly as in a whole
// document: Butane translates storage.files entry by entry, JSON and YAML indent by
// nesting only.
type Cache struct {
	recurring map[fileKey]bool

	mu      sync.Mutex
	encoded map[[32]byte]encoded
	bu, ud  map[entryKey][]byte
	ign     map[entryKey]reflect.Value
	shapes  map[string]reflect.Value // translated batches by shape (see shapeOf)
	// shapeHits counts the translations taken from another batch of the same shape.
	shapeHits int
	parts     map[string][]byte // see once
}

// fileKey identifies a file as views carry it.
type fileKey struct {
	path string
	mode fs.FileMode
	sum  [32]byte
}

// entryKey is a file as one Butane target carries it.
type entryKey struct {
	fileKey
	target string
}

// NewCache prepares a cache for the given nodes' rootfs files: it remembers which files
// more than one node carries.
func NewCache(nodes []*bundle.Node) *Cache {
	count := map[fileKey]int{}
	for _, n := range nodes {
		for _, f := range n.Rootfs {
			if f.Binary || f.Pending != "" {
				continue
			}
			count[keyOf(f)]++
		}
	}
	c := &Cache{recurring: map[fileKey]bool{}, encoded: map[[32]byte]encoded{},
		bu: map[entryKey][]byte{}, ud: map[entryKey][]byte{}, ign: map[entryKey]reflect.Value{},
		shapes: map[string]reflect.Value{}, parts: map[string][]byte{}}
	for k, n := range count {
		if n > 1 {
			c.recurring[k] = true
		}
	}
	return c
}

func keyOf(f bundle.File) fileKey {
	return fileKey{path: f.Path, mode: f.Mode.Perm(), sum: sha256.Sum256(f.Data)}
}

// shared reports whether the cache keeps work on a file.
func (c *Cache) shared(k fileKey) bool { return c != nil && c.recurring[k] }

// encode is encodeContent(data), once per shared content.
func (c *Cache) encode(k fileKey, data []byte) encoded {
	if !c.shared(k) {
		return encodeContent(data)
	}
	c.mu.Lock()
	r, ok := c.encoded[k.sum]
	c.mu.Unlock()
	if !ok {
		r = encodeContent(data)
		c.mu.Lock()
		c.encoded[k.sum] = r
		c.mu.Unlock()
	}
	return r
}

// once returns mk(), made once per key and render: for parts of the views alike nodes
// share (node.bu's head, user-data's runcmd for the same units). The result is shared:
// callers only copy it.
func (c *Cache) once(key string, mk func() ([]byte, error)) ([]byte, error) {
	if c == nil {
		return mk()
	}
	return memo(&c.mu, c.parts, key, mk)
}

// fragment returns the YAML of one list entry (see encodeEntry) of node.bu, or of
// user-data when ud is set: kept once per shared file.
func (c *Cache) fragment(ud bool, k entryKey, encode func() ([]byte, error)) ([]byte, error) {
	if !c.shared(k.fileKey) {
		return encode()
	}
	m := c.bu
	if ud {
		m = c.ud
	}
	return memo(&c.mu, m, k, encode)
}

// memo returns m[k], made by mk and kept in m the first time (m guarded by mu; two
// nodes asking at once may both make it, alike).
func memo[K comparable](mu *sync.Mutex, m map[K][]byte, k K, mk func() ([]byte, error)) ([]byte, error) {
	mu.Lock()
	y, ok := m[k]
	mu.Unlock()
	if ok {
		return y, nil
	}
	y, err := mk()
	if err == nil {
		mu.Lock()
		m[k] = y
		mu.Unlock()
	}
	return y, err
}

// encodeEntry is the YAML of v as an entry of a block sequence indented by indent spaces:
// the document "- <v>", shifted right. yaml.v3 indents by nesting only and never folds
// lines, so this is byte for byte what v encodes to inside the whole document. Empty
// lines (inside literal blocks) stay empty, as the encoder writes them.
func encodeEntry(v any, indent int) ([]byte, error) {
	y, err := marshalYAML([]any{v})
	if err != nil {
		return nil, err
	}
	pad := strings.Repeat(" ", indent)
	var b bytes.Buffer
	b.Grow(len(y) + 16*indent)
	for line := range bytes.SplitAfterSeq(y, []byte("\n")) {
		if len(line) > 1 {
			b.WriteString(pad)
		}
		b.Write(line)
	}
	return b.Bytes(), nil
}

// translator runs Butane on a config built as Go values (no YAML in between) for one
// target, and returns the Ignition config it translates to.
type translator func(bu buConfig) (any, report.Report, error)

// translators are the Butane configs of each target: the same struct values Butane's own
// parser would build from node.bu.
var translators = map[string]translator{
	"fcos/1.4.0": func(bu buConfig) (any, report.Report, error) {
		var cfg fcos14.Config
		if err := toButane(bu, &cfg); err != nil {
			return nil, report.Report{}, err
		}
		return cfg.ToIgn3_3(translateOptions)
	},
	"flatcar/1.1.0": func(bu buConfig) (any, report.Report, error) {
		var cfg flatcar11.Config
		if err := toButane(bu, &cfg); err != nil {
			return nil, report.Report{}, err
		}
		return cfg.ToIgn3_4(translateOptions)
	},
	"fcos/1.7.0": func(bu buConfig) (any, report.Report, error) {
		var cfg fcos17.Config
		if err := toButane(bu, &cfg); err != nil {
			return nil, report.Report{}, err
		}
		return cfg.ToIgn3_6(translateOptions)
	},
}

// translateOptions: the contents are data URLs already (encodeContent), as Butane makes
// them of node.bu's local files.
var translateOptions = common.TranslateOptions{NoResourceAutoCompression: true}

// toButane fills a Butane config (any variant: they share field names) from ours.
func toButane(bu buConfig, dst any) error {
	return copyFields(reflect.ValueOf(dst).Elem(), reflect.ValueOf(bu))
}

// copyFields copies src into dst by field name, as Butane's YAML parser would fill dst
// from src's YAML: a nil pointer or empty string of ours is an absent key, so it stays
// nil; pointers are created as needed; octalMode becomes *int.
func copyFields(dst, src reflect.Value) error {
	present := false // a pointer of ours that is set: an explicit key, even if empty
	for src.Kind() == reflect.Pointer {
		if src.IsNil() {
			return nil
		}
		src, present = src.Elem(), true
	}
	if !dst.IsValid() {
		return fmt.Errorf("provision: Butane has no field for our %s", src.Type())
	}
	if dst.Kind() == reflect.Pointer {
		if !present && src.Kind() == reflect.String && src.String() == "" {
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		dst = dst.Elem()
	}
	switch src.Kind() {
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			if err := copyFields(dst.FieldByName(src.Type().Field(i).Name), src.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", src.Type().Field(i).Name, err)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			if err := copyFields(s.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.String:
		dst.SetString(src.String())
	case reflect.Bool:
		dst.SetBool(src.Bool())
	case reflect.Uint32:
		dst.SetInt(int64(src.Uint()))
	default:
		return fmt.Errorf("provision: no Butane field for a %s", src.Kind())
	}
	return nil
}

// translateNode is the node's Ignition config: Butane translates, in one call, the
// node's units, its remote files and the files not translated yet; shared files come
// from the cache. keys[i] identifies files[i].
func (c *Cache) translateNode(tgt target, bu buConfig, keys []entryKey, nFiles int) ([]byte, error) {
	tr, ok := translators[tgt.variant+"/"+tgt.version]
	if !ok {
		return nil, fmt.Errorf("no Butane translator for %s %s", tgt.variant, tgt.version)
	}
	var all []buFile
	if bu.Storage != nil {
		all = bu.Storage.Files
	}
	cached := make([]reflect.Value, nFiles)
	var todo []buFile
	if c != nil {
		c.mu.Lock()
		for i := 0; i < nFiles; i++ {
			if c.shared(keys[i].fileKey) {
				cached[i] = c.ign[keys[i]]
			}
		}
		c.mu.Unlock()
	}
	for i, f := range all {
		if i >= nFiles || !cached[i].IsValid() {
			todo = append(todo, f)
		}
	}
	batch := bu
	if bu.Storage != nil {
		batch.Storage = &buStorage{Files: todo}
		if len(todo) == 0 {
			batch.Storage = nil
		}
	}
	ign, err := c.translateBatch(tr, batch)
	if err != nil {
		return nil, err
	}
	out := reflect.New(ign.Type()).Elem()
	out.Set(ign)
	if len(all) > 0 {
		got := out.FieldByName("Storage").FieldByName("Files")
		if got.Len() != len(todo) {
			return nil, fmt.Errorf("butane translated %d of %d files", got.Len(), len(todo))
		}
		files := reflect.MakeSlice(got.Type(), 0, len(all))
		next := 0
		for i := range all {
			if i < nFiles && cached[i].IsValid() {
				files = reflect.Append(files, cached[i])
				continue
			}
			v := got.Index(next)
			next++
			files = reflect.Append(files, v)
			if i < nFiles && c.shared(keys[i].fileKey) {
				c.mu.Lock()
				c.ign[keys[i]] = v
				c.mu.Unlock()
			}
		}
		out.FieldByName("Storage").FieldByName("Files").Set(files)
	}
	// Compact, as the butane command writes it without --pretty: the contents are data
	// URLs either way, read through verify and diff.
	data, err := json.Marshal(out.Interface())
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// translateBatch is Butane's translation of batch. Nodes alike in all but their files'
// contents (the workers of a cluster) share one translation: Butane translates each
// file's data URL verbatim (the contents are encoded before translation, see
// translateOptions) and checks nothing else of it that depends on the content, so the
// batch is translated once per shape (shapeOf) and every other batch of that shape gets
// the translation with its own data URLs put in. TestCacheEqualsAlone holds every view
// to Butane's own translation of node.bu.
func (c *Cache) translateBatch(tr translator, batch buConfig) (reflect.Value, error) {
	shape, ok := shapeOf(batch)
	if c != nil && ok {
		c.mu.Lock()
		t, hit := c.shapes[shape]
		if hit {
			c.shapeHits++
		}
		c.mu.Unlock()
		if hit {
			return withSources(t, batch)
		}
	}
	ign, rpt, err := tr(batch)
	if err != nil {
		if len(rpt.Entries) > 0 {
			return reflect.Value{}, fmt.Errorf("%w:\n%s", err, strings.TrimSpace(rpt.String()))
		}
		return reflect.Value{}, err
	}
	if len(rpt.Entries) > 0 {
		return reflect.Value{}, fmt.Errorf("butane reported:\n%s", strings.TrimSpace(rpt.String()))
	}
	v := reflect.ValueOf(&ign).Elem().Elem()
	if c != nil && ok {
		c.mu.Lock()
		c.shapes[shape] = v
		c.mu.Unlock()
	}
	return v, nil
}

// shapeOf is batch with each data URL left out (every other field kept, with the URL's
// compression), and false for a batch it cannot write (a file without a source).
func shapeOf(batch buConfig) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00", batch.Variant, batch.Version)
	if batch.Storage != nil {
		for _, f := range batch.Storage.Files {
			r := f.Contents
			if r.Source == nil || r.Local != nil {
				return "", false
			}
			src := *r.Source
			if strings.HasPrefix(src, "data:") {
				src = "data:"
			}
			comp, hash := "<nil>", "<nil>"
			if r.Compression != nil {
				comp = *r.Compression
			}
			if r.Verification != nil {
				hash = r.Verification.Hash
			}
			fmt.Fprintf(&b, "f\x00%s\x00%o\x00%v\x00%s\x00%s\x00%s\x00", f.Path, uint32(f.Mode), f.Overwrite, src, comp, hash)
		}
	}
	if batch.Systemd != nil {
		for _, u := range batch.Systemd.Units {
			fmt.Fprintf(&b, "u\x00%s\x00%v\x00", u.Name, u.Enabled)
		}
	}
	return b.String(), true
}

// withSources is the translation t of a batch of the same shape as batch, with batch's
// data URLs: the files are copies (everything else of t is shared, and only read).
func withSources(t reflect.Value, batch buConfig) (reflect.Value, error) {
	out := reflect.New(t.Type()).Elem()
	out.Set(t)
	if batch.Storage == nil {
		return out, nil
	}
	src := out.FieldByName("Storage").FieldByName("Files")
	if src.Len() != len(batch.Storage.Files) {
		return reflect.Value{}, fmt.Errorf("butane translated %d of %d files", src.Len(), len(batch.Storage.Files))
	}
	files := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
	for i, f := range batch.Storage.Files {
		files.Index(i).Set(src.Index(i))
		if strings.HasPrefix(*f.Contents.Source, "data:") {
			url := *f.Contents.Source
			files.Index(i).FieldByName("Contents").FieldByName("Source").Set(reflect.ValueOf(&url))
		}
	}
	out.FieldByName("Storage").FieldByName("Files").Set(files)
	return out, nil
}
