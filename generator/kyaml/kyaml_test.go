package kyaml

import (
	"strings"
	"testing"

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
