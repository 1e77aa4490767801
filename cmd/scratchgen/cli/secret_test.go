package cli

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secRun runs a command in dir with an environment and standard input.
func secRun(t *testing.T, dir string, env map[string]string, stdin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	stdio := Stdio{In: strings.NewReader(stdin), Out: &out, Err: &out}
	e := Env{Now: func() time.Time { return rvNow }, Random: strings.NewReader("fedcba9876543210fedcba9876543210"),
		Getenv: func(k string) string { return env[k] }}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := Exit(Run(args, stdio, e), stdio)
	return out.String(), code
}

// fileState is a file's bytes, mode and inode.
type fileState struct {
	data  string
	mode  fs.FileMode
	inode uint64
}

// snapshotTree records every file under dir (and the files named beside it).
func snapshotTree(t *testing.T, dir string, extra ...string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	record := func(p string) {
		st, err := os.Lstat(p)
		if err != nil {
			out[p] = fileState{data: "(missing)"}
			return
		}
		data, _ := os.ReadFile(p)
		out[p] = fileState{data: string(data), mode: st.Mode(), inode: st.Sys().(*syscall.Stat_t).Ino}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			record(p)
		}
		return nil
	})
	for _, p := range extra {
		record(p)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, a, b map[string]fileState) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d files before, %d after", what, len(a), len(b))
	}
	for p, x := range a {
		if y, ok := b[p]; !ok || x != y {
			t.Errorf("%s: %s changed (bytes, mode or inode)", what, p)
		}
	}
}

// TestSecretFailsClosed: a missing, wrong, not random or world-readable root secret stops
// render with exit 1, leaving the bundle, the lock and the secret exactly as they were
// (bytes and inodes); --new-pki re-keys on purpose and says so.
func TestSecretFailsClosed(t *testing.T) {
	dir := rvWork(t)
	secret := filepath.Join(dir, "cluster.secret")
	lockPath := filepath.Join(dir, "cluster.lock")
	// A change to render, so that a render that went through would write.
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec+"  - {name: worker-2, address: 10.0.0.22, roles: [worker]}\n"), 0o644)
	before := snapshotTree(t, filepath.Join(dir, "bundles"), lockPath, secret)
	for _, tc := range []struct {
		name, content string
		mode          fs.FileMode
		want          string
	}{
		{"missing", "", 0, "no root secret was found"},
		{"wrong", strings.Repeat("ab", 31) + "cd\n", 0o600, "is not the one"},
		{"all zeros", strings.Repeat("0", 64) + "\n", 0o600, "not a random secret"},
		{"readable by others", rvSecret, 0o644, "chmod 600"},
		{"not hex", "correct horse battery staple\n", 0o600, "not 64 hexadecimal digits"},
	} {
		os.Rename(secret, secret+".good")
		if tc.content != "" {
			os.WriteFile(secret, []byte(tc.content), tc.mode)
			os.Chmod(secret, tc.mode)
		}
		cur := snapshotTree(t, filepath.Join(dir, "bundles"), lockPath, secret)
		out, code := rvRun(t, dir, rvNow, "render")
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s secret: exit %d, want 1 and %q:\n%s", tc.name, code, tc.want, out)
		}
		if (tc.name == "missing" || tc.name == "wrong") && !strings.Contains(out, "--new-pki") {
			t.Errorf("%s secret: the message does not name the way out --new-pki:\n%s", tc.name, out)
		}
		if strings.Contains(out, strings.TrimSpace(rvSecret)) || (tc.content != "" && strings.Contains(out, strings.TrimSpace(tc.content))) {
			t.Errorf("%s secret: the output shows a secret", tc.name)
		}
		sameSnapshot(t, tc.name+" secret", cur, snapshotTree(t, filepath.Join(dir, "bundles"), lockPath, secret))
		os.Remove(secret)
		os.Rename(secret+".good", secret)
	}
	sameSnapshot(t, "after the refusals", before, snapshotTree(t, filepath.Join(dir, "bundles"), lockPath, secret))

	// --new-pki without a secret: a new one, and a new CA.
	oldCA, _ := os.ReadFile(filepath.Join(dir, "bundles/demo/nodes/cp-1/rootfs/etc/kubernetes/pki/ca.crt"))
	os.Rename(secret, secret+".old")
	out, code := secRun(t, dir, nil, "", "render", "--new-pki")
	if code != 0 || !strings.Contains(out, "--new-pki: issuing a new PKI") || !strings.Contains(out, "created root secret") {
		t.Fatalf("render --new-pki: exit %d\n%s", code, out)
	}
	newCA, _ := os.ReadFile(filepath.Join(dir, "bundles/demo/nodes/cp-1/rootfs/etc/kubernetes/pki/ca.crt"))
	if bytes.Equal(oldCA, newCA) {
		t.Error("--new-pki kept the CA")
	}
	if st, err := os.Stat(secret); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new secret: %v %v", st, err)
	}
	if out, code := secRun(t, dir, nil, "", "render"); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("render after --new-pki: exit %d\n%s", code, out)
	}
}

// TestSecretSources: the secret from standard input, $SCRATCHGEN_SECRET and an
// age-encrypted file (identity by flag or by environment) gives the same bundle, byte
// for byte, as the plaintext file.
func TestSecretSources(t *testing.T) {
	ref := rvWork(t)
	want := snapshotTree(t, filepath.Join(ref, "bundles"))
	keyPath := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(keyPath, []byte(testAgeIdentity+"\n"), 0o600)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		setup func(dir string)
	}{
		{name: "stdin", stdin: rvSecret, args: []string{"--secret", "-"}},
		{name: "environment", env: map[string]string{envSecret: strings.TrimSpace(rvSecret)}},
		{name: "age file, --age-identity", args: []string{"--age-identity", keyPath}, setup: ageSecret},
		{name: "age file, identity in the environment", env: map[string]string{envAgeIdentity: testAgeIdentity}, setup: ageSecret},
		{name: "age file, identity file in the environment", env: map[string]string{envAgeIdentity: keyPath}, setup: ageSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"cluster.yaml", "cluster.lock"} {
				data, _ := os.ReadFile(filepath.Join(ref, f))
				os.WriteFile(filepath.Join(dir, f), data, 0o644)
			}
			if tc.setup != nil {
				tc.setup(dir)
			}
			out, code := secRun(t, dir, tc.env, tc.stdin, append([]string{"render"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "cluster.secret")); err == nil {
				t.Error("a plaintext secret was written")
			}
			got := snapshotTree(t, filepath.Join(dir, "bundles"))
			if len(got) != len(want) {
				t.Fatalf("%d files, want %d", len(got), len(want))
			}
			for p, w := range want {
				g := got[strings.Replace(p, ref, dir, 1)]
				if g.data != w.data || g.mode != w.mode {
					t.Errorf("%s differs from the plaintext secret's bundle", strings.TrimPrefix(p, ref))
				}
			}
		})
	}
}

// A test age key pair (generated for these tests only; never use it for a real secret).
const (
	testAgeIdentity  = "AGE-SECRET-KEY-122N8WVEUUECRU409ZAELH94KANJWHXJC4GTPDYQK44CE93NUJFKSW68WTT"
	testAgeRecipient = "age1xe6tvlrzzqjet3se5vyqqfw8rwny9eq9ukjtqsg4c2lj4jkr8faq28jcy8"
)

// ageSecret writes dir/cluster.secret.age with `scratchgen secret encrypt`.
func ageSecret(dir string) {
	os.WriteFile(filepath.Join(dir, "plain.secret"), []byte(rvSecret), 0o600)
	var out bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &out}
	if err := Run([]string{"secret", "encrypt", "-f", filepath.Join(dir, "cluster.yaml"), "--secret", filepath.Join(dir, "plain.secret"),
		"--recipient", testAgeRecipient}, stdio, Env{Now: time.Now}); err != nil {
		panic(err.Error() + out.String())
	}
	os.Remove(filepath.Join(dir, "plain.secret"))
}

// TestAgeInteropWithDebianAge: Debian's age decrypts what `secret encrypt` writes, and
// render decrypts what `age -r` writes.
func TestAgeInteropWithDebianAge(t *testing.T) {
	ageBin, err1 := exec.LookPath("age")
	keygen, err2 := exec.LookPath("age-keygen")
	if err1 != nil || err2 != nil {
		t.Skip("SKIPPED: Debian's age/age-keygen are not installed (apt-get install age); interoperability with the age tool was NOT checked here (.ci/run installs it)")
	}
	dir := rvWork(t)
	key := filepath.Join(dir, "key.txt")
	if out, err := exec.Command(keygen, "-o", key).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	pub, err := exec.Command(keygen, "-y", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, code := secRun(t, dir, nil, "", "secret", "encrypt", "--recipient", strings.TrimSpace(string(pub))); code != 0 {
		t.Fatalf("secret encrypt: exit %d\n%s", code, out)
	}
	plain, err := exec.Command(ageBin, "-d", "-i", key, filepath.Join(dir, "cluster.secret.age")).Output()
	if err != nil || string(plain) != rvSecret {
		t.Fatalf("age -d of our file: %v, plaintext matches: %v", err, string(plain) == rvSecret)
	}
	if out, code := secRun(t, dir, nil, "", "secret", "encrypt", "--recipient", strings.TrimSpace(string(pub))); code != 1 || !strings.Contains(out, "--force") {
		t.Errorf("secret encrypt over an existing file: exit %d\n%s", code, out)
	}
	theirs := filepath.Join(dir, "theirs.secret.age")
	if out, err := exec.Command(ageBin, "-r", strings.TrimSpace(string(pub)), "-o", theirs, filepath.Join(dir, "cluster.secret")).CombinedOutput(); err != nil {
		t.Fatalf("age -r: %v\n%s", err, out)
	}
	if out, code := secRun(t, dir, nil, "", "render", "--secret", theirs, "--age-identity", key); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("render with age's file: exit %d\n%s", code, out)
	}
	armored := filepath.Join(dir, "armored.secret.age")
	if out, err := exec.Command(ageBin, "-a", "-r", strings.TrimSpace(string(pub)), "-o", armored, filepath.Join(dir, "cluster.secret")).CombinedOutput(); err != nil {
		t.Fatalf("age -a -r: %v\n%s", err, out)
	}
	if out, code := secRun(t, dir, nil, "", "render", "--secret", armored, "--age-identity", key); code != 0 {
		t.Errorf("render with an armored age file: exit %d\n%s", code, out)
	}
	if out, code := secRun(t, dir, nil, "", "render", "--secret", theirs); code != 1 || !strings.Contains(out, "--age-identity") {
		t.Errorf("an age file without an identity: exit %d\n%s", code, out)
	}
}

// TestReviewWithoutSecret: in a copy of the project without the secret, render --check
// exits 0; after adding a worker diff exits 2, shows the new node's public files and the
// certificates it would issue; after changing the endpoint (a SAN) the API server
// certificate would be re-issued.
func TestReviewWithoutSecret(t *testing.T) {
	dir := rvWork(t)
	os.Remove(filepath.Join(dir, "cluster.secret"))
	out, code := rvRun(t, dir, rvNow, "render", "--check")
	if code != 0 || !strings.Contains(out, "up to date") || !strings.Contains(out, "not checked: they need the root secret") {
		t.Fatalf("render --check without the secret: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "diff"); code != 0 || !strings.Contains(out, "no changes") {
		t.Errorf("diff without the secret: exit %d\n%s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec+"  - {name: worker-3, address: 10.0.0.23, roles: [worker]}\n"), 0o644)
	out, code = rvRun(t, dir, rvNow, "diff")
	for _, want := range []string{
		"worker-3: new node",
		"+ /etc/scratchgen/routes.sh",
		"+ /var/lib/kubelet/config.yaml",
		"+ /var/lib/kubelet/pki/kubelet.crt (not checked: would be issued: new; needs the root secret)",
		"would issue kubelet-serving/worker-3 (worker-3): new",
		"would issue kubelet-client/worker-3 (worker-3): new",
		"+worker-3 10.0.0.23 10.10.2.0/24",
		"secret file(s) not checked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff after adding a worker lacks %q", want)
		}
	}
	if code != 2 || t.Failed() {
		t.Fatalf("diff after adding a worker: exit %d\n%s", code, out)
	}
	if out, code := rvRun(t, dir, rvNow, "render"); code != 1 || !strings.Contains(out, "no root secret was found") {
		t.Errorf("render without the secret: exit %d\n%s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(strings.Replace(rvSpec, "controlPlaneEndpoint: 10.0.0.10", "controlPlaneEndpoint: api.demo.example.com", 1)), 0o644)
	out, code = rvRun(t, dir, rvNow, "diff")
	if code != 2 || !strings.Contains(out, "would re-issue apiserver/cp-1 (cp-1): its SANs change") || !strings.Contains(out, "~ /etc/kubernetes/pki/apiserver.crt (certificate CN=kube-apiserver, not checked: would be re-issued: its SANs change; needs the root secret)") {
		t.Errorf("diff after changing the endpoint: exit %d\n%s", code, out)
	}
}

// TestFailedRenderWritesNothing: a render whose output cannot be created leaves neither
// a secret nor a lock behind (first render), and changes neither on a later one.
func TestFailedRenderWritesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec), 0o644)
	os.WriteFile(filepath.Join(dir, "blocker"), []byte("a file where the output directory should be"), 0o644)
	if out, code := secRun(t, dir, nil, "", "render", "-o", "blocker/bundles"); code != 1 {
		t.Fatalf("render into a file: exit %d\n%s", code, out)
	}
	for _, f := range []string{"cluster.secret", "cluster.lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a failed first render left %s", f)
		}
	}
	if out, code := secRun(t, dir, nil, "", "render"); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(rvSpec+"  - {name: worker-2, address: 10.0.0.22, roles: [worker]}\n"), 0o644)
	before := snapshotTree(t, filepath.Join(dir, "bundles"), filepath.Join(dir, "cluster.lock"), filepath.Join(dir, "cluster.secret"))
	// The bundle's parent directory turned into a file: the write fails after planning.
	os.Rename(filepath.Join(dir, "bundles"), filepath.Join(dir, "bundles.away"))
	os.WriteFile(filepath.Join(dir, "bundles"), nil, 0o644)
	if out, code := secRun(t, dir, nil, "", "render"); code != 1 {
		t.Fatalf("render into a file: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "bundles"))
	os.Rename(filepath.Join(dir, "bundles.away"), filepath.Join(dir, "bundles"))
	sameSnapshot(t, "failed render", before, snapshotTree(t, filepath.Join(dir, "bundles"), filepath.Join(dir, "cluster.lock"), filepath.Join(dir, "cluster.secret")))
}
