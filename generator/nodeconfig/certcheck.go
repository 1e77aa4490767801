package nodeconfig

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scratchgen/scratchgen/generator/bundle"
	"github.com/scratchgen/scratchgen/generator/model"
	"github.com/scratchgen/scratchgen/generator/paths"
)

// Expiry is one certificate of a node's list: where it is, whose, when it ends.
type Expiry struct {
	Path, Identity string
	NotAfter       time.Time
}

// CertCheck returns the plan step of the certificate watchdog: the node's certificate
// list (expiries gives it, from the render's schedule), the script that reads it, and
// scratchgen-certcheck.service run daily by scratchgen-certcheck.timer. The node needs
// no openssl: the dates are written at render time.
func CertCheck(expiries func(n *model.Node) []Expiry) func(*model.Cluster, *model.Node, *bundle.NodeBuilder) error {
	return func(c *model.Cluster, n *model.Node, b *bundle.NodeBuilder) error {
		if err := checkResolved(n); err != nil {
			return err
		}
		var list strings.Builder
		list.WriteString("# " + header + "\n# The node's certificates, read by " + paths.CertCheckScript + ":\n# notAfter (seconds since the epoch)\tnotAfter\tfile\tidentity\n")
		for _, e := range expiries(n) {
			if strings.ContainsAny(e.Path+e.Identity, "\t\n\"\\") {
				return fmt.Errorf("certificate list: %q of %s cannot be listed", e.Path, e.Identity)
			}
			fmt.Fprintf(&list, "%d\t%s\t%s\t%s\n", e.NotAfter.Unix(), e.NotAfter.UTC().Format(time.RFC3339), e.Path, e.Identity)
		}
		service := unit{
			{"Unit", []entry{
				kv("Description", "scratchgen: warn about certificates that expire soon, export their expiry"),
				kv("Documentation", "https://github.com/scratchgen/scratchgen#certificate-watchdog"),
			}},
			{"Service", []entry{
				kv("Type", "oneshot"),
				kv("ExecStart", paths.CertCheckScript, strconv.FormatInt(int64(c.ExpiryWarning/time.Second), 10), c.MetricsDir),
			}},
		}
		timer := unit{
			{"Unit", []entry{
				kv("Description", "scratchgen: check certificate expiry daily"),
				kv("Documentation", "https://github.com/scratchgen/scratchgen#certificate-watchdog"),
			}},
			{"Timer", []entry{
				kv("OnBootSec", "2min"),
				kv("OnCalendar", "daily"),
				kv("Persistent", "true"),
			}},
			{"Install", []entry{kv("WantedBy", "timers.target")}},
		}
		b.Public(paths.CertList, []byte(list.String()))
		b.Executable(paths.CertCheckScript, []byte(certCheckScript))
		b.Public(paths.CertCheckUnit, service.bytes())
		b.Public(paths.CertCheckTimerUnit, timer.bytes())
		b.Unit(bundle.Unit{Name: paths.CertCheckTimer})
		return nil
	}
}

// certCheckScript is the watchdog: POSIX sh and coreutils only.
const certCheckScript = `#!/bin/sh
# ` + header + `
#
# certcheck.sh WINDOW_SECONDS METRICS_DIR
#
# Reads the node's certificates and their expiry from ` + paths.CertList + ` (written when
# the bundle was rendered), warns in the journal about every one that expires within
# WINDOW_SECONDS (priority warning; error once expired, and the run fails), and writes
# their expiry as node-exporter textfile metrics to METRICS_DIR/` + paths.CertMetricsFile + `:
#   scratchgen_certificate_expiry_seconds{path,identity}: notAfter, in seconds since the epoch
#   scratchgen_certcheck_timestamp_seconds: when this check ran
set -eu
window=$1
dir=$2
list=` + paths.CertList + `
now=$(date +%s)
mkdir -p "$dir"
tmp=$(mktemp "$dir/.` + paths.CertMetricsFile + `.XXXXXX")
trap 'rm -f "$tmp"' EXIT
expired=0
soon=0
{
	echo '# HELP scratchgen_certificate_expiry_seconds When the certificate expires (notAfter), in seconds since the epoch.'
	echo '# TYPE scratchgen_certificate_expiry_seconds gauge'
	while IFS='	' read -r notafter stamp file identity; do
		case $notafter in '' | '#'*) continue ;; esac
		printf 'scratchgen_certificate_expiry_seconds{path="%s",identity="%s"} %s\n' "$file" "$identity" "$notafter"
		left=$((notafter - now))
		if [ "$left" -le 0 ]; then
			echo "<3>certificate $identity in $file expired at $stamp: renew it (scratchgen certs renew) and deliver the bundle" >&2
			expired=$((expired + 1))
		elif [ "$left" -le "$window" ]; then
			echo "<4>certificate $identity in $file expires at $stamp, in $((left / 86400)) day(s): renew it (scratchgen certs renew) and deliver the bundle" >&2
			soon=$((soon + 1))
		fi
	done <"$list"
	echo '# HELP scratchgen_certcheck_timestamp_seconds When the certificate check last ran, in seconds since the epoch.'
	echo '# TYPE scratchgen_certcheck_timestamp_seconds gauge'
	echo "scratchgen_certcheck_timestamp_seconds $now"
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$dir/` + paths.CertMetricsFile + `"
trap - EXIT
echo "checked the certificates of $list: $expired expired, $soon expire within $((window / 86400)) day(s); metrics in $dir/` + paths.CertMetricsFile + `"
[ "$expired" -eq 0 ]
`
