package e2e

// TestRotate rotates the cluster CA and then the service-account key of a running
// cluster of booted machines (the machine test's cluster), stage by stage, as the README's
// runbooks say: `certs rotate-ca cluster` (then --next), `diff --output json` for the
// rollout, `render`, and the rollout applied exactly as diff lists it: each node's rootfs/
// delivered with the README's rsync line, nodes of a one-at-a-time phase one after
// another, the static pods that restart by themselves awaited (their mirror pods carry
// the new inputs digest and are Ready), the listed commands run on the node, the
// operator's copy of admin.kubeconfig replaced. The runbook's operator steps run where it
// says (CoreDNS restarted after CA stage 1 and after SA stage 2).
//
// Throughout, a poller GETs a namespace every 200 ms with the operator's admin
// kubeconfig. Failed requests are reported per stage, split into those inside a restart
// window (from delivering a control plane until its API server is ready again: one
// control plane, so its restart is an outage) and outside; outside must be zero. The
// longest gap between successful requests is reported. After every stage: every node
// Ready, the workload pods still the same pods, Running. At the end: a token issued
// before the SA rotation worked through stage 2 and fails after stage 3; the old CA's
// admin client certificate is accepted until stage 3 and refused after; logs and exec
// work; validate-cluster passes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/scratchgen/scratchgen/cmd/scratchgen/cli"
	"github.com/scratchgen/scratchgen/generator/paths"
	"github.com/scratchgen/scratchgen/generator/review"
	"github.com/scratchgen/scratchgen/generator/staticpods"
)

// envRotate=1 (with envEnable=1) runs TestRotate: `make e2e-rotate`.
const envRotate = "SCRATCHGEN_E2E_ROTATE"

// pollInterval is the availability poller's period.
const pollInterval = 200 * time.Millisecond

func TestRotate(t *testing.T) {
	if os.Getenv(envEnable) != "1" || os.Getenv(envRotate) != "1" {
		t.Skip("SKIPPED: the rotation test boots systemd-nspawn machines as root; run `make e2e-rotate` " +
			"(or set " + envEnable + "=1 " + envRotate + "=1)")
	}
	w := mBringUp(t)
	h, prep := w.h, w.prep
	if err := checkReadyz(w.kubelets["cp-1"], w.admin, nbBootBound); err != nil {
		t.Fatalf("kube-apiserver is not ready: %v", err)
	}
	if err := mApplyAddons(h, prep.Bins); err != nil {
		t.Fatal(err)
	}
	if err := nbCheckNodes(h, w.kubelets, w.admin); err != nil {
		t.Fatal(err)
	}
	web, err := nbCheckDeployment(h, w.nets, w.kubelets, w.admin, prep.WorkloadRef)
	if err != nil {
		t.Fatal(err)
	}
	op := newOperator(t, h)
	oldAdmin := op.snapshot("admin-before-rotation.kubeconfig")
	poller := startPoller(t, op.client)
	r := &rotation{t: t, w: w, op: op, poller: poller, web: web}

	for _, stage := range []string{"", "--next", "--next"} {
		r.stage("ca", append([]string{"certs", "rotate-ca", "cluster"}, nonEmpty(stage)...))
		switch r.lastStage {
		case 1:
			// The runbook: after stage 1, pods that read their ca.crt once restart.
			r.restartCoreDNS("kube-root-ca.crt holds both CAs")
		case 2:
			if err := certClient(oldAdmin, op.file).whoAmI(); err != nil {
				t.Errorf("after CA stage 2, the old CA's admin certificate is refused: %v (both CAs are still trusted)", err)
			}
		case 3:
			r.resetAuthenticationConfigMap()
			err := certClient(oldAdmin, op.file).whoAmI()
			if !apierrors.IsUnauthorized(err) {
				t.Errorf("after CA stage 3, the old CA's admin certificate: %v, want 401 Unauthorized", err)
			} else {
				t.Logf("after CA stage 3, the old CA's admin certificate is refused: %v", err)
			}
		}
	}

	token := r.issueToken()
	for _, stage := range []string{"", "--next", "--next"} {
		r.stage("sa", append([]string{"certs", "rotate-sa"}, nonEmpty(stage)...))
		tc, err := TokenClient(op.server(), op.ca(), token, "a token issued before the SA rotation")
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc.WhoAmI()
		switch {
		case r.lastStage < 3 && err != nil:
			t.Errorf("after SA stage %d, a token issued before the rotation is refused: %v", r.lastStage, err)
		case r.lastStage == 3 && !apierrors.IsUnauthorized(err):
			t.Errorf("after SA stage 3, a token issued before the rotation: %v, want 401 Unauthorized", err)
		case r.lastStage == 3:
			t.Logf("after SA stage 3, the token issued before the rotation is refused: %v", err)
		}
		if r.lastStage == 2 {
			r.restartCoreDNS("its token must be signed with the new key before stage 3")
		}
	}

	poller.stop()
	admin := op.client()
	if err := nbCheckLogsExec(h, prep.Bins, admin, web); err != nil {
		t.Errorf("after the rotations: %v", err)
	}
	if err := mValidateCluster(h, false); err != nil {
		t.Errorf("after the rotations: %v", err)
	}
	r.report()
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// operator is what the operator keeps outside the bundle: a copy of admin.kubeconfig,
// replaced when a rollout says so.
type operator struct {
	t    *testing.T
	h    *Harness
	file string
	cur  atomic.Pointer[Client]
}

func newOperator(t *testing.T, h *Harness) *operator {
	op := &operator{t: t, h: h, file: filepath.Join(h.State, "operator", paths.AdminKubeconfig)}
	op.replace()
	return op
}

// replace copies the bundle's admin.kubeconfig over the operator's copy.
func (op *operator) replace() {
	op.t.Helper()
	data, err := os.ReadFile(op.h.AdminFile(paths.AdminKubeconfig))
	if err == nil {
		err = os.MkdirAll(filepath.Dir(op.file), 0o700)
	}
	if err == nil {
		err = os.WriteFile(op.file, data, 0o600)
	}
	if err != nil {
		op.t.Fatal(err)
	}
	c, err := KubeconfigClient(op.file)
	if err != nil {
		op.t.Fatal(err)
	}
	op.cur.Store(c)
}

// snapshot keeps a copy of the operator's kubeconfig as it is now.
func (op *operator) snapshot(name string) string {
	data, err := os.ReadFile(op.file)
	if err != nil {
		op.t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(op.file), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		op.t.Fatal(err)
	}
	return p
}

func (op *operator) client() *Client { return op.cur.Load() }
func (op *operator) server() string  { return op.client().Config.Host }
func (op *operator) ca() []byte      { return op.client().Config.CAData }

// certOnly is a client authenticating with a kubeconfig's client certificate only (no
// token: the API server would accept the static token and hide the certificate's fate),
// trusting the CAs of another kubeconfig.
type certOnly struct {
	cfg *rest.Config
	err error
}

func certClient(certFrom, trustFrom string) certOnly {
	a, err := clientcmd.BuildConfigFromFlags("", certFrom)
	if err != nil {
		return certOnly{err: err}
	}
	b, err := clientcmd.BuildConfigFromFlags("", trustFrom)
	if err != nil {
		return certOnly{err: err}
	}
	return certOnly{cfg: &rest.Config{Host: b.Host, TLSClientConfig: rest.TLSClientConfig{
		CAData: b.CAData, CertData: a.CertData, KeyData: a.KeyData}}}
}

func (c certOnly) whoAmI() error {
	if c.err != nil {
		return c.err
	}
	cl, err := newClient(c.cfg, "the old CA's admin certificate")
	if err != nil {
		return err
	}
	_, err = cl.WhoAmI()
	return err
}

// poller GETs the API every pollInterval with the client get returns (the operator's
// current one).
type poller struct {
	get     func() *Client
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []pollResult
	windows []window
}

type pollResult struct {
	at  time.Time
	err error
}

// window is a restart instant: a control plane being delivered until its API server is
// ready again.
type window struct {
	stage, node string
	from, to    time.Time
}

func startPoller(t *testing.T, get func() *Client) *poller {
	p := &poller{get: get, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case at := <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := get().CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
				cancel()
				p.mu.Lock()
				p.results = append(p.results, pollResult{at: at, err: err})
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *poller) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func (p *poller) addWindow(w window) {
	p.mu.Lock()
	p.windows = append(p.windows, w)
	p.mu.Unlock()
}

// stats summarises the results between from and to: requests, failures inside and
// outside the windows, the longest gap between successes, and the first failures outside.
func (p *poller) stats(from, to time.Time) (total, inside, outside int, gap time.Duration, samples []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := from
	for _, r := range p.results {
		if r.at.Before(from) || r.at.After(to) {
			continue
		}
		total++
		if r.err == nil {
			if d := r.at.Sub(last); d > gap {
				gap = d
			}
			last = r.at
			continue
		}
		in := false
		for _, w := range p.windows {
			if !r.at.Before(w.from) && !r.at.After(w.to) {
				in = true
			}
		}
		if in {
			inside++
		} else {
			outside++
			if len(samples) < 5 {
				samples = append(samples, r.at.Format("15:04:05.000")+": "+r.err.Error())
			}
		}
	}
	if d := to.Sub(last); d > gap {
		gap = d
	}
	return
}

// rotation drives the stages.
type rotation struct {
	t         *testing.T
	w         *mWorld
	op        *operator
	poller    *poller
	web       *nbWeb
	lastStage int
	lines     []string // the report, one line per stage
}

// cli runs scratchgen, failing the test on a non-zero exit (exit 2 allowed for diff).
func (r *rotation) cli(args ...string) string {
	r.t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(args, cli.Stdio{In: strings.NewReader(""), Out: &stdout, Err: &stderr})
	if code != 0 && !(code == 2 && args[0] == "diff") {
		r.t.Fatalf("scratchgen %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// stage runs one stage: the rotate command, diff's rollout, render, and the rollout.
func (r *rotation) stage(what string, rotate []string) {
	t := r.t
	h := r.w.h
	spec := r.w.prep.SpecFile
	out := r.cli(append(rotate, "-f", spec)...)
	first := strings.SplitN(out, "\n", 2)[0]
	if _, err := fmt.Sscanf(first[strings.Index(first, "stage"):], "stage %d", &r.lastStage); err != nil {
		t.Fatalf("%s: cannot read the stage from %q", strings.Join(rotate, " "), first)
	}
	name := fmt.Sprintf("%s stage %d", what, r.lastStage)
	t.Logf("=== %s: scratchgen %s\n%s", name, strings.Join(rotate, " "), out)
	js := r.cli(append(r.w.prep.DiffArgs, "--output", "json")...)
	var rep review.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("%s: diff --output json: %v", name, err)
	}
	text := r.cli(append(r.w.prep.DiffArgs, "--summary")...)
	t.Logf("%s: scratchgen diff --summary:\n%s", name, text)
	r.cli(r.w.prep.RenderArgs...)
	if len(rep.Rollout) == 0 {
		t.Fatalf("%s: diff lists no rollout", name)
	}
	began := time.Now()
	for _, step := range rep.Rollout {
		r.apply(name, step)
	}
	ended := time.Now()
	if err := nbCheckNodes(h, r.w.kubelets, r.op.client()); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	r.checkWorkload(name)
	total, inside, outside, gap, samples := r.poller.stats(began, ended)
	line := fmt.Sprintf("%s: rollout %s, %d requests, %d failed inside restart windows, %d outside, longest gap %s",
		name, ended.Sub(began).Round(100*time.Millisecond), total, inside, outside, gap.Round(100*time.Millisecond))
	r.lines = append(r.lines, line)
	t.Log(line)
	if outside > 0 {
		t.Errorf("%s: %d request(s) failed outside the restart windows, e.g.\n%s", name, outside, strings.Join(samples, "\n"))
	}
}

// apply delivers one rollout step.
func (r *rotation) apply(name string, step review.RolloutStep) {
	t := r.t
	if step.Phase == "cluster" {
		for _, c := range step.Commands {
			if strings.HasPrefix(c, "operator credentials") {
				r.op.replace()
				t.Logf("%s: cluster: %s: the operator's admin.kubeconfig replaced", name, c)
				continue
			}
			t.Fatalf("%s: cluster step %q is not one this test applies", name, c)
		}
		return
	}
	for _, node := range step.Nodes {
		n := r.w.byName[node]
		if n == nil {
			t.Fatalf("%s: rollout names %s, not a machine of the test", name, node)
		}
		from := time.Now()
		if err := mRsync(rsyncArgs(n.rootfs(), n.M.Root())); err != nil {
			t.Fatal(err)
		}
		for _, co := range step.SelfRestart {
			if err := r.awaitStaticPod(n, co); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for _, c := range step.Commands {
			if out, err := n.M.Exec(r.w.ctx, "sh", "-c", c); err != nil {
				t.Fatalf("%s: on %s: %s: %v\n%s", name, node, c, err, out)
			}
		}
		if len(step.SelfRestart) > 0 {
			if err := checkReadyz(r.w.kubelets["cp-1"], r.op.client(), nbBootBound); err != nil {
				t.Fatalf("%s: after delivering %s: %v", name, node, err)
			}
			r.poller.addWindow(window{stage: name, node: node, from: from, to: time.Now()})
		}
		t.Logf("%s: %s delivered in %s: restarted by themselves %v, then %v", name, node, time.Since(from).Round(100*time.Millisecond), step.SelfRestart, step.Commands)
	}
}

// awaitStaticPod waits until the mirror pod of component co on n carries the inputs
// digest of the delivered manifest and is Ready: the kubelet restarted it.
func (r *rotation) awaitStaticPod(n *mNode, co string) error {
	data, err := os.ReadFile(filepath.Join(n.rootfs(), "etc/kubernetes/manifests", co+".yaml"))
	if err != nil {
		return err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return err
	}
	want := pod.Annotations[staticpods.AnnotationInputs]
	return r.w.kubelets[n.Name].Poll(nbBootBound, fmt.Sprintf("mirror pod %s-%s with inputs %s, Ready", co, n.Name, want), func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		p, err := r.op.client().CoreV1().Pods("kube-system").Get(ctx, co+"-"+n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := p.Annotations[staticpods.AnnotationInputs]; got != want {
			return fmt.Errorf("mirror pod has inputs %s", got)
		}
		if !nbPodReady(p) {
			return fmt.Errorf("not Ready: %s", nbContainerStates(p))
		}
		return nil
	})
}

// checkWorkload: the workload pods are the same pods, Running and Ready.
func (r *rotation) checkWorkload(name string) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	for node, want := range r.web.Pods {
		p, err := r.op.client().CoreV1().Pods(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			r.t.Errorf("%s: workload pod %s on %s: %v", name, want.Name, node, err)
		case p.UID != want.UID || p.Status.Phase != corev1.PodRunning || !nbPodReady(p):
			r.t.Errorf("%s: workload pod %s on %s: uid %s (was %s), %s, %s", name, want.Name, node, p.UID, want.UID, p.Status.Phase, nbContainerStates(p))
		}
	}
}

// restartCoreDNS is the runbook's operator step: kubectl rollout restart, then wait for
// the new pods.
func (r *rotation) restartCoreDNS(why string) {
	t := r.t
	ctx, cancel := ctxTimeout()
	defer cancel()
	c := r.op.client()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := c.AppsV1().Deployments("kube-system").Patch(ctx, "coredns", "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("restarting CoreDNS (%s): %v", why, err)
	}
	err := poll(nbStepBound, time.Second, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		d, err := c.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != *d.Spec.Replicas || d.Status.AvailableReplicas != *d.Spec.Replicas || d.Status.Replicas != *d.Spec.Replicas {
			return fmt.Errorf("coredns: %d updated, %d available of %d", d.Status.UpdatedReplicas, d.Status.AvailableReplicas, *d.Spec.Replicas)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("restarting CoreDNS (%s): %v", why, err)
	}
	t.Logf("CoreDNS restarted (%s)", why)
}

// issueToken asks for a bound token of the default service account (one hour), signed
// with the key in use before the SA rotation.
func (r *rotation) issueToken() string {
	ctx, cancel := ctxTimeout()
	defer cancel()
	secs := int64(3600)
	tr, err := r.op.client().CoreV1().ServiceAccounts("default").CreateToken(ctx, "default",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	tc, err := TokenClient(r.op.server(), r.op.ca(), tr.Status.Token, "a bound token")
	if err == nil {
		_, err = tc.WhoAmI()
	}
	if err != nil {
		r.t.Fatalf("a fresh bound token: %v", err)
	}
	return tr.Status.Token
}

func (r *rotation) report() {
	r.t.Logf("availability (poller every %s with the operator's admin kubeconfig):\n  %s", pollInterval, strings.Join(r.lines, "\n  "))
}

// resetAuthenticationConfigMap is the runbook's step after CA stage 3: delete
// kube-system/extension-apiserver-authentication, which the API server re-creates
// without the old CA.
func (r *rotation) resetAuthenticationConfigMap() {
	c := r.op.client()
	ctx, cancel := ctxTimeout()
	defer cancel()
	if err := c.CoreV1().ConfigMaps("kube-system").Delete(ctx, "extension-apiserver-authentication", metav1.DeleteOptions{}); err != nil {
		r.t.Fatalf("deleting extension-apiserver-authentication: %v", err)
	}
	err := poll(nbStepBound, time.Second, func() error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n := strings.Count(cm.Data["client-ca-file"], "BEGIN CERTIFICATE"); n != 1 {
			return fmt.Errorf("client-ca-file holds %d certificates", n)
		}
		return nil
	})
	if err != nil {
		r.t.Errorf("extension-apiserver-authentication after CA stage 3: %v", err)
		return
	}
	r.t.Log("extension-apiserver-authentication re-created with only the new CA")
}
