package provision

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	butane "github.com/coreos/butane/config"
	"github.com/coreos/butane/config/common"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// butaneCLI translates node.bu exactly as the butane command does without options but
// --files-dir (parse the YAML, read the local files, choose each file's encoding and
// compression, compact JSON, a newline): the node's rootfs files are written to a
// directory first.
func butaneCLI(t *testing.T, n *bundle.Node, bu []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	for _, f := range n.Rootfs {
		p := filepath.Join(dir, LocalDir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ign, rpt, err := butane.TranslateBytes(bu, common.TranslateBytesOptions{TranslateOptions: common.TranslateOptions{FilesDir: dir}})
	if err != nil || len(rpt.Entries) > 0 {
		t.Fatalf("butane: %v\n%s", err, rpt)
	}
	return append(ign, '\n')
}

// wholeButane is node.bu encoded as one YAML document (Views encodes it entry by entry).
func wholeButane(t *testing.T, n *bundle.Node, os string, embed bool) []byte {
	t.Helper()
	files, _, _, _, _, err := included(n, embed)
	if err != nil {
		t.Fatal(err)
	}
	cfg := butaneConfig(targets[os], files, make([]encoded, len(files)), n.Remote, n.Units)
	for i, f := range files {
		local := LocalDir + f.Path
		cfg.Storage.Files[i].Contents = buResource{Local: &local}
	}
	y, err := marshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	full, err := Views(n, os, embed)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := bytes.Cut(view(t, full, ButaneFile).Data, []byte("variant: "))
	return append(header, y...)
}

// wholeUserData is user-data encoded as one YAML document; its header is node.bu's.
func wholeUserData(t *testing.T, n *bundle.Node, embed bool, bu []byte) []byte {
	t.Helper()
	files, _, _, _, _, err := included(n, embed)
	if err != nil {
		t.Fatal(err)
	}
	var cfg cloudConfig
	for _, f := range files {
		enc, content := "b64", f.Data
		if e := encodeContent(f.Data); e.gzip {
			enc, content = "gz+b64", e.zipped
		}
		cfg.WriteFiles = append(cfg.WriteFiles, writeFile{Path: f.Path, Permissions: fmt.Sprintf("%04o", f.Mode.Perm()),
			Owner: "root:root", Encoding: enc, Content: base64.StdEncoding.EncodeToString(content)})
	}
	if len(n.Units) > 0 {
		cfg.RunCmd = append(cfg.RunCmd, []string{"systemctl", "daemon-reload"})
		for _, u := range n.Units {
			cfg.RunCmd = append(cfg.RunCmd, []string{"systemctl", "enable", u}, []string{"systemctl", "restart", u})
		}
	}
	y, err := marshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := bytes.Cut(bu, []byte("variant: "))
	return append([]byte("#cloud-config\n"+string(header)), y...)
}

// cacheNodes are nodes that share some files (same path, mode and content), differ in
// others, and share content under different paths or modes, like a cluster's nodes.
func cacheNodes(seed uint64) []*bundle.Node {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := testNode()
	var nodes []*bundle.Node
	for i := range 6 {
		n := &bundle.Node{Name: fmt.Sprintf("n-%d", i), Units: slices.Clone(base.Units)}
		for _, f := range base.Rootfs {
			switch rng.IntN(4) {
			case 0: // this node's own content
				f.Data = append(slices.Clone(f.Data), []byte(fmt.Sprintf("# node %d\n", i))...)
			case 1: // shared content, another mode
				if !f.Secret {
					f.Mode = 0o640
				}
			}
			n.Rootfs = append(n.Rootfs, f)
		}
		// The same large table on every node, as the routes table is.
		n.Rootfs = append(n.Rootfs, bundle.File{Path: "/etc/scratchgen/routes", Mode: bundle.ModePublic,
			Data: []byte(strings.Repeat(fmt.Sprintf("node-%d 10.0.%d.1 10.244.%d.0/24\n", seed, seed%250, seed%250), 900))})
		if i%3 == 0 {
			n.Units = append(n.Units, fmt.Sprintf("extra-%d.service", i))
			n.Remote = []bundle.RemoteFile{{Path: "/usr/local/bin/kubelet", Mode: bundle.ModeExecute,
				URL: "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet", SHA512: strings.Repeat("ab", 64)}}
		}
		nodes = append(nodes, n)
	}
	// Alike nodes, as the workers of a cluster: the same files, modes and units, each
	// with its own content in the same files (their certificates, their kubelet config).
	for i := range 3 {
		n := &bundle.Node{Name: fmt.Sprintf("alike-%d", i), Units: slices.Clone(base.Units)}
		for j, f := range base.Rootfs {
			if j%2 == 0 {
				f.Data = append(slices.Clone(f.Data), []byte(fmt.Sprintf("# alike %d\n", i))...)
			}
			n.Rootfs = append(n.Rootfs, f)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// TestCacheEqualsAlone: a node's views made with the cache other nodes filled are byte
// for byte the views made alone, and ignition.json is exactly what the butane command
// makes of node.bu with the node directory as --files-dir, for every OS, with and without
// secrets.
func TestCacheEqualsAlone(t *testing.T) {
	for seed := range uint64(2) {
		nodes := cacheNodes(seed)
		for _, os := range allOS {
			for _, embed := range []bool{false, true} {
				c := NewCache(nodes)
				if len(c.recurring) == 0 {
					t.Fatal("the test nodes share no file")
				}
				for round := range 2 { // the second round reads every shared entry from the cache
					for _, n := range nodes {
						what := fmt.Sprintf("seed %d, %s, embed=%v, node %s, round %d", seed, os, embed, n.Name, round)
						alone, err := Views(n, os, embed)
						if err != nil {
							t.Fatal(err)
						}
						shared, err := c.Views(n, os, embed)
						if err != nil {
							t.Fatal(err)
						}
						for i := range alone {
							if !bytes.Equal(alone[i].Data, shared[i].Data) || alone[i].Path != shared[i].Path {
								t.Fatalf("%s: %s differs with the cache", what, alone[i].Path)
							}
						}
						if got, want := view(t, alone, ButaneFile).Data, wholeButane(t, n, os, embed); !bytes.Equal(got, want) {
							t.Fatalf("%s: node.bu is not the YAML encoding of the whole config:\n%s\nwant:\n%s", what, got, want)
						}
						if got, want := view(t, alone, UserDataFile).Data, wholeUserData(t, n, embed, view(t, alone, ButaneFile).Data); !bytes.Equal(got, want) {
							t.Fatalf("%s: user-data is not the YAML encoding of the whole cloud-config:\n%s\nwant:\n%s", what, got, want)
						}
						if got, want := view(t, alone, IgnitionFile).Data, butaneCLI(t, n, view(t, alone, ButaneFile).Data); !bytes.Equal(got, want) {
							t.Fatalf("%s: ignition.json is not Butane's translation of node.bu:\n%s\nwant:\n%s", what, got, want)
						}
					}
				}
				if c.shapeHits == 0 {
					t.Fatalf("seed %d %s: no node's translation came from another node of its shape", seed, os)
				}
				if len(c.ign) == 0 || len(c.bu) == 0 || len(c.ud) == 0 || len(c.encoded) == 0 {
					t.Fatalf("seed %d %s: the cache kept nothing (ignition %d, node.bu %d, user-data %d, encodings %d)", seed, os, len(c.ign), len(c.bu), len(c.ud), len(c.encoded))
				}
			}
		}
	}
}
