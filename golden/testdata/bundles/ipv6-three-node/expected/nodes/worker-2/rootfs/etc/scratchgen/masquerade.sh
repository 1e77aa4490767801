#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Masquerades traffic from the cluster's pods (fd00:10::/56) to destinations outside the
# cluster network that are not local to this node: the from-scratch guide's rule, restricted
# to pod sources (-s) so traffic the node itself originates keeps its address. The rule lives
# in its own nat chain, jumped to from POSTROUTING, so start replaces it and stop removes it
# cleanly. Usage: masquerade.sh start|stop; both are idempotent.
set -eu

chain=SCRATCHGEN-MASQ
pods=fd00:10::/56
comment="scratchgen: masquerade pod traffic leaving the cluster network"

ipt() {
	ip6tables -w -t nat "$@"
}

case "${1:-}" in
start)
	ipt -N "$chain" 2>/dev/null || true
	ipt -F "$chain"
	ipt -A "$chain" -s "$pods" ! -d "$pods" -m addrtype ! --dst-type LOCAL -j MASQUERADE
	ipt -C POSTROUTING -m comment --comment "$comment" -j "$chain" 2>/dev/null ||
		ipt -A POSTROUTING -m comment --comment "$comment" -j "$chain"
	;;
stop)
	while ipt -D POSTROUTING -m comment --comment "$comment" -j "$chain" 2>/dev/null; do :; done
	ipt -F "$chain" 2>/dev/null || true
	ipt -X "$chain" 2>/dev/null || true
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
