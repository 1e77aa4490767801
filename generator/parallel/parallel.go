// Package parallel runs independent, indexed pieces of work concurrently. Results are
// written by index, so output order never depends on scheduling.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Do runs f(0) … f(n-1) on GOMAXPROCS workers (CPU-bound work) and returns the error of the
// lowest index that failed, so the error reported is the same on every run.
func Do(n int, f func(i int) error) error { return DoN(n, runtime.GOMAXPROCS(0), f) }

// DoN is Do with a given number of workers (more than the cores for work that waits on
// system calls).
func DoN(n, workers int, f func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, max(workers, 1)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
