package review

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/lock"
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
	// Before are commands to run before delivering (e.g. drain the node).
	Before []string `json:"before,omitempty"`
	// SelfRestart are the static pods the kubelet restarts on delivery.
	SelfRestart []string `json:"selfRestart,omitempty"`
	// Commands run on the node (or, for the cluster, by the operator), in order. $NODE
	// stands for the node's name.
	Commands []string `json:"commands,omitempty"`
	// Notes explain the step (why this order, what to wait for).
	Notes []string `json:"notes,omitempty"`
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
	// etcd membership steps, run on a member that stays.
	phaseEtcdAdd     = "etcd: add a member"
	phaseEtcdPromote = "etcd: promote the new member"
	phaseEtcdRemove  = "etcd: remove a member"
	phaseEtcdStop    = "etcd: stop the removed member"
)

// rollout orders the impacts into delivery steps. Nodes of one phase that need the same
// restarts and commands share a step. sh is the change of the cluster's shape (etcd
// members, versions), which adds membership steps and upgrade commands.
func rollout(t component.Table, groups []Group, impacts []Impact, sh shape) []RolloutStep {
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
		phase  string
		before []string
		self   []string
		cmds   []string
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
				s.cmds = []string{"provision it: rsync nodes/" + node + "/rootfs/ and run the delivery command, or boot it with its ignition.json or user-data and rsync the files their header (node.bu, user-data) lists as omitted"}
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
		upgrade := sh.kubeletChange(node)
		if upgrade != "" {
			// The new kubelet and kube-proxy binaries restart with the delivered files.
			units = appendMissing(units, paths.KubeletService, paths.KubeProxyService)
			if sh.minorChange(node) {
				s.before = append(s.before, drainCommand)
			}
			if c := sh.installCommand(node); c != "" {
				s.cmds = append(s.cmds, c)
			}
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
		if upgrade != "" && sh.minorChange(node) {
			s.cmds = append(s.cmds, uncordonCommand)
		}
		steps[node] = s
	}
	for _, node := range sh.nodes {
		// A node whose only change is its kubelet's version (a pin lifted or set).
		if steps[node] == nil && sh.kubeletChange(node) != "" && !slices.Contains(order, node) {
			order = append(order, node)
			s := &nodeStep{phase: phaseOther}
			if sh.minorChange(node) {
				s.before = append(s.before, drainCommand)
			}
			if c := sh.installCommand(node); c != "" {
				s.cmds = append(s.cmds, c)
			}
			s.cmds = append(s.cmds, "systemctl restart "+paths.KubeletService+" "+paths.KubeProxyService)
			if sh.minorChange(node) {
				s.cmds = append(s.cmds, uncordonCommand)
			}
			steps[node] = s
		}
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
			if cur != nil && slices.Equal(cur.Before, s.before) && slices.Equal(cur.SelfRestart, s.self) && slices.Equal(cur.Commands, s.cmds) {
				cur.Nodes = append(cur.Nodes, node)
				continue
			}
			out = append(out, RolloutStep{Phase: phase, Nodes: []string{node}, OneAtATime: one, Before: s.before, SelfRestart: s.self, Commands: s.cmds})
			cur = &out[len(out)-1]
		}
	}
	out = sh.membership(out)
	if sh.from != "" && sh.from != sh.to {
		for i := range out {
			if out[i].Phase == phaseControl {
				out[i].Notes = append(out[i].Notes, fmt.Sprintf("control plane %s → %s: each node's API server, controller manager and scheduler go together; the controller manager and scheduler talk only to their own node's API server, so none is ever newer than the API server it uses", sh.from, sh.to))
				break
			}
		}
	}
	if len(cluster) > 0 {
		out = append(out, RolloutStep{Phase: phaseCluster, Commands: cluster})
	}
	return out
}

// A minor upgrade of a node's kubelet drains the node first (in-place minor upgrades of
// a running kubelet are not supported) and uncordons it after. Both run from an operator's
// machine with the admin kubeconfig, as every kubectl line of a runbook does.
const (
	drainCommand    = "kubectl drain $NODE --ignore-daemonsets --delete-emptydir-data"
	uncordonCommand = "kubectl uncordon $NODE"
)

func appendMissing(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// shape is the change of the cluster's shape between the bundle on disk and the render:
// etcd members (from the locks) and versions (from bundle.json).
type shape struct {
	added, removed []lock.EtcdMember
	members        []lock.EtcdMember // after the change
	from, to       string            // the control plane's release
	nodes          []string          // in the rendered bundle's order
	oldKubelet     map[string]string // node → the kubelet release on disk
	newKubelet     map[string]string // node → the kubelet release rendered
	binDir         map[string]string
	binaries       map[string]string // node → "carried", "fetched" or "" (installed by the operator)
}

// readShape compares the locks' etcd members and the bundle.json files.
func readShape(oldBy, newBy map[string]*bundle.File, oldLock, newLock *lock.Lock) shape {
	sh := shape{oldKubelet: map[string]string{}, newKubelet: map[string]string{}, binDir: map[string]string{}, binaries: map[string]string{}}
	read := func(f *bundle.File, kubelet map[string]string) string {
		if f == nil || f.Pending != "" {
			return ""
		}
		m, err := bundle.ParseMetadata(f.Data)
		if err != nil {
			return ""
		}
		for _, n := range m.Nodes {
			v := n.KubeletVersion
			if v == "" {
				v = m.KubernetesVersion
			}
			kubelet[n.Name] = v
			sh.binDir[n.Name] = n.BinDir
		}
		return m.KubernetesVersion
	}
	sh.from = read(oldBy[bundle.MetadataName], sh.oldKubelet)
	sh.to = read(newBy[bundle.MetadataName], sh.newKubelet)
	if f := newBy[bundle.MetadataName]; f != nil && f.Pending == "" {
		if m, err := bundle.ParseMetadata(f.Data); err == nil {
			for _, n := range m.Nodes {
				sh.nodes = append(sh.nodes, n.Name)
				switch {
				case len(n.Binaries) > 0 && n.BinariesCarried:
					sh.binaries[n.Name] = "carried"
				case len(n.Binaries) > 0:
					sh.binaries[n.Name] = "fetched"
				}
			}
		}
	}
	if oldLock != nil && oldLock.Etcd != nil && newLock != nil && newLock.Etcd != nil {
		was := map[string]bool{}
		for _, m := range oldLock.Etcd.Members {
			was[m.Name] = true
		}
		is := map[string]bool{}
		for _, m := range newLock.Etcd.Members {
			is[m.Name] = true
			if !was[m.Name] {
				sh.added = append(sh.added, m)
			}
		}
		for _, m := range oldLock.Etcd.Members {
			if !is[m.Name] {
				sh.removed = append(sh.removed, m)
			}
		}
		sh.members = newLock.Etcd.Members
	}
	return sh
}

// kubeletChange is the command that installs node's new kubelet and kube-proxy, or ""
// when their release does not change (or the node is new).
func (sh shape) kubeletChange(node string) string {
	o, n := sh.oldKubelet[node], sh.newKubelet[node]
	if o == "" || n == "" || o == n {
		return ""
	}
	return fmt.Sprintf("install kubelet and kube-proxy %s into %s (they run %s now)", n, sh.binDir[node], o)
}

// installCommand is what installs node's new kubelet and kube-proxy ("" when the bundle
// does: rootfs/ carries them, or scratchgen-binaries.service fetches them).
func (sh shape) installCommand(node string) string {
	// Carried: rootfs/ holds them. Fetched: install-binaries.sh changed with the pins,
	// so scratchgen-binaries.service is among the units to restart, before the kubelet.
	if sh.binaries[node] != "" {
		return ""
	}
	return sh.kubeletChange(node)
}

// minorChange reports whether node's kubelet changes minor (drain it first).
func (sh shape) minorChange(node string) bool {
	o, n := sh.oldKubelet[node], sh.newKubelet[node]
	return o != "" && n != "" && minorOf(o) != minorOf(n)
}

func minorOf(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// etcdctl is the command line every membership step starts with: run on a member, with
// the node's health-check client certificate, against its own client URL.
var etcdctl = "etcdctl --endpoints https://127.0.0.1:" + strconv.Itoa(paths.EtcdClientPort) +
	" --cacert " + paths.EtcdCACert + " --cert " + paths.EtcdHealthcheckClientCert + " --key " + paths.EtcdHealthcheckClientKey

// EtcdctlPrefix is etcdctl's connection flags as the runbook writes them (for tools that
// run the runbook's commands).
func EtcdctlPrefix() string { return etcdctl }

// remainingHealth checks every member but gone: the member being removed may be dead.
func (sh shape) remainingHealth(gone string) string {
	var eps []string
	for _, m := range sh.members {
		if m.Name != gone && !slices.ContainsFunc(sh.added, func(a lock.EtcdMember) bool { return a.Name == m.Name }) {
			eps = append(eps, strings.Replace(m.PeerURL, ":"+strconv.Itoa(paths.EtcdPeerPort), ":"+strconv.Itoa(paths.EtcdClientPort), 1))
		}
	}
	return strings.Replace(etcdctl, "https://127.0.0.1:"+strconv.Itoa(paths.EtcdClientPort), strings.Join(eps, ","), 1) + " endpoint health"
}

// memberID is the shell expression that finds a member's ID by name.
func memberID(name string) string {
	return fmt.Sprintf("$(%s member list | awk -F', ' '$3 == %q {print $1}')", etcdctl, name)
}

// membership adds the etcd membership steps around the delivery steps: a removal first
// (remove, then stop the member), an addition next (add as a learner on a member that
// stays, deliver the new member, promote it once it caught up), then the rest of the
// rollout (the API servers learn the new member list).
func (sh shape) membership(steps []RolloutStep) []RolloutStep {
	if len(sh.added)+len(sh.removed) == 0 {
		return steps
	}
	var stay string
	for _, m := range sh.members {
		if !slices.ContainsFunc(sh.added, func(a lock.EtcdMember) bool { return a.Name == m.Name }) {
			stay = m.Name
			break
		}
	}
	n := len(sh.members)
	var pre []RolloutStep
	for _, r := range sh.removed {
		left := n - len(sh.added)
		pre = append(pre,
			RolloutStep{Phase: phaseEtcdRemove, Nodes: []string{stay}, Commands: []string{
				sh.remainingHealth(r.Name),
				etcdctl + " member remove " + memberID(r.Name),
			}, Notes: []string{fmt.Sprintf("quorum: %d members remain, quorum %d; every remaining member must be healthy first", left, left/2+1)}},
			RolloutStep{Phase: phaseEtcdStop, Nodes: []string{r.Name}, Commands: []string{
				"rm -f " + paths.EtcdManifest,
				"rm -rf " + paths.EtcdDataDir,
			}, Notes: []string{"the kubelet stops the member once its manifest is gone (or power the node off); a removed member must never start again with its old data"}})
	}
	for _, a := range sh.added {
		// The new member's own delivery step (provisioning or a re-render) goes between
		// its addition and its promotion.
		var own []RolloutStep
		for i := 0; i < len(steps); i++ {
			st := &steps[i]
			if j := slices.Index(st.Nodes, a.Name); j >= 0 {
				one := *st
				one.Nodes = []string{a.Name}
				one.Notes = append(slices.Clone(one.Notes), "its etcd joins the running cluster (--initial-cluster-state=existing) as a learner; its pod stays not ready until promoted (etcd's /readyz fails for a learner); promote within about 4 minutes or its startup probe restarts it (harmless: it resumes from its data)")
				own = append(own, one)
				st.Nodes = slices.Delete(slices.Clone(st.Nodes), j, j+1)
				if len(st.Nodes) == 0 {
					steps = slices.Delete(steps, i, i+1)
					i--
				}
			}
		}
		pre = append(pre, RolloutStep{Phase: phaseEtcdAdd, Nodes: []string{stay}, Commands: []string{
			etcdctl + " endpoint health --cluster",
			etcdctl + " member add " + a.Name + " --peer-urls=" + a.PeerURL + " --learner",
		}, Notes: []string{fmt.Sprintf("a learner does not vote: the quorum stays %d until it is promoted", (n-1)/2+1)}})
		pre = append(pre, own...)
		pre = append(pre, RolloutStep{Phase: phaseEtcdPromote, Nodes: []string{stay}, Commands: []string{
			etcdctl + " member promote " + memberID(a.Name),
		}, Notes: []string{fmt.Sprintf("repeat until it succeeds: it fails with \"can only promote a learner member which is in sync with leader\" until %s caught up; then %d members, quorum %d", a.Name, n, n/2+1)}})
	}
	return append(pre, steps...)
}

// clusterCommand is what the operator does for a cluster-level impact.
func clusterCommand(im Impact) string {
	if strings.HasPrefix(im.Component, "add-on ") {
		return fmt.Sprintf("%s: %s", im.Component, strings.Join(im.Reasons, ", "))
	}
	return fmt.Sprintf("%s: replace your copies (%s)", im.Component, strings.Join(im.Reasons, ", "))
}

// writeRollout writes the rollout steps under title (etcdctl's connection flags once,
// as "etcdctl …").
func writeRollout(b *strings.Builder, steps []RolloutStep, title string) {
	if len(steps) == 0 {
		return
	}
	b.WriteString("\n" + title + "\n")
	short := "etcdctl …"
	used := false
	defer func() {
		if used {
			fmt.Fprintf(b, "  where %s stands for: %s\n", short, etcdctl)
		}
	}()
	shorten := func(c string) string {
		if strings.Contains(c, etcdctl) {
			used = true
			return strings.ReplaceAll(c, etcdctl, short)
		}
		return c
	}
	for i, s := range steps {
		switch {
		case strings.HasPrefix(s.Phase, "etcd: "):
			fmt.Fprintf(b, "  %d. %s, on %s:\n", i+1, s.Phase, CompressNames(s.Nodes))
		case s.Phase == phaseCluster:
			fmt.Fprintf(b, "  %d. cluster:\n", i+1)
		case s.OneAtATime:
			fmt.Fprintf(b, "  %d. %s, one at a time: %s\n", i+1, s.Phase, CompressNames(s.Nodes))
		default:
			fmt.Fprintf(b, "  %d. %s: %s\n", i+1, s.Phase, CompressNames(s.Nodes))
		}
		for _, c := range s.Before {
			fmt.Fprintf(b, "     first run: %s\n", c)
		}
		if len(s.SelfRestart) > 0 {
			fmt.Fprintf(b, "     restart by themselves (their manifests change): %s\n", strings.Join(s.SelfRestart, ", "))
		}
		for _, c := range s.Commands {
			c = shorten(c)
			if s.Phase == phaseCluster || s.Phase == phaseNew || s.Phase == phaseRemoved || strings.HasPrefix(s.Phase, "etcd: ") {
				fmt.Fprintf(b, "     %s\n", c)
				continue
			}
			fmt.Fprintf(b, "     then run: %s\n", c)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(b, "     (%s)\n", n)
		}
	}
}

// Topology is how a render changes the running cluster's shape.
type Topology struct {
	// EtcdAdded and EtcdRemoved name the members that join and leave; EtcdMembers is
	// the membership afterwards.
	EtcdAdded   []string `json:"etcdAdded,omitempty"`
	EtcdRemoved []string `json:"etcdRemoved,omitempty"`
	EtcdMembers []string `json:"etcdMembers,omitempty"`
	// From and To are the control plane's release on disk and rendered.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Kubelets maps each node whose kubelet and kube-proxy change release to "old → new".
	Kubelets map[string]string `json:"kubelets,omitempty"`
}

func (sh shape) topology() *Topology {
	t := &Topology{Kubelets: map[string]string{}}
	for _, m := range sh.added {
		t.EtcdAdded = append(t.EtcdAdded, m.Name)
	}
	for _, m := range sh.removed {
		t.EtcdRemoved = append(t.EtcdRemoved, m.Name)
	}
	if len(sh.added)+len(sh.removed) > 0 {
		for _, m := range sh.members {
			t.EtcdMembers = append(t.EtcdMembers, m.Name)
		}
	}
	if sh.from != "" && sh.from != sh.to {
		t.From, t.To = sh.from, sh.to
	}
	for _, n := range sh.nodes {
		if sh.kubeletChange(n) != "" {
			t.Kubelets[n] = sh.oldKubelet[n] + " → " + sh.newKubelet[n]
		}
	}
	if len(t.Kubelets) == 0 {
		t.Kubelets = nil
	}
	if t.EtcdMembers == nil && t.From == "" && t.Kubelets == nil {
		return nil
	}
	return t
}

// WritePlan writes the runbook: the shape change, then the rollout, every command written
// out.
func (r *Report) WritePlan(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for cluster %s", r.Cluster)
	if r.Bundle != "" {
		fmt.Fprintf(&b, " (%s → %s)", r.Bundle, r.Spec)
	}
	b.WriteString("\n")
	if t := r.Topology; t != nil {
		b.WriteString("\nchanges:\n")
		for _, a := range t.EtcdAdded {
			fmt.Fprintf(&b, "  etcd: %s joins\n", a)
		}
		for _, a := range t.EtcdRemoved {
			fmt.Fprintf(&b, "  etcd: %s leaves\n", a)
		}
		if len(t.EtcdMembers) > 0 {
			fmt.Fprintf(&b, "  etcd: %d members afterwards: %s\n", len(t.EtcdMembers), strings.Join(t.EtcdMembers, ", "))
		}
		if t.From != "" {
			fmt.Fprintf(&b, "  control plane: %s → %s\n", t.From, t.To)
		}
		byChange := map[string][]string{}
		var changes []string
		for _, n := range slices.Sorted(maps.Keys(t.Kubelets)) {
			c := t.Kubelets[n]
			if byChange[c] == nil {
				changes = append(changes, c)
			}
			byChange[c] = append(byChange[c], n)
		}
		for _, c := range changes {
			fmt.Fprintf(&b, "  kubelet and kube-proxy %s on %s\n", c, CompressNames(byChange[c]))
		}
	}
	if len(r.Rollout) == 0 {
		if r.Changed {
			b.WriteString("\nnothing to roll out to running nodes (only the lock or cluster-level files change); render to write them\n")
		} else {
			b.WriteString("\nnothing to roll out: the bundle on disk is what the spec renders\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	writeRollout(&b, r.Rollout, "runbook (render, then deliver in this order; after each node, wait until it is Ready and its static pods run):")
	_, err := io.WriteString(w, b.String())
	return err
}
