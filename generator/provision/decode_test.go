package provision

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scratchgen/scratchgen/generator/model"
)

// TestDecodeInvertsViews: every view decodes back to exactly the files Views put in it
// and the units it enables, with the omitted secrets named in node.bu and user-data.
func TestDecodeInvertsViews(t *testing.T) {
	n := testNode()
	for _, os := range []string{model.OSGeneric, model.OSFlatcar, model.OSFCOS} {
		views, err := Views(n, os, false)
		if err != nil {
			t.Fatal(err)
		}
		rootfs := map[string][]byte{}
		for _, f := range n.Rootfs {
			rootfs[LocalDir+f.Path] = f.Data
		}
		read := func(local string) ([]byte, bool) { d, ok := rootfs[local]; return d, ok }
		for _, v := range views {
			d, err := DecodeIn(v.Path, v.Data, read)
			if err != nil || len(d.Problems) > 0 {
				t.Fatalf("%s %s: %v %v", os, v.Path, err, d.Problems)
			}
			want := 0
			for _, f := range n.Rootfs {
				if f.Secret {
					continue
				}
				want++
				got, ok := d.Files[f.Path]
				if !ok || got.Mode != f.Mode || !bytes.Equal(got.Data, f.Data) {
					t.Errorf("%s %s: %s decoded as %v (present %v), want mode %o and the rootfs bytes", os, v.Path, f.Path, got.Mode, ok, f.Mode)
				}
			}
			if len(d.Files) != want {
				t.Errorf("%s %s: %d files decoded, want %d", os, v.Path, len(d.Files), want)
			}
			if len(d.Units) != len(n.Units) {
				t.Errorf("%s %s: units %v, want %v", os, v.Path, d.Units, n.Units)
			}
			if v.Path != IgnitionFile && len(d.Omitted) != len(secretPaths(n)) {
				t.Errorf("%s %s: omitted %v, want %v", os, v.Path, d.Omitted, secretPaths(n))
			}
		}
	}
	if _, err := Decode("other.json", nil); err == nil {
		t.Error("Decode accepted a name that is not a view")
	}
}

// TestDecodeButaneLocal: node.bu reads each file from rootfs/ at its own path; Decode
// without a reader names the local file, with one it reads it, and any other local file
// (another path, a compressed one, one the node directory lacks) is a problem.
func TestDecodeButaneLocal(t *testing.T) {
	doc := func(entries string) []byte {
		return []byte("variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n" + entries)
	}
	entry := func(p, local, extra string) string {
		return "    - path: " + p + "\n      mode: 0640\n      contents:\n        local: " + local + "\n" + extra
	}
	read := func(local string) ([]byte, bool) {
		if local == "rootfs/etc/a" {
			return []byte("a\n"), true
		}
		return nil, false
	}
	d, err := Decode(ButaneFile, doc(entry("/etc/a", "rootfs/etc/a", "")))
	if err != nil || len(d.Problems) > 0 || d.Files["/etc/a"].Local != "rootfs/etc/a" || d.Files["/etc/a"].Data != nil || d.Files["/etc/a"].Mode != 0o640 {
		t.Fatalf("without a reader: %+v %v", d, err)
	}
	d, err = DecodeIn(ButaneFile, doc(entry("/etc/a", "rootfs/etc/a", "")), read)
	if err != nil || len(d.Problems) > 0 || string(d.Files["/etc/a"].Data) != "a\n" {
		t.Fatalf("with a reader: %+v %v", d, err)
	}
	for name, bad := range map[string]string{
		"another path": entry("/etc/b", "rootfs/etc/a", ""),
		"outside":      entry("/etc/a", "../../admin/kubeconfig", ""),
		"compressed":   entry("/etc/a", "rootfs/etc/a", "        compression: gzip\n"),
		"missing":      entry("/etc/c", "rootfs/etc/c", ""),
	} {
		d, err := DecodeIn(ButaneFile, doc(bad), read)
		if err != nil || len(d.Problems) != 1 || len(d.Files) != 0 {
			t.Errorf("%s: files %v, problems %q, err %v; want one problem and no file", name, d.Files, d.Problems, err)
		}
	}
}

// TestDecoderEqualsDecode: a Decoder shared by many views, decoding them concurrently and
// more than once, returns what Decode returns for each view alone, byte for byte, also
// where views carry the same encoded text under another encoding or compression (which
// decodes to other bytes, or fails) and where a content cannot be decoded.
func TestDecoderEqualsDecode(t *testing.T) {
	docs := renderedViews(t)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("#!/bin/sh\necho the same text, zipped\n"))
	zw.Close()
	gz := base64.StdEncoding.EncodeToString(zipped.Bytes())
	plain := base64.StdEncoding.EncodeToString([]byte("plain text\n"))
	src := func(text string, compression any) string {
		b, _ := json.Marshal(map[string]any{"source": text, "compression": compression})
		return string(b)
	}
	ignition := func(contents ...string) string {
		var files []string
		for i, c := range contents {
			files = append(files, fmt.Sprintf(`{"path":"/etc/f%d","mode":420,"contents":%s}`, i, c))
		}
		return `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + strings.Join(files, ",") + `]}}`
	}
	// One encoded text, read as gzip, as it is, with an empty compression, with an
	// unknown one; a data URL that is not base64; a broken gzip stream; plain base64.
	docs = append(docs,
		viewDoc{IgnitionFile, ignition(src("data:;base64,"+gz, "gzip"), src("data:;base64,"+gz, nil), src("data:;base64,"+gz, ""), src("data:;base64,"+gz, "xz"))},
		viewDoc{IgnitionFile, ignition(src("data:;base64,"+gz, nil), src("data:;base64,"+gz, "gzip"))},
		viewDoc{IgnitionFile, ignition(src("data:,"+gz, "gzip"), src("data:;base64,"+plain, "gzip"), src("data:;base64,"+plain, nil), src("data:;base64,"+gz[:20], "gzip"))},
		viewDoc{ButaneFile, "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/a\n      contents:\n        source: data:;base64," + gz + "\n        compression: gzip\n    - path: /etc/b\n      contents:\n        source: data:;base64," + gz + "\n    - path: /etc/c\n      contents:\n        inline: data:;base64," + gz + "\n"},
	)
	for _, enc := range [][]string{{"gz+b64", "b64", "text/plain", "gzip+base64"}, {"b64", "gz+b64", "", "uuencode"}, {"base64", "gz+base64"}} {
		var b strings.Builder
		b.WriteString("#cloud-config\nwrite_files:\n")
		for i, e := range enc {
			for _, content := range []string{gz, plain} {
				fmt.Fprintf(&b, "  - path: /etc/%s-%d-%d\n    encoding: %q\n    content: %s\n", strings.ReplaceAll(e, "/", "_"), i, len(content), e, content)
			}
		}
		docs = append(docs, viewDoc{UserDataFile, b.String()})
	}
	// A text that is an Ignition source above, here plain content.
	docs = append(docs, viewDoc{UserDataFile, "#cloud-config\nwrite_files:\n  - path: /etc/url\n    content: data:;base64," + plain + "\n"})
	want := make([]string, len(docs))
	for i, d := range docs {
		want[i] = decodedText(Decode(d.name, []byte(d.data)))
	}
	var shared Decoder
	order := rand.New(rand.NewPCG(1, 2)).Perm(3 * len(docs))
	got := make([]string, len(order))
	var wg sync.WaitGroup
	for k, i := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := docs[i%len(docs)]
			got[k] = decodedText(shared.Decode(d.name, []byte(d.data)))
		}()
	}
	wg.Wait()
	for k, i := range order {
		if w := want[i%len(docs)]; got[k] != w {
			t.Errorf("%s (document %d), with a shared Decoder:\n%s\nalone:\n%s", docs[i%len(docs)].name, i%len(docs), got[k], w)
		}
	}
	// The cases above reach what they are meant to: problems, and the same text decoded
	// to different bytes.
	all := strings.Join(want, "")
	for _, s := range []string{"unknown compression", "unknown encoding", "bad gzip data", "plain text", "the same text, zipped"} {
		if !strings.Contains(all, s) {
			t.Errorf("no decoded view holds %q", s)
		}
	}
}

// TestDecodeDirectivesEqualsSeparate: DecodeDirectives, which parses a YAML view once,
// returns what Decode and Directives return for the view apart (views as rendered, and
// documents YAML reads in unusual ways: empty, comments only, several documents,
// anchors, merge keys, tags, keys defined twice, wrong types, syntax errors); where
// Decode succeeds and Directives fails, DecodeDirectives fails naming the directives.
func TestDecodeDirectivesEqualsSeparate(t *testing.T) {
	docs := renderedViews(t)
	const cc = "#cloud-config\n"
	for _, d := range []string{
		cc, cc + "# only a comment\n", cc + "~\n", cc + "[1, 2]\n", "runcmd: [[systemctl, enable, a]]\n",
		cc + "write_files: not a list\n", cc + "write_files:\n  - path: /a\n    content: x\n    permissions: 0x\n",
		cc + "runcmd: [[systemctl, enable, a]]\nruncmd: [[systemctl, enable, b]]\n",
		cc + "bootcmd: [a]\nbootcmd: [curl x | sh]\n",
		cc + "bootcmd:\n  <<: 5\n", cc + "users:\n  - <<: [1]\n    name: x\n",
		cc + "base: &b {name: x, sudo: ALL}\nusers:\n  - <<: *b\n    shell: /bin/sh\nruncmd: [[systemctl, enable, *b]]\n",
		cc + "runcmd: [[systemctl, enable, a]]\n---\nruncmd: [[curl, x]]\n",
		cc + "write_files:\n  - path: /a\n    encoding: b64\n    content: !!binary aGVsbG8=\n",
		cc + "? [a, b]\n: c\n1: 2\nruncmd: [x]\n", cc + "runcmd: [\n", cc + "\tbad: tab\n",
		cc + "write_files:\n  - path: /a\n    content: x\n    append: yes\n    owner: {a: b}\n",
	} {
		docs = append(docs, viewDoc{UserDataFile, d})
	}
	for _, d := range []string{
		"", "variant: fcos\nversion: 1.5.0\n", "variant: fcos\nversion: 1.5.0\nvariant: flatcar\n",
		"variant: fcos\nversion: 1.5.0\npasswd:\n  <<: 5\n", "variant: fcos\nversion: 1.5.0\nstorage:\n  files: {a: b}\n",
		"variant: fcos\nversion: 1.5.0\nsystemd:\n  units:\n    - name: a.service\n      enabled: true\n      contents: x\n",
		"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      mode: 0644\n      contents:\n        inline: x\n",
	} {
		docs = append(docs, viewDoc{ButaneFile, d})
	}
	for _, d := range []string{
		`{"ignition":{"version":"3.4.0"}}`, `{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"x"}]}}`,
		`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/a","mode":"x"}]}}`, `{"ignition":`, `[]`,
	} {
		docs = append(docs, viewDoc{IgnitionFile, d})
	}
	var directivesFailed, decodeFailed int
	for i, d := range docs {
		want := decodedText(Decode(d.name, []byte(d.data)))
		wantDirs, dirsErr := Directives(d.name, []byte(d.data))
		v, dirs, err := (&Decoder{}).DecodeDirectives(d.name, []byte(d.data))
		switch {
		case strings.HasPrefix(want, "error: "):
			decodeFailed++
			if got := decodedText(v, err); got != want {
				t.Errorf("document %d (%s): DecodeDirectives %s, Decode %s", i, d.name, got, want)
			}
		case dirsErr != nil:
			directivesFailed++
			if err == nil || !strings.Contains(err.Error(), "reading its directives: "+dirsErr.Error()) {
				t.Errorf("document %d (%s): Directives failed (%v), DecodeDirectives: %v", i, d.name, dirsErr, err)
			}
		default:
			if got := decodedText(v, err); got != want {
				t.Errorf("document %d (%s): DecodeDirectives %s, Decode %s", i, d.name, got, want)
			}
			if !slices.Equal(dirs, wantDirs) {
				t.Errorf("document %d (%s): DecodeDirectives' directives %q, Directives %q", i, d.name, dirs, wantDirs)
			}
		}
	}
	t.Logf("%d documents: %d fail to decode, %d decode with directives that cannot be read", len(docs), decodeFailed, directivesFailed)
	if decodeFailed == 0 || directivesFailed == 0 {
		t.Error("the documents do not reach both failures")
	}
}

// TestHeaderLines: headerLines is the head of strings.Split(data, "\n") up to the first
// line that does not start with '#', on random documents of '#', newlines and text.
func TestHeaderLines(t *testing.T) {
	split := func(data []byte) []string {
		var out []string
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			out = append(out, line)
		}
		return out
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		data := make([]byte, r.IntN(12))
		for j := range data {
			data[j] = "#\n a"[r.IntN(4)]
		}
		if got, want := headerLines(data), split(data); !slices.Equal(got, want) {
			t.Fatalf("case %d %q: headerLines %q, want %q", i, data, got, want)
		}
	}
}

// viewDoc is a view to decode: its name (IgnitionFile, ButaneFile, UserDataFile) and bytes.
type viewDoc struct{ name, data string }

// renderedViews are the views of testNode for each OS.
func renderedViews(t *testing.T) []viewDoc {
	t.Helper()
	var docs []viewDoc
	n := testNode()
	for _, os := range []string{model.OSGeneric, model.OSFlatcar, model.OSFCOS} {
		views, err := Views(n, os, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			docs = append(docs, viewDoc{v.Path, string(v.Data)})
		}
	}
	return docs
}

// decodedText is what Decode returned, as text: two decodings compare as strings.
func decodedText(d *Decoded, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var paths []string
	for p := range d.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	out := fmt.Sprintf("units %q omitted %q %v archives %q binaries %q problems %q remote %v\n", d.Units, d.Omitted, d.HasOmittedHeader, d.Archives, d.Binaries, d.Problems, d.Remote)
	for _, p := range paths {
		f := d.Files[p]
		out += fmt.Sprintf("%s %o %q local %q\n", p, f.Mode, f.Data, f.Local)
	}
	return out
}
