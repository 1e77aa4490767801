package provision

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	ignconfig "github.com/coreos/ignition/v2/config"
	ign33 "github.com/coreos/ignition/v2/config/v3_3"
	ign34 "github.com/coreos/ignition/v2/config/v3_4"
	ign36 "github.com/coreos/ignition/v2/config/v3_6"
	"github.com/coreos/vcontext/report"
	"github.com/vincent-petithory/dataurl"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
)

var allOS = []string{model.OSGeneric, model.OSFlatcar, model.OSFCOS}

// entry is what a view promises about one file.
type entry struct {
	mode fs.FileMode
	data string
}

// fileSet maps a node path to its mode and content.
type fileSet map[string]entry

func setOf(files []bundle.File, keep func(bundle.File) bool) fileSet {
	s := fileSet{}
	for _, f := range files {
		if keep(f) {
			s[f.Path] = entry{f.Mode, string(f.Data)}
		}
	}
	return s
}

func all(bundle.File) bool { return true }

// testNode has text and binary files, modes 0644/0600/0755, secrets, text that YAML
// finds awkward, content Butane gzips and content it does not, a unit file with a
// drop-in, and a unit the OS ships (no file here). Rootfs is deliberately unsorted.
func testNode() *bundle.Node {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	manifest := strings.Repeat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n", 200)
	text := func(p, s string) bundle.File { return bundle.File{Path: p, Mode: bundle.ModePublic, Data: []byte(s)} }
	return &bundle.Node{
		Name: "cp-1",
		Rootfs: []bundle.File{
			text("/etc/systemd/system/kubelet.service", "[Unit]\nDescription=kubelet\n\n[Service]\nExecStart=/usr/local/bin/kubelet --config=/var/lib/kubelet/config.yaml\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"),
			text("/etc/systemd/system/kubelet.service.d/10-env.conf", "[Service]\nEnvironment=A=1\n"),
			text("/etc/systemd/system/kube-proxy.service", "[Unit]\nDescription=kube-proxy\n[Service]\nExecStart=/usr/local/bin/kube-proxy\n[Install]\nWantedBy=multi-user.target\n"),
			text("/etc/kubernetes/manifests/kube-apiserver.yaml", manifest),
			text("/etc/kubernetes/pki/ca.crt", "-----BEGIN CERTIFICATE-----\n"+base64.StdEncoding.EncodeToString(random(700))+"\n-----END CERTIFICATE-----\n"),
			{Path: "/etc/kubernetes/pki/ca.key", Mode: bundle.ModeSecret, Secret: true, Data: []byte("-----BEGIN EC PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END EC PRIVATE KEY-----\n")},
			{Path: "/etc/kubernetes/known_tokens.csv", Mode: bundle.ModeSecret, Secret: true, Data: []byte("secrettoken123,admin,admin,system:masters\n")},
			{Path: "/etc/kubernetes/pki/sa.pub", Mode: bundle.ModeSecret, Data: []byte("public but 0600\n")},
			{Path: "/usr/local/bin/setup-routes", Mode: bundle.ModeExecute, Data: []byte("#!/bin/sh\nset -eu\nip route replace 10.244.1.0/24 via 10.0.0.11\n")},
			{Path: "/usr/local/bin/tool", Mode: bundle.ModeExecute, Data: append([]byte("\x7fELF\x02\x01\x01\x00"), random(3000)...)},
			{Path: "/var/lib/images/zeros.bin", Mode: bundle.ModePublic, Data: make([]byte, 4096)},
			text("/etc/awkward/empty", ""),
			text("/etc/awkward/no-final-newline", "last line"),
			text("/etc/awkward/octal", "0o644"),
			text("/etc/awkward/null", "null"),
			text("/etc/awkward/tilde", "~"),
			text("/etc/awkward/yes", "yes"),
			text("/etc/awkward/list", "- item\n"),
			text("/etc/awkward/map", "key: value\n"),
			text("/etc/awkward/comment", "#not a comment\n"),
			text("/etc/awkward/documents", "---\na: 1\n...\n"),
			text("/etc/awkward/spaces", "  leading\ntrailing  \n\ttab\n\n\n"),
			text("/etc/awkward/unicode", "é ✓ \u00a0 nbsp\n"),
			text("/etc/awkward/crlf", "a\r\nb\r\n"),
			text("/etc/awkward/control", "bell\a\n"),
			{Path: "/etc/awkward/latin1", Mode: bundle.ModePublic, Data: []byte("caf\xe9\n")},
		},
		Units: []string{"containerd.service", "kubelet.service", "kube-proxy.service"},
	}
}

// secretPaths returns the sorted paths of n's secret files.
func secretPaths(n *bundle.Node) []string {
	var out []string
	for _, f := range n.Rootfs {
		if f.Secret {
			out = append(out, f.Path)
		}
	}
	slices.Sort(out)
	return out
}

func view(t testing.TB, files []bundle.File, name string) bundle.File {
	t.Helper()
	for _, f := range files {
		if f.Path == name {
			return f
		}
	}
	t.Fatalf("no %s among the views", name)
	return bundle.File{}
}

// TestViewsEquivalence decodes ignition.json and user-data back into (path, mode,
// content) and checks that they equal the rootfs, minus exactly the secrets when they
// are not embedded, and that they enable exactly Node.Units.
func TestViewsEquivalence(t *testing.T) {
	n := testNode()
	rootfs := setOf(n.Rootfs, all)
	secrets := secretPaths(n)
	for _, osName := range allOS {
		for _, embed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/embed=%v", osName, embed), func(t *testing.T) {
				files, err := Views(n, osName, embed)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := pathsOf(files), []string{ButaneFile, IgnitionFile, UserDataFile}; !slices.Equal(got, want) {
					t.Fatalf("views = %v, want %v", got, want)
				}
				want := rootfs
				if !embed {
					want = setOf(n.Rootfs, func(f bundle.File) bool { return !f.Secret })
				}
				for _, f := range files {
					if wantSecret := embed; f.Secret != wantSecret || (f.Mode == bundle.ModeSecret) != wantSecret {
						t.Errorf("%s: Secret=%v mode %v, want Secret=%v", f.Path, f.Secret, f.Mode, wantSecret)
					}
				}

				ign := view(t, files, IgnitionFile).Data
				gotIgn, units := decodeIgnition(t, ign, targets[osName].ignition)
				compareSets(t, "ignition.json", gotIgn, want)
				if !slices.Equal(units, n.Units) {
					t.Errorf("ignition.json enables %v, want %v", units, n.Units)
				}
				// The decoder's paths are all exercised: gzip, base64 and URL-escaped.
				for _, s := range []string{`"compression":"gzip"`, `;base64,`, `"data:,`} {
					if !bytes.Contains(ign, []byte(s)) {
						t.Errorf("ignition.json has no %s source; the test node should produce one", s)
					}
				}

				ud := view(t, files, UserDataFile).Data
				gotUD, runcmd := decodeUserData(t, ud)
				compareSets(t, "user-data", gotUD, want)
				wantCmd := [][]string{{"systemctl", "daemon-reload"}}
				for _, u := range n.Units {
					wantCmd = append(wantCmd, []string{"systemctl", "enable", u}, []string{"systemctl", "restart", u})
				}
				if fmt.Sprint(runcmd) != fmt.Sprint(wantCmd) {
					t.Errorf("user-data runcmd = %v, want %v", runcmd, wantCmd)
				}

				bu := view(t, files, ButaneFile).Data
				comment := omittedPrefix + strings.Join(secrets, " ") + "\n"
				if !embed {
					var missing []string
					for p := range rootfs {
						if _, ok := gotIgn[p]; !ok {
							missing = append(missing, p)
						}
					}
					slices.Sort(missing)
					if !slices.Equal(missing, secrets) {
						t.Errorf("missing from ignition.json: %v, want exactly the secrets %v", missing, secrets)
					}
					if !bytes.HasPrefix(bu, []byte(comment)) {
						t.Errorf("node.bu does not start with %q", comment)
					}
					if !bytes.HasPrefix(ud, []byte("#cloud-config\n"+comment)) {
						t.Errorf("user-data does not start with #cloud-config and %q", comment)
					}
					for _, f := range n.Rootfs {
						if !f.Secret {
							continue
						}
						for _, v := range files {
							for _, leak := range []string{string(f.Data), base64.StdEncoding.EncodeToString(f.Data), "SECRETKEY", "secrettoken"} {
								if bytes.Contains(v.Data, []byte(leak)) {
									t.Errorf("%s leaks secret %s", v.Path, f.Path)
								}
							}
						}
					}
				} else {
					for _, v := range files {
						if bytes.Contains(v.Data, []byte("omitted secrets")) {
							t.Errorf("%s mentions omitted secrets, but all are embedded", v.Path)
						}
					}
				}
			})
		}
	}
}

func pathsOf(files []bundle.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func compareSets(t *testing.T, what string, got, want fileSet) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, p)
		case g.mode != want[p].mode:
			t.Errorf("%s: %s mode %v, want %v", what, p, g.mode, want[p].mode)
		case g.data != want[p].data:
			t.Errorf("%s: %s content %q, want %q", what, p, g.data, want[p].data)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s", what, p)
		}
	}
}

// checkIgnitionClean parses raw with the Go Ignition parser of exactly wantVersion and
// fails on any error and on any report entry (warnings included). It never skips.
func checkIgnitionClean(t *testing.T, raw []byte, wantVersion string) {
	t.Helper()
	var rpt report.Report
	var err error
	switch wantVersion {
	case "3.3.0":
		_, rpt, err = ign33.Parse(raw)
	case "3.4.0":
		_, rpt, err = ign34.Parse(raw)
	case "3.6.0":
		_, rpt, err = ign36.Parse(raw)
	default:
		t.Fatalf("no Go Ignition parser wired up for spec %s", wantVersion)
	}
	if err != nil {
		t.Fatalf("Ignition %s parser: %v\n%s", wantVersion, err, rpt)
	}
	if len(rpt.Entries) > 0 {
		t.Fatalf("Ignition %s parser reported:\n%s", wantVersion, rpt)
	}
}

// decodeIgnition checks raw with the parser of its spec version, then decodes every file
// (data URL, gzip) and the enabled units.
func decodeIgnition(t *testing.T, raw []byte, wantVersion string) (fileSet, []string) {
	t.Helper()
	checkIgnitionClean(t, raw, wantVersion)
	cfg, _, err := ignconfig.Parse(raw)
	if err != nil {
		t.Fatalf("Ignition parser (latest): %v", err)
	}
	if len(cfg.Storage.Directories)+len(cfg.Storage.Links)+len(cfg.Storage.Disks)+len(cfg.Storage.Filesystems) > 0 {
		t.Errorf("ignition.json has storage other than files")
	}
	set := fileSet{}
	for _, f := range cfg.Storage.Files {
		if f.Overwrite == nil || !*f.Overwrite || len(f.Append) > 0 || f.User.ID != nil || f.User.Name != nil || f.Group.ID != nil || f.Group.Name != nil {
			t.Errorf("%s: want overwrite true, no append, default (root) owner", f.Path)
		}
		if f.Mode == nil || f.Contents.Source == nil {
			t.Fatalf("%s: no mode or no source", f.Path)
		}
		u, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatalf("%s: decoding data URL: %v", f.Path, err)
		}
		data := u.Data
		switch c := f.Contents.Compression; {
		case c == nil || *c == "":
		case *c == "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
		default:
			t.Fatalf("%s: unexpected compression %q", f.Path, *c)
		}
		if _, dup := set[f.Path]; dup {
			t.Errorf("%s written twice", f.Path)
		}
		set[f.Path] = entry{fs.FileMode(*f.Mode), string(data)}
	}
	var units []string
	for _, u := range cfg.Systemd.Units {
		if u.Enabled == nil || !*u.Enabled || u.Contents != nil || len(u.Dropins) > 0 || u.Mask != nil {
			t.Errorf("unit %s: want only enabled: true", u.Name)
		}
		units = append(units, u.Name)
	}
	return set, units
}

// udConfig is what user-data may contain; anything else fails the strict decode.
type udConfig struct {
	WriteFiles []struct {
		Path        string `json:"path"`
		Permissions string `json:"permissions"`
		Owner       string `json:"owner"`
		Encoding    string `json:"encoding"`
		Content     string `json:"content"`
		Defer       *bool  `json:"defer"`
	} `json:"write_files"`
	RunCmd [][]string `json:"runcmd"`
}

func decodeUserData(t *testing.T, raw []byte) (fileSet, [][]string) {
	t.Helper()
	if !bytes.HasPrefix(raw, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config")
	}
	var cfg udConfig
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		t.Fatalf("user-data: %v", err)
	}
	set := fileSet{}
	var last string
	for _, w := range cfg.WriteFiles {
		if w.Owner != "root:root" || (w.Encoding != "b64" && w.Encoding != "gz+b64") || w.Defer == nil || *w.Defer {
			t.Errorf("%s: owner %q encoding %q defer %v, want root:root, b64 or gz+b64, false", w.Path, w.Owner, w.Encoding, w.Defer)
		}
		if w.Path <= last {
			t.Errorf("write_files not sorted by path: %s after %s", w.Path, last)
		}
		last = w.Path
		mode, err := strconv.ParseUint(w.Permissions, 8, 32)
		if err != nil || len(w.Permissions) != 4 {
			t.Errorf("%s: permissions %q are not four octal digits", w.Path, w.Permissions)
		}
		data, err := base64.StdEncoding.DecodeString(w.Content)
		if err != nil {
			t.Fatalf("%s: %v", w.Path, err)
		}
		if w.Encoding == "gz+b64" {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", w.Path, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", w.Path, err)
			}
		}
		set[w.Path] = entry{fs.FileMode(mode), string(data)}
	}
	return set, cfg.RunCmd
}

// validatorCases are the configs the external validators check.
func validatorCases(t *testing.T) map[string][]bundle.File {
	t.Helper()
	cases := map[string][]bundle.File{}
	for _, osName := range allOS {
		for _, embed := range []bool{false, true} {
			files, err := Views(testNode(), osName, embed)
			if err != nil {
				t.Fatal(err)
			}
			cases[fmt.Sprintf("%s/embed=%v", osName, embed)] = files
		}
		files, err := Views(&bundle.Node{Name: "empty"}, osName, false)
		if err != nil {
			t.Fatal(err)
		}
		cases[osName+"/empty"] = files
	}
	return cases
}

// lookTool returns the path of an external validator, or skips the test loudly.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s not found, so this external validator did NOT run. "+
			"Install it (Debian: apt-get install -y %s) to run it.", name, pkg)
	}
	return p
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIgnitionValidateDebian runs Debian's ignition-validate (package ignition, 2.14 in
// Debian 12, which knows Ignition specs up to 3.3.0) on every ignition.json. The generic
// target (Ignition 3.3.0) must pass. The flatcar (3.4.0) and fcos (3.6.0) targets must
// pass too unless the tool does not know their spec version; those are covered by the
// Go Ignition parser of their exact version in TestViewsEquivalence.
func TestIgnitionValidateDebian(t *testing.T) {
	tool := lookTool(t, "ignition-validate", "ignition")
	run := func(data []byte) (string, error) {
		out, err := exec.Command(tool, writeTemp(t, "ignition.json", data)).CombinedOutput()
		return string(out), err
	}
	// The validator can fail: a relative file path is invalid in every spec.
	if out, err := run([]byte(`{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/x"}]}}`)); err == nil {
		t.Fatalf("ignition-validate accepted an invalid config (output %q); it cannot be trusted", out)
	}
	cases := validatorCases(t)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) {
			out, err := run(view(t, cases[name], IgnitionFile).Data)
			osName, _, _ := strings.Cut(name, "/")
			switch {
			case err == nil && strings.TrimSpace(out) == "":
				t.Logf("ignition-validate: ok (Ignition %s)", targets[osName].ignition)
			case osName != model.OSGeneric && strings.Contains(out, "unsupported config version"):
				t.Logf("ignition-validate does not know Ignition %s: checked by the Go parser only", targets[osName].ignition)
			default:
				t.Errorf("ignition-validate: %v\n%s", err, out)
			}
		})
	}
}

// TestCloudInitSchema runs `cloud-init schema -c user-data` (Debian package cloud-init)
// on every user-data.
func TestCloudInitSchema(t *testing.T) {
	tool := lookTool(t, "cloud-init", "cloud-init")
	run := func(data []byte) (string, error) {
		out, err := exec.Command(tool, "schema", "-c", writeTemp(t, "user-data", data)).CombinedOutput()
		return string(out), err
	}
	// The validator can fail: permissions must be a string.
	if out, err := run([]byte("#cloud-config\nwrite_files:\n- path: /x\n  permissions: 0644\n")); err == nil {
		t.Fatalf("cloud-init schema accepted an invalid config (output %q); it cannot be trusted", out)
	}
	// user-data does not depend on the OS: check each distinct one once.
	cases, seen := validatorCases(t), map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		data := view(t, cases[name], UserDataFile).Data
		if seen[string(data)] {
			continue
		}
		seen[string(data)] = true
		_, variant, _ := strings.Cut(name, "/")
		t.Run(variant, func(t *testing.T) {
			out, err := run(data)
			if err != nil || !strings.Contains(out, "Valid cloud-config") {
				t.Errorf("cloud-init schema: %v\n%s", err, out)
			}
		})
	}
}

// TestEmptyNode checks a node without files or units.
func TestEmptyNode(t *testing.T) {
	for _, osName := range allOS {
		files, err := Views(&bundle.Node{Name: "empty"}, osName, false)
		if err != nil {
			t.Fatal(err)
		}
		set, units := decodeIgnition(t, view(t, files, IgnitionFile).Data, targets[osName].ignition)
		if len(set) > 0 || len(units) > 0 {
			t.Errorf("%s: empty node provisions %v, %v", osName, set, units)
		}
		if ud := string(view(t, files, UserDataFile).Data); ud != "#cloud-config\n{}\n" {
			t.Errorf("%s: empty node user-data = %q", osName, ud)
		}
	}
}

// TestDeterminism checks that two calls give the same bytes, that Rootfs order does not
// matter, and that the node is not modified.
func TestDeterminism(t *testing.T) {
	for _, osName := range allOS {
		for _, embed := range []bool{false, true} {
			n := testNode()
			before := pathsOf(n.Rootfs)
			a, err := Views(n, osName, embed)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Views(n, osName, embed)
			if err != nil {
				t.Fatal(err)
			}
			shuffled := testNode()
			slices.Reverse(shuffled.Rootfs)
			c, err := Views(shuffled, osName, embed)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if !bytes.Equal(a[i].Data, b[i].Data) || !bytes.Equal(a[i].Data, c[i].Data) {
					t.Errorf("%s embed=%v: %s differs between calls", osName, embed, a[i].Path)
				}
			}
			if !slices.Equal(pathsOf(n.Rootfs), before) {
				t.Errorf("Views reordered the node's Rootfs")
			}
		}
	}
}

// TestViewsErrors checks that malformed nodes are rejected with a useful message.
func TestViewsErrors(t *testing.T) {
	f := func(p string) bundle.File { return bundle.File{Path: p, Mode: bundle.ModePublic, Data: []byte("x")} }
	cases := []struct {
		name string
		os   string
		node bundle.Node
		want string
	}{
		{"unknown OS", "windows", bundle.Node{}, `unknown OS "windows"`},
		{"relative path", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{f("etc/x")}}, "not an absolute"},
		{"unclean path", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{f("/etc/../x")}}, "not clean"},
		{"space in path", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{f("/etc/a b")}}, "whitespace"},
		{"newline in path", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{f("/etc/a\nb: c")}}, "whitespace"},
		{"duplicate path", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{f("/etc/x"), f("/etc/x")}}, "listed twice"},
		{"setuid", model.OSFCOS, bundle.Node{Rootfs: []bundle.File{{Path: "/x", Mode: fs.ModeSetuid | 0o755}}}, "bits other than permissions"},
		{"duplicate unit", model.OSFCOS, bundle.Node{Units: []string{"a.service", "a.service"}}, "listed twice"},
		{"unit with slash", model.OSFCOS, bundle.Node{Units: []string{"x/a.service"}}, "not a unit name"},
		{"bad unit suffix (Butane)", model.OSFlatcar, bundle.Node{Units: []string{"kubelet"}}, "translating"},
	}
	for _, c := range cases {
		c.node.Name = "n1"
		_, err := Views(&c.node, c.os, false)
		// The plan adds the node's name (once, for every step); Views does not repeat it.
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "n1") {
			t.Errorf("%s: err = %v, want one containing %q and not the node's name", c.name, err, c.want)
		}
	}
}

// benchNode has 40 files totalling about 100 KiB: PEM-like text, YAML and binaries.
func benchNode() *bundle.Node {
	rng := rand.New(rand.NewPCG(3, 4))
	n := &bundle.Node{Name: "bench", Units: []string{"containerd.service", "kubelet.service", "kube-proxy.service"}}
	for i := range 40 {
		var data []byte
		mode := bundle.ModePublic
		switch {
		case i < 25: // certificates and keys: base64 text, compresses poorly
			raw := make([]byte, 1800)
			for j := range raw {
				raw[j] = byte(rng.UintN(256))
			}
			data = []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(raw) + "\n-----END CERTIFICATE-----\n")
			if i%2 == 1 {
				mode = bundle.ModeSecret
			}
		case i < 35: // manifests and configs: compress well
			data = []byte(strings.Repeat(fmt.Sprintf("key%d: value %d\n", i, rng.UintN(1000)), 180))
		default: // binaries
			data = make([]byte, 2400)
			for j := range data {
				data[j] = byte(rng.UintN(256))
			}
			mode = bundle.ModeExecute
		}
		n.Rootfs = append(n.Rootfs, bundle.File{Path: fmt.Sprintf("/etc/bench/file-%02d", i), Mode: mode, Data: data, Secret: mode == bundle.ModeSecret})
	}
	return n
}

func BenchmarkViews(b *testing.B) {
	n := benchNode()
	total := 0
	for _, f := range n.Rootfs {
		total += len(f.Data)
	}
	b.ReportMetric(float64(total)/1024, "KiB-in")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Views(n, model.OSFlatcar, true); err != nil {
			b.Fatal(err)
		}
	}
}
