//go:build linux

// Command machineimage builds (or reuses) what the machine tests boot and apply: the
// Debian machine image and the Ignition binary, in the e2e cache (see
// e2e/internal/machine), and prints their paths (`make e2e-machine-image`): the machine
// tests build both when the cache lacks them; this builds them up front, as buildbins
// does the Kubernetes binaries. The tests take both from the cache, and wait on the same
// locks if a build is still running.
//
//	go run ./e2e/tools/machineimage -cache e2e/.cache
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scratchgen/scratchgen/e2e/internal/machine"
)

func main() {
	cache := flag.String("cache", "e2e/.cache", "cache directory")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "machineimage: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	image, err := machine.Image(ctx, *cache, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "machineimage: %v\n", err)
		os.Exit(1)
	}
	ignition, err := machine.Ignition(ctx, *cache, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "machineimage: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "machineimage: done in %s\n", time.Since(start).Round(time.Second))
	fmt.Println(image)
	fmt.Println(ignition)
}
