package verify

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// checkSums compares SHA256SUMS with the files on disk: every file listed, with the
// listed content, and no file unlisted.
func (b *checker) checkSums() {
	sums, ok := b.files[writer.SumsName]
	if !ok {
		b.problemf(writer.SumsName, "is missing: a bundle lists every file with its SHA-256 sum; re-render it")
		return
	}
	if sums.mode != bundle.ModePublic {
		b.problemf(writer.SumsName, "has mode %04o, want %04o", sums.mode, bundle.ModePublic)
	}
	entries, bad := writer.ParseSums(sums.data)
	for _, e := range bad {
		b.problemf(writer.SumsName, "%s", e.Msg)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		p := e.Path
		if listed[p] {
			b.problemf(writer.SumsName, "lists %s twice", p)
			continue
		}
		listed[p] = true
		f, ok := b.files[p]
		switch {
		case p == writer.SumsName:
			b.problemf(writer.SumsName, "lists itself")
		case !ok:
			b.problemf(p, "is listed in %s but missing", writer.SumsName)
		default:
			if got := sha256.Sum256(f.data); got != e.Sum {
				b.problemf(p, "does not match its SHA-256 sum in %s (changed after rendering)", writer.SumsName)
			}
		}
	}
	for rel := range b.files {
		if rel != writer.SumsName && !listed[rel] {
			b.problemf(rel, "is not listed in %s (scratchgen did not write it)", writer.SumsName)
		}
	}
}

// isSecretPath reports whether a node path holds a private key, a token or a kubeconfig
// (which embeds both): such files must be 0600 and ignored by git.
func isSecretPath(p string) bool {
	switch {
	case strings.HasSuffix(p, ".key"):
		return true
	case path.Dir(p) == paths.KubernetesDir && strings.HasSuffix(p, ".conf"):
		return true
	case p == paths.KubeletKubeconfig, p == paths.KubeProxyKubeconfig, p == paths.KnownTokens:
		return true
	}
	return false
}

// holdsPrivateKey reports whether data contains a PEM private key (or a kubeconfig's
// embedded one, which is base64 of the same PEM header).
func holdsPrivateKey(data []byte) bool {
	return bytes.Contains(data, []byte("PRIVATE KEY-----")) ||
		bytes.Contains(data, []byte("client-key-data:")) ||
		bytes.Contains(data, []byte("\"client-key-data\""))
}

// isSecretFile reports whether a rootfs file must be treated as secret: by its path or
// by what it holds.
func isSecretFile(p string, f *file) bool { return isSecretPath(p) || holdsPrivateKey(f.data) }

// checkModes checks every file's and directory's mode: 0600 for secrets, 0755 for
// scripts units run and for directories, 0644 for everything else. The provisioning
// views are checked with their content (checkViews).
func (b *checker) checkModes() {
	for rel, mode := range b.dirs {
		if mode != bundle.ModeDir {
			b.problemf(rel+"/", "directory has mode %04o, want %04o", mode, bundle.ModeDir)
		}
	}
	want := func(rel string, f *file, m fs.FileMode, why string) {
		if f.mode != m {
			b.problemf(rel, "has mode %04o, want %04o (%s)", f.mode, m, why)
		}
	}
	for rel, f := range b.files {
		switch {
		case rel == writer.SumsName:
			// checkSums
		case rel == "admin/"+paths.AdminKubeconfig || holdsPrivateKey(f.data) && !strings.HasPrefix(rel, "nodes/"):
			want(rel, f, bundle.ModeSecret, "it holds a private key or token")
			b.secret(rel)
		case !strings.HasPrefix(rel, "nodes/"):
			want(rel, f, bundle.ModePublic, "a public file")
		}
	}
	for _, n := range b.nodes {
		exec := n.executables()
		pinned := b.pinnedExecutables(n)
		for p, f := range n.rootfs {
			rel := n.rel(p)
			switch {
			case pinned[p] != "":
				// Before the secret test: a binary may well hold the text of a PEM header.
				want(rel, f, bundle.ModeExecute, pinned[p])
			case isSecretFile(p, f):
				want(rel, f, bundle.ModeSecret, "it holds a private key or token")
				b.secret(rel)
			case exec[p]:
				want(rel, f, bundle.ModeExecute, "a unit runs it")
			case f.mode == bundle.ModeExecute:
				b.problemf(rel, "has mode %04o, but no unit runs it; want %04o", f.mode, bundle.ModePublic)
			default:
				want(rel, f, bundle.ModePublic, "a public file")
			}
		}
	}
}

// secret records a bundle-relative path that .gitignore must list.
func (b *checker) secret(rel string) {
	if b.secrets == nil {
		b.secrets = map[string]bool{}
	}
	b.secrets[rel] = true
}

// checkGitignore checks that the bundle's .gitignore keeps every secret out of git.
func (b *checker) checkGitignore() {
	if len(b.secrets) == 0 {
		return
	}
	gi, ok := b.files[".gitignore"]
	if !ok {
		b.problemf(".gitignore", "is missing: the bundle holds private keys and tokens that git must ignore")
		return
	}
	ignored := map[string]bool{}
	for _, line := range strings.Split(string(gi.data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			ignored[strings.TrimPrefix(line, "/")] = true
		}
	}
	var missing []string
	for rel := range b.secrets {
		if !ignored[rel] {
			missing = append(missing, rel)
		}
	}
	sort.Strings(missing)
	for _, rel := range missing {
		b.problemf(".gitignore", "does not list /%s, which holds a private key or token", rel)
	}
}
