package nodeconfig

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// TestCertCheckScript runs the watchdog script with sh against a list it renders: the
// metrics file holds every certificate's end, the journal lines warn about the one due
// within the window and report the expired one, and the run fails while one is expired.
func TestCertCheckScript(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	expiries := []Expiry{
		{Path: "/etc/kubernetes/pki/ca.crt", Identity: "ca", NotAfter: now.Add(3650 * 24 * time.Hour)},
		{Path: "/etc/kubernetes/pki/ca.crt", Identity: "ca/previous", NotAfter: now.Add(-time.Hour)},
		{Path: "/var/lib/kubelet/pki/kubelet.crt", Identity: "kubelet-serving/worker-1", NotAfter: now.Add(10*24*time.Hour + time.Hour)},
	}
	c := resolve(t, variants()[0])
	b := bundle.NewNodeBuilder(c.Nodes[0].Name)
	if err := CertCheck(func(*model.Node) []Expiry { return expiries })(c, c.Nodes[0], b); err != nil {
		t.Fatal(err)
	}
	node, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var script, list []byte
	for _, f := range node.Rootfs {
		switch f.Path {
		case paths.CertCheckScript:
			script = f.Data
		case paths.CertList:
			list = f.Data
		case paths.CertCheckUnit:
			if want := fmt.Sprintf("ExecStart=%s %d %s", paths.CertCheckScript, 30*24*3600, c.MetricsDir); !strings.Contains(string(f.Data), want) {
				t.Errorf("the service does not run %q:\n%s", want, f.Data)
			}
		}
	}
	listFile := filepath.Join(dir, "certificates")
	os.WriteFile(listFile, list, 0o644)
	scriptFile := filepath.Join(dir, "certcheck.sh")
	os.WriteFile(scriptFile, []byte(strings.Replace(string(script), "list="+paths.CertList, "list="+listFile, 1)), 0o755)

	metrics := filepath.Join(dir, "metrics")
	cmd := exec.Command("sh", scriptFile, fmt.Sprint(30*24*3600), metrics)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("with an expired certificate: %v, want exit 1\n%s%s", err, out, stderr.String())
	}
	for _, want := range []string{
		"<3>certificate ca/previous in /etc/kubernetes/pki/ca.crt expired at ",
		"<4>certificate kubelet-serving/worker-1 in /var/lib/kubelet/pki/kubelet.crt expires at " + expiries[2].NotAfter.Format(time.RFC3339) + ", in 10 day(s)",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("journal lines lack %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "certificate ca in") {
		t.Errorf("warned about a certificate outside the window:\n%s", stderr.String())
	}
	if !strings.Contains(string(out), "1 expired, 1 expire within 30 day(s)") {
		t.Errorf("summary: %s", out)
	}
	prom, err := os.ReadFile(filepath.Join(metrics, paths.CertMetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range expiries {
		want := fmt.Sprintf("scratchgen_certificate_expiry_seconds{path=%q,identity=%q} %d\n", e.Path, e.Identity, e.NotAfter.Unix())
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
	if !strings.Contains(string(prom), "# TYPE scratchgen_certificate_expiry_seconds gauge") || !strings.Contains(string(prom), "scratchgen_certcheck_timestamp_seconds ") {
		t.Errorf("metrics:\n%s", prom)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(metrics, ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Nothing expired: exit 0.
	var kept []string
	for _, l := range strings.Split(string(list), "\n") {
		if !strings.Contains(l, "ca/previous") {
			kept = append(kept, l)
		}
	}
	os.WriteFile(listFile, []byte(strings.Join(kept, "\n")), 0o644)
	if out, err := exec.Command("sh", scriptFile, "60", metrics).CombinedOutput(); err != nil {
		t.Errorf("with nothing expired: %v\n%s", err, out)
	}
}
