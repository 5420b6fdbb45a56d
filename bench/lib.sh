# shellcheck shell=bash
# Helpers shared by the bench/ scripts. Source it; it defines functions (and MOUNTED_HUGETLB) only.

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

MOUNTED_HUGETLB=
# crun 1.8 refuses cgroup v1 hybrid setups ("cgroups in hybrid mode not supported") unless the
# hugetlb controller is mounted as v1. Mount it if it is not mounted in this mount namespace.
mount_hugetlb_for_crun() {
    [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && return 0 # pure v2: crun is fine
    grep -qs '^hugetlb\s.*1$' /proc/cgroups || return 0              # no hugetlb controller
    # crun minds only a controller left on the cgroup2 beside the v1 ones; none, nothing to do.
    grep -qsw hugetlb /sys/fs/cgroup/unified/cgroup.controllers || return 0
    # Already mounted as v1 in this mount namespace? (mountinfo: "... - cgroup SRC rw,hugetlb")
    if awk '{ split($0, p, " - "); split(p[2], f, " ") }
            f[1] == "cgroup" && f[3] ~ /(^|,)hugetlb(,|$)/ { found = 1 }
            END { exit !found }' /proc/self/mountinfo; then
        return 0
    fi
    bench_log "mounting a cgroup v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb for crun"
    if mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
        MOUNTED_HUGETLB=1
    else
        rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
        bench_log "warning: mounting the hugetlb hierarchy failed; crun will probably fail"
    fi
}

# Unmount what mount_hugetlb_for_crun mounted, unless KEEP_HUGETLB is set. For an EXIT trap.
unmount_hugetlb() {
    [[ -n $MOUNTED_HUGETLB && -z ${KEEP_HUGETLB:-} ]] || return 0
    if umount /sys/fs/cgroup/hugetlb 2>/dev/null; then
        rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
        bench_log "unmounted the hugetlb cgroup hierarchy mounted for crun (KEEP_HUGETLB=1 keeps it)"
    else
        bench_log "warning: could not unmount /sys/fs/cgroup/hugetlb"
    fi
}
