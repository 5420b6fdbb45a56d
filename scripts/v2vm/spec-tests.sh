#!/usr/bin/env bash
# spec-tests.sh RUNTIME [NEXTEST-ARGS...]: the spec-tests that touch cgroups, run against the
# runtime binary RUNTIME inside the pure cgroup v2 guest of scripts/v2vm.sh.
#
# The test binaries are built here on the host (`cargo nextest archive`) and run in the guest,
# which sees the host's / read-only. Under emulation each container costs seconds, so only the
# tests that touch cgroups run: resources, cgroups, events (stats, OOM), pause/resume, update,
# device rules, freezing, rootless containers with and without a delegated subtree, and
# checkpoint/restore (the guest's Debian kernel also has the soft-dirty tracking a pre-dump needs
# and lets CRIU dump TCP sockets, which this host's kernel does not). A test
# that checks what only cgroup v1 has says "skipped: ..." and passes; `--success-output final`
# prints those lines at the end.
# Exit status: nextest's; 125 when the guest could not be built or booted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
(($# >= 1)) || { echo "usage: $0 RUNTIME [NEXTEST-ARGS...]" >&2; exit 2; }
runtime=$1
shift
[[ -x $runtime ]] || { echo "spec-tests.sh: $runtime is not an executable" >&2; exit 2; }

FILTER='binary(cgroups) | binary(resources) | binary(events) | binary(checkpoint)
    | (binary(lifecycle) & test(pause))
    | (binary(runc12) & test(/pause/))
    | (binary(odd_states) & test(/frozen|busy/))
    | (binary(mounts) & test(cgroup_controls_access))
    | (binary(cli_depth) & test(exec_cgroup))
    | (binary(namespaces) & test(cgroup_namespace))
    | (binary(robust_input) & test(update_memory))
    | (binary(parity) & test(update_of_unknown))
    | (binary(rootless) & test(/delegat|beside_the_session|lifecycle_as_a_user|limits_without_cgroup/))'

# target/ rather than /tmp: the guest mounts a fresh tmpfs on /tmp.
archive=target/v2vm/spec-tests.tar.zst
mkdir -p target/v2vm
cargo nextest archive -p spec-tests --archive-file "$archive"

exec env RUNTIME="$runtime" V2VM_TIMEOUT="${V2VM_TIMEOUT:-900}" scripts/v2vm.sh \
    cargo-nextest nextest run --archive-file "$archive" --workspace-remap . \
    --color never --no-fail-fast --success-output final -E "$FILTER" "$@"
