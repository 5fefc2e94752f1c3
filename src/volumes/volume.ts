/**
 * Volume actor: one per [volume] section. It owns the volume's VolumeCore (the state
 * machine), the EX lock handle on the volume's resource (lockspace `mxfs-volumes`), and the
 * queue of driver calls for the volume; it carries out the core's effects and feeds their
 * results back to the core as messages.
 *
 * Takes (VolumeMsg): 'input' (a request from mxfsctl via the VolumeManager, a result, a
 * timer, a view event), 'grant' (the lock request of op N succeeded), 'view' (status query).
 * Sends: lock operations through the node's volume LockClient; record reads/writes and fence
 * proofs through the VolumeServices (the manager: majority RPCs to peers); driver calls;
 * replies to pending mxfsctl requests.
 *
 * Driver calls run one at a time, in order: a fence issued while a mount is still running
 * starts when that mount has returned, so the fence always has the last word.
 */
import type Logger from 'bunyan';
import type { ActorDef, Ref } from '../actors/actor';
import type { LockHandle } from '../client/api';
import { Mode } from '../dlm/modes';
import { LockError } from '../dlm/types';
import type { Clock, TimerHandle } from '../util/clock';
import { VolumeDriver, VolumeError } from './driver';
import { decodeRecordLvb, VolumeRecord } from './record';
import { VolumeCore, VolumeEffect, VolumeInput, VolumeReplyCode, VolumeView } from './volume-core';

export const VOLUME_LOCKSPACE = 'mxfs-volumes';

export class VolumeStepError extends Error {
  constructor(readonly code: VolumeReplyCode, message: string) {
    super(message);
    this.name = 'VolumeStepError';
  }
}

export type VolumeResult = { ok: true; message: string } | { ok: false; code: VolumeReplyCode; message: string };

/** What a Volume actor needs from its node (the VolumeManager provides it). */
export interface VolumeServices {
  clock: Clock;
  log: Logger;
  lock(volume: string, opts: { noqueue: boolean; timeoutMs?: number; signal: AbortSignal }): Promise<LockHandle>;
  /** The newest record among a majority of the nodes (throws VolumeStepError NO_MAJORITY). */
  read(volume: string): Promise<VolumeRecord | undefined>;
  /** Durable on a majority of the nodes before it resolves (throws VolumeStepError NO_MAJORITY). */
  store(record: VolumeRecord): Promise<void>;
  /** Resolves (with how) once `owner` provably cannot write the volume any more; throws VolumeStepError otherwise. */
  prove(volume: string, owner: number, generation: number, fenceBoundMs: number): Promise<string>;
  reply(req: number, result: VolumeResult): void;
}

export type VolumeMsg =
  | { type: 'input'; input: VolumeInput }
  | { type: 'grant'; op: number; handle: LockHandle }
  | { type: 'view'; replyTo: Ref<VolumeView> }
  /** Start-up: the previous run owned it; fence it before anything else. */
  | { type: 'startFence'; cause: string };

interface VolumeActorState {
  core: VolumeCore;
  handle?: LockHandle;
  pendingLock?: AbortController;
  timer?: TimerHandle;
  /** Driver calls and lock conversions run in order, one at a time. */
  driverQueue: Promise<unknown>;
  lockQueue: Promise<unknown>;
}

export function volumeDef(o: { core: VolumeCore; driver: VolumeDriver; svc: VolumeServices; log: Logger }): ActorDef<VolumeActorState, VolumeMsg> {
  const { core, driver, svc, log } = o;
  const name = core.name;

  const run = (s: VolumeActorState, self: Ref<VolumeMsg>, sys: { send(to: Ref<VolumeMsg>, m: VolumeMsg): void }, effects: VolumeEffect[]): void => {
    const send = (input: VolumeInput) => sys.send(self, { type: 'input', input });
    const fail = (op: number, e: unknown) => {
      const code: VolumeReplyCode = e instanceof VolumeStepError || e instanceof VolumeError ? e.code : 'BLOCKED';
      send({ type: 'failed', op, code, message: e instanceof Error ? e.message : String(e), ...(e instanceof VolumeError && e.inDoubt ? { inDoubt: true } : {}) });
    };
    for (const ef of effects) {
      switch (ef.do) {
        case 'transition':
          log.info({ volume: name, from: ef.from, to: ef.to, why: ef.why, generation: core.rec?.generation }, `volume ${name}: ${ef.from} -> ${ef.to}`);
          break;
        case 'violation':
          log.error({ volume: name, what: ef.what }, `volume ${name}: invariant violated`);
          break;
        case 'reply':
          svc.reply(ef.req, ef.ok ? { ok: true, message: ef.message } : { ok: false, code: ef.code, message: ef.message });
          break;
        case 'lock': {
          const ac = new AbortController();
          s.pendingLock = ac;
          const op = ef.op;
          svc.lock(name, { noqueue: ef.noqueue, ...(ef.timeoutMs !== undefined ? { timeoutMs: ef.timeoutMs } : {}), signal: ac.signal }).then(
            (handle) => sys.send(self, { type: 'grant', op, handle }),
            (e: unknown) => {
              const code = e instanceof LockError ? e.code : 'LOST';
              send({ type: 'lockFailed', op, code, message: describeLockFailure(name, code, e) });
            },
          );
          break;
        }
        case 'cancelLock':
          s.pendingLock?.abort();
          s.pendingLock = undefined;
          break;
        case 'unlock': {
          const h = s.handle;
          s.handle = undefined;
          const op = ef.op;
          s.lockQueue = s.lockQueue.then(async () => {
            try { if (h && !h.released) await h.unlock(ef.lvb ? { lvb: ef.lvb } : {}); } catch { /* already gone: released either way */ }
            send({ type: 'done', op });
          });
          break;
        }
        case 'writeLvb': {
          const h = s.handle;
          if (!h) break;
          s.lockQueue = s.lockQueue.then(() => h.convert(Mode.EX, { lvb: ef.lvb }).catch((e: Error) => log.debug({ volume: name, err: e.message }, 'volume record not written to the lock value block')));
          break;
        }
        case 'read': {
          const op = ef.op;
          svc.read(name).then((record) => send({ type: 'read', op, ...(record ? { record } : {}) }), (e) => fail(op, e));
          break;
        }
        case 'store': {
          const op = ef.op;
          svc.store(ef.record).then(() => send({ type: 'done', op }), (e) => fail(op, e));
          break;
        }
        case 'prove': {
          const op = ef.op;
          const { owner, generation, fenceBoundMs } = ef;
          svc.prove(name, owner, generation, fenceBoundMs).then((how) => {
            // Every takeover says which proof it used (docs/volumes.md, the fence-proof rule).
            log.info({ volume: name, owner, generation, fenceBoundMs, proof: how }, `volume ${name}: node ${owner}'s generation ${generation} is fenced: ${how}`);
            send({ type: 'proven', op, how });
          }, (e) => fail(op, e));
          break;
        }
        case 'driver': {
          const op = ef.op;
          const call = ef.call;
          const ctx = ef.ctx;
          s.driverQueue = s.driverQueue.then(async () => {
            try {
              if (call === 'mount') await driver.mount(ctx);
              else if (call === 'afterRecovery') await driver.afterRecovery(ctx);
              else if (call === 'umount') await driver.umount(ctx);
              else await driver.clearFence(name);
              send({ type: 'done', op });
            } catch (e) {
              fail(op, e);
            }
          });
          break;
        }
        case 'fence': {
          const op = ef.op;
          // Ownership is over: give the lock back (if it is still held) so a survivor can take
          // over once it has proof; the fence itself runs after any driver call still running.
          const h = s.handle;
          s.handle = undefined;
          if (h && !h.released) s.lockQueue = s.lockQueue.then(() => h.unlock().catch(() => undefined));
          s.driverQueue = s.driverQueue.then(async () => {
            const report = await driver.fence(name, ef.cause).catch((e: Error) => ({ fenced: false, cause: ef.cause, durationMs: 0, detail: e.message }));
            log.warn({ volume: name, report }, `volume ${name} fenced: ${ef.cause}`);
            send({ type: 'fenceDone', op, report });
          });
          break;
        }
        case 'timer': {
          svc.clock.clearTimer(s.timer);
          const op = ef.op;
          s.timer = svc.clock.setTimer(() => send({ type: 'retry', op }), ef.ms);
          break;
        }
      }
    }
  };

  return {
    init: () => ({ core, driverQueue: Promise.resolve(), lockQueue: Promise.resolve() }),
    handle(s, msg, ctx) {
      const now = svc.clock.now();
      switch (msg.type) {
        case 'input':
          run(s, ctx.self, ctx.system, s.core.input(msg.input, now));
          break;
        case 'grant': {
          const h = msg.handle;
          const lvbRecord = decodeRecordLvb(name, h.grant.lvb, h.grant.lvbValid);
          const wasHolding = s.core.holding;
          const effects = s.core.input({ type: 'granted', op: msg.op, token: h.grant.token, ...(lvbRecord ? { lvbRecord } : {}) }, now);
          if (!wasHolding && s.core.holding) {
            s.handle = h;
            s.pendingLock = undefined;
            h.on('lost', (reason: string) => { if (s.handle === h) ctx.system.send(ctx.self, { type: 'input', input: { type: 'lost', reason: `ownership lock lost: ${reason}` } }); });
          } else {
            void h.unlock().catch(() => undefined); // a grant nobody wants any more
          }
          run(s, ctx.self, ctx.system, effects);
          break;
        }
        case 'view':
          ctx.system.reply(msg.replyTo, s.core.view(now));
          break;
        case 'startFence':
          run(s, ctx.self, ctx.system, s.core.fenceAtStart(msg.cause, now));
          break;
      }
      return s;
    },
    onCrash(err, _msg, s, ctx) {
      // A bug in here must not leave a mount without an owner's lock, nor a lock without care:
      // fence what may be mounted, give the lock back, stop.
      log.error({ volume: name, err }, `volume ${name}: actor crashed; fencing`);
      void driver.fence(name, 'volume actor crashed').catch(() => undefined);
      void s.handle?.unlock().catch(() => undefined);
      void ctx;
      return 'stop';
    },
  };
}

function describeLockFailure(volume: string, code: string, e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  switch (code) {
    case 'NOTQUEUED': return `volume ${volume} is owned by another node`;
    case 'TIMEOUT': return `volume ${volume}: ownership not obtained within the timeout (another node owns it)`;
    case 'CANCELLED': return `volume ${volume}: ownership request cancelled`;
    default: return `volume ${volume}: ownership request failed (${code}): ${msg}`;
  }
}
