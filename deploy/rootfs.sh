#!/usr/bin/env bash
# rootfs.sh - lays out capstan's runtime image tree: the capstan binary (debug info stripped),
# curl for the image's HEALTHCHECK, the shared libraries both load (their `ldd` closure, copied
# under their sonames) and OpenBLAS, which the engine loads itself; the digits model,
# /etc/passwd and /etc/group naming the non-root user capstan (uid 65532), and /data and /tmp
# owned by it. Used by deploy/Containerfile's build
# stage and by `make image` on a machine that reaches no container registry; both then copy
# the tree into an image FROM scratch.
#
# usage: deploy/rootfs.sh DEST CAPSTAN_BINARY MODELS_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 DEST CAPSTAN_BINARY MODELS_DIR" >&2
    exit 2
fi
dest=$1 capstan=$2 models=$3
uid=65532

rm -rf "$dest"
mkdir -p "$dest"/usr/bin "$dest"/etc "$dest"/models "$dest"/data "$dest"/tmp
objcopy --strip-debug "$capstan" "$dest/usr/bin/capstan"
cp /usr/bin/curl "$dest/usr/bin/curl"
cp "$models/digits.onnx" "$models/digits.yaml" "$dest/models/"

# Every library either binary loads, at the path the dynamic loader looks it up under
# (symlinks resolved, so the file lands under the soname ldd printed), and OpenBLAS, which the
# engine loads at its first session (dlopen), with what it loads.
openblas=$(/sbin/ldconfig -p | awk '$1 == "libopenblas.so.0" && !f {print $NF; f = 1}') # no early exit: pipefail
[ -n "$openblas" ] || { echo "rootfs.sh: libopenblas.so.0 is not installed" >&2; exit 1; }
for lib in "$openblas" $(ldd "$capstan" /usr/bin/curl "$openblas" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
    mkdir -p "$dest$(dirname "$lib")"
    cp -L "$lib" "$dest$lib"
done
# Debian's /lib is a symlink to usr/lib; keep the loader's /lib64 path and the usual layout.
if [ -d "$dest/lib" ] && [ ! -L "$dest/lib" ]; then
    mkdir -p "$dest/usr/lib"
    cp -a "$dest/lib/." "$dest/usr/lib/"
    rm -rf "$dest/lib"
    ln -s usr/lib "$dest/lib"
fi

printf 'root:x:0:0:root:/root:/sbin/nologin\ncapstan:x:%d:%d:capstan:/data:/sbin/nologin\n' \
    "$uid" "$uid" >"$dest/etc/passwd"
printf 'root:x:0:\ncapstan:x:%d:\n' "$uid" >"$dest/etc/group"
printf 'hosts: files dns\n' >"$dest/etc/nsswitch.conf"
chown "$uid:$uid" "$dest/data"
chmod 1777 "$dest/tmp"
