#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Static routes from node worker-1 to every other node's pod range (the routed pod
# network: no overlay). Usage: routes.sh start|stop; both are idempotent.
set -eu

case "${1:-}" in
start)
	ip route replace 10.10.0.0/24 via 10.0.0.11 # node cp-1
	ip route replace 10.10.1.0/24 via 10.0.0.12 # node cp-2
	ip route replace 10.10.2.0/24 via 10.0.0.13 # node cp-3
	ip route replace 10.10.5.0/24 via 10.0.0.14 # node cp-4
	ip route replace 10.10.4.0/24 via 10.0.0.22 # node worker-2
	;;
stop)
	ip route del 10.10.0.0/24 via 10.0.0.11 2>/dev/null || true
	ip route del 10.10.1.0/24 via 10.0.0.12 2>/dev/null || true
	ip route del 10.10.2.0/24 via 10.0.0.13 2>/dev/null || true
	ip route del 10.10.5.0/24 via 10.0.0.14 2>/dev/null || true
	ip route del 10.10.4.0/24 via 10.0.0.22 2>/dev/null || true
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
