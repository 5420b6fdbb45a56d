#!/usr/bin/env bash
# v2vm.sh CMD...: run CMD as root in a throw-away QEMU guest whose cgroups are pure v2, and exit
# with CMD's status.
#
# This host binds its cgroup controllers to v1; the guest gives the layout most users have
# (Debian 12, Ubuntu 22.04+, Fedora, RHEL 9). The guest runs Debian's kernel under TCG
# emulation (KVM here only runs PVM guests) with `cgroup_no_v1=all`; its root is this host's /,
# shared read-only over 9p under a tmpfs overlay, so every binary and file of the host is there
# (writes stay in the guest's memory). CMD runs in the current directory, with the current
# environment, in the root cgroup with every controller enabled below it; its stdout and
# stderr come out on ours. Facts and measurements: notes/v2vm.md.
#
# Built once, idempotently, from Debian packages into $V2VM_CACHE (default
# /var/cache/husk/v2vm): qemu-system-x86 through apt when missing; the kernel package that
# linux-image-amd64 depends on, fetched with `apt-get download` and unpacked with dpkg-deb
# (never installed into /boot); a busybox initramfs. `v2vm.sh --prepare` only builds.
#
# Environment:
#   V2VM_TIMEOUT  seconds the guest may run, boot included (default 900); then it is killed
#                 and the script fails saying so.
#   V2VM_BOOT_TIMEOUT  seconds from starting QEMU to the command's start (default 60, 180
#                 with V2VM_SYSTEMD=1). Now and then the emulated kernel hangs early in boot;
#                 such a guest is killed and booted again, twice at most.
#   V2VM_SYSTEMD  1: boot the host's systemd as PID 1 and run CMD in a service with
#                 Delegate=yes (in its leaf cgroup `cmd`; the service's cgroup hands every
#                 controller down), with D-Bus there; about 10-20 s more to boot.
#   V2VM_CGROUP   v1: with V2VM_SYSTEMD=1, boot without cgroup_no_v1=all and with
#                 systemd.unified_cgroup_hierarchy=0: systemd mounts the v1 hierarchies (and the
#                 unified one beside them, hybrid), as on a host of before cgroup v2, for the
#                 systemd driver on cgroup v1. Default v2.
#   V2VM_MEM      guest memory (default 2G);  V2VM_SMP  guest CPUs (default 2).
#   V2VM_CACHE    where the kernel and initramfs are kept.
# Exit status: CMD's; 125 when the guest could not be built or booted or timed out.
# Run as root on Debian 12.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${V2VM_CACHE:-/var/cache/husk/v2vm}
TIMEOUT=${V2VM_TIMEOUT:-900}
# The modules stage 1 of the guest's init loads, in this order (each needs the ones before).
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    virtio_console netfs fscache 9pnet 9pnet_virtio 9p overlay)

log() { printf 'v2vm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }

[[ $EUID -eq 0 ]] || die "run as root"

ensure_qemu() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 && return
    log "installing qemu-system-x86 from Debian's archive"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q --no-install-recommends qemu-system-x86; } \
        </dev/null >&2 || die "apt-get install qemu-system-x86 failed"
}

# The kernel package linux-image-amd64 depends on, e.g. linux-image-6.1.0-57-amd64.
kernel_package() {
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    if [[ -z $pkg ]]; then
        apt-get update -q </dev/null >&2 || die "apt-get update failed"
        pkg=$(apt-cache depends linux-image-amd64 |
            sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    fi
    [[ -n $pkg ]] || die "apt-cache names no kernel package for linux-image-amd64"
    echo "$pkg"
}

# Unpacks the kernel package into $KDIR and extracts the ELF vmlinux from its bzImage: QEMU
# boots that through its PVH entry, 2-3 s faster under TCG than the bzImage.
ensure_kernel() {
    [[ -f $KDIR/.done ]] && return
    log "fetching and unpacking $KPKG into $KDIR"
    rm -rf "$KDIR"
    mkdir -p "$KDIR/deb"
    # apt warns that _apt cannot write there and downloads as root instead: harmless. Stale
    # package lists may name a version the archive has replaced: then update and try again.
    if ! (cd "$KDIR/deb" && apt-get download -q "$KPKG" </dev/null >&2); then
        apt-get update -q </dev/null >&2 || die "apt-get update failed"
        (cd "$KDIR/deb" && apt-get download -q "$KPKG" </dev/null >&2) ||
            die "apt-get download $KPKG failed"
    fi
    dpkg-deb -x "$KDIR"/deb/*.deb "$KDIR/root" || die "dpkg-deb -x failed"
    rm -rf "$KDIR/deb"
    local bz=$KDIR/root/boot/vmlinuz-$KVER off
    [[ -f $bz ]] || die "$bz missing from $KPKG"
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1)
    [[ -n $off ]] || die "no xz payload in $bz"
    # xz complains about the data after the payload; the ELF check below is what counts.
    tail -c +$((off + 1)) "$bz" | xz -dc >"$KDIR/vmlinux" 2>/dev/null || true
    [[ $(head -c 4 "$KDIR/vmlinux" | od -An -c | tr -d ' ') == 177ELF ]] ||
        die "could not extract vmlinux from $bz"
    # No kmod on this host: busybox writes modules.dep for the guest's on-demand loading.
    busybox depmod -b "$KDIR/root" "$KVER" || die "depmod failed"
    touch "$KDIR/.done"
}

# The initramfs: static busybox, the init script and the modules of MODULES. Rebuilt when the
# init script changes.
ensure_initramfs() {
    local sum
    sum=$(cat "$HERE/v2vm/init" <(printf '%s\n' "${MODULES[@]}") | sha256sum | cut -c1-16)
    INITRD=$KDIR/initramfs-$sum.cpio.gz
    [[ -f $INITRD ]] && return
    [[ -x /bin/busybox ]] || die "/bin/busybox missing (Debian's busybox-static)"
    log "building the initramfs"
    local tmp m f
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bin" "$tmp/modules"
    cp /bin/busybox "$tmp/bin/busybox"
    cp "$HERE/v2vm/init" "$tmp/init"
    chmod 0755 "$tmp/init"
    for m in "${MODULES[@]}"; do
        f=$(find "$KDIR/root/lib/modules/$KVER/kernel" -name "$m.ko" | head -n1)
        [[ -n $f ]] || { rm -rf "$tmp"; die "module $m missing from $KPKG"; }
        cp "$f" "$tmp/modules/"
        echo "$m" >>"$tmp/modules.order"
    done
    (cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD.tmp") ||
        { rm -rf "$tmp"; die "cpio failed"; }
    rm -rf "$tmp"
    rm -f "$KDIR"/initramfs-*.cpio.gz
    mv "$INITRD.tmp" "$INITRD"
}

prepare() {
    ensure_qemu
    KPKG=$(kernel_package)
    KVER=${KPKG#linux-image-}
    KDIR=$CACHE/$KVER
    mkdir -p "$CACHE"
    # One build at a time: two test steps may start the guest together.
    exec 9>"$CACHE/.lock"
    flock 9
    ensure_kernel
    ensure_initramfs
    exec 9>&-
}

# boot BOOT_TIMEOUT: one QEMU run of the guest prepared in $IO. Returns QEMU's status, or 200
# when the guest did not say "ready" (on its third console) within BOOT_TIMEOUT seconds.
boot() {
    local boot_timeout=$1 qemu cat_out cat_err line
    rm -f "$IO/out" "$IO/err" "$IO/ready" "$IO/status" "$IO/timeout.pid"
    # The consoles write into fifos that cat relays to our stdout and stderr: QEMU opening our
    # stdout itself would get its own file offset and overwrite a log file's earlier lines.
    mkfifo "$IO/out" "$IO/err" "$IO/ready"
    : >"$IO/kernel.log"
    cat "$IO/out" &
    cat_out=$!
    cat "$IO/err" >&2 &
    cat_err=$!
    # Opened read-write, which never blocks, so that QEMU's open for writing finds a reader.
    exec 6<>"$IO/ready"

    # -cpu max without la57: the 5-level paging QEMU's max CPU offers makes this kernel crawl.
    # The subshell says on the ready fifo when QEMU has ended, so that the wait below ends at
    # "ready" from the guest or at QEMU's end, whichever comes first.
    {
        timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
            -accel tcg,thread=multi -cpu max,la57=off -m "${V2VM_MEM:-2G}" \
            -smp "${V2VM_SMP:-2}" -machine pc -nodefaults -display none -no-reboot \
            -monitor none -kernel "$KDIR/vmlinux" -initrd "$INITRD" \
            -append "console=ttyS0 rdinit=/init $CGROUP_ARGS panic=-1 mitigations=off tsc=reliable no_timer_check" \
            -serial "file:$IO/kernel.log" \
            -device virtio-serial-pci \
            -chardev file,id=out,path="$IO/out" -device virtconsole,chardev=out \
            -chardev file,id=err,path="$IO/err" -device virtconsole,chardev=err \
            -chardev file,id=ready,path="$IO/ready" -device virtconsole,chardev=ready \
            -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
            -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
            -fsdev local,id=v2vmio,path="$IO",security_model=none \
            -device virtio-9p-pci,fsdev=v2vmio,mount_tag=v2vmio \
            </dev/null &
        echo $! >"$IO/timeout.pid"
        qrc=0
        wait $! || qrc=$?
        echo "exited $qrc" >"$IO/ready"
        exit "$qrc"
    } &
    qemu=$!
    local rc=0
    if read -r -t "$boot_timeout" -u 6 line; then
        wait "$qemu" || rc=$?
    else
        # timeout passes the TERM on to QEMU.
        kill "$(cat "$IO/timeout.pid")" 2>/dev/null || true
        wait "$qemu" || true
        rc=200
    fi
    exec 6<&-
    # Both end when QEMU, dead or killed, has closed the fifos. A QEMU that died before opening
    # them left its cat blocked in open: opening read-write (never blocks) and closing frees it.
    exec 7<>"$IO/out" 8<>"$IO/err" 7>&- 8>&-
    wait "$cat_out" "$cat_err" || true
    return "$rc"
}

# Boots the guest, runs CMD ("$@") there and exits with its status.
run() {
    CGROUP=${V2VM_CGROUP:-v2}
    case $CGROUP in
    v2) CGROUP_ARGS="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" ;;
    v1)
        [[ ${V2VM_SYSTEMD:-0} == 1 ]] || { log "V2VM_CGROUP=v1 needs V2VM_SYSTEMD=1"; exit 125; }
        CGROUP_ARGS="systemd.unified_cgroup_hierarchy=0"
        ;;
    *) log "V2VM_CGROUP must be v1 or v2, not $CGROUP"; exit 125 ;;
    esac
    IO=$(mktemp -d /tmp/v2vm.XXXXXX)
    trap 'rm -rf "$IO"' EXIT
    # CMD runs with our environment and working directory.
    {
        echo "KVER=$KVER"
        echo "SYSTEMD=${V2VM_SYSTEMD:-0}"
        echo "CGROUP=$CGROUP"
        printf 'MODULES=%q\n' "$KDIR/root/lib/modules/$KVER"
    } >"$IO/vars"
    {
        export -p | grep -Ev '^declare -x (OLDPWD|PWD|SHLVL|_)(=|$)' || true
        printf 'cd %q || exit 125\n' "$PWD"
        printf 'exec'
        printf ' %q' "$@"
        printf '\n'
    } >"$IO/cmd"

    local boot_timeout=${V2VM_BOOT_TIMEOUT:-$([[ ${V2VM_SYSTEMD:-0} == 1 ]] && echo 180 || echo 60)}
    local try rc
    for try in 1 2 3; do
        rc=0
        boot "$boot_timeout" "$@" || rc=$?
        ((rc == 200)) || break
        log "the guest did not start the command within ${boot_timeout}s (try $try of 3); kernel log:"
        tail -n 5 "$IO/kernel.log" >&2 || true
    done
    ((rc != 200)) || { log "error: the guest never started the command"; exit 125; }

    if ((rc == 124 || rc == 137)); then
        log "error: the guest did not finish within V2VM_TIMEOUT=${TIMEOUT}s and was killed; kernel log:"
        tail -n 20 "$IO/kernel.log" >&2 || true
        exit 125
    fi
    if ((rc != 0)); then
        log "error: qemu exited with status $rc"
        tail -n 20 "$IO/kernel.log" >&2 || true
        exit 125
    fi
    status=$(cat "$IO/status" 2>/dev/null || true)
    if [[ $status =~ ^[0-9]+$ ]]; then
        exit "$status"
    fi
    log "error: the guest ended without running the command${status:+ ($status)}; kernel log:"
    tail -n 20 "$IO/kernel.log" >&2 || true
    exit 125
}

# Everything runs from functions, parsed before the first command: bash reads a script as it
# goes, and one edited during a long run would otherwise go on from a shifted offset.
main() {
    if [[ ${1:-} == --prepare ]]; then
        prepare
        log "ready: $KDIR"
        exit 0
    fi
    (($# > 0)) || die "usage: v2vm.sh CMD... (or v2vm.sh --prepare)"
    prepare
    run "$@"
}
main "$@"
