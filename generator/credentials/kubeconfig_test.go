package credentials

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// TestMarshalKubeconfig holds the direct kubeconfig writer to sigs.k8s.io/yaml's bytes,
// for the strings kubeconfigs carry and for random ones (which mostly take the general
// path: the writer must refuse what it would write differently), and checks that the
// kubeconfigs a render makes do take the direct path.
func TestMarshalKubeconfig(t *testing.T) {
	cfg := func(cluster, server, user, token string, ca, cert, key []byte) *clientcmdv1.Config {
		ctx := user + "@" + cluster
		return &clientcmdv1.Config{Kind: "Config", APIVersion: "v1",
			Clusters:       []clientcmdv1.NamedCluster{{Name: cluster, Cluster: clientcmdv1.Cluster{Server: server, CertificateAuthorityData: ca}}},
			AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: user, AuthInfo: clientcmdv1.AuthInfo{ClientCertificateData: cert, ClientKeyData: key, Token: token}}},
			Contexts:       []clientcmdv1.NamedContext{{Name: ctx, Context: clientcmdv1.Context{Cluster: cluster, AuthInfo: user}}},
			CurrentContext: ctx,
		}
	}
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIBgDCCASegAwIBAgIQWab\n-----END CERTIFICATE-----\n")
	check := func(t *testing.T, c *clientcmdv1.Config) bool {
		t.Helper()
		want, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalKubeconfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("kubeconfig differs from sigs.k8s.io/yaml's:\n--- got\n%s--- want\n%s", got, want)
		}
		_, direct := writeKubeconfig(c)
		return direct
	}

	// What a render writes: every one of these takes the direct path.
	for _, c := range []*clientcmdv1.Config{
		cfg("scale", "https://api.scale.example.com:6443", "system:node:w-1", "vidPf248ttXp0zzR9Db0pbHqBdh5f8OO", pem, pem, pem),
		cfg("demo", "https://10.0.0.10:6443", "kubernetes-admin", "", pem, pem, pem),
		cfg("my_cluster.v2", "https://127.0.0.1:6443", "system:kube-proxy", "", pem, pem, nil),
		cfg("c", "https://lb.internal", "system:kube-controller-manager", "", nil, nil, nil),
		cfg("c", "https://x", "u", "tok", bytes.Repeat(pem, 40), nil, nil),
	} {
		if !check(t, c) {
			t.Errorf("a kubeconfig as a render writes it took the general path:\n%+v", c)
		}
	}

	// Strings YAML quotes, or that only look plain: each either written right or refused.
	for _, s := range []string{"", "yes", "Yes", "ON", "off", "n", "Null", "null", "~", "1abc", "123", "0x1p3", "1e5",
		"a b", "a:", "a: b", "a #b", "a#b", "-a", "a-", "a:b", ".inf", "@a", "a@b", "a,b", "a[0]", "a{", "'a'", "\"a\"",
		"a\nb", "https://[fd00::1]:6443", "é", "a=b", "a+b", "a/b", "A_B", "true1", "no-way", "y.y", "2001-12-14",
		"12:30:00", "a\tb", "a%b", "!a", "&a", "*a", "|a", ">a", "?a", "%a", "`a"} {
		check(t, cfg(s, "https://"+s, s, s, pem, pem, pem))
		check(t, cfg("c", s, "u", "t", pem, pem, pem))
		check(t, cfg("c", "https://x", s, "", nil, pem, pem))
		check(t, cfg("c", "https://x", "u", s, nil, nil, nil))
	}
	// Short data whose base64 reads as a number or a boolean ("1e10", "true", "yes=").
	for _, b64 := range []string{"1e10", "1234", "true", "yes=", "+abc", "/abc", "null"} {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		check(t, cfg("c", "https://x", "u", "", raw, raw, raw))
	}

	// Random strings and data.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcyesnoYESNOtruefalsenull0123456789-_.:/@#=+ ,[]{}'\"!&*|>?%`~\\\t"
	word := func() string {
		b := make([]byte, rng.IntN(12))
		if rng.IntN(4) == 0 { // long, with spaces: YAML folds some
			b = make([]byte, 60+rng.IntN(60))
		}
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	blob := func() []byte {
		b := make([]byte, rng.IntN(3)*rng.IntN(400))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	for i := 0; i < 5000; i++ {
		check(t, cfg(word(), word(), word(), word(), blob(), blob(), blob()))
	}

	// Words with spaces, short and long, as the derivation labels the versions of
	// kubeconfigs are computed with ("token <label>").
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789/.:-@ "
	phrase := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		b[0] = 't'
		return string(b)
	}
	for i := 0; i < 5000; i++ {
		check(t, cfg("c", "https://x", "u", phrase(1+rng.IntN(120)), pem, pem, pem))
		check(t, cfg(phrase(1+rng.IntN(80)), "https://x", phrase(1+rng.IntN(80)), "", pem, pem, pem))
	}
	if !check(t, cfg("scale", "https://x", "system:node:w-1", "token scratchgen/v1 token system:node:w-1 1", pem, pem, pem)) {
		t.Error("a kubeconfig with a token label took the general path")
	}

	// Anything else set: the general path.
	c := cfg("c", "https://x", "u", "", pem, pem, pem)
	c.Clusters[0].Cluster.TLSServerName = "x"
	if check(t, c) {
		t.Error("a kubeconfig with a field the direct writer does not write took the direct path")
	}
	c = cfg("c", "https://x", "u", "", pem, pem, pem)
	c.Preferences.Colors = true
	if check(t, c) {
		t.Error("a kubeconfig with preferences took the direct path")
	}
}
