// Command scratchgen renders, offline, per-node bundles for a Kubernetes cluster built
// from scratch. See the README for the spec reference and `scratchgen help` for commands.
package main

import (
	"os"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
