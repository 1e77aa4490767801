// Package binaries renders a node's binaries (kubelet, kube-proxy and the spec's extra
// downloads) once the lock pins them all: carried in rootfs/ (embed), or fetched and
// verified on the node: Ignition's remote files with their pinned SHA-512, and
// install-binaries.sh, run by scratchgen-binaries.service, which downloads (or takes what
// Ignition staged), checks the pinned SHA-256 and installs. A render whose lock pins none
// renders nothing here: the operator installs the binaries, as before.
package binaries

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Step returns the plan step of node binaries. With embed, data maps every download URL
// to its content (read from the cache by the caller), which must match its pin.
func Step(embed bool, data map[string][]byte) func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error {
	return func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		if !c.BinariesPinned() {
			return nil
		}
		ds := c.Downloads(n)
		if embed {
			files, err := Carried(ds, data)
			if err != nil {
				return err
			}
			b.Add(files...)
			return nil
		}
		meta := Metadata(ds, nil)
		b.Executable(paths.BinariesScript, Script(meta))
		b.Public(paths.BinariesUnit, []byte(UnitFile))
		b.Unit(Unit)
		for _, r := range Remote(meta) {
			b.Remote(r)
		}
		return nil
	}
}

// Unit orders scratchgen-binaries.service before every service that runs a binary it
// installs.
var Unit = bundle.Unit{Name: paths.BinariesService, After: []string{"network-online.target"},
	Before: []string{paths.ContainerdService, paths.KubeletService, paths.KubeProxyService}}

// Metadata describes a node's downloads for bundle.json (and for Script and Remote).
// carried maps node paths to the files rootfs/ carries (nil when it carries none); their
// SHA-256 is recorded, and a single-file download's is its pin's.
func Metadata(ds []model.Download, carried map[string][]byte) []bundle.BinaryMetadata {
	var out []bundle.BinaryMetadata
	for _, d := range ds {
		m := bundle.BinaryMetadata{Name: d.Name, URL: d.URL, SHA256: d.Pin.SHA256, SHA512: d.Pin.SHA512, Size: d.Pin.Size}
		for _, f := range d.Files {
			bf := bundle.BinaryFile{Path: f.Path, Member: f.Member}
			if data, ok := carried[f.Path]; ok {
				bf.SHA256 = sum256(data)
			} else if f.Member == "" {
				bf.SHA256 = d.Pin.SHA256
			}
			m.Files = append(m.Files, bf)
		}
		out = append(out, m)
	}
	return out
}

// StagePath is where a node keeps a download it fetched (Ignition stages archives there).
func StagePath(sha256 string) string { return paths.DownloadsDir + "/" + sha256 }

// Remote are the files a node's Ignition fetches when rootfs/ does not carry the
// binaries: each single file at its path (mode 0755), each archive at its StagePath
// (mode 0644), for install-binaries.sh to extract.
func Remote(meta []bundle.BinaryMetadata) []bundle.RemoteFile {
	var out []bundle.RemoteFile
	for _, m := range meta {
		if m.Archive() {
			out = append(out, bundle.RemoteFile{Path: StagePath(m.SHA256), Mode: bundle.ModePublic, URL: m.URL, SHA512: m.SHA512})
			continue
		}
		for _, f := range m.Files {
			out = append(out, bundle.RemoteFile{Path: f.Path, Mode: bundle.ModeExecute, URL: m.URL, SHA512: m.SHA512})
		}
	}
	return out
}

// Carried returns the files that carry a node's downloads in rootfs/ (mode 0755, marked
// Binary): each single file as downloaded, each archive's listed members extracted.
func Carried(ds []model.Download, data map[string][]byte) ([]bundle.File, error) {
	var files []bundle.File
	for _, d := range ds {
		content, ok := data[d.URL]
		if !ok {
			return nil, fmt.Errorf("%s: not in the cache; run `scratchgen binaries pull`", d)
		}
		if err := Check(content, d.Pin.SHA256, d.Pin.SHA512, d.Pin.Size); err != nil {
			return nil, fmt.Errorf("%s: %w; run `scratchgen binaries pull` again", d, err)
		}
		if !d.Archive() {
			for _, f := range d.Files {
				files = append(files, bundle.File{Path: f.Path, Mode: bundle.ModeExecute, Data: content, Binary: true})
			}
			continue
		}
		var members []string
		for _, f := range d.Files {
			members = append(members, f.Member)
		}
		got, err := Extract(content, members)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		for _, f := range d.Files {
			files = append(files, bundle.File{Path: f.Path, Mode: bundle.ModeExecute, Data: got[f.Member], Binary: true})
		}
	}
	bundle.Sort(files)
	return files, nil
}

// Check verifies content against a pin.
func Check(content []byte, sha256hex, sha512hex string, size int64) error {
	if int64(len(content)) != size {
		return fmt.Errorf("%d bytes, but the lock pins %d", len(content), size)
	}
	if got := sum256(content); got != sha256hex {
		return fmt.Errorf("SHA-256 %s, but the lock pins %s", got, sha256hex)
	}
	s := sha512.Sum512(content)
	if got := hex.EncodeToString(s[:]); got != sha512hex {
		return fmt.Errorf("SHA-512 %s…, but the lock pins %s…", got[:16], sha512hex[:min(16, len(sha512hex))])
	}
	return nil
}

func sum256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// maxMember bounds one extracted file (a node binary is tens of megabytes).
const maxMember = 1 << 30

// Extract reads the named members (regular files, names exactly as the archive has them)
// from a gzip-compressed tar archive.
func Extract(archive []byte, members []string) (map[string][]byte, error) {
	want := map[string]bool{}
	for _, m := range members {
		want[m] = true
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("not a gzip-compressed tar archive: %w", err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		names = append(names, h.Name)
		if !want[h.Name] {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("archive member %s is not a regular file", h.Name)
		}
		if h.Size > maxMember {
			return nil, fmt.Errorf("archive member %s is %d bytes, more than %d", h.Name, h.Size, maxMember)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxMember+1))
		if err != nil {
			return nil, fmt.Errorf("reading archive member %s: %w", h.Name, err)
		}
		out[h.Name] = data
	}
	for _, m := range members {
		if _, ok := out[m]; !ok {
			shown := names
			if len(shown) > 20 {
				shown = append(shown[:20:20], "…")
			}
			return nil, fmt.Errorf("the archive has no member %s (it has: %s)", m, strings.Join(shown, ", "))
		}
	}
	return out, nil
}

// UnitFile runs install-binaries.sh on every boot: it downloads nothing once the
// installed files and staged archives match their pins.
const UnitFile = `# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Installs this node's binaries, pinned by SHA-256 in the lock: downloads each (or takes
# what Ignition staged in ` + paths.DownloadsDir + `), verifies it and installs it. Idempotent; runs
# on every boot and fetches nothing once every file matches its pin.

[Unit]
Description=scratchgen: install the node's pinned binaries (kubelet, kube-proxy, extras)
Wants=network-online.target
After=network-online.target
Before=` + paths.ContainerdService + ` ` + paths.KubeletService + ` ` + paths.KubeProxyService + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + paths.BinariesScript + `

[Install]
WantedBy=multi-user.target
`

// Script is install-binaries.sh for a node's downloads: POSIX sh, curl, sha256sum and tar.
func Script(meta []bundle.BinaryMetadata) []byte {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
#
# Installs this node's binaries, each pinned by SHA-256 in the cluster's lock. A download
# is taken from ` + paths.DownloadsDir + `/<sha256> when it is there and intact (Ignition
# stages archives there), else fetched with curl into it; a download whose SHA-256 is
# not the pinned one is refused and removed, and the run fails naming it. Files are
# installed with mode 0755 by rename, so a running binary is never half-written. A file
# that already has its pinned SHA-256 is left alone: once everything is in place, a run
# fetches nothing.
#
# install-binaries.sh [ROOT]: ROOT (default /) is the root to install into, e.g. a
# machine image being built.
set -eu
root=${1:-}
root=${root%/}
stage=$root` + paths.DownloadsDir + `
mkdir -p "$stage"

# fetch URL SHA256: leaves the verified download at $stage/SHA256.
fetch() {
	f="$stage/$2"
	if [ -f "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$2" ]; then
		return 0
	fi
	rm -f "$f.part"
	if ! curl -fsSL --retry 3 -o "$f.part" "$1"; then
		rm -f "$f.part"
		echo "install-binaries: downloading $1 failed" >&2
		return 1
	fi
	got=$(sha256sum <"$f.part" | cut -d' ' -f1)
	if [ "$got" != "$2" ]; then
		rm -f "$f.part"
		echo "install-binaries: $1 has SHA-256 $got, not the pinned $2: refused" >&2
		return 1
	fi
	mv "$f.part" "$f"
}

# current PATH SHA256: whether PATH is installed with that SHA-256.
current() {
	[ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$2" ]
}

# place SRC PATH: installs SRC at PATH, mode 0755, by rename.
place() {
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.scratchgen-new"
	chmod 0755 "$2.scratchgen-new"
	mv "$2.scratchgen-new" "$2"
	echo "install-binaries: installed $2"
}

# extract ARCHIVE MEMBER PATH: installs one member of a gzip-compressed tar archive.
extract() {
	tmp=$(mktemp "$stage/member.XXXXXX")
	if ! tar -xzOf "$1" -- "$2" >"$tmp"; then
		rm -f "$tmp"
		echo "install-binaries: $1 has no member $2" >&2
		return 1
	fi
	place "$tmp" "$3"
	rm -f "$tmp"
}
`)
	for _, m := range meta {
		fmt.Fprintf(&b, "\n# %s: %s (%d bytes)\n", m.Name, m.URL, m.Size)
		if !m.Archive() {
			for _, f := range m.Files {
				fmt.Fprintf(&b, "if ! current \"$root\"%s %s; then\n\tfetch %s %s\n\tplace \"$stage/%s\" \"$root\"%s\nfi\n",
					shq(f.Path), m.SHA256, shq(m.URL), m.SHA256, m.SHA256, shq(f.Path))
			}
			continue
		}
		fmt.Fprintf(&b, "fetch %s %s\n", shq(m.URL), m.SHA256)
		for _, f := range m.Files {
			fmt.Fprintf(&b, "extract \"$stage/%s\" %s \"$root\"%s\n", m.SHA256, shq(f.Member), shq(f.Path))
		}
	}
	return []byte(b.String())
}

// shq quotes s for sh.
func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
