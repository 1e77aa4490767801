//go:build linux

package machine

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// cgroupSet is a machine's own cgroup, mach-<name>, in every mounted
// hierarchy, beside the calling process's cgroups. With --keep-unit nspawn
// puts the machine into <launcher cgroup>/payload and the machine's v1
// cgroup namespaces are rooted at the launcher's cgroups, so each machine
// needs a launcher cgroup of its own.
type cgroupSet struct {
	dirs []string
}

// cgroupMount is a mounted cgroup hierarchy.
type cgroupMount struct {
	root, point string
	v2          bool
	opts        []string // super options: controllers and name=...
}

// newCgroupSet creates mach-<name> in every hierarchy the calling process
// belongs to, first removing a leftover of an earlier run.
func newCgroupSet(name string) (*cgroupSet, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("creating cgroups for %s: %w", name, err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("creating cgroups for %s: %w", name, err)
	}
	s := &cgroupSet{}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		m := findMount(mounts, parts[1])
		if m == nil || !strings.HasPrefix(parts[2], m.root) {
			continue // not mounted here, or mounted below our cgroup
		}
		rel := strings.TrimPrefix(parts[2], m.root)
		d := filepath.Join(m.point, rel, "mach-"+name)
		if err := removeTree(d); err != nil {
			s.remove()
			return nil, fmt.Errorf("creating cgroups for %s: leftover: %w", name, err)
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			s.remove()
			return nil, fmt.Errorf("creating cgroups for %s: %w", name, err)
		}
		s.dirs = append(s.dirs, d)
		if !m.v2 && slices.Contains(m.opts, "cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				if err == nil {
					err = os.WriteFile(filepath.Join(d, f), v, 0o644)
				}
				if err != nil {
					s.remove()
					return nil, fmt.Errorf("creating cgroups for %s: %w", name, err)
				}
			}
		}
	}
	if len(s.dirs) == 0 {
		return nil, fmt.Errorf("creating cgroups for %s: no cgroup hierarchy is mounted", name)
	}
	return s, nil
}

// wrap returns argv prefixed by a shell that moves itself into the set's
// cgroups and then execs argv, so that the command and all its children
// start inside them.
func (s *cgroupSet) wrap(argv []string) []string {
	const script = `while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"`
	out := []string{"sh", "-c", script, "sh"}
	for _, d := range s.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	out = append(out, "--")
	return append(out, argv...)
}

// remove removes the set's cgroups depth-first, waiting a little for exiting
// processes to leave them.
func (s *cgroupSet) remove() error {
	var errs []error
	for _, d := range s.dirs {
		if err := removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing cgroups: %w", err)
	}
	return nil
}

// removeTree removes the cgroup directory d and its children, deepest
// first. A missing d is not an error.
func removeTree(d string) error {
	var dirs []string
	err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return &fs.PathError{Op: "rmdir", Path: dirs[i], Err: err}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// cgroupMounts lists the cgroup and cgroup2 mounts of the calling process.
func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		ms = append(ms, cgroupMount{
			root: unescapeMountinfo(a[3]), point: unescapeMountinfo(a[4]),
			v2: b[0] == "cgroup2", opts: strings.Split(b[2], ","),
		})
	}
	return ms, sc.Err()
}

// findMount returns the mount of the hierarchy whose controllers field in
// /proc/self/cgroup is controllers ("" for cgroup2, "cpu,cpuacct",
// "name=systemd"), or nil.
func findMount(ms []cgroupMount, controllers string) *cgroupMount {
	for i := range ms {
		m := &ms[i]
		if controllers == "" {
			if m.v2 {
				return m
			}
			continue
		}
		if m.v2 {
			continue
		}
		all := true
		for _, c := range strings.Split(controllers, ",") {
			all = all && slices.Contains(m.opts, c)
		}
		if all {
			return m
		}
	}
	return nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
