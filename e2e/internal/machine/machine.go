//go:build linux

package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// bootTimeout bounds Boot's wait for systemd to finish starting up.
	bootTimeout = 90 * time.Second
	// stopTimeout bounds Stop's wait for a clean poweroff before SIGKILL.
	stopTimeout = 30 * time.Second
)

// validName is a machine name: a hostname label.
var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// execEnv is the environment of commands run in a machine.
var execEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}

// Machine is a Debian machine: a root directory that boots as a
// systemd-nspawn container with systemd as PID 1, in a network namespace and
// cgroups of its own. A Machine is not safe for concurrent use.
type Machine struct {
	root, name, netns, console string
	log                        *logger

	// Set while booted.
	cmd     *exec.Cmd     // sh wrapper exec'ing systemd-nspawn
	done    chan struct{} // closed when cmd has exited
	waitErr error         // cmd's exit, once done is closed
	cg      *cgroupSet
	pid     int // the machine's systemd, in the host's PID namespace
	boots   int
}

// New makes the machine root root, which must not exist or be empty, from
// the image (see Image): a copy of it with a fresh machine-id and name as
// its hostname. The machine will use the network namespace at netnsPath
// (/run/netns/<ns>), or a private one with only loopback if netnsPath is
// empty. New does not boot the machine. Progress lines go to log (nil
// discards them).
func New(ctx context.Context, image, root, name, netnsPath string, log io.Writer) (*Machine, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("creating machine %q: invalid name (want a lower-case hostname label of at most 40 characters)", name)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("creating machine %s: %w", name, err)
	}
	m := &Machine{root: abs, name: name, netns: netnsPath, console: abs + ".console.log", log: newLogger(log)}
	if err := m.create(ctx, image); err != nil {
		return nil, fmt.Errorf("creating machine %s in %s: %w", name, abs, err)
	}
	return m, nil
}

// create copies the image and makes it this machine's.
func (m *Machine) create(ctx context.Context, image string) error {
	if ok, err := isImage(image); err != nil || !ok {
		return fmt.Errorf("%s is not a machine image (%v)", image, err)
	}
	if entries, err := os.ReadDir(m.root); err == nil && len(entries) > 0 {
		return errors.New("the root is not empty")
	} else if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(m.root, 0o755); err != nil {
		return err
	}
	start := time.Now()
	if _, err := run(ctx, nil, "cp", "-a", image+"/.", m.root); err != nil {
		return err
	}
	// Both ids, or machines share the D-Bus id. A machine-id also keeps the
	// first boot from running preset-all (which enables
	// systemd-networkd-wait-online, holding network-online.target).
	for _, f := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		if err := os.Remove(filepath.Join(m.root, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if _, err := run(ctx, nil, "systemd-machine-id-setup", "--root="+m.root); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(m.root, "etc/hostname"), []byte(m.name+"\n"), 0o644); err != nil {
		return err
	}
	m.log.printf("%s: root %s made in %s", m.name, m.root, time.Since(start).Round(time.Millisecond))
	return nil
}

// Root is the machine's root directory on the host.
func (m *Machine) Root() string { return m.root }

// Name is the machine's name and hostname.
func (m *Machine) Name() string { return m.name }

// PID is the host PID of the booted machine's systemd (its PID 1), or 0.
func (m *Machine) PID() int { return m.pid }

// ConsoleLog is the path of the file that collects the machine's console
// output, all boots appended: <root>.console.log.
func (m *Machine) ConsoleLog() string { return m.console }

// Booted reports whether the machine has been booted and not stopped, and
// its systemd-nspawn is still running.
func (m *Machine) Booted() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Boot starts the machine and waits (at most 90 s) until systemd reports the
// system running. If it reports degraded, fails or does not finish in time,
// the error carries `systemctl --failed`, and the machine is left running
// for inspection: Stop it. If the machine cannot be started at all, Boot
// cleans up after itself.
func (m *Machine) Boot(ctx context.Context) error {
	if m.cmd != nil {
		return fmt.Errorf("booting machine %s: already booted", m.name)
	}
	if err := m.start(); err != nil {
		return fmt.Errorf("booting machine %s: %w", m.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	start := time.Now()
	if err := m.findPID(ctx); err != nil {
		err = fmt.Errorf("booting machine %s: %w\nconsole (%s):\n%s", m.name, err, m.console, m.consoleTail())
		if serr := m.Stop(context.Background()); serr != nil {
			err = errors.Join(err, serr)
		}
		return err
	}
	if err := m.waitRunning(ctx); err != nil {
		return fmt.Errorf("booting machine %s: %w", m.name, err)
	}
	m.log.printf("%s: booted in %s (pid %d)", m.name, time.Since(start).Round(time.Millisecond), m.pid)
	return nil
}

// start starts systemd-nspawn in the machine's own cgroups.
func (m *Machine) start() error {
	cg, err := newCgroupSet(m.name)
	if err != nil {
		return err
	}
	console, err := os.OpenFile(m.console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		cg.remove()
		return err
	}
	defer console.Close() // the child has its own copy
	m.boots++
	fmt.Fprintf(console, "\n===== machine %s: boot %d =====\n", m.name, m.boots)
	network := "--private-network"
	if m.netns != "" {
		network = "--network-namespace-path=" + m.netns
	}
	argv := []string{"systemd-nspawn", "-D", m.root, "--machine=" + m.name, "--hostname=" + m.name,
		// No host systemd or D-Bus to register with or to make a scope.
		"--register=no", "--keep-unit",
		"--private-users=no", "--capability=all",
		// runc creates session keyrings; bpf for its device filters.
		"--system-call-filter=add_key keyctl bpf",
		"--bind=/dev/kmsg", network, "--console=read-only",
		"--kill-signal=SIGRTMIN+3", ShimPath}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Args = cg.wrap(argv)
	cmd.Path, err = exec.LookPath("sh")
	if err != nil {
		cg.remove()
		return err
	}
	// network: /proc/sys/net writable (ip_forward and friends); the rest of
	// /proc/sys and /sys stays read-only so the machine cannot change the host.
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_API_VFS_WRITABLE=network")
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		cg.remove()
		return err
	}
	m.cmd, m.cg, m.done, m.waitErr = cmd, cg, make(chan struct{}), nil
	go func(done chan struct{}) {
		m.waitErr = cmd.Wait()
		close(done)
	}(m.done)
	return nil
}

// findPID finds the machine's PID 1: the descendant of systemd-nspawn whose
// innermost PID is 1.
func (m *Machine) findPID(ctx context.Context) error {
	for {
		if pid := containerInit(m.cmd.Process.Pid); pid != 0 {
			m.pid = pid
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited: %v", m.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("finding the machine's PID 1: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitRunning polls systemctl is-system-running until it answers running.
func (m *Machine) waitRunning(ctx context.Context) error {
	state := ""
	for {
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited (%v) while systemd was %q\nconsole (%s):\n%s", m.waitErr, state, m.console, m.consoleTail())
		default:
		}
		out, _ := m.Exec(ctx, "systemctl", "is-system-running")
		state = strings.TrimSpace(out)
		switch state {
		case "running":
			return nil
		case "degraded", "maintenance", "stopping":
			return fmt.Errorf("systemd is %s:\n%s", state, m.failed())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("systemd is %q after %s: %w\n%s", state, bootTimeout, ctx.Err(), m.failed())
		case <-m.done:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// failed returns systemctl --failed, for errors.
func (m *Machine) failed() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := m.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
	if err != nil {
		return fmt.Sprintf("systemctl --failed: %v", err)
	}
	return "systemctl --failed:\n" + out
}

// consoleTail is the end of the console log, for errors.
func (m *Machine) consoleTail() string {
	b, err := os.ReadFile(m.console)
	if err != nil {
		return err.Error()
	}
	return tail(string(b), 3000)
}

// Exec runs argv inside the booted machine (all its namespaces, through
// nsenter) with a plain environment, and returns its combined output; the
// error carries the output.
func (m *Machine) Exec(ctx context.Context, argv ...string) (string, error) {
	if m.pid == 0 || !m.Booted() {
		return "", fmt.Errorf("running %s in machine %s: not booted", strings.Join(argv, " "), m.name)
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(m.pid), "-a", "--"}, argv...)...)
	cmd.Env = execEnv
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("running %s in machine %s: %w\n%s", strings.Join(argv, " "), m.name, err, tail(string(out), 4000))
	}
	return string(out), nil
}

// Stop powers the machine off: SIGTERM to systemd-nspawn, which has systemd
// shut down; after 30 s (or when ctx is done) SIGKILL to both. Then it
// removes the machine's cgroups. Stopping a machine that is not booted does
// nothing. Boot boots it again.
func (m *Machine) Stop(ctx context.Context) error {
	if m.cmd == nil {
		return nil
	}
	var errs []error
	start := time.Now()
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-ctx.Done():
	case <-time.After(stopTimeout):
	}
	select {
	case <-m.done:
	default:
		errs = append(errs, fmt.Errorf("no clean poweroff after %s: killed", time.Since(start).Round(time.Second)))
		if m.pid != 0 {
			syscall.Kill(m.pid, syscall.SIGKILL) // ends the machine's PID namespace
		}
		m.cmd.Process.Kill()
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("systemd-nspawn does not exit after SIGKILL"))
		}
	}
	if err := m.cg.remove(); err != nil {
		errs = append(errs, err)
	}
	exit := "still running"
	select {
	case <-m.done:
		exit = fmt.Sprint(m.waitErr)
	default:
	}
	m.log.printf("%s: stopped in %s (exit: %s)", m.name, time.Since(start).Round(time.Millisecond), exit)
	m.cmd, m.cg, m.pid = nil, nil, 0
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping machine %s: %w", m.name, err)
	}
	return nil
}

// Reboot stops the machine and boots it again.
func (m *Machine) Reboot(ctx context.Context) error {
	if err := m.Stop(ctx); err != nil {
		return err
	}
	return m.Boot(ctx)
}

// containerInit returns the PID of the descendant of parent whose innermost
// PID (the last NSpid field) is 1, or 0.
func containerInit(parent int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	queue := children[parent]
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
				return pid
			}
		}
	}
	return 0
}
