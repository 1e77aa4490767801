package nodeconfig

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// tomlSettings reads the "[table] key = value" settings of a simple TOML file (the shape
// both our config and `containerd config dump` have), keyed "table.key".
func tomlSettings(data string) map[string]string {
	out := map[string]string{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			table = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if ok {
				out[table+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// TestContainerdAcceptsConfig loads the rendered config with the real containerd
// (`containerd --config <file> config dump`, no daemon needed) and checks that every
// setting survives. containerd 1.6 and 1.7 drop unknown keys silently, without a warning,
// so the dump is the only way to notice a misspelt or misplaced key.
func TestContainerdAcceptsConfig(t *testing.T) {
	ctr, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("SKIPPED: containerd is not installed, so config.toml is NOT checked against a real containerd (apt-get install containerd)")
	}
	ver, _ := exec.Command(ctr, "--version").Output()
	t.Logf("checking with %s", strings.TrimSpace(string(ver)))
	c := resolve(t, variants()[0])
	files, _, err := Node(c, c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	var conf []byte
	for _, f := range files {
		if f.Path == paths.ContainerdConfig {
			conf = f.Data
		}
	}
	check := func(conf []byte) []string {
		p := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(p, conf, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ctr, "--config", p, "config", "dump")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		dump, err := cmd.Output()
		if err != nil {
			return []string{"containerd --config " + p + " config dump: " + err.Error() + "\n" + stderr.String()}
		}
		var problems []string
		if strings.Contains(strings.ToLower(stderr.String()), "unknown") || strings.Contains(strings.ToLower(stderr.String()), "warn") {
			problems = append(problems, "containerd warned: "+stderr.String())
		}
		got := tomlSettings(string(dump))
		for k, v := range tomlSettings(string(conf)) {
			if k == ".version" {
				continue // the dump writes the format version it migrated to
			}
			if got[k] != v {
				problems = append(problems, k+" = "+v+" is not in containerd's view (got "+got[k]+"): unknown or misplaced key")
			}
		}
		return problems
	}
	for _, p := range check(conf) {
		t.Error(p)
	}
	// The check can fail: a misspelt key disappears from the dump.
	broken := strings.Replace(string(conf), "sandbox_image =", "sandbox_imag =", 1)
	if len(check([]byte(broken))) == 0 {
		t.Error("a misspelt key went unnoticed")
	}
	// runc's options table is passed through to the shim uninterpreted, so containerd
	// keeps any key there; check the one that matters by name (runc's Options.SystemdCgroup).
	if !strings.Contains(string(conf), "runtimes.runc.options]\n            SystemdCgroup = true\n") {
		t.Errorf("SystemdCgroup = true is not in the runc options table:\n%s", conf)
	}
}
