package nodeconfig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// TestScriptsSyntax runs sh -n, and shellcheck when installed, over every rendered script.
func TestScriptsSyntax(t *testing.T) {
	shellcheck, scErr := exec.LookPath("shellcheck")
	if scErr != nil {
		t.Log("NOTE: shellcheck is not installed; scripts get only `sh -n` (apt-get install shellcheck)")
	}
	each(t, func(t *testing.T, r rendered) {
		dir := t.TempDir()
		for _, f := range r.files {
			if !strings.HasSuffix(f.Path, ".sh") {
				continue
			}
			p := filepath.Join(dir, filepath.Base(f.Path))
			if err := os.WriteFile(p, f.Data, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
				t.Errorf("sh -n %s: %v\n%s", f.Path, err, out)
			}
			if scErr == nil {
				if out, err := exec.Command(shellcheck, "--shell=sh", "--severity=style", p).CombinedOutput(); err != nil {
					t.Errorf("shellcheck %s: %v\n%s", f.Path, err, out)
				}
			}
		}
	})
}

// fakeTools puts logging stand-ins for ip and iptables first on PATH. The iptables stand-in
// fails -C, -D and -N like a host without scratchgen's rules.
func fakeTools(t *testing.T) (env []string, log string) {
	t.Helper()
	bin := t.TempDir()
	log = filepath.Join(bin, "calls.log")
	for name, body := range map[string]string{
		"ip": `echo "ip $*" >>"$LOG"`,
		"iptables": `echo "iptables $*" >>"$LOG"
for a in "$@"; do case "$a" in -C|-D|-N) exit 1;; esac; done`,
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOG="+log), log
}

func runScript(t *testing.T, data []byte, env []string, log string, arg string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(log)
	cmd := exec.Command("sh", p, arg)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", p, arg, err, out)
	}
	b, _ := os.ReadFile(log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestScriptsRun executes the scripts against stand-in tools and checks the commands.
func TestScriptsRun(t *testing.T) {
	c := resolve(t, variants()[0])
	n := c.Nodes[1]
	files, _, err := Node(c, n)
	if err != nil {
		t.Fatal(err)
	}
	env, log := fakeTools(t)
	r := rendered{c: c, n: n, files: files}

	// The routes script runs in TestRoutes, with its table.
	masq, _ := r.file(paths.MasqueradeScript)
	got := runScript(t, masq.Data, env, log, "start")
	comment := "scratchgen: masquerade pod traffic leaving the cluster network"
	want := []string{
		"iptables -w -t nat -N SCRATCHGEN-MASQ",
		"iptables -w -t nat -F SCRATCHGEN-MASQ",
		"iptables -w -t nat -A SCRATCHGEN-MASQ -s 10.10.0.0/16 ! -d 10.10.0.0/16 -m addrtype ! --dst-type LOCAL -j MASQUERADE",
		"iptables -w -t nat -C POSTROUTING -m comment --comment " + comment + " -j SCRATCHGEN-MASQ",
		"iptables -w -t nat -A POSTROUTING -m comment --comment " + comment + " -j SCRATCHGEN-MASQ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("masquerade start ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = runScript(t, masq.Data, env, log, "stop")
	want = []string{
		"iptables -w -t nat -D POSTROUTING -m comment --comment " + comment + " -j SCRATCHGEN-MASQ",
		"iptables -w -t nat -F SCRATCHGEN-MASQ",
		"iptables -w -t nat -X SCRATCHGEN-MASQ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("masquerade stop ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A wrong argument is a usage error, not a silent no-op.
	p := filepath.Join(t.TempDir(), "routes.sh")
	if err := os.WriteFile(p, []byte(RoutesScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", p, "restart")
	cmd.Env = env
	if err := cmd.Run(); err == nil {
		t.Error("routes.sh restart succeeded")
	}
}

// TestScriptsInNetworkNamespace runs the scripts with the real ip and iptables in a
// private network namespace (unshare -n: needs root or user namespaces): start twice
// (idempotent), then stop, which must leave nothing behind.
func TestScriptsInNetworkNamespace(t *testing.T) {
	for _, tool := range []string{"unshare", "ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s is not installed, so the scripts are NOT run against the real ip/iptables", tool)
		}
	}
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: cannot create a network namespace (unshare -n: %v %s), so the scripts are NOT run against the real ip/iptables", err, out)
	}
	for _, v := range variants() {
		if v.name != "example-1.36" && v.name != "dual-stack" && v.name != "ipv6-only" {
			continue
		}
		t.Run(v.name, func(t *testing.T) { scriptsInNetns(t, resolve(t, v)) })
	}
}

// scriptsInNetns is TestScriptsInNetworkNamespace for one cluster: the node's address of
// each family on a veth, each family's routes and NAT rules listed by its own tools.
func scriptsInNetns(t *testing.T, c *model.Cluster) {
	n := c.Nodes[0]
	files, _, err := Node(c, n)
	if err != nil {
		t.Fatal(err)
	}
	if c.HasIPv6() {
		if out, err := exec.Command("unshare", "-n", "ip6tables", "-w", "-t", "nat", "-S").CombinedOutput(); err != nil {
			t.Skipf("SKIPPED: ip6tables' nat table is not usable here (%v %s), so the IPv6 rules are NOT run against the real tools", err, out)
		}
	}
	dir := t.TempDir()
	writeRoot(t, dir, files)
	routes := filepath.Join(dir, paths.RoutesScript)
	masq := filepath.Join(dir, paths.MasqueradeScript)
	addrs, show := "", ""
	for _, a := range n.Addresses {
		tool, fam := "iptables", "-4"
		if a.Is6() {
			tool, fam = "ip6tables", "-6"
			addrs += "ip addr add " + a.String() + "/64 dev sg0 nodad\n"
		} else {
			addrs += "ip addr add " + a.String() + "/24 dev sg0\n"
		}
		show += "ip " + fam + " route show\n" + tool + " -w -t nat -S\n"
	}
	script := `set -e
ip link add sg0 type veth peer name sg1
` + addrs + `ip link set sg0 up
ip link set sg1 up
for i in 1 2; do sh ` + routes + ` start ` + n.Name + `; sh ` + masq + ` start; done
echo "== started"
` + show + `sh ` + routes + ` stop ` + n.Name + `
sh ` + masq + ` stop
echo "== stopped"
` + show
	out, err := exec.Command("unshare", "-n", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	started, stopped, _ := strings.Cut(string(out), "== stopped")
	for _, o := range c.Nodes {
		if o == n {
			continue
		}
		for f, p := range o.PodCIDRs {
			line := p.String() + " via " + o.Addresses[f].String() + " dev sg0"
			if strings.Count(started, line) != 1 {
				t.Errorf("after start twice, want one route %q:\n%s", line, started)
			}
			if strings.Contains(stopped, p.String()) {
				t.Errorf("route to %s left after stop:\n%s", p, stopped)
			}
		}
	}
	fams := len(c.PodCIDRs)
	if strings.Count(started, "-j "+MasqueradeChain) != fams || strings.Count(started, "-j MASQUERADE") != fams {
		t.Errorf("after start twice, want one jump and one MASQUERADE rule per family (%d):\n%s", fams, started)
	}
	for _, p := range c.PodCIDRs {
		if !strings.Contains(started, "-s "+p.String()+" ! -d "+p.String()) {
			t.Errorf("no MASQUERADE rule for pod range %s:\n%s", p, started)
		}
	}
	if strings.Contains(stopped, MasqueradeChain) {
		t.Errorf("chain left after stop:\n%s", stopped)
	}
}
