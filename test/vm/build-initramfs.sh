#!/bin/bash
# Builds the test VM's initramfs: busybox-static, mxfs.ko, node and the libraries it and
# koffi need (libnl-3, libnl-genl-3), iproute2's genl, dmsetup, the compiled project (dist/) with its
# runtime node_modules, and the in-VM scripts.
#   build-initramfs.sh OUT.cpio.gz [--kmod NAME]... [--add SRC:DST]... [--udev]
# --kmod: a module of the Debian kernel (with the modules it depends on, from modules.dep),
#   listed in /lib/modules/load-order for init.sh to insmod in order (soft dependencies
#   such as crc32c_generic before libcrc32c must be named first, explicitly).
# --add: copy a host file to DST in the image, keeping its mode (the two-VM harness adds its
#   agent, configs, key file and writer this way).
# --udev: Debian's systemd-udevd (udevadm), scsi_id and 60-persistent-storage.rules (the rules
#   that set ID_WWN), for the test of the documented boot-time udev rule (vm-tests.sh udev_claim).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$1"; shift
KMODS=()
ADDS=()
UDEV=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kmod) KMODS+=("$2"); shift ;;
    --add) ADDS+=("$2"); shift ;;
    --udev) UDEV=1 ;;
    *) echo "build-initramfs: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# MXFS_KO: another build of the module (test/vm/mutations.sh: a module with a mechanism removed).
KO="${MXFS_KO:-$ROOT/kernel/mxfs.ko}"
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
# dmsetup: the fence fallback tests hold writes below the gate with a suspended dm target.
copy_with_libs /usr/sbin/dmsetup /usr/sbin/dmsetup
for so in libnl-3.so.200 libnl-genl-3.so.200; do
  copy_with_libs "/usr/lib/x86_64-linux-gnu/$so" "/lib/x86_64-linux-gnu/$so"
done

if [ "$UDEV" = 1 ]; then
  copy_with_libs /usr/bin/udevadm /usr/bin/udevadm
  mkdir -p "$STAGE/lib/systemd" "$STAGE/lib/udev" "$STAGE/usr/lib/udev/rules.d" "$STAGE/etc/udev/rules.d"
  ln -s /usr/bin/udevadm "$STAGE/lib/systemd/systemd-udevd"   # one binary, chosen by its name
  copy_with_libs /usr/lib/udev/scsi_id /lib/udev/scsi_id
  cp /usr/lib/udev/rules.d/60-persistent-storage.rules "$STAGE/usr/lib/udev/rules.d/"
fi

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

# Debian kernel modules asked for, dependencies first (modules.dep lists each module's
# dependencies transitively, the deepest last: loading that list reversed, then the module,
# is modprobe's order).
if [ ${#KMODS[@]} -gt 0 ]; then
  KVER="$("$ROOT/kernel/kver.sh")"
  MODDIR="/lib/modules/$KVER"
  mkdir -p "$STAGE/lib/modules/kmod"
  : > "$STAGE/lib/modules/load-order"
  for m in "${KMODS[@]}"; do
    line="$(grep -E "(^|/)${m//_/[_-]}\.ko(\.xz)?:" "$MODDIR/modules.dep" || true)"
    [ -n "$line" ] || { echo "build-initramfs: kernel module $m not in $MODDIR/modules.dep" >&2; exit 1; }
    deps="$(echo "${line#*:}" | tr ' ' '\n' | sed '/^$/d' | tac)"
    for rel in $deps "${line%%:*}"; do
      base="$(basename "$rel")"; base="${base%.xz}"
      grep -qx "/lib/modules/kmod/$base" "$STAGE/lib/modules/load-order" && continue
      case "$rel" in
        *.xz) xz -dc "$MODDIR/$rel" > "$STAGE/lib/modules/kmod/$base" ;;
        *) cp "$MODDIR/$rel" "$STAGE/lib/modules/kmod/$base" ;;
      esac
      echo "/lib/modules/kmod/$base" >> "$STAGE/lib/modules/load-order"
    done
  done
fi

for a in ${ADDS[@]+"${ADDS[@]}"}; do
  src="${a%%:*}"; dst="${a#*:}"
  [ -e "$src" ] || { echo "build-initramfs: --add $src: no such file" >&2; exit 1; }
  mkdir -p "$(dirname "$STAGE$dst")"
  cp -pR "$src" "$STAGE$dst"
done

cp "$ROOT/test/vm/init.sh" "$STAGE/init"
cp "$ROOT/test/vm/vm-tests.sh" "$STAGE/mxfs/vm-tests.sh"
cp "$ROOT/test/vm/hooks-tests.sh" "$STAGE/mxfs/hooks-tests.sh"
cp "$ROOT/test/vm/hooks-lib.sh" "$STAGE/mxfs/hooks-lib.sh"
cp "$ROOT/test/vm/burst-tests.sh" "$STAGE/mxfs/burst-tests.sh"
cp "$ROOT/test/vm/hooks-bench.sh" "$STAGE/mxfs/hooks-bench.sh"
[ -f "$ROOT/test/vm/mxfs.conf" ] && cp "$ROOT/test/vm/mxfs.conf" "$STAGE/mxfs/mxfs.conf"
chmod +x "$STAGE/init" "$STAGE/mxfs/vm-tests.sh"

(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$OUT"
echo "build-initramfs: $OUT ($(du -h "$OUT" | cut -f1))"
