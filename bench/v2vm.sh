#!/usr/bin/env bash
# bench/bench.sh inside the pure cgroup v2 guest of scripts/v2vm.sh: husk, runc and crun run
# side by side in one run there, each benchmark on the guest's cgroup v2.
#
#   bench/v2vm.sh            (or: V2VM=1 bench/bench.sh)
#
# The guest runs under TCG emulation (no KVM for a stock kernel here; notes/v2vm.md): every exec
# costs 25-40x, a `run` about half a second. Only the ratios mean anything, and only between
# runtimes measured in the same run. The guest sees this host's / read-only, so hyperfine,
# runc, crun and husk are the host's binaries; the bundles are made on the guest's tmpfs.
#
# Defaults differ from bench.sh to keep the run bounded (2-4 minutes on a quiet machine; a
# machine loaded by other work slows the emulation 5-10x, and ONLY="run rss" is then the one
# to ask for):
#   ONLY="run lifecycle rss"   (run100 would take minutes per runtime; the guest has no CRIU)
#   WARMUP=1 RUNS=8 RSS_RUNS=3 BENCH_TIMEOUT=300, V2VM_TIMEOUT=1800 for the whole guest,
#   V2VM_BOOT_TIMEOUT=180
# Any of them, and RUNTIMES, HUSK, LOOP_N..., may be set as for bench.sh.
#
#   EXTRA="NAME=PATH ..."   more runtime binaries to compare in the same run, e.g. another husk
#                           build: EXTRA="husk-main=/work/main/target/.../release/husk". Each is
#                           linked as NAME into a directory put first on PATH (bench.sh finds
#                           runtimes other than husk on PATH) and added to RUNTIMES.
#   OUT=bench/results/v2vm.json   where the guest's results are written on this host; they
#                           carry "v2vm": {...} saying they were measured in the TCG guest.
#
# Exit status: bench.sh's in the guest; 125 when the guest could not be built or booted.
# Needs root, and what bench.sh and scripts/v2vm.sh need (scripts/install-deps.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

# The marker line between bench.sh's table and the results' JSON on the guest's stdout.
MARK='--- v2vm bench results ---'

# In the guest: bench.sh with its results on the guest's tmpfs, then the table, the marker and
# the results on stdout, for the host to split.
in_guest() {
    local out=/tmp/v2vm-bench.json rc=0
    V2VM=0 OUT=$out bash "$HERE/bench.sh" || rc=$?
    if [[ -f $out ]]; then
        printf '%s\n' "$MARK"
        jq -c . "$out"
    fi
    return "$rc"
}

if [[ ${1:-} == --in-guest ]]; then
    in_guest
    exit
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
fi

die() { bench_log "error: $*"; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root"
command -v jq >/dev/null || die "jq not found; run scripts/install-deps.sh"

# husk is resolved (and built if missing) here: the guest has no cargo and a read-only tree.
if resolve_husk "$REPO"; then
    export HUSK=$HUSK_BIN
else
    die "$HUSK_WHY"
fi
RUNTIMES=${RUNTIMES:-husk runc crun}

# Under target/ rather than /tmp: the guest mounts a fresh tmpfs on /tmp.
BIN_DIR=$REPO/target/v2vm/bench-bin
rm -rf "$BIN_DIR"
mkdir -p "$BIN_DIR"
for e in ${EXTRA:-}; do
    name=${e%%=*} path=${e#*=}
    [[ $name != "$e" && $name =~ ^[A-Za-z0-9._-]+$ ]] || die "EXTRA: $e is not NAME=PATH"
    [[ -x $path && ! -d $path ]] || die "EXTRA: $path is not an executable file"
    ln -s "$(realpath "$path")" "$BIN_DIR/$name"
    RUNTIMES+=" $name"
done

OUT=${OUT:-$REPO/bench/results/v2vm.json}
mkdir -p "$(dirname "$OUT")"
raw=$(mktemp "$REPO/target/v2vm/bench-out.XXXXXX")
trap 'rm -f "$raw"' EXIT

export RUNTIMES PATH="$BIN_DIR:$PATH"
export ONLY=${ONLY:-run lifecycle rss}
export WARMUP=${WARMUP:-1} RSS_RUNS=${RSS_RUNS:-3} BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}
[[ -n ${MIN_RUNS:-} ]] || export RUNS=${RUNS:-8}
bench_log "in the cgroup v2 guest (TCG: only ratios count): $RUNTIMES; $ONLY"
rc=0
# A loaded machine slows the emulated boot past v2vm.sh's 60 s watchdog: more time here.
V2VM_TIMEOUT=${V2VM_TIMEOUT:-1800} V2VM_BOOT_TIMEOUT=${V2VM_BOOT_TIMEOUT:-180} \
    "$REPO/scripts/v2vm.sh" \
    bash "$HERE/v2vm.sh" --in-guest >"$raw" || rc=$?

# The table as bench.sh printed it, then the results with a note of where they come from. The
# guest's console was seen ending lines with \r\n: dropped, or the marker would not match.
sed -i 's/\r$//' "$raw"
sed -e "/^$MARK\$/,\$d" -e '/^results: /d' "$raw"
if grep -qx -- "$MARK" "$raw"; then
    sed "1,/^$MARK\$/d" "$raw" | jq --arg smp "${V2VM_SMP:-2}" --arg mem "${V2VM_MEM:-2G}" \
        --arg host "$(uname -r)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
        . + {v2vm: {note: "measured in the QEMU guest of scripts/v2vm.sh (TCG emulation, pure cgroup v2): only ratios between runtimes of this run count",
            guest_cpus: ($smp | tonumber), guest_mem: $mem, host_kernel: $host,
            host_load_after: $load}}' >"$OUT"
    printf 'results: %s\n' "${OUT#"$REPO"/}"
else
    bench_log "the guest wrote no results"
fi
exit "$rc"
