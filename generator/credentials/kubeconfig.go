package credentials

import (
	"fmt"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// kubeconfig renders a kubeconfig for the identity id (its certificate and key are
// embedded) talking to server; token, when set, is added as a bearer token.
func (p *planner) kubeconfig(server string, id ID, user, token string) ([]byte, error) {
	is, ok := p.issued[id]
	if !ok {
		return nil, fmt.Errorf("kubeconfig for %s: identity %s was not issued", user, id)
	}
	cluster := p.c.Name
	ctx := user + "@" + cluster
	cfg := clientcmdv1.Config{
		Kind:       "Config",
		APIVersion: "v1",
		Clusters: []clientcmdv1.NamedCluster{{Name: cluster, Cluster: clientcmdv1.Cluster{
			Server:                   server,
			CertificateAuthorityData: p.issued[CA].certPEM,
		}}},
		AuthInfos: []clientcmdv1.NamedAuthInfo{{Name: user, AuthInfo: clientcmdv1.AuthInfo{
			ClientCertificateData: is.certPEM,
			ClientKeyData:         is.keyPEM,
			Token:                 token,
		}}},
		Contexts:       []clientcmdv1.NamedContext{{Name: ctx, Context: clientcmdv1.Context{Cluster: cluster, AuthInfo: user}}},
		CurrentContext: ctx,
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user, err)
	}
	return out, nil
}
