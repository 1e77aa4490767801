//go:build linux

package machine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// cloudInitDisabled is the image's flag file that keeps cloud-init off.
const cloudInitDisabled = "etc/cloud/cloud-init.disabled"

// SeedCloudInit writes a NoCloud seed with the given instance id (also the
// local hostname) and user data into the machine root root and turns
// cloud-init on, so that it runs on the machine's next boot.
func SeedCloudInit(root, instanceID, userData string) error {
	seed := filepath.Join(root, "var/lib/cloud/seed/nocloud")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		return fmt.Errorf("seeding cloud-init in %s: %w", root, err)
	}
	meta := fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", instanceID, instanceID)
	if err := os.WriteFile(filepath.Join(seed, "meta-data"), []byte(meta), 0o644); err != nil {
		return fmt.Errorf("seeding cloud-init in %s: %w", root, err)
	}
	if err := os.WriteFile(filepath.Join(seed, "user-data"), []byte(userData), 0o600); err != nil {
		return fmt.Errorf("seeding cloud-init in %s: %w", root, err)
	}
	if err := os.Remove(filepath.Join(root, cloudInitDisabled)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("seeding cloud-init in %s: %w", root, err)
	}
	return nil
}

// CloudInitStatus waits for cloud-init to finish in the booted machine m and
// returns `cloud-init status --long`; the error (with the status) is set
// unless cloud-init finished without errors.
func CloudInitStatus(ctx context.Context, m *Machine) (string, error) {
	out, err := m.Exec(ctx, "cloud-init", "status", "--long", "--wait")
	if err != nil {
		return out, fmt.Errorf("cloud-init status in %s: %w", m.Name(), err)
	}
	return out, nil
}
