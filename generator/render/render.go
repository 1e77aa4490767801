// Package render runs the pipeline: spec → model (Resolve) → plan (Plan). It is pure: the
// caller passes the spec bytes, the lock, the root secret and the clock, and gets back the
// plan and the updated lock; nothing here reads the environment or touches the disk.
package render

import (
	"fmt"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/addons"
	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/parallel"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/provision"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/staticpods"
)

// Resolved is a spec validated against a lock: the model and the lock that records its
// allocations (the input lock plus this model's pod ranges).
type Resolved struct {
	Cluster *model.Cluster
	Lock    *lock.Lock
	// Warnings are spec problems that do not stop rendering.
	Warnings field.List
}

// Deps are what a plan needs besides the resolved cluster.
type Deps struct {
	// Secret is the root secret (32 bytes).
	Secret []byte
	// Now is recorded in the lock for certificates issued for the first time.
	Now time.Time
	// WithImages embeds each node's images (as images.embed: true does); ImageArchives
	// maps a tag reference to its archive (images.Archive), read by the caller from the
	// image cache before rendering.
	WithImages    bool
	ImageArchives map[string][]byte
	// WithBinaries carries each node's pinned binaries in rootfs/ (as binaries.embed:
	// true does); BinaryData maps each download URL to its content, read by the caller
	// from the cache before rendering.
	WithBinaries bool
	BinaryData   map[string][]byte
	// RequirePinned fails the render when an image or a binary is not pinned (ORed with
	// images.requirePinned and binaries.requirePinned).
	RequirePinned bool
	// Renderer names the scratchgen that renders, for bundle.json ("scratchgen dev" when empty).
	Renderer string
	// Existing reads the bundle on disk (see credentials.Options) for a plan without the
	// secret: such a plan has pending files and can only be compared, never written.
	Existing func(node, path string) []byte
}

// Output is a finished render.
type Output struct {
	Model *model.Cluster
	Plan  *bundle.Plan
	// Lock is the lock to persist (allocations, certificate records, image pins).
	Lock *lock.Lock
	// Warnings are spec problems that do not stop rendering.
	Warnings field.List
	// Pending lists, for a plan without the secret, the identities a render with it would
	// issue or re-issue.
	Pending []credentials.Pending
	// Unpinned are the images some node needs that the lock does not pin (rendered by tag).
	Unpinned []string
}

// InvalidSpecError carries every problem of a spec (and of its lock, Input
// field.InputLock) that cannot be rendered.
type InvalidSpecError struct {
	Problems field.List
}

func (e *InvalidSpecError) Error() string {
	n := len(e.Problems.Errors())
	return fmt.Sprintf("the spec has %d problem(s):\n%s", n, strings.TrimRight(e.Problems.Errors().FormatIn(map[string]string{"": "spec", field.InputLock: "lock"}), "\n"))
}

// ResolveOptions change how a spec is resolved against its lock.
type ResolveOptions struct {
	// Now, when set, is checked against the lock's certificate records (none may start
	// in the future).
	Now time.Time
	// AllowNetworkChange lets the spec move the ranges the lock allocated in.
	AllowNetworkChange bool
}

// Resolve parses and validates a spec against a lock. It returns every problem at once
// (as *InvalidSpecError); warnings are in the result.
func Resolve(specData []byte, lk *lock.Lock, opts ...ResolveOptions) (*Resolved, error) {
	var o ResolveOptions
	for _, x := range opts {
		o = x
	}
	doc, parseErrs := spec.Parse(specData)
	if doc == nil {
		return nil, &InvalidSpecError{Problems: parseErrs}
	}
	// Resolve even after field-level parse errors, so every mistake is reported in one
	// run; a field that failed to parse is not reported again by validation.
	c, newLock, problems := model.Resolve(doc, lk, model.Options{AllowNetworkChange: o.AllowNetworkChange})
	if len(parseErrs) > 0 {
		problems = append(parseErrs, withoutPaths(problems, parseErrs)...)
		problems.Locate(doc.Positions)
	}
	if c != nil && !o.Now.IsZero() {
		problems = append(problems, credentials.CheckLock(c, lk, o.Now)...)
	}
	if len(problems.Errors()) > 0 {
		return nil, &InvalidSpecError{Problems: problems}
	}
	if lk != nil && lk.Cluster != "" && lk.Cluster != c.Name {
		var e field.List
		e.AddIn(field.InputLock, "cluster", "the lock belongs to cluster %q, not %q: pass the right --lock (a lock is never shared between clusters)", lk.Cluster, c.Name)
		lk.Locate(e)
		return nil, &InvalidSpecError{Problems: e}
	}
	return &Resolved{Cluster: c, Lock: newLock, Warnings: problems.Warnings()}, nil
}

// Render resolves and plans in one call (Resolve, then Plan): for callers that do not
// need the resolved cluster in between (tests, benchmarks).
func Render(specData []byte, lk *lock.Lock, d Deps, opts ...Option) (*Output, error) {
	r, err := Resolve(specData, lk)
	if err != nil {
		return nil, err
	}
	return Plan(r, d, opts...)
}

// Unpinned are the images some node of c needs that the lock does not pin (as
// Output.Unpinned, without planning).
func Unpinned(c *model.Cluster) []string { return images.Unpinned(component.Default(), c) }

// Step is one plan step: it adds one concern's files to a node and declares the units
// it enables. Every step has this shape; the plan runs them in order for every node.
type Step struct {
	// Name says what the step renders ("kubelet"); errors carry it.
	Name string
	Run  func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error
}

// Option changes what a plan is made of (tests; the built-in table and steps otherwise).
type Option func(*planner)

// WithComponent adds a component: its row joins the component table (so images, the
// image embedding and everything that reads the table see it) and its step runs after
// the built-in steps.
func WithComponent(co component.Component, step Step) Option {
	return func(p *planner) {
		p.table = append(p.table, co)
		p.extra = append(p.extra, step)
	}
}

// planner holds what every node's plan shares.
type planner struct {
	c     *model.Cluster
	deps  Deps
	table component.Table
	extra []Step
	creds *credentials.Result
	lock  *lock.Lock // the input lock: the schedule of the certificates
	// expiry answers the certificate watchdog's list per node from one schedule.
	expiry *credentials.ExpiryTable
}

// steps is the ordered step list. Unit start order follows from what the steps declare
// (bundle.NodeBuilder); where two units do not order each other, the step listed first
// starts first, so the image import comes before the kubelet's step.
func (p *planner) steps() []Step {
	steps := []Step{
		{"credentials", p.credentials},
		{"etcd", staticpods.Etcd},
		{"kube-apiserver", staticpods.APIServer},
		{"kube-controller-manager", staticpods.ControllerManager},
		{"kube-scheduler", staticpods.Scheduler},
		{"kernel settings", nodeconfig.Kernel},
		{"pod network", nodeconfig.Network(p.c)},
		{"containerd", nodeconfig.Containerd},
	}
	if p.c.Images.Embed || p.deps.WithImages {
		steps = append(steps, Step{"embedded images", images.Embed(p.table, p.deps.ImageArchives)})
	}
	steps = append(steps, Step{"binaries", binaries.Step(p.carryBinaries(), p.deps.BinaryData)})
	steps = append(steps, Step{"kubelet", nodeconfig.Kubelet}, Step{"kube-proxy", nodeconfig.Proxy},
		Step{"certificate watchdog", nodeconfig.CertCheck(p.expiries)})
	return append(steps, p.extra...)
}

// carryBinaries says whether rootfs/ carries the pinned binaries.
func (p *planner) carryBinaries() bool { return p.c.Binaries.Embed || p.deps.WithBinaries }

// expiries lists node n's certificates with their end, for the watchdog.
func (p *planner) expiries(n *model.Node) []nodeconfig.Expiry {
	var out []nodeconfig.Expiry
	for _, e := range p.expiry.Node(n) {
		out = append(out, nodeconfig.Expiry{Path: e.Path, Identity: e.Identity, NotAfter: e.NotAfter})
	}
	return out
}

// credentials is the step that places the node's certificates, keys and kubeconfigs.
func (p *planner) credentials(_ *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
	b.Add(p.creds.Nodes[n.Name]...)
	return nil
}

// Plan turns a resolved cluster into a plan: the credentials, then every node's steps,
// its provisioning views, the add-ons and the bundle's .gitignore.
func Plan(r *Resolved, d Deps, opts ...Option) (*Output, error) {
	c := r.Cluster
	p := &planner{c: c, deps: d, table: component.Default(), lock: r.Lock}
	for _, o := range opts {
		o(p)
	}
	if u := images.Unpinned(p.table, c); (c.Images.RequirePinned || d.RequirePinned) && len(u) > 0 {
		return nil, fmt.Errorf("pinned images are required (images.requirePinned or --require-pinned) but the lock pins none of: %s; run `scratchgen images pin`", strings.Join(u, ", "))
	}
	if u := c.UnpinnedBinaries(); d.RequirePinned && len(u) > 0 {
		return nil, fmt.Errorf("pinned binaries are required (--require-pinned) but the lock pins none of: %s; run `scratchgen binaries pin`", strings.Join(u, ", "))
	}
	if u := c.UnpinnedBinaries(); len(u) > 0 && r.Lock != nil && len(r.Lock.Binaries) > 0 {
		// Once binaries are pinned, a render never silently stops carrying or fetching
		// them (after a version change, say): the new downloads must be pinned first.
		return nil, fmt.Errorf("the lock pins this cluster's binaries, but not: %s; run `scratchgen binaries pin` (and `binaries pull` to carry them), then render", strings.Join(u, ", "))
	}
	if p.carryBinaries() && !c.BinariesPinned() {
		return nil, fmt.Errorf("carrying binaries (--with-binaries) needs them pinned, and the lock pins none of: %s; run `scratchgen binaries pin` and `scratchgen binaries pull`", strings.Join(c.UnpinnedBinaries(), ", "))
	}
	var err error
	if p.creds, err = credentials.Plan(c, r.Lock, credentials.Options{Secret: d.Secret, Now: d.Now, Existing: d.Existing}); err != nil {
		return nil, err
	}
	p.expiry = credentials.NewExpiryTable(c, r.Lock, d.Now)
	steps := p.steps()
	plan := &bundle.Plan{Cluster: c.Name, Nodes: make([]bundle.Node, len(c.Nodes))}
	err = parallel.Do(len(c.Nodes), func(i int) error {
		n := c.Nodes[i]
		node, err := p.node(n, steps)
		if err != nil {
			return fmt.Errorf("planning node %q: %w", n.Name, err)
		}
		plan.Nodes[i] = node
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The views second, once every node's files are known: files many nodes share are
	// encoded and translated once (provision.Cache).
	nodes := make([]*bundle.Node, len(plan.Nodes))
	for i := range plan.Nodes {
		nodes[i] = &plan.Nodes[i]
	}
	cache := provision.NewCache(nodes)
	err = parallel.Do(len(c.Nodes), func(i int) error {
		if err := p.views(cache, c.Nodes[i], &plan.Nodes[i]); err != nil {
			return fmt.Errorf("planning node %q: %w", c.Nodes[i].Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	adds, err := addons.Files(c)
	if err != nil {
		return nil, fmt.Errorf("planning add-ons: %w", err)
	}
	plan.Admin = append(append(plan.Admin, p.creds.Admin...), adds...)
	bundle.Sort(plan.Admin)
	meta, err := metadata(c, plan, d, p.table)
	if err != nil {
		return nil, err
	}
	plan.Top = []bundle.File{gitignore(plan), meta}
	return &Output{Model: c, Plan: plan, Lock: p.creds.Lock, Warnings: r.Warnings, Pending: p.creds.Pending, Unpinned: images.Unpinned(p.table, c)}, nil
}

// node runs every step for n.
func (p *planner) node(n *model.Node, steps []Step) (bundle.Node, error) {
	b := bundle.NewNodeBuilder(n.Name)
	for _, s := range steps {
		b.SetOwner(s.Name)
		if err := s.Run(p.c, n, b); err != nil {
			return bundle.Node{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	node, err := b.Finish()
	if err != nil {
		return node, err
	}
	node.Rootfs = append(node.Rootfs, unitList(node.Units))
	bundle.Sort(node.Rootfs)
	return node, nil
}

// views renders node's provisioning views into node.Extra.
func (p *planner) views(cache *provision.Cache, n *model.Node, node *bundle.Node) error {
	if why := pendingViews(*node, p.c.EmbedSecrets); why != "" {
		// Without the secret the views cannot be made byte for byte: they carry a file
		// whose content is pending.
		mode := bundle.ModePublic
		if p.c.EmbedSecrets {
			mode = bundle.ModeSecret
		}
		for _, name := range []string{provision.ButaneFile, provision.IgnitionFile, provision.UserDataFile} {
			node.Extra = append(node.Extra, bundle.File{Path: name, Mode: mode, Pending: why, Secret: p.c.EmbedSecrets})
		}
		return nil
	}
	views, err := cache.Views(node, n.OS, p.c.EmbedSecrets)
	if err != nil {
		return fmt.Errorf("provisioning views: %w", err)
	}
	if p.c.EmbedSecrets {
		// The views then carry keys and tokens: they are secrets themselves.
		for i := range views {
			views[i].Secret, views[i].Mode = true, bundle.ModeSecret
		}
	}
	node.Extra = views
	return nil
}

// metadata is bundle.json: the views' inputs and the images the bundle renders.
func metadata(c *model.Cluster, plan *bundle.Plan, d Deps, t component.Table) (bundle.File, error) {
	m := &bundle.Metadata{Renderer: d.Renderer, Cluster: c.Name, KubernetesVersion: c.Version.String(),
		EmbedSecrets: c.EmbedSecrets, Images: map[string]string{}}
	if m.Renderer == "" {
		m.Renderer = "scratchgen dev"
	}
	for i, n := range c.Nodes {
		nm := bundle.NodeMetadata{Name: n.Name, Address: model.JoinAddrs(n.Addresses), OS: n.OS, BinDir: n.BinDir(),
			PodCIDR: model.JoinPrefixes(n.PodCIDRs), Units: plan.Nodes[i].Units, KubeletVersion: n.KubeletVersion.String()}
		for _, r := range []model.Role{model.RoleControlPlane, model.RoleEtcd, model.RoleWorker} {
			if n.Is(r) {
				nm.Roles = append(nm.Roles, string(r))
			}
		}
		for _, key := range t.Images(c, n) {
			m.Images[key] = c.Images.Refs[key]
		}
		if c.BinariesPinned() {
			carried := map[string][]byte{}
			for _, f := range plan.Nodes[i].Rootfs {
				if f.Binary {
					carried[f.Path] = f.Data
				}
			}
			nm.Binaries = binaries.Metadata(c.Downloads(n), carried)
			nm.BinariesCarried = c.Binaries.Embed || d.WithBinaries
		}
		m.Nodes = append(m.Nodes, nm)
	}
	data, err := m.Marshal()
	return bundle.File{Path: bundle.MetadataName, Mode: bundle.ModePublic, Data: data}, err
}

// unitList is paths.UnitList: the node's units in start order, for paths.EnableCommand.
func unitList(units []string) bundle.File {
	var b strings.Builder
	for _, u := range units {
		b.WriteString(u + "\n")
	}
	return bundle.File{Path: paths.UnitList, Mode: bundle.ModePublic, Data: []byte(b.String()), Owner: "units"}
}

// pendingViews says why a node's views cannot be rendered without the secret ("" when
// they can): with secrets embedded they carry keys; otherwise only if they carry a
// certificate still to be issued.
func pendingViews(n bundle.Node, embedSecrets bool) string {
	for _, f := range n.Rootfs {
		switch {
		case f.Pending == "":
		case embedSecrets:
			return "they embed keys and tokens, which need the root secret"
		case !f.Secret:
			return "they carry certificates still to be issued"
		}
	}
	return ""
}

// gitignore keeps every secret of the bundle out of git: the reviewable parts can be
// committed, the keys and tokens cannot.
func gitignore(p *bundle.Plan) bundle.File {
	var b strings.Builder
	b.WriteString("# Written by scratchgen: private keys, tokens and kubeconfigs holding them.\n")
	b.WriteString("# Never commit these; deliver them with rsync (see the README).\n")
	for _, rel := range p.SecretPaths() {
		b.WriteString("/")
		b.WriteString(rel)
		b.WriteString("\n")
	}
	return bundle.File{Path: ".gitignore", Mode: bundle.ModePublic, Data: []byte(b.String())}
}

// withoutPaths drops problems at (or below) a path that already has a parse error.
func withoutPaths(l, seen field.List) field.List {
	var out field.List
outer:
	for _, e := range l {
		for _, s := range seen {
			if s.Path != "" && (e.Path == s.Path || strings.HasPrefix(string(e.Path), string(s.Path)+".") || strings.HasPrefix(string(e.Path), string(s.Path)+"[")) {
				continue outer
			}
		}
		out = append(out, e)
	}
	return out
}
