#!/usr/bin/env bash
# What an init as the container's PID 1 costs: `husk run` of /bin/true in one hyperfine run,
#   plain       process.args = /bin/true
#   husk-init   process.args = /sbin/docker-init -- /bin/true, husk-init bind-mounted read-only
#               there, as Docker mounts docker-init
#   tini        the same with Debian's /usr/bin/tini-static (skipped if missing)
# Prints hyperfine's summary, with the ratios against plain, and each binary's size and the
# peak RSS of the init alone on the host (/usr/bin/time, `init -s -- /bin/true`).
#
#   bench/init.sh
#
# Environment: HUSK (as in bench.sh), INIT (default target/x86_64-unknown-linux-gnu/release/
# husk-init, built if missing), WARMUP=3, RUNS=40.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
become_subreaper "$@"

die() { bench_log "error: $*"; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root"
command -v hyperfine >/dev/null || die "hyperfine not found; run scripts/install-deps.sh"
resolve_husk "$REPO" || die "$HUSK_WHY"
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-40}

INIT=${INIT:-$REPO/target/x86_64-unknown-linux-gnu/release/husk-init}
if [[ ! -x $INIT ]]; then
    bench_log "$INIT missing; running cargo build --release -p husk-init"
    (cd "$REPO" && cargo build --release -p husk-init >&2)
fi
[[ -x $INIT ]] || die "$INIT missing"
TINI=/usr/bin/tini-static

WORK=$(mktemp -d /tmp/husk-init-bench.XXXXXX)
ROOT=$WORK/root
cleanup() {
    delete_all "$HUSK_BIN" "$ROOT"
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

"$REPO/scripts/mkbundle.sh" "$WORK/plain" /bin/true >/dev/null
# Bundles sharing plain's rootfs, with the init bind-mounted over an empty file in it.
mkdir -p "$WORK/plain/rootfs/sbin"
touch "$WORK/plain/rootfs/sbin/docker-init"
with_init() { # name binary
    mkdir -p "$WORK/$1"
    jq --arg src "$2" --arg rootfs "$WORK/plain/rootfs" '.root.path = $rootfs
        | .process.args = ["/sbin/docker-init", "--", "/bin/true"]
        | .mounts += [{destination: "/sbin/docker-init", type: "bind", source: $src,
                       options: ["rbind", "ro"]}]' \
        "$WORK/plain/config.json" >"$WORK/$1/config.json"
}
with_init husk-init "$INIT"
names=(plain husk-init)
if [[ -x $TINI ]]; then
    with_init tini "$TINI"
    names+=(tini)
else
    bench_log "$TINI missing (Debian's package tini): skipped"
fi

args=()
for n in "${names[@]}"; do
    args+=(-n "$n" "$HUSK_BIN --root $ROOT run -b $WORK/$n i-$n")
done
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/run.json" "${args[@]}"

# The init alone on the host, without a container: its own start, fork, exec and wait.
host=(-n "/bin/true" "/bin/true" -n "husk-init -s -- /bin/true" "$INIT -s -- /bin/true")
if [[ -x $TINI ]]; then host+=(-n "tini -s -- /bin/true" "$TINI -s -- /bin/true"); fi
hyperfine -N --warmup "$WARMUP" --runs "$((RUNS * 5))" --export-json "$WORK/host.json" "${host[@]}"

# Medians, steadier than means on a loaded machine, with the ratio to the first command.
echo
for j in run host; do
    jq -r '.results[0].median as $base | .results[]
        | "\(.command | .[0:40])\t median \(.median * 1000 * 100 | round / 100) ms\t x\(.median / $base * 100 | round / 100)"' \
        "$WORK/$j.json"
done | column -t -s $'\t'
echo
for b in "$INIT" "$TINI"; do
    [[ -x $b ]] || continue
    rss=$(/usr/bin/time -f %M "$b" -s -- /bin/true 2>&1 >/dev/null | tail -n1)
    printf '%-60s %8s bytes, peak RSS %s KiB\n' "$b" "$(stat -c %s "$b")" "$rss"
done
