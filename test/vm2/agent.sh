#!/bin/sh
# In-VM agent of the two-VM harness (run by /init via mxfs.run=/mxfs/vm2/agent.sh).
# Brings the VM up as node 1 (role a) or node 2 (role b): static IP on eth0, the mxfs module,
# mxfsd with /mxfs/vm2/node<N>.conf plus a [volume] "data" on the shared disk (found by its
# serial) at /mnt/data, with the driver the host named (mxfs.volume_driver=kernel|command;
# command: mount/umount commands, started by nobody: start = none). Then serves the host's control channel, the second serial
# line (/dev/ttyS1, a pipe on the host): one command per line, "ID BASE64-SCRIPT". Each script
# runs in the background in its own sh with vmlib.sh sourced; when it ends the agent prints its
# output on the console as "MXFS-OUT ID| line" and then "MXFS-DONE ID rc=N", which lib.sh on
# the host waits for. The host sends nothing before "MXFS-VM2 ready" (opening the serial port
# resets its receive FIFO).
. /mxfs/vm2/vmlib.sh
echo "MXFS-VM2 agent role=$ROLE node=$NODE test=$TEST"

ip link set eth0 up && ip addr add 10.99.0.$NODE/24 dev eth0 || echo "MXFS-VM2 network setup failed"
insmod /lib/modules/mxfs.ko || echo "MXFS-VM2 insmod mxfs.ko failed"
mkdir -p "$MNT" /tmp/mxfs-state /tmp/cmd
{
  cat /mxfs/vm2/node$NODE.conf
  printf '\n[volume]\nname = data\ndevice = %s\nmountpoint = %s\ndriver = %s\nstart = none\n' "$DEV" "$MNT" "$VOLUME_DRIVER"
  if [ "$VOLUME_DRIVER" = command ]; then
    echo 'mount_cmd = mount -t xfs "$MXFS_DEVICE" "$MXFS_MOUNTPOINT"'
    echo 'umount_cmd = umount "$MXFS_MOUNTPOINT"'
  fi
} > "$CONF"
start_mxfsd

stty -F /dev/ttyS1 raw -echo || echo "MXFS-VM2 stty of the control port failed"
exec 3< /dev/ttyS1
echo "MXFS-VM2 ready role=$ROLE node=$NODE mxfsd=$(mxfsd_pid)"

while read -r id script <&3; do
  case "$id" in ''|*[!A-Za-z0-9_-]*) echo "MXFS-VM2 bad control line id='$id'"; continue ;; esac
  echo "$script" | base64 -d > /tmp/cmd/$id.sh 2>/dev/null || { echo "MXFS-DONE $id rc=254 (undecodable)"; continue; }
  (
    sh -c '. /mxfs/vm2/vmlib.sh; . "$0"' /tmp/cmd/$id.sh > /tmp/cmd/$id.out 2>&1 < /dev/null
    rc=$?
    sed "s/^/MXFS-OUT $id| /" /tmp/cmd/$id.out
    echo "MXFS-DONE $id rc=$rc"
  ) &
done
echo "MXFS-VM2 control channel closed"
