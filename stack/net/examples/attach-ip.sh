#!/bin/bash
# What examples/attach-time measures, done with iproute2 subprocesses instead of netlink from
# the library (the comparison in notes/net.md): ROUNDS namespaces, each held by a process,
# attached to a bridge of their own. As root.
#   bash stack/net/examples/attach-ip.sh [ROUNDS]
set -euo pipefail
rounds=${1:-50}
br=hkipbench0
ip link add $br type bridge
trap 'ip link del $br' EXIT
ip addr add 10.217.201.1/24 dev $br
ip link set $br up
self=$(readlink /proc/self/ns/net)
for i in $(seq 1 "$rounds"); do
    unshare -n sleep 600 &
    pid=$!
    # until unshare has made the namespace (bounded by the loop count)
    for _ in $(seq 1 100000); do [ "$(readlink /proc/$pid/ns/net)" != "$self" ] && break; done
    s=$(date +%s%N)
    ip link add hkipv$i master $br up type veth peer name eth0 netns $pid
    nsenter --net=/proc/$pid/ns/net sh -c "ip link set lo up && ip addr add 10.217.201.$((i + 1))/24 dev eth0 && ip link set eth0 up && ip route add default via 10.217.201.1"
    e=$(date +%s%N)
    echo $(((e - s) / 1000))
    kill $pid
    wait $pid 2>/dev/null || true
done | sort -n | awk '{a[NR]=$1} END {printf "ip attach: %d rounds, median %.2f ms, p90 %.2f ms\n", NR, a[int(NR/2)+1]/1000, a[int(NR*0.9)]/1000}'
