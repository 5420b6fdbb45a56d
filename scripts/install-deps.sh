#!/usr/bin/env bash
# Install what husk's build, tests and benchmarks need on a Debian 12 machine.
#
# Idempotent: packages already installed are not touched, and `apt-get update` runs only when
# something is missing. Downloads come only from Debian's archive and the crate registry.
# Run as root (or as a user with sudo). The Rust toolchain (rustup, with rustfmt and clippy)
# must already be installed; cargo-nextest and cargo-fuzz are installed from the crate registry if missing
# (cargo-fuzz builds in about 30 s on 2 cores; scripts/fuzz.sh runs it on the stable toolchain).
# CRIU 4.1.1 is built from source by scripts/install-criu.sh (about a minute the first time).
set -euo pipefail

PACKAGES=(
    # building husk (a C linker for rustc, libseccomp for seccomp filters)
    build-essential pkg-config libseccomp-dev git ca-certificates
    # reference runtimes and the container rootfs
    runc crun busybox-static
    # tini 0.19: the reference for husk-init (its tests run each case against tini-static);
    # docker.io's docker-proxy: the reference for husk-proxy
    tini docker.io
    # the shim's integration tests (containerd 1.6, with ctr and the Go shim to compare with;
    # protoc for the CRI client's generated code)
    containerd protobuf-compiler
    # tests and benchmarks
    bats hyperfine jq time iproute2 procps util-linux coreutils perl-base
    # rootless containers: newuidmap/newgidmap for subordinate id ranges (husk uses them as
    # runc does); podman 4.3 as an ordinary user runs husk in spec-tests/tests/rootless.rs
    uidmap podman passwd
    # images (stack/image): made by umoci, copied into archives and pushed by skopeo to
    # a loopback docker-registry
    skopeo umoci docker-registry
    # the pure cgroup v2 guest of scripts/v2vm.sh
    qemu-system-x86
)

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $EUID -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "run as root (or install sudo)"
fi

# --- Debian packages -------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
    log "Debian packages: all present"
fi

# --- containerd 1.7 beside Debian's 1.6, for the shim's integration tests ---------------------
"${SUDO[@]}" "$(dirname "$0")/install-containerd17.sh"

# --- Rust toolchain --------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found; install the Rust toolchain with rustup first"

for component in fmt clippy; do
    cargo "$component" --version >/dev/null 2>&1 ||
        die "cargo $component missing; run: rustup component add ${component/fmt/rustfmt}"
done

if cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest: $(cargo nextest --version 2>/dev/null | head -n1)"
else
    log "installing cargo-nextest from the crate registry"
    cargo install cargo-nextest --locked
fi

if cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz: $(cargo fuzz --version 2>/dev/null | head -n1)"
else
    log "installing cargo-fuzz from the crate registry"
    cargo install cargo-fuzz --locked
fi

# --- CRIU (checkpoint/restore) ---------------------------------------------------------------
# Debian 12's criu 3.17 fails on recent kernels; this builds CRIU 4.1.1 once and caches it.
"$(dirname "${BASH_SOURCE[0]}")/install-criu.sh"

log "done"
