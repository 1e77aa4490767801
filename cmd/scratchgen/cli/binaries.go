package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/scratchgen/scratchgen/generator/binaries"
	"github.com/scratchgen/scratchgen/generator/images"
	"github.com/scratchgen/scratchgen/generator/lock"
	"github.com/scratchgen/scratchgen/generator/model"
)

// binariesSubcommands returns the `scratchgen binaries` subcommands.
func binariesSubcommands() []command {
	return []command{
		{"list", "[-f cluster.yaml] [--lock F] [--node NAME]", "print the downloads each node needs and where they go, with their pins (offline)", runBinariesList},
		{"pin", "[-f cluster.yaml] [--lock F]", "download every binary the nodes need and record its SHA-256, SHA-512 and size in the lock (online)", runBinariesPin},
		{"pull", "[-f cluster.yaml] [--lock F] [--cache DIR]", "fetch the pinned binaries into the cache, verifying every hash (online)", runBinariesPull},
	}
}

// runBinaries dispatches `scratchgen binaries SUBCOMMAND`.
func runBinaries(r *runner, args []string) error {
	return r.runGroup("binaries", "list, pin and pull the node binaries of a cluster", binariesSubcommands(),
		"Only pin and pull use the network. Once the lock pins every binary, render carries them\n"+
			"in each node's rootfs/ with --with-binaries (or binaries.embed: true), reading them from\n"+
			"the cache; otherwise Ignition fetches them with their pinned SHA-512 and\n"+
			"install-binaries.sh (scratchgen-binaries.service) downloads and verifies them.\n", args)
}

func runBinariesList(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	node := r.flags.String("node", "", "print only this node's downloads")
	if done, err := r.parseSub("list", args); done || err != nil {
		return err
	}
	c, _, err := r.loadModel(f)
	if err != nil {
		return err
	}
	found := false
	for _, n := range c.Nodes {
		if *node != "" && n.Name != *node {
			continue
		}
		found = true
		fmt.Fprintf(r.io.Out, "%s:\n", n.Name)
		for _, d := range c.Downloads(n) {
			pin := "not pinned"
			if d.Pinned {
				pin = "sha256:" + d.Pin.SHA256
			}
			fmt.Fprintf(r.io.Out, "  %s %s (%s)\n", d.Name, d.URL, pin)
			for _, file := range d.Files {
				if file.Member != "" {
					fmt.Fprintf(r.io.Out, "    %s -> %s\n", file.Member, file.Path)
				} else {
					fmt.Fprintf(r.io.Out, "    -> %s\n", file.Path)
				}
			}
		}
	}
	if !found {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("binaries list: the spec has no node %q", *node)}
	}
	if u := c.UnpinnedBinaries(); len(u) > 0 {
		fmt.Fprintf(r.io.Err, "%s: %d binary download(s) not pinned in %s; until all are, render carries and references none (install them yourself); run `scratchgen binaries pin -f %s`\n", f.spec, len(u), f.lock, f.spec)
	}
	return nil
}

// archiveMembers maps each archive URL the nodes download to the members they extract.
func archiveMembers(c *model.Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range c.Nodes {
		for _, d := range c.Downloads(n) {
			if !d.Archive() || out[d.URL] != nil {
				continue
			}
			for _, file := range d.Files {
				out[d.URL] = append(out[d.URL], file.Member)
			}
		}
	}
	return out
}

func runBinariesPin(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	if done, err := r.parseSub("pin", args); done || err != nil {
		return err
	}
	c, lk, err := r.loadModel(f)
	if err != nil {
		return err
	}
	members := archiveMembers(c)
	check := func(u string, data []byte) error {
		if m := members[u]; len(m) > 0 {
			_, err := binaries.Extract(data, m)
			return err
		}
		return nil
	}
	urls := c.BinaryURLs()
	pins, err := images.PinBinaries(context.Background(), urls, check, r.progress()...)
	if err != nil {
		return &ExitError{Code: 1, Msg: "binaries pin: " + err.Error() + "; the lock is unchanged"}
	}
	if lk == nil {
		lk = lock.New(c.Name)
	}
	out := lk.Clone()
	if out.Binaries == nil {
		out.Binaries = map[string]lock.Binary{}
	}
	for _, u := range urls {
		p := pins[u]
		note := ""
		if old, ok := out.Binaries[u]; !ok {
			note = " (new)"
		} else if old != p {
			note = " (was sha256:" + old.SHA256 + ")"
		}
		fmt.Fprintf(r.io.Out, "%s sha256:%s %d bytes%s\n", u, p.SHA256, p.Size, note)
		out.Binaries[u] = p
	}
	return r.writePins(f, out, fmt.Sprintf("%d binaries", len(urls)))
}

// binaryPins returns the lock's pins of every download the nodes need, or an error
// naming those it does not pin.
func binaryPins(c *model.Cluster, spec string) (map[string]lock.Binary, error) {
	if u := c.UnpinnedBinaries(); len(u) > 0 {
		return nil, fmt.Errorf("the lock pins none of: %s; run `scratchgen binaries pin -f %s` first", strings.Join(u, ", "), spec)
	}
	pins := map[string]lock.Binary{}
	for _, u := range c.BinaryURLs() {
		pins[u] = c.Binaries.Pins[u]
	}
	return pins, nil
}

func runBinariesPull(r *runner, args []string) error {
	f := r.addSpecFlags(false)
	cacheDir := r.flags.String("cache", "", cacheHelp)
	if done, err := r.parseSub("pull", args); done || err != nil {
		return err
	}
	c, _, err := r.loadModel(f)
	if err != nil {
		return err
	}
	pins, err := binaryPins(c, f.spec)
	if err != nil {
		return &ExitError{Code: 1, Msg: "binaries pull: " + err.Error()}
	}
	if *cacheDir == "" {
		if *cacheDir, err = defaultImageCache(); err != nil {
			return err
		}
	}
	pulled, err := images.PullBinaries(context.Background(), pins, *cacheDir, r.progress()...)
	for _, p := range pulled {
		what := fmt.Sprintf("pulled (%d bytes)", p.Pin.Size)
		if p.Cached {
			what = "cached"
		}
		fmt.Fprintf(r.io.Out, "%s sha256:%s %s\n", p.URL, p.Pin.SHA256, what)
	}
	if err != nil {
		return &ExitError{Code: 1, Msg: "binaries pull: " + err.Error()}
	}
	fmt.Fprintf(r.io.Out, "cache %s holds the %d binaries the nodes need, verified\n", *cacheDir, len(pulled))
	return nil
}

// loadBinaries reads, offline and from the cache, every pinned download the nodes need,
// for render --with-binaries and binaries.embed.
func loadBinaries(c *model.Cluster, cacheDir, spec string) (map[string][]byte, error) {
	pins, err := binaryPins(c, spec)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		if cacheDir, err = defaultImageCache(); err != nil {
			return nil, err
		}
	}
	return images.ReadBinaries(cacheDir, pins)
}
