package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/writer"
)

var (
	secret1 = bytes.Repeat([]byte{7}, 32)
	secret2 = bytes.Repeat([]byte{8}, 32)
	clock   = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func mustRender(t testing.TB, specData []byte, lk *lock.Lock, d Deps) *Output {
	t.Helper()
	out, err := Render(specData, lk, d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeterministicOnDisk renders the same inputs twice into fresh directories and
// compares every byte and mode; a new secret without the lock gives a new PKI.
func TestDeterministicOnDisk(t *testing.T) {
	data, d := []byte(spec.Example("")), Deps{Secret: secret1, Now: clock}
	a, b := mustRender(t, data, nil, d), mustRender(t, data, nil, d)
	da, db := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if _, err := writer.Write(da, a.Plan.Files()); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Write(db, b.Plan.Files()); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.Walk(da, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(da, p)
		other := filepath.Join(db, rel)
		ia, _ := os.Stat(other)
		x, _ := os.ReadFile(p)
		y, _ := os.ReadFile(other)
		if ia == nil || !bytes.Equal(x, y) || ia.Mode() != info.Mode() {
			t.Errorf("%s differs between two renders of the same inputs", rel)
		}
		n++
		return nil
	})
	if n < 50 {
		t.Fatalf("only %d files rendered", n)
	}
	// Without the lock and with a new secret: a new PKI (every key differs).
	c := mustRender(t, data, nil, Deps{Secret: secret2, Now: clock})
	old := map[string][]byte{}
	for _, f := range a.Plan.Files() {
		old[f.Path] = f.Data
	}
	for _, f := range c.Plan.Files() {
		if strings.HasSuffix(f.Path, ".key") && bytes.Equal(old[f.Path], f.Data) {
			t.Errorf("%s unchanged under a new root secret", f.Path)
		}
	}
}

// TestNoWorkerHoldsCAKey and no node holds another node's kubelet key.
func TestPlacement(t *testing.T) {
	out := mustRender(t, []byte(spec.Example("")), nil, Deps{Secret: secret1, Now: clock})
	for _, n := range out.Plan.Nodes {
		for _, f := range n.Rootfs {
			if strings.HasSuffix(f.Path, "ca.key") && !out.Model.Node(n.Name).ControlPlane() {
				t.Errorf("worker %s holds %s", n.Name, f.Path)
			}
			if f.Secret && f.Mode != bundle.ModeSecret {
				t.Errorf("%s %s is secret but mode %o", n.Name, f.Path, f.Mode)
			}
		}
	}
}

// bigSpec is a cluster of 3 control-plane and 997 worker nodes.
func bigSpec() []byte {
	var b strings.Builder
	b.WriteString(`apiVersion: scratchgen.dev/v1alpha1
kind: Cluster
metadata: {name: big}
spec:
  kubernetesVersion: v1.36.3
  controlPlaneEndpoint: api.big.example.com
  network: {podCIDR: 10.128.0.0/9}
  nodes:
`)
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "  - {name: cp-%d, address: 10.0.0.%d, roles: [control-plane, etcd]}\n", i, 10+i)
	}
	for i := 0; i < benchWorkers; i++ {
		fmt.Fprintf(&b, "  - {name: worker-%d, address: 10.1.%d.%d, roles: [worker]}\n", i, i/250, i%250+1)
	}
	return []byte(b.String())
}

// BenchmarkRender1000Cold plans and writes a 1000-node cluster into an empty directory.
func BenchmarkRender1000Cold(b *testing.B) {
	data := bigSpec()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "big")
		out := mustRender(b, data, nil, Deps{Secret: secret1, Now: clock})
		if _, err := writer.Write(dir, out.Plan.Files()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender1000Noop re-renders an unchanged 1000-node cluster: plan + compare, no writes.
func BenchmarkRender1000Noop(b *testing.B) {
	data := bigSpec()
	dir := filepath.Join(b.TempDir(), "big")
	first := mustRender(b, data, nil, Deps{Secret: secret1, Now: clock})
	if _, err := writer.Write(dir, first.Plan.Files()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := mustRender(b, data, first.Lock, Deps{Secret: secret1, Now: clock})
		res, err := writer.Write(dir, out.Plan.Files())
		if err != nil {
			b.Fatal(err)
		}
		if res.Wrote {
			b.Fatal("a no-op render wrote files")
		}
	}
}

// benchWorkers is the number of workers beside the 3 control planes in the benchmarks.
var benchWorkers = 997
