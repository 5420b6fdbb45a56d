#!/usr/bin/env bash
# containerd-systemd.sh SHIM_BIN HUSK_BIN [NEXTEST-ARGS...]: containerd's `SystemdCgroup = true`
# (integration/tests/systemd_cgroup.rs) in the pure cgroup v2 guest booted with systemd as
# PID 1 (V2VM_SYSTEMD=1 scripts/v2vm.sh): our shim SHIM_BIN, containerd's runc-v2 shim with
# HUSK_BIN as BinaryName, and the same with runc, each running a container in a systemd scope;
# and a CRI pod through our shim whose handler options carry SystemdCgroup (integration/tests/
# cri.rs, its `systemd_cgroup_*` tests), with containerd 1.6 and 1.7.
#
# With V2VM_CGROUP=v1 the guest boots with systemd's cgroup v1 hierarchies (hybrid), and only
# systemd_cgroup.rs runs: runc's legacy systemd manager, the v1 paths and properties; the CRI
# tests check v2 paths.
#
# Built here on the host (`cargo nextest archive`), run in the guest, which sees the host's /
# read-only: each test starts its own containerd (Debian's, from the host's /usr/bin) with its
# root and state under /run, the guest's tmpfs.
# Exit status: nextest's; 125 when the guest could not be built or booted.
set -euo pipefail

(($# >= 2)) || { echo "usage: $0 SHIM_BIN HUSK_BIN [NEXTEST-ARGS...]" >&2; exit 2; }
for b in "$1" "$2"; do
    [[ -x $b ]] || { echo "containerd-systemd.sh: $b is not an executable" >&2; exit 2; }
done
# Absolute: the tests in the guest run from the workspace's root.
shim=$(realpath "$1") husk=$(realpath "$2")
shift 2

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# target/ rather than /tmp: the guest mounts a fresh tmpfs on /tmp.
archive=target/v2vm/containerd-systemd.tar.zst
mkdir -p target/v2vm
cargo nextest archive -p integration --test systemd_cgroup --test cri --archive-file "$archive"

filter='binary(systemd_cgroup) | (binary(cri) & test(/^systemd_cgroup_/))'
[[ ${V2VM_CGROUP:-v2} != v1 ]] || filter='binary(systemd_cgroup)'
exec env SHIM_BIN="$shim" HUSK_BIN="$husk" V2VM_SYSTEMD=1 V2VM_TIMEOUT="${V2VM_TIMEOUT:-900}" \
    scripts/v2vm.sh cargo-nextest nextest run --archive-file "$archive" --workspace-remap . \
    --color never --no-fail-fast --success-output final -E "$filter" "$@"
