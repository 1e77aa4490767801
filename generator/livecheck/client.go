package livecheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// GetFunc performs GET path (with its query) on server, an https://host:port base URL,
// or on the kubeconfig's server when server is "", with the kubeconfig's CA and
// credentials. It returns the HTTP status and the body; err is for requests that got no
// answer (connection refused, TLS failure, timeout).
type GetFunc func(ctx context.Context, server, path string) (status int, body []byte, err error)

// Client is how Run reaches the cluster.
type Client struct {
	// Kube reads objects.
	Kube kubernetes.Interface
	// Get performs raw GET requests.
	Get GetFunc
	// Server is the kubeconfig's server URL and Source the kubeconfig's path; both only
	// name things in problems.
	Server, Source string
	// Timeout bounds each request (0: no bound but the caller's context).
	Timeout time.Duration
}

// maxBody bounds the body of a raw GET read into memory (health and configz answers are
// a few kilobytes).
const maxBody = 4 << 20

// Connect builds a Client from a kubeconfig file (clientcmd.BuildConfigFromFlags), each
// request bounded by timeout.
func Connect(kubeconfig string, timeout time.Duration) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = timeout
	// A few requests per node: do not let client-side throttling stretch a large cluster's check.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "scratchgen-validate-cluster"
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// The same transport (CA, client certificate, token) for raw requests: to the
	// kubeconfig's server and, directly, to each control-plane node's address.
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	host = strings.TrimRight(host, "/")
	get := func(ctx context.Context, server, path string) (int, []byte, error) {
		base := host
		if server != "" {
			base = strings.TrimRight(server, "/")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Accept", "application/json, */*")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return resp.StatusCode, nil, fmt.Errorf("reading the answer of GET %s: %w", base+path, err)
		}
		return resp.StatusCode, body, nil
	}
	return &Client{Kube: kube, Get: get, Server: host, Source: kubeconfig, Timeout: timeout}, nil
}

// bounded returns ctx bounded by the per-request timeout.
func (cl *Client) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if cl.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, cl.Timeout)
}

// get is cl.Get bounded by the per-request timeout.
func (cl *Client) get(ctx context.Context, server, path string) (int, []byte, error) {
	ctx, cancel := cl.bounded(ctx)
	defer cancel()
	return cl.Get(ctx, server, path)
}
