/**
 * volume-cmd SOCKET OP: the mount_cmd / umount_cmd / recover_cmd / fence_cmd /
 * fence_check_cmd of command-mode volumes backed by a VolumeStore (volume-store.ts). Sends the
 * operation with the MXFS_* environment mxfsd gives its commands; exits 0 when the store
 * accepted it, 1 with the store's reason on stderr otherwise, 2 when the store is unreachable.
 */
import net from 'node:net';
import type { VolumeCmd, VolumeCmdRequest, VolumeCmdReply } from './volume-store';

const OPS: readonly VolumeCmd[] = ['mount', 'umount', 'recover', 'fence', 'check'];

function num(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : Number(v);
}

function main(): void {
  const [socket, op] = process.argv.slice(2);
  if (!socket || !op || !(OPS as readonly string[]).includes(op)) {
    process.stderr.write(`usage: volume-cmd SOCKET ${OPS.join('|')}\n`);
    process.exit(2);
  }
  const req: VolumeCmdRequest = {
    op: op as VolumeCmd, volume: process.env.MXFS_VOLUME ?? '', node: num('MXFS_NODE') ?? 0,
    generation: num('MXFS_GENERATION'), recoveryOf: num('MXFS_RECOVERY_OF'), recoveryGeneration: num('MXFS_RECOVERY_GENERATION'),
    recoveryFromGeneration: num('MXFS_RECOVERY_FROM_GENERATION'), fenceCause: process.env.MXFS_FENCE_CAUSE,
    oldOwner: num('MXFS_OLD_OWNER'), oldGeneration: num('MXFS_OLD_GENERATION'),
  };
  const sock = net.connect(socket);
  let buf = '';
  sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
  sock.on('data', (d) => { buf += d.toString('utf8'); });
  sock.on('error', (e) => { process.stderr.write(`volume store unreachable: ${e.message}\n`); process.exit(2); });
  sock.on('close', () => {
    let rep: VolumeCmdReply;
    try { rep = JSON.parse(buf.trim()) as VolumeCmdReply; } catch { process.stderr.write('volume store gave no answer\n'); process.exit(2); }
    if (rep.ok) { process.stdout.write(`${rep.message}\n`); process.exit(0); }
    process.stderr.write(`${rep.message}\n`);
    process.exit(1);
  });
}

main();
