package provision

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// TestWriteFileEntry holds the direct user-data entry writer to the YAML encoder's
// bytes (encodeEntry), for the entries views carry and for random strings, which mostly
// take the encoder's path: the writer must refuse what it would write differently.
func TestWriteFileEntry(t *testing.T) {
	check := func(t *testing.T, w writeFile) {
		t.Helper()
		want, err := encodeEntry(w, 2)
		if err != nil {
			t.Fatal(err)
		}
		got, err := writeFileEntry(w)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("entry differs from the YAML encoder's:\n--- got\n%s--- want\n%s", got, want)
		}
	}
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
