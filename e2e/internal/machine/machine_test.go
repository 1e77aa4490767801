//go:build linux

package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestMachines builds the image and Ignition, then boots three machines:
// one plain (and reboots it), one prepared with Ignition, one with a
// cloud-init seed.
func TestMachines(t *testing.T) {
	if os.Getenv("SCRATCHGEN_E2E") != "1" || os.Geteuid() != 0 {
		t.Skip("SKIPPED: machine test needs SCRATCHGEN_E2E=1 and root (boots systemd-nspawn machines)")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "ip", "systemd-machine-id-setup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install systemd-container debootstrap libblkid-dev iproute2 util-linux", tool)
		}
	}
	cache := os.Getenv("SCRATCHGEN_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join("..", "..", ".cache")
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	log := testWriter{t}

	start := time.Now()
	image, err := Image(ctx, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s (%s)", image, time.Since(start).Round(time.Second))
	start = time.Now()
	ign, err := Ignition(ctx, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ignition %s (%s)", ign, time.Since(start).Round(time.Second))

	nets := newTestNet(t)
	dir := t.TempDir()
	pid := os.Getpid()

	// newMachine makes machine i with its network, stopped at the end.
	newMachine := func(t *testing.T, i int) *Machine {
		name := fmt.Sprintf("sgm%d-%d", pid, i)
		m, err := New(ctx, image, filepath.Join(dir, name), name, nets.add(t, i), testWriter{t})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				if b, err := os.ReadFile(m.ConsoleLog()); err == nil {
					t.Logf("console of %s:\n%s", name, tail(string(b), 4000))
				}
			}
			if err := m.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
		return m
	}

	t.Run("boot-reboot", func(t *testing.T) {
		m := newMachine(t, 1)
		if err := m.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		check := func() {
			t.Helper()
			expect(t, ctx, m, m.Name(), "cat", "/etc/hostname")
			expect(t, ctx, m, "running", "systemctl", "is-system-running")
			expect(t, ctx, m, "active", "systemctl", "is-active", "containerd.service")
			out, err := m.Exec(ctx, "ip", "-4", "-o", "addr", "show", "eth0")
			if err != nil || !strings.Contains(out, nets.addr(1)+"/24") {
				t.Errorf("eth0 of %s: %q, %v; want %s", m.Name(), out, err, nets.addr(1))
			}
			// The shim: v1 controllers writable, fake host sysctls; and
			// /proc/sys/net writable.
			if out, err := m.Exec(ctx, "sh", "-c", "mkdir /sys/fs/cgroup/memory/probe && rmdir /sys/fs/cgroup/memory/probe"); err != nil {
				t.Errorf("memory cgroup not writable in %s: %v\n%s", m.Name(), err, out)
			}
			expect(t, ctx, m, "10", "cat", "/proc/sys/kernel/panic")
			expect(t, ctx, m, "net.ipv4.ip_forward = 1", "sysctl", "-w", "net.ipv4.ip_forward=1")
			cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", m.PID()))
			if err != nil || !strings.Contains(string(cg), "/mach-"+m.Name()+"/") {
				t.Errorf("cgroups of the machine's PID 1: %s, %v; want them under mach-%s", cg, err, m.Name())
			}
		}
		check()
		first := m.PID()
		if err := m.Reboot(ctx); err != nil {
			t.Fatal(err)
		}
		if m.PID() == first || !m.Booted() {
			t.Errorf("after reboot: pid %d (was %d), booted %v", m.PID(), first, m.Booted())
		}
		check()
	})

	t.Run("ignition", func(t *testing.T) {
		m := newMachine(t, 2)
		unit := "[Unit]\nDescription=Hello from Ignition\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n" +
			"ExecStart=/bin/cp /etc/hello /run/hello\n\n[Install]\nWantedBy=multi-user.target\n"
		config, err := json.Marshal(map[string]any{
			"ignition": map[string]any{"version": "3.3.0"},
			"storage": map[string]any{"files": []any{map[string]any{
				"path": "/etc/hello", "mode": 0o644,
				"contents": map[string]any{"source": "data:,hello%20from%20ignition%0A"},
			}}},
			"systemd": map[string]any{"units": []any{map[string]any{
				"name": "hello.service", "enabled": true, "contents": unit,
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "ignition.json")
		if err := os.WriteFile(cfg, config, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := ApplyIgnition(ctx, ign, cfg, m.Root(), filepath.Join(dir, "ignition-state")); err != nil {
			t.Fatal(err)
		}
		t.Logf("ignition applied in %s", time.Since(start).Round(time.Millisecond))
		if _, err := os.Lstat(filepath.Join(m.Root(), "etc/systemd/system/multi-user.target.wants/hello.service")); err != nil {
			t.Errorf("hello.service not enabled offline: %v", err)
		}
		if err := m.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		expect(t, ctx, m, "hello from ignition", "cat", "/etc/hello")
		expect(t, ctx, m, "644", "stat", "-c", "%a", "/etc/hello")
		expect(t, ctx, m, "enabled", "systemctl", "is-enabled", "hello.service")
		expect(t, ctx, m, "active", "systemctl", "is-active", "hello.service")
		expect(t, ctx, m, "hello from ignition", "cat", "/run/hello")
	})

	t.Run("cloud-init", func(t *testing.T) {
		m := newMachine(t, 3)
		userData := "#cloud-config\nwrite_files:\n- path: /etc/cloud-hello\n  content: |\n    hello from cloud-init\n" +
			"runcmd:\n- [sh, -c, 'echo ran > /var/tmp/runcmd-ok']\n"
		if err := SeedCloudInit(m.Root(), m.Name(), userData); err != nil {
			t.Fatal(err)
		}
		if err := m.Boot(ctx); err != nil {
			t.Fatal(err)
		}
		status, err := CloudInitStatus(ctx, m)
		t.Logf("cloud-init status:\n%s", status)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(status, "status: done") {
			t.Errorf("cloud-init is not done")
		}
		expect(t, ctx, m, "hello from cloud-init", "cat", "/etc/cloud-hello")
		expect(t, ctx, m, "ran", "cat", "/var/tmp/runcmd-ok")
	})
}

// expect checks that argv prints want (trimmed) in m.
func expect(t *testing.T, ctx context.Context, m *Machine, want string, argv ...string) {
	t.Helper()
	out, err := m.Exec(ctx, argv...)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("%s in %s: %q, want %q", strings.Join(argv, " "), m.Name(), got, want)
		if argv[0] == "systemctl" {
			failed, _ := m.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
			t.Logf("failed units in %s:\n%s", m.Name(), failed)
		}
	}
}

// testNet is a switch network namespace with a bridge, and a network
// namespace per machine with an eth0 on it.
type testNet struct {
	sw string
}

// newTestNet makes the switch namespace sgm-<pid> with br0 at 10.77.0.1/24.
func newTestNet(t *testing.T) *testNet {
	n := &testNet{sw: fmt.Sprintf("sgm-%d", os.Getpid())}
	ipCmd(t, "netns", "add", n.sw)
	t.Cleanup(func() { ipDel(t, n.sw) })
	ipCmd(t, "-n", n.sw, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", n.sw, "addr", "add", "10.77.0.1/24", "dev", "br0")
	ipCmd(t, "-n", n.sw, "link", "set", "br0", "up")
	return n
}

// addr is machine i's address.
func (n *testNet) addr(i int) string { return fmt.Sprintf("10.77.0.%d", 10+i) }

// add makes machine i's namespace sgm-<pid>-<i> and returns its path.
func (n *testNet) add(t *testing.T, i int) string {
	ns := fmt.Sprintf("%s-%d", n.sw, i)
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { ipDel(t, ns) })
	ve := fmt.Sprintf("ve-%d", i)
	ipCmd(t, "link", "add", ve, "netns", n.sw, "type", "veth", "peer", "name", "eth0", "netns", ns)
	ipCmd(t, "-n", n.sw, "link", "set", ve, "master", "br0", "up")
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", ns, "addr", "add", n.addr(i)+"/24", "dev", "eth0")
	ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
	ipCmd(t, "-n", ns, "route", "add", "default", "via", "10.77.0.1")
	return "/run/netns/" + ns
}

// ipCmd runs ip args, failing the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ipDel deletes the network namespace ns, for cleanups.
func ipDel(t *testing.T, ns string) {
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
	}
}
