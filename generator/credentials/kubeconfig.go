package credentials

import (
	"fmt"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// kubeconfig renders a kubeconfig for user (its certificate and key are embedded)
// talking to server and trusting the CA certificates trust; token, when set, is added as
// a bearer token.
func (p *planner) kubeconfig(server, user string, trust, certPEM, keyPEM []byte, token string) ([]byte, error) {
	cluster := p.c.Name
	ctx := user + "@" + cluster
	cfg := clientcmdv1.Config{
		Kind:       "Config",
		APIVersion: "v1",
		Clusters: []clientcmdv1.NamedCluster{{Name: cluster, Cluster: clientcmdv1.Cluster{
			Server:                   server,
			CertificateAuthorityData: trust,
		}}},
		AuthInfos: []clientcmdv1.NamedAuthInfo{{Name: user, AuthInfo: clientcmdv1.AuthInfo{
			ClientCertificateData: certPEM,
			ClientKeyData:         keyPEM,
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
