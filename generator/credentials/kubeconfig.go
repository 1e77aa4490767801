package credentials

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"

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
	out, err := marshalKubeconfig(&cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user, err)
	}
	return out, nil
}

// marshalKubeconfig is sigs.k8s.io/yaml.Marshal(cfg), byte for byte. A render writes
// two kubeconfigs per node, and the JSON round trip of sigs.k8s.io/yaml (JSON, parsed
// back into maps, then YAML) was a tenth of a 1,000-node render; so the kubeconfigs
// scratchgen makes (one cluster, user and context, with the fields kubeconfig sets, and
// strings YAML writes unquoted) are written directly, and any other config goes through
// sigs.k8s.io/yaml. TestMarshalKubeconfig holds the two to the same bytes.
func marshalKubeconfig(cfg *clientcmdv1.Config) ([]byte, error) {
	if b, ok := writeKubeconfig(cfg); ok {
		return b, nil
	}
	return yaml.Marshal(cfg)
}

// writeKubeconfig writes cfg as sigs.k8s.io/yaml would (keys sorted, empty optional
// fields left out), or returns false for a config it does not know how to write.
func writeKubeconfig(cfg *clientcmdv1.Config) ([]byte, bool) {
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 {
		return nil, false
	}
	cl, ai, cx := cfg.Clusters[0], cfg.AuthInfos[0], cfg.Contexts[0]
	// Exactly the fields written below: anything else set means the general path.
	known := clientcmdv1.Config{
		Kind: cfg.Kind, APIVersion: cfg.APIVersion, CurrentContext: cfg.CurrentContext,
		Clusters: []clientcmdv1.NamedCluster{{Name: cl.Name, Cluster: clientcmdv1.Cluster{
			Server: cl.Cluster.Server, CertificateAuthorityData: cl.Cluster.CertificateAuthorityData}}},
		AuthInfos: []clientcmdv1.NamedAuthInfo{{Name: ai.Name, AuthInfo: clientcmdv1.AuthInfo{
			ClientCertificateData: ai.AuthInfo.ClientCertificateData, ClientKeyData: ai.AuthInfo.ClientKeyData, Token: ai.AuthInfo.Token}}},
		Contexts: []clientcmdv1.NamedContext{{Name: cx.Name, Context: clientcmdv1.Context{Cluster: cx.Context.Cluster, AuthInfo: cx.Context.AuthInfo}}},
	}
	if !reflect.DeepEqual(&known, cfg) {
		return nil, false
	}
	var b bytes.Buffer
	b.Grow(256 + 4*(len(cl.Cluster.CertificateAuthorityData)+len(ai.AuthInfo.ClientCertificateData)+len(ai.AuthInfo.ClientKeyData))/3)
	ok := true
	// line writes "key: v" at indent, or marks the config for the general path.
	line := func(indent, key, v string, plain bool) {
		if !plain {
			ok = false
			return
		}
		b.WriteString(indent)
		b.WriteString(key)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	str := func(indent, key, v string, optional bool) {
		if v == "" && optional {
			return
		}
		// YAML folds a long plain scalar at a space past column 80.
		line(indent, key, v, plainYAML(v) && !(strings.Contains(v, " ") && len(indent)+len(key)+2+len(v) > 78))
	}
	data := func(indent, key string, v []byte) {
		if len(v) == 0 {
			return
		}
		enc := base64.StdEncoding.EncodeToString(v)
		// Base64 of a PEM block starts "LS0t"; a short one could read as a number or a
		// boolean ("1e10", "true"), which YAML quotes.
		c := enc[0]
		line(indent, key, enc, ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') && !yamlWord(enc))
	}
	str("", "apiVersion", cfg.APIVersion, true)
	b.WriteString("clusters:\n- cluster:\n")
	data("    ", "certificate-authority-data", cl.Cluster.CertificateAuthorityData)
	str("    ", "server", cl.Cluster.Server, false)
	str("  ", "name", cl.Name, false)
	b.WriteString("contexts:\n- context:\n")
	str("    ", "cluster", cx.Context.Cluster, false)
	str("    ", "user", cx.Context.AuthInfo, false)
	str("  ", "name", cx.Name, false)
	str("", "current-context", cfg.CurrentContext, false)
	str("", "kind", cfg.Kind, true)
	b.WriteString("users:\n")
	str("- ", "name", ai.Name, false)
	b.WriteString("  user:")
	if len(ai.AuthInfo.ClientCertificateData)+len(ai.AuthInfo.ClientKeyData)+len(ai.AuthInfo.Token) == 0 {
		b.WriteString(" {}")
	}
	b.WriteByte('\n')
	data("    ", "client-certificate-data", ai.AuthInfo.ClientCertificateData)
	data("    ", "client-key-data", ai.AuthInfo.ClientKeyData)
	str("    ", "token", ai.AuthInfo.Token, true)
	if !ok {
		return nil, false
	}
	return b.Bytes(), true
}

// plainYAML reports whether YAML (go-yaml v2, as sigs.k8s.io/yaml uses it) writes s
// unquoted: a conservative test that only passes strings starting with a letter, made of
// letters, digits, ".:/@_-" and single spaces between other characters (not after ':'),
// not ending in ':', and not a YAML 1.1 boolean or null. (The caller keeps strings with
// spaces short: YAML folds long ones.) Whatever it refuses goes through
// sigs.k8s.io/yaml, so refusing too much costs only time.
func plainYAML(s string) bool {
	if s == "" || s[len(s)-1] == ':' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") || strings.Contains(s, ": ") {
		return false
	}
	c := s[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".:/@_- ", c) >= 0) {
			return false
		}
	}
	return !yamlWord(s)
}

// yamlWord reports whether s, in any case, is a YAML 1.1 boolean or null.
func yamlWord(s string) bool {
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "null":
		return true
	}
	return false
}
