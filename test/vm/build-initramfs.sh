#!/bin/bash
# Builds the test VM's initramfs: busybox-static, mxfs.ko, node and the libraries it and
# koffi need (libnl-3, libnl-genl-3), iproute2's genl, the compiled project (dist/) with its
# runtime node_modules, and the in-VM scripts. Usage: build-initramfs.sh OUT.cpio.gz
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$1"
KO="$ROOT/kernel/mxfs.ko"
[ -f "$KO" ] || { echo "build-initramfs: $KO missing (run build-module.sh)" >&2; exit 1; }
[ -d "$ROOT/dist/test/vm" ] || { echo "build-initramfs: dist/ missing (run npx tsc -p .)" >&2; exit 1; }

STAGE="$(mktemp -d /tmp/mxfs-initramfs.XXXXXX)"
chmod 755 "$STAGE"   # the VM root: mktemp makes it 0700, which locks out non-root tests
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,dev,proc,sys,tmp,run,etc,mxfs,lib/modules,lib/x86_64-linux-gnu,lib64,usr/bin,usr/sbin}

cp /bin/busybox "$STAGE/bin/busybox"
for applet in $("$STAGE/bin/busybox" --list); do
  [ -e "$STAGE/bin/$applet" ] || ln -s busybox "$STAGE/bin/$applet"
done

# A binary and every library ldd names, at the path the loader asks for (files, not links).
copy_with_libs() {
  local src="$1" dst="$2"
  mkdir -p "$(dirname "$STAGE$dst")"
  cp -L "$src" "$STAGE$dst"
  ldd "$src" | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$STAGE$lib" ] && continue
    mkdir -p "$(dirname "$STAGE$lib")"
    cp -L "$lib" "$STAGE$lib"
  done
}

copy_with_libs "$(readlink -f "$(command -v node)")" /usr/bin/node
strip --strip-unneeded "$STAGE/usr/bin/node" 2>/dev/null || true
copy_with_libs /usr/sbin/genl /usr/sbin/genl
for so in libnl-3.so.200 libnl-genl-3.so.200; do
  copy_with_libs "/usr/lib/x86_64-linux-gnu/$so" "/lib/x86_64-linux-gnu/$so"
done

cp "$KO" "$STAGE/lib/modules/mxfs.ko"

# The project: compiled JS, package.json, and only the runtime (non-dev) dependencies.
mkdir -p "$STAGE/mxfs/node_modules"
cp -r "$ROOT/dist" "$STAGE/mxfs/dist"
rm -rf "$STAGE/mxfs/dist/bench"
find "$STAGE/mxfs/dist" -name '*.map' -delete
cp "$ROOT/package.json" "$STAGE/mxfs/"
# npm ls exits non-zero on any oddity in the tree (extraneous, invalid...): keep its list.
DEPS="$(cd "$ROOT" && npm ls --omit=dev --parseable --all 2>/dev/null || true)"
[ -n "$DEPS" ] || { echo "build-initramfs: npm ls listed no runtime dependencies" >&2; exit 1; }
echo "$DEPS" | grep "^$ROOT/node_modules/" | while read -r dir; do
  rel="${dir#"$ROOT"/}"
  [ -d "$STAGE/mxfs/$rel" ] && continue
  mkdir -p "$(dirname "$STAGE/mxfs/$rel")"
  cp -r "$dir" "$STAGE/mxfs/$rel"
done

cp "$ROOT/test/vm/init.sh" "$STAGE/init"
cp "$ROOT/test/vm/vm-tests.sh" "$STAGE/mxfs/vm-tests.sh"
[ -f "$ROOT/test/vm/mxfs.conf" ] && cp "$ROOT/test/vm/mxfs.conf" "$STAGE/mxfs/mxfs.conf"
chmod +x "$STAGE/init" "$STAGE/mxfs/vm-tests.sh"

(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$OUT"
echo "build-initramfs: $OUT ($(du -h "$OUT" | cut -f1))"
