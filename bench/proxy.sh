#!/usr/bin/env bash
# The port proxy: husk-proxy against Debian's docker-proxy on loopback, in one run.
#
#   bench/proxy.sh
#
# Each round runs, for each proxy in turn (the order alternates between rounds, since this
# machine's speed drifts):
#   tcp    BYTES through one TCP connection, client to server: throughput (MB/s) and the
#          proxy's CPU time (user + system, /proc/PID/stat, finished threads included) per GB
#   tcpN   the same BYTES spread over CONNS connections at once
#   udp    COUNT 64-byte request/response round trips through one UDP flow: round-trip time
#          (p50, p99, mean, in us) and the proxy's CPU time per round trip
#   and the proxy's peak RSS (VmHWM) in the tcpN and udp runs
# and the same without a proxy ("direct"), the floor. The load and the server standing in for
# the container are stack/proxy/examples/proxy-load.rs; it starts each proxy as the manager
# will, reading its status on fd 3. The table gives each proxy's medians over the rounds and
# husk/docker ratios; the issue's goal is throughput ratio >= 1 at CPU-per-GB ratio <= 1.
#
# Environment:
#   HUSK_PROXY=path     husk-proxy (default target/x86_64-unknown-linux-gnu/release/husk-proxy,
#                       built with proxy-load if either is missing)
#   DOCKER_PROXY=path   docker-proxy (default /usr/sbin/docker-proxy, Debian's docker.io)
#   ROUNDS=5 BYTES=1073741824 CONNS=64 COUNT=20000
#   BENCH_TIMEOUT=120   seconds one measurement may take
#   OUT=bench/results/proxy.json   every measurement, with the summary
#
# Needs jq; no root (loopback ports only).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
fi

log() { bench_log "$@"; }
die() { bench_log "error: $*"; exit 1; }

command -v jq >/dev/null || die "jq not found; run scripts/install-deps.sh"
ROUNDS=${ROUNDS:-5}
BYTES=${BYTES:-1073741824}
CONNS=${CONNS:-64}
COUNT=${COUNT:-20000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
OUT=${OUT:-$REPO/bench/results/proxy.json}
DOCKER_PROXY=${DOCKER_PROXY:-/usr/sbin/docker-proxy}
[[ -x $DOCKER_PROXY ]] || die "$DOCKER_PROXY missing (Debian's docker.io)"

REL=$REPO/target/x86_64-unknown-linux-gnu/release
LOAD=$REL/examples/proxy-load
HUSK_PROXY=${HUSK_PROXY:-$REL/husk-proxy}
if [[ ! -x $HUSK_PROXY || ! -x $LOAD ]]; then
    if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
        PATH=$HOME/.cargo/bin:$PATH
    fi
    log "building husk-proxy and proxy-load (release)"
    (cd "$REPO" && cargo build --release -p husk-proxy --bin husk-proxy --example proxy-load >&2)
fi
[[ -x $HUSK_PROXY ]] || die "$HUSK_PROXY missing"
[[ -x $LOAD ]] || die "$LOAD missing"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results.jsonl

measure() { # name proxy-path
    local name=$1 bin=$2 load line
    for load in "tcp $BYTES 1" "tcp $BYTES $CONNS" "udp $COUNT"; do
        # shellcheck disable=SC2086 # $load is the words of the command line
        if ! line=$(timeout -k 5 "$BENCH_TIMEOUT" "$LOAD" ${load%% *} "$bin" ${load#* } </dev/null); then
            die "$name $load failed"
        fi
        jq -c --arg name "$name" --argjson round "$round" '. + {name: $name, round: $round}' \
            <<<"$line" >>"$RESULTS"
    done
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    if ((round % 2)); then
        measure husk "$HUSK_PROXY"
        measure docker "$DOCKER_PROXY"
    else
        measure docker "$DOCKER_PROXY"
        measure husk "$HUSK_PROXY"
    fi
    measure direct direct
done

mkdir -p "$(dirname "$OUT")"
jq -s --argjson conns "$CONNS" --arg date "$(date -u +%FT%TZ)" --arg docker "$(dpkg-query -W -f '${Version}' docker.io 2>/dev/null || echo unknown)" '
    def median: sort | if length == 0 then null
        elif length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def med(name; proto; f): [.[] | select(.name == name and .proto == proto) | f] | median;
    def medn(name; conns; f): [.[] | select(.name == name and .conns == conns) | f] | median;
    def r(a; b): if a == null or b == null or b == 0 then null else (a / b * 100 | round / 100) end;
    . as $all
    | (reduce ("husk", "docker", "direct") as $n ({};
        .[$n] = {
          tcp_mb_per_s: ($all | medn($n; 1; .mb_per_s)),
          tcp_cpu_secs_per_gb: ($all | medn($n; 1; .cpu_secs_per_gb)),
          tcpN_mb_per_s: ($all | medn($n; $conns; .mb_per_s)),
          tcpN_cpu_secs_per_gb: ($all | medn($n; $conns; .cpu_secs_per_gb)),
          tcpN_peak_rss_kib: ($all | medn($n; $conns; .peak_rss_kib)),
          udp_rtt_us_p50: ($all | med($n; "udp"; .rtt_us_p50)),
          udp_rtt_us_p99: ($all | med($n; "udp"; .rtt_us_p99)),
          udp_rtt_us_mean: ($all | med($n; "udp"; .rtt_us_mean)),
          udp_cpu_us_per_rtt: ($all | med($n; "udp"; .cpu_us_per_rtt)),
          udp_peak_rss_kib: ($all | med($n; "udp"; .peak_rss_kib))
        })) as $m
    | {date: $date, docker_io: $docker, rounds: ($all | map(.round) | max), conns: $conns,
       medians: $m,
       "husk/docker": ($m.husk | to_entries | map({(.key): r(.value; $m.docker[.key])}) | add),
       goal: {"throughput husk/docker >= 1": r($m.husk.tcp_mb_per_s; $m.docker.tcp_mb_per_s),
              "cpu per GB husk/docker <= 1": r($m.husk.tcp_cpu_secs_per_gb; $m.docker.tcp_cpu_secs_per_gb)},
       measurements: $all}' "$RESULTS" >"$OUT"

printf '%-22s %10s %10s %10s %12s\n' "median of $(jq .rounds "$OUT") rounds" husk docker direct husk/docker
jq -r '.medians as $m | ."husk/docker" | to_entries[]
    | [.key, $m.husk[.key], $m.docker[.key], $m.direct[.key], .value]
    | map(if type == "number" then (. * 100 | round / 100) else (. // "-") end) | @tsv' "$OUT" |
    while IFS=$'\t' read -r k h d x ratio; do
        printf '%-22s %10s %10s %10s %12s\n' "$k" "$h" "$d" "$x" "$ratio"
    done
log "wrote $OUT"
