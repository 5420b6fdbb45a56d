#!/usr/bin/env bash
# Run every check husk has, in order:
#   1. scripts/install-deps.sh
#   2. cargo fmt --all -- --check
#   3. cargo clippy --workspace --all-targets --features husk-image/pull -- -D warnings
#   4. cargo build --release -p husk -p containerd-shim-husk-v2 -p huskd -p husk-init -p husk-proxy
#   5. cargo nextest run --workspace --exclude spec-tests --exclude integration --no-tests=pass
#      --features husk-image/pull (unit tests, the man page freshness test, the fuzz regression
#      inputs of the husk package, and stack/'s crates' tests: husk-image pulls from a loopback
#      registry)
#   6. scripts/fuzz.sh: each cargo-fuzz target for FUZZ_SECONDS (default 60) seconds
#   7. spec-tests against husk:  RUNTIME=$PWD/target/x86_64-unknown-linux-gnu/release/husk cargo nextest run -p spec-tests
#   8. spec-tests against runc:  RUNTIME=/usr/sbin/runc cargo nextest run -p spec-tests
#   8b. the spec-tests that touch cgroups in a pure cgroup v2 guest, against husk and runc
#      (scripts/v2vm/spec-tests.sh RUNTIME; skipped when scripts/v2vm.sh cannot build the guest)
#   8c. the systemd cgroup driver in that guest with systemd as PID 1, against husk and runc
#      (scripts/v2vm/systemd-tests.sh RUNTIME), and again in the guest booted with cgroup v1
#      (V2VM_CGROUP=v1: systemd's v1 hierarchies, hybrid), where its `v1_` tests run)
#   8d. the containerd integration tests of Stats, OOM events and pause in the same guest
#      (scripts/v2vm/integration.sh SHIM_BIN HUSK_BIN; skipped like 8b)
#   8e. containerd's SystemdCgroup = true in that guest with systemd as PID 1: our shim, and
#      containerd's runc-v2 shim with husk and with runc as BinaryName, each running a container
#      in a systemd scope, and a CRI pod through our shim whose handler options carry
#      SystemdCgroup, with containerd 1.6 and 1.7 (scripts/v2vm/containerd-systemd.sh SHIM_BIN
#      HUSK_BIN; skipped like 8b), and the same three ways in the guest booted with cgroup v1
#      (V2VM_CGROUP=v1: runc's legacy systemd manager)
#   9. integration: containerd: the release shim and husk under private containerds, driven by ctr
#      and, for a pod, through the CRI plugin by a CRI client
#      (SHIM_BIN=... HUSK_BIN=... cargo nextest run -p integration)
#  10. integration: containerd 1.7: the containerd and runtimes tests again under Debian 13's
#      containerd 1.7 (CONTAINERD_BIN=/var/cache/husk/containerd-1.7/usr/bin/containerd,
#      unpacked there by scripts/install-containerd17.sh)
# The nextest runs add --no-fail-fast, so that one run reports every failing test.
#
# Every step runs even if an earlier one failed, except that spec-tests against husk and the
# containerd integration tests are skipped when the release build fails, and nothing runs when
# the dependencies cannot be installed. Prints a summary and exits non-zero if any step failed.
# Run as root on Debian 12, from anywhere.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
# No stdin in CI; nothing here should ask for any.
exec </dev/null

RESULTS=()
FAILED=0

section() { printf '\n========== %s ==========\n' "$*"; }

# step NAME CMD...: run one step under a header and record its result.
step() {
    local name=$1 rc=0 t0=$SECONDS
    shift
    section "$name"
    printf '+ %s\n' "$*"
    "$@" || rc=$?
    local took=$((SECONDS - t0))
    if ((rc == 0)); then
        RESULTS+=("$(printf '%-8s %5ss  %s' ok "$took" "$name")")
        printf -- '---------- %s: ok (%ss)\n' "$name" "$took"
    else
        RESULTS+=("$(printf '%-8s %5ss  %s (exit %d)' FAILED "$took" "$name" "$rc")")
        printf -- '---------- %s: FAILED, exit %d (%ss)\n' "$name" "$rc" "$took"
        FAILED=1
    fi
    return "$rc"
}

skip() {
    RESULTS+=("$(printf '%-8s %6s  %s (%s)' skipped - "$1" "$2")")
    section "$1"
    printf 'skipped: %s\n' "$2"
}

summary() {
    section "summary"
    printf '%s\n' "${RESULTS[@]}"
}

HUSK_BIN=$PWD/target/x86_64-unknown-linux-gnu/release/husk
SHIM_BIN=$PWD/target/x86_64-unknown-linux-gnu/release/containerd-shim-husk-v2
HUSKD_BIN=$PWD/target/x86_64-unknown-linux-gnu/release/huskd
RUNC_BIN=/usr/sbin/runc

if ! step "install dependencies" scripts/install-deps.sh; then
    summary
    exit 1
fi
step "cargo fmt" cargo fmt --all -- --check || true
step "cargo clippy" cargo clippy --workspace --all-targets --features husk-image/pull -- -D warnings || true
built=0
step "cargo build --release" cargo build --release -p husk -p containerd-shim-husk-v2 -p huskd -p husk-init -p husk-proxy && built=1
step "unit tests" env HUSKD_BIN="$HUSKD_BIN" cargo nextest run --workspace --exclude spec-tests --exclude integration --features husk-image/pull --no-tests=pass --no-fail-fast || true
step "fuzz" scripts/fuzz.sh "${FUZZ_SECONDS:-60}" || true
if ((built)); then
    step "spec-tests: husk" env RUNTIME="$HUSK_BIN" cargo nextest run -p spec-tests --no-fail-fast || true
else
    skip "spec-tests: husk" "cargo build --release failed"
fi
step "spec-tests: runc" env RUNTIME="$RUNC_BIN" cargo nextest run -p spec-tests --no-fail-fast || true
v2vm_ok=0
if ! v2vm_err=$(scripts/v2vm.sh --prepare 2>&1); then
    skip "spec-tests: cgroup v2 guest (husk)" "scripts/v2vm.sh cannot build the guest: ${v2vm_err##*$'\n'}"
    skip "spec-tests: cgroup v2 guest (runc)" "scripts/v2vm.sh cannot build the guest"
    skip "spec-tests: systemd driver in the v2 guest" "scripts/v2vm.sh cannot build the guest"
    skip "spec-tests: systemd driver in the cgroup v1 guest" "scripts/v2vm.sh cannot build the guest"
else
    v2vm_ok=1
    if ((built)); then
        step "spec-tests: cgroup v2 guest (husk)" scripts/v2vm/spec-tests.sh "$HUSK_BIN" || true
        step "spec-tests: systemd driver in the v2 guest (husk)" scripts/v2vm/systemd-tests.sh "$HUSK_BIN" || true
        step "spec-tests: systemd driver in the cgroup v1 guest (husk)" \
            env V2VM_CGROUP=v1 scripts/v2vm/systemd-tests.sh "$HUSK_BIN" || true
    else
        skip "spec-tests: cgroup v2 guest (husk)" "cargo build --release failed"
        skip "spec-tests: systemd driver in the v2 guest (husk)" "cargo build --release failed"
        skip "spec-tests: systemd driver in the cgroup v1 guest (husk)" "cargo build --release failed"
    fi
    step "spec-tests: cgroup v2 guest (runc)" scripts/v2vm/spec-tests.sh "$RUNC_BIN" || true
    step "spec-tests: systemd driver in the v2 guest (runc)" scripts/v2vm/systemd-tests.sh "$RUNC_BIN" || true
    step "spec-tests: systemd driver in the cgroup v1 guest (runc)" \
        env V2VM_CGROUP=v1 scripts/v2vm/systemd-tests.sh "$RUNC_BIN" || true
fi
if ((!v2vm_ok)); then
    skip "integration: cgroup v2 guest" "scripts/v2vm.sh cannot build the guest"
    skip "integration: systemd cgroups in the v2 guest" "scripts/v2vm.sh cannot build the guest"
    skip "integration: systemd cgroups in the cgroup v1 guest" "scripts/v2vm.sh cannot build the guest"
elif ((built)); then
    step "integration: cgroup v2 guest" scripts/v2vm/integration.sh "$SHIM_BIN" "$HUSK_BIN" || true
    step "integration: systemd cgroups in the v2 guest" scripts/v2vm/containerd-systemd.sh "$SHIM_BIN" "$HUSK_BIN" || true
    step "integration: systemd cgroups in the cgroup v1 guest" \
        env V2VM_CGROUP=v1 scripts/v2vm/containerd-systemd.sh "$SHIM_BIN" "$HUSK_BIN" || true
else
    skip "integration: cgroup v2 guest" "cargo build --release failed"
    skip "integration: systemd cgroups in the v2 guest" "cargo build --release failed"
    skip "integration: systemd cgroups in the cgroup v1 guest" "cargo build --release failed"
fi
if ! command -v containerd >/dev/null 2>&1; then
    skip "integration: containerd" "containerd is not installed (Debian's package containerd)"
elif ((built)); then
    step "integration: containerd" env SHIM_BIN="$SHIM_BIN" HUSK_BIN="$HUSK_BIN" HUSKD_BIN="$HUSKD_BIN" \
        cargo nextest run -p integration --no-fail-fast || true
else
    skip "integration: containerd" "cargo build --release failed"
fi
CONTAINERD17=/var/cache/husk/containerd-1.7/usr/bin/containerd
if [[ ! -x $CONTAINERD17 ]]; then
    skip "integration: containerd 1.7" "$CONTAINERD17 missing (scripts/install-containerd17.sh)"
elif ((built)); then
    step "integration: containerd 1.7" env SHIM_BIN="$SHIM_BIN" HUSK_BIN="$HUSK_BIN" \
        CONTAINERD_BIN="$CONTAINERD17" \
        cargo nextest run -p integration --test containerd --test runtimes --no-fail-fast || true
else
    skip "integration: containerd 1.7" "cargo build --release failed"
fi

summary
exit "$FAILED"
