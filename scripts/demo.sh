#!/usr/bin/env bash
# demo.sh: the end of README's set-up command, after `cargo build --release`. Runs a container
# twice: with the runtime alone (`husk run` of a bundle), then through the whole stack
# (huskctl -> huskd -> containerd-shim-husk-v2 -> husk), with a busybox image made here from
# Debian's busybox-static. huskd runs privately (its own socket, root and state under a
# temporary directory) and is stopped, and its directory removed, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$PWD/target/x86_64-unknown-linux-gnu/release
for b in husk huskd huskctl containerd-shim-husk-v2; do
    [[ -x $bin/$b ]] || { echo "demo: $bin/$b missing: cargo build --release --workspace" >&2; exit 1; }
done

scripts/mkbundle.sh /tmp/husk-demo
"$bin/husk" run -b /tmp/husk-demo "demo-$$"

dir=$(mktemp -d /tmp/husk-demo-stack.XXXXXX)
huskd_pid=
cleanup() {
    if [[ -n $huskd_pid ]]; then
        kill -TERM "$huskd_pid" 2>/dev/null || true # already gone is fine
        wait "$huskd_pid" || true                 # its exit status is not the demo's
    fi
    rm -rf "$dir"
    # What the runtime keeps per namespace (empty by now): its state root and parent cgroups.
    rmdir /run/containerd/husk/husk-demo /sys/fs/cgroup/*/husk-demo 2>/dev/null || true
}
trap cleanup EXIT
# The shim runs husk from its own directory or $PATH.
PATH=$bin:$PATH "$bin/huskd" --socket "$dir/huskd.sock" --root "$dir/root" --state "$dir/state" \
    --namespace husk-demo 2>"$dir/huskd.log" &
huskd_pid=$!
export HUSK_HOST=unix://$dir/huskd.sock
for _ in $(seq 100); do
    "$bin/huskctl" version >/dev/null 2>&1 && break
    kill -0 "$huskd_pid" 2>/dev/null || { cat "$dir/huskd.log" >&2; exit 1; }
    sleep 0.1 # polling the socket: huskd has no readiness signal to wait on
done
scripts/mkimage.sh "$dir/busybox.tar"
"$bin/huskctl" load -i "$dir/busybox.tar"
"$bin/huskctl" run --rm busybox echo hello
