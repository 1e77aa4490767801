package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rcSpec is a small cluster the property test edits at random.
type rcSpec struct {
	workers      []int // worker numbers present
	flatcar      map[int]bool
	masquerade   bool
	mtu          int
	embedSecrets bool
	certValidity string
	comment      string
}

func (s rcSpec) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\napiVersion: scratchgen.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: rc\nspec:\n  kubernetesVersion: v1.36.3\n  controlPlaneEndpoint: 10.0.0.10\n", s.comment)
	fmt.Fprintf(&b, "  pki:\n    certValidity: %s\n  provisioning:\n    embedSecrets: %v\n", s.certValidity, s.embedSecrets)
	fmt.Fprintf(&b, "  network:\n    podCIDR: 10.10.0.0/16\n    masquerade: %v\n    mtu: %d\n  nodes:\n  - {name: cp-1, address: 10.0.0.10, roles: [control-plane, etcd]}\n", s.masquerade, s.mtu)
	for _, w := range s.workers {
		os := ""
		if s.flatcar[w] {
			os = ", os: flatcar"
		}
		fmt.Fprintf(&b, "  - {name: w-%d, address: 10.0.1.%d, roles: [worker]%s}\n", w, w, os)
	}
	return b.String()
}

// rcUniverse is one working directory: spec, lock, secret and bundle.
type rcUniverse struct {
	dir, cache string
}

func (u rcUniverse) render(t *testing.T, now time.Time) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	env := Env{Now: func() time.Time { return now }, Random: bytes.NewReader([]byte("9876543210abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-")), RenderCache: u.cache}
	code := Exit(Run([]string{"render", "-f", filepath.Join(u.dir, "cluster.yaml"), "-o", filepath.Join(u.dir, "bundles")}, stdio, env), stdio)
	return out.String() + errb.String(), code
}

// rcTree reads a directory: every file's mode and bytes.
func rcTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = fmt.Sprintf("dir %v", fi.Mode())
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = fmt.Sprintf("%v %s", fi.Mode(), data)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// TestRenderCacheEqualsFresh is the render cache's property test: two copies of a cluster
// take the same 100 random steps (spec edits, reverts to an earlier spec, renders with
// nothing changed, and the same tampering with the bundle: a byte changed, a mode
// changed, a file deleted, a file only touched, a stray file added, which both refuse
// until it is moved away); one renders with the render cache, the
// other without. After every step both bundles and locks are byte for byte the same, and
// both renders report the same exit. The cache must have been used (renders that planned
// nothing) and must have been refused where the bundle was tampered with.
func TestRenderCacheEqualsFresh(t *testing.T) {
	root := t.TempDir()
	cached := rcUniverse{dir: filepath.Join(root, "cached"), cache: filepath.Join(root, "cache")}
	fresh := rcUniverse{dir: filepath.Join(root, "fresh")}
	for _, u := range []rcUniverse{cached, fresh} {
		if err := os.MkdirAll(u.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(20, 26))
	s := rcSpec{workers: []int{1, 2}, flatcar: map[int]bool{}, masquerade: true, mtu: 1500, certValidity: "8760h", comment: "start"}
	history := []rcSpec{s}
	next := 3
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hits, tampered := 0, 0
	for step := range 100 {
		what, stray := "", ""
		tamper := func(fn func(p string) error, verb string) {
			nodes, _ := filepath.Glob(filepath.Join(cached.dir, "bundles", "rc", "nodes", "*", "rootfs", "etc", "systemd", "system", "*.service"))
			if len(nodes) == 0 {
				what = "nothing to tamper with"
				return
			}
			rel, _ := filepath.Rel(cached.dir, nodes[rng.IntN(len(nodes))])
			for _, u := range []rcUniverse{cached, fresh} {
				if err := fn(filepath.Join(u.dir, rel)); err != nil {
					t.Fatal(err)
				}
			}
			what, tampered = verb+" "+rel, tampered+1
		}
		switch k := rng.IntN(12); {
		case k < 3:
			what = "nothing changed"
		case k == 3 && len(s.workers) < 5:
			s.workers = append(slices.Clone(s.workers), next)
			what, next = fmt.Sprintf("add w-%d", next), next+1
		case k == 4 && len(s.workers) > 1:
			i := rng.IntN(len(s.workers))
			what = fmt.Sprintf("remove w-%d", s.workers[i])
			s.workers = slices.Delete(slices.Clone(s.workers), i, i+1)
		case k == 5:
			w := s.workers[rng.IntN(len(s.workers))]
			s.flatcar = map[int]bool{w: !s.flatcar[w]}
			what = fmt.Sprintf("w-%d flatcar %v", w, s.flatcar[w])
		case k == 6:
			s.masquerade, s.mtu = !s.masquerade, 1400+rng.IntN(2)*100
			what = "network knobs"
		case k == 7:
			s.comment = fmt.Sprintf("edit %d", step)
			what = "comment only"
		case k == 8:
			s = history[rng.IntN(len(history))]
			what = "revert to an earlier spec"
		case k == 9:
			s.embedSecrets = !s.embedSecrets
			what = "embedSecrets"
		case k == 10:
			switch rng.IntN(5) {
			case 0:
				tamper(func(p string) error {
					data, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					data[0] ^= 1
					return os.WriteFile(p, data, 0o644)
				}, "flip a byte of")
			case 1:
				tamper(func(p string) error { return os.Chmod(p, 0o600) }, "chmod")
			case 2:
				tamper(os.Remove, "delete")
			case 3:
				tamper(func(p string) error { return os.WriteFile(p+".stray", []byte("stray"), 0o644) }, "add a stray file beside")
				if rel, ok := strings.CutPrefix(what, "add a stray file beside "); ok {
					stray = rel + ".stray"
				}
			default:
				tamper(func(p string) error { return os.Chtimes(p, now, now) }, "touch")
			}
		default:
			s.certValidity = []string{"8760h", "4380h"}[rng.IntN(2)]
			what = "certValidity " + s.certValidity
		}
		history = append(history, s)
		for _, u := range []rcUniverse{cached, fresh} {
			if err := os.WriteFile(filepath.Join(u.dir, "cluster.yaml"), []byte(s.yaml()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		outC, codeC := cached.render(t, now)
		outF, codeF := fresh.render(t, now)
		if stray != "" {
			// A file scratchgen did not write stops both renders alike; once it is moved
			// away, both render.
			if codeC != 1 || codeF != 1 || !strings.Contains(outC, "did not write") {
				t.Fatalf("step %d (%s): exit %d with the cache, %d without; want 1 for both, refusing the stray file:\n%s\n%s", step, what, codeC, codeF, outC, outF)
			}
			for _, u := range []rcUniverse{cached, fresh} {
				if err := os.Remove(filepath.Join(u.dir, stray)); err != nil {
					t.Fatal(err)
				}
			}
			outC, codeC = cached.render(t, now)
			outF, codeF = fresh.render(t, now)
		}
		if codeC != 0 || codeF != 0 {
			t.Fatalf("step %d (%s): exit %d with the cache, %d without (every step renders):\n%s\n%s", step, what, codeC, codeF, outC, outF)
		}
		if strings.Contains(outC, "no input changed") {
			hits++
			if strings.HasPrefix(what, "flip") || strings.HasPrefix(what, "chmod") || strings.HasPrefix(what, "delete") || strings.HasPrefix(what, "touch") || strings.HasPrefix(what, "add a stray") {
				t.Fatalf("step %d (%s): the cache vouched for a bundle tampered with", step, what)
			}
		}
		a, b := rcTree(t, cached.dir), rcTree(t, fresh.dir)
		if len(a) != len(b) {
			t.Fatalf("step %d (%s): %d paths with the cache, %d without", step, what, len(a), len(b))
		}
		for p, va := range a {
			if vb, ok := b[p]; !ok || va != vb {
				t.Fatalf("step %d (%s): %s differs with the cache\n%s", step, what, p, outC)
			}
		}
		now = now.Add(time.Hour)
	}
	if hits < 10 || tampered < 3 {
		t.Fatalf("the walk used the cache %d times and tampered %d times; the test needs both", hits, tampered)
	}
	t.Logf("100 steps: %d renders planned nothing (cache hits), %d tamperings", hits, tampered)
}
