#!/usr/bin/env bash
# Benchmark husk against runc and crun (and youki, if on PATH) in one run, on one busybox bundle.
#
#   bench/bench.sh
#
# Benchmarks (hyperfine, mean wall time):
#   run        `run` of /bin/true
#   lifecycle  `create`, `start`, `delete -f` of /bin/true
#   exec       `exec` of /bin/true into a running container (a `sleep` container made by `run -d`)
#   state      `state` of that running container
#   list       `list` with that running container
#   run100     100 sequential `run`s of /bin/true in one command (total time)
#   rss        peak RSS of `run` of /bin/true (/usr/bin/time -f %M; median of RSS_RUNS), each
#              binary read from disk (its page cache dropped first; notes/rss.md)
#   checkpoint `checkpoint --image-path` of a running `sleep` container (made by `run -d` in
#              hyperfine's --prepare), through CRIU
#   restore    `restore -d` of that container from one image made beforehand (the previous
#              restored container deleted in --prepare)
#              Both run in CR_ROUNDS rounds (default 5) in which the runtimes take turns, each
#              runtime's runs pooled: CRIU's time drifts too much between blocks of runs.
#   A runtime without `checkpoint` (its `checkpoint --help` fails), or that cannot checkpoint
#   and restore the container once, is SKIPPED for both, with the reason printed. They need a
#   CRIU >= 4 on PATH: scripts/install-criu.sh.
#
# Prints a table (stdout) of each runtime's mean per benchmark with husk/crun and husk/runc
# ratios, and writes bench/results/latest.json (summary plus every hyperfine --export-json).
# A runtime that is missing or fails a benchmark is reported as such, never dropped.
#
# Environment:
#   HUSK=path        husk binary (default target/x86_64-unknown-linux-gnu/release/husk, built if missing)
#   RUNTIMES="..."   runtimes to compare (default "husk runc crun youki"; youki only if on PATH)
#   ONLY="..."       benchmarks to run (default all; e.g. ONLY="checkpoint restore")
#   WARMUP=3 MIN_RUNS=10 RUNS=   hyperfine --warmup / --min-runs / --runs (RUNS overrides MIN_RUNS)
#   LOOP_N=100 LOOP_RUNS=3       runs per loop command, and hyperfine runs of the loop
#   RSS_RUNS=5                   runs measured for peak RSS
#   CR_ROUNDS=5      rounds of checkpoint and restore (the runs split among them)
#   BENCH_TIMEOUT=900            seconds one hyperfine invocation may take before it is failed
#   OUT=bench/results/latest.json
#   KEEP_HUGETLB=1   keep the hugetlb cgroup v1 hierarchy this script mounts for crun (default:
#                    unmount it again on exit)
#   V2VM=1           run the benchmarks inside the pure cgroup v2 guest of scripts/v2vm.sh, with
#                    fewer runs and benchmarks under its emulation: bench/v2vm.sh says how
#
# Needs root, hyperfine, jq, /usr/bin/time, runc (for scripts/mkbundle.sh): scripts/install-deps.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

if [[ ${V2VM:-} == 1 ]]; then
    exec bash "$HERE/v2vm.sh" "$@"
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
fi

become_subreaper "$@"
set -o errtrace
trap 'bench_log "error: line $LINENO: \`$BASH_COMMAND\` failed (exit $?)"' ERR

log() { bench_log "$@"; }
die() { bench_log "error: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root"
for tool in hyperfine jq timeout; do
    command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found; run scripts/install-deps.sh"

WARMUP=${WARMUP:-3}
MIN_RUNS=${MIN_RUNS:-10}
RUNS=${RUNS:-}
LOOP_N=${LOOP_N:-100}
LOOP_RUNS=${LOOP_RUNS:-3}
RSS_RUNS=${RSS_RUNS:-5}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${OUT:-$REPO/bench/results/latest.json}
read -r -a WANTED <<<"${RUNTIMES:-husk runc crun youki}"

BENCHES=(run lifecycle exec state list run100 rss checkpoint restore)
declare -A LABEL=(
    [run]="run /bin/true (ms)"
    [lifecycle]="create+start+delete (ms)"
    [exec]="exec /bin/true (ms)"
    [state]="state (ms)"
    [list]="list (ms)"
    [run100]="${LOOP_N}x run, total (ms)"
    [rss]="peak RSS of run (MiB)"
    [checkpoint]="checkpoint of sleep (ms)"
    [restore]="restore -d of sleep (ms)"
)
read -r -a ONLY_LIST <<<"${ONLY:-${BENCHES[*]}}"
for b in "${ONLY_LIST[@]}"; do
    [[ -n ${LABEL[$b]:-} ]] || die "ONLY: unknown benchmark $b (known: ${BENCHES[*]})"
done
want() { [[ " ${ONLY_LIST[*]} " == *" $1 "* ]]; }

# --- temp dirs and cleanup -------------------------------------------------------------------
WORK=$(mktemp -d /tmp/husk-bench.XXXXXX)
ID=hb$$ # container id prefix
CURRENT= # pid of the background job run_bg waits for
declare -A BIN ROOT STATUS WHY
RTS=() # runtimes in the report, in order

cleanup() {
    local rc=$? rt
    trap - EXIT INT TERM
    if [[ -n $CURRENT ]]; then
        kill -TERM "$CURRENT" 2>/dev/null || true
        wait "$CURRENT" 2>/dev/null || true
    fi
    for rt in "${RTS[@]}"; do
        if [[ -n ${ROOT[$rt]:-} ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
    done
    rm -rf --one-file-system "$WORK"
    unmount_hugetlb
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- runtimes --------------------------------------------------------------------------------
add_runtime() { # name path status why
    RTS+=("$1")
    BIN[$1]=$2
    STATUS[$1]=$3
    WHY[$1]=$4
}

for rt in "${WANTED[@]}"; do
    case $rt in
        husk)
            if resolve_husk "$REPO"; then
                add_runtime husk "$HUSK_BIN" ok ""
            else
                add_runtime husk "${HUSK:-$REPO/target/x86_64-unknown-linux-gnu/release/husk}" missing "$HUSK_WHY"
            fi
            ;;
        youki)
            # optional: only compared when installed
            if p=$(command -v youki); then add_runtime youki "$p" ok ""; fi
            ;;
        *)
            if p=$(command -v "$rt"); then
                add_runtime "$rt" "$p" ok ""
            else
                add_runtime "$rt" "$rt" missing "$rt not found on PATH"
            fi
            ;;
    esac
done
((${#RTS[@]})) || die "no runtimes selected"

if [[ ${STATUS[crun]:-} == ok ]]; then mount_hugetlb_for_crun; fi

version_of() {
    [[ ${STATUS[$1]} != missing ]] || return 0
    timeout 10 "${BIN[$1]}" --version </dev/null 2>&1 | head -n1 || true
}

# --- bundles ---------------------------------------------------------------------------------
"$REPO/scripts/mkbundle.sh" "$WORK/bundle" /bin/true 2>/dev/null
"$REPO/scripts/mkbundle.sh" "$WORK/sleep" sleep 1000000 2>/dev/null
BUNDLE=$WORK/bundle

for rt in "${RTS[@]}"; do
    ROOT[$rt]=$WORK/root-$rt
    mkdir -p "${ROOT[$rt]}"
done

# Shell-quoted "BIN --root ROOT" for a runtime.
rtcmd() { printf '%q --root %q' "${BIN[$1]}" "${ROOT[$1]}"; }

# Run a long command in the background and wait for it, so that INT and TERM interrupt the wait
# at once; cleanup() stops it. (timeout(1) puts its command in its own process group, out of
# reach of a terminal's ^C.)
run_bg() {
    local rc=0
    "$@" &
    CURRENT=$!
    wait "$CURRENT" || rc=$?
    CURRENT=
    return "$rc"
}

# Run a command once with a timeout; on failure print the last lines of its output. Output goes
# to a file, not a pipe: a detached container keeps its stdio open.
try_once() { # seconds cmd...
    local t=$1 out=$WORK/try.out rc=0
    shift
    timeout -k 5 "$t" "$@" </dev/null >"$out" 2>&1 || rc=$?
    if ((rc)); then
        if ((rc == 124 || rc == 137)); then echo "timed out after ${t}s" >>"$out"; fi
        local msg
        msg=$(grep -v '^\s*$' "$out" | tail -n 3 | tr '\n' ' ' | sed 's/ *$//' || true)
        printf '%s(exit %d)' "${msg:+$msg }" "$rc"
        return 1
    fi
}

# Smoke test: one `run` per runtime. A runtime that cannot run /bin/true is failed everywhere.
for rt in "${RTS[@]}"; do
    [[ ${STATUS[$rt]} == ok ]] || continue
    if ! why=$(try_once 30 "${BIN[$rt]}" --root "${ROOT[$rt]}" run -b "$BUNDLE" "$ID-$rt-smoke"); then
        STATUS[$rt]=failed
        WHY[$rt]="smoke test \`run\` failed: $why"
        log "$rt: ${WHY[$rt]}; skipping $rt"
        delete_all "${BIN[$rt]}" "${ROOT[$rt]}"
    fi
done

# --- measuring -------------------------------------------------------------------------------
RECORDS=$WORK/records.jsonl
mkdir -p "$WORK/json"
: >"$RECORDS"

record() { # bench rt status reason [json-file]
    local stats=null
    if [[ -n ${5:-} ]]; then
        stats=$(jq -c '.results[0] | {
            mean_ms: (.mean * 1000), stddev_ms: ((.stddev // 0) * 1000),
            median_ms: (.median * 1000), min_ms: (.min * 1000), max_ms: (.max * 1000),
            runs: (.times | length) }' "$5")
    fi
    jq -nc --arg b "$1" --arg r "$2" --arg s "$3" --arg why "$4" --argjson stats "$stats" \
        '{bench: $b, runtime: $r, status: $s} + (if $why != "" then {error: $why} else {} end)
         + ($stats // {})' >>"$RECORDS"
}

# hyperfine one command for one runtime. Args: bench rt mode(-N|sh) check-cmd bench-cmd [extra hyperfine args]
# With MEASURE_JSON set, the results go there and are not recorded (the caller pools them);
# any outcome but success is recorded as usual and sets MEASURE_FAILED.
measure() {
    local bench=$1 rt=$2 mode=$3 check=$4 cmd=$5 why json errf
    shift 5
    want "$bench" || return 0
    MEASURE_FAILED=1
    if [[ ${STATUS[$rt]} != ok ]]; then
        record "$bench" "$rt" "${STATUS[$rt]}" "${WHY[$rt]}"
        return
    fi
    if ! why=$(try_once 30 sh -c "$check"); then
        log "$rt: $bench failed: $why"
        record "$bench" "$rt" failed "$why"
        return
    fi
    json=${MEASURE_JSON:-$WORK/json/$bench.$rt.json}
    errf=$WORK/json/$bench.$rt.err
    # -i: finish the runs even if some fail, then count the failures from the exit codes.
    local hf=(hyperfine -i --style basic --time-unit millisecond --export-json "$json" -n "$rt")
    if [[ $mode == -N ]]; then hf+=(-N); fi
    local rc=0
    run_bg timeout -k 10 "$BENCH_TIMEOUT" "${hf[@]}" "$@" "$cmd" >&2 2>"$errf" || rc=$?
    if ((rc == 124 || rc == 137)); then
        why="hyperfine not done after BENCH_TIMEOUT=${BENCH_TIMEOUT}s (a run hung?)"
    elif ((rc != 0)); then
        why=$(grep -v '^\s*$' "$errf" | tail -n 2 | tr '\n' ' ' | sed 's/ *$//' || true)
        why="hyperfine failed: ${why:-exit $rc}"
    else
        local bad
        bad=$(jq -r '.results[0].exit_codes | map(select(. != 0)) as $bad
            | if ($bad | length) == 0 then "" else
              "\($bad | length) of \(length) runs failed (exit \($bad | unique | map(tostring) | join(",")))"
              end' "$json")
        if [[ -z $bad ]]; then
            MEASURE_FAILED=
            [[ -n ${MEASURE_JSON:-} ]] || record "$bench" "$rt" ok "" "$json"
            return
        fi
        # Containers a failed run left behind would fail the samples; keep the sleep container.
        case $bench in
            exec | state | list) ;;
            *) delete_all "${BIN[$rt]}" "${ROOT[$rt]}" ;;
        esac
        why="$bad$(sample_error "$check")"
        record "$bench" "$rt" failed "$why" "$json"
        log "$rt: $bench failed: $why"
        return
    fi
    log "$rt: $bench failed: $why"
    record "$bench" "$rt" failed "$why"
}

# Re-run a command that failed now and then under hyperfine (up to 100 times) to show how it
# fails: prints "; e.g. MESSAGE", or nothing if it did not fail again.
sample_error() { # cmd
    local i msg
    for ((i = 0; i < 100; i++)); do
        if ! msg=$(try_once 30 sh -c "$1"); then
            printf '; e.g. %s' "$msg"
            return 0
        fi
    done
}

runs_args() {
    if [[ -n $RUNS ]]; then
        printf '%s\n' --warmup "$WARMUP" --runs "$RUNS"
    else
        printf '%s\n' --warmup "$WARMUP" --min-runs "$MIN_RUNS"
    fi
}
mapfile -t RUNS_ARGS < <(runs_args)

bench_header() { if want "$1"; then log "=== ${LABEL[$1]}"; fi; }

# (a) run
bench_header run
for rt in "${RTS[@]}"; do
    c=$(rtcmd "$rt")
    measure run "$rt" -N "$c run -b $BUNDLE $ID-$rt-run" "$c run -b $BUNDLE $ID-$rt-run" "${RUNS_ARGS[@]}"
    if [[ ${STATUS[$rt]} == ok ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
done

# (b) create + start + delete
bench_header lifecycle
for rt in "${RTS[@]}"; do
    c=$(rtcmd "$rt")
    id=$ID-$rt-csd
    cmd="$c create -b $BUNDLE $id && $c start $id && $c delete -f $id"
    measure lifecycle "$rt" sh "$cmd" "$cmd" "${RUNS_ARGS[@]}"
    if [[ ${STATUS[$rt]} == ok ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
done

# (c, d, e) exec, state, list against a running `sleep` container per runtime
declare -A SLEEPER_WHY
for rt in "${RTS[@]}"; do
    [[ ${STATUS[$rt]} == ok ]] && { want exec || want state || want list; } || continue
    id=$ID-$rt-sleep
    if ! why=$(try_once 30 "${BIN[$rt]}" --root "${ROOT[$rt]}" run -d -b "$WORK/sleep" "$id"); then
        SLEEPER_WHY[$rt]="\`run -d\` of the sleep container failed: $why"
        continue
    fi
    state=
    for _ in $(seq 50); do
        state=$(timeout 10 "${BIN[$rt]}" --root "${ROOT[$rt]}" state "$id" 2>/dev/null | jq -r .status 2>/dev/null) || true
        [[ $state == running ]] && break
        sleep 0.1
    done
    [[ $state == running ]] || SLEEPER_WHY[$rt]="sleep container not running after \`run -d\` (state: ${state:-unknown})"
done

for bench in exec state list; do
    bench_header "$bench"
    for rt in "${RTS[@]}"; do
        c=$(rtcmd "$rt")
        id=$ID-$rt-sleep
        if [[ ${STATUS[$rt]} == ok && -n ${SLEEPER_WHY[$rt]:-} && $bench != list ]]; then
            record "$bench" "$rt" failed "${SLEEPER_WHY[$rt]}"
            continue
        fi
        case $bench in
            exec) cmd="$c exec $id /bin/true" ;;
            state) cmd="$c state $id" ;;
            list) cmd="$c list" ;;
        esac
        measure "$bench" "$rt" -N "$cmd" "$cmd" "${RUNS_ARGS[@]}"
    done
done
for rt in "${RTS[@]}"; do
    if [[ ${STATUS[$rt]} == ok ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
done

# (f) LOOP_N sequential runs in one command
bench_header run100
for rt in "${RTS[@]}"; do
    c=$(rtcmd "$rt")
    id=$ID-$rt-loop
    loop="i=0; while [ \$i -lt $LOOP_N ]; do $c run -b $BUNDLE $id || exit 1; i=\$((i + 1)); done"
    measure run100 "$rt" sh "$c run -b $BUNDLE $id" "$loop" --warmup 0 --runs "$LOOP_RUNS"
    if [[ ${STATUS[$rt]} == ok ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
done

# (g) peak RSS of run
bench_header rss
for rt in "${RTS[@]}"; do
    want rss || break
    if [[ ${STATUS[$rt]} != ok ]]; then
        record rss "$rt" "${STATUS[$rt]}" "${WHY[$rt]}"
        continue
    fi
    kib=()
    why=
    # The figure depends on how the binary's pages came into the page cache (a fresh copy sits
    # in 64 KiB folios that a fault maps whole; a file read from disk in single pages: up to
    # 300 KiB apart, notes/rss.md). Every binary is measured read from disk: its cached pages
    # dropped, then one unmeasured run to read it back.
    sync "${BIN[$rt]}" && dd if="${BIN[$rt]}" iflag=nocache count=0 status=none ||
        log "$rt: could not drop the binary's cached pages; rss measured as cached"
    try_once 30 "${BIN[$rt]}" --root "${ROOT[$rt]}" run -b "$BUNDLE" "$ID-$rt-rss" >/dev/null || true
    for ((i = 0; i < RSS_RUNS; i++)); do
        if ! why=$(try_once 30 /usr/bin/time -f %M -o "$WORK/rss" \
            "${BIN[$rt]}" --root "${ROOT[$rt]}" run -b "$BUNDLE" "$ID-$rt-rss"); then
            break
        fi
        kib+=("$(tail -n1 "$WORK/rss")")
    done
    delete_all "${BIN[$rt]}" "${ROOT[$rt]}"
    if ((${#kib[@]} < RSS_RUNS)); then
        log "$rt: rss failed: $why"
        record rss "$rt" failed "$why"
        continue
    fi
    # Values in MiB, stored under the same keys as the timings.
    printf '%s\n' "${kib[@]}" | jq -s --arg r "$rt" -c '
        . as $kib | map(. / 1024) | sort | {bench: "rss", runtime: $r, status: "ok", unit: "MiB",
        mean_ms: (add / length), median_ms: .[length / 2 | floor], min_ms: .[0], max_ms: .[-1],
        runs: length, kib: $kib}' >>"$RECORDS"
    log "$rt: peak RSS of run: $(printf '%s ' "${kib[@]}")KiB"
done

# (h, i) checkpoint and restore, through CRIU, of a `sleep` container whose stdio is /dev/null
# (CRIU cannot dump a container whose stdio is a file outside it).

# Whether a runtime can checkpoint and restore at all: makes $WORK/ref-RT, the image `restore` is
# timed with, and restores it once. Prints why not on failure.
cr_reference() { # rt
    local rt=$1 c id=$ID-$1-cr pid why
    c=$(rtcmd "$rt")
    why=$(try_once 10 "${BIN[$rt]}" checkpoint --help) || {
        echo "\`checkpoint --help\` failed: $why"
        return 1
    }
    why=$(try_once 30 sh -c "$c run -d -b $WORK/sleep $id >/dev/null 2>&1") || {
        echo "\`run -d\` failed: $why"
        return 1
    }
    # `run -d` may return before the container's process has exec'd sleep.
    pid=$(timeout 10 "${BIN[$rt]}" --root "${ROOT[$rt]}" state "$id" 2>/dev/null | jq -r .pid) || true
    for _ in $(seq 50); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]] && break
        sleep 0.1
    done
    why=$(try_once 60 "${BIN[$rt]}" --root "${ROOT[$rt]}" checkpoint --image-path "$WORK/ref-$rt" "$id") || {
        echo "a first checkpoint failed: $why"
        return 1
    }
    why=$(try_once 60 "${BIN[$rt]}" --root "${ROOT[$rt]}" restore -d \
        --image-path "$WORK/ref-$rt" -b "$WORK/sleep" "$id") || {
        echo "a first restore failed: $why"
        return 1
    }
}

declare -A CR_WHY
if want checkpoint || want restore; then
    criu_out=$(timeout 30 criu check 2>&1) || true
    for rt in "${RTS[@]}"; do
        [[ ${STATUS[$rt]} == ok ]] || continue
        if [[ $criu_out != *"Looks good"* ]]; then
            why="no working CRIU on PATH (criu check: ${criu_out:-not found}); run scripts/install-criu.sh"
        else
            why=$(cr_reference "$rt") || true
        fi
        delete_all "${BIN[$rt]}" "${ROOT[$rt]}"
        if [[ -n $why ]]; then
            CR_WHY[$rt]=$why
            log "$rt: checkpoint and restore skipped: $why"
        fi
    done
fi
# CRIU's time drifts by 20% and more from one block of runs to the next here (namespaces torn
# down in the background, caches), which back-to-back blocks would book to whichever runtime ran
# then. So checkpoint and restore run in CR_ROUNDS rounds in which the runtimes take turns, and
# each runtime's runs are pooled.
CR_ROUNDS=${CR_ROUNDS:-5}
per_round=$(((${RUNS:-$MIN_RUNS} + CR_ROUNDS - 1) / CR_ROUNDS))
pool() { # hyperfine exports of one command -> one export with their runs pooled
    jq -s '(map(.results[0].times) | add) as $t | ($t | add / length) as $m
        | {results: [.[0].results[0] + {
            times: $t, exit_codes: (map(.results[0].exit_codes) | add), mean: $m,
            stddev: (if ($t | length) > 1
                then ($t | map((. - $m) * (. - $m)) | add / (length - 1) | sqrt) else 0 end),
            median: ($t | sort | if length % 2 == 1 then .[length / 2 | floor]
                else (.[length / 2 - 1] + .[length / 2]) / 2 end),
            min: ($t | min), max: ($t | max),
            user: (map(.results[0].user) | add / length),
            system: (map(.results[0].system) | add / length)}]}' "$@"
}
for bench in checkpoint restore; do
    want "$bench" || continue
    bench_header "$bench"
    declare -A CR_DONE=()
    for rt in "${RTS[@]}"; do
        if [[ -n ${CR_WHY[$rt]:-} ]]; then
            record "$bench" "$rt" skipped "${CR_WHY[$rt]}"
            CR_DONE[$rt]=1
        fi
    done
    for ((round = 1; round <= CR_ROUNDS; round++)); do
        for rt in "${RTS[@]}"; do
            [[ -z ${CR_DONE[$rt]:-} ]] || continue
            c=$(rtcmd "$rt")
            id=$ID-$rt-cr
            case $bench in
                checkpoint)
                    prep="$c delete -f $id >/dev/null 2>&1; rm -rf $WORK/img-$rt && $c run -d -b $WORK/sleep $id </dev/null >/dev/null 2>&1"
                    cmd="$c checkpoint --image-path $WORK/img-$rt $id"
                    ;;
                restore)
                    prep="$c delete -f $id >/dev/null 2>&1 || true"
                    cmd="$c restore -d --image-path $WORK/ref-$rt -b $WORK/sleep $id"
                    ;;
            esac
            warm=1
            if ((round == 1)); then warm=$WARMUP; fi
            MEASURE_JSON=$WORK/json/$bench.$rt.round$round.json measure "$bench" "$rt" sh \
                "$prep; $cmd" "$cmd" --prepare "$prep" --warmup "$warm" --runs "$per_round"
            if [[ -n $MEASURE_FAILED ]]; then CR_DONE[$rt]=1; fi
            if [[ ${STATUS[$rt]} == ok ]]; then delete_all "${BIN[$rt]}" "${ROOT[$rt]}"; fi
        done
    done
    for rt in "${RTS[@]}"; do
        [[ -z ${CR_DONE[$rt]:-} ]] || continue
        pool "$WORK/json/$bench.$rt".round*.json >"$WORK/json/$bench.$rt.json"
        record "$bench" "$rt" ok "" "$WORK/json/$bench.$rt.json"
    done
    unset CR_DONE
done

# --- report ----------------------------------------------------------------------------------
# hyperfine exports, merged per benchmark
HF_ALL=$WORK/hyperfine.json
{
    printf '{'
    first=1
    for bench in "${BENCHES[@]}"; do
        files=()
        for rt in "${RTS[@]}"; do
            if [[ -e $WORK/json/$bench.$rt.json ]]; then files+=("$WORK/json/$bench.$rt.json"); fi
        done
        ((${#files[@]})) || continue
        ((first)) || printf ','
        first=0
        printf '"%s":' "$bench"
        jq -s -c '{results: map(.results[])}' "${files[@]}"
    done
    printf '}'
} >"$HF_ALL"

META=$WORK/meta.json
{
    for rt in "${RTS[@]}"; do
        jq -nc --arg n "$rt" --arg p "${BIN[$rt]}" --arg v "$(version_of "$rt")" \
            --arg s "${STATUS[$rt]}" --arg w "${WHY[$rt]}" \
            '{($n): ({path: $p, version: $v, status: $s} + (if $w != "" then {error: $w} else {} end))}'
    done
} | jq -s 'add' >"$META"

mkdir -p "$(dirname "$OUT")"
jq -n \
    --slurpfile records "$RECORDS" \
    --slurpfile hf "$HF_ALL" \
    --slurpfile meta "$META" \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg kernel "$(uname -r)" \
    --arg cpus "$(nproc)" \
    --arg hyperfine "$(hyperfine --version)" \
    --arg hugetlb "${MOUNTED_HUGETLB:+mounted by bench.sh for crun}" \
    --argjson loop_n "$LOOP_N" \
    '
    def ratio($a; $b): if $a.status == "ok" and $b.status == "ok" and $b.mean_ms > 0
        then ($a.mean_ms / $b.mean_ms) else null end;
    (reduce $records[] as $r ({}; .[$r.bench][$r.runtime] = ($r | del(.bench, .runtime)))) as $summary
    | {
        date: $date, kernel: $kernel, cpus: ($cpus | tonumber), hyperfine: $hyperfine,
        loop_n: $loop_n,
        note: "times in ms (run100: total for loop_n runs); rss in MiB under the same keys",
        runtimes: $meta[0],
        summary: $summary,
        ratios: ($summary | map_values({
            husk_crun: (if .husk and .crun then ratio(.husk; .crun) else null end),
            husk_runc: (if .husk and .runc then ratio(.husk; .runc) else null end)})),
        hyperfine: $hf[0]
      }
      + (if $hugetlb != "" then {hugetlb: $hugetlb} else {} end)
    ' >"$OUT"

# Table on stdout.
{
    printf 'benchmark'
    for rt in "${RTS[@]}"; do printf '\t%s' "$rt"; done
    printf '\thusk/crun\thusk/runc\n'
    jq -r --argjson rts "$(printf '%s\n' "${RTS[@]}" | jq -R . | jq -sc .)" \
        --argjson labels "$(for b in "${BENCHES[@]}"; do jq -nc --arg k "$b" --arg v "${LABEL[$b]}" '{($k): $v}'; done | jq -sc add)" \
        --argjson order "$(printf '%s\n' "${BENCHES[@]}" | jq -R . | jq -sc .)" '
        def num: .mean_ms * 10 | round | "\(. / 10 | floor).\(. % 10)";
        def cell: if . == null then "-"
            elif .status == "ok" then num
            elif .mean_ms != null then "FAILED(\(num))"
            else (.status | ascii_upcase) end;
        def r($x): if $x == null then "-" else ($x * 100 | round | "\(. / 100 | floor).\(. % 100 | if . < 10 then "0" else "" end)\(. % 100)x") end;
        . as $j | $order[] as $b | $j.summary[$b] as $s | select($s != null)
        | [$labels[$b]] + [$rts[] as $rt | $s[$rt] | cell]
          + [r($j.ratios[$b].husk_crun), r($j.ratios[$b].husk_runc)]
        | @tsv' "$OUT"
} | column -t -s $'\t'

# Why things failed.
jq -r '
    ([.runtimes | to_entries[] | select(.value.status != "ok")
      | "\(.key): \(.value.status): \(.value.error // "")"] | unique[]),
    ([.summary | to_entries[] | .key as $b | .value | to_entries[]
      | select(.value.status == "failed" or .value.status == "skipped")
      | select(.value.error | startswith("smoke test") | not)
      | "\(.key) \($b): \(.value.status): \(.value.error // "")"][])' "$OUT" | sed 's/^/  /' |
    { if IFS= read -r line; then
        printf '\nfailed, skipped or missing (FAILED(x): some runs failed, x is the mean of all runs):\n%s\n' "$line"
        cat
    fi; }

printf '\nversions: %s\n' "$(jq -r '[.runtimes | to_entries[] | "\(.key) \(if .value.version == "" then "(" + .value.status + ")" else .value.version end)"] | join("; ")' "$OUT")"
printf 'results: %s\n' "${OUT#"$REPO"/}"
