#!/usr/bin/env bash
# systemd-tests.sh RUNTIME [NEXTEST-ARGS...]: spec-tests/tests/systemd.rs (the systemd cgroup
# driver) against the runtime binary RUNTIME, in the pure cgroup v2 guest booted with systemd as
# PID 1 (V2VM_SYSTEMD=1 scripts/v2vm.sh); with V2VM_CGROUP=v1 in the environment, in the guest
# booted with cgroup v1 instead, where the `v1_` tests run and the others skip.
# Exit status: nextest's; 125 when the guest failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
(($# >= 1)) || { echo "usage: $0 RUNTIME [NEXTEST-ARGS...]" >&2; exit 2; }
runtime=$1
shift
[[ -x $runtime ]] || { echo "systemd-tests.sh: $runtime is not an executable" >&2; exit 2; }

# target/ rather than /tmp: the guest mounts a fresh tmpfs on /tmp.
archive=target/v2vm/systemd-tests.tar.zst
mkdir -p target/v2vm
cargo nextest archive -p spec-tests --archive-file "$archive"

exec env RUNTIME="$runtime" V2VM_SYSTEMD=1 V2VM_TIMEOUT="${V2VM_TIMEOUT:-600}" scripts/v2vm.sh \
    cargo-nextest nextest run --archive-file "$archive" --workspace-remap . \
    --color never --no-fail-fast --success-output final -E 'binary(systemd)' "$@"
