/**
 * `mxfsctl locks --volume V`, daemon side: the kernel's cached inode locks read page by page
 * with GLOCK_LIST_REQ (src/daemon/kernel-inode-locks.ts), through the client request
 * 'inodeLocks' of an in-process daemon whose kernel bridge is the real bridge actor on a fake
 * channel (test/support/fake-kernel-channel.ts: the module's GLOCK_INFO replies as bytes, read
 * by the bridge's parser) and the fake lock client of the bridge tests; its refusals; the
 * request's validation. (The real module answers in the two-VM test
 * test/vm2/tests/inode-locks.sh, check locks-volume.)
 */
import { expect } from 'chai';
import { Daemon } from '../src/daemon/daemon';
import { listKernelInodeLocks } from '../src/daemon/kernel-inode-locks';
import { KernelNotAttached, startKernelBridge, type KernelBridge } from '../src/actors/kernel-bridge';
import { ManualClock } from '../src/util/clock';
import { FakeLockClient } from './vm/fake-lock-client';
import { FakeKernelChannel } from './support/fake-kernel-channel';
import { MxfsClient, VolumeRequestFailed } from '../src/client/client';
import { MXFS_GLOCK_LIST_MAX, MxfsAttr, MxfsCmd, MxfsGlockState, MxfsGlockType } from '../src/ffi/mxfs-genl';
import type { MxfsAttrs, MxfsMessage } from '../src/ffi/netlink-msg';
import type { VolumeConfig } from '../src/config/config';
import { ProtocolError, validateClientRequest } from '../src/wire/client-protocol';
import { quietLogger, testConfig, tmpDir } from './support/daemon-proc';

interface FakeGlock { ino: bigint; mode: number; state: number; type: number; demote?: number; lockId: bigint }

/** A module's lock cache answering GLOCK_LIST_REQ as mxfs_glocks_list does: ino >= INODE, ascending, at most LIMIT. */
function fakeModule(volume: string, glocks: FakeGlock[]) {
  const asked: Array<{ from: bigint; limit: number }> = [];
  const sorted = [...glocks].sort((a, b) => (a.ino < b.ino ? -1 : a.ino > b.ino ? 1 : 0));
  const requestSync = (attrs: MxfsAttrs): MxfsMessage[] => {
    expect(attrs[MxfsAttr.VOLUME]).to.equal(volume);
    const from = attrs[MxfsAttr.INODE] as bigint;
    const limit = attrs[MxfsAttr.LIMIT] as number;
    expect(limit).to.be.within(1, MXFS_GLOCK_LIST_MAX);
    asked.push({ from, limit });
    return sorted.filter((g) => g.ino >= from).slice(0, limit).map((g) => ({
      cmd: MxfsCmd.GLOCK_INFO, seq: 1, portid: 0,
      attrs: {
        [MxfsAttr.VOLUME]: volume, [MxfsAttr.INODE]: g.ino, [MxfsAttr.MODE]: g.mode, [MxfsAttr.GLOCK_STATE]: g.state,
        [MxfsAttr.GLOCK_TYPE]: g.type, [MxfsAttr.HOLDERS]: 1, [MxfsAttr.WAITERS]: 2, [MxfsAttr.HITS]: 30n,
        [MxfsAttr.MISSES]: 4n, [MxfsAttr.DATA_VERSION]: 7n, [MxfsAttr.PAGES]: 16n, [MxfsAttr.LOCK_ID]: g.lockId,
        ...(g.demote !== undefined ? { [MxfsAttr.DEMOTE_MODE]: g.demote } : {}),
      },
    }));
  };
  const request = async (cmd: MxfsCmd, attrs: MxfsAttrs): Promise<MxfsMessage[]> => {
    expect(cmd).to.equal(MxfsCmd.GLOCK_LIST_REQ);
    return requestSync(attrs);
  };
  return { request, requestSync, asked };
}

/** 600 glocks with inode numbers 1000..1599 in a scrambled order, plus one above 2^53. */
function cache(): FakeGlock[] {
  const out: FakeGlock[] = [];
  for (let i = 0; i < 600; i++) {
    const ino = 1000n + BigInt((i * 7) % 600);
    out.push({ ino, mode: ino % 2n ? 5 : 3, state: MxfsGlockState.IDLE, type: MxfsGlockType.FILE, lockId: ino + 1n });
  }
  out.push({ ino: 2n ** 60n, mode: 0, state: MxfsGlockState.DEMOTING, type: MxfsGlockType.DIR, demote: 0, lockId: 0n });
  return out;
}

describe('kernel inode locks (locks --volume)', () => {
  it('pages through the module in inode order (64 a page: they fit the request window), counts every lock, returns the first ones in full', async () => {
    const m = fakeModule('data', cache());
    const r = await listKernelInodeLocks(m.request, 3, 'data', 300);
    expect(m.asked.map((a) => a.from)).to.deep.equal([0n, ...Array.from({ length: 9 }, (_, i) => 1064n + 64n * BigInt(i))]);
    expect(r.total).to.equal(601);
    expect(r.byMode).to.deep.equal({ EX: 300, PR: 300, NL: 1 });
    expect(r.byState).to.deep.equal({ idle: 600, demoting: 1 });
    expect(r.locks).to.have.length(300);
    expect(r.omitted).to.equal(301);
    expect(r.locks.map((l) => l.inode)).to.deep.equal(Array.from({ length: 300 }, (_, i) => 1000 + i));
    expect(r.locks[1]).to.deep.equal({
      inode: 1001, resource: 'data:1001', type: 'file', mode: 'EX', state: 'idle', holders: 1, waiters: 2,
      hits: 30, misses: 4, dataVersion: '7', pages: 16, lockId: '1002',
    });
    const all = await listKernelInodeLocks(m.request, 3, 'data', 1000);
    const last = all.locks[all.locks.length - 1]!;
    expect(all.omitted).to.equal(0);
    expect(last).to.include({ inode: (2n ** 60n).toString(), resource: `data:${2n ** 60n}`, type: 'dir', mode: 'NL', state: 'demoting', demote: 'NL' });
    expect(last.lockId).to.equal(undefined);
  });

  it('an empty cache is one request and no locks', async () => {
    const m = fakeModule('data', []);
    const r = await listKernelInodeLocks(m.request, 1, 'data');
    expect(m.asked).to.have.length(1);
    expect(r).to.deep.include({ total: 0, locks: [], omitted: 0 });
  });

  describe('through the daemon', () => {
    let d: Daemon | undefined;
    let c: MxfsClient | undefined;
    let bridge: KernelBridge | undefined;
    afterEach(async () => { await c?.close(); await bridge?.stop(); await d?.stop(); c = d = undefined; bridge = undefined; });

    async function boot(volumes: Array<Pick<VolumeConfig, 'name' | 'driver'>>, maxFrameBytes = 65536) {
      const config = testConfig(tmpDir(), { locking: { maxFrameBytes } });
      config.volumes = volumes as VolumeConfig[];
      d = new Daemon({ config, log: quietLogger() });
      await d.start();
      c = await d.connectLocal('test');
      return d;
    }
    async function refused(p: Promise<unknown>): Promise<VolumeRequestFailed> {
      try { await p; } catch (e) { expect(e).to.be.instanceOf(VolumeRequestFailed); return e as VolumeRequestFailed; }
      throw new Error('expected a refusal');
    }

    /** The daemon's kernel: the real bridge, attached to a fake module whose lock cache is glocks. */
    async function attachBridge(daemon: Daemon, glocks: FakeGlock[]): Promise<FakeKernelChannel> {
      const m = fakeModule('data', glocks);
      let channel: FakeKernelChannel | undefined;
      bridge = startKernelBridge({
        system: daemon.sys, locks: new FakeLockClient(), log: quietLogger(), clock: new ManualClock(), mode: 'on', nodeId: 1,
        channelFactory: (ev) => {
          channel = new FakeKernelChannel(ev);
          channel.loaded = true;
          channel.answer.set(MxfsCmd.GLOCK_LIST_REQ, (attrs) => m.requestSync(attrs));
          return channel;
        },
      });
      const end = Date.now() + 5000;
      while (bridge.status().state !== 'attached') {
        if (Date.now() > end) throw new Error(`bridge not attached: ${bridge.status().state}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      daemon.kernel = bridge;
      return channel!;
    }

    it('answers as much as fits one client frame and counts the rest (GLOCK_INFO bytes through the bridge)', async () => {
      const daemon = await boot([{ name: 'data', driver: 'kernel' }], 8192);
      const channel = await attachBridge(daemon, cache());
      const r = await c!.inodeLocks('data');
      expect(r.node).to.equal(1);
      expect(r.total).to.equal(601);
      expect(r.locks.length).to.be.within(10, 100);
      expect(r.locks.length + r.omitted).to.equal(601);
      const few = await c!.inodeLocks('data', { limit: 5 });
      expect(few.locks.map((l: any) => l.inode)).to.deep.equal([1000, 1001, 1002, 1003, 1004]);
      expect(few.omitted).to.equal(596);
      const pages = [0n, ...Array.from({ length: 9 }, (_, i) => 1064n + 64n * BigInt(i))];
      expect(channel.of(MxfsCmd.GLOCK_LIST_REQ).map((x) => x.attrs[MxfsAttr.INODE])).to.deep.equal([...pages, ...pages]);
      expect(few.locks[1]).to.deep.equal({
        inode: 1001, resource: 'data:1001', type: 'file', mode: 'EX', state: 'idle', holders: 1, waiters: 2,
        hits: 30, misses: 4, dataVersion: '7', pages: 16, lockId: '1002',
      });
    });

    it('refuses an unknown volume, a command-driver volume, and a missing or detached module, each with its code', async () => {
      const daemon = await boot([{ name: 'data', driver: 'kernel' }, { name: 'cmd', driver: 'command' }]);
      let e = await refused(c!.inodeLocks('nope'));
      expect(e.code).to.equal('UNKNOWN_VOLUME');
      expect(e.message).to.match(/no volume 'nope' is configured on node 1/);
      e = await refused(c!.inodeLocks('cmd'));
      expect(e.code).to.equal('DRIVER');
      expect(e.message).to.match(/driver = command: inode locks exist only with driver = kernel/);
      e = await refused(c!.inodeLocks('data'));
      expect(e.code).to.equal('NO_MODULE');
      expect(e.message).to.match(/kernel support is off/);
      daemon.kernel = { status: () => ({}), request: async () => { throw new KernelNotAttached('no-module', 'mxfs family not found'); } };
      e = await refused(c!.inodeLocks('data'));
      expect(e.code).to.equal('NO_MODULE');
      expect(e.message).to.match(/node 1: kernel module not attached \(no-module: mxfs family not found\)/);
    });
  });

  it('the request is validated field by field', () => {
    expect(validateClientRequest({ type: 'inodeLocks', id: 4, volume: 'data' })).to.deep.equal({ type: 'inodeLocks', id: 4, volume: 'data', limit: undefined });
    expect(validateClientRequest({ type: 'inodeLocks', id: 4, volume: 'data', limit: 0 })).to.include({ limit: 0 });
    expect(() => validateClientRequest({ type: 'inodeLocks', id: 4 })).to.throw(ProtocolError, /field 'volume' must be a volume name/);
    expect(() => validateClientRequest({ type: 'inodeLocks', id: 4, volume: 'a/b' })).to.throw(ProtocolError, /field 'volume'/);
    expect(() => validateClientRequest({ type: 'inodeLocks', id: 4, volume: 'data', limit: 10001 })).to.throw(ProtocolError, /field 'limit' must be an integer 0..10000/);
  });
});
