// Package render runs the pipeline: spec → model → plan. It is pure: the caller passes
// the spec bytes, the lock, the root secret and the clock, and gets back the plan and
// the updated lock; nothing here reads the environment or touches the disk.
package render

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/addons"
	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/credentials"
	"github.com/scratchgen/scratchgen/generator/field"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/nodeconfig"
	"github.com/scratchgen/scratchgen/generator/parallel"
	"github.com/scratchgen/scratchgen/generator/provision"
	"github.com/scratchgen/scratchgen/generator/spec"
	"github.com/scratchgen/scratchgen/generator/staticpods"
)

// Inputs are everything a render depends on.
type Inputs struct {
	// Spec is the cluster spec file's content.
	Spec []byte
	// Lock is the lock file, or nil when there is none yet.
	Lock *lock.Lock
	// Secret is the root secret (32 bytes).
	Secret []byte
	// Now is recorded in the lock for certificates issued for the first time.
	Now time.Time
	// WithImages embeds each node's images (as images.embed: true does); ImageArchives
	// maps a tag reference to its archive (images.Archive), read by the caller from the
	// image cache before rendering.
	WithImages    bool
	ImageArchives map[string][]byte
	// RequirePinned fails the render when an image is not pinned (ORed with images.requirePinned).
	RequirePinned bool
}

// Output is a finished render.
type Output struct {
	Model *model.Cluster
	Plan  *bundle.Plan
	// Lock is the lock to persist (allocations, certificate records, image pins).
	Lock *lock.Lock
	// Warnings are spec problems that do not stop rendering.
	Warnings field.List
}

// InvalidSpecError carries every problem of a spec that cannot be rendered.
type InvalidSpecError struct {
	Problems field.List
}

func (e *InvalidSpecError) Error() string {
	n := len(e.Problems.Errors())
	return fmt.Sprintf("the spec has %d problem(s):\n%s", n, strings.TrimRight(e.Problems.Errors().Format(""), "\n"))
}

// Resolve parses and validates a spec against a lock. It returns every problem at once
// (as *InvalidSpecError) and the warnings.
func Resolve(specData []byte, lk *lock.Lock) (*model.Cluster, *lock.Lock, field.List, error) {
	doc, parseErrs := spec.Parse(specData)
	if doc == nil {
		return nil, nil, nil, &InvalidSpecError{Problems: parseErrs}
	}
	// Resolve even after field-level parse errors, so every mistake is reported in one
	// run; a field that failed to parse is not reported again by validation.
	c, newLock, problems := model.Resolve(doc, lk)
	if len(parseErrs) > 0 {
		problems = append(parseErrs, withoutPaths(problems, parseErrs)...)
		problems.Locate(doc.Positions)
	}
	if len(problems.Errors()) > 0 {
		return nil, nil, nil, &InvalidSpecError{Problems: problems}
	}
	if lk != nil && lk.Cluster != "" && lk.Cluster != c.Name {
		return nil, nil, nil, fmt.Errorf("the lock belongs to cluster %q, not %q: pass the right --lock, or remove it to start a new PKI", lk.Cluster, c.Name)
	}
	return c, newLock, problems.Warnings(), nil
}

// Render turns inputs into a plan.
func Render(in Inputs) (*Output, error) {
	c, lk, warnings, err := Resolve(in.Spec, in.Lock)
	if err != nil {
		return nil, err
	}
	if (c.Images.RequirePinned || in.RequirePinned) && len(c.Images.Unpinned) > 0 {
		return nil, fmt.Errorf("pinned images are required (images.requirePinned or --require-pinned) but the lock pins none of: %s; run `scratchgen images pin`", strings.Join(c.Images.Unpinned, ", "))
	}
	creds, err := credentials.Plan(c, lk, credentials.Options{Secret: in.Secret, Now: in.Now})
	if err != nil {
		return nil, err
	}
	plan := &bundle.Plan{Cluster: c.Name, Nodes: make([]bundle.Node, len(c.Nodes))}
	err = parallel.Do(len(c.Nodes), func(i int) error {
		n := c.Nodes[i]
		node, err := planNode(c, n, creds.Nodes[n.Name], in)
		if err != nil {
			return fmt.Errorf("planning node %s: %w", n.Name, err)
		}
		plan.Nodes[i] = node
		return nil
	})
	if err != nil {
		return nil, err
	}
	adds, err := addons.Files(c)
	if err != nil {
		return nil, fmt.Errorf("planning add-ons: %w", err)
	}
	plan.Admin = append(append(plan.Admin, creds.Admin...), adds...)
	bundle.Sort(plan.Admin)
	plan.Top = []bundle.File{gitignore(plan)}
	return &Output{Model: c, Plan: plan, Lock: creds.Lock, Warnings: warnings}, nil
}

func planNode(c *model.Cluster, n *model.Node, creds []bundle.File, in Inputs) (bundle.Node, error) {
	node := bundle.Node{Name: n.Name}
	node.Rootfs = append(node.Rootfs, creds...)
	pods, err := staticpods.Node(c, n)
	if err != nil {
		return node, fmt.Errorf("static pods: %w", err)
	}
	node.Rootfs = append(node.Rootfs, pods...)
	files, units, err := nodeconfig.Node(c, n)
	if err != nil {
		return node, fmt.Errorf("node configuration: %w", err)
	}
	node.Rootfs = append(node.Rootfs, files...)
	node.Units = units
	if c.Images.Embed || in.WithImages {
		files, unit, err := images.EmbedFiles(c, n, in.ImageArchives)
		if err != nil {
			return node, fmt.Errorf("embedding images: %w", err)
		}
		node.Rootfs = append(node.Rootfs, files...)
		node.Units = images.InsertUnit(node.Units, unit)
	}
	bundle.Sort(node.Rootfs)
	for i := 1; i < len(node.Rootfs); i++ {
		if node.Rootfs[i].Path == node.Rootfs[i-1].Path {
			return node, fmt.Errorf("two plan steps both write %s", node.Rootfs[i].Path)
		}
	}
	views, err := provision.Views(&node, n.OS, c.EmbedSecrets)
	if err != nil {
		return node, fmt.Errorf("provisioning views: %w", err)
	}
	if c.EmbedSecrets {
		// The views then carry keys and tokens: they are secrets themselves.
		for i := range views {
			views[i].Secret, views[i].Mode = true, bundle.ModeSecret
		}
	}
	node.Extra = views
	return node, nil
}

// gitignore keeps every secret of the bundle out of git: the reviewable parts can be
// committed, the keys and tokens cannot.
func gitignore(p *bundle.Plan) bundle.File {
	var lines []string
	for _, f := range p.Files() {
		if f.Secret {
			lines = append(lines, "/"+f.Path)
		}
	}
	sort.Strings(lines)
	var b strings.Builder
	b.WriteString("# Written by scratchgen: private keys, tokens and kubeconfigs holding them.\n")
	b.WriteString("# Never commit these; deliver them with rsync (see the README).\n")
	for _, l := range lines {
		b.WriteString(l)
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
