package kyaml

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	yamlv2 "go.yaml.in/yaml/v2"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

func TestMarshalOmitsNoiseAndRoundTrips(t *testing.T) {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"b": "", "a": "1"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name:            "c",
					SecurityContext: &corev1.SecurityContext{},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("100m"),
					}},
					LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/health", Port: intstr.FromInt32(8080)}}},
				}},
			}},
		},
	}
	out, err := Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, noise := range []string{"null", "status", "creationTimestamp", "strategy"} {
		if strings.Contains(s, noise) {
			t.Errorf("output contains %q:\n%s", noise, s)
		}
	}
	for _, keep := range []string{"replicas: 0", "securityContext: {}", "b: \"\"", "cpu: 100m", "port: 8080", "kind: Deployment"} {
		if !strings.Contains(s, keep) {
			t.Errorf("output lacks %q:\n%s", keep, s)
		}
	}
	var back appsv1.Deployment
	if err := yaml.UnmarshalStrict(out, &back); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(d, &back) {
		t.Errorf("round trip changed the object:\n%s", s)
	}
}

func TestMarshalKeepsPointerFalse(t *testing.T) {
	k := kubeletv1beta1.KubeletConfiguration{
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
	}
	out, err := Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	want := "authentication:\n  anonymous:\n    enabled: false\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestMarshalDocuments(t *testing.T) {
	out, err := MarshalDocuments(map[string]int{"a": 1}, map[string]int{"b": 2})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a: 1\n---\nb: 2\n" {
		t.Errorf("got %q", out)
	}
}

// TestDirectEqualsRoundTrip: the trees Marshal writes with yaml.v2 directly come out byte
// for byte as sigs.k8s.io/yaml's JSON round trip writes them: random trees of tricky
// strings (YAML 1.1 booleans, numbers, indicators, line breaks, Unicode), integers to
// the int64 and uint64 limits, integer json.Numbers (as leaf makes them), booleans and
// nulls, nested maps and slices. Trees direct refuses (floats, invalid UTF-8) are
// checked to be refused.
func TestDirectEqualsRoundTrip(t *testing.T) {
	strs := []string{"", "yes", "no", "Yes", "off", "y", "true", "null", "~", "123", "-1", "0x1F", "0o17", "1e3", ".5", "1_000",
		"a: b", "a:b", "- x", "-", "#c", "a #c", "multi\nline", "trailing\n", "\n", " lead", "trail ", "tab\tx", "ünïcödé",
		"\u2028", "'q'", "\"dq\"", "@at", "`b", "%p", "a,b", "[x]", "{y}", "*a", "&a", "!t", "|", ">", "?", "=", "<b>&",
		"2026-12-02", "12:30", "0755", "+1", "NaN", ".inf", strings.Repeat("long ", 40)}
	rng := rand.New(rand.NewPCG(11, 12))
	var gen func(depth int) any
	gen = func(depth int) any {
		k := rng.IntN(10)
		if depth >= 4 && k >= 7 {
			k = rng.IntN(7)
		}
		switch k {
		case 0:
			return strs[rng.IntN(len(strs))]
		case 1:
			return []int64{0, -1, 1<<53 + 1, math.MaxInt64, math.MinInt64, rng.Int64()}[rng.IntN(6)]
		case 2:
			return []uint64{0, math.MaxUint64, rng.Uint64()}[rng.IntN(3)]
		case 3:
			return json.Number([]string{"42", "-7", "0", "18446744073709551615", "-9223372036854775808"}[rng.IntN(5)])
		case 4:
			return rng.IntN(2) == 0
		case 5:
			return nil
		case 6:
			b := make([]byte, rng.IntN(6))
			for i := range b {
				b[i] = "ab:-# \n'\"yes1"[rng.IntN(13)]
			}
			return string(b)
		case 7, 8:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[strs[rng.IntN(len(strs))]] = gen(depth + 1)
			}
			return m
		default:
			s := make([]any, rng.IntN(4))
			for i := range s {
				s[i] = gen(depth + 1)
			}
			return s
		}
	}
	for i := range 3000 {
		seed := rng.Uint64()
		mk := func() any {
			rng = rand.New(rand.NewPCG(seed, 1))
			return map[string]any{"root": gen(0)}
		}
		tree, again := mk(), mk()
		if !direct(tree) {
			t.Fatalf("tree %d: direct refused a tree of its kinds: %#v", i, again)
		}
		got, err := yamlv2.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		want, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("tree %d: yaml.v2 directly:\n%s\nthe JSON round trip:\n%s", i, got, want)
		}
	}
	for _, tree := range []any{1.5, float32(0.1), 1e6, json.Number("1.5"), json.Number("1e3"), "\xff", map[string]any{"\xfe": true}} {
		if direct(map[string]any{"x": []any{tree}}) {
			t.Errorf("direct took %#v, which the JSON round trip writes differently or may", tree)
		}
	}
}
