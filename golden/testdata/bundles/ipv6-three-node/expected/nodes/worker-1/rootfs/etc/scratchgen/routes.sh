#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Static routes to every other node's pod range (the routed pod network: no overlay), as
# listed in the routes table beside this script (/etc/scratchgen/routes: node, address, pod
# range; the same file on every node). Usage: routes.sh start|stop NODE, NODE being this
# node's name (its unit passes it); both are idempotent.
set -eu

usage() {
	echo "usage: $0 start|stop NODE" >&2
	exit 2
}
case "${1:-}" in
start | stop) ;;
*) usage ;;
esac
[ -n "${2:-}" ] || usage
action=$1
self=$2
table=${0%/*}/routes
found=0
while read -r node addr range; do
	case $node in
	'' | '#'*) continue ;;
	esac
	if [ "$node" = "$self" ]; then
		found=1
		continue
	fi
	if [ "$action" = start ]; then
		ip route replace "$range" via "$addr"
	else
		ip route del "$range" via "$addr" 2>/dev/null || true
	fi
done <"$table"
if [ "$found" = 0 ]; then
	echo "$0: node $self is not in $table" >&2
	exit 1
fi
