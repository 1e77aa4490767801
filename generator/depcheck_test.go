package generator

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// goPackage is the part of `go list -json` this test reads.
type goPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// listPackages runs `go list -deps`-based listing over the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 15 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

const module = "github.com/scratchgen/scratchgen/"

// TestDependencyConfinement: each third-party library sits behind one package of ours
// (go-containerregistry's pkg/registry/depcheck_test.go is the model). A library may be
// imported only by its door package (and by the tests and e2e packages named here), and
// the packages at the bottom of the pipeline pull in none of them, even indirectly.
func TestDependencyConfinement(t *testing.T) {
	doors := []struct {
		lib string
		// prod may import lib; tests may import it from their test files only.
		prod, tests []string
	}{
		{"github.com/cloudflare/cfssl", []string{"generator/pki"}, nil},
		{"github.com/coreos/butane", []string{"generator/provision"}, nil},
		{"github.com/coreos/ignition", []string{"generator/provision"}, []string{"generator/provision"}},
		{"github.com/coreos/vcontext", []string{"generator/provision"}, []string{"generator/provision"}},
		{"github.com/clarketm/json", []string{"generator/provision"}, nil},
		{"github.com/google/go-containerregistry", []string{"generator/images"}, []string{"generator/images", "cmd/scratchgen/cli", "generator/verify", "e2e"}},
	}
	// Packages every other package builds on: none may depend on a library, even
	// through another package.
	bottom := []string{"generator/spec", "generator/model", "generator/lock", "generator/paths", "generator/component",
		"generator/bundle", "generator/field", "generator/versions", "generator/parallel"}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		for _, d := range doors {
			uses := func(imports []string) bool {
				return slices.ContainsFunc(imports, func(i string) bool { return i == d.lib || strings.HasPrefix(i, d.lib+"/") })
			}
			if uses(p.Imports) && !slices.Contains(d.prod, rel) {
				t.Errorf("%s imports %s; only %v may (go through it)", rel, d.lib, d.prod)
			}
			if (uses(p.TestImports) || uses(p.XTestImports)) && !slices.Contains(d.tests, rel) && !slices.Contains(d.prod, rel) {
				t.Errorf("the tests of %s import %s; only those of %v may", rel, d.lib, d.tests)
			}
			if slices.Contains(bottom, rel) && uses(p.Deps) {
				t.Errorf("%s depends on %s (through another package); it must stay free of libraries", rel, d.lib)
			}
		}
	}
}
