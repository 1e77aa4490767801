package review

import (
	"fmt"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// RolloutStep is one step of delivering a change, in order: the nodes to deliver to
// (one at a time, waiting for each to be healthy, when OneAtATime), the static pods that
// then restart by themselves (their manifest changes with what they read), and the
// commands to run on each of those nodes afterwards.
type RolloutStep struct {
	// Phase is "etcd members", "control planes", "other nodes", "new nodes", "removed
	// nodes" or "cluster".
	Phase      string   `json:"phase"`
	Nodes      []string `json:"nodes,omitempty"`
	OneAtATime bool     `json:"oneAtATime,omitempty"`
	// SelfRestart are the static pods the kubelet restarts on delivery.
	SelfRestart []string `json:"selfRestart,omitempty"`
	// Commands run on the node (or, for the cluster, by the operator), in order.
	Commands []string `json:"commands,omitempty"`
}

// Rollout phases, in order: etcd members keep quorum only one at a time; API servers
// serve only one at a time behind an endpoint; the other nodes may go together.
const (
	phaseEtcd    = "etcd members"
	phaseControl = "control planes"
	phaseOther   = "other nodes"
	phaseNew     = "new nodes"
	phaseRemoved = "removed nodes"
	phaseCluster = "cluster"
)

// rollout orders the impacts into delivery steps. Nodes of one phase that need the same
// restarts and commands share a step.
func rollout(t component.Table, groups []Group, impacts []Impact) []RolloutStep {
	byNode := map[string][]Impact{}
	var order []string
	for _, im := range impacts {
		if byNode[im.Node] == nil {
			order = append(order, im.Node)
		}
		byNode[im.Node] = append(byNode[im.Node], im)
	}
	unitsChanged := map[string]bool{}
	for _, g := range groups {
		for _, f := range g.Files {
			if strings.HasPrefix(f.Path, paths.SystemdDir+"/") {
				unitsChanged[g.Name] = true
			}
		}
	}
	type nodeStep struct {
		phase string
		self  []string
		cmds  []string
	}
	steps := map[string]*nodeStep{}
	var cluster []string
	for _, node := range order {
		if node == ClusterGroup {
			for _, im := range byNode[node] {
				cluster = append(cluster, clusterCommand(im))
			}
			continue
		}
		s := &nodeStep{phase: phaseOther}
		var units []string
		enable := false
		for _, im := range byNode[node] {
			switch im.Component {
			case "new node":
				s.phase = phaseNew
				s.cmds = []string{"provision it: rsync nodes/" + node + "/rootfs/ and run the delivery command, or boot it with its ignition.json or user-data"}
				continue
			case "removed node":
				s.phase = phaseRemoved
				s.cmds = []string{"kubectl drain " + node + " --ignore-daemonsets, kubectl delete node " + node + ", then power it off"}
				continue
			}
			co, ok := t.Lookup(im.Component)
			if !ok {
				continue
			}
			switch {
			case co.Kind == component.StaticPod:
				s.self = append(s.self, co.Name)
				if co.Name == component.Etcd {
					s.phase = phaseEtcd
				} else if s.phase != phaseEtcd {
					s.phase = phaseControl
				}
			case co.Name == component.EnabledUnits:
				enable = true
			case co.Kind == component.Service && co.Unit != "":
				units = append(units, co.Unit)
			}
		}
		if s.phase == phaseNew || s.phase == phaseRemoved {
			steps[node] = s
			continue
		}
		switch {
		case enable:
			// The delivery command reloads, enables and restarts every listed unit.
			s.cmds = append(s.cmds, paths.EnableCommand)
		case len(units) > 0:
			if unitsChanged[node] {
				s.cmds = append(s.cmds, "systemctl daemon-reload")
			}
			s.cmds = append(s.cmds, "systemctl restart "+strings.Join(units, " "))
		case unitsChanged[node]:
			s.cmds = append(s.cmds, "systemctl daemon-reload")
		}
		steps[node] = s
	}
	var out []RolloutStep
	for _, phase := range []string{phaseEtcd, phaseControl, phaseOther, phaseNew, phaseRemoved} {
		one := phase == phaseEtcd || phase == phaseControl
		var cur *RolloutStep
		for _, node := range order {
			s := steps[node]
			if s == nil || s.phase != phase {
				continue
			}
			if cur != nil && slices.Equal(cur.SelfRestart, s.self) && slices.Equal(cur.Commands, s.cmds) {
				cur.Nodes = append(cur.Nodes, node)
				continue
			}
			out = append(out, RolloutStep{Phase: phase, Nodes: []string{node}, OneAtATime: one, SelfRestart: s.self, Commands: s.cmds})
			cur = &out[len(out)-1]
		}
	}
	if len(cluster) > 0 {
		out = append(out, RolloutStep{Phase: phaseCluster, Commands: cluster})
	}
	return out
}

// clusterCommand is what the operator does for a cluster-level impact.
func clusterCommand(im Impact) string {
	if strings.HasPrefix(im.Component, "add-on ") {
		return fmt.Sprintf("%s: %s", im.Component, strings.Join(im.Reasons, ", "))
	}
	return fmt.Sprintf("%s: replace your copies (%s)", im.Component, strings.Join(im.Reasons, ", "))
}

// writeRollout writes the rollout steps.
func writeRollout(b *strings.Builder, steps []RolloutStep) {
	if len(steps) == 0 {
		return
	}
	b.WriteString("\nrollout (deliver in this order; after each node, wait until it is Ready and its static pods run):\n")
	for i, s := range steps {
		switch {
		case s.Phase == phaseCluster:
			fmt.Fprintf(b, "  %d. cluster:\n", i+1)
		case s.OneAtATime:
			fmt.Fprintf(b, "  %d. %s, one at a time: %s\n", i+1, s.Phase, CompressNames(s.Nodes))
		default:
			fmt.Fprintf(b, "  %d. %s: %s\n", i+1, s.Phase, CompressNames(s.Nodes))
		}
		if len(s.SelfRestart) > 0 {
			fmt.Fprintf(b, "     restart by themselves (their manifests change): %s\n", strings.Join(s.SelfRestart, ", "))
		}
		for _, c := range s.Commands {
			if s.Phase == phaseCluster || s.Phase == phaseNew || s.Phase == phaseRemoved {
				fmt.Fprintf(b, "     %s\n", c)
				continue
			}
			fmt.Fprintf(b, "     then run: %s\n", c)
		}
	}
}
