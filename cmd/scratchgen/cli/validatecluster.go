package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/livecheck"
	"github.com/scratchgen/scratchgen/generator/render"
)

// runValidateCluster is validate-cluster: the guide's last step, online and read-only. It
// resolves the spec with its lock (the pod ranges the nodes must run with come from it)
// and checks the running cluster against it (package livecheck): one line per problem on
// stdout and the summary on stderr with exit 1, or the summary on stdout and exit 0.
func runValidateCluster(r *runner, args []string) error {
	const name = "validate-cluster"
	f := r.addSpecFlags(false)
	kubeconfig := r.flags.String("kubeconfig", "", "the kubeconfig to reach the cluster with (default: <bundles>/<cluster>/admin/admin.kubeconfig)")
	bundles := r.flags.StringP("bundles", "o", "bundles", "output directory of render, where the default kubeconfig is")
	format := r.flags.String("output", "text", "text (one line per problem, then a summary), or json for tools")
	timeout := r.flags.Duration("timeout", 30*time.Second, "timeout of each request to the cluster")
	if done, err := r.parse(name, args); done || err != nil {
		return err
	}
	if err := r.noArgs(name); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: --output %q is not text or json (the bundle directory is -o/--bundles)", name, *format)}
	}
	if *timeout <= 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: --timeout %s must be positive, e.g. 30s; it bounds each request to the cluster", name, *timeout)}
	}
	if *kubeconfig == "" && strings.TrimSpace(*bundles) == "" {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: -o is empty: name the directory bundles go to (default bundles), or pass --kubeconfig", name)}
	}
	res, lk, err := r.resolve(f, "", render.ResolveOptions{})
	if err != nil {
		return err
	}
	c := res.Cluster
	if lk == nil {
		fmt.Fprintf(r.io.Err, "%s: warning: no lock %s: the nodes' pod ranges are the ones a first render would allocate; pass the lock the cluster was rendered with (--lock)\n", f.spec, f.lock)
	}
	path := *kubeconfig
	if path == "" {
		path = filepath.Join(*bundles, c.Name, "admin", "admin.kubeconfig")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		hint := "pass the kubeconfig with --kubeconfig"
		if *kubeconfig == "" {
			hint = fmt.Sprintf("render the bundle first (`scratchgen render -f %s`) or pass --kubeconfig", f.spec)
		}
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: kubeconfig %s does not exist; %s", name, path, hint)}
	}
	cl, err := livecheck.Connect(path, *timeout)
	if err != nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: %v", name, err)}
	}
	rep, err := livecheck.Run(context.Background(), cl, c)
	if err != nil {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s: cluster %s: %v", name, c.Name, err)}
	}
	if *format == "json" {
		err = rep.WriteJSON(r.io.Out)
	} else {
		err = rep.WriteText(r.io.Out)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return &ExitError{Code: 1, Msg: rep.Summary()}
	}
	return nil
}
