//go:build !unix

package k8sbin

import "context"

// LockFile is a no-op where flock is unavailable; concurrent builds into the
// same cache are then unsupported.
func LockFile(ctx context.Context, path string, onWait func()) (func(), error) {
	return func() {}, ctx.Err()
}
