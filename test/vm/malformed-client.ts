/**
 * Runs inside the VM while a daemon is registered: a second, unregistered netlink client
 * that sends messages the module must refuse, and one it must answer; with --unprivileged
 * it first drops to uid/gid 65534 and checks that nothing is accepted. Prints
 * "MXFS-TEST PASS|FAIL <name>: <detail>" per check; exits 1 if any failed.
 */
import { GenlKernelChannel } from '../../src/ffi/mxfs-channel';
import { GenlSocket, KernelAckError, NetlinkError } from '../../src/ffi/genl-socket';
import { encodeValue, parseMxfsMessage } from '../../src/ffi/netlink-msg';
import { MxfsAttr, MxfsCmd, MXFS_PROTO_VERSION } from '../../src/ffi/mxfs-genl';

let failed = 0;
const report = (ok: boolean, name: string, detail: string) => {
  if (!ok) failed++;
  process.stdout.write(`MXFS-TEST ${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}\n`);
};

const enc = (a: Exclude<MxfsAttr, MxfsAttr.UNSPEC>, v: number | bigint | string): [number, Buffer] => [a, encodeValue(a, v)];

async function expectErrno(name: string, cmd: number, attrs: Array<[number, Buffer]>, errnos: number[]): Promise<void> {
  try {
    await channel.sendRaw(cmd, attrs, 3000);
    report(false, name, 'accepted');
  } catch (e) {
    if (e instanceof KernelAckError) {
      const miss = e.missingAttr !== undefined ? ` (missing ${MxfsAttr[e.missingAttr] ?? e.missingAttr})` : '';
      report(errnos.includes(e.errno), name, `errno ${e.errno}${e.extack ? ` "${e.extack}"` : ''}${miss}`);
    } else {
      report(false, name, String(e));
    }
  }
}

let channel: GenlKernelChannel;

async function main(): Promise<void> {
  channel = new GenlKernelChannel({ onMessage: () => {}, onFamily: () => {}, onError: () => {} });
  const family = channel.resolve();
  process.stdout.write(`malformed-client: family ${family}, portid ${channel.portid}\n`);
  // LOCK_GRANT without its required REQ_ID: rejected by pre_doit (EINVAL, missing attribute).
  await expectErrno('reject-missing-attr', MxfsCmd.LOCK_GRANT,
    [enc(MxfsAttr.MODE, 5), enc(MxfsAttr.TOKEN, 1n)], [22]);
  // An attribute that belongs to another command: rejected by the strict policy (EINVAL).
  await expectErrno('reject-foreign-attr', MxfsCmd.NODE_STATUS,
    [enc(MxfsAttr.NODE_ID, 2), enc(MxfsAttr.NODE_STATE, 1), enc(MxfsAttr.VOLUME, 'v')], [22]);
  // A value out of range (mode 9): policy (EINVAL or ERANGE).
  await expectErrno('reject-out-of-range', MxfsCmd.BAST,
    [enc(MxfsAttr.LOCK_ID, 1n), [MxfsAttr.MODE, Buffer.from([9])]], [22, 34]);
  // A wrong-size integer.
  await expectErrno('reject-bad-size', MxfsCmd.NODE_STATUS,
    [[MxfsAttr.NODE_ID, Buffer.from([1, 0])], enc(MxfsAttr.NODE_STATE, 1)], [22, 34]);
  // A command only the kernel sends: no op (EOPNOTSUPP).
  await expectErrno('reject-kernel-only-cmd', MxfsCmd.LOCK_REQ,
    [enc(MxfsAttr.REQ_ID, 1n), enc(MxfsAttr.LOCKSPACE, 'x'), enc(MxfsAttr.RESOURCE, 'y'), enc(MxfsAttr.MODE, 1)], [95]);
  // A well-formed grant, but from a socket that is not the registered daemon (EPERM).
  await expectErrno('reject-not-daemon', MxfsCmd.LOCK_GRANT,
    [enc(MxfsAttr.REQ_ID, 1n), enc(MxfsAttr.MODE, 5), enc(MxfsAttr.TOKEN, 1n)], [1]);
  // A second daemon while one is registered (EBUSY).
  await expectErrno('reject-second-daemon', MxfsCmd.DAEMON_READY,
    [enc(MxfsAttr.NODE_ID, 9), enc(MxfsAttr.PROTO_VERSION, MXFS_PROTO_VERSION)], [16]);
  // A protocol version the module does not speak.
  await expectErrno('reject-bad-version', MxfsCmd.DAEMON_READY,
    [enc(MxfsAttr.NODE_ID, 9), enc(MxfsAttr.PROTO_VERSION, 99)], [93]);
  // STATUS_REQ from anyone privileged: answered with a valid STATUS_RESP (same seq).
  try {
    const r = await channel.sendRaw(MxfsCmd.STATUS_REQ, [], 3000);
    const m = parseMxfsMessage(r.replies[0]!);
    report(m.cmd === MxfsCmd.STATUS_RESP && (m.attrs[MxfsAttr.DAEMON_PORTID] as number) !== 0, 'status-request',
      `daemon portid ${String(m.attrs[MxfsAttr.DAEMON_PORTID])}, requests ${String(m.attrs[MxfsAttr.STAT_REQUESTS])}, rejected ${String(m.attrs[MxfsAttr.STAT_REJECTED])}`);
  } catch (e) {
    report(false, 'status-request', String(e));
  }
  await channel.close();
  process.exit(failed ? 1 : 0);
}

/** As uid/gid 65534 (no capabilities): nothing may be sent, the events group may not be joined. */
async function unprivileged(): Promise<void> {
  process.setgid!(65534);
  process.setuid!(65534);
  const sock = GenlSocket.open({ onMessage: () => {} });
  const family = sock.resolveFamily('mxfs');
  for (const [name, cmd, attrs] of [
    ['unprivileged-daemon-ready', MxfsCmd.DAEMON_READY, [enc(MxfsAttr.NODE_ID, 5), enc(MxfsAttr.PROTO_VERSION, MXFS_PROTO_VERSION)]],
    ['unprivileged-status-request', MxfsCmd.STATUS_REQ, []],
  ] as Array<[string, MxfsCmd, Array<[number, Buffer]>]>) {
    const err = await sock.request(family, cmd, 1, attrs, 3000).then(() => undefined, (e: unknown) => e);
    report(err instanceof KernelAckError && err.errno === 1, name, err instanceof Error ? err.message : 'accepted');
  }
  try {
    sock.joinGroup(sock.resolveGroup('mxfs', 'events'));
    report(false, 'unprivileged-join-events', 'joined');
  } catch (e) {
    report(e instanceof NetlinkError, 'unprivileged-join-events', (e as Error).message);
  }
  await sock.close();
  process.exit(failed ? 1 : 0);
}

(process.argv.includes('--unprivileged') ? unprivileged() : main()).catch((e: unknown) => {
  report(false, process.argv.includes('--unprivileged') ? 'unprivileged-client' : 'malformed-client', String(e));
  process.exit(1);
});
