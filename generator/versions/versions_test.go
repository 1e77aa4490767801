package versions

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readRepo reads a file of the repository (this package is generator/versions).
func readRepo(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestTableTiedToRepository: the Makefile's tested patches, .ci/run's older config
// modules and the README's supported minors all follow the version table.
func TestTableTiedToRepository(t *testing.T) {
	var patches []string
	for _, p := range All() {
		patches = append(patches, p.TestedPatch)
		if v, err := Parse(p.TestedPatch); err != nil || v.Minor != p.MinorNumber || "1."+strconv.Itoa(v.Minor) != p.Minor {
			t.Errorf("profile %s: tested patch %s is not of its minor", p.Minor, p.TestedPatch)
		}
	}
	m := regexp.MustCompile(`(?m)^K8S_VERSIONS \?= (.*)$`).FindStringSubmatch(readRepo(t, "Makefile"))
	if m == nil || !slices.Equal(strings.Fields(m[1]), patches) {
		t.Errorf("Makefile K8S_VERSIONS = %q, want %q (each profile's TestedPatch)", m, strings.Join(patches, " "))
	}
	e := regexp.MustCompile(`(?m)^E2E_VERSION \?= (.*)$`).FindStringSubmatch(readRepo(t, "Makefile"))
	if e == nil || e[1] != Default || Default != patches[len(patches)-1] {
		t.Errorf("Makefile E2E_VERSION %q and versions.Default %s must be the newest tested patch %s", e, Default, patches[len(patches)-1])
	}

	// The module builds against the newest minor's config types; .ci/run fetches the
	// older minors' kubelet and kube-proxy config modules for the per-minor field test.
	gomod := readRepo(t, "go.mod")
	ci := readRepo(t, ".ci/run")
	for _, p := range All() {
		mod := "v0" + strings.TrimPrefix(p.TestedPatch, "v1")
		for _, pkg := range []string{"k8s.io/kubelet", "k8s.io/kube-proxy"} {
			inGoMod := strings.Contains(gomod, pkg+" "+mod+"\n")
			inCI := strings.Contains(ci, pkg+"@"+mod)
			if inGoMod == inCI {
				t.Errorf("%s %s: go.mod has it %v, .ci/run downloads it %v; exactly one must (the newest minor in go.mod)", pkg, mod, inGoMod, inCI)
			}
		}
	}
	if want := "Supported Kubernetes minors: **" + Supported() + "**"; !strings.Contains(readRepo(t, "README.md"), want) {
		t.Errorf("README.md does not say %q", want)
	}
}

func TestIPVSDeprecatedSince(t *testing.T) {
	if got := IPVSDeprecatedSince(); got != "1.35" {
		t.Errorf("IPVSDeprecatedSince() = %s", got)
	}
}
