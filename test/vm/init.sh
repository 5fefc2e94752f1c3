#!/bin/busybox sh
# /init of the MXFS test VM: mount the pseudo file systems, run the tests, power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
/bin/busybox mount -t tmpfs tmpfs /tmp
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
export HOME=/tmp
ip link set lo up 2>/dev/null
echo "MXFS-VM booted: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu"
sh /mxfs/vm-tests.sh
echo "MXFS-VM done"
sync
poweroff -f
