package credentials

import (
	"fmt"
	"strings"
)

// StageInfo describes one stage of a staged rotation: what its render changes, and what
// must hold before it is delivered. The CLI prints it when a rotation starts or
// advances, and the README's runbooks are tested against it.
type StageInfo struct {
	Stage int
	Name  string
	// Renders is what the render of the stage changes in the bundle.
	Renders string
	// Before is what must be true before the stage is delivered ("" when nothing).
	Before string
}

// RotationStages returns the three stages of the rotation of id (a CA or SA).
func RotationStages(id ID) []StageInfo {
	if id == SA {
		return []StageInfo{
			{StageTrustBoth, StageName(StageTrustBoth),
				"sa.pub holds the old and the new public key, so the API servers accept tokens signed with either; sa.key still signs with the old key; the API servers restart (they read the keys at start)", ""},
			{StageReissue, StageName(StageReissue),
				"sa.key is the new key: the API servers and the controller manager sign new tokens with it; tokens signed with the old key still verify", "every API server runs stage 1 (accepts the new key)"},
			{StageRetire, StageName(StageRetire),
				"sa.pub holds only the new key: tokens signed with the old key stop working",
				"stage 2 runs everywhere and every token in use was issued after it: the kubelet refreshes projected tokens at 80 % of their lifetime or after 24 hours, so wait at least 24 hours, or restart the pods that talk to the API server (e.g. `kubectl -n kube-system rollout restart deployment coredns`); copies of tokens made elsewhere are not refreshed, and legacy token Secrets must be regenerated (delete their token: the controller manager fills it again)"},
		}
	}
	var trust, leaves, extra string
	switch id {
	case CA:
		trust = "ca.crt and every kubeconfig's certificate-authority-data"
		leaves = "every certificate of the cluster CA (the API server's serving and kubelet-client certificates, the kubelets' serving and client certificates, the admin and component kubeconfigs)"
		extra = "; the controller manager signs with the old CA from ca-signer.crt and ca-signer.key, which replace ca.key while ca.crt holds two CAs"
	case EtcdCA:
		trust = "etcd/ca.crt, which etcd's --trusted-ca-file and --peer-trusted-ca-file and the API server's --etcd-cafile name"
		leaves = "every certificate of the etcd CA (etcd server and peer, the API server's etcd client, the health check client)"
	case FrontProxyCA:
		trust = "front-proxy-ca.crt, the API server's --requestheader-client-ca-file"
		leaves = "the front-proxy client certificate"
	default:
		return nil
	}
	retire := fmt.Sprintf("only the new CA is trusted, in %s; the old CA is gone from the bundle", trust)
	reissueBefore := "stage 1 runs on every node (every component trusts the new CA)"
	retireBefore := "stage 2 runs on every node"
	if id == CA {
		// The API server's serving certificate comes from the new CA in stage 2: pods
		// that read kube-root-ca.crt only at start must trust it by then.
		reissueBefore += "; then restart the pods that talk to the API server and read their ca.crt only at start (client-go before v0.36, e.g. `kubectl -n kube-system rollout restart deployment coredns`): kube-root-ca.crt holds both CAs once the controller manager runs stage 1"
		retire += "; ca.key is the new CA's key again"
		retireBefore += "; after every API server runs this stage, delete ConfigMap kube-system/extension-apiserver-authentication (the API servers re-create it without the old CA)"
	}
	return []StageInfo{
		{StageTrustBoth, StageName(StageTrustBoth),
			fmt.Sprintf("the old and the new CA are both trusted, in %s; no certificate is re-issued%s", trust, extra), ""},
		{StageReissue, StageName(StageReissue),
			fmt.Sprintf("%s: re-issued by the new CA (same keys); both CAs stay trusted", leaves), reissueBefore},
		{StageRetire, StageName(StageRetire), retire, retireBefore},
	}
}

// RotationRunbookMarkdown is the README's table of rotation stages: for each rotatable
// identity, each stage's command, what its render changes, and what must hold before it
// is delivered (generated, and tested against the README).
func RotationRunbookMarkdown() string {
	var b strings.Builder
	b.WriteString("| rotation | stage | command | the render of the stage | before delivering it |\n|---|---|---|---|---|\n")
	for _, id := range Rotatable {
		cmd := "certs rotate-sa"
		what := "service-account key"
		if id != SA {
			cmd = "certs rotate-ca " + RotationTarget(id)
			what = string(id)
		}
		for _, st := range RotationStages(id) {
			c := "scratchgen " + cmd
			if st.Stage > StageTrustBoth {
				c += " --next"
			}
			before := st.Before
			if before == "" {
				before = "—"
			}
			fmt.Fprintf(&b, "| %s | %d %s | `%s` | %s | %s |\n", what, st.Stage, st.Name, c, st.Renders, before)
		}
	}
	return b.String()
}
