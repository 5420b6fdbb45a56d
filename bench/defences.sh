#!/usr/bin/env bash
# What husk's security defences cost: create+start+delete of /bin/true, in one hyperfine run:
#   base      a husk built before the defences (BASE=path; skipped if unset)
#   husk      this husk, default config
#   ptrace    this husk, the container holding CAP_SYS_PTRACE (CVE-2019-5736: husk re-executes
#             from a sealed memfd copy of its binary for such containers only)
#   exec      `exec` of /bin/true, default config, then with CAP_SYS_PTRACE
# Prints hyperfine's summary, with the ratios against the first command of each group.
#
#   BASE=/path/to/old/husk bench/defences.sh
#
# Environment: HUSK (this husk, as in bench.sh), WARMUP=3, RUNS=40.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
become_subreaper "$@"

[[ $EUID -eq 0 ]] || { bench_log "error: must run as root"; exit 1; }
resolve_husk "$REPO" || { bench_log "error: $HUSK_WHY"; exit 1; }
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-40}

WORK=$(mktemp -d /tmp/husk-defences.XXXXXX)
ROOT=$WORK/root
cleanup() {
    delete_all "$HUSK_BIN" "$ROOT"
    rm -rf "$WORK"
}
trap cleanup EXIT

"$REPO/scripts/mkbundle.sh" "$WORK/plain" >/dev/null
cp -a "$WORK/plain" "$WORK/ptrace"
for b in plain ptrace; do
    jq '.process.args = ["/bin/true"] | .process.terminal = false' "$WORK/$b/config.json" \
        >"$WORK/cfg" && mv "$WORK/cfg" "$WORK/$b/config.json"
done
jq '.process.capabilities |= with_entries(.value += ["CAP_SYS_PTRACE"])' \
    "$WORK/ptrace/config.json" >"$WORK/cfg" && mv "$WORK/cfg" "$WORK/ptrace/config.json"

csd() { # binary bundle id
    printf '%s --root %s create -b %s %s && %s --root %s start %s && %s --root %s delete -f %s' \
        "$1" "$ROOT" "$2" "$3" "$1" "$ROOT" "$3" "$1" "$ROOT" "$3"
}
args=()
if [[ -n ${BASE:-} ]]; then
    args+=(-n "base (before the defences)" "$(csd "$BASE" "$WORK/plain" d-base)")
fi
args+=(-n "husk" "$(csd "$HUSK_BIN" "$WORK/plain" d-husk)")
args+=(-n "husk, CAP_SYS_PTRACE" "$(csd "$HUSK_BIN" "$WORK/ptrace" d-ptrace)")
hyperfine --warmup "$WARMUP" --runs "$RUNS" "${args[@]}"

# exec into a running container, each config.
for b in plain ptrace; do
    jq '.process.args = ["sleep", "1000"]' "$WORK/$b/config.json" >"$WORK/cfg" &&
        mv "$WORK/cfg" "$WORK/$b/config.json"
    "$HUSK_BIN" --root "$ROOT" run -d -b "$WORK/$b" "s-$b" </dev/null >/dev/null
done
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
    -n "exec" "$HUSK_BIN --root $ROOT exec s-plain /bin/true" \
    -n "exec, CAP_SYS_PTRACE" "$HUSK_BIN --root $ROOT exec s-ptrace /bin/true"
