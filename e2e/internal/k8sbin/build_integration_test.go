package k8sbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildReal builds real binaries. It needs the Go module proxy and takes
// ~10-15 minutes per Kubernetes version when cold, so it only runs with
// SCRATCHGEN_BUILD_BINS=1:
//
//	SCRATCHGEN_BUILD_BINS=1 go test -timeout 2h -run TestBuildReal -v ./e2e/internal/k8sbin/
//
// The cache defaults to <repo>/e2e/.cache (shared with the e2e tests);
// SCRATCHGEN_BIN_CACHE overrides it. SCRATCHGEN_BUILD_K8S and
// SCRATCHGEN_BUILD_ETCD pick the versions (default v1.36.3 and v3.6.8).
func TestBuildReal(t *testing.T) {
	if os.Getenv("SCRATCHGEN_BUILD_BINS") != "1" {
		t.Skip("set SCRATCHGEN_BUILD_BINS=1 to build real Kubernetes/etcd binaries")
	}
	cache := os.Getenv("SCRATCHGEN_BIN_CACHE")
	if cache == "" {
		cache = filepath.Join("..", "..", ".cache") // e2e/.cache, git-ignored
	}
	k8s := envOr("SCRATCHGEN_BUILD_K8S", "v1.36.3")
	etcd := envOr("SCRATCHGEN_BUILD_ETCD", "v3.6.8")
	opts := Options{
		Kubernetes: k8s,
		Etcd:       etcd,
		CacheDir:   cache,
		Components: append(append([]string{}, KubernetesComponents...), "etcd"),
		Log:        testLog{t},
	}
	start := time.Now()
	dir, err := Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Build: %s in %s", dir, time.Since(start).Round(time.Millisecond))

	for _, c := range opts.Components {
		args, want := []string{"--version"}, "Kubernetes "+k8s
		switch c {
		case "kubectl":
			args, want = []string{"version", "--client"}, "Client Version: "+k8s
		case "etcd":
			want = "etcd Version: " + strings.TrimPrefix(etcd, "v")
		}
		out, err := exec.CommandContext(t.Context(), filepath.Join(dir, c), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s %s: %v\n%s\nwant %q", c, strings.Join(args, " "), err, out, want)
		}
	}

	// Cached: no go invocation, milliseconds.
	opts.Log = nil
	t.Setenv("PATH", "/nonexistent")
	start = time.Now()
	dir2, err := Build(t.Context(), opts)
	if err != nil || dir2 != dir {
		t.Fatalf("cached Build = %s, %v; want %s", dir2, err, dir)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("cached Build took %s", d)
	} else {
		t.Logf("cached Build took %s", d)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	if !strings.HasPrefix(s, "go: downloading") {
		l.t.Log(s)
	}
	return len(p), nil
}
