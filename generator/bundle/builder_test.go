package bundle

import (
	"slices"
	"strings"
	"testing"
)

func TestStartOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		units []Unit
		want  []string
	}{
		{"declaration order without constraints", []Unit{{Name: "a"}, {Name: "b"}, {Name: "c"}}, []string{"a", "b", "c"}},
		{"after moves a unit later", []Unit{{Name: "kubelet", After: []string{"containerd"}}, {Name: "containerd"}}, []string{"containerd", "kubelet"}},
		{"before moves a unit earlier", []Unit{{Name: "kernel"}, {Name: "containerd"}, {Name: "kubelet"}, {Name: "proxy"},
			{Name: "images", After: []string{"containerd"}, Before: []string{"kubelet"}}},
			[]string{"kernel", "containerd", "proxy", "images", "kubelet"}}, // ties go to the unit declared first
		{"declared before its dependents", []Unit{{Name: "kernel"}, {Name: "containerd"},
			{Name: "images", After: []string{"containerd"}, Before: []string{"kubelet"}}, {Name: "kubelet"}, {Name: "proxy"}},
			[]string{"kernel", "containerd", "images", "kubelet", "proxy"}},
		{"undeclared units order nothing", []Unit{{Name: "routes", After: []string{"network-online.target"}}, {Name: "x"}}, []string{"routes", "x"}},
	} {
		b := NewNodeBuilder("n")
		for _, u := range tc.units {
			b.Unit(u)
		}
		n, err := b.Finish()
		if err != nil || !slices.Equal(n.Units, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, n.Units, err, tc.want)
		}
	}
}

func TestBuilderRefuses(t *testing.T) {
	b := NewNodeBuilder("n")
	b.SetOwner("first")
	b.Public("/etc/x", []byte("1"))
	b.SetOwner("second")
	b.Secret("/etc/x", []byte("2"))
	if _, err := b.Finish(); err == nil || !strings.Contains(err.Error(), "/etc/x (first and second)") {
		t.Errorf("two steps writing one path: %v", err)
	}
	b = NewNodeBuilder("n")
	b.Unit(Unit{Name: "a", After: []string{"b"}})
	b.Unit(Unit{Name: "b", After: []string{"a"}})
	if _, err := b.Finish(); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	b = NewNodeBuilder("n")
	b.Unit(Unit{Name: "a"})
	b.Unit(Unit{Name: "a"})
	if _, err := b.Finish(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("unit declared twice: %v", err)
	}
}

func TestBuilderModes(t *testing.T) {
	b := NewNodeBuilder("n")
	b.Public("/b", nil)
	b.Executable("/a", nil)
	b.Secret("/c", nil)
	n, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, f := range n.Rootfs {
		got = append(got, f.Path+" "+f.Mode.String())
		if f.Secret != (f.Path == "/c") {
			t.Errorf("%s: secret %v", f.Path, f.Secret)
		}
	}
	if want := []string{"/a -rwxr-xr-x", "/b -rw-r--r--", "/c -rw-------"}; !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
}
