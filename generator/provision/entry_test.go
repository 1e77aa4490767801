package provision

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"

	butaneutil "github.com/coreos/butane/base/util"
)

// checkEntry fails t unless direct writes v as the YAML encoder does (encodeEntry at
// indent).
func checkEntry[T any](t *testing.T, v T, indent int, direct func(T) ([]byte, error)) {
	t.Helper()
	want, err := encodeEntry(v, indent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := direct(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("entry differs from the YAML encoder's:\n--- got\n%s--- want\n%s", got, want)
	}
}

// TestWriteFileEntry holds the direct user-data entry writer to the YAML encoder's
// bytes (encodeEntry), for the entries views carry and for random strings, which mostly
// take the encoder's path: the writer must refuse what it would write differently.
func TestWriteFileEntry(t *testing.T) {
	check := func(t *testing.T, w writeFile) { t.Helper(); checkEntry(t, w, 2, writeFileEntry) }
	entry := func(path, perm, enc, content string) writeFile {
		return writeFile{Path: path, Permissions: perm, Owner: "root:root", Encoding: enc, Content: content}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	blob := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	// As views carry them: every base64 content of 0 to 3,000 bytes.
	for i := 0; i < 3000; i++ {
		check(t, entry("/etc/scratchgen/routes", "0644", "gz+b64", blob(i)))
		check(t, entry("/var/lib/kubelet/pki/kubelet.key", "0600", "b64", blob(rng.IntN(500))))
	}
	for _, c := range []string{"dHJ1ZQ==", "true", "yes", "null", "1234", "+abc", "/abc", "abc=", "a", "Zm9v", "MTIz"} {
		check(t, entry("/etc/x", "0644", "b64", c))
	}
	if _, ok := directEntry(entry("/etc/x", "0644", "gz+b64", blob(90))); !ok {
		// A check that the test compares the direct path at all.
		t.Error("a base64 entry as views carry it was not written directly")
	}
	// Paths, permissions and encodings YAML quotes, or that only look plain.
	for _, s := range []string{"", "/a b", "/a:", "/a: b", "/a #b", "/a#b", "-a", "/é", "/a,b", "/a[0]", "/a'b", "/a\"b",
		"/a\nb", "/a\tb", "yes", "/yes", "~", "/*", "/a%b", "0644", "644", "0o644", "1e3", "/a=b", "a@b", "/a:b"} {
		check(t, entry(s, "0644", "b64", "Zm9v"))
		check(t, entry("/etc/x", s, "b64", "Zm9v"))
		check(t, entry("/etc/x", "0644", s, "Zm9v"))
		check(t, entry("/etc/x", "0644", "b64", s))
		w := entry("/etc/x", "0644", "b64", "Zm9v")
		w.Owner = s
		check(t, w)
	}
	const alphabet = "abcyesnoYESNO0123456789-_.:/@#=+ ,[]{}'\"!&*|>?%`~\\\t"
	for i := 0; i < 5000; i++ {
		b := make([]byte, rng.IntN(10))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		check(t, entry(s, "0644", "b64", s))
		check(t, entry("/etc/x", s, s, "Zm9v"))
	}
}

// TestBuFileEntry: node.bu's entries written directly are the YAML encoder's bytes, for
// every mode and for paths and sources YAML writes plain or quotes.
func TestBuFileEntry(t *testing.T) {
	check := func(t *testing.T, f buFile) { t.Helper(); checkEntry(t, f, 4, buFileEntry) }
	local := func(p string) buFile {
		l := "rootfs" + p
		return buFile{Path: p, Mode: 0o644, Overwrite: true, Contents: buResource{Local: &l}}
	}
	for m := range 0o1000 {
		f := local("/var/lib/kubelet/pki/kubelet.crt")
		f.Mode, f.Overwrite = octalMode(m), m%2 == 0
		check(t, f)
	}
	f := local("/etc/x")
	if got, _ := buFileEntry(f); !bytes.HasPrefix(got, []byte("    - path: /etc/x\n      mode: 0644\n")) {
		// A check that the test compares the direct path at all.
		t.Errorf("a local entry as node.bu carries it was not written directly:\n%s", got)
	}
	src, gz, hash := "https://example.com/x", "gzip", "sha512-00"
	check(t, buFile{Path: "/opt/bin/x", Mode: 0o755, Contents: buResource{Source: &src, Compression: &gz, Verification: &buVerification{Hash: hash}}})
	check(t, buFile{Path: "/opt/bin/x", Mode: 0o755})
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "abcyesnoYESNO0123456789-_.:/@#=+ ,[]{}'\"!&*|>?%`~\\\t"
	for range 5000 {
		b := make([]byte, rng.IntN(10))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		f := local(string(b))
		check(t, f)
		l := string(b)
		f.Path, f.Contents.Local = "/etc/x", &l
		check(t, f)
	}
}

// TestEncodeContent: a file's data URL is Butane's (base/util.MakeDataURL with automatic
// compression) byte for byte, for text, binary and sizes around where each encoding wins.
func TestEncodeContent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const text = "abc XYZ 019 -_.!~*'() #%&/:;=?@[]{}\"<>\\^`|\n\t"
	var cases [][]byte
	for n := range 300 {
		bin, txt, rep := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range n {
			bin[i] = byte(rng.IntN(256))
			txt[i] = text[rng.IntN(len(text))]
			rep[i] = "ab"[i%2]
		}
		cases = append(cases, bin, txt, rep)
	}
	cases = append(cases, nil, []byte("plain"), []byte("%41"), bytes.Repeat([]byte("w-1 10.1.0.1 10.128.3.0/24\n"), 1000))
	kinds := map[string]int{}
	for _, data := range cases {
		want, compression, err := butaneutil.MakeDataURL(data, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeContent(data)
		if got.url != want || got.gzip != (compression != nil && *compression == "gzip") {
			t.Fatalf("%q: got %q (gzip %v), Butane makes %q (compression %v)", data, got.url, got.gzip, want, compression)
		}
		switch {
		case got.gzip:
			kinds["gzip"]++
		case strings.HasPrefix(got.url, "data:;base64,"):
			kinds["base64"]++
		default:
			kinds["escaped"]++
		}
	}
	if len(kinds) != 3 {
		t.Fatalf("the cases chose only %v: the test must reach all three encodings", kinds)
	}
}
