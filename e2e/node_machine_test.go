package e2e

// A node of the node boot test as a machine: its network namespace (from the harness),
// a mount and UTS namespace of its own in which the bundle's rootfs is installed, its own
// cgroup subtree, and the bundle's services (containerd, the kubelet, kube-proxy and the
// oneshots) started from their units' command lines.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/paths"
)

// nbMachine is one node.
type nbMachine struct {
	h      *Harness
	Name   string
	Net    *NetNode
	Rootfs string // the bundle's nodes/<name>/rootfs
	Dir    string // <state>/nodes/<name>
	// Disk is the node's installed files: a copy of Rootfs (large files hard-linked) with
	// the environment overrides applied. It is the lower layer of the node's /etc and /var;
	// its var/lib/kubelet and var/lib/containerd are bind-mounted (ext4, for cadvisor and
	// containerd's overlayfs snapshotter).
	Disk   string
	Cgroup string            // the kubelet's cgroupRoot: /scratchgen-e2e-<pid>/<name>
	Bins   map[string]string // node path of a unit's binary (/usr/local/bin/kubelet) -> built binary

	// Set by the overrides.
	nofile          uint64
	modprobeBuiltin bool
	sysctlFiles     []string
	shieldSysctls   map[string]string
	binds           []nbBind
	serviceRoute    []string

	holder *Proc   // the process holding the namespaces: the setup script, then sleep
	procs  []*Proc // services, in start order
}

// nbBind is a bind mount of the node's setup.
type nbBind struct {
	src, dst string
	dir, ro  bool
}

// nbEnv is a service's environment: what systemd gives a system service.
var nbEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}

// nbCgroupPrefix names the test's cgroup subtree: /scratchgen-e2e-<pid>.
const nbCgroupPrefix = "scratchgen-e2e-"

func nbCgroupBase() string { return fmt.Sprintf("/%s%d", nbCgroupPrefix, os.Getpid()) }

// nbNewMachine installs the node's bundle, applies and prints the overrides, and starts
// its namespaces. Teardown is the caller's (nbMachines.teardown).
func nbNewMachine(h *Harness, node string, bins map[string]string) (*nbMachine, error) {
	m := &nbMachine{
		h: h, Name: node, Net: h.Net.Node(node),
		Rootfs: filepath.Join(h.Bundle, "nodes", node, "rootfs"),
		Dir:    filepath.Join(h.State, "nodes", node),
		Cgroup: nbCgroupBase() + "/" + node,
		Bins:   map[string]string{},
	}
	m.Disk = filepath.Join(m.Dir, "disk")
	if err := m.install(); err != nil {
		return nil, fmt.Errorf("installing %s's bundle: %w", node, err)
	}
	// The binaries the units name, at those paths.
	for _, unit := range []string{"kubelet.service", "kube-proxy.service"} {
		u, err := nbReadUnit(m.Disk, unit)
		if err != nil {
			return nil, err
		}
		argv, err := u.Single()
		if err != nil {
			return nil, err
		}
		bin, ok := bins[path.Base(argv[0])]
		if !ok {
			return nil, fmt.Errorf("%s's ExecStart runs %s, which the test has no binary for", unit, argv[0])
		}
		m.Bins[argv[0]] = bin
	}
	for _, o := range nbOverrides {
		got, err := o.apply(m)
		if err != nil {
			return nil, fmt.Errorf("override %s (%s) on %s: %w", o.Where, o.What, node, err)
		}
		h.T.Logf("override on %s: %s: %s", node, o.Where, got)
	}
	for _, rel := range []string{m.Cgroup, m.Cgroup + ".host"} {
		if err := nbCgroupCreate(rel); err != nil {
			return nil, err
		}
	}
	return m, m.startHolder()
}

// install copies the bundle's rootfs into Disk, as provisioning would copy it onto the
// machine. Files of 1 MiB or more (image archives) are hard-linked; nothing writes them.
func (m *nbMachine) install() error {
	err := filepath.WalkDir(m.Rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(m.Rootfs, p)
		dst := filepath.Join(m.Disk, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, info.Mode().Perm()|0o700)
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		case info.Size() >= 1<<20:
			if os.Link(p, dst) == nil {
				return nil
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
	if err != nil {
		return err
	}
	for _, d := range []string{paths.KubeletDir, "/var/lib/containerd"} {
		if err := os.MkdirAll(filepath.Join(m.Disk, d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// setupScript is the holder's script: it runs in the node's network namespace and in
// new mount and UTS namespaces, builds the node's filesystem, then sleeps.
func (m *nbMachine) setupScript() (string, error) {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/sh")
	w("# Machine %s of the node boot test. Runs as:", m.Name)
	w("#   nsenter --net=/run/netns/%s -- unshare --mount --uts --propagation private sh %s", m.Net.NS, filepath.Join(m.Dir, "setup.sh"))
	w("# and stays as the holder of the node's namespaces; services enter them with nsenter --target <its pid>.")
	w("set -eu")
	w("echo $$ > %s", shq(nbTrackFile(m.Cgroup+".host")))
	w("hostname %s", shq(m.Name))
	w("")
	w("# Copy-on-write views of this machine's directories, below the node's installed bundle where it has one:")
	w("# the node writes into %s/overlay, never into the host's or the bundle's files.", m.Dir)
	if strings.ContainsAny(m.Dir, ",:") {
		return "", fmt.Errorf("the state directory %s cannot be part of overlay options (',' or ':')", m.Dir)
	}
	tops := []string{"/etc", "/opt", "/run", "/usr", "/var"}
	entries, err := os.ReadDir(m.Disk)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if top := "/" + e.Name(); !contains(tops, top) {
			tops = append(tops, top)
		}
	}
	sort.Strings(tops)
	for _, top := range tops {
		for _, own := range []string{m.h.State, m.h.Bin, m.h.Bundle} {
			if own == top || strings.HasPrefix(own, top+"/") {
				return "", fmt.Errorf("the test would overlay %s, which holds %s; set TMPDIR or move the repository elsewhere", top, own)
			}
		}
		if _, err := os.Stat(top); err != nil {
			return "", fmt.Errorf("this machine has no %s to overlay: %v", top, err)
		}
		lower := top
		if _, err := os.Stat(filepath.Join(m.Disk, top)); err == nil {
			lower = filepath.Join(m.Disk, top) + ":" + top
		}
		ov := filepath.Join(m.Dir, "overlay", strings.TrimPrefix(top, "/"))
		for _, d := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(ov, d), 0o755); err != nil {
				return "", err
			}
		}
		w("mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s", lower, ov, ov, top)
	}
	w("")
	w("# State of the kubelet and containerd on a plain filesystem (ext4, not overlayfs), with the bundle's files in it.")
	run := filepath.Join(m.Dir, "run", "containerd")
	if err := os.MkdirAll(run, 0o711); err != nil {
		return "", err
	}
	binds := []nbBind{
		{src: filepath.Join(m.Disk, "var/lib/kubelet"), dst: paths.KubeletDir, dir: true},
		{src: filepath.Join(m.Disk, "var/lib/containerd"), dst: "/var/lib/containerd", dir: true},
		{src: run, dst: "/run/containerd", dir: true},
	}
	bins := make([]string, 0, len(m.Bins))
	for p := range m.Bins {
		bins = append(bins, p)
	}
	for _, p := range sortStrings(bins) {
		binds = append(binds, nbBind{src: m.Bins[p], dst: p, ro: true})
	}
	binds = append(binds, m.binds...)
	for _, bd := range binds {
		if bd.dir {
			w("mkdir -p %s", shq(bd.dst))
		} else {
			w("mkdir -p %s && touch %s", shq(path.Dir(bd.dst)), shq(bd.dst))
		}
		w("mount --bind %s %s", shq(bd.src), shq(bd.dst))
		if bd.ro {
			w("mount -o remount,bind,ro %s", shq(bd.dst))
		}
	}
	w("")
	w("# sysfs of the node's network namespace (as ip netns exec mounts it), keeping the cgroup hierarchies.")
	w("mkdir -p /run/.scratchgen-cgroup")
	w("mount --rbind /sys/fs/cgroup /run/.scratchgen-cgroup")
	w("mount -t sysfs sysfs /sys")
	w("mount --move /run/.scratchgen-cgroup /sys/fs/cgroup")
	if len(m.shieldSysctls) > 0 {
		w("")
		w("# Machine-wide kernel tunables the kubelet would set: private files here (environment override).")
		dir := filepath.Join(m.Dir, "sysctl")
		var keys []string
		for k := range m.shieldSysctls {
			keys = append(keys, k)
		}
		for _, k := range sortStrings(keys) {
			f := filepath.Join(dir, strings.ReplaceAll(k, "/", "."))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(f, []byte(m.shieldSysctls[k]+"\n"), 0o644); err != nil {
				return "", err
			}
			w("mount --bind %s %s", shq(f), shq("/proc/sys/"+k))
		}
	}
	w("")
	w("echo ready")
	w("exec sleep infinity")
	return b.String(), nil
}

// startHolder runs the setup script and waits until the node's filesystem is ready.
func (m *nbMachine) startHolder() error {
	script, err := m.setupScript()
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	file := filepath.Join(m.Dir, "setup.sh")
	if err := os.WriteFile(file, []byte(script), 0o755); err != nil {
		return err
	}
	p, err := m.spawn("machine", file, exec.Command("nsenter", "--net=/run/netns/"+m.Net.NS, "--",
		"unshare", "--mount", "--uts", "--propagation", "private", "sh", file))
	if err != nil {
		return err
	}
	m.holder = p
	return p.Poll(30*time.Second, "the setup script of "+m.Name, func() error {
		if p.LogContains("ready\n") {
			return nil
		}
		return errors.New("not ready yet")
	})
}

// spawn starts cmd as a Proc of this node, logging to <state>/logs/<node>-<name>.log.
func (m *nbMachine) spawn(name, script string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, Node: m.Net, Script: script, done: make(chan struct{}),
		Log: filepath.Join(m.h.State, "logs", m.Name+"-"+name+".log")}
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Env = nbEnv
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies without cleaning up, the node's processes die with it
	// (containers and shims survive; the next run removes them, see nbRemoveStale).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s on %s: %w", name, m.Name, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	m.h.T.Logf("started %s on %s (pid %d): %s, log %s", name, m.Name, cmd.Process.Pid, script, p.Log)
	return p, nil
}

// enter is the command prefix that runs a program in the node's namespaces.
func (m *nbMachine) enter() []string {
	return []string{"nsenter", "--target", strconv.Itoa(m.holder.cmd.Process.Pid), "--mount", "--uts", "--net", "--"}
}

// Start runs a service: argv exactly as its unit says, inside the node, in the node's
// cgroup for its services; limits are the unit's (after the overrides).
func (m *nbMachine) Start(name, unit string, argv []string, nofile uint64) (*Proc, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# %s of node %s: ExecStart of %s, exactly as rendered. The test runs it as:\n", name, m.Name, unit)
	file := filepath.Join(m.Dir, "run", name+".sh")
	fmt.Fprintf(&b, "#   %s sh %s\nset -eu\n", strings.Join(m.enter(), " "), file)
	fmt.Fprintf(&b, "echo $$ > %s\n", shq(nbTrackFile(m.Cgroup+".host")))
	if nofile > 0 {
		fmt.Fprintf(&b, "ulimit -n %d\n", nofile)
	}
	b.WriteString("cd /\nexec " + shq(argv[0]))
	for _, a := range argv[1:] {
		b.WriteString(" \\\n  " + shq(a))
	}
	b.WriteString("\n")
	if err := os.WriteFile(file, []byte(b.String()), 0o755); err != nil {
		return nil, err
	}
	p, err := m.spawn(name, file, exec.Command(m.enter()[0], append(m.enter()[1:], "sh", file)...))
	if err != nil {
		return nil, err
	}
	m.procs = append(m.procs, p)
	return p, nil
}

// Run runs a command inside the node and returns its output (also logged, with the
// command, in <state>/logs/<node>-commands.log).
func (m *nbMachine) Run(ctx context.Context, argv ...string) (string, error) {
	full := append(m.enter(), argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = nbEnv
	out, err := cmd.CombinedOutput()
	if f, ferr := os.OpenFile(filepath.Join(m.h.State, "logs", m.Name+"-commands.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "$ %s\n%s(%s)\n", strings.Join(argv, " "), out, exitString(err))
		f.Close()
	}
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %v\n%s", strings.Join(argv, " "), m.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// RunUnit runs a oneshot unit's commands in order, as systemd would, with the kernel
// unit's overrides applied.
func (m *nbMachine) RunUnit(ctx context.Context, unit string) error {
	u, err := nbReadUnit(m.Disk, unit)
	if err != nil {
		return err
	}
	for _, argv := range u.ExecStart {
		if unit == "scratchgen-kernel.service" && len(argv) == 2 && argv[0] == "sysctl" && argv[1] == "--system" {
			for _, f := range m.sysctlFiles {
				out, err := m.Run(ctx, "sysctl", "-p", f)
				if err != nil {
					return fmt.Errorf("%s (override of %q): %w", unit, strings.Join(argv, " "), err)
				}
				m.h.T.Logf("%s on %s: sysctl -p %s (instead of sysctl --system): %s", unit, m.Name, f, strings.Join(strings.Fields(out), " "))
			}
			continue
		}
		out, err := m.Run(ctx, argv...)
		if err != nil && unit == "scratchgen-kernel.service" && argv[0] == "modprobe" && m.modprobeBuiltin {
			if why := nbBuiltinModules(); why != "" {
				return fmt.Errorf("%s: %w; and %s", unit, err, why)
			}
			m.h.T.Logf("%s on %s: %s failed, accepted (override): br_netfilter and overlay are built into this kernel", unit, m.Name, strings.Join(argv, " "))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", unit, err)
		}
		m.h.T.Logf("%s on %s: %s%s", unit, m.Name, strings.Join(argv, " "), nbIndent(out))
	}
	if unit == "scratchgen-routes.service" && m.serviceRoute != nil {
		if _, err := m.Run(ctx, m.serviceRoute...); err != nil {
			return fmt.Errorf("%s (environment override): %w", unit, err)
		}
		m.h.T.Logf("%s on %s: %s (environment override)", unit, m.Name, strings.Join(m.serviceRoute, " "))
	}
	return nil
}

// nbBuiltinModules says why br_netfilter or overlay is not usable without modprobe ("" if both are).
func nbBuiltinModules() string {
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		return "br_netfilter is not built in (no /proc/sys/net/bridge/bridge-nf-call-iptables)"
	}
	data, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(data), "\toverlay\n") {
		return "overlay is not built in (not in /proc/filesystems)"
	}
	return ""
}

func nbIndent(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	return "\n    " + strings.ReplaceAll(out, "\n", "\n    ")
}

// Teardown stops the node: services newest first (SIGTERM, then SIGKILL), then every
// process left in its cgroups (containers, shims), then the holder, which takes the
// namespaces and their mounts with it. On failure it first records the runtime's view.
func (m *nbMachine) Teardown(failed bool) {
	t := m.h.T
	if failed && m.holder != nil {
		if done, _ := m.holder.Exited(); !done {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			for _, c := range [][]string{{"ctr", "-n", "k8s.io", "tasks", "ls"}, {"ctr", "-n", "k8s.io", "images", "ls", "-q"}, {"ip", "route"}} {
				out, err := m.Run(ctx, c...)
				t.Logf("--- %s on %s (%s) ---\n%s", strings.Join(c, " "), m.Name, exitString(err), strings.TrimSpace(out))
			}
			cancel()
		}
	}
	for i := len(m.procs) - 1; i >= 0; i-- {
		m.procs[i].Stop()
	}
	for _, rel := range []string{m.Cgroup, m.Cgroup + ".host"} {
		if err := nbCgroupKill(rel); err != nil {
			t.Errorf("teardown of %s: %v", m.Name, err)
		}
	}
	if m.holder != nil {
		m.holder.Stop()
	}
}

// Logs prints the tail of every service's log and of every container's log
// (/var/log/pods of the node).
func (m *nbMachine) Logs(lines int) {
	t := m.h.T
	for _, p := range append([]*Proc{m.holder}, m.procs...) {
		if p != nil {
			t.Logf("--- %s on %s (%s): last %d lines of %s ---\n%s", p.Name, p.Node.Name, exitString(p.exitErr), lines, p.Log, p.LogTail(lines))
		}
	}
	podLogs, _ := filepath.Glob(filepath.Join(m.Dir, "overlay", "var", "upper", "log", "pods", "*", "*", "*.log"))
	for _, f := range podLogs {
		p := &Proc{Log: f}
		rel, _ := filepath.Rel(filepath.Join(m.Dir, "overlay", "var", "upper"), f)
		t.Logf("--- container log /var/%s on %s: last %d lines ---\n%s", rel, m.Name, lines, p.LogTail(lines))
	}
}

// Cgroups. The test's subtree is /scratchgen-e2e-<pid> in every hierarchy: per node a
// subtree the kubelet owns (its cgroupRoot, where containers go) and <node>.host for the
// node's services and what they fork (containerd's shims).

// nbHierarchies lists the mounted cgroup hierarchies (v1 controllers, a v2 hierarchy).
func nbHierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") && len(fields) > 4 {
				if mp := fields[4]; strings.HasPrefix(mp, "/sys/fs/cgroup") {
					out = append(out, mp)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted under /sys/fs/cgroup")
	}
	return out, sc.Err()
}

// nbTrackFile is the cgroup.procs through which a process joins rel for tracking: the
// pids controller's (v1) or the unified hierarchy's.
func nbTrackFile(rel string) string {
	for _, c := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(c, "cgroup.procs")); err == nil {
			return filepath.Join(c, rel, "cgroup.procs")
		}
	}
	return filepath.Join("/sys/fs/cgroup/pids", rel, "cgroup.procs")
}

// nbCgroupCreate makes rel in every hierarchy, with the parents' cpusets (v1) and the
// controllers enabled for children (v2).
func nbCgroupCreate(rel string) error {
	hs, err := nbHierarchies()
	if err != nil {
		return err
	}
	for _, hier := range hs {
		dir := hier
		for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
			parent := dir
			if v2, _ := os.ReadFile(filepath.Join(parent, "cgroup.controllers")); len(v2) > 0 {
				var plus []string
				for _, c := range strings.Fields(string(v2)) {
					plus = append(plus, "+"+c)
				}
				os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(strings.Join(plus, " ")), 0o644)
			}
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("creating cgroup %s: %w", dir, err)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				cur, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || strings.TrimSpace(string(cur)) != "" {
					continue
				}
				val, _ := os.ReadFile(filepath.Join(parent, f))
				if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
					return fmt.Errorf("initializing %s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// nbCgroupProcs lists the processes in rel and below, in every hierarchy.
func nbCgroupProcs(rel string) []int {
	hs, _ := nbHierarchies()
	seen := map[int]bool{}
	var out []int
	for _, hier := range hs {
		filepath.WalkDir(filepath.Join(hier, rel), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// nbCgroupKill SIGKILLs every process in rel and below until none is left.
func nbCgroupKill(rel string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := nbCgroupProcs(rel)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v are still in cgroup %s", pids, rel)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nbCgroupRemove removes rel and everything below it in every hierarchy, deepest first.
func nbCgroupRemove(rel string) error {
	hs, err := nbHierarchies()
	if err != nil {
		return err
	}
	var errs []string
	for _, hier := range hs {
		var dirs []string
		filepath.WalkDir(filepath.Join(hier, rel), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for range 50 { // a memory cgroup may stay busy for a moment after its last process
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("rmdir %s: %v", d, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// nbRemoveStale kills and removes the cgroup subtrees of earlier runs whose test process
// is gone (a run killed before its cleanup: its containers and shims outlive it).
func nbRemoveStale(t *testing.T) {
	hs, err := nbHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	stale := map[string]bool{}
	for _, hier := range hs {
		entries, _ := os.ReadDir(hier)
		for _, e := range entries {
			if pid, ok := ownerPid(e.Name(), nbCgroupPrefix, ""); ok && e.IsDir() && !alive(pid) {
				stale["/"+e.Name()] = true
			}
		}
	}
	for rel := range stale {
		t.Logf("removing stale cgroup subtree %s (its test process is gone)", rel)
		if err := nbCgroupKill(rel); err != nil {
			t.Log(err)
		}
		if err := nbCgroupRemove(rel); err != nil {
			t.Log(err)
		}
	}
}
