// Package cli is scratchgen's command line: Run(args, stdio) with a private pflag set per
// command, so that tests drive it exactly as users do. Exit codes: 0 ok, 1 error,
// 2 "changes" (render --check, diff).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Version is set at build time with -ldflags "-X .../cli.Version=…".
var Version = "dev"

// Stdio are the streams a command uses.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Env is what commands take from the world; tests replace it.
type Env struct {
	// Now is the clock (recorded in the lock for certificates issued the first time).
	Now func() time.Time
	// Random fills a new root secret.
	Random io.Reader
	// Getenv reads the environment ($SCRATCHGEN_SECRET, $SCRATCHGEN_AGE_IDENTITY); nil
	// reads nothing.
	Getenv func(string) string
	// RenderCache is the render cache's directory (see renderCache); "" disables it.
	RenderCache string
}

// ExitError ends a command with a specific exit code; Msg (if any) goes to stderr.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// exitChanges is the "something differs" result of render --check and diff.
var exitChanges = &ExitError{Code: 2}

type command struct {
	name, args, short string
	run               func(r *runner, args []string) error
}

type runner struct {
	io    Stdio
	env   Env
	flags *pflag.FlagSet
	// group and subs are the command group being run (images, binaries) and its
	// subcommands, for parseSub.
	group string
	subs  []command
}

func commands() []command {
	return []command{
		{"init", "[--name NAME]", "print a complete, commented example spec", runInit},
		{"validate", "[-f cluster.yaml]", "check a spec; print every problem with its field path", runValidate},
		{"render", "[-f cluster.yaml] [-o bundles] [--lock F] [--secret F] [--check]", "render the bundle (offline)", runRender},
		{"diff", "[-f cluster.yaml] [-o bundles] [--lock F] [--secret F] [--output text|json]", "show what render would change in the bundle, per node, without secrets (exit 2 on changes)", runDiff},
		{"plan", "[-f cluster.yaml] [-o bundles] [--output text|json]", "the runbook of what render would change on running nodes: etcd members added or removed one at a time, upgrades in waves, the rollout order and every command", runPlan},
		{"certs", "status [-f cluster.yaml] [--warn-within 30d] | renew (NAME… | --all | --expiring-within 30d) | rotate-ca (cluster|etcd|front-proxy) [--next] | rotate-sa [--next]", "list certificates with their expiry; renew them (CAs keep their keys); rotate a CA or the service-account key in three reviewable stages", runCerts},
		{"verify", "[BUNDLE_DIR] [--require-pinned] [--at TIME]", "check a rendered bundle without the spec or secret: PKI, kubeconfigs, tokens, references, modes, views (exit 1 on problems)", runVerify},
		{"pack", "[-f cluster.yaml] [-o bundles] [--node N]... [--with-secrets] [--to DIR]", "write one reproducible archive per node of an intact bundle for image builders: nodes/<node>.tar.gz of its rootfs (sorted, root-owned, fixed time, exact modes), secrets only with --with-secrets", runPack},
		{"validate-cluster", "[-f cluster.yaml] [--kubeconfig F] [--output text|json]", "check a running cluster against the spec (online, read-only): nodes Ready with their identities and pod ranges, control plane, API servers, etcd, DNS", runValidateCluster},
		{"secret", "encrypt (--recipient age1… | --recipients-file F) [-f cluster.yaml] [--secret F] [-o F]", "write the root secret age-encrypted, to commit it beside the spec", runSecret},
		{"images", "list|pin|pull [-f cluster.yaml] [--lock F] [--cache DIR] [--insecure]", "list the images each node needs; pin them by digest and pull them (online)", runImages},
		{"binaries", "list|pin|pull [-f cluster.yaml] [--lock F] [--cache DIR]", "list the binaries each node needs (kubelet, kube-proxy, extras); pin them by SHA-256 and SHA-512 and pull them (online)", runBinaries},
		{"version", "", "print scratchgen's version and the supported Kubernetes minors", runVersion},
		{"help", "[COMMAND]", "show help", nil},
	}
}

// Main runs a command and returns its exit code, printing errors to stdio.Err.
func Main(args []string, stdio Stdio) int {
	return Exit(Run(args, stdio, DefaultEnv()), stdio)
}

// DefaultEnv is the real world.
func DefaultEnv() Env {
	return Env{Now: time.Now, Random: cryptoRand, Getenv: os.Getenv, RenderCache: defaultRenderCache()}
}

// defaultRenderCache is ($XDG_CACHE_HOME or ~/.cache)/scratchgen; $SCRATCHGEN_RENDER_CACHE
// names another directory, or turns the cache off with "off".
func defaultRenderCache() string {
	switch v := os.Getenv("SCRATCHGEN_RENDER_CACHE"); v {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "scratchgen")
	default:
		return v
	}
}

// Exit maps Run's error to an exit code, printing the message.
func Exit(err error, stdio Stdio) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintln(stdio.Err, "scratchgen:", ee.Msg)
		}
		return ee.Code
	}
	fmt.Fprintln(stdio.Err, "scratchgen:", err)
	return 1
}

// Run executes one command line. It never calls os.Exit and never panics on bad input.
func Run(args []string, stdio Stdio, env Env) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (please report it): %v", p)
		}
	}()
	if len(args) == 0 {
		// No command: usage on stderr and exit 2, so scripts notice.
		usage(stdio.Err)
		return &ExitError{Code: 2}
	}
	if args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		if len(args) > 1 && args[1] != "--help" && args[1] != "-h" {
			return help(stdio.Out, args[1])
		}
		usage(stdio.Out)
		return nil
	}
	if args[0] == "--version" {
		args[0] = "version"
	}
	for _, c := range commands() {
		if c.name != args[0] || c.run == nil {
			continue
		}
		r := &runner{io: stdio, env: env, flags: pflag.NewFlagSet(c.name, pflag.ContinueOnError)}
		r.flags.SetOutput(io.Discard)
		r.flags.SortFlags = false
		r.flags.Usage = func() {}
		return c.run(r, args[1:])
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("unknown command %q; run `scratchgen help`", args[0])}
}

// parse parses flags, handling --help.
func (r *runner) parse(name string, args []string) (bool, error) {
	help := r.flags.BoolP("help", "h", false, "show this help")
	if err := r.flags.Parse(args); err != nil {
		return false, &ExitError{Code: 1, Msg: fmt.Sprintf("%s: %v; run `scratchgen %s --help`", name, err, name)}
	}
	if *help {
		printCommandHelp(r.io.Out, name, r.flags)
		return true, nil
	}
	return false, nil
}

func (r *runner) noArgs(name string) error {
	if r.flags.NArg() > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%s takes no arguments, got %q; run `scratchgen %s --help`", name, strings.Join(r.flags.Args(), " "), name)}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, "scratchgen renders offline, reproducible per-node bundles for a Kubernetes cluster built from scratch.\n\nUsage:\n  scratchgen COMMAND [flags]\n\nCommands:\n")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.short)
	}
	fmt.Fprint(w, "\nRun `scratchgen COMMAND --help` for a command's flags.\nExit codes: 0 ok, 1 error, 2 changes (render --check, diff) or expiring certificates (certs status --warn-within).\n")
}

func help(w io.Writer, name string) error {
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return Run([]string{name, "--help"}, Stdio{Out: w, Err: w}, DefaultEnv())
		}
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("unknown command %q; run `scratchgen help`", name)}
}

func printCommandHelp(w io.Writer, name string, fs *pflag.FlagSet) {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(w, "scratchgen %s: %s\n\nUsage:\n  scratchgen %s %s\n\nFlags:\n", c.name, c.short, c.name, c.args)
		}
	}
	fmt.Fprint(w, fs.FlagUsages())
}

// readFile reads a file, naming it in errors and saying what to do when it is missing.
func readFile(path, what, hint string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s does not exist; %s", what, path, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	return data, nil
}
