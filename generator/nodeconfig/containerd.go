package nodeconfig

import (
	"fmt"
	"strings"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// ContainerdNoFile is containerd's open-files limit: the guide's DOCKER_NOFILE advice
// (1000000), rounded to the usual power of two.
const ContainerdNoFile = "1048576"

// containerdConfig is written in config format version 2, not the version 3 that
// containerd 2.x writes by default: version 2 is what containerd 1.6 and 1.7 (Debian 12,
// Ubuntu 22.04/24.04, the boot test) understand, and containerd 2.x still loads it,
// migrating it in memory. The file replaces the OS package's default (some packages ship
// disabled_plugins = ["cri"], which a Kubernetes node cannot use).
const containerdConfig = `# {{header}}
# containerd configuration for a Kubernetes node. Format version 2: read by containerd 1.6
# and 1.7, and migrated in memory by containerd 2.x.
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {{pause}}

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {{cniBin}}
      conf_dir = {{cniConf}}

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          # The kubelet's cgroupDriver is systemd; runc must use the same driver.
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true
`

// Containerd is the plan step of the container runtime: config.toml and a drop-in for
// the containerd.service the OS ships.
func Containerd(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
	if err := checkResolved(n); err != nil {
		return err
	}
	pause := c.Images.Refs[model.ImagePause]
	if pause == "" {
		return fmt.Errorf("no %s image resolved", model.ImagePause)
	}
	vals := map[string]string{"pause": pause, "cniBin": paths.CNIBinDir, "cniConf": paths.CNIConfDir}
	conf := strings.Replace(containerdConfig, "{{header}}", header, 1)
	for k, v := range vals {
		q, err := tomlString(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		conf = strings.Replace(conf, "{{"+k+"}}", q, 1)
	}
	u := bundle.Unit{Name: paths.ContainerdService, After: []string{paths.KernelService}}
	dropIn := unit{
		{"Unit", []entry{
			kv("Wants", u.After...),
			kv("After", u.After...),
		}},
		{"Service", []entry{
			kv("LimitNOFILE", ContainerdNoFile),
		}},
	}
	b.Public(paths.ContainerdConfig, []byte(conf))
	b.Public(paths.ContainerdDropIn, dropIn.bytes())
	b.Unit(u)
	return nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			return "", fmt.Errorf("%q holds a control character", s)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}
