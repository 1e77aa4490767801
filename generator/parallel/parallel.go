// Package parallel runs independent, indexed pieces of work on every core. Results are
// written by index, so output order never depends on scheduling.
package parallel

import (
	"runtime"
	"sync"
)

// Do runs f(0) … f(n-1) on GOMAXPROCS workers and returns the error of the lowest index
// that failed, so the error reported is the same on every run.
func Do(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < min(runtime.GOMAXPROCS(0), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs[i] = f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
