#!/usr/bin/env bash
# Make an OCI bundle with a busybox rootfs.
#
#   scripts/mkbundle.sh DIR [ARG...]
#
# DIR/rootfs: Debian's static busybox at /bin/busybox, one symlink per applet in /bin,
#             empty proc sys dev tmp etc root, and /etc/passwd and /etc/group with root and nobody.
# DIR/config.json: `runc spec` output with process.terminal=false and process.args=ARG...
#             (default: sh -c 'echo hello from $(hostname), pid $$').
#
# Re-running recreates DIR/rootfs and DIR/config.json from scratch; nothing else in DIR is
# touched. Needs runc, jq and busybox-static (scripts/install-deps.sh).
set -euo pipefail

die() { printf 'mkbundle: error: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 && $1 != -h && $1 != --help ]] || {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}
dir=$1
shift
if (($# == 0)); then
    # shellcheck disable=SC2016 # expanded by the container's shell, not this one
    set -- sh -c 'echo hello from $(hostname), pid $$'
fi

RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
[[ -x $RUNC ]] || die "runc not found (install it: scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (install it: scripts/install-deps.sh)"

BUSYBOX=${BUSYBOX:-/bin/busybox}
[[ -x $BUSYBOX ]] || die "$BUSYBOX not found (apt-get install busybox-static)"
# A dynamically linked busybox (Debian's `busybox` package) would not run in the rootfs.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked; install busybox-static"
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
rootfs=$dir/rootfs

# Recreate cleanly. --one-file-system: never descend into anything mounted below rootfs.
rm -rf --one-file-system "$rootfs" "$dir/config.json" "$dir/config.json.tmp"

mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,root,tmp}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
cp "$BUSYBOX" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
while IFS= read -r applet; do
    [[ -n $applet && $applet != busybox && $applet != */* ]] || continue
    ln -s busybox "$rootfs/bin/$applet"
done < <("$BUSYBOX" --list)
[[ -e $rootfs/bin/sh ]] || die "busybox has no sh applet"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF

"$RUNC" spec --bundle "$dir"
# Pass each arg with --arg: jq 1.6 would parse a positional "-c" given via --args as its own flag.
jq_args=()
for ((i = 1; i <= $#; i++)); do jq_args+=(--arg "a$i" "${!i}"); done
jq --indent 2 "${jq_args[@]}" --argjson n "$#" \
    '.process.terminal = false | .process.args = [range(1; $n + 1) as $i | $ARGS.named["a\($i)"]]' \
    "$dir/config.json" >"$dir/config.json.tmp"
mv "$dir/config.json.tmp" "$dir/config.json"

printf 'mkbundle: bundle at %s: %s\n' "$dir" "$(jq -c .process.args "$dir/config.json")" >&2
