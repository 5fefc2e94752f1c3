/**
 * Stand-in daemon for the kernel volume VM tests: the kernel bridge (on a fake lock client)
 * and the KernelVolumeDriver, driven by the test program over the Node IPC channel (it is
 * forked), in place of the Volume actors. It renews the kernel lease on request (as the
 * cluster would while the node holds its lease), answers gate-wait requests by policy, and
 * on `released` gives ownership back the way a Volume actor does (umount: gate closed).
 *
 * IPC in:  { id, op, args }   ops: attach mount umount fence clearFence unregister status
 *          kernelStatus fenceBound lease stopRenew policy bridge
 * IPC out: { id, ok, result } | { id, ok: false, error, code }, and { event } for every
 *          DriverEvent and "attached" (the bridge state), { ready: pid } once started.
 */
import bunyan from 'bunyan';
import { ActorSystem } from '../../src/actors/actor';
import { startKernelBridge } from '../../src/actors/kernel-bridge';
import { systemClock } from '../../src/util/clock';
import { VolumeError, type VolumeSpec } from '../../src/volumes/driver';
import { KernelVolumeDriver } from '../../src/volumes/kernel-driver';
import { FakeLockClient } from './fake-lock-client';

type Op = { id: number; op: string; args: Record<string, unknown> };

const log = bunyan.createLogger({ name: 'volume-daemon', level: 'info', streams: [{ stream: process.stderr }] });
const system = new ActorSystem(log);
const bridge = startKernelBridge({
  system, locks: new FakeLockClient(), log, clock: systemClock, mode: 'on', nodeId: 1, retryMs: 500,
});
const driver = new KernelVolumeDriver({ bridge, clock: systemClock, log });
const specs = new Map<string, VolumeSpec>();
let generation = 0;
let policy: 'grant' | 'deny' | 'hold' = 'deny';
let renew: NodeJS.Timeout | undefined;

const send = (m: unknown) => process.send?.(m, undefined, {}, () => {});
const spec = (name: string): VolumeSpec => {
  const s = specs.get(name);
  if (!s) throw new VolumeError('DRIVER', `test daemon: ${name} not attached`);
  return s;
};

driver.onEvent((ev) => {
  if (ev.type === 'mount-wanted') {
    send({ event: { type: ev.type, volume: ev.volume, policy } });
    if (policy === 'deny') ev.reply(new VolumeError('DRIVER', 'denied by the test policy'));
    if (policy === 'grant') {
      const ctx = { volume: spec(ev.volume), node: 1, generation: ++generation, token: generation };
      driver.mount(ctx).then(() => ev.reply(), (err: VolumeError) => ev.reply(err));
    }
    return;
  }
  send({ event: ev });
  if (ev.type === 'released') {
    // A Volume actor gives ownership back: umount (nothing mounted) closes the gate.
    driver.umount({ volume: spec(ev.volume), node: 1, generation, token: generation })
      .then(() => send({ event: { type: 'given-back', volume: ev.volume } }))
      .catch((err: Error) => send({ event: { type: 'give-back-failed', volume: ev.volume, error: err.message } }));
  }
});

const setLease = (ms: number | null) => driver.setLease(ms === null ? null : systemClock.now() + ms, 'test: lease lost');

async function run(op: string, a: Record<string, unknown>): Promise<unknown> {
  const name = (a.volume as string | undefined) ?? 'vol0';
  const ctx = () => ({ volume: spec(name), node: 1, generation, token: generation });
  switch (op) {
    case 'attach': {
      const s: VolumeSpec = { name, device: a.device as string, ...(a.mountpoint ? { mountpoint: a.mountpoint as string } : {}) };
      await driver.attach(s);
      specs.set(name, s);
      return { fenceBoundMs: driver.fenceBoundMs() };
    }
    case 'mount':
      generation = (a.generation as number | undefined) ?? generation + 1;
      await driver.mount(ctx());
      return { generation };
    case 'umount': await driver.umount(ctx()); return {};
    case 'fence': return driver.fence(name, (a.cause as string | undefined) ?? 'test');
    case 'clearFence': await driver.clearFence(name); return {};
    case 'unregister': await driver.unregister(name); return {};
    case 'status': return driver.status(name);
    case 'kernelStatus': {
      const s = await driver.kernelStatus(a.volume as string | undefined);
      return { ...s, lease: { ...s.lease, deadlineNs: s.lease.deadlineNs?.toString() ?? null } };
    }
    case 'fenceBound': return driver.fenceBoundMs();
    case 'lease': {
      clearInterval(renew);
      renew = undefined;
      const ms = a.ms as number | null;
      setLease(ms);
      if (ms !== null && a.renewEveryMs) renew = setInterval(() => setLease(ms), a.renewEveryMs as number);
      return {};
    }
    case 'stopRenew': clearInterval(renew); renew = undefined; return {};
    case 'policy': policy = a.mountWanted as typeof policy; return {};
    case 'bridge': return bridge.status();
    default: throw new Error(`unknown op ${op}`);
  }
}

process.on('message', (m: Op) => {
  run(m.op, m.args ?? {}).then(
    (result) => send({ id: m.id, ok: true, result }),
    (err: Error) => send({ id: m.id, ok: false, error: err.message, code: (err as VolumeError).code }),
  );
});

let wasAttached = false;
setInterval(() => {
  const attached = bridge.status().state === 'attached';
  if (attached !== wasAttached) send({ event: { type: attached ? 'attached' : 'detached' } });
  wasAttached = attached;
}, 50);

process.on('SIGTERM', () => {
  clearInterval(renew);
  void driver.close().then(() => bridge.stop()).then(() => { system.shutdown(); process.exit(0); });
});
send({ ready: process.pid });
