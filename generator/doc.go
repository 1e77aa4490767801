// Package generator is scratchgen's library: one cluster spec in, a tree of per-node
// files out. This file is the code tour; every package below has its own doc comment.
//
// # The pipeline
//
//	cluster.yaml ─ spec.Parse ─▶ spec ─ model.Resolve (+ cluster.lock) ─▶ model.Cluster
//	model.Cluster ─ render.Plan (+ root secret, clock) ─▶ bundle.Plan ─ writer.Write ─▶ bundles/<cluster>/
//	bundle.Plan ─ review.Compare ─▶ diff;   bundles/<cluster>/ ─ verify.Bundle ─▶ problems
//
// Where each stage lives:
//
//   - spec/parse.go, spec/types.go: the strict YAML parser and the versioned spec types.
//   - model/resolve.go: validation (every problem with its field path) and everything
//     derived (pod ranges from the lock, routes, service and DNS IPs, the version profile
//     from versions/versions.go); model/model.go is the resolved cluster generators read.
//   - render/render.go: Resolve, then Plan: credentials first (credentials/plan.go issues
//     every certificate through pki/, the only user of cfssl), then the step list for
//     every node, then the provisioning views (provision/, the only user of Butane), the
//     add-ons (addons/) and the bundle's .gitignore.
//   - writer/: the atomic swap of the bundle directory, SHA256SUMS (writer/sums.go) and
//     reading bundles back (writer/read.go).
//
// # The step list
//
// render.(*planner).steps in render/render.go is the ordered list of plan steps; every
// step has one shape, func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error:
// credentials → etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// (staticpods/staticpods.go) → kernel settings, pod network, containerd
// (nodeconfig/kernel.go, network.go, containerd.go) → embedded images (images/embed.go)
// → kubelet, kube-proxy (nodeconfig/kubelet.go, proxy.go). A step adds files with
// bundle.NodeBuilder (bundle/builder.go) and declares the units it enables with their
// After/Before; the builder orders the units and refuses two steps writing one path.
//
// # The component table
//
// component/component.go is the one table of what runs on a node: per component its
// kind (static pod, service, add-on), which nodes run it, its image key, its manifest or
// unit, and the node files it reads. Static pods take their manifest path and image from
// it, images/images.go decides which node needs which image from it, review/impact.go
// derives diff's "what restarts" summary from it, and verify checks manifests against
// it. Paths live in paths/paths.go, identities and their placement in
// credentials/table.go and credentials/identities.go.
//
// # Adding a component
//
//  1. A row in component.Default (component/component.go): name, kind, On, Image,
//     Manifest or Unit, Reads.
//  2. A step file that renders its files, and its entry in render's step list.
//  3. The spec and model fields it needs (spec/types.go, model/resolve.go), and its image
//     in model.Images if it has one.
//
// render/component_test.go does exactly this with a fake component and checks that
// images, impact and verify pick it up.
//
// # Rules
//
// Planning is pure (no clock, environment or disk below the CLI, cmd/scratchgen/cli);
// the same spec, lock and secret give the same bytes; each library sits behind one
// package, which generator/depcheck_test.go enforces.
package generator
