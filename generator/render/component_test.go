package render_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/kyaml"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/render"
	"github.com/scratchgen/scratchgen/generator/review"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/verify"
	"github.com/scratchgen/scratchgen/generator/writer"
)

// A tiny static pod component that exists only in this test: one table row and one step.
const (
	fakeName     = "fake-agent"
	fakeManifest = "/etc/kubernetes/manifests/fake-agent.yaml"
	fakeConfig   = "/etc/fake-agent/config.yaml"
	fakeTag      = "registry.k8s.io/fake-agent:v0.1.0"
	fakeDigest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

var fakeRow = component.Component{
	Name: fakeName, Kind: component.StaticPod, Image: fakeName, Manifest: fakeManifest,
	On:    func(_ *model.Cluster, n *model.Node) bool { return n.ControlPlane() },
	Reads: []component.Read{{Path: fakeManifest, What: "manifest"}, {Path: fakeConfig, What: "config"}},
}

// fakeStep renders the fake component's manifest and config; level goes into the config,
// so two plans can differ in it alone.
func fakeStep(level string) render.Step {
	return render.Step{Name: fakeName, Run: func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		if !fakeRow.Runs(c, n) {
			return nil
		}
		file := corev1.HostPathFile
		pod := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: fakeName, Namespace: "kube-system", Labels: map[string]string{"component": fakeName}},
			Spec: corev1.PodSpec{
				HostNetwork: true,
				Containers: []corev1.Container{{Name: fakeName, Image: c.Images.Refs[fakeName],
					Command:      []string{"fake-agent", "--config=" + fakeConfig},
					VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: fakeConfig, ReadOnly: true}}}},
				Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fakeConfig, Type: &file}}}},
			},
		}
		data, err := kyaml.Marshal(pod)
		if err != nil {
			return err
		}
		b.Public(fakeManifest, data)
		b.Public(fakeConfig, []byte("level: "+level+"\n"))
		return nil
	}}
}

// TestFakeComponent adds a component with one table row and one step, and checks that
// images, diff's impact and verify pick it up with no other edit.
func TestFakeComponent(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	deps := render.Deps{Secret: []byte(strings.Repeat("k", 32)), Now: now}
	table := append(component.Default(), fakeRow)
	plan := func(level string) (*render.Resolved, *render.Output) {
		t.Helper()
		r, err := render.Resolve([]byte(spec.Example("demo")), nil)
		if err != nil {
			t.Fatal(err)
		}
		// The spec and model fields of the component: its image, pinned.
		r.Cluster.Images.Tags[fakeName] = fakeTag
		r.Cluster.Images.Refs[fakeName] = fakeTag + "@" + fakeDigest
		out, err := render.Plan(r, deps, render.WithComponent(fakeRow, fakeStep(level)))
		if err != nil {
			t.Fatal(err)
		}
		return r, out
	}
	r, out := plan("info")
	c := r.Cluster

	// Images: the control plane needs the fake image, a worker does not.
	cp, worker := c.ControlPlanes()[0], c.Node("worker-1")
	if got := images.ForNode(table, c, cp); !slices.Contains(got, fakeTag) {
		t.Errorf("images for %s: %v, want %s among them", cp.Name, got, fakeTag)
	}
	if got := images.ForNode(table, c, worker); slices.Contains(got, fakeTag) {
		t.Errorf("images for %s: %v, want no %s", worker.Name, got, fakeTag)
	}
	node := out.Plan.Node(cp.Name)
	if node == nil || !slices.ContainsFunc(node.Rootfs, func(f bundle.File) bool { return f.Path == fakeManifest && f.Owner == fakeName }) {
		t.Fatalf("the fake step's manifest is not in %s's plan", cp.Name)
	}

	// Verify: with the row the bundle is clean; without it the manifest is unknown; a
	// file the manifest mounts must exist.
	dir := filepath.Join(t.TempDir(), c.Name)
	if _, err := writer.Write(dir, out.Plan.Files(), writer.NoSync()); err != nil {
		t.Fatal(err)
	}
	at := now.Add(time.Hour)
	problems, err := verify.Bundle(dir, verify.Options{At: at, Components: table})
	if err != nil {
		t.Fatal(err)
	}
	if errs := verify.Errors(problems); len(errs) > 0 {
		t.Errorf("verify with the fake row: %v", errs)
	}
	problems, err = verify.Bundle(dir, verify.Options{At: at})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(verify.Errors(problems), func(p verify.Problem) bool {
		return strings.HasSuffix(p.Path, fakeManifest) && strings.Contains(p.Msg, "not the manifest of a component")
	}) {
		t.Errorf("verify without the fake row does not flag its manifest: %v", problems)
	}

	var without []bundle.File
	for _, f := range out.Plan.Files() {
		if !strings.HasSuffix(f.Path, "/rootfs"+fakeConfig) {
			without = append(without, f)
		}
	}
	dir2 := filepath.Join(t.TempDir(), c.Name)
	if _, err := writer.Write(dir2, without, writer.NoSync()); err != nil {
		t.Fatal(err)
	}
	problems, err = verify.Bundle(dir2, verify.Options{At: at, Components: table})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(verify.Errors(problems), func(p verify.Problem) bool {
		return strings.HasSuffix(p.Path, fakeManifest) && strings.Contains(p.Msg, fakeConfig)
	}) {
		t.Errorf("verify does not miss the file the fake manifest mounts: %v", problems)
	}

	// Impact: a change to the file it reads restarts it, on the nodes that run it.
	_, changed := plan("debug")
	rep := review.Compare(out.Plan.Files(), changed.Plan.Files(), review.Options{Cluster: c.Name, Nodes: []string{cp.Name, worker.Name}, Components: table})
	var impact []string
	for _, im := range rep.Impact {
		impact = append(impact, im.Node+": "+im.Component+" ("+strings.Join(im.Reasons, ", ")+")")
	}
	want := cp.Name + ": " + fakeName + " (config changed)"
	if !slices.Contains(impact, want) || len(impact) != 1 {
		t.Errorf("impact %q, want exactly %q", impact, want)
	}
}

// TestStepErrorNamesNodeOnce: a failing step's error names the node once, quoted, and the
// step.
func TestStepErrorNamesNodeOnce(t *testing.T) {
	boom := render.Step{Name: "boom", Run: func(_ *model.Cluster, n *model.Node, _ *bundle.NodeBuilder) error {
		if n.Name == "worker-1" {
			return errors.New("the widget is missing")
		}
		return nil
	}}
	_, err := render.Render([]byte(spec.Example("demo")), nil, render.Deps{Secret: []byte(strings.Repeat("k", 32)), Now: time.Now()},
		render.WithComponent(component.Component{Name: "boom", Kind: component.Other}, boom))
	if err == nil || err.Error() != `planning node "worker-1": boom: the widget is missing` {
		t.Errorf("err = %v", err)
	}
}
