// Package lock reads and writes the lock file (<spec stem>.lock): what scratchgen decided
// once and must keep deciding the same way — pod range allocations, certificate generations
// and first-issue times, image digests. It is committed by users and holds no secrets.
package lock

import (
	"fmt"
	"time"

	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify the lock format.
const (
	APIVersion = "scratchgen.dev/v1alpha1"
	Kind       = "Lock"
)

// Lock is the lock file.
type Lock struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Cluster is the cluster the lock belongs to; a lock of another cluster is refused.
	Cluster string `json:"cluster"`
	// PodCIDRs maps node name to its allocated pod range.
	PodCIDRs map[string]string `json:"podCIDRs,omitempty"`
	// Certificates maps an identity (e.g. "ca", "kubelet-client/worker-1") to its issue record.
	Certificates map[string]Certificate `json:"certificates,omitempty"`
	// Images maps an image reference as rendered by tag ("registry.k8s.io/pause:3.10.1") to its pin.
	Images map[string]Image `json:"images,omitempty"`
}

// Certificate records when and in which generation an identity was issued.
type Certificate struct {
	// Generation starts at 1; `certs renew` bumps it, which derives a new key and serial.
	Generation int `json:"generation"`
	// NotBefore is fixed at first issue of this generation; NotAfter = NotBefore + validity.
	NotBefore time.Time `json:"notBefore"`
}

// Image pins a tag to digests.
type Image struct {
	// Digest is the digest of what the tag resolved to (an index for multi-platform images).
	Digest string `json:"digest"`
	// Platforms maps "linux/amd64" etc. to that platform's manifest digest, where the tag is an index.
	Platforms map[string]string `json:"platforms,omitempty"`
}

// New returns an empty lock for a cluster.
func New(cluster string) *Lock {
	return &Lock{APIVersion: APIVersion, Kind: Kind, Cluster: cluster}
}

// Parse reads a lock strictly.
func Parse(data []byte) (*Lock, error) {
	var l Lock
	if err := yaml.UnmarshalStrict(data, &l); err != nil {
		return nil, fmt.Errorf("reading lock: %w", err)
	}
	if l.APIVersion != APIVersion || l.Kind != Kind {
		return nil, fmt.Errorf("reading lock: apiVersion/kind %s/%s is not %s/%s", l.APIVersion, l.Kind, APIVersion, Kind)
	}
	for id, c := range l.Certificates {
		if c.Generation < 1 {
			return nil, fmt.Errorf("reading lock: certificates[%q].generation must be 1 or more", id)
		}
	}
	return &l, nil
}

// Marshal writes the lock as YAML with sorted keys, so the same lock gives the same bytes.
func (l *Lock) Marshal() ([]byte, error) {
	out, err := yaml.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	return append([]byte("# scratchgen lock: commit it beside the spec. It holds no secrets.\n"), out...), nil
}

// Clone returns a deep copy.
func (l *Lock) Clone() *Lock {
	c := *l
	c.PodCIDRs = cloneMap(l.PodCIDRs)
	c.Certificates = cloneMap(l.Certificates)
	c.Images = make(map[string]Image, len(l.Images))
	for k, v := range l.Images {
		v.Platforms = cloneMap(v.Platforms)
		c.Images[k] = v
	}
	if l.Images == nil {
		c.Images = nil
	}
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
