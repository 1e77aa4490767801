package nodeconfig

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/versions"
)

// TestFieldsKnownToEachMinor checks that every key of the rendered kubelet and kube-proxy
// configurations is a field of that minor's own API types, read from the source of
// k8s.io/kubelet and k8s.io/kube-proxy v0.<minor>.<patch> in the module cache (the Go types
// the test decodes into are those of the newest minor only). Fields from other packages
// (metav1.Duration, core/v1 Taint, component-base ClientConnectionConfiguration) are checked
// no deeper than their name.
func TestFieldsKnownToEachMinor(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("SKIPPED: cannot find the module cache (go env GOMODCACHE: %v); per-minor field check not run", err)
	}
	cache := strings.TrimSpace(string(out))
	for _, p := range versions.All() {
		p := p
		mod := "v0" + strings.TrimPrefix(p.TestedPatch, "v1") // v1.34.4 → v0.34.4
		t.Run(p.Minor, func(t *testing.T) {
			c := resolve(t, variant{name: p.Minor, edits: []string{"kubernetesVersion: v1.36.3", "kubernetesVersion: " + p.TestedPatch}})
			checks := []struct{ module, pkg, typ, file string }{
				{"kubelet", "config/v1beta1", "KubeletConfiguration", paths.KubeletConfig},
				{"kube-proxy", "config/v1alpha1", "KubeProxyConfiguration", paths.KubeProxyConfig},
			}
			for _, ck := range checks {
				dir := filepath.Join(cache, "k8s.io", ck.module+"@"+mod, filepath.FromSlash(ck.pkg))
				if _, err := os.Stat(dir); err != nil {
					t.Skipf("SKIPPED: k8s.io/%s@%s is not in the module cache, so the fields of Kubernetes %s are not checked; "+
						"fetch it outside this module: (cd \"$(mktemp -d)\" && go mod download k8s.io/kubelet@%s k8s.io/kube-proxy@%s)",
						ck.module, mod, p.Minor, mod, mod)
				}
				types, err := structTypes(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range c.Nodes {
					files, _, err := Node(c, n)
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range files {
						if f.Path != ck.file {
							continue
						}
						var obj map[string]any
						if err := yaml.Unmarshal(f.Data, &obj); err != nil {
							t.Fatal(err)
						}
						for _, e := range types.check(ck.typ, obj, &ast.Ident{Name: ck.typ}) {
							t.Errorf("k8s.io/%s@%s %s on node %s: %s", ck.module, mod, ck.typ, n.Name, e)
						}
					}
				}
			}
		})
	}
}

// goTypes maps a package's type names to their struct definitions.
type goTypes map[string]*ast.StructType

func structTypes(dir string) (goTypes, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	types := goTypes{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					types[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	return types, nil
}

// fields returns a struct's JSON field names and types, flattening embedded structs.
func (g goTypes) fields(st *ast.StructType) map[string]ast.Expr {
	out := map[string]ast.Expr{}
	for _, f := range st.Fields.List {
		name := ""
		if f.Tag != nil {
			tag, _ := strconv.Unquote(f.Tag.Value)
			name, _, _ = strings.Cut(reflect.StructTag(tag).Get("json"), ",")
		}
		if name == "-" {
			continue
		}
		if len(f.Names) == 0 && name == "" { // embedded
			switch t := f.Type.(type) {
			case *ast.Ident:
				if inner, ok := g[t.Name]; ok {
					for k, v := range g.fields(inner) {
						out[k] = v
					}
				}
			case *ast.SelectorExpr:
				if t.Sel.Name == "TypeMeta" {
					out["apiVersion"], out["kind"] = ast.NewIdent("string"), ast.NewIdent("string")
				}
			}
			continue
		}
		if name == "" && len(f.Names) > 0 {
			name = f.Names[0].Name
		}
		out[name] = f.Type
	}
	return out
}

// check reports the keys of v that typ does not have, recursively.
func (g goTypes) check(path string, v any, typ ast.Expr) []string {
	switch t := typ.(type) {
	case *ast.StarExpr:
		return g.check(path, v, t.X)
	case *ast.ArrayType:
		var errs []string
		if s, ok := v.([]any); ok {
			for i, e := range s {
				errs = append(errs, g.check(fmt.Sprintf("%s[%d]", path, i), e, t.Elt)...)
			}
		}
		return errs
	case *ast.MapType:
		var errs []string
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				errs = append(errs, g.check(path+"."+k, e, t.Value)...)
			}
		}
		return errs
	case *ast.Ident:
		st, ok := g[t.Name]
		if !ok {
			return nil // a scalar or a named non-struct type
		}
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v is not an object", path, v)}
		}
		fields := g.fields(st)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var errs []string
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: no such field in this minor", path, k))
				continue
			}
			errs = append(errs, g.check(path+"."+k, m[k], ft)...)
		}
		return errs
	default:
		return nil // a type from another package
	}
}

// TestFieldCheckerCatchesUnknownFields proves the checker above can fail.
func TestFieldCheckerCatchesUnknownFields(t *testing.T) {
	dir := t.TempDir()
	src := "package x\ntype Top struct {\n\tInner `json:\",inline\"`\n\tA Sub `json:\"a\"`\n}\n" +
		"type Inner struct {\n\tB string `json:\"b,omitempty\"`\n}\ntype Sub struct {\n\tC []string `json:\"c\"`\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := structTypes(dir)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{"b": "x", "a": map[string]any{"c": []any{"y"}}}
	if errs := g.check("Top", ok, ast.NewIdent("Top")); len(errs) != 0 {
		t.Errorf("known fields rejected: %v", errs)
	}
	bad := map[string]any{"b": "x", "a": map[string]any{"d": 1}, "e": true}
	if errs := g.check("Top", bad, ast.NewIdent("Top")); len(errs) != 2 {
		t.Errorf("want 2 unknown fields, got %v", errs)
	}
}
