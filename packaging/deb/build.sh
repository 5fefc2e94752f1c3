#!/usr/bin/env bash
# npm run package:deb — builds the Debian packages from this tree with dpkg-deb:
#   mxfs_<v>-1_<arch>.deb   the daemon and CLI: /usr/lib/mxfs (the npm package as `npm pack`
#                           makes it, with its production node_modules from package-lock.json),
#                           /usr/bin links, the systemd unit, tmpfiles.d, logrotate, the example
#                           config in /etc/mxfs, man pages, docs
#   mxfs-dkms_<v>-1_all.deb the kernel module's source in /usr/src/mxfs-<v> with dkms.conf
# Output: $MXFS_DEB_OUT (default dist/deb/). Needs dpkg-deb and npm; no compiler (the native
# modules come as prebuilt binaries in their npm packages).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/packaging"
OUT="${MXFS_DEB_OUT:-$ROOT/dist/deb}"
VERSION="$(node -p "require('$ROOT/package.json').version")"
DEBVERSION="$VERSION-1"
ARCH="$(dpkg --print-architecture)"
DATE="$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mxfs-deb.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

say() { echo "package:deb: $*"; }
fill() { sed -e "s/@VERSION@/$VERSION/g" -e "s/@DEBVERSION@/$DEBVERSION/g" -e "s/@ARCH@/$ARCH/g" -e "s/@DATE@/$DATE/g" "$@"; }

say "building $VERSION ($ARCH)"
(cd "$ROOT" && npx tsc -p .)
# The npm package is the unit of what ships: exactly its files, from a fresh pack.
(cd "$ROOT" && npm pack --ignore-scripts --silent --pack-destination "$WORK" >/dev/null)
tar -xzf "$WORK/mxfs-$VERSION.tgz" -C "$WORK"
PKG="$WORK/package"

# ---------------------------------------------------------------------------------------
# mxfs
S="$WORK/mxfs"
LIB="$S/usr/lib/mxfs"
DOC="$S/usr/share/doc/mxfs"
mkdir -p "$LIB" "$S/usr/bin" "$S/lib/systemd/system" "$S/usr/lib/tmpfiles.d" "$S/etc/mxfs" \
  "$S/etc/logrotate.d" "$DOC" "$S/usr/share/man/man8" "$S/usr/share/man/man1" "$S/usr/share/lintian/overrides" "$S/DEBIAN"
cp -a "$PKG/package.json" "$PKG/bin" "$PKG/dist" "$LIB/"
cp "$ROOT/package-lock.json" "$LIB/"
say "installing production node_modules (npm ci --omit=dev)"
(cd "$LIB" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
# Only what runs here: musl builds, build-time tools and leftovers, native and ES sources go
# (dtrace-provider is bunyan's optional DTrace probe, never built; moment/src duplicates moment.js).
find "$LIB/node_modules" -depth \( -path '*/musl_*' -o -name '*.musl.node' -o -name '*.gyp' -o -name '*.gypi' -o -name '.npmignore' \
  -o -name '.travis.yml' -o -name '.eslintrc*' -o -name '*.ts.map' -o -name '*.js.map' -o -name '.package-lock.json' \) -exec rm -rf {} +
# (koffi's src/ holds its JavaScript loader too: it stays; cnoke.cjs is its install-time tool.)
rm -rf "$LIB/node_modules/dtrace-provider" "$LIB/node_modules/moment/src" "$LIB/node_modules/koffi/doc" "$LIB/node_modules/koffi/cnoke.cjs"
# Prebuilt addons are shared objects: not executable, stripped (Debian policy 10.1, 10.9).
find "$LIB/node_modules" -name '*.node' -type f | while read -r so; do
  chmod 0644 "$so"
  if command -v strip >/dev/null; then strip --strip-unneeded --remove-section=.comment --remove-section=.note "$so"; fi
done
for b in mxfsd mxfsctl mxfs-cluster; do ln -s "../lib/mxfs/bin/$b" "$S/usr/bin/$b"; done
install -m 0644 "$HERE/systemd/mxfsd.service" "$S/lib/systemd/system/mxfsd.service"
install -m 0644 "$HERE/systemd/mxfs.tmpfiles" "$S/usr/lib/tmpfiles.d/mxfs.conf"
install -m 0644 "$HERE/logrotate/mxfs" "$S/etc/logrotate.d/mxfs"
install -m 0644 "$PKG/config/mxfs.conf.example" "$S/etc/mxfs/mxfs.conf.example"
install -m 0644 "$PKG/README.md" "$DOC/README.md"
for d in "$PKG"/docs/*.md; do install -m 0644 "$d" "$DOC/"; done
install -m 0644 "$HERE/deb/copyright" "$DOC/copyright"
fill "$HERE/deb/changelog.in" | gzip -9n > "$DOC/changelog.Debian.gz"
gzip -9n -c "$HERE/man/mxfsd.8" > "$S/usr/share/man/man8/mxfsd.8.gz"
gzip -9n -c "$HERE/man/mxfsctl.8" > "$S/usr/share/man/man8/mxfsctl.8.gz"
gzip -9n -c "$HERE/man/mxfs-cluster.1" > "$S/usr/share/man/man1/mxfs-cluster.1.gz"
install -m 0644 "$HERE/deb/mxfs.lintian-overrides" "$S/usr/share/lintian/overrides/mxfs"
for f in postinst prerm postrm; do install -m 0755 "$HERE/deb/mxfs.$f" "$S/DEBIAN/$f"; done
printf '/etc/mxfs/mxfs.conf.example\n/etc/logrotate.d/mxfs\n' > "$S/DEBIAN/conffiles"

# ---------------------------------------------------------------------------------------
# mxfs-dkms
K="$WORK/mxfs-dkms"
SRC="$K/usr/src/mxfs-$VERSION"
mkdir -p "$SRC" "$K/usr/share/doc/mxfs-dkms" "$K/usr/share/lintian/overrides" "$K/DEBIAN"
for f in "$PKG"/kernel/*.c "$PKG"/kernel/*.h "$PKG/kernel/Makefile"; do install -m 0644 "$f" "$SRC/"; done
# The module reads its version from VERSION at build time (kernel/Makefile): no package.json here.
echo "$VERSION" > "$SRC/VERSION"
fill "$HERE/dkms/dkms.conf.in" > "$SRC/dkms.conf"
install -m 0644 "$HERE/deb/copyright" "$K/usr/share/doc/mxfs-dkms/copyright"
install -m 0644 "$HERE/deb/mxfs-dkms.lintian-overrides" "$K/usr/share/lintian/overrides/mxfs-dkms"
fill "$HERE/deb/changelog.in" | sed 's/^mxfs /mxfs-dkms /' | gzip -9n > "$K/usr/share/doc/mxfs-dkms/changelog.Debian.gz"
for f in postinst prerm; do fill "$HERE/deb/mxfs-dkms.$f" > "$K/DEBIAN/$f"; chmod 0755 "$K/DEBIAN/$f"; done

# ---------------------------------------------------------------------------------------
# Both: normal permissions, md5sums, control with the installed size, then dpkg-deb.
mkdir -p "$OUT"
for P in mxfs mxfs-dkms; do
  T="$WORK/$P"
  find "$T" -path "$T/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
  find "$T" -path "$T/DEBIAN" -prune -o -type f ! -perm -u+x -exec chmod 0644 {} +
  find "$T" -path "$T/DEBIAN" -prune -o -type f -perm -u+x -exec chmod 0755 {} +
  (cd "$T" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r md5sum > DEBIAN/md5sums)
  chmod 0644 "$T/DEBIAN/md5sums"
  SIZE="$(du -sk --exclude=DEBIAN "$T" | cut -f1)"
  fill "$HERE/deb/control.$P.in" | sed "s/@SIZE@/$SIZE/" > "$T/DEBIAN/control"
  A="$ARCH"; [ "$P" = mxfs-dkms ] && A=all
  DEB="$OUT/${P}_${DEBVERSION}_${A}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$T" "$DEB" >/dev/null
  say "$DEB ($(du -h "$DEB" | cut -f1))"
done
