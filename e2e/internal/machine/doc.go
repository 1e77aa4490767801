// Package machine boots Debian "machines" for the e2e tests: systemd-nspawn
// containers with systemd as PID 1, each with its own root directory, network
// namespace and cgroups, into which a test delivers a rendered bundle (with
// Ignition before the first boot, with cloud-init's NoCloud seed, or by
// copying files into a running machine).
//
// Image builds the shared Debian bookworm image once (debootstrap plus
// containerd, runc, the CNI plugins, conntrack, cloud-init and rsync) and
// caches it; New copies it into a machine root; Machine.Boot starts it.
// Ignition builds the Ignition binary that ApplyIgnition runs against a root
// before its first boot; SeedCloudInit arms cloud-init for the next boot.
//
// The package targets Linux hosts with hybrid cgroups and no host systemd
// (the e2e hosts); everything runs as root. The host needs the Debian packages
// systemd-container, debootstrap, iproute2 and util-linux (nsenter), and
// libblkid-dev plus a C compiler to build Ignition.
package machine
