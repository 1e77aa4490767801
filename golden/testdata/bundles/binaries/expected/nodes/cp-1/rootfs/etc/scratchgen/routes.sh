#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Static routes from node cp-1 to every other node's pod range (the routed pod
# network: no overlay). Usage: routes.sh start|stop; both are idempotent.
set -eu

case "${1:-}" in
start)
	ip route replace 10.10.1.0/24 via 10.0.0.21 # node worker-1
	ip route replace 10.10.2.0/24 via 10.0.0.31 # node edge-1
	;;
stop)
	ip route del 10.10.1.0/24 via 10.0.0.21 2>/dev/null || true
	ip route del 10.10.2.0/24 via 10.0.0.31 2>/dev/null || true
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
