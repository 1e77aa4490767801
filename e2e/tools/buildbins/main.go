// Command buildbins builds Kubernetes and etcd binaries from Go modules into
// the e2e cache (see e2e/internal/k8sbin) and prints the directory holding them.
//
//	go run ./e2e/tools/buildbins -k8s v1.36.3 -etcd v3.6.8
//	go run ./e2e/tools/buildbins -k8s v1.35.4 -components kube-apiserver,kube-controller-manager,kube-scheduler
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"github.com/scratchgen/scratchgen/generator/versions"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scratchgen/scratchgen/e2e/internal/k8sbin"
)

const repoModule = "github.com/scratchgen/scratchgen"

func main() {
	k8s := flag.String("k8s", "v1.36.3", "Kubernetes version (v1.Y.Z)")
	etcd := flag.String("etcd", "", "etcd version (v3.Y.Z); default: the etcd scratchgen pins for the Kubernetes minor")
	cache := flag.String("cache", "", "cache directory (default <repo>/e2e/.cache)")
	components := flag.String("components", strings.Join(append(append([]string{}, k8sbin.KubernetesComponents...), "etcd"), ","),
		"comma-separated components: "+strings.Join(append(append([]string{}, k8sbin.KubernetesComponents...), k8sbin.EtcdComponents...), ","))
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "buildbins: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *cache == "" {
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "buildbins: %v; pass -cache\n", err)
			os.Exit(2)
		}
		*cache = filepath.Join(root, "e2e", ".cache")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	dir, err := k8sbin.Build(ctx, k8sbin.Options{
		Kubernetes: *k8s,
		Etcd:       etcdFor(*k8s, *etcd),
		CacheDir:   *cache,
		Components: strings.Split(*components, ","),
		Log:        os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildbins: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "buildbins: done in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Println(dir)
}

// repoRoot walks up from the working directory to the scratchgen module root.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+repoModule+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the %s module", repoModule)
		}
		dir = parent
	}
}

// etcdFor returns the etcd version to build: the flag, or the one scratchgen's version
// table pins for the Kubernetes minor.
func etcdFor(k8s, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	v, err := versions.Parse(k8s)
	if err != nil {
		return ""
	}
	p, err := versions.Lookup(v)
	if err != nil {
		return ""
	}
	return "v" + p.Etcd
}
