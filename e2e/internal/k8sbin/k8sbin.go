// Package k8sbin builds real Kubernetes and etcd binaries from Go modules at
// pinned versions (the e2e boot test cannot download release binaries).
//
// For Kubernetes it generates a throwaway tools module under
// <cache>/src/k8s-<version>/ that requires k8s.io/kubernetes@<version> and
// replaces every staging module (k8s.io/api, k8s.io/client-go, ...; read from
// k8s.io/kubernetes's own go.mod) with its published v0.Y.Z version, plus one
// tiny main per command. etcd gets a similar module under
// <cache>/src/etcd-<version>/. Binaries land in
//
//	<cache>/bin/k8s-<version>/<component>
//	<cache>/bin/etcd-<version>/{etcd,etcdctl}
//	<cache>/bin/k8s-<version>-etcd-<version>/<component> -> ../<set>/<component>  (only when both sets are requested)
//
// Binaries are moved into place with rename(2) after being built and checked
// with --version, so a binary that exists is complete; cached binaries are
// reused without running go. Delete the cache directory to force a rebuild.
package k8sbin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Options selects what Build builds and where.
type Options struct {
	Kubernetes string // e.g. v1.36.3; required if a Kubernetes component is requested
	Etcd       string // e.g. v3.6.8; required if etcd or etcdctl is requested
	CacheDir   string // e.g. <repo>/e2e/.cache
	Components []string
	Log        io.Writer // progress lines; nil discards them
}

// Kubernetes component names accepted in Options.Components.
var KubernetesComponents = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler",
	"kubelet", "kube-proxy", "kubectl",
}

// Etcd component names accepted in Options.Components. etcdctl is optional.
var EtcdComponents = []string{"etcd", "etcdctl"}

// Build makes sure the named components exist for the given versions in
// cacheDir and returns the directory holding them.
// components: any of "kube-apiserver","kube-controller-manager","kube-scheduler","kubelet","kube-proxy","kubectl","etcd" (and "etcdctl").
func Build(ctx context.Context, opts Options) (binDir string, err error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	l := &logger{w: logw}
	if opts.CacheDir == "" {
		return "", errors.New("k8sbin: CacheDir is required")
	}
	cache, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return "", err
	}
	sets, err := planSets(opts)
	if err != nil {
		return "", fmt.Errorf("k8sbin: %w", err)
	}
	b := &builder{cache: cache, log: l}
	var dirs []string
	for _, s := range sets {
		d, err := b.ensureSet(ctx, s)
		if err != nil {
			return "", fmt.Errorf("k8sbin: %s: %w", s.name(), err)
		}
		dirs = append(dirs, d)
	}
	if len(sets) == 1 {
		return dirs[0], nil
	}
	d, err := b.combine(sets)
	if err != nil {
		return "", fmt.Errorf("k8sbin: %w", err)
	}
	return d, nil
}

type setKind string

const (
	kindK8s  setKind = "k8s"
	kindEtcd setKind = "etcd"
)

// set is a group of components built from one tools module.
type set struct {
	kind       setKind
	version    string
	components []string // requested, deduplicated, in request order
}

func (s set) name() string { return string(s.kind) + "-" + s.version }

func planSets(opts Options) ([]set, error) {
	if len(opts.Components) == 0 {
		return nil, errors.New("no components requested")
	}
	k8s := set{kind: kindK8s, version: opts.Kubernetes}
	etcd := set{kind: kindEtcd, version: opts.Etcd}
	seen := map[string]bool{}
	for _, c := range opts.Components {
		c = strings.TrimSpace(c)
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		switch {
		case contains(KubernetesComponents, c):
			k8s.components = append(k8s.components, c)
		case contains(EtcdComponents, c):
			etcd.components = append(etcd.components, c)
		default:
			return nil, fmt.Errorf("unknown component %q (known: %s, %s)", c,
				strings.Join(KubernetesComponents, ","), strings.Join(EtcdComponents, ","))
		}
	}
	var sets []set
	if len(k8s.components) > 0 {
		if _, err := k8sMinor(k8s.version); err != nil {
			return nil, err
		}
		sets = append(sets, k8s)
	}
	if len(etcd.components) > 0 {
		if err := checkEtcdVersion(etcd.version); err != nil {
			return nil, err
		}
		sets = append(sets, etcd)
	}
	if len(sets) == 0 {
		return nil, errors.New("no components requested")
	}
	return sets, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type logger struct{ w io.Writer }

func (l *logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "k8sbin: "+format+"\n", args...)
}

type builder struct {
	cache string
	log   *logger
}

func (b *builder) binDir(s set) string { return filepath.Join(b.cache, "bin", s.name()) }
func (b *builder) srcDir(s set) string { return filepath.Join(b.cache, "src", s.name()) }

// missing returns the requested components of s not yet in its bin dir.
func (b *builder) missing(s set) []string {
	var out []string
	for _, c := range s.components {
		fi, err := os.Stat(filepath.Join(b.binDir(s), c))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			out = append(out, c)
		}
	}
	return out
}

func (b *builder) ensureSet(ctx context.Context, s set) (string, error) {
	dir := b.binDir(s)
	if len(b.missing(s)) == 0 {
		return dir, nil // fast path: no lock, no go
	}
	unlock, err := LockFile(ctx, filepath.Join(b.cache, "locks", s.name()+".lock"), func() {
		b.log.printf("%s: waiting for another build to finish", s.name())
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	missing := b.missing(s) // another process may have built them meanwhile
	if len(missing) == 0 {
		return dir, nil
	}

	start := time.Now()
	b.log.printf("%s: building %s", s.name(), strings.Join(missing, ", "))
	g, err := newGoTool(b.log)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Temp dirs of builds that were killed; we hold the lock, so they are stale.
	stale, _ := filepath.Glob(filepath.Join(b.cache, "bin", ".tmp-"+s.name()+"+*"))
	for _, d := range stale {
		os.RemoveAll(d)
	}

	var ld string
	switch s.kind {
	case kindK8s:
		ld, err = b.prepareK8s(ctx, g, s)
	case kindEtcd:
		ld, err = b.prepareEtcd(ctx, g, s)
	}
	if err != nil {
		return "", err
	}

	tmp, err := os.MkdirTemp(filepath.Join(b.cache, "bin"), ".tmp-"+s.name()+"+")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags", ld, "-o", tmp + string(os.PathSeparator)}
	if s.kind == kindK8s {
		args = append(args, "-tags", buildTags)
	}
	for _, c := range missing {
		args = append(args, "./cmd/"+c)
	}
	bstart := time.Now()
	b.log.printf("%s: go build %s (this takes minutes when cold)", s.name(), strings.Join(args[len(args)-len(missing):], " "))
	if _, err := g.run(ctx, b.srcDir(s), args...); err != nil {
		return "", err
	}
	b.log.printf("%s: go build done in %s", s.name(), time.Since(bstart).Round(time.Second))
	for _, c := range missing {
		if err := verifyVersion(ctx, filepath.Join(tmp, c), c, s.version); err != nil {
			return "", err
		}
	}
	for _, c := range missing {
		if err := installFile(filepath.Join(tmp, c), filepath.Join(dir, c)); err != nil {
			return "", err
		}
	}
	b.log.printf("%s: installed %s in %s (total %s)", s.name(), strings.Join(missing, ", "), dir, time.Since(start).Round(time.Second))
	return dir, nil
}

// prepareK8s generates and tidies the Kubernetes tools module and returns the
// linker flags.
func (b *builder) prepareK8s(ctx context.Context, g *goTool, s set) (string, error) {
	mod, err := b.download(ctx, g, "k8s.io/kubernetes", s.version)
	if err != nil {
		return "", err
	}
	upstream, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return "", err
	}
	gomod, err := k8sGoMod(s.version, string(upstream))
	if err != nil {
		return "", err
	}
	ctxCtors := map[string]bool{}
	for name, c := range k8sServerCtors {
		rel := strings.TrimPrefix(c.AppPkg, "k8s.io/kubernetes/")
		n, err := funcParams(filepath.Join(mod.Dir, filepath.FromSlash(rel)), c.Func)
		if err != nil {
			return "", fmt.Errorf("%s: %v", name, err)
		}
		switch {
		case len(n) == 0 || (len(n) == 1 && strings.HasPrefix(n[0], "...")):
		case len(n) == 1 && n[0] == "context.Context":
			ctxCtors[c.Func] = true
		default:
			return "", fmt.Errorf("%s: unsupported signature %s(%s) in %s@%s", name, c.Func, strings.Join(n, ", "), c.AppPkg, s.version)
		}
	}
	if err := b.writeToolsModule(ctx, g, s, gomod, k8sMains(ctxCtors)); err != nil {
		return "", err
	}
	vars, err := k8sVersionVars(s.version, mod.Time)
	if err != nil {
		return "", err
	}
	return b.versionLdflags(ctx, g, s, []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"}, vars)
}

func (b *builder) prepareEtcd(ctx context.Context, g *goTool, s set) (string, error) {
	mod, err := b.download(ctx, g, "go.etcd.io/etcd/server/v3", s.version)
	if err != nil {
		return "", err
	}
	upstream, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return "", err
	}
	gomod, err := etcdGoMod(s.version, string(upstream))
	if err != nil {
		return "", err
	}
	if err := b.writeToolsModule(ctx, g, s, gomod, etcdMains()); err != nil {
		return "", err
	}
	return b.versionLdflags(ctx, g, s, []string{"go.etcd.io/etcd/api/v3/version"},
		[][2]string{{"Version", strings.TrimPrefix(s.version, "v")}})
}

// versionLdflags sets vars in each of pkgs that declares them as a
// package-level variable (the linker would silently ignore the others).
func (b *builder) versionLdflags(ctx context.Context, g *goTool, s set, pkgs []string, vars [][2]string) (string, error) {
	out, err := g.run(ctx, b.srcDir(s), append([]string{"list", "-e", "-f", "{{.ImportPath}}\t{{.Dir}}"}, pkgs...)...)
	if err != nil {
		return "", err
	}
	var xs []xVar
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, dir, ok := strings.Cut(line, "\t")
		if !ok || dir == "" {
			b.log.printf("%s: %s not in build, skipping its version vars", s.name(), pkg)
			continue
		}
		declared, err := packageVars(dir)
		if err != nil {
			return "", err
		}
		for _, v := range vars {
			if declared[v[0]] {
				xs = append(xs, xVar{Pkg: pkg, Name: v[0], Value: v[1]})
			}
		}
	}
	if len(xs) == 0 {
		return "", fmt.Errorf("no version variables found in %s", strings.Join(pkgs, ", "))
	}
	return ldflags(xs)
}

type modInfo struct {
	Path, Version, GoMod, Dir, Info, Error string
	Time                                   string `json:"-"`
}

// download runs go mod download for path@version and returns where it is.
// It runs in <cache>/src/.download, a module of our own, so that no
// surrounding module (e.g. the repository) is ever touched.
func (b *builder) download(ctx context.Context, g *goTool, path, version string) (*modInfo, error) {
	dir := filepath.Join(b.cache, "src", ".download")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "go.mod"), []byte("module scratchgen.invalid/k8sbin/download\n\ngo 1.21\n"), 0o644); err != nil {
		return nil, err
	}
	b.log.printf("go mod download %s@%s", path, version)
	out, err := g.run(ctx, dir, "mod", "download", "-json", path+"@"+version)
	var m modInfo
	if jerr := json.Unmarshal(out, &m); jerr == nil && m.Error != "" {
		return nil, fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("go mod download %s@%s: %v", path, version, err)
	}
	if m.GoMod == "" || m.Dir == "" {
		return nil, fmt.Errorf("go mod download %s@%s: incomplete result", path, version)
	}
	if m.Info != "" {
		var info struct{ Time time.Time }
		if data, err := os.ReadFile(m.Info); err == nil && json.Unmarshal(data, &info) == nil && !info.Time.IsZero() {
			m.Time = info.Time.UTC().Format(time.RFC3339)
		}
	}
	return &m, nil
}

const tidyStamp = ".scratchgen-tidy"

// writeToolsModule writes go.mod and cmd/<name>/main.go, then runs go mod
// tidy, unless the same content was already generated and tidied.
func (b *builder) writeToolsModule(ctx context.Context, g *goTool, s set, gomod string, mains map[string]string) error {
	dir := b.srcDir(s)
	files := map[string]string{"go.mod": gomod}
	for name, src := range mains {
		files[filepath.Join("cmd", name, "main.go")] = src
	}
	hash := contentHash(files)
	if stamp, err := os.ReadFile(filepath.Join(dir, tidyStamp)); err == nil && strings.TrimSpace(string(stamp)) == hash {
		if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
			b.log.printf("%s: tools module %s up to date", s.name(), dir)
			return nil
		}
	}
	os.Remove(filepath.Join(dir, tidyStamp))
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	start := time.Now()
	b.log.printf("%s: go mod tidy in %s", s.name(), dir)
	if _, err := g.run(ctx, dir, "mod", "tidy"); err != nil {
		return err
	}
	b.log.printf("%s: go mod tidy done in %s", s.name(), time.Since(start).Round(time.Second))
	return writeFileAtomic(filepath.Join(dir, tidyStamp), []byte(hash+"\n"), 0o644)
}

// combine makes <cache>/bin/<set1>-<set2>/ with relative symlinks to the
// requested components of every set.
func (b *builder) combine(sets []set) (string, error) {
	names := make([]string, len(sets))
	for i, s := range sets {
		names[i] = s.name()
	}
	dir := filepath.Join(b.cache, "bin", strings.Join(names, "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, s := range sets {
		for _, c := range s.components {
			target := filepath.Join("..", s.name(), c)
			link := filepath.Join(dir, c)
			if t, err := os.Readlink(link); err == nil && t == target {
				continue
			}
			tmp := link + ".tmp-" + fmt.Sprint(os.Getpid())
			os.Remove(tmp)
			if err := os.Symlink(target, tmp); err != nil {
				return "", err
			}
			if err := os.Rename(tmp, link); err != nil {
				os.Remove(tmp)
				return "", err
			}
		}
	}
	return dir, nil
}

// verifyVersion runs the freshly built binary and checks it reports version.
func verifyVersion(ctx context.Context, bin, component, version string) error {
	args, want := []string{"--version"}, "Kubernetes "+version
	switch component {
	case "kubectl":
		args, want = []string{"version", "--client"}, "Client Version: "+version
	case "etcd":
		want = "etcd Version: " + strings.TrimPrefix(version, "v")
	case "etcdctl":
		args, want = []string{"version"}, "etcdctl version: "+strings.TrimPrefix(version, "v")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+os.DevNull, "HOME="+filepath.Dir(bin))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", component, strings.Join(args, " "), err, out)
	}
	if !strings.Contains(string(out), want) {
		return fmt.Errorf("%s %s printed %q, want it to contain %q", component, strings.Join(args, " "), strings.TrimSpace(string(out)), want)
	}
	return nil
}

// goTool runs the go command for tools modules with a controlled environment.
type goTool struct {
	bin string
	env []string
	log *logger
}

func newGoTool(l *logger) (*goTool, error) {
	bin, err := exec.LookPath("go")
	if err != nil {
		bin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(bin); serr != nil {
			return nil, fmt.Errorf("go command not found: %v", err)
		}
	}
	override := map[string]string{
		"GOFLAGS":     "-mod=mod -buildvcs=false",
		"CGO_ENABLED": "0",
		"GOWORK":      "off",
		"GO111MODULE": "on",
		"GOOS":        runtime.GOOS,
		"GOARCH":      runtime.GOARCH,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := override[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range override {
		env = append(env, k+"="+v)
	}
	return &goTool{bin: bin, env: env, log: l}, nil
}

// run runs go with args in dir, streams its stderr to the log and returns
// its stdout. Errors include the tail of stderr.
func (g *goTool) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = dir
	cmd.Env = g.env
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	tail := &tailBuffer{max: 16 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(tail, g.log.w)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("go %s: %w", strings.Join(shortArgs(args), " "), ctx.Err())
		}
		return stdout.Bytes(), fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(shortArgs(args), " "), dir, err, tail.String())
	}
	return stdout.Bytes(), nil
}

func shortArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if i > 0 && args[i-1] == "-ldflags" {
			a = "..."
		}
		out = append(out, a)
	}
	return out
}

type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// writeFileAtomic writes data to path via a temp file and rename.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// installFile fsyncs src and renames it to dst (same file system).
func installFile(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	serr := f.Sync()
	f.Close()
	if serr != nil {
		return serr
	}
	if err := os.Chmod(src, 0o755); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
