package nodeconfig

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/bundle"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// hostUnitDirs are where the host's own units live; verify needs the standard targets
// (sysinit.target, multi-user.target, network-online.target …) inside the root.
var hostUnitDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}

// stubContainerd stands in for the unit the OS containerd package ships, so the drop-in
// is verified against a base unit.
const stubContainerd = `[Unit]
Description=containerd container runtime (test stub)
After=network.target

[Service]
ExecStart=/usr/bin/containerd

[Install]
WantedBy=multi-user.target
`

var execLine = regexp.MustCompile(`(?m)^Exec[A-Za-z]*=[-@:+!]*(\S+)`)

// verifyUnits writes files into a fresh root with the host's units, a containerd.service
// stub and a stub executable for every command the units run, then runs
//
//	systemd-analyze verify --root=<root> --man=no --generators=no <units…>
//
// It returns the command line and the lines that show a problem.
func verifyUnits(t *testing.T, files []bundle.File, units []string) (string, []string, string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED: systemd-analyze is not installed, so the systemd units are NOT verified (apt-get install systemd)")
	}
	var hostDir string
	for _, d := range hostUnitDirs {
		if _, err := os.Stat(filepath.Join(d, "multi-user.target")); err == nil {
			hostDir = d
			break
		}
	}
	if hostDir == "" {
		t.Skipf("SKIPPED: no host unit directory with multi-user.target in %v, so the systemd units are NOT verified", hostUnitDirs)
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "usr/lib/systemd/system"), os.DirFS(hostDir)); err != nil {
		t.Fatalf("copying %s: %v", hostDir, err)
	}
	writeRoot(t, root, append(files, bundle.File{Path: "/usr/lib/systemd/system/containerd.service", Mode: 0o644, Data: []byte(stubContainerd)}))
	// Stub every command our units and the containerd stub run that the root lacks.
	// Bare names are resolved by systemd on its search path, so /usr/bin serves them.
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/etc/systemd/") {
			continue
		}
		for _, m := range execLine.FindAllStringSubmatch(string(f.Data), -1) {
			stub(t, root, m[1])
		}
	}
	stub(t, root, "/usr/bin/containerd")
	args := append([]string{"verify", "--root=" + root, "--man=no", "--generators=no"}, units...)
	out, _ := exec.Command(sa, args...).CombinedOutput()
	cmd := sa + " " + strings.Join(args, " ")
	var problems []string
	ours := append(append([]string{}, units...), "/etc/systemd/", "/etc/scratchgen/")
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		l := strings.ToLower(line)
		bad := strings.Contains(l, "unknown") || strings.Contains(l, "failed") || strings.Contains(l, "not executable") ||
			strings.Contains(l, "invalid") || strings.Contains(l, "ignoring") || strings.Contains(l, "not found")
		for _, u := range ours {
			bad = bad || strings.Contains(line, u)
		}
		if bad {
			problems = append(problems, line)
		}
	}
	return cmd, problems, string(out)
}

func stub(t *testing.T, root, cmd string) {
	t.Helper()
	if cmd == "" {
		return
	}
	p := cmd
	if !path.IsAbs(cmd) {
		p = "/usr/bin/" + cmd
	}
	full := filepath.Join(root, filepath.FromSlash(p))
	if _, err := os.Stat(full); err == nil {
		return // a rendered script
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestSystemdVerify runs systemd-analyze verify over every node's units.
func TestSystemdVerify(t *testing.T) {
	each(t, func(t *testing.T, r rendered) {
		t.Parallel()
		cmd, problems, out := verifyUnits(t, r.files, r.units)
		t.Log(cmd)
		if len(problems) > 0 {
			t.Errorf("%s\nreports:\n%s\nfull output:\n%s", cmd, strings.Join(problems, "\n"), out)
		}
	})
}

// TestSystemdVerifyCanFail proves the check above notices a broken unit and drop-in.
func TestSystemdVerifyCanFail(t *testing.T) {
	c := resolve(t, variants()[0])
	files, units, err := Node(c, c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		switch f.Path {
		case paths.KubeletDropIn:
			files[i].Data = append(append([]byte{}, f.Data...), "Bogus=1\n"...)
		case paths.KernelUnit:
			files[i].Data = append(append([]byte{}, f.Data...), "\n[Nonsense]\nX=1\n"...)
		}
	}
	_, problems, out := verifyUnits(t, files, units)
	joined := strings.Join(problems, "\n")
	if !strings.Contains(joined, "Unknown key 'Bogus'") || !strings.Contains(joined, "Unknown section 'Nonsense'") {
		t.Errorf("broken units were not reported; output:\n%s", out)
	}
}
