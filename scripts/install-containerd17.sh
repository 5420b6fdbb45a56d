#!/usr/bin/env bash
# Unpack Debian 13's containerd (1.7) into a private directory, next to the installed 1.6, so
# that the shim's integration tests can run both.
#
#   scripts/install-containerd17.sh [DIR]     (default: /var/cache/husk/containerd-1.7)
#
# DIR/usr/bin/containerd, ctr and containerd-shim-runc-v2 come from the package, unpacked with
# dpkg-deb -x; nothing is installed. The machine's apt state is not touched: a private apt
# configuration whose one source is the machine's own Debian entry with its suite replaced by
# trixie, with its own lists, cache and (empty) dpkg status. Idempotent: a DIR that already has
# its containerd is left as it is.
set -euo pipefail

DIR=${1:-/var/cache/husk/containerd-1.7}
log() { printf 'install-containerd17: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -x $DIR/usr/bin/containerd ]]; then
    log "present: $("$DIR/usr/bin/containerd" --version 2>/dev/null || echo "$DIR/usr/bin/containerd")"
    exit 0
fi
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "needs apt-get and dpkg-deb (Debian)"

# The machine's Debian archive: the URI and keyring of the first deb822 entry (or one-line
# entry) whose suites include the release's own codename, never a security or updates suite.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release"
uri='' keyring=''
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # deb822: one entry per paragraph; the first `deb` entry with the codename as a suite.
    read -r uri keyring < <(awk -v want="$codename" '
        function flush() {
            if (deb && suite && uri != "") { print uri, (key == "" ? "-" : key); done = 1; exit }
            deb = suite = 0; uri = key = ""
        }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
        tolower($1) == "uris:" { uri = $2 }
        tolower($1) == "signed-by:" { key = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) suite = 1 }
        END { if (!done) flush() }' "$f") || true
    [[ -n $uri ]] && break
done
if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    # One-line form without options: deb URI SUITE COMPONENTS...
    read -r uri < <(awk -v want="$codename" '$1 == "deb" && $2 !~ /^\[/ && $3 == want { print $2; exit }' \
        /etc/apt/sources.list) || true
fi
[[ -n $uri ]] || die "no Debian source for $codename found in /etc/apt"
[[ -z $keyring || $keyring == - ]] && keyring=/usr/share/keyrings/debian-archive-keyring.gpg

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs"
: >"$work/status"
cat >"$work/trixie.sources" <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: $keyring
SRC
apt_opts=(
    -o "Dir::Etc::sourcelist=$work/trixie.sources"
    -o "Dir::Etc::sourceparts=$work/parts"
    -o "Dir::Etc::preferences=$work/prefs/none"
    -o "Dir::Etc::preferencesparts=$work/prefs"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::State::status=$work/status"
    -o "Dir::Cache=$work/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
    -o "APT::Architecture=$(dpkg --print-architecture)"
)
log "fetching the trixie package lists from $uri (private lists, machine's apt untouched)"
apt-get "${apt_opts[@]}" -q update >&2
(cd "$work" && apt-get "${apt_opts[@]}" -q download containerd >&2)
deb=$(ls "$work"/containerd_*.deb)
log "unpacking $(basename "$deb") into $DIR"
mkdir -p "$DIR.tmp"
dpkg-deb -x "$deb" "$DIR.tmp"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"
"$DIR/usr/bin/containerd" --version >&2 || log "warning: $DIR/usr/bin/containerd does not run here"
