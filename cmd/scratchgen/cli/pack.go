package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scratchgen/scratchgen/generator/pack"
	"github.com/scratchgen/scratchgen/generator/spec"
)

// runPack is pack: one reproducible archive of each node's rootfs/ for image builders
// (package pack), written outside the bundle after checking that the bundle is intact.
// One line per archive on stdout; the summary on stderr.
func runPack(r *runner, args []string) error {
	specPath := r.flags.StringP("file", "f", "cluster.yaml", "the cluster spec; only its name is read: the bundle is <bundles>/<name>")
	out := r.flags.StringP("bundles", "o", "bundles", "output directory of render; the bundle is <bundles>/<cluster>")
	nodes := r.flags.StringSlice("node", nil, "pack only this node (repeat it, or separate names with commas; default: every node)")
	withSecrets := r.flags.Bool("with-secrets", false, "put the secret files (keys, tokens, kubeconfigs holding them) into the archives, which are then 0600; default: leave them out and list them in nodes/<node>.secrets")
	to := r.flags.String("to", "", "the directory the archives go to (default: packs/<cluster> beside the bundles directory); pack replaces what an earlier pack wrote there")
	if done, err := r.parse("pack", args); done || err != nil {
		return err
	}
	if err := r.noArgs("pack"); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	if r.flags.Changed("to") && strings.TrimSpace(*to) == "" {
		return &ExitError{Code: 1, Msg: "pack: --to is empty: name the directory the archives go to, or leave it out for packs/<cluster> beside the bundles directory"}
	}
	name, err := packCluster(*specPath)
	if err != nil {
		return err
	}
	dir := filepath.Join(*out, name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("pack: bundle %s does not exist; render it first (`scratchgen render -f %s`), or pass the bundles directory with -o", dir, *specPath)}
	}
	if err := checkNoPending(dir); err != nil {
		return &ExitError{Code: 1, Msg: "pack: " + err.Error()}
	}
	warnLeftover(r, dir)
	// A bundle that is not as rendered (*pack.NotIntactError) is refused naming every
	// problem, before anything is written.
	b, err := pack.Open(dir)
	if err != nil {
		return &ExitError{Code: 1, Msg: "pack: " + err.Error()}
	}
	known := b.Nodes()
	for _, n := range *nodes {
		if !slices.Contains(known, n) {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("pack: --node %q: bundle %s has no such node; its nodes: %s", n, dir, strings.Join(known, ", "))}
		}
	}
	target := *to
	if target == "" {
		target = filepath.Join(filepath.Dir(filepath.Clean(*out)), "packs", name)
	}
	results, err := b.Write(target, pack.Options{Nodes: *nodes, WithSecrets: *withSecrets})
	if err != nil {
		return &ExitError{Code: 1, Msg: "pack: " + err.Error()}
	}
	for _, res := range results {
		note := "with its secret files (0600)"
		if !*withSecrets {
			note = fmt.Sprintf("public: %d secret file(s) left out, listed in %s", len(res.Secrets), filepath.Join(target, filepath.FromSlash(res.SecretsPath)))
		}
		fmt.Fprintf(r.io.Out, "%s  sha256:%s  %d bytes  %s\n", filepath.Join(target, filepath.FromSlash(res.Path)), hex.EncodeToString(res.Sum[:]), res.Size, note)
	}
	fmt.Fprintf(r.io.Err, "packed %d node(s) of %s into %s; check them with `cd %s && sha256sum -c %s`\n", len(results), dir, target, target, pack.SumsName)
	if *withSecrets {
		fmt.Fprintf(r.io.Err, "the archives hold private keys and tokens: keep them, and the images built from them, as secret as the bundle's keys\n")
	} else {
		fmt.Fprintf(r.io.Err, "deliver the secret files each nodes/<node>.secrets lists separately, from %s/nodes/<node>/rootfs (see the README), or pack with --with-secrets\n", dir)
	}
	return nil
}

// packCluster reads the cluster name from the spec (nothing else of it): the bundle is
// <bundles>/<name>.
func packCluster(specPath string) (string, error) {
	_, err := readBounded(specPath, "spec", "pack reads the cluster's name from it; pass it with -f", spec.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return "", &ExitError{Code: 1, Msg: "pack: " + err.Error()}
	}
	if err != nil {
		return "", err
	}
	name := clusterName(&specFlags{spec: specPath})
	if name == "" {
		return "", &ExitError{Code: 1, Msg: fmt.Sprintf("pack: cannot read the cluster's name (metadata.name) from spec %s; check it with `scratchgen validate -f %s`", specPath, specPath)}
	}
	return name, nil
}
