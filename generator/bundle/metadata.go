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
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Roles   []string `json:"roles"`
	// OS picks the views' variant and the binary directory.
	OS string `json:"os"`
	// BinDir is where the node's binaries live.
	BinDir string `json:"binDir"`
	// PodCIDR is the node's pod range.
	PodCIDR string `json:"podCIDR"`
	// Units are the units the node enables, in start order.
	Units []string `json:"units"`
	// KubeletVersion is the release of the kubelet and kube-proxy the node runs: the
	// cluster's, or older where the spec pins it.
	KubeletVersion string `json:"kubeletVersion,omitempty"`
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
