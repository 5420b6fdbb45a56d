# shellcheck shell=bash
# Helpers shared by bench/bench.sh and bench/hangs.sh. Source it; it defines functions only.

bench_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# Re-exec the calling script as a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so containers
# orphaned by `create`/`start` are reparented to this script, whose bash reaps them, instead of
# to this machine's PID 1, which reaps them late. The attribute survives execve. Best effort:
# without perl or on an unknown architecture the script carries on as it is.
become_subreaper() {
    [[ ${_HUSK_BENCH_SUBREAPER:-} == "$$" ]] && return 0
    local nr
    case $(uname -m) in
        x86_64) nr=157 ;;
        aarch64 | riscv64 | loongarch64) nr=167 ;;
        *) return 0 ;;
    esac
    command -v perl >/dev/null 2>&1 || return 0
    # exec keeps the pid, which marks the re-executed script.
    export _HUSK_BENCH_SUBREAPER=$$
    exec perl -e '
        my $nr = shift;
        syscall($nr, 36, 1, 0, 0, 0) == 0
            or warn "prctl(PR_SET_CHILD_SUBREAPER): $!\n";
        exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n";
    ' "$nr" bash "$0" "$@"
}

# Resolve the husk binary: $HUSK if set, else $repo/target/x86_64-unknown-linux-gnu/release/husk, built with
# `cargo build --release` if missing. Sets HUSK_BIN on success; on failure sets HUSK_WHY and
# returns 1.
# shellcheck disable=SC2034 # HUSK_BIN and HUSK_WHY are for the caller
resolve_husk() {
    local repo=$1
    HUSK_BIN=
    HUSK_WHY=
    if [[ -n ${HUSK:-} ]]; then
        if [[ -x $HUSK && ! -d $HUSK ]]; then
            HUSK_BIN=$(realpath "$HUSK")
            return 0
        fi
        HUSK_WHY="HUSK=$HUSK is not an executable file"
        return 1
    fi
    local bin=$repo/target/x86_64-unknown-linux-gnu/release/husk
    if [[ ! -x $bin ]]; then
        if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
            PATH=$HOME/.cargo/bin:$PATH
        fi
        if command -v cargo >/dev/null 2>&1; then
            bench_log "$bin missing; running cargo build --release"
            (cd "$repo" && cargo build --release >&2) || true
        fi
    fi
    if [[ -x $bin ]]; then
        HUSK_BIN=$bin
        return 0
    fi
    HUSK_WHY="$bin missing and cargo build --release did not produce it"
    return 1
}

# Delete every container under a runtime's --root (best effort, quiet).
delete_all() {
    local bin=$1 root=$2 id
    [[ -d $root ]] || return 0
    # Ids from `list -q` and from the state directories, in case `list` is what is broken.
    local ids=() d
    mapfile -t ids < <(timeout 20 "$bin" --root "$root" list -q </dev/null 2>/dev/null || true)
    for d in "$root"/*/; do
        [[ -d $d ]] || continue
        d=${d%/}
        ids+=("${d##*/}")
    done
    for id in $(printf "%s\n" "${ids[@]}" | sort -u); do
        timeout 20 "$bin" --root "$root" delete -f "$id" </dev/null >/dev/null 2>&1 || true
    done
}
