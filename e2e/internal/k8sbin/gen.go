package k8sbin

// Pure, network-free parts: go.mod parsing, tools-module generation and
// ldflags construction. Everything here is covered by unit tests.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// toolsModulePath is the module path of every generated tools module. It is
// never published; .invalid makes sure it cannot collide with a real module.
const toolsModulePath = "scratchgen.invalid/k8sbin/tools"

// buildTags mirrors the tags hack/lib/golang.sh uses for release builds.
const buildTags = "selinux,notest,grpcnotrace"

var (
	k8sVersionRE  = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)
	etcdVersionRE = regexp.MustCompile(`^v3\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)
)

// k8sMinor validates a Kubernetes version (v1.Y.Z[-pre]) and returns Y.
func k8sMinor(version string) (string, error) {
	m := k8sVersionRE.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("invalid Kubernetes version %q (want v1.Y.Z)", version)
	}
	return m[1], nil
}

// stagingVersion maps a Kubernetes version to the version its staging
// modules are published at: v1.36.3 -> v0.36.3.
func stagingVersion(k8sVersion string) (string, error) {
	if _, err := k8sMinor(k8sVersion); err != nil {
		return "", err
	}
	return "v0" + strings.TrimPrefix(k8sVersion, "v1"), nil
}

func checkEtcdVersion(version string) error {
	if !etcdVersionRE.MatchString(version) {
		return fmt.Errorf("invalid etcd version %q (want v3.Y.Z)", version)
	}
	return nil
}

// modLine is one directive of a go.mod file; block directives are flattened
// ("replace ( a => b )" yields one modLine{Verb: "replace"} per entry).
type modLine struct {
	Verb string
	Args []string
}

// parseGoMod is a small go.mod tokenizer, sufficient for the directives this
// package reads (go, godebug, replace). It understands blocks, // comments and
// quoted strings.
func parseGoMod(text string) ([]modLine, error) {
	var out []modLine
	block := ""
	for n, raw := range strings.Split(text, "\n") {
		toks, err := tokenizeModLine(raw)
		if err != nil {
			return nil, fmt.Errorf("go.mod:%d: %v", n+1, err)
		}
		if len(toks) == 0 {
			continue
		}
		switch {
		case block != "" && len(toks) == 1 && toks[0] == ")":
			block = ""
		case block != "":
			out = append(out, modLine{Verb: block, Args: toks})
		case len(toks) == 2 && toks[1] == "(":
			block = toks[0]
		default:
			out = append(out, modLine{Verb: toks[0], Args: toks[1:]})
		}
	}
	if block != "" {
		return nil, fmt.Errorf("go.mod: unterminated %s block", block)
	}
	return out, nil
}

func tokenizeModLine(line string) ([]string, error) {
	var toks []string
	s := line
	for {
		s = strings.TrimLeft(s, " \t\r")
		if s == "" || strings.HasPrefix(s, "//") {
			return toks, nil
		}
		switch s[0] {
		case '"', '`':
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("bad quoted string in %q", line)
			}
			u, _ := strconv.Unquote(q)
			toks = append(toks, u)
			s = s[len(q):]
		case '(', ')':
			toks = append(toks, s[:1])
			s = s[1:]
		default:
			i := strings.IndexAny(s, " \t\r()\"`")
			if j := strings.Index(s, "//"); j >= 0 && (i < 0 || j < i) {
				i = j
			}
			if i < 0 {
				i = len(s)
			}
			toks = append(toks, s[:i])
			s = s[i:]
		}
	}
}

// stagingModules returns, sorted, the modules that k8s.io/kubernetes's go.mod
// replaces with a directory under ./staging/src/.
func stagingModules(goModText string) ([]string, error) {
	lines, err := parseGoMod(goModText)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Verb != "replace" {
			continue
		}
		arrow := -1
		for i, a := range l.Args {
			if a == "=>" {
				arrow = i
			}
		}
		if arrow < 1 || arrow > 2 || len(l.Args)-arrow != 2 {
			continue // malformed, or replacement with a version: not staging
		}
		target := l.Args[arrow+1]
		local := strings.HasPrefix(target, "./") || strings.HasPrefix(target, "../")
		if local && strings.Contains(target, "staging/src/") {
			seen[l.Args[0]] = true
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no ./staging/src replace directives found")
	}
	mods := make([]string, 0, len(seen))
	for m := range seen {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	return mods, nil
}

// goDirectives returns the "go" version and the godebug settings of a go.mod.
func goDirectives(goModText string) (goVersion string, godebug []string, err error) {
	lines, err := parseGoMod(goModText)
	if err != nil {
		return "", nil, err
	}
	for _, l := range lines {
		switch l.Verb {
		case "go":
			if len(l.Args) == 1 {
				goVersion = l.Args[0]
			}
		case "godebug":
			godebug = append(godebug, strings.Join(l.Args, ""))
		}
	}
	return goVersion, godebug, nil
}

// toolsGoMod renders a tools module go.mod. replaces maps module path to the
// version it must be replaced with (module => module version).
func toolsGoMod(goVersion string, godebug []string, requires [][2]string, replaces map[string]string) string {
	var b strings.Builder
	b.WriteString("// Code generated by scratchgen e2e/internal/k8sbin. DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "module %s\n\n", toolsModulePath)
	if goVersion != "" {
		fmt.Fprintf(&b, "go %s\n\n", goVersion)
	}
	for _, g := range godebug {
		fmt.Fprintf(&b, "godebug %s\n", g)
	}
	if len(godebug) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("require (\n")
	for _, r := range requires {
		fmt.Fprintf(&b, "\t%s %s\n", r[0], r[1])
	}
	b.WriteString(")\n")
	if len(replaces) > 0 {
		mods := make([]string, 0, len(replaces))
		for m := range replaces {
			mods = append(mods, m)
		}
		sort.Strings(mods)
		b.WriteString("\nreplace (\n")
		for _, m := range mods {
			fmt.Fprintf(&b, "\t%s => %s %s\n", m, m, replaces[m])
		}
		b.WriteString(")\n")
	}
	return b.String()
}

// k8sGoMod renders the go.mod of the Kubernetes tools module from
// k8s.io/kubernetes's own go.mod.
func k8sGoMod(k8sVersion, upstreamGoMod string) (string, error) {
	sv, err := stagingVersion(k8sVersion)
	if err != nil {
		return "", err
	}
	staging, err := stagingModules(upstreamGoMod)
	if err != nil {
		return "", fmt.Errorf("k8s.io/kubernetes@%s go.mod: %v", k8sVersion, err)
	}
	goVersion, godebug, err := goDirectives(upstreamGoMod)
	if err != nil {
		return "", err
	}
	replaces := make(map[string]string, len(staging))
	for _, m := range staging {
		replaces[m] = sv
	}
	return toolsGoMod(goVersion, godebug, [][2]string{{"k8s.io/kubernetes", k8sVersion}}, replaces), nil
}

// etcdGoMod renders the go.mod of the etcd tools module.
func etcdGoMod(etcdVersion, serverGoMod string) (string, error) {
	if err := checkEtcdVersion(etcdVersion); err != nil {
		return "", err
	}
	goVersion, godebug, err := goDirectives(serverGoMod)
	if err != nil {
		return "", err
	}
	return toolsGoMod(goVersion, godebug, [][2]string{
		{"go.etcd.io/etcd/server/v3", etcdVersion},
		{"go.etcd.io/etcd/etcdctl/v3", etcdVersion},
	}, nil), nil
}

const k8sMainHeader = "// Code generated by scratchgen e2e/internal/k8sbin. DO NOT EDIT.\n\npackage main\n\n"

// k8sServerMain renders a main like the upstream cmd/<name>/<name>.go ones.
func k8sServerMain(appPkg, ctor string, needsContext bool) string {
	ctxImport, call := "", ctor+"()"
	if needsContext {
		ctxImport, call = "\t\"context\"\n", ctor+"(context.Background())"
	}
	return k8sMainHeader + `import (
` + ctxImport + `	"os"
	_ "time/tzdata" // for CronJob time zone support, like upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric

	"` + appPkg + `"
)

func main() {
	command := app.` + call + `
	code := cli.Run(command)
	os.Exit(code)
}
`
}

const kubectlMain = k8sMainHeader + `import (
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
`

const etcdMain = k8sMainHeader + `import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
`

const etcdctlMain = k8sMainHeader + `import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() {
	ctlv3.MustStart()
}
`

// k8sCtor describes how a server component's main is generated.
type k8sCtor struct {
	AppPkg string // k8s.io/kubernetes/cmd/<name>/app
	Func   string // constructor in AppPkg
}

var k8sServerCtors = map[string]k8sCtor{
	"kube-apiserver":          {"k8s.io/kubernetes/cmd/kube-apiserver/app", "NewAPIServerCommand"},
	"kube-controller-manager": {"k8s.io/kubernetes/cmd/kube-controller-manager/app", "NewControllerManagerCommand"},
	"kube-scheduler":          {"k8s.io/kubernetes/cmd/kube-scheduler/app", "NewSchedulerCommand"},
	"kubelet":                 {"k8s.io/kubernetes/cmd/kubelet/app", "NewKubeletCommand"},
	"kube-proxy":              {"k8s.io/kubernetes/cmd/kube-proxy/app", "NewProxyCommand"},
}

// k8sMains returns cmd/<name>/main.go contents for every Kubernetes
// component. ctxCtors names the constructors that take a context.Context.
func k8sMains(ctxCtors map[string]bool) map[string]string {
	mains := map[string]string{"kubectl": kubectlMain}
	for name, c := range k8sServerCtors {
		mains[name] = k8sServerMain(c.AppPkg, c.Func, ctxCtors[c.Func])
	}
	return mains
}

func etcdMains() map[string]string {
	return map[string]string{"etcd": etcdMain, "etcdctl": etcdctlMain}
}

// xVar is one -X linker flag.
type xVar struct{ Pkg, Name, Value string }

// k8sVersionVars are the version variables hack/lib/version.sh sets, for
// each package that declares them (component-base/version, client-go/pkg/version).
func k8sVersionVars(version, buildDate string) ([][2]string, error) {
	minor, err := k8sMinor(version)
	if err != nil {
		return nil, err
	}
	vars := [][2]string{
		{"gitVersion", version},
		{"gitMajor", "1"},
		{"gitMinor", minor},
		{"gitTreeState", "clean"},
	}
	if buildDate != "" {
		vars = append(vars, [2]string{"buildDate", buildDate})
	}
	return vars, nil
}

// ldflags renders "-s -w -X pkg.name=value ...". Values must not contain
// spaces or quotes (go's flag splitting would need quoting); that is checked.
func ldflags(xs []xVar) (string, error) {
	parts := []string{"-s", "-w"}
	for _, x := range xs {
		if x.Value == "" || strings.ContainsAny(x.Value, " \t\n'\"") {
			return "", fmt.Errorf("unsupported -X value %q for %s.%s", x.Value, x.Pkg, x.Name)
		}
		parts = append(parts, "-X", x.Pkg+"."+x.Name+"="+x.Value)
	}
	return strings.Join(parts, " "), nil
}

// contentHash hashes generated files so a tools module is only re-tidied
// when its generated inputs change.
func contentHash(files map[string]string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00%s", n, len(files[n]), files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}
