package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
)

// TestIdentitiesMatchPlan: the identities listed without issuing are exactly the ones a
// plan issues and records, held where the plan places their certificates.
func TestIdentitiesMatchPlan(t *testing.T) {
	for _, creds := range []string{"perNode", "perRole", "shared"} {
		c, res := plan(t, creds, secretA, nil)
		ids := Identities(c)
		if len(ids) != len(res.Lock.Certificates) {
			t.Errorf("%s: %d identities, the plan records %d", creds, len(ids), len(res.Lock.Certificates))
		}
		for _, id := range ids {
			if _, ok := res.Lock.Certificates[string(id.ID)]; !ok {
				t.Errorf("%s: %s is listed but not issued", creds, id.ID)
			}
			if id.Kind == KindKeyPair {
				continue
			}
			cert := res.Certs[id.ID]
			var holders []string
			for _, n := range c.Nodes {
				if holds(res.Nodes[n.Name], cert.Raw) {
					holders = append(holders, n.Name)
				}
			}
			if !slices.Equal(holders, id.Nodes) {
				t.Errorf("%s: %s is held by %v, Identities says %v", creds, id.ID, holders, id.Nodes)
			}
			if holds(res.Admin, cert.Raw) != id.Admin {
				t.Errorf("%s: %s in admin/: Identities says %v", creds, id.ID, id.Admin)
			}
		}
		dates := Schedule(c, res.Lock, now.Add(time.Hour))
		for id, cert := range res.Certs {
			if d := dates[id]; !d.Issued || !d.NotAfter.Equal(cert.NotAfter) || !d.NotBefore.Equal(cert.NotBefore) {
				t.Errorf("%s: %s scheduled %+v, issued %v–%v", creds, id, d, cert.NotBefore, cert.NotAfter)
			}
		}
	}
}

// holds reports whether a file carries the certificate: as PEM, or base64 of the PEM
// inside a kubeconfig.
func holds(files []bundle.File, der []byte) bool {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b := []byte(base64.StdEncoding.EncodeToString(p))
	for _, f := range files {
		if bytes.Contains(f.Data, p) || bytes.Contains(f.Data, b) {
			return true
		}
	}
	return false
}

func TestRenew(t *testing.T) {
	_, res := plan(t, "perNode", secretA, nil)
	later := now.Add(90*24*time.Hour + 1234*time.Millisecond)
	renewed, done, err := Renew(res.Lock, []ID{CA, Admin}, later)
	if err != nil {
		t.Fatal(err)
	}
	wantNB := later.Add(-Backdate).Truncate(time.Second)
	// A leaf gets a new generation (a new key); a CA a new renewal of the same key.
	if r := renewed.Certificates[string(Admin)]; r.Generation != 2 || r.Renewal != 0 || !r.NotBefore.Equal(wantNB) {
		t.Errorf("admin renewed to %+v", r)
	}
	if r := renewed.Certificates[string(CA)]; r.Generation != 1 || r.Renewal != 1 || !r.NotBefore.Equal(wantNB) {
		t.Errorf("ca renewed to %+v, want generation 1 (the same key), renewal 1", r)
	}
	for _, id := range []ID{CA, Admin} {
		if r := res.Lock.Certificates[string(id)]; r.Generation != 1 || r.Renewal != 0 {
			t.Errorf("Renew modified its input")
		}
	}
	if len(done) != 2 || done[0].ID != CA {
		t.Errorf("renewals %+v", done)
	}
	if _, _, err := Renew(res.Lock, []ID{KubeletServingID("worker-9")}, later); err == nil {
		t.Error("renewing an identity missing from the lock succeeded")
	}
	if _, _, err := Renew(res.Lock, []ID{SA}, later); err == nil || !strings.Contains(err.Error(), "certs rotate-sa") {
		t.Errorf("renewing the service-account key: %v, want a refusal pointing to certs rotate-sa", err)
	}
	rot, err := StartRotation(res.Lock, CA, later)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Renew(rot, []ID{CA}, later); err == nil || !strings.Contains(err.Error(), "rotating") {
		t.Errorf("renewing a rotating CA: %v, want a refusal", err)
	}
}
