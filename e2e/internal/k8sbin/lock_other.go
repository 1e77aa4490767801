//go:build !unix

package k8sbin

import "context"

// lockFile is a no-op where flock is unavailable; concurrent builds into the
// same cache are then unsupported.
func lockFile(ctx context.Context, path string, onWait func()) (func(), error) {
	return func() {}, ctx.Err()
}
