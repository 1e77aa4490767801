package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MetadataName is the bundle's description of itself at its root: what the rendered
// files were made from that verify needs and cannot read from them (the views' inputs,
// the images the spec resolves). It holds no secret.
const MetadataName = "bundle.json"

// Metadata is bundle.json.
type Metadata struct {
	// Renderer is the scratchgen that wrote the bundle ("scratchgen v0.3.0").
	Renderer string `json:"renderer"`
	Cluster  string `json:"cluster"`
	// KubernetesVersion is the release the bundle runs.
	KubernetesVersion string `json:"kubernetesVersion"`
	// EmbedSecrets says whether the views carry keys and tokens.
	EmbedSecrets bool `json:"embedSecrets"`
	// Images maps each image key (pause, etcd, kube-apiserver, …) to the reference the
	// bundle renders ("name:tag@sha256:…" where pinned).
	Images map[string]string `json:"images"`
	// Nodes are in spec order.
	Nodes []NodeMetadata `json:"nodes"`
}

// NodeMetadata is one node's entry.
type NodeMetadata struct {
	Name string `json:"name"`
	// Address is the node's address, one per IP family, comma-separated (its --node-ip).
	Address string   `json:"address"`
	Roles   []string `json:"roles"`
	// OS picks the views' variant and the binary directory.
	OS string `json:"os"`
	// BinDir is where the node's binaries live.
	BinDir string `json:"binDir"`
	// PodCIDR is the node's pod range, one per IP family, comma-separated.
	PodCIDR string `json:"podCIDR"`
	// Units are the units the node enables, in start order.
	Units []string `json:"units"`
	// KubeletVersion is the release of the kubelet and kube-proxy the node runs: the
	// cluster's, or older where the spec pins it.
	KubeletVersion string `json:"kubeletVersion,omitempty"`
	// Binaries are the node's pinned downloads, when the lock pins them all (absent
	// otherwise: the operator installs the binaries). BinariesCarried says rootfs/ holds
	// their files; otherwise the node fetches them (Ignition's remote files,
	// install-binaries.sh).
	Binaries        []BinaryMetadata `json:"binaries,omitempty"`
	BinariesCarried bool             `json:"binariesCarried,omitempty"`
}

// BinaryMetadata is one pinned download of a node.
type BinaryMetadata struct {
	// Name is kubelet, kube-proxy or the spec's name for an extra download.
	Name string `json:"name"`
	URL  string `json:"url"`
	// SHA256, SHA512 and Size are the lock's pin of the download.
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
	Size   int64  `json:"size"`
	// Files are where its content goes, sorted by path.
	Files []BinaryFile `json:"files"`
}

// Archive reports whether the download is a release archive the files are extracted from.
func (b BinaryMetadata) Archive() bool { return len(b.Files) > 0 && b.Files[0].Member != "" }

// BinaryFile is one node file of a download.
type BinaryFile struct {
	Path string `json:"path"`
	// Member is the file's path inside the archive ("" for a single-file download).
	Member string `json:"member,omitempty"`
	// SHA256 is the file's hex SHA-256 as installed, where it is known at render time
	// (carried files, single-file downloads).
	SHA256 string `json:"sha256,omitempty"`
}

// Marshal encodes the metadata as indented JSON with a trailing newline.
func (m *Metadata) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", MetadataName, err)
	}
	return append(out, '\n'), nil
}

// Node returns the entry of the node named name, or nil.
func (m *Metadata) Node(name string) *NodeMetadata {
	for i := range m.Nodes {
		if m.Nodes[i].Name == name {
			return &m.Nodes[i]
		}
	}
	return nil
}

// ParseMetadata reads bundle.json strictly.
func ParseMetadata(data []byte) (*Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", MetadataName, err)
	}
	return &m, nil
}
