#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
#
# certcheck.sh WINDOW_SECONDS METRICS_DIR
#
# Reads the node's certificates and their expiry from /etc/scratchgen/certificates (written when
# the bundle was rendered), warns in the journal about every one that expires within
# WINDOW_SECONDS (priority warning; error once expired, and the run fails), and writes
# their expiry as node-exporter textfile metrics to METRICS_DIR/scratchgen_certificates.prom:
#   scratchgen_certificate_expiry_seconds{path,identity}: notAfter, in seconds since the epoch
#   scratchgen_certcheck_timestamp_seconds: when this check ran
set -eu
window=$1
dir=$2
list=/etc/scratchgen/certificates
now=$(date +%s)
mkdir -p "$dir"
tmp=$(mktemp "$dir/.scratchgen_certificates.prom.XXXXXX")
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
mv "$tmp" "$dir/scratchgen_certificates.prom"
trap - EXIT
echo "checked the certificates of $list: $expired expired, $soon expire within $((window / 86400)) day(s); metrics in $dir/scratchgen_certificates.prom"
[ "$expired" -eq 0 ]
