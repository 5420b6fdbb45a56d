#!/usr/bin/env bash
# mkimage.sh OUT.tar [TAG]: a `docker save` archive of a busybox image made from Debian's static
# busybox (busybox-static): one layer with /bin/busybox and a link for each of its applets,
# tagged TAG (default busybox:latest). `huskctl load -i OUT.tar` and `docker load -i OUT.tar`
# take it. Made with tar and sha256sum only, so the set-up needs no registry.
set -euo pipefail

(($# >= 1)) || { echo "usage: $0 OUT.tar [TAG]" >&2; exit 2; }
out=$1
tag=${2:-busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "mkimage: $busybox missing (Debian's busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/archive"
chmod 1777 "$work/rootfs/tmp"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$work/rootfs/bin/$applet"
done

# Fixed owner and time: the same busybox gives the same image id.
tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$work/rootfs" \
    -cf "$work/layer.tar" .
layer=$(sha256sum "$work/layer.tar" | cut -c1-64)
mkdir "$work/archive/$layer"
mv "$work/layer.tar" "$work/archive/$layer/layer.tar"

printf '{"architecture":"amd64","os":"linux","created":"2025-01-01T00:00:00Z",%s,%s}' \
    '"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' \
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]}" >"$work/config.json"
config=$(sha256sum "$work/config.json" | cut -c1-64)
mv "$work/config.json" "$work/archive/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
    "$config" "$tag" "$layer" >"$work/archive/manifest.json"

tar --numeric-owner --owner=0 --group=0 -C "$work/archive" -cf "$out" .
echo "mkimage: $tag in $out (layer sha256:$layer)"
