/**
 * The kernel-bridge actor on the host, through a fake KernelChannel (no module, no netlink)
 * and the fake lock client: attach and re-attach, kernel lock requests to DLM requests and
 * back, denials, releases, blocking callbacks, lost locks, stale grants, module unload,
 * retries under a manual clock, and the 'off' mode.
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { KernelNotAttached, startKernelBridge, type KernelBridge, type KernelVolumeListener } from '../src/actors/kernel-bridge';
import { MXFS_PROTO_VERSION, MxfsAttr, MxfsCmd, MxfsVolumeEvent } from '../src/ffi/mxfs-genl';
import type { MxfsAttrs } from '../src/ffi/netlink-msg';
import { Mode } from '../src/dlm/modes';
import { LockError } from '../src/dlm/types';
import { ManualClock } from '../src/util/clock';
import { FakeLockClient } from './vm/fake-lock-client';
import { TraceRecorder } from '../src/trace/recorder';
import { FakeKernelChannel as FakeChannel } from './support/fake-kernel-channel';
import { AnswerLost, KernelAckError, NetlinkError } from '../src/ffi/genl-socket';
import { NLE } from '../src/ffi/libnl';
import { Daemon } from '../src/daemon/daemon';
import { quietLogger, testConfig, tmpDir } from './support/daemon-proc';

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const lockReq = (id: bigint, resource: string, mode: Mode, flags = 0): MxfsAttrs => ({
  [MxfsAttr.REQ_ID]: id, [MxfsAttr.LOCKSPACE]: 'default', [MxfsAttr.RESOURCE]: resource, [MxfsAttr.MODE]: mode,
  [MxfsAttr.FLAGS]: flags, [MxfsAttr.TIMEOUT_MS]: 1000,
});

describe('kernel-bridge actor (fake channel)', () => {
  const log = bunyan.createLogger({ name: 'kernel-bridge-test', level: 'fatal' });
  let system: ActorSystem;
  let locks: FakeLockClient;
  let clock: ManualClock;
  let channel: FakeChannel | undefined;
  let bridge: KernelBridge;

  const start = (loaded: boolean, mode: 'auto' | 'on' | 'off' = 'auto') => {
    bridge = startKernelBridge({
      system, locks, log, clock, mode, nodeId: 7, retryMs: 5000,
      channelFactory: (ev) => { channel = new FakeChannel(ev); channel.loaded = loaded; return channel; },
    });
  };

  beforeEach(() => {
    system = new ActorSystem(log);
    locks = new FakeLockClient();
    clock = new ManualClock();
    channel = undefined;
  });
  afterEach(async () => {
    await bridge.stop();
    system.shutdown();
  });

  it('with the real libnl channel and no module loaded, runs and reports no-module', async () => {
    bridge = startKernelBridge({ system, locks, log, clock, mode: 'auto', nodeId: 1 });
    await until(() => bridge.status().detail !== undefined);
    expect(bridge.status()).to.include({ state: 'no-module', detail: 'genetlink family "mxfs" not found' });
    expect(bridge.status().portid).to.be.a('number');
  });

  it("mode 'off' opens nothing and reports disabled", () => {
    start(true, 'off');
    expect(bridge.status().state).to.equal('disabled');
    expect(channel).to.equal(undefined);
  });

  it('announces itself with DAEMON_READY (node id, protocol version) and reports attached', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    const ready = channel!.of(MxfsCmd.DAEMON_READY);
    expect(ready).to.have.length(1);
    expect(ready[0]!.attrs).to.deep.equal({ [MxfsAttr.NODE_ID]: 7, [MxfsAttr.PROTO_VERSION]: MXFS_PROTO_VERSION });
    expect(bridge.status()).to.include({ family: 33, portid: 4242, attaches: 1 });
  });

  it('with requests sent from a port of their own, DAEMON_READY names the channel as where the kernel sends', async () => {
    bridge = startKernelBridge({
      system, locks, log, clock, mode: 'auto', nodeId: 7, retryMs: 5000,
      channelFactory: (ev) => { channel = new FakeChannel(ev); channel.loaded = true; channel.requestPortid = 4343; return channel; },
    });
    await until(() => bridge.status().state === 'attached');
    expect(channel!.of(MxfsCmd.DAEMON_READY)[0]!.attrs).to.deep.equal({
      [MxfsAttr.NODE_ID]: 7, [MxfsAttr.PROTO_VERSION]: MXFS_PROTO_VERSION, [MxfsAttr.DAEMON_PORTID]: 4242,
    });
  });

  it('counts overruns of the channel and of the request socket apart from invalid messages', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.events.onError(new NetlinkError('nl_recvmsgs', NLE.NOMEM, 'Out of memory'));
    channel!.events.onError(new NetlinkError('nl_recvmsgs', NLE.NOMEM, 'Out of memory'));
    channel!.events.onError(new NetlinkError('nl_recvmsgs(req)', NLE.NOMEM, 'Out of memory'));
    channel!.events.onError(new Error('garbage'));
    await until(() => bridge.status().invalidMessages === 1);
    expect(bridge.status()).to.include({ overruns: 2, requestOverruns: 1, invalidMessages: 1 });
  });

  it('after an overrun of the channel, once it is drained, the volume listener resynchronises (once)', async () => {
    start(true);
    const calls: string[] = [];
    bridge.setVolumeListener({
      attached: () => {}, detached: () => {}, mountWanted: () => {}, requestCancelled: () => {}, volumeEvent: () => {},
      resync: () => calls.push('resync'),
    });
    await until(() => bridge.status().state === 'attached');
    channel!.events.onCongestionEnded!();        // no overrun: nothing to resynchronise
    channel!.events.onError(new NetlinkError('nl_recvmsgs(req)', NLE.NOMEM, 'Out of memory'));
    channel!.events.onCongestionEnded!();        // the request socket's overrun loses no event
    channel!.events.onError(new NetlinkError('nl_recvmsgs', NLE.NOMEM, 'Out of memory'));
    channel!.events.onError(new NetlinkError('nl_recvmsgs', NLE.NOMEM, 'Out of memory'));
    await until(() => bridge.status().overruns === 2);
    expect(calls).to.deep.equal([]);             // not before the channel is drained
    channel!.events.onCongestionEnded!();
    channel!.events.onCongestionEnded!();
    await until(() => bridge.status().resyncs === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).to.deep.equal(['resync']);
    expect(bridge.status().resyncs).to.equal(1);
  });

  it('without the module reports no-module, retries on its timer, and attaches when the family appears', async () => {
    start(false);
    await until(() => channel !== undefined && channel.resolves === 1);
    await until(() => bridge.status().state === 'no-module');
    expect(bridge.status().detail).to.match(/family "mxfs" not found/);
    clock.advance(5000);
    await until(() => channel!.resolves === 2);
    expect(bridge.status().state).to.equal('no-module');
    channel!.loaded = true;
    channel!.events.onFamily('new');
    await until(() => bridge.status().state === 'attached');
    expect(channel!.of(MxfsCmd.DAEMON_READY)).to.have.length(1);
  });

  it('turns a kernel LOCK_REQ into a DLM lock and answers LOCK_GRANT with the same id and the token', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(11n, 'r1', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    expect(channel!.of(MxfsCmd.LOCK_GRANT)[0]!.attrs).to.include({ [MxfsAttr.REQ_ID]: 11n, [MxfsAttr.MODE]: Mode.EX, [MxfsAttr.TOKEN]: 1n });
    expect(locks.holders('default', 'r1')).to.equal(1);
    expect(bridge.status()).to.include({ requests: 1, grants: 1, heldLocks: 1 });
  });

  it('with tracing on, records the kernel\'s messages in (LOCK_REQ) and out (LOCK_GRANT) with their key fields', async () => {
    const rec = new TraceRecorder(7, clock, 1000);
    system.tracer = rec;
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(12n, 'r9', Mode.PW));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    const evs = rec.page(0, {}, 1 << 20).events;
    const req = evs.find((e) => e.kind === 'send' && e.type === 'kernel' && e.sub === 'LOCK_REQ')!;
    expect(req).to.include({ from: 'kernel', to: 'kernel-bridge', req: '12', ls: 'default', res: 'r9', mode: Mode.PW });
    const grant = evs.find((e) => e.kind === 'kernel-out' && e.type === 'LOCK_GRANT')!;
    expect(grant).to.include({ from: 'kernel-bridge', to: 'kernel', req: '12', mode: Mode.PW, token: 1 });
    expect(grant.seq).to.be.greaterThan(req.seq);
    // A driver's request (not an actor message: it goes straight to the channel) is recorded too.
    expect(await bridge.request(MxfsCmd.LEASE_RENEW, { [MxfsAttr.DEADLINE_NS]: 5n })).to.deep.equal([]);
    const renew = rec.page(0, {}, 1 << 20).events.find((e) => e.kind === 'kernel-out' && e.type === 'LEASE_RENEW');
    expect(renew, 'LEASE_RENEW in the trace').to.not.equal(undefined);
    expect(renew!.to).to.equal('kernel');
  });

  it('answers a failed DLM request with LOCK_DENY and the errno (NOQUEUE conflict: -EAGAIN)', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(1n, 'r', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(2n, 'r', Mode.PR, 1));
    await until(() => channel!.of(MxfsCmd.LOCK_DENY).length === 1);
    expect(channel!.of(MxfsCmd.LOCK_DENY)[0]!.attrs).to.deep.equal({ [MxfsAttr.REQ_ID]: 2n, [MxfsAttr.STATUS]: -11 });
  });

  it('forwards a blocking callback as BAST for the kernel lock id, and LOCK_RELEASE unlocks', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(5n, 'r', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    const waiter = locks.lock('r', Mode.PR);
    await until(() => channel!.of(MxfsCmd.BAST).length === 1);
    expect(channel!.of(MxfsCmd.BAST)[0]!.attrs).to.deep.equal({ [MxfsAttr.LOCK_ID]: 5n, [MxfsAttr.MODE]: Mode.PR });
    channel!.kernel(MxfsCmd.LOCK_RELEASE, { [MxfsAttr.LOCK_ID]: 5n, [MxfsAttr.LOCKSPACE]: 'default', [MxfsAttr.RESOURCE]: 'r' });
    const h = await waiter;
    expect(h.grant.mode).to.equal(Mode.PR);
    expect(bridge.status()).to.include({ releases: 1, heldLocks: 0 });
  });

  it('gives a grant back when the kernel refuses it (-ENOENT: it stopped waiting)', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.refuse.set(MxfsCmd.LOCK_GRANT, 2);
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(9n, 'r', Mode.EX));
    await until(() => bridge.status().staleGrants === 1);
    await until(() => locks.holders('default', 'r') === 0);
    expect(bridge.status().heldLocks).to.equal(0);
  });

  it('gives a granted lock back when the kernel cancels its request afterwards (the grant\'s answer is not needed)', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(21n, 'r', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    expect(locks.holders('default', 'r')).to.equal(1);
    // The kernel gave up (timed out) before the grant reached it: it sends LOCK_CANCEL, and the
    // grant's -ENOENT answer may be lost or unread.
    channel!.kernel(MxfsCmd.LOCK_CANCEL, { [MxfsAttr.REQ_ID]: 21n });
    await until(() => locks.holders('default', 'r') === 0);
    expect(bridge.status()).to.include({ cancelledGrants: 1, staleGrants: 0, heldLocks: 0 });
  });

  it('a LOCK_CANCEL racing the DLM\'s grant: the lock goes back, whichever comes first', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(22n, 'r', Mode.EX));   // granted at once by the DLM
    channel!.kernel(MxfsCmd.LOCK_CANCEL, { [MxfsAttr.REQ_ID]: 22n });
    await until(() => bridge.status().cancelledGrants === 1);
    await until(() => locks.holders('default', 'r') === 0);
    expect(bridge.status()).to.include({ heldLocks: 0, pendingRequests: 0 });
  });

  it('a LOCK_GRANT whose answer was lost keeps the lock (the kernel may hold it) and is counted', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.failWith.set(MxfsCmd.LOCK_GRANT, new AnswerLost(7));
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(23n, 'r', Mode.EX));
    await until(() => bridge.status().grantAnswersLost === 1);
    expect(locks.holders('default', 'r')).to.equal(1);
    expect(bridge.status()).to.include({ heldLocks: 1, sendErrors: 0 });
    channel!.kernel(MxfsCmd.LOCK_CANCEL, { [MxfsAttr.REQ_ID]: 23n }); // it had stopped waiting
    await until(() => locks.holders('default', 'r') === 0);
  });

  it('LOCK_CANCEL withdraws a waiting DLM request, and no denial is sent for it', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(1n, 'r', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(2n, 'r', Mode.EX)); // waits behind 1
    await until(() => bridge.status().pendingRequests === 1);
    channel!.kernel(MxfsCmd.LOCK_CANCEL, { [MxfsAttr.REQ_ID]: 2n });
    await until(() => bridge.status().pendingRequests === 0);
    expect(bridge.status().cancels).to.equal(1);
    channel!.kernel(MxfsCmd.LOCK_RELEASE, { [MxfsAttr.LOCK_ID]: 1n, [MxfsAttr.LOCKSPACE]: 'default', [MxfsAttr.RESOURCE]: 'r' });
    await until(() => locks.holders('default', 'r') === 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(channel!.of(MxfsCmd.LOCK_DENY)).to.have.length(0);
    expect(channel!.of(MxfsCmd.LOCK_GRANT)).to.have.length(1);
  });

  it('tells the kernel LOCK_LOST when the DLM takes a lock away', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(3n, 'r', Mode.PW));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    locks.loseAll('quorum lost');
    await until(() => channel!.of(MxfsCmd.LOCK_LOST).length === 1);
    expect(channel!.of(MxfsCmd.LOCK_LOST)[0]!.attrs).to.deep.equal({ [MxfsAttr.LOCK_ID]: 3n, [MxfsAttr.STATUS]: -37 });
  });

  it('tells the kernel LOCK_LOST for every lock when the whole client session is lost', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(3n, 'r', Mode.PR));
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(4n, 's', Mode.PR));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 2);
    locks.emit('lost', 'session closed');
    await until(() => channel!.of(MxfsCmd.LOCK_LOST).length === 2);
    expect(channel!.of(MxfsCmd.LOCK_LOST).map((m) => m.attrs[MxfsAttr.LOCK_ID])).to.have.members([3n, 4n]);
    expect(bridge.status().heldLocks).to.equal(0);
  });

  it('after its client session lost everything, takes the kernel\'s next locks through a new session', async () => {
    // A lost session stays lost (MxfsClient refuses every request after loseAll).
    class LostSession extends FakeLockClient {
      lost = false;
      override lock(resource: string, mode: Mode, o?: Parameters<FakeLockClient['lock']>[2]) {
        return this.lost ? Promise.reject(new LockError('LOST', 'session lost')) : super.lock(resource, mode, o);
      }
    }
    const first = new LostSession();
    const second = new FakeLockClient();
    let opened = 0;
    bridge = startKernelBridge({
      system, locks: first, log, clock, mode: 'auto', nodeId: 7, retryMs: 5000,
      channelFactory: (ev) => { channel = new FakeChannel(ev); channel.loaded = true; return channel; },
      reconnect: async () => { opened++; return second; },
    });
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(3n, 'r', Mode.PR));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    first.lost = true;
    first.emit('lost', 'node 7 lost quorum');
    await until(() => channel!.of(MxfsCmd.LOCK_LOST).length === 1 && opened === 1);
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(5n, 'r2', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 2);
    expect(channel!.of(MxfsCmd.LOCK_GRANT)[1]!.attrs[MxfsAttr.REQ_ID]).to.equal(5n);
    expect(second.holders('default', 'r2')).to.equal(1);
    expect(channel!.of(MxfsCmd.LOCK_DENY)).to.have.length(0);
    // The new session losing everything too is replaced again.
    second.emit('lost', 'again');
    await until(() => opened === 2);
  });

  it('on module unload releases what the kernel held, and re-attaches when it is loaded again', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(1n, 'r', Mode.EX));
    await until(() => locks.holders('default', 'r') === 1);
    channel!.loaded = false;
    channel!.events.onFamily('del');
    await until(() => bridge.status().state === 'no-module');
    await until(() => locks.holders('default', 'r') === 0);
    expect(bridge.status().detaches).to.equal(1);
    channel!.loaded = true;
    channel!.events.onFamily('new');
    await until(() => bridge.status().state === 'attached');
    expect(channel!.of(MxfsCmd.DAEMON_READY)).to.have.length(2);
  });

  it('a grant that completes after the module went away is unlocked, not reported', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(1n, 'r', Mode.EX));
    await until(() => channel!.of(MxfsCmd.LOCK_GRANT).length === 1);
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(2n, 'r', Mode.EX)); // waits behind 1
    await until(() => bridge.status().pendingRequests === 1);
    channel!.events.onFamily('del');                                // releases 1, so 2 is granted late
    await until(() => bridge.status().state === 'no-module');
    await until(() => locks.holders('default', 'r') === 0);
    expect(channel!.of(MxfsCmd.LOCK_GRANT)).to.have.length(1);
  });

  it('VOLUME_MOUNT takes the volume lock (EX) and VOLUME_UNMOUNT gives it back', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.VOLUME_MOUNT, { [MxfsAttr.REQ_ID]: 20n, [MxfsAttr.VOLUME]: 'vol1' });
    await until(() => channel!.of(MxfsCmd.VOLUME_REPLY).length === 1);
    expect(channel!.of(MxfsCmd.VOLUME_REPLY)[0]!.attrs).to.deep.equal({ [MxfsAttr.REQ_ID]: 20n, [MxfsAttr.STATUS]: 0 });
    expect(locks.holders('mxfs-volumes', 'vol1')).to.equal(1);
    channel!.kernel(MxfsCmd.VOLUME_UNMOUNT, { [MxfsAttr.REQ_ID]: 21n, [MxfsAttr.VOLUME]: 'vol1' });
    await until(() => channel!.of(MxfsCmd.VOLUME_REPLY).length === 2);
    expect(locks.holders('mxfs-volumes', 'vol1')).to.equal(0);
  });

  it('asks the module for its status while attached, and re-attaches if the module forgot it', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    clock.advance(5000);
    await until(() => bridge.status().kernel !== undefined);
    expect(bridge.status().kernel).to.include({ daemonPortid: 4242, held: 1, grants: 3 });
    channel!.kernelKnowsPortid = 0; // e.g. reloaded while the nlctrl notification was lost
    clock.advance(5000);
    await until(() => channel!.of(MxfsCmd.DAEMON_READY).length === 2);
    await until(() => bridge.status().state === 'attached');
    expect(bridge.status().detaches).to.equal(1);
  });

  describe('the volume listener (kernel volume driver)', () => {
    const listener = () => {
      const calls: string[] = [];
      const l: KernelVolumeListener = {
        attached: () => calls.push('attached'),
        detached: (why) => calls.push(`detached ${why}`),
        mountWanted: (volume, reqId, timeoutMs) => calls.push(`mountWanted ${volume} ${reqId} ${timeoutMs}`),
        requestCancelled: (reqId) => calls.push(`cancelled ${reqId}`),
        volumeEvent: (m) => calls.push(`event ${m.attrs[MxfsAttr.VOLUME]} ${m.attrs[MxfsAttr.VOLUME_EVENT]}`),
      };
      return { l, calls };
    };

    it('request() sends a daemon->kernel command while attached, and refuses without the module', async () => {
      start(false);
      await until(() => channel !== undefined && bridge.status().state === 'no-module');
      const refused = await bridge.request(MxfsCmd.LEASE_LOST, {}).then(() => undefined, (e: Error) => e);
      expect(refused).to.be.instanceOf(KernelNotAttached);
      channel!.loaded = true;
      channel!.events.onFamily('new');
      await until(() => bridge.status().state === 'attached');
      expect(await bridge.request(MxfsCmd.LEASE_RENEW, { [MxfsAttr.DEADLINE_NS]: 5n })).to.deep.equal([]);
      expect(channel!.of(MxfsCmd.LEASE_RENEW)[0]!.attrs).to.deep.equal({ [MxfsAttr.DEADLINE_NS]: 5n });
      channel!.refuse.set(MxfsCmd.VOLUME_CLEAR, 16);
      const err = await bridge.request(MxfsCmd.VOLUME_CLEAR, { [MxfsAttr.VOLUME]: 'v' }).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(KernelAckError).and.to.include({ errno: 16 });
    });

    it('request() does not wait behind a burst of kernel messages in the actor\'s mailbox (the kernel lease, issue 11)', async () => {
      start(true);
      await until(() => bridge.status().state === 'attached');
      for (let i = 0; i < 2000; i++) {
        channel!.kernel(MxfsCmd.LOCK_RELEASE, { [MxfsAttr.LOCK_ID]: BigInt(1000 + i), [MxfsAttr.LOCKSPACE]: 'l', [MxfsAttr.RESOURCE]: `r${i}` });
      }
      const renewed = bridge.request(MxfsCmd.LEASE_RENEW, { [MxfsAttr.DEADLINE_NS]: 9n });
      // Sent at once, before the actor has taken the releases in.
      expect(channel!.of(MxfsCmd.LEASE_RENEW)).to.have.length(1);
      expect(bridge.status().releases).to.be.below(2000);
      expect(await renewed).to.deep.equal([]);
      await until(() => bridge.status().releases === 2000);
    });

    it('routes VOLUME_MOUNT, VOLUME_EVENT and cancels of volume requests to the listener, and takes no lock itself', async () => {
      start(true);
      await until(() => bridge.status().state === 'attached');
      const { l, calls } = listener();
      bridge.setVolumeListener(l);
      expect(calls).to.deep.equal(['attached']);
      channel!.kernel(MxfsCmd.VOLUME_MOUNT, { [MxfsAttr.REQ_ID]: 30n, [MxfsAttr.VOLUME]: 'vol1', [MxfsAttr.TIMEOUT_MS]: 900 });
      channel!.kernel(MxfsCmd.LOCK_CANCEL, { [MxfsAttr.REQ_ID]: 30n });
      channel!.kernel(MxfsCmd.VOLUME_EVENT, { [MxfsAttr.VOLUME]: 'vol1', [MxfsAttr.VOLUME_EVENT]: MxfsVolumeEvent.RELEASED, [MxfsAttr.GENERATION]: 3n });
      channel!.kernel(MxfsCmd.VOLUME_UNMOUNT, { [MxfsAttr.REQ_ID]: 31n, [MxfsAttr.VOLUME]: 'vol1' });
      await until(() => calls.length === 4 && channel!.of(MxfsCmd.VOLUME_REPLY).length === 1);
      expect(calls.slice(1)).to.deep.equal(['mountWanted vol1 30 900', 'cancelled 30', `event vol1 ${MxfsVolumeEvent.RELEASED}`]);
      expect(channel!.of(MxfsCmd.VOLUME_REPLY)[0]!.attrs).to.deep.equal({ [MxfsAttr.REQ_ID]: 31n, [MxfsAttr.STATUS]: -95 });
      expect(locks.holders('mxfs-volumes', 'vol1')).to.equal(0);
      channel!.events.onFamily('del');
      await until(() => calls.length === 5);
      expect(calls[4]).to.equal('detached kernel module unloaded');
    });
  });

  it('LOCK_CONVERT converts the held lock and answers with the conversion\'s REQ_ID; LOCK_RELEASE writes the LVB back', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    const ch = channel!;
    ch.kernel(MxfsCmd.LOCK_REQ, lockReq(11n, 'data:131', Mode.PR));
    await until(() => ch.of(MxfsCmd.LOCK_GRANT).length === 1);
    // Up: PR -> EX, answered as a grant of REQ_ID 12 in EX.
    ch.kernel(MxfsCmd.LOCK_CONVERT, { [MxfsAttr.REQ_ID]: 12n, [MxfsAttr.LOCK_ID]: 11n, [MxfsAttr.MODE]: Mode.EX, [MxfsAttr.TIMEOUT_MS]: 1000 });
    await until(() => ch.of(MxfsCmd.LOCK_GRANT).length === 2);
    expect(ch.of(MxfsCmd.LOCK_GRANT)[1]!.attrs).to.include({ [MxfsAttr.REQ_ID]: 12n, [MxfsAttr.MODE]: Mode.EX });
    // Down: EX -> PR with an LVB: the DLM keeps it, the grant carries it.
    const lvb = Buffer.from('0123456789abcdef01234567', 'ascii');
    ch.kernel(MxfsCmd.LOCK_CONVERT, { [MxfsAttr.REQ_ID]: 13n, [MxfsAttr.LOCK_ID]: 11n, [MxfsAttr.MODE]: Mode.PR, [MxfsAttr.LVB]: lvb });
    await until(() => ch.of(MxfsCmd.LOCK_GRANT).length === 3);
    const down = ch.of(MxfsCmd.LOCK_GRANT)[2]!.attrs;
    expect(down).to.include({ [MxfsAttr.REQ_ID]: 13n, [MxfsAttr.MODE]: Mode.PR, [MxfsAttr.LVB_VALID]: 1 });
    expect((down[MxfsAttr.LVB] as Buffer).equals(lvb)).to.equal(true);
    expect(locks.conversions.map((c) => [c.from, c.to])).to.deep.equal([[Mode.PR, Mode.EX], [Mode.EX, Mode.PR]]);
    // A conversion another holder blocks is denied; the lock keeps its mode.
    const other = await locks.lock('data:131', Mode.PR);
    ch.kernel(MxfsCmd.LOCK_CONVERT, { [MxfsAttr.REQ_ID]: 14n, [MxfsAttr.LOCK_ID]: 11n, [MxfsAttr.MODE]: Mode.EX, [MxfsAttr.FLAGS]: 1 });
    await until(() => ch.of(MxfsCmd.LOCK_DENY).length === 1);
    expect(ch.of(MxfsCmd.LOCK_DENY)[0]!.attrs).to.include({ [MxfsAttr.REQ_ID]: 14n, [MxfsAttr.STATUS]: -11 });
    await other.unlock();
    // A conversion of a lock the daemon does not hold: -ENOENT.
    ch.kernel(MxfsCmd.LOCK_CONVERT, { [MxfsAttr.REQ_ID]: 15n, [MxfsAttr.LOCK_ID]: 99n, [MxfsAttr.MODE]: Mode.EX });
    await until(() => ch.of(MxfsCmd.LOCK_DENY).length === 2);
    expect(ch.of(MxfsCmd.LOCK_DENY)[1]!.attrs).to.include({ [MxfsAttr.REQ_ID]: 15n, [MxfsAttr.STATUS]: -2 });
    // Up again, then released with a new LVB: the next holder's grant carries it.
    ch.kernel(MxfsCmd.LOCK_CONVERT, { [MxfsAttr.REQ_ID]: 16n, [MxfsAttr.LOCK_ID]: 11n, [MxfsAttr.MODE]: Mode.EX });
    await until(() => ch.of(MxfsCmd.LOCK_GRANT).length === 4);
    const lvb2 = Buffer.from('second value block......', 'ascii');
    ch.kernel(MxfsCmd.LOCK_RELEASE, { [MxfsAttr.LOCK_ID]: 11n, [MxfsAttr.LOCKSPACE]: 'default', [MxfsAttr.RESOURCE]: 'data:131', [MxfsAttr.LVB]: lvb2 });
    await until(() => locks.holders('default', 'data:131') === 0);
    const next = await locks.lock('data:131', Mode.PR);
    expect(next.grant.lvb.equals(lvb2)).to.equal(true);
    expect(bridge.status().conversions).to.equal(5);
    await next.unlock();
  });

  it('LOCK_RELEASE with an LVB longer than the daemon\'s lvb_size still releases the lock (a real in-process daemon)', async () => {
    const d = new Daemon({ config: testConfig(tmpDir(), { locking: { lvbSize: 16 } }), log: quietLogger() });
    await d.start();
    try {
      const real = await d.connectLocal('kernel');
      bridge = startKernelBridge({
        system, locks: real, log, clock, mode: 'auto', nodeId: 7, retryMs: 5000,
        channelFactory: (ev) => { channel = new FakeChannel(ev); channel.loaded = true; return channel; },
      });
      await until(() => bridge.status().state === 'attached');
      const ch = channel!;
      ch.kernel(MxfsCmd.LOCK_REQ, lockReq(21n, 'inode:7', Mode.EX));
      await until(() => ch.of(MxfsCmd.LOCK_GRANT).length === 1);
      // The inode lock cache writes a 24-byte record back; this daemon's value block is 16 bytes.
      ch.kernel(MxfsCmd.LOCK_RELEASE, { [MxfsAttr.LOCK_ID]: 21n, [MxfsAttr.LOCKSPACE]: 'default', [MxfsAttr.RESOURCE]: 'inode:7', [MxfsAttr.LVB]: Buffer.alloc(24, 7) });
      const other = await d.connectLocal('other');
      // Granted only once the kernel's lock is gone (with the bug it stays held by the bridge's session).
      const h = await other.lock('inode:7', Mode.EX, { timeoutMs: 20000 });
      expect(h.grant.mode).to.equal(Mode.EX);
      await other.close();
      await real.close();
    } finally {
      await d.stop();
    }
  });

  it('stop() releases the kernel locks and closes the channel', async () => {
    start(true);
    await until(() => bridge.status().state === 'attached');
    channel!.kernel(MxfsCmd.LOCK_REQ, lockReq(1n, 'r', Mode.EX));
    await until(() => locks.holders('default', 'r') === 1);
    await bridge.stop();
    expect(channel!.closed).to.equal(true);
    expect(locks.holders('default', 'r')).to.equal(0);
  });
});
