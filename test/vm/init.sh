#!/bin/busybox sh
# /init of the MXFS test VMs: mount the pseudo file systems, load the Debian kernel modules the
# image lists (/lib/modules/load-order, in order; see build-initramfs.sh --kmod), run the
# script named by mxfs.run= on the kernel command line (default: the one-VM tests), power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
/bin/busybox mount -t tmpfs tmpfs /tmp
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
export HOME=/tmp
ip link set lo up 2>/dev/null
if [ -f /lib/modules/load-order ]; then
  while read -r ko; do
    insmod "$ko" || echo "MXFS-VM insmod $ko failed"
  done < /lib/modules/load-order
fi
RUN=$(sed -n 's/.*mxfs\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "MXFS-VM booted: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu"
sh "${RUN:-/mxfs/vm-tests.sh}"
echo "MXFS-VM done"
sync
poweroff -f
