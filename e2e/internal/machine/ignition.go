//go:build linux

package machine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
)

// IgnitionVersion is the Ignition release that Ignition builds.
const IgnitionVersion = "v2.24.0"

// Ignition builds the Ignition binary (IgnitionVersion, from the Go module
// proxy, with cgo for libblkid and without SELinux relabeling) under
// <cacheDir>/machine/ignition-<version>/ignition and returns its path; a
// binary already there is reused. The build needs libblkid-dev and a C
// compiler. The binary is checked to run before it is moved into place.
// Progress lines go to log (nil discards them).
func Ignition(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	l := newLogger(log)
	cache, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	dir := filepath.Join(cache, "machine", "ignition-"+IgnitionVersion)
	bin := filepath.Join(dir, "ignition")
	if _, err := os.Stat(bin); err == nil {
		return bin, checkIgnition(ctx, bin)
	}
	unlock, err := k8sbin.LockFile(ctx, filepath.Join(cache, "locks", "machine-ignition-"+IgnitionVersion+".lock"), func() {
		l.printf("waiting for another process building ignition %s", IgnitionVersion)
	})
	if err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, checkIgnition(ctx, bin)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	if err := removeStale(filepath.Dir(dir), "ignition-"+IgnitionVersion+".tmp-*"); err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil { // a directory without the binary
		return "", fmt.Errorf("building ignition: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "ignition-"+IgnitionVersion+".tmp-")
	if err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}

	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	start := time.Now()
	l.printf("building ignition %s", IgnitionVersion)
	ldflags := "-X github.com/coreos/ignition/v2/internal/version.Raw=" + IgnitionVersion +
		" -X github.com/coreos/ignition/v2/internal/distro.selinuxRelabel=false"
	cmd := exec.CommandContext(ctx, gobin, "install", "-ldflags", ldflags,
		"github.com/coreos/ignition/v2/internal@"+IgnitionVersion)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=", "GO111MODULE=on")
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ignition %s (needs libblkid-dev): %w\n%s", IgnitionVersion, err, tail(string(out), 4000))
	}
	if err := os.Rename(filepath.Join(tmp, "internal"), filepath.Join(tmp, "ignition")); err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	if err := checkIgnition(ctx, filepath.Join(tmp, "ignition")); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("building ignition: %w", err)
	}
	l.printf("ignition ready in %s: %s", time.Since(start).Round(time.Second), bin)
	return bin, nil
}

// checkIgnition runs bin -version and checks that it names IgnitionVersion.
func checkIgnition(ctx context.Context, bin string) error {
	out, err := run(ctx, nil, bin, "-version")
	if err != nil {
		return fmt.Errorf("checking ignition: %w", err)
	}
	if !strings.Contains(out, IgnitionVersion) {
		return fmt.Errorf("checking ignition: %s -version printed %q, want %s", bin, strings.TrimSpace(out), IgnitionVersion)
	}
	return nil
}

// ApplyIgnition runs Ignition's fetch-offline and files stages for the
// config file config against the machine root root, as a first boot would,
// keeping Ignition's cache and state in stateDir. Then it applies the units
// that Ignition enabled or disabled (Ignition only writes them to
// /etc/systemd/system-preset/20-ignition.preset) with systemctl preset,
// since the machine's first boot does not run presets (New gives it a
// machine-id). Configs that fetch remote resources are refused. Errors carry
// Ignition's output.
func ApplyIgnition(ctx context.Context, ignitionBin, config, root, stateDir string) error {
	return applyIgnition(ctx, ignitionBin, config, root, stateDir, false)
}

// ApplyIgnitionFiles runs Ignition's fetch stage (which may use the network) and files
// stage for a config that fetches remote files, against a bare root: the files stage
// fetches each remote file and verifies its hash, as on a first boot with a network.
// No presets are applied (a bare root has no units to preset).
func ApplyIgnitionFiles(ctx context.Context, ignitionBin, config, root, stateDir string) error {
	return applyIgnition(ctx, ignitionBin, config, root, stateDir, true)
}

func applyIgnition(ctx context.Context, ignitionBin, config, root, stateDir string, online bool) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("applying ignition config %s: %w", config, err)
	}
	cache := filepath.Join(stateDir, "config-cache.json")
	state := filepath.Join(stateDir, "state")
	neednet := filepath.Join(stateDir, "neednet")
	env := []string{"IGNITION_CONFIG_FILE=" + config}
	common := []string{"-platform", "file", "-root", root, "-config-cache", cache, "-state-file", state, "-log-to-stdout"}
	fetch := []string{ignitionBin, "-stage", "fetch-offline", "-neednet", neednet}
	if online {
		fetch = []string{ignitionBin, "-stage", "fetch"}
	}
	if _, err := run(ctx, env, append(fetch, common...)...); err != nil {
		return fmt.Errorf("applying ignition config %s: %w", config, err)
	}
	if _, err := os.Stat(neednet); err == nil && !online {
		return fmt.Errorf("applying ignition config %s: it needs the network (remote resources), which fetch-offline does not fetch", config)
	}
	if _, err := run(ctx, env, append([]string{ignitionBin, "-stage", "files"}, common...)...); err != nil {
		return fmt.Errorf("applying ignition config %s: %w", config, err)
	}
	if online {
		return nil
	}
	units, err := presetUnits(filepath.Join(root, "etc/systemd/system-preset/20-ignition.preset"))
	if err != nil {
		return fmt.Errorf("applying ignition config %s: %w", config, err)
	}
	if len(units) == 0 {
		return nil
	}
	if _, err := run(ctx, nil, append([]string{"systemctl", "--root=" + root, "preset"}, units...)...); err != nil {
		return fmt.Errorf("applying ignition config %s: presetting units: %w", config, err)
	}
	return nil
}

// presetUnits returns the units named by a preset file's enable and disable
// lines, in order; a missing file names none.
func presetUnits(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var units []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && (fs[0] == "enable" || fs[0] == "disable") {
			units = append(units, fs[1])
		}
	}
	return units, sc.Err()
}
