// Package versions holds the per-Kubernetes-minor facts scratchgen renders from: default
// images, the etcd release kubeadm pairs with the minor, and which flags and fields a
// minor takes. The tables are read-only; nothing mutates them at run time.
package versions

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is what one Kubernetes minor needs.
type Profile struct {
	// Minor is "1.36".
	Minor string
	// MinorNumber is 36.
	MinorNumber int
	// Etcd is the etcd release (without "v"), e.g. "3.6.8"; its image tag is Etcd+"-0".
	Etcd string
	// Pause is the pause (sandbox) image tag.
	Pause string
	// CoreDNS is the CoreDNS image tag, e.g. "v1.14.1".
	CoreDNS string
	// KCMFlexVolumeMount: kubeadm mounts the flexvolume plugin dir into the controller
	// manager up to 1.35 (removed in 1.36, kubernetes#136423).
	KCMFlexVolumeMount bool
	// ProxyIPVSDeprecated: kube-proxy's ipvs mode is deprecated (1.35+); validation names
	// the first minor that deprecates it.
	ProxyIPVSDeprecated bool
	// TestedPatch is the patch release scratchgen's boot test builds and runs.
	TestedPatch string
}

// profiles is ordered oldest first. Sources: kubeadm's constants for each minor
// (cmd/kubeadm/app/constants: the etcd release paired with the minor, the pause tag,
// the CoreDNS tag) and the release notes named on each field.
var profiles = []Profile{
	{Minor: "1.34", MinorNumber: 34, Etcd: "3.6.5", Pause: "3.10.1", CoreDNS: "v1.12.1",
		KCMFlexVolumeMount: true, TestedPatch: "v1.34.4"},
	{Minor: "1.35", MinorNumber: 35, Etcd: "3.6.8", Pause: "3.10.1", CoreDNS: "v1.13.1",
		KCMFlexVolumeMount: true, ProxyIPVSDeprecated: true, TestedPatch: "v1.35.4"},
	{Minor: "1.36", MinorNumber: 36, Etcd: "3.6.8", Pause: "3.10.1", CoreDNS: "v1.14.1",
		ProxyIPVSDeprecated: true, TestedPatch: "v1.36.3"},
}

// IPVSDeprecatedSince returns the first minor whose profile deprecates kube-proxy's ipvs
// mode ("1.35").
func IPVSDeprecatedSince() string {
	for _, p := range profiles {
		if p.ProxyIPVSDeprecated {
			return p.Minor
		}
	}
	return "(none)"
}

// Default is the Kubernetes version `scratchgen init` proposes.
const Default = "v1.36.3"

// Supported lists the supported minors, e.g. "1.34, 1.35, 1.36".
func Supported() string {
	s := make([]string, len(profiles))
	for i, p := range profiles {
		s[i] = p.Minor
	}
	return strings.Join(s, ", ")
}

// All returns a copy of every profile, oldest first.
func All() []Profile { return append([]Profile(nil), profiles...) }

// Version is a parsed Kubernetes release version.
type Version struct {
	Major, Minor, Patch int
}

// String returns "v1.36.3".
func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Parse reads "v1.36.3" (the leading v is required, as in image tags). Pre-releases are refused.
func Parse(s string) (Version, error) {
	if !strings.HasPrefix(s, "v") {
		return Version{}, fmt.Errorf("%q must start with \"v\", e.g. %s", s, Default)
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%q is not a release version of the form vMAJOR.MINOR.PATCH, e.g. %s", s, Default)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("%q is not a release version of the form vMAJOR.MINOR.PATCH, e.g. %s", s, Default)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// Lookup returns the profile for a version's minor.
func Lookup(v Version) (Profile, error) {
	if v.Major == 1 {
		for _, p := range profiles {
			if p.MinorNumber == v.Minor {
				return p, nil
			}
		}
	}
	return Profile{}, fmt.Errorf("Kubernetes %s is not supported; supported minors: %s", v, Supported())
}
