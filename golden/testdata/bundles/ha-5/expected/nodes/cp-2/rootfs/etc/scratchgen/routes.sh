#!/bin/sh
# Written by scratchgen; edit the cluster spec and re-render instead of this file.
# Static routes from node cp-2 to every other node's pod range (the routed pod
# network: no overlay). Usage: routes.sh start|stop; both are idempotent.
set -eu

case "${1:-}" in
start)
	ip route replace 10.10.0.0/24 via 10.0.1.1 # node etcd-1
	ip route replace 10.10.1.0/24 via 10.0.1.2 # node etcd-2
	ip route replace 10.10.2.0/24 via 10.0.1.3 # node etcd-3
	ip route replace 10.10.3.0/24 via 10.0.1.4 # node etcd-4
	ip route replace 10.10.4.0/24 via 10.0.1.5 # node etcd-5
	ip route replace 10.10.5.0/24 via 10.0.0.11 # node cp-1
	ip route replace 10.10.7.0/24 via 10.0.0.21 # node worker-1
	;;
stop)
	ip route del 10.10.0.0/24 via 10.0.1.1 2>/dev/null || true
	ip route del 10.10.1.0/24 via 10.0.1.2 2>/dev/null || true
	ip route del 10.10.2.0/24 via 10.0.1.3 2>/dev/null || true
	ip route del 10.10.3.0/24 via 10.0.1.4 2>/dev/null || true
	ip route del 10.10.4.0/24 via 10.0.1.5 2>/dev/null || true
	ip route del 10.10.5.0/24 via 10.0.0.11 2>/dev/null || true
	ip route del 10.10.7.0/24 via 10.0.0.21 2>/dev/null || true
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
