//go:build linux

package machine

import (
	"fmt"
	"os"
	"path/filepath"
)

// removeStale removes the leftovers of interrupted builds: the entries of
// dir whose names match pattern. Call it holding the build's lock.
func removeStale(dir, pattern string) error {
	olds, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return fmt.Errorf("listing stale builds in %s: %w", dir, err)
	}
	for _, o := range olds {
		if err := os.RemoveAll(o); err != nil {
			return fmt.Errorf("removing stale build: %w", err)
		}
	}
	return nil
}
