package e2e

// The machine test's container images: single-layer OCI images made from the built
// binaries, pushed to an in-process registry under their real repository names, then
// pinned, pulled and embedded by scratchgen itself (see TestMachines).

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
	"github.com/scratchgen/scratchgen/generator/model"
)

// envCoreDNS=0 skips building CoreDNS (about 3 minutes cold): its image is then the pause
// image under CoreDNS's name, so pin, pull and render still see every image, and the DNS
// check is skipped.
const envCoreDNS = "SCRATCHGEN_E2E_COREDNS"

// nbImageLayoutVersion changes when the way images are built changes, so cached layers of
// an older layout are not reused.
const nbImageLayoutVersion = "1"

// nbImage is one image the test builds: a binary at a path, an entrypoint where the
// pod does not give a command.
type nbImage struct {
	ref        string   // where it is pushed: <registry>/<repository>:<tag>
	bin        string   // the binary on this machine
	path       string   // its path in the image
	entrypoint []string // nil: the pod's command names the binary (found on PATH)
}

// nbCacheDir is the binary cache of the boot tests (SCRATCHGEN_E2E_CACHE, default e2e/.cache).
func nbCacheDir(t *testing.T) string {
	t.Helper()
	cache := os.Getenv(envCache)
	if cache == "" {
		cache = ".cache"
	}
	abs, err := filepath.Abs(cache)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// nbComponents are the binaries the machine test needs: the control plane's, the
// kubelet, kube-proxy (host services of the bundle) and kubectl (for exec).
var nbComponents = append(append([]string{}, components...), "kubelet", "kube-proxy", "kubectl")

// nbBuildBinaries builds (or reuses) every binary the machine test needs, in the same
// cache and tools modules as the control-plane boot test.
func nbBuildBinaries(t *testing.T, h *Harness) string {
	t.Helper()
	etcd, _, _ := strings.Cut(strings.TrimPrefix(h.Profile.Etcd, "v"), "-")
	start := time.Now()
	dir, err := k8sbin.Build(nbContext(t), k8sbin.Options{
		Kubernetes: h.Version, Etcd: "v" + etcd, CacheDir: nbCacheDir(t),
		Components: nbComponents, Log: logWriter{t},
	})
	if err != nil {
		t.Fatalf("building %s: %v\n(a cold build takes minutes: raise make's E2E_TIMEOUT, or build first with "+
			"go run ./e2e/tools/buildbins -k8s %s -etcd v%s)", strings.Join(nbComponents, ", "), err, h.Version, etcd)
	}
	t.Logf("binaries in %s (%s)", dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// nbContext ends 30s before the test's deadline, so builds fail with a message rather
// than a panic of the test binary.
func nbContext(t *testing.T) context.Context {
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

// nbPauseSource is the pause image's program: the sandbox's first process, which waits
// for the end and reaps orphans, like registry.k8s.io/pause.
const nbPauseSource = `// pause: the pod sandbox's process of the scratchgen machine test.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

// nbWorkloadSource is the workload image's program: an HTTP server whose answers say
// which pod answered, and which makes, on request, the GETs and DNS lookups of the checks
// from inside its pod. As a command (kubectl exec) it does the same once.
const nbWorkloadSource = `// workload: the pod of the scratchgen machine test.
//
//	workload [serve]     HTTP on :8080: / answers the pod's hostname; /get?url=U GETs U
//	                     and answers its body; /lookup?name=N answers N's addresses
//	workload get URL     print URL's body (exit 1 on error)
//	workload lookup NAME print NAME's addresses (exit 1 on error)
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

func get(url string) (string, error) {
	// A new connection each time: a Service must be able to pick another backend.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return string(body), nil
}

func lookup(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return "", err
	}
	sort.Strings(addrs)
	return strings.Join(addrs, " ") + "\n", nil
}

func main() {
	log.SetFlags(0)
	args := os.Args[1:]
	if len(args) == 2 && (args[0] == "get" || args[0] == "lookup") {
		do := get
		if args[0] == "lookup" {
			do = lookup
		}
		out, err := do(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(out)
		return
	}
	if len(args) > 0 && args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: workload [serve] | get URL | lookup NAME")
		os.Exit(2)
	}
	host, _ := os.Hostname()
	answer := func(w http.ResponseWriter, r *http.Request, out string, err error) {
		if err != nil {
			log.Printf("%s %s from %s: %v", r.Method, r.URL, r.RemoteAddr, err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		log.Printf("%s %s from %s", r.Method, r.URL, r.RemoteAddr)
		fmt.Fprint(w, out)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { answer(w, r, host+"\n", nil) })
	http.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		out, err := get(r.URL.Query().Get("url"))
		answer(w, r, out, err)
	})
	http.HandleFunc("/lookup", func(w http.ResponseWriter, r *http.Request) {
		out, err := lookup(r.URL.Query().Get("name"))
		answer(w, r, out, err)
	})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		os.Exit(0)
	}()
	log.Printf("workload %s listening on :8080", host)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
`

// nbBuildTools compiles the pause and workload programs (static, this machine's
// architecture) into <cache>/bin/e2e-node-tools-<hash of their source>/.
func nbBuildTools(t *testing.T, cache string) (pause, workload string) {
	t.Helper()
	sum := sha256.Sum256([]byte(runtime.Version() + nbPauseSource + nbWorkloadSource))
	key := hex.EncodeToString(sum[:6])
	dir := filepath.Join(cache, "bin", "e2e-node-tools-"+key)
	pause, workload = filepath.Join(dir, "pause"), filepath.Join(dir, "workload")
	if nbExecutable(pause) && nbExecutable(workload) {
		return pause, workload
	}
	src := filepath.Join(cache, "src", "e2e-node-tools-"+key)
	for file, content := range map[string]string{
		"go.mod":           "module scratchgen.invalid/e2e-node-tools\n\ngo 1.22\n",
		"pause/main.go":    nbPauseSource,
		"workload/main.go": nbWorkloadSource,
	} {
		p := filepath.Join(src, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache, "bin"), ".tmp-e2e-node-tools-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(nbContext(t), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp+"/", "./pause", "./workload")
	cmd.Dir = src
	cmd.Env = nbGoEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the pause and workload programs in %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !nbExecutable(pause) {
		t.Fatalf("installing %s: %v", dir, err)
	}
	t.Logf("built pause and workload into %s", dir)
	return pause, workload
}

// nbGoEnv is the environment for go commands the test runs: static binaries, no
// workspace, no GOFLAGS of the caller's.
func nbGoEnv() []string {
	env := []string{"CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false"}
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if k != "CGO_ENABLED" && k != "GOWORK" && k != "GOFLAGS" && k != "GOBIN" {
			env = append(env, e)
		}
	}
	return env
}

func nbExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// nbBuildCoreDNS builds CoreDNS at version (its own go.mod, from the module proxy, with
// every plugin as released) into <cache>/bin/coredns-<version>/coredns. It returns "" and
// why when SCRATCHGEN_E2E_COREDNS=0 or the build fails.
func nbBuildCoreDNS(t *testing.T, cache, version string) (bin, why string) {
	t.Helper()
	if os.Getenv(envCoreDNS) == "0" {
		return "", envCoreDNS + "=0"
	}
	dir := filepath.Join(cache, "bin", "coredns-"+version)
	bin = filepath.Join(dir, "coredns")
	if nbExecutable(bin) {
		return bin, ""
	}
	if err := os.MkdirAll(filepath.Join(cache, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache, "bin"), ".tmp-coredns-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	pkg := "github.com/coredns/coredns@" + version
	t.Logf("building CoreDNS: go install %s (about 3 minutes when cold; %s=0 skips it)", pkg, envCoreDNS)
	cmd := exec.CommandContext(nbContext(t), "go", "install", "-trimpath", "-ldflags=-s -w", pkg)
	cmd.Dir = tmp // outside any module: the install uses CoreDNS's own go.mod
	cmd.Env = append(nbGoEnv(), "GOBIN="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("go install %s failed after %s: %v\n%s", pkg, time.Since(start).Round(time.Second), err, nbTail(string(out), 30))
	}
	out, err := exec.Command(filepath.Join(tmp, "coredns"), "-version").CombinedOutput()
	if want := "CoreDNS-" + strings.TrimPrefix(version, "v"); err != nil || !strings.Contains(string(out), want) {
		return "", fmt.Sprintf("the built coredns -version printed %q (%v), want %s", out, err, want)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(tmp, "coredns"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built CoreDNS %s in %s", version, time.Since(start).Round(time.Second))
	return bin, ""
}

func nbTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// nbLayer returns the compressed layer holding bin at p (plus /tmp), cached under
// <cache>/images/ by the binary's hash: compressing 100 MB binaries is the slow part.
func nbLayer(cache, bin, p string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	key := hex.EncodeToString(h.Sum(nil))[:20]
	out := filepath.Join(cache, "images", fmt.Sprintf("%s-%s-v%s.tar.gz", path.Base(p), key, nbImageLayoutVersion))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".tmp-layer-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	zw, _ := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	hdr := func(name string, typ byte, mode, size int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
	}
	if err := hdr("tmp/", tar.TypeDir, 0o1777, 0); err != nil {
		return "", err
	}
	rel := strings.TrimPrefix(p, "/")
	var dirs []string // parents first
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		dirs = append([]string{d + "/"}, dirs...)
	}
	for _, d := range dirs {
		if err := hdr(d, tar.TypeDir, 0o755, 0); err != nil {
			return "", err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if err := hdr(rel, tar.TypeReg, 0o755, fi.Size()); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp.Name(), out)
}

// nbBuildImage is a single-layer OCI image for this machine's platform (linux/amd64 on
// CI): the binary, PATH set as in the upstream images, the entrypoint if any.
func nbBuildImage(cache string, im nbImage) (v1.Image, error) {
	layerFile, err := nbLayer(cache, im.bin, im.path)
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", im.bin, err)
	}
	layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Entrypoint = im.entrypoint
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		CreatedBy: "scratchgen machine test: " + im.path + " from " + filepath.Base(im.bin),
		Created:   v1.Time{Time: time.Unix(0, 0).UTC()},
	}})
}

// nbRegistry is an in-process OCI registry on 127.0.0.1 (blobs in memory), reachable from
// the test process only: nodes get their images from their bundles.
type nbRegistry struct {
	Host string
	srv  *httptest.Server
}

func nbStartRegistry(t *testing.T) *nbRegistry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &nbRegistry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Push writes img under ref and returns its digest.
func (r *nbRegistry) Push(ctx context.Context, ref string, img v1.Image) (string, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

// nbClusterImages returns what to push for every image the model names (c.Images.Tags,
// the references pin resolves): each component's binary under its real repository name.
// CoreDNS, when it could not be built, is the pause program under CoreDNS's name.
func nbClusterImages(c *model.Cluster, bins, pause, coredns string) ([]nbImage, error) {
	var out []nbImage
	for comp, ref := range c.Images.Tags {
		im := nbImage{ref: ref}
		switch comp {
		case model.ImagePause:
			im.bin, im.path, im.entrypoint = pause, "/pause", []string{"/pause"}
		case model.ImageCoreDNS:
			im.bin, im.path, im.entrypoint = coredns, "/coredns", []string{"/coredns"}
			if coredns == "" {
				im.bin, im.path, im.entrypoint = pause, "/pause", []string{"/pause"}
			}
		case model.ImageEtcd, model.ImageAPIServer, model.ImageControllerManager, model.ImageScheduler, model.ImageProxy:
			im.bin, im.path = filepath.Join(bins, comp), "/usr/local/bin/"+comp
		default:
			return nil, fmt.Errorf("the model names image %q (%s), which the machine test cannot build", comp, ref)
		}
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref < out[j].ref })
	return out, nil
}
