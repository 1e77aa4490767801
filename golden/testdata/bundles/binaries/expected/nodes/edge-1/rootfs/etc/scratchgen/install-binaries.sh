#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
#
# Installs this node's binaries, each pinned by SHA-256 in the cluster's lock. A download
# is taken from /var/lib/scratchgen/downloads/<sha256> when it is there and intact (Ignition
# stages archives there), else fetched with curl into it; a download whose SHA-256 is
# not the pinned one is refused and removed, and the run fails naming it. Files are
# installed with mode 0755 by rename, so a running binary is never half-written. A file
# that already has its pinned SHA-256 is left alone: once everything is in place, a run
# fetches nothing.
#
# install-binaries.sh [ROOT]: ROOT (default /) is the root to install into, e.g. a
# machine image being built.
set -eu
root=${1:-}
root=${root%/}
stage=$root/var/lib/scratchgen/downloads
mkdir -p "$stage"

# fetch URL SHA256: leaves the verified download at $stage/SHA256.
fetch() {
	f="$stage/$2"
	if [ -f "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$2" ]; then
		return 0
	fi
	rm -f "$f.part"
	if ! curl -fsSL --retry 3 -o "$f.part" "$1"; then
		rm -f "$f.part"
		echo "install-binaries: downloading $1 failed" >&2
		return 1
	fi
	got=$(sha256sum <"$f.part" | cut -d' ' -f1)
	if [ "$got" != "$2" ]; then
		rm -f "$f.part"
		echo "install-binaries: $1 has SHA-256 $got, not the pinned $2: refused" >&2
		return 1
	fi
	mv "$f.part" "$f"
}

# current PATH SHA256: whether PATH is installed with that SHA-256.
current() {
	[ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$2" ]
}

# place SRC PATH: installs SRC at PATH, mode 0755, by rename.
place() {
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2.scratchgen-new"
	chmod 0755 "$2.scratchgen-new"
	mv "$2.scratchgen-new" "$2"
	echo "install-binaries: installed $2"
}

# extract ARCHIVE MEMBER PATH: installs one member of a gzip-compressed tar archive.
extract() {
	tmp=$(mktemp "$stage/member.XXXXXX")
	if ! tar -xzOf "$1" -- "$2" >"$tmp"; then
		rm -f "$tmp"
		echo "install-binaries: $1 has no member $2" >&2
		return 1
	fi
	place "$tmp" "$3"
	rm -f "$tmp"
}

# kubelet: https://mirror.example.com/kubernetes/v1.36.3/amd64/kubelet (1059 bytes)
if ! current "$root"/opt/bin/kubelet bdf6f2d83ebdd2447c3a8318a4788bea79db1c334fc74eb9ac97bd2d809b0a9d; then
	fetch https://mirror.example.com/kubernetes/v1.36.3/amd64/kubelet bdf6f2d83ebdd2447c3a8318a4788bea79db1c334fc74eb9ac97bd2d809b0a9d
	place "$stage/bdf6f2d83ebdd2447c3a8318a4788bea79db1c334fc74eb9ac97bd2d809b0a9d" "$root"/opt/bin/kubelet
fi

# kube-proxy: https://mirror.example.com/kubernetes/v1.36.3/amd64/kube-proxy (1062 bytes)
if ! current "$root"/opt/bin/kube-proxy 33e1417f0997c0b80804ff02465baad4160df62e14b04e3f5d0d8e1547108ded; then
	fetch https://mirror.example.com/kubernetes/v1.36.3/amd64/kube-proxy 33e1417f0997c0b80804ff02465baad4160df62e14b04e3f5d0d8e1547108ded
	place "$stage/33e1417f0997c0b80804ff02465baad4160df62e14b04e3f5d0d8e1547108ded" "$root"/opt/bin/kube-proxy
fi

# runc: https://mirror.example.com/runc/v1.3.0/runc.amd64 (1049 bytes)
if ! current "$root"/usr/local/sbin/runc 7d9dd8413977183f077cea58fe92ea05842a971ef968c188686a2d565116cf87; then
	fetch https://mirror.example.com/runc/v1.3.0/runc.amd64 7d9dd8413977183f077cea58fe92ea05842a971ef968c188686a2d565116cf87
	place "$stage/7d9dd8413977183f077cea58fe92ea05842a971ef968c188686a2d565116cf87" "$root"/usr/local/sbin/runc
fi

# cni-plugins: https://mirror.example.com/cni/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz (1072 bytes)
fetch https://mirror.example.com/cni/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz b25eda9548d3f53bc2a7a901b0f16bf53f7f1c56f13cd06c1b4c51685b86cca5
extract "$stage/b25eda9548d3f53bc2a7a901b0f16bf53f7f1c56f13cd06c1b4c51685b86cca5" ./bridge "$root"/opt/cni/bin/bridge
extract "$stage/b25eda9548d3f53bc2a7a901b0f16bf53f7f1c56f13cd06c1b4c51685b86cca5" ./host-local "$root"/opt/cni/bin/host-local
extract "$stage/b25eda9548d3f53bc2a7a901b0f16bf53f7f1c56f13cd06c1b4c51685b86cca5" ./loopback "$root"/opt/cni/bin/loopback
extract "$stage/b25eda9548d3f53bc2a7a901b0f16bf53f7f1c56f13cd06c1b4c51685b86cca5" ./portmap "$root"/opt/cni/bin/portmap
