#!/usr/bin/env bash
# Time of `ctr run --rm` of /bin/true through containerd-shim-husk-v2 against containerd's Go
# shim (containerd-shim-runc-v2), each driving crun and runc, and ours driving husk; one run.
#
#   bench/shim.sh
#
# Two private containerds (Debian's, or $CONTAINERD_BIN) side by side, each with its own
# config, socket, root and state, and a busybox image built here: in one, the runtime
# io.containerd.runc.v2 is the Go shim; in the other, it is our shim (so that ctr's
# --runc-binary reaches it as runc's options, BinaryName), and io.containerd.husk.v2 is our shim
# with husk. hyperfine times the cases interleaved: ROUNDS rounds, each timing every case
# PER_ROUND times in turn (in reverse order every other round), so that the machine's drift
# (other builds, the VM's speed) falls on every case alike. The table gives medians and means in
# ms and the ratios of the medians, among them the issue's goal: ours with husk at most 0.7x the
# Go shim with crun. Each containerd runs in a cgroup of its own, which its shims and the runtime
# commands they run inherit: the CPU time it accounts per run (containerd, shim and runtime, not
# ctr nor the container) is reported too, a figure that other load on the machine moves less.
#
# Environment:
#   SHIM=path HUSK=path   release builds (default target/x86_64-unknown-linux-gnu/release/...,
#                         built if missing)
#   CONTAINERD_BIN=path   containerd (default: containerd on PATH); its ctr is used when beside it
#   WARMUP=3              unmeasured runs of each case first
#   ROUNDS=10 PER_ROUND=3 rounds, and runs of each case per round
#   BENCH_TIMEOUT=900     seconds one hyperfine invocation may take
#   OUT=bench/results/shim.json   every run's time per case, with the summary
#
# Needs root, containerd, hyperfine, jq, runc, crun (a missing crun drops its cases).
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
die() { bench_log "error: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root"
for tool in hyperfine jq timeout sha256sum tar; do
    command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
done
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-10}
PER_ROUND=${PER_ROUND:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${OUT:-$REPO/bench/results/shim.json}
CONTAINERD=${CONTAINERD_BIN:-$(command -v containerd || true)}
[[ -x $CONTAINERD ]] || die "containerd not found; run scripts/install-deps.sh"
CTR=$(dirname "$CONTAINERD")/ctr
[[ -x $CTR ]] || CTR=$(command -v ctr)
GO_SHIM=$(dirname "$CONTAINERD")/containerd-shim-runc-v2
[[ -x $GO_SHIM ]] || GO_SHIM=$(command -v containerd-shim-runc-v2 || true)
[[ -x $GO_SHIM ]] || die "containerd-shim-runc-v2 not found (Debian's package containerd)"

resolve_husk "$REPO" || die "$HUSK_WHY"
SHIM_BIN=${SHIM:-$REPO/target/x86_64-unknown-linux-gnu/release/containerd-shim-husk-v2}
if [[ ! -x $SHIM_BIN ]]; then
    log "$SHIM_BIN missing; running cargo build --release -p containerd-shim-husk-v2"
    (cd "$REPO" && cargo build --release -p containerd-shim-husk-v2 >&2)
fi
[[ -x $SHIM_BIN ]] || die "$SHIM_BIN missing"

IMAGE=husk.bench/busybox:latest
NS=shimbench$$
WORK=$(mktemp -d /run/husk-shimbench.XXXXXX)
declare -A PID
# The CPU time of each containerd's cgroup: cgroup v1's cpuacct, or v2's cpu.stat.
if [[ -d /sys/fs/cgroup/cpuacct ]]; then
    CG_BASE=/sys/fs/cgroup/cpuacct/husk-shimbench$$
    cpu_ns() { cat "$CG_BASE-$1/cpuacct.usage"; }
else
    CG_BASE=/sys/fs/cgroup/husk-shimbench$$
    cpu_ns() { echo $(($(awk '$1 == "usage_usec" { print $2 }' "$CG_BASE-$1/cpu.stat") * 1000)); }
fi

# The shims serving the containerd on socket $1 (their -address is that socket).
shims_of() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        # A process may be gone by the time it is read.
        { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qxF -- "$1" && echo "$pid"
    done
    return 0
}

cleanup() {
    local rc=$? k pid
    trap - EXIT INT TERM
    for k in "${!PID[@]}"; do
        for id in $(timeout 20 "$CTR" -a "$WORK/$k/c.sock" -n "$NS" task ls -q 2>/dev/null); do
            timeout 20 "$CTR" -a "$WORK/$k/c.sock" -n "$NS" task delete -f "$id" >/dev/null 2>&1 || true
        done
        kill -TERM "${PID[$k]}" 2>/dev/null || true
        timeout 10 tail --pid="${PID[$k]}" -f /dev/null || kill -KILL "${PID[$k]}" 2>/dev/null || true
        wait "${PID[$k]}" 2>/dev/null || true
        for pid in $(shims_of "$WORK/$k/c.sock"); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for rt in runc crun; do delete_all "$(command -v $rt || echo $rt)" "$WORK/root-$rt/$NS"; done
    delete_all "$HUSK_BIN" "/run/containerd/husk/$NS"
    rmdir "/run/containerd/husk/$NS" "/run/containerd/runc/$NS" 2>/dev/null || true
    # Mounts containerd left below WORK (snapshots of a killed run), deepest first.
    awk -v w="$WORK" 'index($5, w) == 1 { print length($5), $5 }' /proc/self/mountinfo |
        sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$WORK"
    # The runtimes leave the namespace's parent cgroup (/<namespace>) behind, as with runc.
    for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS"; do
        [[ ! -d $d ]] || rmdir "$d" || log "$d left behind"
    done
    # Empty once containerd and its shims are gone; the runtimes moved the containers out.
    for k in go ours; do
        [[ ! -d $CG_BASE-$k ]] || rmdir "$CG_BASE-$k" || log "$CG_BASE-$k left behind"
    done
    unmount_hugetlb
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the image: /bin/busybox and two applets, as an uncompressed OCI archive ------------------
blob() { # file -> prints "digest size" after moving it into the layout
    local d
    d=$(sha256sum "$1" | cut -c1-64)
    echo "sha256:$d $(stat -c %s "$1")"
    mv "$1" "$WORK/layout/blobs/sha256/$d"
}
mkdir -p "$WORK/rootfs/bin" "$WORK/layout/blobs/sha256"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
ln -s busybox "$WORK/rootfs/bin/sh"
ln -s busybox "$WORK/rootfs/bin/true"
tar --numeric-owner --owner=0 --group=0 -C "$WORK/rootfs" -cf "$WORK/layer" .
read -r layer layer_size < <(blob "$WORK/layer")
jq -nc --arg l "$layer" '{architecture: "amd64", os: "linux", config: {Env: ["PATH=/bin"]},
    rootfs: {type: "layers", diff_ids: [$l]}}' >"$WORK/config"
read -r config config_size < <(blob "$WORK/config")
jq -nc --arg c "$config" --argjson cs "$config_size" --arg l "$layer" --argjson ls "$layer_size" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}' \
    >"$WORK/manifest"
read -r manifest manifest_size < <(blob "$WORK/manifest")
jq -nc --arg m "$manifest" --argjson ms "$manifest_size" --arg name "$IMAGE" \
    '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: $m, size: $ms, annotations: {"io.containerd.image.name": $name,
      "org.opencontainers.image.ref.name": "latest"}}]}' >"$WORK/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/layout/oci-layout"
tar -C "$WORK/layout" -cf "$WORK/busybox.tar" .

# --- two containerds -------------------------------------------------------------------------
start_containerd() { # name, then the shim binaries to put in its bin dir as NAME=PATH
    local k=$1 d=$WORK/$1 link
    shift
    mkdir -p "$d/bin"
    for link in "$@"; do ln -s "${link#*=}" "$d/bin/${link%%=*}"; done
    cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/c.sock"
TOML
    PATH="$d/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin" "$CONTAINERD" --config "$d/config.toml" \
        </dev/null >"$d/containerd.log" 2>&1 &
    PID[$k]=$!
    mkdir -p "$CG_BASE-$k"
    echo "${PID[$k]}" >"$CG_BASE-$k/cgroup.procs"
    # Bounded: containerd answers within seconds or the benchmark is off.
    timeout 30 bash -c "until '$CTR' -a '$d/c.sock' version >/dev/null 2>&1; do sleep 0.05; done" ||
        die "containerd ($k) did not come up: $(tail -5 "$d/containerd.log")"
    timeout 60 "$CTR" -a "$d/c.sock" -n "$NS" image import "$WORK/busybox.tar" >/dev/null
}
start_containerd go "containerd-shim-runc-v2=$GO_SHIM"
start_containerd ours "containerd-shim-runc-v2=$SHIM_BIN" "containerd-shim-husk-v2=$SHIM_BIN" \
    "husk=$HUSK_BIN"

if command -v crun >/dev/null; then mount_hugetlb_for_crun; fi

# --- cases -----------------------------------------------------------------------------------
CASES=() # name
declare -A CMD
declare -A CGROUP_OF # case -> containerd (go or ours)
add_case() { # name containerd runtime-binary(or husk)
    local name=$1 k=$2 rt=$3 ctr
    CGROUP_OF[$name]=$k
    ctr="$(printf '%q' "$CTR") -a $WORK/$k/c.sock -n $NS run --rm"
    if [[ $rt == husk ]]; then
        CMD[$name]="$ctr --runtime io.containerd.husk.v2 $IMAGE b true"
    else
        command -v "$rt" >/dev/null || { log "$rt missing: $name dropped"; return 0; }
        mkdir -p "$WORK/root-$rt"
        CMD[$name]="$ctr --runtime io.containerd.runc.v2 --runc-binary $(command -v "$rt") --runc-root $WORK/root-$rt $IMAGE b true"
    fi
    # One run first: a case that fails is reported, not timed.
    if ! out=$(timeout -k 5 60 bash -c "${CMD[$name]}" </dev/null 2>&1); then
        log "$name fails, dropped: $out"
        return 0
    fi
    CASES+=("$name")
}
add_case "ours+husk" ours husk
add_case "ours+crun" ours crun
add_case "go+crun" go crun
add_case "ours+runc" ours runc
add_case "go+runc" go runc
((${#CASES[@]})) || die "no case runs"

hf=(timeout -k 5 "$BENCH_TIMEOUT" hyperfine -N --style none --time-unit millisecond)
log "warming up: $WARMUP runs of each case"
for name in "${CASES[@]}"; do
    "${hf[@]}" --runs "$WARMUP" -n "$name" "${CMD[$name]}" </dev/null >/dev/null ||
        die "hyperfine failed ($name)"
done
log "timing ${CASES[*]}: $ROUNDS rounds of $PER_ROUND runs each"
order=("${CASES[@]}")
for ((r = 1; r <= ROUNDS; r++)); do
    for name in "${order[@]}"; do
        before=$(cpu_ns "${CGROUP_OF[$name]}")
        "${hf[@]}" --runs "$PER_ROUND" --export-json "$WORK/hf-$r-$name.json" -n "$name" \
            "${CMD[$name]}" </dev/null >/dev/null || die "hyperfine failed ($name)"
        echo "$name $(($(cpu_ns "${CGROUP_OF[$name]}") - before))" >>"$WORK/cpu"
    done
    mapfile -t order < <(printf '%s\n' "${order[@]}" | tac)
done

mkdir -p "$(dirname "$OUT")"
# containerd's CPU ms per run of each case, as JSON.
cpu_ms=$(awk -v n="$((ROUNDS * PER_ROUND))" '{ t[$1] += $2 }
    END { for (k in t) printf "%s\t%.1f\n", k, t[k] / n / 1e6 }' "$WORK/cpu" |
    jq -Rn '[inputs | split("\t") | {(.[0]): (.[1] | tonumber)}] | add')
jq -s --argjson cpu "$cpu_ms" --arg date "$(date -u +%FT%TZ)" --arg containerd "$("$CONTAINERD" --version)" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    (map(.results[]) | group_by(.command)
        | map({(.[0].command): (map(.times[]) | map(. * 1000))}) | add) as $t
    | ($t | map_values(median)) as $m
    | def ratio(a; b): if $m[a] and $m[b] then ($m[a] / $m[b] * 100 | round / 100) else null end;
    def cratio(a; b): if $cpu[a] and $cpu[b] then ($cpu[a] / $cpu[b] * 100 | round / 100) else null end;
    {date: $date, containerd: $containerd,
     median_ms: ($m | map_values(. * 10 | round / 10)),
     mean_ms: ($t | map_values(add / length * 10 | round / 10)),
     ratios_of_medians: {"ours+husk / go+crun (goal <= 0.7)": ratio("ours+husk"; "go+crun"),
              "ours+husk / go+runc": ratio("ours+husk"; "go+runc"),
              "ours+crun / go+crun": ratio("ours+crun"; "go+crun"),
              "ours+runc / go+runc": ratio("ours+runc"; "go+runc")},
     cpu_ms_per_run: $cpu,
     cpu_ratios: {"ours+husk / go+crun": cratio("ours+husk"; "go+crun"),
                  "ours+crun / go+crun": cratio("ours+crun"; "go+crun"),
                  "ours+runc / go+runc": cratio("ours+runc"; "go+runc")},
     times_ms: ($t | map_values(map(. * 10 | round / 10)))}' "$WORK"/hf-*.json >"$OUT"
printf 'ctr run --rm of /bin/true, ms (%s; %s runs each): median, mean, CPU of containerd+shim+runtime\n' \
    "$("$CONTAINERD" --version | awk '{print $3}')" "$((ROUNDS * PER_ROUND))"
jq -r '.median_ms as $m | .cpu_ms_per_run as $c | .mean_ms | to_entries[]
    | "  \(.key)\t\($m[.key])\t\(.value)\t\($c[.key])"' "$OUT"
jq -r '.ratios_of_medians | to_entries[] | "  \(.key)\t\(.value // "-")"' "$OUT"
jq -r '.cpu_ratios | to_entries[] | "  CPU \(.key)\t\(.value // "-")"' "$OUT"
log "wrote $OUT"
