package depsprobe

import (
	_ "github.com/cloudflare/cfssl/signer/local"
	_ "github.com/coreos/butane/config"
	_ "github.com/coreos/ignition/v2/config/v3_5"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/spf13/pflag"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/client-go/tools/clientcmd/api/v1"
	_ "k8s.io/kube-proxy/config/v1alpha1"
	_ "k8s.io/kubelet/config/v1beta1"
	_ "sigs.k8s.io/yaml"
)
