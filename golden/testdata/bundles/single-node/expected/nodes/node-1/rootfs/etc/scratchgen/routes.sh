#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Static routes from node node-1 to every other node's pod range (the routed pod
# network: no overlay). Usage: routes.sh start|stop; both are idempotent.
set -eu

case "${1:-}" in
start)
	: # no other nodes
	;;
stop)
	: # no other nodes
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
