package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// requestTimeout bounds every API call of the checks.
const requestTimeout = 10 * time.Second

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), requestTimeout)
}

// Client is a clientset for one rendered credential, with where it came from.
type Client struct {
	*kubernetes.Clientset
	Config *rest.Config
	Source string // the kubeconfig file, or a description of the credential
}

// KubeconfigClient loads a rendered kubeconfig as is. It refuses a kubeconfig that does
// not verify the server: the checks need full TLS verification of the CA and the SAN.
func KubeconfigClient(file string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", file)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", file, err)
	}
	if cfg.Insecure {
		return nil, fmt.Errorf("kubeconfig %s sets insecure-skip-tls-verify", file)
	}
	if len(cfg.CAData) == 0 && cfg.CAFile == "" {
		return nil, fmt.Errorf("kubeconfig %s has no certificate-authority(-data): the server could not be verified", file)
	}
	return newClient(cfg, file)
}

// TokenClient authenticates with a bearer token only, verifying the server with ca.
func TokenClient(server string, ca []byte, token, source string) (*Client, error) {
	return newClient(&rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, source)
}

func newClient(cfg *rest.Config, source string) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", source, err)
	}
	return &Client{Clientset: cs, Config: cfg, Source: source}, nil
}

// WhoAmI asks the API server who the credential is (SelfSubjectReview).
func (c *Client) WhoAmI() (authnv1.UserInfo, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, fmt.Errorf("SelfSubjectReview with %s: %w", c.Source, err)
	}
	return r.Status.UserInfo, nil
}

// ExpectUser checks that the credential authenticates as user with (at least) groups.
func (c *Client) ExpectUser(user string, groups ...string) error {
	ui, err := c.WhoAmI()
	if err != nil {
		return err
	}
	if ui.Username != user {
		return fmt.Errorf("%s authenticates as %q (groups %v), want %q", c.Source, ui.Username, ui.Groups, user)
	}
	for _, g := range groups {
		if !contains(ui.Groups, g) {
			return fmt.Errorf("%s authenticates as %q in groups %v, want group %q among them", c.Source, ui.Username, ui.Groups, g)
		}
	}
	return nil
}

// ApplyDir creates every object of every *.yaml/*.yml/*.json file in dir (sorted by
// name, documents in file order), as `kubectl apply -f dir` does on a fresh cluster.
// Objects that already exist are left alone.
func (c *Client) ApplyDir(dir string) (created []string, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" && ext != ".json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return created, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return created, fmt.Errorf("%s: document %d: %w", f, i, err)
			}
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return created, fmt.Errorf("%s: document %d: %w", f, i, err)
			}
			if len(obj) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			name := fmt.Sprintf("%s %s/%s (%s)", u.GetKind(), u.GetNamespace(), u.GetName(), filepath.Base(f))
			gvk := u.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return created, fmt.Errorf("%s: %w", name, err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ns := u.GetNamespace()
				if ns == "" {
					ns = metav1.NamespaceDefault
				}
				ri = dyn.Resource(m.Resource).Namespace(ns)
			}
			ctx, cancel := ctxTimeout()
			_, err = ri.Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			cancel()
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return created, fmt.Errorf("creating %s: %w", name, err)
			}
			created = append(created, name)
		}
	}
	return created, nil
}

// flagValue returns the value of --name in a container's command and args.
func flagValue(pod *corev1.Pod, name string) (string, bool) {
	ctr := pod.Spec.Containers[0]
	argv := append(append([]string{}, ctr.Command...), ctr.Args...)
	for i, a := range argv {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(argv) {
			return argv[i+1], true
		}
	}
	return "", false
}

// mutualTLS is a client TLS config from bundle files: a certificate and key, and the CA
// that must have signed the server's certificate (verified, with its SAN).
func mutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading %s / %s: %w", certFile, keyFile, err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
