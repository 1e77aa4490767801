package e2e

// Reading a bundle's systemd units the way systemd would, so the node boot test runs each
// service with exactly the command line its unit gives.

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// nbUnit is what the test needs of a service unit after its drop-ins: the commands and
// the settings it honours.
type nbUnit struct {
	Name      string
	Files     []string   // the unit file, then its drop-ins, as read
	ExecStart [][]string // in order; systemd runs them one after the other (Type=oneshot)
	Settings  map[string]string
}

// nbReadUnit reads /etc/systemd/system/<name> and its drop-ins <name>.d/*.conf (in name
// order) from a node's rootfs, as systemd merges them: a later assignment of a setting
// wins, an empty ExecStart= clears the commands before it, lines ending in a backslash
// continue, '#' and ';' start comments. The unit need not exist when drop-ins do
// (containerd.service comes from the OS package).
func nbReadUnit(rootfs, name string) (*nbUnit, error) {
	u := &nbUnit{Name: name, Settings: map[string]string{}}
	dir := filepath.Join(rootfs, filepath.FromSlash(paths.SystemdDir))
	files := []string{filepath.Join(dir, name)}
	dropins, _ := filepath.Glob(filepath.Join(dir, name+".d", "*.conf"))
	sort.Strings(dropins)
	files = append(files, dropins...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) && f == files[0] {
			continue
		}
		if err != nil {
			return nil, err
		}
		u.Files = append(u.Files, f)
		if err := u.parse(f, string(data)); err != nil {
			return nil, err
		}
	}
	if len(u.Files) == 0 {
		return nil, fmt.Errorf("no unit %s and no drop-ins for it in %s", name, dir)
	}
	return u, nil
}

func (u *nbUnit) parse(file, text string) error {
	section := ""
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: not a key=value line: %q", file, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if section != "Service" {
			continue
		}
		if key != "ExecStart" {
			u.Settings[key] = value
			continue
		}
		if value == "" {
			u.ExecStart = nil
			continue
		}
		argv, err := nbSplitCommand(value)
		if err != nil {
			return fmt.Errorf("%s:%d: ExecStart: %w", file, n, err)
		}
		u.ExecStart = append(u.ExecStart, argv)
	}
	return nil
}

// nbSplitCommand splits an ExecStart value into words: whitespace separates, single and
// double quotes group. Prefixes (-, @, +, !), specifiers (%) and variables ($) are refused:
// the test would have to interpret them, and scratchgen does not write them.
func nbSplitCommand(s string) ([]string, error) {
	if strings.ContainsAny(s[:1], "-@+!:") {
		return nil, fmt.Errorf("%q: the command prefix %q is not supported by the test", s, s[:1])
	}
	if strings.ContainsAny(s, "%$") {
		return nil, fmt.Errorf("%q: specifiers and variables are not supported by the test", s)
	}
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			return nil, fmt.Errorf("%q: backslash escapes are not supported by the test", s)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return words, nil
}

// Single returns the unit's one ExecStart (a service, not a oneshot list).
func (u *nbUnit) Single() ([]string, error) {
	if len(u.ExecStart) != 1 {
		return nil, fmt.Errorf("%s (%s): %d ExecStart commands after drop-ins, want exactly one", u.Name, strings.Join(u.Files, ", "), len(u.ExecStart))
	}
	return u.ExecStart[0], nil
}

// TestNodeUnitParsing runs without root: the parser on systemd's rules, and on every
// service unit a render writes.
func TestNodeUnitParsing(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, filepath.FromSlash(paths.SystemdDir))
	if err := os.MkdirAll(filepath.Join(sys, "x.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(sys, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("x.service", "[Unit]\nExecStart=/not/this\n[Service]\nExecStart=/usr/bin/x --a=1\nRestart=always\n")
	write("x.service.d/20-b.conf", "[Service]\nLimitNOFILE=10\n")
	write("x.service.d/10-a.conf", "# c\n[Service]\nExecStart=\nExecStart=/usr/local/bin/x \\\n    --b='two words' \\\n    \"--c=3\"\nLimitNOFILE=5\n")
	u, err := nbReadUnit(dir, "x.service")
	if err != nil {
		t.Fatal(err)
	}
	argv, err := u.Single()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(argv, "|"), "/usr/local/bin/x|--b=two words|--c=3"; got != want {
		t.Errorf("ExecStart %q, want %q", got, want)
	}
	if u.Settings["LimitNOFILE"] != "10" || u.Settings["Restart"] != "always" {
		t.Errorf("settings %v", u.Settings)
	}
	for _, bad := range []string{"-/bin/x", "/bin/x $A", "/bin/x %n", "/bin/x 'a", `/bin/x a\ b`} {
		if _, err := nbSplitCommand(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}

	// A real render: every unit the node test runs has a command it can run.
	spec := `apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata: {name: units}
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: 10.0.0.10
  network: {podCIDR: 10.10.0.0/16}
  nodes:
  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}
  - {name: worker-1, address: 10.0.0.21, roles: [worker]}
`
	specFile := filepath.Join(dir, "units.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"render", "-f", specFile, "-o", filepath.Join(dir, "out")}, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("render: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, node := range []string{"cp-1", "worker-1"} {
		rootfs := filepath.Join(dir, "out", "units", "nodes", node, "rootfs")
		for _, unit := range []string{"kubelet.service", "kube-proxy.service"} {
			u, err := nbReadUnit(rootfs, unit)
			if err != nil {
				t.Fatal(err)
			}
			argv, err := u.Single()
			if err != nil {
				t.Fatal(err)
			}
			want := "/usr/local/bin/" + strings.TrimSuffix(unit, ".service")
			if argv[0] != want || !contains(argv, "--hostname-override="+node) {
				t.Errorf("%s on %s: ExecStart %q, want %s … --hostname-override=%s", unit, node, argv, want, node)
			}
		}
		for _, unit := range []string{"scratchgen-kernel.service", "scratchgen-routes.service", "scratchgen-masquerade.service"} {
			u, err := nbReadUnit(rootfs, unit)
			if err != nil {
				t.Fatal(err)
			}
			if len(u.ExecStart) == 0 {
				t.Errorf("%s on %s: no ExecStart", unit, node)
			}
		}
		u, err := nbReadUnit(rootfs, "containerd.service")
		if err != nil {
			t.Fatal(err)
		}
		if u.Settings["LimitNOFILE"] == "" || len(u.ExecStart) != 0 {
			t.Errorf("containerd.service drop-in on %s: settings %v, commands %q", node, u.Settings, u.ExecStart)
		}
		if got := path.Base(u.Files[0]); got != "10-scratchgen.conf" {
			t.Errorf("containerd.service on %s read from %s", node, got)
		}
	}
}
