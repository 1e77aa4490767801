package golden

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
)

// renewNow is the clock of `certs renew` in the golden cases: half a year after testNow,
// so renewed certificates show new validity dates.
var renewNow = testNow.AddDate(0, 6, 0)

// runAt is run with another clock.
func runAt(now time.Time, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	stdio := cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	env := testEnv()
	env.Now = func() time.Time { return now }
	code := cli.Exit(cli.Run(args, stdio, env), stdio)
	return out.String(), errb.String(), code
}

// TestDiff renders each case's base.yaml, then changes the spec to cluster.yaml (or
// renews the identities its renew file names) and compares `scratchgen diff` (text and
// JSON) with expected.txt and expected.json. A case with neither expects no changes.
// Every secret of the old and the new bundle is searched for in both outputs.
func TestDiff(t *testing.T) {
	cases, _ := filepath.Glob("testdata/diff/*/base.yaml")
	if len(cases) < 5 {
		t.Fatalf("only %d diff cases", len(cases))
	}
	for _, base := range cases {
		dir := filepath.Dir(base)
		t.Run(filepath.Base(dir), func(t *testing.T) { diffCase(t, dir) })
	}
}

func diffCase(t *testing.T, dir string) {
	work := t.TempDir()
	spec := filepath.Join(work, "cluster.yaml")
	out := filepath.Join(work, "bundles")
	mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(testSecret), 0o600)
	mustWrite(t, spec, mustRead(t, filepath.Join(dir, "base.yaml")), 0o644)
	if _, stderr, code := run("render", "-f", spec, "-o", out); code != 0 {
		t.Fatalf("rendering base.yaml: exit %d\n%s", code, stderr)
	}
	secrets := bundleSecrets(t, out)

	wantCode, now := 0, testNow
	if next, err := os.ReadFile(filepath.Join(dir, "cluster.yaml")); err == nil {
		mustWrite(t, spec, next, 0o644)
		wantCode = 2
	}
	if names, err := os.ReadFile(filepath.Join(dir, "renew")); err == nil {
		args := []string{"certs", "renew", "-f", spec}
		for _, l := range strings.Split(string(names), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				args = append(args, l)
			}
		}
		stdout, stderr, code := runAt(renewNow, args...)
		if code != 0 {
			t.Fatalf("certs renew: exit %d\n%s", code, stderr)
		}
		compareText(t, filepath.Join(dir, "renew-output.txt"), strings.ReplaceAll(stdout, work, "$WORK"))
		wantCode, now = 2, renewNow // the diff that follows a renewal
	}

	// A case may run commands (one per line, each given -f and, for render, -o) at the
	// renewal clock: a rotation's stages (rotate, render, advance …); their output is
	// compared with steps-output.txt.
	if steps, err := os.ReadFile(filepath.Join(dir, "steps")); err == nil {
		var outputs strings.Builder
		for _, l := range strings.Split(string(steps), "\n") {
			if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			args := append(strings.Fields(l), "-f", spec)
			if args[0] == "render" {
				args = append(args, "-o", out)
			}
			stdout, stderr, code := runAt(renewNow, args...)
			if code != 0 {
				t.Fatalf("%s: exit %d\n%s%s", l, code, stdout, stderr)
			}
			fmt.Fprintf(&outputs, "$ scratchgen %s\n%s", l, stdout)
		}
		compareText(t, filepath.Join(dir, "steps-output.txt"), strings.ReplaceAll(outputs.String(), work, "$WORK"))
		wantCode, now = 2, renewNow
	}

	// A case may edit the rendered bundle: the file's first line names a bundle file, the
	// rest is appended to it (a view gaining a directive, as a tampered bundle would).
	if edit, err := os.ReadFile(filepath.Join(dir, "tamper")); err == nil {
		target, text, _ := strings.Cut(string(edit), "\n")
		p := filepath.Join(out, "demo", filepath.FromSlash(target))
		mustWrite(t, p, append(mustRead(t, p), text...), 0o644)
		wantCode = 2
	}

	text, stderr, code := runAt(now, "diff", "-f", spec, "-o", out)
	if code != wantCode || stderr != "" {
		t.Fatalf("diff: exit %d, want %d\n%s%s", code, wantCode, text, stderr)
	}
	compareText(t, filepath.Join(dir, "expected.txt"), strings.ReplaceAll(text, work, "$WORK"))
	js, stderr, code := runAt(now, "diff", "-f", spec, "-o", out, "--output", "json")
	if code != wantCode || stderr != "" {
		t.Fatalf("diff --output json: exit %d, want %d\n%s", code, wantCode, stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("diff --output json is not JSON: %v", err)
	}
	if doc["changed"] != (wantCode == 2) {
		t.Errorf("json changed = %v", doc["changed"])
	}
	// Large cases keep only the text golden (the JSON lists every node's files in full).
	if _, err := os.Stat(filepath.Join(dir, "text-only")); err != nil {
		compareText(t, filepath.Join(dir, "expected.json"), strings.ReplaceAll(js, work, "$WORK"))
	}

	// Render the change: the new bundle's secrets join the search, and diff is then clean.
	if _, stderr, code := runAt(now, "render", "-f", spec, "-o", out); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	secrets = append(secrets, bundleSecrets(t, out)...)
	assertNoSecrets(t, secrets, text, js)
	if stdout, _, code := runAt(now, "diff", "-f", spec, "-o", out); code != 0 || !strings.Contains(stdout, "no changes") {
		t.Errorf("diff after render: exit %d\n%s", code, stdout)
	}
}

// TestDiffSecretSafety changes every secret at once (a new root secret), with the
// secrets embedded in the Ignition and cloud-init views, a node added and one removed,
// and searches the whole diff output, text and JSON, for every secret of both bundles.
func TestDiffSecretSafety(t *testing.T) {
	work := t.TempDir()
	spec := filepath.Join(work, "cluster.yaml")
	out := filepath.Join(work, "bundles")
	mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(testSecret), 0o600)
	base := string(mustRead(t, "testdata/diff/no-change/base.yaml")) + "  provisioning:\n    embedSecrets: true\n"
	mustWrite(t, spec, []byte(base), 0o644)
	if _, stderr, code := run("render", "-f", spec, "-o", out); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	secrets := bundleSecrets(t, out)

	mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(strings.Repeat("fedcba9876543210", 4)+"\n"), 0o600)
	next := strings.Replace(base, "name: worker-2\n    address: 10.0.0.22", "name: worker-3\n    address: 10.0.0.23", 1)
	mustWrite(t, spec, []byte(next), 0o644)
	text, stderr, code := run("diff", "--new-pki", "-f", spec, "-o", out)
	if code != 2 {
		t.Fatalf("diff: exit %d\n%s", code, stderr)
	}
	js, _, code := run("diff", "--new-pki", "-f", spec, "-o", out, "--output", "json")
	if code != 2 {
		t.Fatalf("diff --output json: exit %d", code)
	}
	if _, stderr, code := run("render", "-f", spec, "-o", out); code != 1 || !strings.Contains(stderr, "--new-pki") {
		t.Fatalf("render with another secret: exit %d, want 1 naming --new-pki\n%s", code, stderr)
	}
	if _, stderr, code := run("render", "--new-pki", "-f", spec, "-o", out); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	secrets = append(secrets, bundleSecrets(t, out)...)
	if len(secrets) < 80 {
		t.Fatalf("only %d secrets collected", len(secrets))
	}
	assertNoSecrets(t, secrets, text, js)
	for _, want := range []string{"worker-3: new node", "worker-2: removed node", "(secret, sha256:", "client-key: changed (not shown)"} {
		if !strings.Contains(text, want) {
			t.Errorf("diff output lacks %q", want)
		}
	}
}

// TestCertsStatusGolden is `certs status` of the diff cases' base spec at the golden
// clock, plainly and with a warning window every leaf falls into.
func TestCertsStatusGolden(t *testing.T) {
	work := t.TempDir()
	spec := filepath.Join(work, "cluster.yaml")
	mustWrite(t, filepath.Join(work, "cluster.secret"), []byte(testSecret), 0o600)
	mustWrite(t, spec, mustRead(t, "testdata/diff/no-change/base.yaml"), 0o644)
	if _, stderr, code := run("render", "-f", spec, "-o", filepath.Join(work, "bundles")); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	var b strings.Builder
	bundles := filepath.Join(work, "bundles")
	status := func(now time.Time, args ...string) {
		stdout, stderr, code := runAt(now, append([]string{"certs", "status", "-f", spec, "-o", bundles}, args...)...)
		fmt.Fprintf(&b, "$ %s\n%s%sexit %d\n\n", strings.Join(append([]string{"scratchgen certs status"}, args...), " "), stdout, stderr, code)
	}
	status(testNow)
	status(testNow, "--warn-within", "400d")
	// Renewed in the lock, not yet rendered: the bundle still holds the old certificate,
	// and that is what expires.
	if _, stderr, code := runAt(renewNow, "certs", "renew", "-f", spec, "admin"); code != 0 {
		t.Fatalf("certs renew: exit %d\n%s", code, stderr)
	}
	b.WriteString("$ scratchgen certs renew admin   (half a year later, not rendered)\n\n")
	status(renewNow)
	compareText(t, "testdata/diff/certs-status.txt", strings.ReplaceAll(b.String(), work, "$WORK"))
}

func assertNoSecrets(t *testing.T, secrets []string, outputs ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, o := range outputs {
			if strings.Contains(o, s) {
				t.Errorf("a secret appears in the diff output: %.8s…", s)
			}
		}
	}
}

// bundleSecrets lists every secret of the bundles under root: each body line of each PEM
// private key, each token of known_tokens.csv, each kubeconfig's client-key-data (as
// base64, the way the kubeconfig holds it) and token.
func bundleSecrets(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data := mustRead(t, p)
		rest := data
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if strings.Contains(b.Type, "PRIVATE KEY") {
				// A SEC 1 key ends with its public point: a line made only of it can
				// also be a line of the public key's PEM, which is not secret.
				pub := publicPEM(t, b)
				for _, l := range strings.Split(string(pem.EncodeToMemory(b)), "\n") {
					if !strings.HasPrefix(l, "-----") && !strings.Contains(pub, strings.TrimRight(l, "=")) {
						out = append(out, l)
					}
				}
			}
		}
		if filepath.Base(p) == "known_tokens.csv" {
			r := csv.NewReader(bytes.NewReader(data))
			r.FieldsPerRecord = -1
			recs, err := r.ReadAll()
			if err != nil {
				return err
			}
			for _, rec := range recs {
				out = append(out, rec[0])
			}
		}
		var cfg clientcmdv1.Config
		if yaml.Unmarshal(data, &cfg) == nil && cfg.Kind == "Config" {
			for _, u := range cfg.AuthInfos {
				if len(u.AuthInfo.ClientKeyData) > 0 {
					out = append(out, base64.StdEncoding.EncodeToString(u.AuthInfo.ClientKeyData))
				}
				if u.AuthInfo.Token != "" {
					out = append(out, u.AuthInfo.Token)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var long []string
	for _, s := range out {
		if len(s) >= 16 { // a PEM block's short last line could match by chance
			long = append(long, s)
		}
	}
	if len(long) == 0 {
		t.Fatalf("no secrets found under %s", root)
	}
	return long
}

// publicPEM is the PEM of the public key of a private key block.
func publicPEM(t *testing.T, b *pem.Block) string {
	t.Helper()
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatalf("parsing a %s: %v", b.Type, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
