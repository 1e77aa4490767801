package cli

// Tests of validate-cluster's plumbing only: flags, the default kubeconfig, and what an
// unreachable or refusing server gives. The checks themselves are generator/livecheck's
// tests (with client-go's fake clientset); the real peer is the machine e2e test, which
// runs this command against a real cluster.

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/spec"
)

// vcToken is the kubeconfig's token: no output may show it.
const vcToken = "vc-secret-token-0123456789"

// vcRun runs scratchgen in the current directory.
func vcRun(args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &o, Err: &e}
	env := Env{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	code = Exit(Run(args, stdio, env), stdio)
	return code, o.String(), e.String()
}

// vcWork changes into a new directory holding the example spec (cluster demo), no bundle.
func vcWork(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("cluster.yaml", []byte(spec.Example("demo")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// vcKubeconfig writes a token kubeconfig for server at path.
func vcKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	data := `apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster:
    server: ` + server + `
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: ` + vcToken + `
contexts:
- name: demo
  context: {cluster: demo, user: admin}
current-context: demo
`
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// vcClosedPort returns the address of a local TCP port nothing listens on.
func vcClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestValidateClusterFlagErrors(t *testing.T) {
	vcWork(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "yaml"}, `validate-cluster: --output "yaml" is not text or json`},
		{[]string{"--timeout", "0s"}, "validate-cluster: --timeout 0s must be positive, e.g. 30s"},
		{[]string{"--timeout", "soon"}, "validate-cluster: invalid argument \"soon\" for \"--timeout\""},
		{[]string{"--kubeconfig"}, "validate-cluster: flag needs an argument: --kubeconfig; run `scratchgen validate-cluster --help`"},
		{[]string{"extra"}, `validate-cluster takes no arguments, got "extra"`},
		{[]string{"-f", "missing.yaml"}, "spec missing.yaml does not exist"},
		{[]string{"--kubeconfig", "nowhere.kubeconfig"}, "validate-cluster: kubeconfig nowhere.kubeconfig does not exist; pass the kubeconfig with --kubeconfig"},
	} {
		code, out, errOut := vcRun(append([]string{"validate-cluster"}, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("validate-cluster %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestValidateClusterHelp(t *testing.T) {
	code, out, _ := vcRun("validate-cluster", "--help")
	for _, want := range []string{"scratchgen validate-cluster: check a running cluster against the spec (online, read-only)", "--kubeconfig", "--output", "--timeout", "--lock", "-f, --file"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help: exit %d, missing %q:\n%s", code, want, out)
		}
	}
	if code, out, _ := vcRun("help"); code != 0 || !strings.Contains(out, "validate-cluster") {
		t.Errorf("usage does not list validate-cluster:\n%s", out)
	}
}

// TestValidateClusterDefaultKubeconfig: without --kubeconfig, the bundle's admin
// kubeconfig (-o/--bundles moves it); its absence says to render first.
func TestValidateClusterDefaultKubeconfig(t *testing.T) {
	vcWork(t)
	code, _, errOut := vcRun("validate-cluster")
	want := "validate-cluster: kubeconfig " + filepath.Join("bundles", "demo", "admin", "admin.kubeconfig") + " does not exist; render the bundle first (`scratchgen render -f cluster.yaml`) or pass --kubeconfig"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
	if !strings.Contains(errOut, "cluster.yaml: warning: no lock cluster.lock") {
		t.Errorf("no warning about the missing lock: %q", errOut)
	}
	code, _, errOut = vcRun("validate-cluster", "-o", "out")
	if want := "kubeconfig " + filepath.Join("out", "demo", "admin", "admin.kubeconfig") + " does not exist"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("-o out: exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// TestValidateClusterUnreachable: the default kubeconfig is used, and a server that does
// not answer is exit 1 with a message naming it, never the token.
func TestValidateClusterUnreachable(t *testing.T) {
	vcWork(t)
	server := "https://" + vcClosedPort(t)
	vcKubeconfig(t, filepath.Join("bundles", "demo", "admin", "admin.kubeconfig"), server)
	code, out, errOut := vcRun("validate-cluster", "--timeout", "5s")
	want := "scratchgen: validate-cluster: cluster demo: cannot reach the API server at " + server + " (the server of " + filepath.Join("bundles", "demo", "admin", "admin.kubeconfig") + "): "
	if code != 1 || out != "" || !strings.Contains(errOut, want) || !strings.Contains(errOut, "is the cluster running and its endpoint reachable from here?") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	if strings.Contains(out+errOut, vcToken) {
		t.Errorf("the output shows the kubeconfig's token:\n%s%s", out, errOut)
	}
}

// TestValidateClusterRefused: a server that refuses the credentials is exit 1 saying so.
func TestValidateClusterRefused(t *testing.T) {
	vcWork(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
	}))
	defer srv.Close()
	vcKubeconfig(t, "admin.kubeconfig", srv.URL)
	code, out, errOut := vcRun("validate-cluster", "--kubeconfig", "admin.kubeconfig", "--output", "json")
	want := "cluster demo: the API server at " + srv.URL + " refuses the credentials of admin.kubeconfig (401 Unauthorized)"
	if code != 1 || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	if strings.Contains(out+errOut, vcToken) {
		t.Errorf("the output shows the kubeconfig's token:\n%s%s", out, errOut)
	}
}
