#!/usr/bin/env bash
# integration.sh SHIM_BIN HUSK_BIN [NEXTEST-ARGS...]: the containerd integration tests that touch
# cgroups (Stats, OOM events, pause/resume), run with the shim SHIM_BIN driving the runtime
# HUSK_BIN inside the pure cgroup v2 guest of scripts/v2vm.sh.
#
# Built here on the host (`cargo nextest archive`), run in the guest, which sees the host's /
# read-only: each test starts its own containerd (Debian's, from the host's /usr/bin) with its
# root, state and overlayfs snapshots under /run, the guest's tmpfs. Under emulation each
# container costs seconds, so only the tests that touch cgroups run.
# Exit status: nextest's; 125 when the guest could not be built or booted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
(($# >= 2)) || { echo "usage: $0 SHIM_BIN HUSK_BIN [NEXTEST-ARGS...]" >&2; exit 2; }
shim=$1 husk=$2
shift 2
for b in "$shim" "$husk"; do
    [[ -x $b ]] || { echo "integration.sh: $b is not an executable" >&2; exit 2; }
done

FILTER='binary(containerd) & (test(detached_task_exec_ps_pause) | test(oom_kill_is_an_oom_event))'

# target/ rather than /tmp: the guest mounts a fresh tmpfs on /tmp.
archive=target/v2vm/integration.tar.zst
mkdir -p target/v2vm
cargo nextest archive -p integration --archive-file "$archive"

exec env SHIM_BIN="$shim" HUSK_BIN="$husk" V2VM_TIMEOUT="${V2VM_TIMEOUT:-900}" scripts/v2vm.sh \
    cargo-nextest nextest run --archive-file "$archive" --workspace-remap . \
    --color never --no-fail-fast --success-output final -E "$FILTER" "$@"
