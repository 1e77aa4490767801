package images

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Unit is the oneshot that imports a node's image archives into containerd's k8s.io
// namespace (the one the kubelet's CRI uses) before the kubelet starts.
const (
	Unit     = "scratchgen-images.service"
	UnitPath = paths.SystemdDir + "/" + Unit
)

// ArchivePath is where a node keeps the archive of an image reference by tag:
// paths.ImagesDir/<tag with "/" and ":" replaced by "_">.tar, e.g.
// /var/lib/scratchgen/images/registry.k8s.io_pause_3.10.1.tar.
func ArchivePath(tag string) string {
	return path.Join(paths.ImagesDir, strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".tar")
}

// EmbedFiles returns the files that carry node n's images in its bundle, and the unit to
// enable. archives maps a tag reference (c.Images.Tags) to its Archive; it must hold every
// image ForNode lists, and each must be pinned by the lock (c.Images.Refs carries its
// digest) and be the archive of that pinned digest. It is pure: the caller reads the
// cache.
//
// Files: one archive per image at ArchivePath (mode 0644; the same image on several
// nodes has the same bytes), and UnitPath (mode 0644): a oneshot, ordered after and
// requiring containerd.service and before kubelet.service (and wanted by it), that runs
// `ctr -n k8s.io images import FILE` for each archive in ForNode's order. Importing is
// idempotent (existing content is kept, the image names point at the same digests), so
// the unit runs on every boot and puts back images the kubelet's image garbage
// collection may have removed. No --all-platforms: ctr imports the node's own platform,
// which is what the kubelet runs; the archives' other platforms are skipped.
func EmbedFiles(c *model.Cluster, n *model.Node, archives map[string][]byte) (files []bundle.File, unit string, err error) {
	unpinned := map[string]bool{}
	for _, t := range c.Images.Unpinned {
		unpinned[t] = true
	}
	tags := ForNode(c, n)
	byPath := map[string]string{}
	var exec []string
	for _, tag := range tags {
		if unpinned[tag] {
			return nil, "", fmt.Errorf("image %s is not pinned by digest in the lock, and embedded images must be; run `scratchgen images pin`", tag)
		}
		data, ok := archives[tag]
		if !ok {
			return nil, "", fmt.Errorf("no archive of image %s to embed; run `scratchgen images pull` to fill the image cache", tag)
		}
		want := pinnedDigest(c, tag)
		got, err := archiveDigest(data)
		if err != nil {
			return nil, "", fmt.Errorf("the archive of image %s is not an image archive: %w", tag, err)
		}
		if got != want {
			return nil, "", fmt.Errorf("the archive of image %s holds %s, but the lock pins %s; run `scratchgen images pull`", tag, got, want)
		}
		p := ArchivePath(tag)
		if other, dup := byPath[p]; dup {
			return nil, "", fmt.Errorf("images %s and %s would both be stored as %s", other, tag, p)
		}
		byPath[p] = tag
		files = append(files, bundle.File{Path: p, Mode: bundle.ModePublic, Data: data})
		exec = append(exec, "ExecStart=ctr -n k8s.io images import "+p+"\n")
	}
	if len(files) == 0 {
		return nil, "", nil
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
	files = append(files, bundle.File{Path: UnitPath, Mode: bundle.ModePublic, Data: []byte(b.String())})
	bundle.Sort(files)
	return files, Unit, nil
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

// InsertUnit returns units with unit placed to start before the kubelet: right after
// containerd.service when listed, else right before kubelet.service, else at the end.
// A unit already listed is left where it is.
func InsertUnit(units []string, unit string) []string {
	if unit == "" || slices.Contains(units, unit) {
		return units
	}
	at := len(units)
	if i := slices.Index(units, "containerd.service"); i >= 0 {
		at = i + 1
	} else if i := slices.Index(units, "kubelet.service"); i >= 0 {
		at = i
	}
	return slices.Insert(slices.Clone(units), at, unit)
}
