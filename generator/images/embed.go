package images

import (
	"fmt"
	"path"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/component"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// ArchivePath is where a node keeps the archive of an image reference by tag:
// paths.ImagesDir/<tag with "/" and ":" replaced by "_">.tar, e.g.
// /var/lib/scratchgen/images/registry.k8s.io_pause_3.10.1.tar.
func ArchivePath(tag string) string {
	return path.Join(paths.ImagesDir, strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".tar")
}

// Embed is the plan step that carries each node's images in its bundle: the files of
// EmbedFiles and ImportUnit. archives is as for EmbedFiles.
func Embed(t component.Table, archives map[string][]byte) func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error {
	return func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		files, err := EmbedFiles(t, c, n, archives)
		if err != nil {
			return err
		}
		if len(files) > 0 {
			b.Add(files...)
			b.Unit(ImportUnit)
		}
		return nil
	}
}

// ImportUnit is the oneshot that imports a node's image archives into containerd's k8s.io
// namespace (the one the kubelet's CRI uses), after containerd and before the kubelet.
var ImportUnit = bundle.Unit{Name: paths.ImagesService, After: []string{paths.ContainerdService}, Before: []string{paths.KubeletService}}

// EmbedFiles returns the files that carry node n's images in its bundle (none when it
// needs no image). archives maps a tag reference (c.Images.Tags) to its Archive; it must
// hold every image ForNode lists, and each must be pinned by the lock (c.Images.Refs
// carries its digest) and be the archive of that pinned digest. It is pure: the caller
// reads the cache.
//
// Files: one archive per image at ArchivePath (mode 0644; the same image on several
// nodes has the same bytes), and paths.ImagesUnit (mode 0644): a oneshot, ordered after
// and requiring containerd.service and before kubelet.service (and wanted by it), that
// runs `ctr -n k8s.io images import FILE` for each archive in ForNode's order. Importing
// is idempotent (existing content is kept, the image names point at the same digests), so
// the unit runs on every boot and puts back images the kubelet's image garbage
// collection may have removed. No --all-platforms: ctr imports the node's own platform,
// which is what the kubelet runs; the archives' other platforms are skipped.
func EmbedFiles(t component.Table, c *model.Cluster, n *model.Node, archives map[string][]byte) ([]bundle.File, error) {
	unpinned := map[string]bool{}
	for _, tag := range c.Images.Unpinned {
		unpinned[tag] = true
	}
	tags := ForNode(t, c, n)
	var files []bundle.File
	byPath := map[string]string{}
	var exec []string
	for _, tag := range tags {
		if unpinned[tag] {
			return nil, fmt.Errorf("image %s is not pinned by digest in the lock, and embedded images must be; run `scratchgen images pin`", tag)
		}
		data, ok := archives[tag]
		if !ok {
			return nil, fmt.Errorf("no archive of image %s to embed; run `scratchgen images pull` to fill the image cache", tag)
		}
		want := pinnedDigest(c, tag)
		got, err := archiveDigest(data)
		if err != nil {
			return nil, fmt.Errorf("the archive of image %s is not an image archive: %w", tag, err)
		}
		if got != want {
			return nil, fmt.Errorf("the archive of image %s holds %s, but the lock pins %s; run `scratchgen images pull`", tag, got, want)
		}
		p := ArchivePath(tag)
		if other, dup := byPath[p]; dup {
			return nil, fmt.Errorf("images %s and %s would both be stored as %s", other, tag, p)
		}
		byPath[p] = tag
		files = append(files, bundle.File{Path: p, Mode: bundle.ModePublic, Data: data})
		exec = append(exec, "ExecStart=ctr -n k8s.io images import "+p+"\n")
	}
	if len(files) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString(`# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Imports this node's container images (pinned by digest in the lock) into containerd's
# k8s.io namespace, so the kubelet finds them without a registry. Idempotent; runs on
# every boot. ctr is found on systemd's command search path (/usr/local/bin, /usr/bin, …).

[Unit]
Description=scratchgen: import the bundled container images into containerd
Requires=containerd.service
After=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
`)
	for _, e := range exec {
		b.WriteString(e)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target kubelet.service\n")
	files = append(files, bundle.File{Path: paths.ImagesUnit, Mode: bundle.ModePublic, Data: []byte(b.String())})
	bundle.Sort(files)
	return files, nil
}

// pinnedDigest returns the digest the model renders for a tag ("" when unpinned).
func pinnedDigest(c *model.Cluster, tag string) string {
	for comp, t := range c.Images.Tags {
		if t == tag {
			if _, d, ok := strings.Cut(c.Images.Refs[comp], "@"); ok {
				return d
			}
		}
	}
	return ""
}
