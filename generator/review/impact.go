package review

import (
	"fmt"
	"path"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
)

// Impact groups that are not components of the table.
const (
	compUnknown = "unknown component (check by hand)"
)

// impactRule is the components that read one node path, with what the file is called
// in reasons ("manifest changed"; empty means the file's base name).
type impactRule struct {
	components []*component.Component
	what       string
}

// lookupImpact returns the components of the table that read node path p: static pods
// restart by themselves when their manifest changes (the kubelet recreates them); for
// everything else the operator restarts or reloads the component.
func lookupImpact(t component.Table, p string) (impactRule, bool) {
	var r impactRule
	for _, co := range t.Readers(p) {
		read, _ := co.ReadsPath(p)
		r.components = append(r.components, co)
		r.what = read.What
	}
	return r, len(r.components) > 0
}

// impacts derives the impact summary from the groups.
func impacts(t component.Table, groups []Group, oldBy, newBy map[string]*bundle.File) []Impact {
	var out []Impact
	for _, g := range groups {
		switch {
		case g.Node && g.Status == Added:
			out = append(out, Impact{Node: g.Name, Component: "new node", Reasons: []string{"provision it"}})
			continue
		case g.Node && g.Status == Removed:
			out = append(out, Impact{Node: g.Name, Component: "removed node", Reasons: []string{"drain it and delete its Node object"}})
			continue
		}
		reasons := map[string][]string{}
		var extra []Impact
		for _, f := range g.Files {
			reason := func(what string) string {
				if what == "" {
					what = path.Base(f.Path)
				}
				return what + " " + string(f.Change)
			}
			if !g.Node {
				if im, ok := clusterImpact(f, reason); ok {
					extra = append(extra, im)
				}
				continue
			}
			if !strings.HasPrefix(f.Path, "/") {
				// Provisioning views are used at first boot only; but directives that are
				// not files are what a reviewer must look at.
				if len(f.Directives) > 0 {
					extra = append(extra, Impact{Node: g.Name, Component: "provisioning views",
						Reasons: []string{fmt.Sprintf("%s: %d directive(s) besides its files", f.Path, len(f.Directives))}})
				}
				continue
			}
			r, ok := lookupImpact(t, f.Path)
			if !ok {
				reasons[compUnknown] = appendOnce(reasons[compUnknown], reason(""))
				continue
			}
			for _, co := range r.components {
				if co.Kind == component.StaticPod && !hasNodeFile(g.Name, co.Manifest, oldBy, newBy) {
					continue // this node does not run it
				}
				reasons[co.Name] = appendOnce(reasons[co.Name], reason(r.what))
			}
		}
		// Components in table order, files no component reads last.
		for _, co := range t {
			if rs := reasons[co.Name]; len(rs) > 0 {
				out = append(out, Impact{Node: g.Name, Component: co.Name, Reasons: rs})
			}
		}
		if rs := reasons[compUnknown]; len(rs) > 0 {
			out = append(out, Impact{Node: g.Name, Component: compUnknown, Reasons: rs})
		}
		out = append(out, extra...)
	}
	return out
}

// clusterImpact maps a cluster-level file: add-ons are applied with kubectl, the admin
// kubeconfig replaces the operator's copy.
func clusterImpact(f FileDiff, reason func(string) string) (Impact, bool) {
	switch {
	case strings.HasPrefix(f.Path, "admin/addons/"):
		name := strings.TrimSuffix(path.Base(f.Path), path.Ext(f.Path))
		r := reason("")
		if f.Change != Removed {
			r += ": kubectl apply -f " + f.Path
		}
		return Impact{Node: ClusterGroup, Component: "add-on " + name, Reasons: []string{r}}, true
	case strings.HasPrefix(f.Path, "admin/"):
		return Impact{Node: ClusterGroup, Component: component.Operator, Reasons: []string{reason("")}}, true
	}
	return Impact{}, false
}

func hasNodeFile(node, p string, oldBy, newBy map[string]*bundle.File) bool {
	key := "nodes/" + node + "/rootfs" + p
	return oldBy[key] != nil || newBy[key] != nil
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
