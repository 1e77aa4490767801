//go:build linux

package machine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
)

const (
	// suite is the Debian release of the image.
	suite = "bookworm"
	// fixesVersion names the image fixes below; bump it when they change so
	// that cached images are rebuilt.
	fixesVersion = "fixes-2"
	// defaultMirror is used when the host's apt sources name none.
	defaultMirror = "http://deb.debian.org/debian"
	// ShimPath is the machine's init: the PID-1 cgroup shim that execs systemd.
	ShimPath = "/usr/local/sbin/cgrw-init"
)

// baseInclude are the packages debootstrap adds to the minbase variant.
var baseInclude = []string{"systemd", "systemd-sysv", "dbus", "iproute2", "iptables", "kmod", "ca-certificates"}

// imagePackages are installed with apt inside the debootstrapped image. The CNI plugins
// stay in Debian's /usr/lib/cni: the machine test's bundle carries them to /opt/cni/bin,
// from an archive made of these files.
var imagePackages = []string{"containerd", "runc", "containernetworking-plugins", "conntrack", "cloud-init", "rsync"}

// cgrwInit remounts the v1 controllers that nspawn mounts read-only
// read-write, hides six host sysctls that the kubelet would otherwise write
// behind per-machine read-only copies, and execs systemd.
const cgrwInit = `#!/bin/sh
for d in /sys/fs/cgroup/*; do [ -L "$d" ] && continue
  case "$d" in */unified|*/systemd) continue;; esac
  mountpoint -q "$d" && mount -o remount,bind,rw "$d"; done
mkdir -p /run/fake-sysctl
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  k=${kv%=*}; f=/run/fake-sysctl/$(echo $k | tr / .); echo ${kv#*=} > $f
  mount --bind $f /proc/sys/$k && mount -o remount,bind,ro /proc/sys/$k; done
exec /lib/systemd/systemd "$@"
`

// noCloudCfg limits cloud-init to the NoCloud seed and skips what fails or
// is useless in a machine.
const noCloudCfg = "datasource_list: [ NoCloud ]\nlocale: false\nssh_genkeytypes: []\n"

// Image builds the machine image, a Debian bookworm root directory, under
// <cacheDir>/machine/image-<key> and returns its path; an image already
// there is reused. The key hashes the package lists, the image fixes and the
// host's kernel release (the image carries a modules.builtin stub for it).
// The image is built in a temporary directory beside it and renamed into
// place when complete, under a lock that serializes builders. Progress lines
// go to log (nil discards them).
func Image(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	l := newLogger(log)
	cache, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	kernel, err := kernelRelease()
	if err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	key := imageKey(kernel)
	dir := filepath.Join(cache, "machine", "image-"+key)
	if ok, err := isImage(dir); err != nil || ok {
		return dir, err
	}
	unlock, err := k8sbin.LockFile(ctx, filepath.Join(cache, "locks", "machine-image-"+key+".lock"), func() {
		l.printf("waiting for another process building image-%s", key)
	})
	if err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	defer unlock()
	if ok, err := isImage(dir); err != nil || ok {
		return dir, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	if err := removeStale(filepath.Dir(dir), "image-"+key+".tmp-*"); err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "image-"+key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename, a no-op
	if err := buildImage(ctx, l, tmp, key, kernel); err != nil {
		return "", fmt.Errorf("building machine image %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("building machine image: %w", err)
	}
	l.printf("image ready: %s", dir)
	return dir, nil
}

// isImage reports whether dir holds a complete image.
func isImage(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(ShimPath, "/")))
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, fmt.Errorf("checking machine image: %w", err)
}

// imageKey is a short hash of everything the image is made of.
func imageKey(kernel string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n", suite, strings.Join(baseInclude, ","),
		strings.Join(imagePackages, ","), fixesVersion, kernel, cgrwInit, noCloudCfg)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// buildImage debootstraps into dir, installs the packages and applies the
// fixes.
func buildImage(ctx context.Context, l *logger, dir, key, kernel string) error {
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp made it 0700: it becomes the machine's /
		return err
	}
	mirror, extra, err := hostMirrors()
	if err != nil {
		return err
	}
	start := time.Now()
	l.printf("debootstrap %s from %s into %s", suite, mirror, dir)
	if _, err := run(ctx, nil, "debootstrap", "--variant=minbase", "--include="+strings.Join(baseInclude, ","),
		suite, dir, mirror); err != nil {
		return err
	}
	l.printf("debootstrap done in %s", time.Since(start).Round(time.Second))

	sources := fmt.Sprintf("deb %s %s main\n", mirror, suite)
	for _, e := range extra {
		sources += e + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		return err
	}

	start = time.Now()
	l.printf("apt-get install %s", strings.Join(imagePackages, " "))
	script := "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " +
		strings.Join(imagePackages, " ") + " && apt-get clean && rm -rf /var/lib/apt/lists/*"
	cg, err := newCgroupSet("image-" + key)
	if err != nil {
		return err
	}
	_, err = run(ctx, nil, cg.wrap([]string{"systemd-nspawn", "-q", "-D", dir, "--machine=sg-image-" + key,
		"--register=no", "--keep-unit", "--pipe", "sh", "-c", script})...)
	if rerr := cg.remove(); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	l.printf("apt-get done in %s", time.Since(start).Round(time.Second))

	return applyFixes(ctx, dir, kernel)
}

// applyFixes makes the image fit to run a node in a machine on this host.
func applyFixes(ctx context.Context, dir, kernel string) error {
	p := func(rel string) string { return filepath.Join(dir, rel) }
	// The host has no loadable modules: declare the two that the bundle
	// modprobes as built in, so that modprobe succeeds.
	mods := p("lib/modules/" + kernel)
	if err := os.MkdirAll(mods, 0o755); err != nil {
		return err
	}
	builtin := "kernel/net/bridge/br_netfilter.ko\nkernel/fs/overlayfs/overlay.ko\n"
	if err := os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte(builtin), 0o644); err != nil {
		return err
	}
	if _, err := run(ctx, nil, "chroot", dir, "depmod", "-a", kernel); err != nil {
		return err
	}
	if err := os.WriteFile(p(ShimPath), []byte(cgrwInit), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(p(ShimPath), 0o755); err != nil { // despite the umask
		return err
	}
	if err := os.WriteFile(p("etc/cloud/cloud.cfg.d/90-nocloud.cfg"), []byte(noCloudCfg), 0o644); err != nil {
		return err
	}
	// Off unless SeedCloudInit arms it: the one-entry datasource_list above
	// would enable it even without a seed.
	return os.WriteFile(p(cloudInitDisabled), nil, 0o644)
}

// hostMirrors returns the Debian mirror of the host's apt sources for the
// image's suite (default http://deb.debian.org/debian) and, as sources.list
// lines, the host's sources for its -updates and -security suites.
func hostMirrors() (mirror string, extra []string, err error) {
	files, err := filepath.Glob("/etc/apt/sources.list.d/*")
	if err != nil {
		return "", nil, fmt.Errorf("reading apt sources: %w", err)
	}
	files = append([]string{"/etc/apt/sources.list"}, files...)
	more := map[string]string{suite + "-updates": "", suite + "-security": ""}
	for _, f := range files {
		deb822 := strings.HasSuffix(f, ".sources")
		if !deb822 && !strings.HasSuffix(f, ".list") {
			continue
		}
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("reading apt sources: %w", err)
		}
		for _, s := range parseSources(string(b), deb822) {
			if s.suite == suite && mirror == "" {
				mirror = s.uri
			}
			if u, ok := more[s.suite]; ok && u == "" {
				more[s.suite] = s.uri
			}
		}
	}
	if mirror == "" {
		mirror = defaultMirror
	}
	for _, s := range []string{suite + "-updates", suite + "-security"} {
		if more[s] != "" {
			extra = append(extra, fmt.Sprintf("deb %s %s main", more[s], s))
		}
	}
	return mirror, extra, nil
}

// aptSource is one URI and suite of an apt "deb" source.
type aptSource struct{ uri, suite string }

// parseSources reads the deb sources of a one-line sources.list or a deb822
// .sources file.
func parseSources(text string, deb822 bool) []aptSource {
	var out []aptSource
	if !deb822 {
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			f := strings.Fields(strings.TrimSpace(sc.Text()))
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if strings.HasPrefix(f[0], "[") { // options
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) > 0 {
					f = f[1:]
				}
			}
			if len(f) >= 2 {
				out = append(out, aptSource{uri: f[0], suite: f[1]})
			}
		}
		return out
	}
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, u := range strings.Fields(fields["uris"]) {
			for _, s := range strings.Fields(fields["suites"]) {
				out = append(out, aptSource{uri: u, suite: s})
			}
		}
	}
	return out
}

// kernelRelease is the host's `uname -r`.
func kernelRelease() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", fmt.Errorf("reading the kernel release: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// run runs argv, with env added to the environment, and returns its
// combined output; the error carries the output's tail.
func run(ctx context.Context, env []string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("running %s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 4000))
	}
	return out.String(), nil
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// logger prints progress lines.
type logger struct{ w io.Writer }

func newLogger(w io.Writer) *logger {
	if w == nil {
		w = io.Discard
	}
	return &logger{w: w}
}

func (l *logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "machine: "+format+"\n", args...)
}
