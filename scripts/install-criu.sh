#!/usr/bin/env bash
# Install CRIU 4.1.1 at /usr/local/sbin/criu, built from its upstream source tarball.
#
# Debian 12's criu 3.17 fails `criu check` on recent kernels ("Unexpected rt vDSO area
# bounds"), so husk's checkpoint/restore needs CRIU 4. Its source is Debian 13's orig tarball,
# fetched with `apt-get source` from a temporary deb-src entry for trixie whose URI is taken, at
# run time, from this machine's own Debian sources entry. A private apt configuration keeps the
# machine's apt lists, caches and hooks untouched.
#
# Idempotent: skips at once when a CRIU >= 4 passes `criu check`; otherwise reuses the built
# binary cached in $HUSK_CRIU_CACHE, and only builds when there is none. Run as root (it
# re-runs itself under sudo otherwise). Called by scripts/install-deps.sh.
set -euo pipefail

CRIU_VERSION=4.1.1
CRIU_TARBALL=criu_${CRIU_VERSION}.orig.tar.xz
CRIU_SHA256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
CRIU_SUITE=trixie
CACHE=${HUSK_CRIU_CACHE:-/var/cache/husk/criu-$CRIU_VERSION}
TARGET=/usr/local/sbin/criu

BUILD_DEPS=(
    build-essential xz-utils libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnl-3-dev
    libprotobuf-c-dev libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler
    python3-protobuf uuid-dev libnftables-dev
)

log() { printf 'install-criu: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo)"
    exec sudo --preserve-env=HUSK_CRIU_CACHE "$0" "$@"
fi

# Whether $1 is CRIU 4 or later and passes `criu check` on this kernel.
criu_works() {
    local bin=$1 major out
    [[ -x $bin ]] || return 1
    major=$("$bin" --version 2>/dev/null | sed -n 's/^Version: *\([0-9][0-9]*\)\..*/\1/p')
    [[ -n $major ]] && ((major >= 4)) || return 1
    out=$("$bin" check 2>&1) && [[ $out == *"Looks good"* ]]
}

installed_works() {
    local bin
    for bin in "$TARGET" "$(command -v criu 2>/dev/null || true)"; do
        if [[ -n $bin ]] && criu_works "$bin"; then
            log "CRIU: $bin, $("$bin" --version | sed -n 's/^Version: *//p'), criu check passes"
            return 0
        fi
    done
    return 1
}

installed_works && exit 0

mkdir -p "$CACHE"
# Two concurrent runs would build twice and race on the install.
exec 9>"$CACHE/lock"
flock 9
installed_works && exit 0

ensure_build_deps() {
    local pkg status missing=()
    for pkg in "${BUILD_DEPS[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing CRIU's build dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

install_cached() {
    install -m 0755 "$CACHE/criu" "$TARGET.new"
    mv -f "$TARGET.new" "$TARGET"
}

# The cached binary links the build dependencies' libraries, hence ensure_build_deps first.
if [[ -x $CACHE/criu ]]; then
    ensure_build_deps
    install_cached
    if criu_works "$TARGET"; then
        log "CRIU $CRIU_VERSION installed at $TARGET from the cached build in $CACHE"
        exit 0
    fi
    log "the cached build in $CACHE fails criu check; rebuilding"
    rm -f "$CACHE/criu"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The URI of this machine's Debian entry for its own release (deb822 files first, then the
# one-line format), so that no archive host is written into the project.
debian_uri() {
    local codename files=()
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || return 1
    shopt -s nullglob
    files=(/etc/apt/sources.list.d/*.sources)
    if ((${#files[@]})); then
        awk -v suite="$codename" '
            BEGIN { RS = ""; FS = "\n" }
            {
                delete f
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[ \t]*#/ || !(n = index($i, ":"))) continue
                    v = " " substr($i, n + 1) " "
                    gsub(/[ \t]+/, " ", v)
                    f[tolower(substr($i, 1, n - 1))] = v
                }
                if (f["types"] ~ / deb / && f["suites"] ~ " " suite " " && f["enabled"] !~ / no /) {
                    split(f["uris"], u, " ")
                    print u[1]
                    exit
                }
            }' "${files[@]}" | grep . && return 0
    fi
    files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
    ((${#files[@]})) || return 1
    awk -v suite="$codename" '
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit }
        }' "${files[@]}" 2>/dev/null | grep .
}

fetch_tarball() {
    local uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=
    uri=$(debian_uri) || die "no Debian 'deb' entry for this release in /etc/apt; cannot derive a $CRIU_SUITE source entry"
    uri=${uri%/}
    [[ -r $keyring ]] && signed="[signed-by=$keyring] "
    mkdir -p "$tmp/apt/none" "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/src"
    printf 'deb-src %s%s %s main\n' "$signed" "$uri" "$CRIU_SUITE" >"$tmp/apt/sources.list"
    # The machine's Acquire settings (proxies, date checks) are kept; its apt.conf.d (with its
    # update hooks), its sources, lists and caches are not used.
    {
        apt-config dump Acquire
        cat <<EOF
Dir::Etc::parts "$tmp/apt/none";
Dir::Etc::main "/dev/null";
Dir::Etc::sourcelist "$tmp/apt/sources.list";
Dir::Etc::sourceparts "$tmp/apt/none";
Dir::State::Lists "$tmp/apt/lists";
Dir::Cache "$tmp/apt/cache";
APT::Sandbox::User "root";
EOF
    } >"$tmp/apt/apt.conf"
    log "fetching the $CRIU_SUITE source index (private apt configuration)"
    APT_CONFIG=$tmp/apt/apt.conf apt-get -q update >&2 ||
        die "apt-get update of the temporary $CRIU_SUITE deb-src entry failed"
    log "fetching $CRIU_TARBALL"
    # Only the orig tarball matters; the .dsc or the Debian diff may fail to download.
    (cd "$tmp/src" && APT_CONFIG=$tmp/apt/apt.conf apt-get -q source --download-only criu >&2) ||
        log "apt-get source reported an error; checking whether $CRIU_TARBALL arrived"
    [[ -f $tmp/src/$CRIU_TARBALL ]] ||
        die "$CRIU_TARBALL not fetched ($CRIU_SUITE's criu source is now: $(ls "$tmp/src" | tr '\n' ' '))"
    mv "$tmp/src/$CRIU_TARBALL" "$CACHE/$CRIU_TARBALL.part"
}

tarball_ok() {
    [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$CRIU_SHA256" ]]
}

if ! tarball_ok "$CACHE/$CRIU_TARBALL"; then
    fetch_tarball
    if ! tarball_ok "$CACHE/$CRIU_TARBALL.part"; then
        got=$(sha256sum "$CACHE/$CRIU_TARBALL.part" | cut -d' ' -f1)
        rm -f "$CACHE/$CRIU_TARBALL.part"
        die "$CRIU_TARBALL has sha256 $got, expected $CRIU_SHA256; not building it"
    fi
    mv -f "$CACHE/$CRIU_TARBALL.part" "$CACHE/$CRIU_TARBALL"
    log "$CRIU_TARBALL: sha256 ok, cached in $CACHE"
fi

ensure_build_deps
log "building CRIU $CRIU_VERSION (make criu -j2)"
start=$SECONDS
tar -xJf "$CACHE/$CRIU_TARBALL" -C "$tmp"
src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'criu-*' | head -n1)
[[ -n $src ]] || die "$CRIU_TARBALL holds no criu-* directory"
make -C "$src" -j2 criu >"$tmp/build.log" 2>&1 || {
    tail -n 30 "$tmp/build.log" >&2
    die "make criu failed (last lines above)"
}
log "built in $((SECONDS - start)) s"
install -m 0755 "$src/criu/criu" "$CACHE/criu"
install_cached
criu_works "$TARGET" || die "$TARGET fails criu check: $("$TARGET" check 2>&1 | tail -n 3)"
log "CRIU $CRIU_VERSION installed at $TARGET ($("$TARGET" check 2>&1 | tail -n1))"
