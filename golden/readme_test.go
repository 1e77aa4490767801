package golden

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEEtcdRunbook: the README's etcd member runbook is the add-member plan golden's.
func TestREADMEEtcdRunbook(t *testing.T) {
	readme := string(mustRead(t, "../README.md"))
	const begin, end = "<!-- etcd member runbook: generated, golden/testdata/plan/add-member/expected.txt -->\n```\n", "```\n<!-- end of etcd member runbook -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no etcd member runbook between %q and %q", begin, end)
	}
	data, err := os.ReadFile("testdata/plan/add-member/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	golden := string(data)
	want := golden[strings.Index(golden, "runbook ("):]
	// The runbook ends with its legend; what follows is the CLI's warnings (stderr).
	if k := strings.Index(want, "\n  where etcdctl"); k >= 0 {
		if e := strings.IndexByte(want[k+1:], '\n'); e >= 0 {
			want = want[:k+1+e+1]
		}
	}
	if got := readme[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile("../README.md", []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's etcd member runbook is out of date; replace it with:\n%s", want)
	}
}
