#!/usr/bin/env bash
# `huskctl run --rm busybox true` end to end (huskctl -> huskd -> containerd-shim-husk-v2 ->
# husk) against `docker run --rm busybox true` on Debian's dockerd + containerd + runc, in one
# run; and the idle RSS of huskd against dockerd and the containerd it starts.
#
#   bench/huskd.sh
#
# Both daemons run privately (own sockets, roots and state in a temporary directory, removed at
# the end), with the same busybox image (scripts/mkimage.sh) loaded into each, and both runs use
# `--network none` (the private dockerd has no bridge). The two commands alternate, the order
# reversed every other round, so that the machine's drift falls on both alike. Prints medians
# and means in ms and their ratio: issue 10's goal is huskctl at most 0.3x docker.
#
# Environment: RUNS=20 (runs of each command), WARMUP=3, DOCKER=/usr/bin/docker (Debian's CLI).
# Needs root, Debian's docker.io, and the release builds (cargo build --release --workspace).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$PWD/target/x86_64-unknown-linux-gnu/release
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/bin/docker}
for b in husk huskd huskctl containerd-shim-husk-v2; do
    [[ -x $bin/$b ]] || { echo "huskd.sh: $bin/$b missing: cargo build --release --workspace" >&2; exit 1; }
done
command -v dockerd >/dev/null || { echo "huskd.sh: dockerd missing (Debian's docker.io)" >&2; exit 1; }

dir=$(mktemp -d /tmp/husk-bench-huskd.XXXXXX)
pids=()
cleanup() {
    local p
    # SIGTERM: each daemon stops what it runs (dockerd its containerd) before it exits.
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done # gone already is fine
    for p in "${pids[@]}"; do wait "$p" || true; done                  # their status is not ours
    rm -rf "$dir"
    # What the runtime keeps per namespace (empty by now): its state root and parent cgroups.
    rmdir /run/containerd/husk/husk-bench /sys/fs/cgroup/*/husk-bench 2>/dev/null || true
}
trap cleanup EXIT

PATH=$bin:$PATH "$bin/huskd" --socket "$dir/huskd.sock" --root "$dir/huskd-root" \
    --state "$dir/huskd-state" --namespace husk-bench 2>"$dir/huskd.log" &
huskd_pid=$!
pids+=("$huskd_pid")
dockerd --data-root "$dir/docker" --exec-root "$dir/docker-exec" --pidfile "$dir/docker.pid" \
    -H "unix://$dir/docker.sock" --iptables=false --bridge=none >"$dir/dockerd.log" 2>&1 &
dockerd_pid=$!
pids+=("$dockerd_pid")

huskctl=("$bin/huskctl" -H "unix://$dir/huskd.sock")
docker=("$DOCKER" -H "unix://$dir/docker.sock")
# Neither daemon signals readiness: poll each socket, at most 30 s.
for _ in $(seq 300); do
    "${huskctl[@]}" version >/dev/null 2>&1 && "${docker[@]}" version >/dev/null 2>&1 && break
    kill -0 "$huskd_pid" 2>/dev/null || { cat "$dir/huskd.log" >&2; exit 1; }
    kill -0 "$dockerd_pid" 2>/dev/null || { tail "$dir/dockerd.log" >&2; exit 1; }
    sleep 0.1
done
scripts/mkimage.sh "$dir/busybox.tar" >/dev/null
"${huskctl[@]}" load -i "$dir/busybox.tar" >/dev/null
"${docker[@]}" load -i "$dir/busybox.tar" >/dev/null

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
containerd_pid=$(pgrep -P "$dockerd_pid" -x containerd || true)
huskd_rss=$(rss_kib "$huskd_pid")
dockerd_rss=$(rss_kib "$dockerd_pid")
containerd_rss=0
[[ -n $containerd_pid ]] && containerd_rss=$(rss_kib "$containerd_pid")

run_huskctl() { "${huskctl[@]}" run --rm --network none busybox true; }
run_docker() { "${docker[@]}" run --rm --network none busybox true; }
for ((i = 0; i < WARMUP; i++)); do run_huskctl; run_docker; done

# One timed run, in ms, appended to $dir/<name>.ms.
timed() {
    local t0 t1
    t0=$(date +%s%N)
    "run_$1"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) | awk '{printf "%.1f\n", $1 / 1000}' >>"$dir/$1.ms"
}
for ((i = 0; i < RUNS; i++)); do
    if ((i % 2)); then timed docker; timed huskctl; else timed huskctl; timed docker; fi
done

stats() { sort -n "$dir/$1.ms" | awk '{v[NR] = $1; s += $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f %.1f\n", m, s / NR }'; }
read -r hm hmean < <(stats huskctl)
read -r dm dmean < <(stats docker)
printf 'run --rm --network none busybox true, ms (%d runs each, interleaved): median, mean\n' "$RUNS"
printf '  huskctl -> huskd -> shim -> husk\t%s\t%s\n' "$hm" "$hmean"
printf '  docker (%s) -> dockerd -> containerd -> runc\t%s\t%s\n' \
    "$("$DOCKER" --version | awk '{print $3}' | tr -d ,)" "$dm" "$dmean"
awk -v h="$hm" -v d="$dm" 'BEGIN {printf "  huskctl / docker (goal <= 0.3)\t%.2f\n", h / d}'
printf 'idle RSS, MiB: huskd %.1f; dockerd %.1f + its containerd %.1f\n' \
    "$(echo "$huskd_rss / 1024" | bc -l)" "$(echo "$dockerd_rss / 1024" | bc -l)" \
    "$(echo "$containerd_rss / 1024" | bc -l)"
