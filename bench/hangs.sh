#!/usr/bin/env bash
# Run `husk run` of /bin/true N times (default 1000), each under a timeout, and count the runs
# that hang or fail.
#
#   bench/hangs.sh [N]
#
# Environment:
#   HUSK=path     runtime binary (default target/x86_64-unknown-linux-gnu/release/husk, built if missing; any runc-compatible
#                 runtime works, e.g. HUSK=/usr/sbin/runc to check this script)
#   TIMEOUT=10    seconds one run may take before it counts as a hang
#
# Each run uses its own container id under a temporary --root; a run that hangs or fails is
# cleaned up with `delete -f`. Prints the first few failures and, for the first hang, the
# processes left behind. Exit status: 0 if every run succeeded, 1 otherwise.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
fi

become_subreaper "$@"

log() { bench_log "$@"; }
die() { bench_log "error: $*"; exit 2; }

N=${1:-1000}
TIMEOUT=${TIMEOUT:-10}
[[ $N =~ ^[0-9]+$ && $N -gt 0 ]] || die "N must be a positive integer, not '$N'"
[[ $EUID -eq 0 ]] || die "must run as root"
resolve_husk "$REPO" || die "$HUSK_WHY"
BIN=$HUSK_BIN

WORK=$(mktemp -d /tmp/husk-hangs.XXXXXX)
ROOT=$WORK/root
mkdir -p "$ROOT"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    delete_all "$BIN" "$ROOT"
    rm -rf --one-file-system "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$REPO/scripts/mkbundle.sh" "$WORK/bundle" /bin/true 2>/dev/null

log "$N runs of \`$BIN run\` of /bin/true, timeout ${TIMEOUT}s each"
ok=0 failed=0 hung=0 total_ms=0 max_ms=0
hang_ids=() fail_msgs=()
step=$(((N + 9) / 10))

# The pids of a process and all its descendants.
tree() {
    local p=$1 c
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done
}

# Show what a hung run's processes are doing, then kill them.
report_and_kill() { # pid id
    local pids p
    mapfile -t pids < <(tree "$1")
    {
        echo "processes of the hung run (and kernel stacks):"
        ps -o pid,ppid,stat,wchan:24,args -p "$(IFS=,; echo "${pids[*]}")" || true
        for p in "${pids[@]}"; do
            [[ -r /proc/$p/stack ]] || continue
            echo "--- $p $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
            head -n 12 "/proc/$p/stack" 2>/dev/null || true
        done
        echo "--- output so far:"
        tail -n 5 "$WORK/out" || true
    } | sed 's/^/    /' >&2
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

for ((i = 1; i <= N; i++)); do
    id=hang$$-$i
    rc=0
    t0=$(date +%s%N)
    "$BIN" --root "$ROOT" run -b "$WORK/bundle" "$id" </dev/null >"$WORK/out" 2>&1 &
    pid=$!
    sleep "$TIMEOUT" &
    dog=$!
    done_pid=
    wait -n -p done_pid "$pid" "$dog" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [[ $done_pid == "$pid" ]]; then
        kill "$dog" 2>/dev/null || true
        wait "$dog" 2>/dev/null || true
    else
        rc=124 # timed out
        if ((hung == 0)); then
            log "run $i hung (no exit after ${TIMEOUT}s)"
            report_and_kill "$pid" "$id"
        else
            mapfile -t pids < <(tree "$pid")
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    total_ms=$((total_ms + ms))
    if ((ms > max_ms)); then max_ms=$ms; fi

    if ((rc == 0)); then
        ok=$((ok + 1))
    elif [[ $done_pid != "$pid" ]]; then
        hung=$((hung + 1))
        hang_ids+=("$i")
        timeout 20 "$BIN" --root "$ROOT" delete -f "$id" </dev/null >/dev/null 2>&1 || true
    else
        failed=$((failed + 1))
        if ((${#fail_msgs[@]} < 5)); then
            fail_msgs+=("run $i: exit $rc: $(tail -n 3 "$WORK/out" | tr '\n' ' ')")
        fi
        timeout 20 "$BIN" --root "$ROOT" delete -f "$id" </dev/null >/dev/null 2>&1 || true
    fi
    if ((i % step == 0 || i == N)); then
        log "$i/$N: ok $ok, failed $failed, hung $hung"
    fi
done

left=$(timeout 20 "$BIN" --root "$ROOT" list -q </dev/null 2>/dev/null | grep -c . || true)

printf '%s: %d runs: ok %d, failed %d, hung %d (timeout %ss); mean %d ms, max %d ms; containers left: %s\n' \
    "$BIN" "$N" "$ok" "$failed" "$hung" "$TIMEOUT" "$((total_ms / N))" "$max_ms" "${left:-?}"
if ((hung)); then
    printf 'hung runs: %s\n' "${hang_ids[*]:0:20}"
fi
for msg in "${fail_msgs[@]}"; do
    printf 'failure: %s\n' "$msg"
done
((failed == 0 && hung == 0))
