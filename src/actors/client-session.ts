/**
 * ClientSession actor: one per connected client (a Unix-socket connection, or an
 * in-process client such as the kernel bridge).
 *
 * Owns: the client's locks (client lock id -> lockspace, resource, state, the request ids
 * waiting for an answer), the keepalive bookkeeping, and the session's owner id
 * "<node>:<session>" under which its locks are held.
 * Takes: 'client' (a validated ClientRequest from the transport), 'invalid' (a request the
 * transport could not validate, answered INVALID alone), LockEvent from LockResources,
 * 'tick' (keepalive timer, and the hello deadline), 'disconnected', 'lostAll'.
 * Sends: ResourceMsg (through the LockTable) and DaemonMessage to the client via emit().
 *
 * Unlock (docs/daemon.md, "Unlock"): the reply to an unlock of a granted lock with nothing in
 * progress and no LVB to write (the lock is not held in PW/EX, or the unlock carries no LVB)
 * does not wait for the master. The session forgets the lock, sends the release and answers
 * at once; the master still counts the lock as held until the release arrives, so nobody is
 * granted earlier than before. Until the master confirms (or a recovery makes the release
 * moot), the session keeps a Release record: a 'lock' reusing that lock id waits for it
 * (late events of the old lock could otherwise reach the new one), the session's end purges
 * its resource, and it counts as a request in flight toward [locking] max_requests. At most
 * max_requests_per_client releases are in flight per session (max_locks_per_client for an
 * in-process one); beyond, an unlock waits for its master as before.
 *
 * When the client goes away (connection closed, silent past clientTimeoutMs, no hello
 * within clientTimeoutMs of connecting, protocol error, crash of this actor) every one of
 * its locks is purged, so none can leak (the purges are handed to the daemon's Purger,
 * which routes them a slice per turn).
 *
 * Admission: a request is "in flight" from its arrival until its reply, except that a lock
 * request or conversion stops counting once it waits in a resource's queue (it is lock
 * state then, bounded by max_locks_per_client, not work). At most maxInFlight per session
 * and admission.max over the daemon; beyond, the request is answered BUSY at once. Trusted
 * in-process sessions (no maxInFlight) are counted but never refused.
 */
import type { ActorDef, ActorSystem, Ref } from './actor';
import type { LockEvent, ResourceMsg } from './messages';
import { isWriteMode, Mode } from '../dlm/modes';
import type { LockRecord } from '../cluster/dlm-messages';
import type { LockErrorCode } from '../dlm/types';
import { CLIENT_PROTOCOL_VERSION, ClientRequest, DaemonMessage, FaultSpec, HelloData, ReplyCode } from '../wire/client-protocol';

/** A refused volume request: its code travels in the reply. */
export class VolumeRequestError extends Error {
  constructor(readonly code: ReplyCode, message: string) { super(message); this.name = 'VolumeRequestError'; }
}
import type { Clock, TimerHandle } from '../util/clock';
import { SLICE, yieldTurn } from '../util/slices';

export interface DaemonInfo {
  status(): Promise<unknown>;
  /**
   * A volume request; resolves with the reply's data or rejects with a VolumeRequestError.
   * `gone` aborts when the client's session ends: a mount still waiting for ownership is withdrawn.
   */
  volume(req: Extract<ClientRequest, { type: 'volume' }>, gone?: AbortSignal): Promise<unknown>;
  locks(filter: { lockspace?: string; resource?: string }): Promise<unknown>;
  /** The kernel's cached inode locks of a volume; rejects with a VolumeRequestError. */
  inodeLocks(req: Extract<ClientRequest, { type: 'inodeLocks' }>): Promise<unknown>;
  fault(spec: FaultSpec): Promise<unknown>;
  /** A trace request (docs/tracing.md); rejects with an Error naming what is wrong. */
  trace(req: Extract<ClientRequest, { type: 'trace' }>): Promise<unknown>;
}

/** Where a session reports what its client saw (the metrics endpoint; absent: nothing measured). */
export interface SessionMetrics {
  /** A lock request or conversion ended: how long after the client asked, and how. */
  requestDone(op: 'lock' | 'convert', ms: number, granted: boolean): void;
  /** Locks the client was told it lost. */
  lost(count: number): void;
}

/** The daemon-wide count of requests in flight, shared by every session. */
export interface Admission { inFlight: number; max: number }

export interface SessionOpts {
  sessionId: number;
  nodeId: number;
  nodeName: string;
  /** Send a lock operation towards the resource's master, stamped with the session's epoch. */
  route(lockspace: string, resource: string, msg: ResourceMsg, epoch: number): void;
  /** The cluster epoch when the session opened (0 on a standalone node). */
  epoch: number;
  clock: Clock;
  keepaliveMs: number;
  clientTimeoutMs: number;
  lvbSize: number;
  maxFrameBytes: number;
  maxLocks: number;
  /**
   * Requests in flight on this session (see Admission above). Undefined: a trusted in-process
   * client (the kernel bridge, the volume manager), whose requests count toward the daemon's
   * total but are never refused — a socket client must not be able to deny the kernel.
   */
  maxInFlight?: number;
  admission: Admission;
  info: DaemonInfo;
  /**
   * An unlock already answered (see the header) failed at the master: the lock may still be
   * held there until the session ends and purges it. Counted, nothing else.
   */
  releaseFailed?(code: LockErrorCode, message: string): void;
  /** Send to the client (the transport encodes). */
  emit(msg: DaemonMessage): void;
  /** Cut the client off; the transport then sends 'disconnected'. */
  close(reason: string): void;
  /**
   * The session ended: its locks on these resources must be purged (owner, stamped with the
   * session's epoch). The daemon's Purger routes them a slice per turn (src/daemon/purger.ts).
   */
  purge(owner: string, epoch: number, targets: Array<[string, string]>): void;
  /**
   * Why this client's replies back up, if they do (it does not read them as fast as it asks):
   * inspection answers are then refused BUSY with this reason instead of queued.
   */
  outputBacklog?(): string | undefined;
  /** A 'client' or 'invalid' message was handled (the transport bounds how many wait unhandled). */
  handled?(): void;
  /** Called once when the session has ended (its purges handed over). */
  onEnd(sessionId: number): void;
  metrics?: SessionMetrics;
}

export type SessionMsg =
  /** acked: the transport already answered this heartbeat (the daemon's fast path, see Daemon.accept). */
  | { type: 'client'; req: ClientRequest; acked?: boolean }
  /** A request with a usable id whose fields were wrong: answered INVALID, nothing else happens. */
  | { type: 'invalid'; id: number; reqType: string; message: string }
  | LockEvent
  | { type: 'tick' }
  | { type: 'disconnected'; reason: string }
  /**
   * Every lock is lost: the client is told. Without `untilClosed` the session ends at once
   * (its purges go to the router, which holds them while this node is fenced). With it
   * (mxfsd shutting down, Daemon.stop) the session keeps its locks until the client closes
   * the connection — the client library does so only after marking every handle lost — or
   * until the keepalive rule below ends it; requests that arrive meanwhile fail LOST. So a
   * lock is released to the others only once its holder knows it is gone, or could no longer
   * use it anyway (client_timeout_ms after the last message answered); a daemon that exits
   * first leaves them to the cluster's lease expiry, like a crash.
   */
  | { type: 'lostAll'; reason: string; untilClosed?: boolean }
  /** Recovery: hand over this session's records for epoch `epoch` (see LockRouter). */
  /** at: the router's clock when it began collecting (records give waits up to that instant). */
  | { type: 'collect'; epoch: number; at?: number; replyTo: Ref<LockRecord[]> };

type LockState = 'requesting' | 'granted' | 'converting';

/** What a lock has in progress: a request, conversion, unlock or cancel (ClientLock.p). */
interface Pending {
  /** The pending request or conversion, as issued (re-issued after a recovery). */
  rqMode: Mode | undefined;
  /** The LVB the pending conversion writes (kept for a re-issue after a recovery). */
  rqLvb: Buffer | undefined;
  noqueue: boolean;
  timeoutMs: number | undefined;
  pendingReq: number | undefined;
  /** When the pending request or conversion arrived (clock ms). */
  askedAt: number | undefined;
  unlockReq: number | undefined;
  /** The pending unlock carries an LVB to write (see collect). */
  unlockLvb: boolean;
  cancelReq: number | undefined;
}

/**
 * One lock of the client. What only a lock with something in progress needs is in its
 * Pending part, made by the first write and let go by settle() once nothing is in progress:
 * a held lock is this object alone (memory per held lock, bench/heap-per-lock.ts). The lock id
 * the resources know is made from `id` when needed (lockIdOf), not kept.
 *
 * noqueue and timeoutMs describe the pending request or conversion (each sets them anew); a
 * lock with nothing pending reads false and undefined.
 */
class ClientLock {
  /** Granted mode, token and LVB of the current grant (absent until first granted). */
  mode: Mode | undefined = undefined;
  token = 0;
  /** Kept only when valid: an invalid LVB is never used (the records of a recovery, collect()). */
  lvb: Buffer | undefined = undefined;
  lvbValid = false;
  private p: Pending | undefined = undefined;

  constructor(readonly id: number, readonly lockspace: string, readonly resource: string, public state: LockState) {}

  private get pending(): Pending {
    return (this.p ??= { rqMode: undefined, rqLvb: undefined, noqueue: false, timeoutMs: undefined, pendingReq: undefined, askedAt: undefined, unlockReq: undefined, unlockLvb: false, cancelReq: undefined });
  }

  /** Lets go of the Pending part once nothing is in progress. */
  settle(): void {
    const p = this.p;
    if (p !== undefined && p.rqMode === undefined && p.rqLvb === undefined && p.pendingReq === undefined && p.askedAt === undefined &&
        p.unlockReq === undefined && p.cancelReq === undefined) this.p = undefined;
  }

  get rqMode(): Mode | undefined { return this.p?.rqMode; }
  set rqMode(v: Mode | undefined) { if (v !== undefined || this.p !== undefined) this.pending.rqMode = v; }
  get rqLvb(): Buffer | undefined { return this.p?.rqLvb; }
  set rqLvb(v: Buffer | undefined) { if (v !== undefined || this.p !== undefined) this.pending.rqLvb = v; }
  get noqueue(): boolean { return this.p?.noqueue ?? false; }
  set noqueue(v: boolean) { if (v || this.p !== undefined) this.pending.noqueue = v; }
  get timeoutMs(): number | undefined { return this.p?.timeoutMs; }
  set timeoutMs(v: number | undefined) { if (v !== undefined || this.p !== undefined) this.pending.timeoutMs = v; }
  get pendingReq(): number | undefined { return this.p?.pendingReq; }
  set pendingReq(v: number | undefined) { if (v !== undefined || this.p !== undefined) this.pending.pendingReq = v; }
  get askedAt(): number | undefined { return this.p?.askedAt; }
  set askedAt(v: number | undefined) { if (v !== undefined || this.p !== undefined) this.pending.askedAt = v; }
  get unlockReq(): number | undefined { return this.p?.unlockReq; }
  set unlockReq(v: number | undefined) { if (v !== undefined || this.p !== undefined) this.pending.unlockReq = v; }
  get unlockLvb(): boolean { return this.p?.unlockLvb ?? false; }
  set unlockLvb(v: boolean) { if (v || this.p !== undefined) this.pending.unlockLvb = v; }
  get cancelReq(): number | undefined { return this.p?.cancelReq; }
  set cancelReq(v: number | undefined) { if (v !== undefined || this.p !== undefined) this.pending.cancelReq = v; }
}

/**
 * An unlock answered before its master confirmed it: kept until the master's 'lock.released'
 * (or a failure, a loss, a recovery of a newer epoch), so that the lock id is not reused
 * meanwhile and the session's end still purges the resource.
 */
interface Release {
  lockspace: string;
  resource: string;
  /** The session's epoch when the release was routed. */
  epoch: number;
  /** A 'lock' request that reuses the lock id: started when the release is over. */
  parked?: Extract<ClientRequest, { type: 'lock' }>;
}

interface State {
  locks: Map<number, ClientLock>;
  /** Releases in flight, by client lock id (at most releaseWindow). */
  releases: Map<number, Release>;
  /** Resources where a release failed at the master: purged when the session ends. */
  strays: Array<[string, string]>;
  hello: boolean;
  openedAt: number;
  lastHeard: number;
  timer?: TimerHandle;
  ended: boolean;
  epoch: number;
  /** Set by lostAll with untilClosed: the client was told (this reason); nothing more is granted to it. */
  revoked?: string;
}

export function clientSessionDef(o: SessionOpts): ActorDef<State, SessionMsg> {
  const owner = `${o.nodeId}:${o.sessionId}`;
  /** The lock ids of this session's locks at the resources: `<owner>/<client lock id>`. */
  const prefix = `${owner}/`;
  const lockIdOf = (lk: ClientLock) => prefix + lk.id;
  /** The session's lock an event is about (by the lock id lockIdOf() made). */
  const lockOf = (s: State, lockId: string): ClientLock | undefined => {
    const id = clientIdOf(lockId);
    return id === undefined ? undefined : s.locks.get(id);
  };
  /** The client lock id in a lock id lockIdOf() made (undefined: not one of this session's). */
  const clientIdOf = (lockId: string): number | undefined => {
    if (!lockId.startsWith(prefix)) return undefined;
    const rest = lockId.slice(prefix.length);
    const id = Number(rest);
    return String(id) === rest ? id : undefined;
  };
  /** Releases in flight at most (see the header); beyond, an unlock waits for its master. */
  const releaseWindow = o.maxInFlight ?? o.maxLocks;
  // Request ids in flight (one definition per session, so this closure is the session's).
  const inFlight = new Set<number>();
  /** Volume mounts in progress for this client: aborted when the session ends. */
  const volumeWaits = new Set<AbortController>();
  const settle = (id: number) => { if (inFlight.delete(id)) o.admission.inFlight--; };
  const reply = (id: number, ok: true, extra?: Omit<Extract<DaemonMessage, { ok: true }>, 'type' | 'id' | 'ok'>) => {
    settle(id);
    o.emit({ type: 'reply', id, ok, ...extra });
  };
  const refuse = (id: number, code: ReplyCode, message: string) => {
    settle(id);
    o.emit({ type: 'reply', id, ok: false, code, message });
  };
  /** An inspection answer (up to a frame; a coalesced run answers many at once), unless replies back up. */
  const inspected = (id: number, data: unknown) => {
    const backlog = o.outputBacklog?.();
    if (backlog !== undefined) refuse(id, 'BUSY', backlog);
    else reply(id, true, { data });
  };
  /** Admit a request, or say why not (BUSY: over a bound; INVALID: its id is already in flight). */
  const admit = (id: number): [LockErrorCode, string] | undefined => {
    if (inFlight.has(id)) return ['INVALID', `request id ${id} is already in use by a request in progress`];
    if (o.maxInFlight !== undefined) {
      if (inFlight.size >= o.maxInFlight) return ['BUSY', `${inFlight.size} requests are already in progress on this connection ([locking] max_requests_per_client); wait for their replies`];
      if (o.admission.inFlight >= o.admission.max) return ['BUSY', `mxfsd has ${o.admission.inFlight} requests in progress ([locking] max_requests); try again shortly`];
    }
    inFlight.add(id);
    o.admission.inFlight++;
    return undefined;
  };

  const forget = (s: State, lk: ClientLock) => {
    s.locks.delete(lk.id);
  };

  const end = (s: State, sys: ActorSystem, self: Ref<SessionMsg>, reason: string) => {
    if (s.ended) return;
    s.ended = true;
    o.clock.clearTimer(s.timer);
    o.admission.inFlight -= inFlight.size; // their replies have nobody to go to
    inFlight.clear();
    for (const w of [...volumeWaits]) w.abort();
    volumeWaits.clear();
    const seen = new Set<string>();
    const targets: Array<[string, string]> = [];
    const add = (lockspace: string, resource: string) => {
      const key = `${lockspace}\0${resource}`;
      if (seen.has(key)) return;
      seen.add(key);
      targets.push([lockspace, resource]);
    };
    for (const lk of s.locks.values()) add(lk.lockspace, lk.resource);
    // Releases still in flight, and failed ones: the master may hold them yet.
    for (const r of s.releases.values()) add(r.lockspace, r.resource);
    for (const [ls, res] of s.strays) add(ls, res);
    o.admission.inFlight -= s.releases.size;
    s.releases.clear();
    o.purge(owner, s.epoch, targets);
    s.locks.clear();
    o.close(reason);
    sys.stopActor(self);
    o.onEnd(o.sessionId);
  };

  const tick = (s: State, sys: ActorSystem, self: Ref<SessionMsg>) => {
    s.timer = o.clock.setTimer(() => sys.send(self, { type: 'tick' }), o.keepaliveMs);
  };

  /** A 'lock' request, admitted and checked: the lock is created and its request routed. */
  const startLock = (s: State, req: Extract<ClientRequest, { type: 'lock' }>, self: Ref<SessionMsg>) => {
    const lk = new ClientLock(req.lockId, req.lockspace, req.resource, 'requesting');
    lk.rqMode = req.mode;
    lk.noqueue = req.noqueue ?? false;
    lk.timeoutMs = req.timeoutMs;
    lk.pendingReq = req.id;
    lk.askedAt = o.clock.now();
    s.locks.set(lk.id, lk);
    o.route(lk.lockspace, lk.resource, {
      type: 'request', lockId: lockIdOf(lk), owner, mode: req.mode, noqueue: lk.noqueue,
      timeoutMs: req.timeoutMs, notify: self as Ref<LockEvent>,
    }, s.epoch);
  };

  /** A release in flight is over (confirmed, failed, lost or made moot by a recovery). */
  const endRelease = (s: State, id: number, self: Ref<SessionMsg>) => {
    const rel = s.releases.get(id);
    if (rel === undefined) return;
    s.releases.delete(id);
    o.admission.inFlight--;
    const req = rel.parked;
    if (req === undefined) return;
    if (s.locks.size >= o.maxLocks) return refuse(req.id, 'BUSY', `this client already has ${o.maxLocks} locks (max_locks_per_client)`);
    startLock(s, req, self);
  };

  /**
   * An unlock or cancel of a 'lock' request parked behind a release (see 'lock'): the request
   * fails CANCELLED, the unlock or cancel succeeds. Undefined: no such request.
   */
  const withdrawParked = (s: State, id: number, lockId: number, why: string): true | undefined => {
    const rel = s.releases.get(lockId);
    if (rel?.parked === undefined) return undefined;
    refuse(rel.parked.id, 'CANCELLED', why);
    rel.parked = undefined;
    reply(id, true);
    return true;
  };

  const handleRequest = (s: State, req: ClientRequest, sys: ActorSystem, self: Ref<SessionMsg>, acked = false) => {
    if (req.type === 'hb') { if (!acked) o.emit({ type: 'hb', ack: req.seq }); return; }
    if (!s.hello && req.type !== 'hello') {
      refuse(req.id, 'PROTOCOL', 'the first request must be hello');
      end(s, sys, self, 'no hello');
      return;
    }
    if (req.type !== 'hello') {
      const no = admit(req.id);
      if (no) { o.emit({ type: 'reply', id: req.id, ok: false, code: no[0], message: no[1] }); return; }
    }
    switch (req.type) {
      case 'hello': {
        if (s.hello) {
          // Said once per connection: a second hello is a client out of step with the
          // protocol (its session, locks and limits were set by the first), cut like any other
          // protocol error: answered PROTOCOL, told 'lost', its locks released.
          const why = 'protocol error: hello was already said on this connection';
          refuse(req.id, 'PROTOCOL', why);
          o.emit({ type: 'lost', reason: why });
          end(s, sys, self, why);
          return;
        }
        if (req.version !== CLIENT_PROTOCOL_VERSION) {
          refuse(req.id, 'PROTOCOL', `protocol version ${req.version} not supported (daemon speaks ${CLIENT_PROTOCOL_VERSION})`);
          end(s, sys, self, 'protocol version');
          return;
        }
        s.hello = true;
        const data: HelloData = {
          node: o.nodeId, nodeName: o.nodeName, version: CLIENT_PROTOCOL_VERSION, session: o.sessionId,
          keepaliveMs: o.keepaliveMs, lostAfterMs: o.clientTimeoutMs, lvbSize: o.lvbSize, maxFrameBytes: o.maxFrameBytes,
        };
        reply(req.id, true, { data });
        return;
      }
      case 'lock': {
        const rel = s.releases.get(req.lockId);
        if (s.locks.has(req.lockId) || rel?.parked !== undefined) return refuse(req.id, 'INVALID', `lock id ${req.lockId} is already in use on this connection`);
        if (s.locks.size >= o.maxLocks) return refuse(req.id, 'BUSY', `this client already has ${o.maxLocks} locks (max_locks_per_client)`);
        // The lock id's previous lock is still being released: start once that is over.
        if (rel !== undefined) { rel.parked = req; return; }
        startLock(s, req, self);
        return;
      }
      case 'convert': {
        const lk = s.locks.get(req.lockId);
        if (!lk) {
          if (s.releases.get(req.lockId)?.parked) return refuse(req.id, 'BUSY', `lock ${req.lockId} has a request in progress`);
          return refuse(req.id, 'NOTFOUND', `no lock ${req.lockId}`);
        }
        if (req.lvb && req.lvb.length > o.lvbSize) return refuse(req.id, 'INVALID', lvbTooLong(req.lvb.length, o.lvbSize));
        if (lk.state !== 'granted' || lk.unlockReq !== undefined) return refuse(req.id, 'BUSY', `lock ${req.lockId} has a request in progress`);
        lk.state = 'converting';
        lk.pendingReq = req.id;
        lk.askedAt = o.clock.now();
        lk.rqMode = req.mode;
        lk.rqLvb = req.lvb;
        lk.noqueue = req.noqueue ?? false;
        lk.timeoutMs = req.timeoutMs;
        o.route(lk.lockspace, lk.resource, {
          type: 'convert', lockId: lockIdOf(lk), mode: req.mode, noqueue: lk.noqueue, timeoutMs: req.timeoutMs, lvb: req.lvb,
        }, s.epoch);
        return;
      }
      case 'unlock': {
        const lk = s.locks.get(req.lockId);
        if (!lk) return withdrawParked(s, req.id, req.lockId, 'request cancelled by unlock') ?? refuse(req.id, 'NOTFOUND', `no lock ${req.lockId}`);
        if (req.lvb && req.lvb.length > o.lvbSize) return refuse(req.id, 'INVALID', lvbTooLong(req.lvb.length, o.lvbSize));
        if (lk.unlockReq !== undefined) return refuse(req.id, 'BUSY', `lock ${req.lockId} is already being unlocked`);
        // Answered now, when safe; the master releases it when the message arrives (see the header).
        const early = lk.state === 'granted' && lk.pendingReq === undefined && lk.cancelReq === undefined &&
          !(req.lvb !== undefined && lk.mode !== undefined && isWriteMode(lk.mode)) && s.releases.size < releaseWindow;
        if (early) {
          forget(s, lk);
          s.releases.set(lk.id, { lockspace: lk.lockspace, resource: lk.resource, epoch: s.epoch });
          o.admission.inFlight++;
        } else {
          lk.unlockReq = req.id;
          lk.unlockLvb = req.lvb !== undefined;
        }
        o.route(lk.lockspace, lk.resource, { type: 'unlock', lockId: lockIdOf(lk), lvb: req.lvb }, s.epoch);
        if (early) reply(req.id, true);
        return;
      }
      case 'cancel': {
        const lk = s.locks.get(req.lockId);
        if (!lk) return withdrawParked(s, req.id, req.lockId, 'request cancelled') ?? refuse(req.id, 'NOTFOUND', `no lock ${req.lockId}`);
        if (lk.state === 'granted' || lk.cancelReq !== undefined) return refuse(req.id, 'BUSY', `lock ${req.lockId} has nothing pending to cancel`);
        lk.cancelReq = req.id;
        o.route(lk.lockspace, lk.resource, { type: 'cancel', lockId: lockIdOf(lk) }, s.epoch);
        return;
      }
      case 'status':
        o.info.status().then((data) => inspected(req.id, data), (e: Error) => refuse(req.id, 'BUSY', e.message));
        return;
      case 'locks':
        o.info.locks({ lockspace: req.lockspace, resource: req.resource })
          .then((data) => inspected(req.id, data), (e: Error) => refuse(req.id, 'BUSY', e.message));
        return;
      case 'inodeLocks':
        o.info.inodeLocks(req).then((data) => reply(req.id, true, { data }),
          (e: Error) => refuse(req.id, e instanceof VolumeRequestError ? e.code : 'BUSY', e.message));
        return;
      case 'volume': {
        // A mount waits (for ownership) as long as its client is there to hear the answer.
        const gone = req.op === 'mount' ? new AbortController() : undefined;
        if (gone) volumeWaits.add(gone);
        o.info.volume(req, gone?.signal).then((data) => reply(req.id, true, { data }),
          (e: Error) => refuse(req.id, e instanceof VolumeRequestError ? e.code : 'BUSY', e.message))
          .finally(() => { if (gone) volumeWaits.delete(gone); });
        return;
      }
      case 'trace':
        o.info.trace(req).then((data) => inspected(req.id, data), (e: Error) => refuse(req.id, 'INVALID', e.message));
        return;
      case 'fault':
        o.info.fault(req.spec).then((data) => reply(req.id, true, { data }), (e: Error) => refuse(req.id, 'INVALID', e.message));
        return;
    }
  };

  const handleEvent = (s: State, ev: LockEvent, self: Ref<SessionMsg>) => {
    const lk = lockOf(s, ev.lockId);
    if (!lk) { releaseEvent(s, ev, self); return; }
    applyEvent(s, lk, ev);
    lk.settle();
  };

  /** An event about a lock the client no longer has: maybe the end of a release in flight. */
  const releaseEvent = (s: State, ev: LockEvent, self: Ref<SessionMsg>) => {
    const id = clientIdOf(ev.lockId);
    const rel = id === undefined ? undefined : s.releases.get(id);
    if (rel === undefined) return;
    switch (ev.type) {
      case 'lock.released':
      case 'lock.lost': // gone at the master either way; the client was already told it is released
        endRelease(s, id!, self);
        return;
      case 'lock.opError':
        if (ev.op !== 'unlock') return;
        o.releaseFailed?.(ev.code, ev.message);
        // NOTFOUND: the master has no such lock; anything else: it may still hold it.
        if (ev.code !== 'NOTFOUND') s.strays.push([rel.lockspace, rel.resource]);
        endRelease(s, id!, self);
        return;
      default:
        return; // a BAST while the release travels: nothing to do
    }
  };

  const applyEvent = (s: State, lk: ClientLock, ev: LockEvent) => {
    switch (ev.type) {
      case 'lock.granted':
        if (lk.askedAt !== undefined) o.metrics?.requestDone(ev.conversion ? 'convert' : 'lock', o.clock.now() - lk.askedAt, true);
        lk.askedAt = undefined;
        if (lk.pendingReq !== undefined) reply(lk.pendingReq, true, { grant: ev.grant });
        lk.pendingReq = undefined;
        lk.state = 'granted';
        lk.mode = ev.grant.mode;
        lk.token = ev.grant.token;
        lk.lvb = ev.grant.lvbValid ? ev.grant.lvb : undefined;
        lk.lvbValid = ev.grant.lvbValid;
        lk.rqMode = lk.rqLvb = undefined;
        if (lk.cancelReq !== undefined) { refuse(lk.cancelReq, 'BUSY', 'the request was granted before the cancel arrived'); lk.cancelReq = undefined; }
        return;
      case 'lock.failed':
        if (lk.askedAt !== undefined) o.metrics?.requestDone(ev.conversion ? 'convert' : 'lock', o.clock.now() - lk.askedAt, false);
        lk.askedAt = undefined;
        if (lk.pendingReq !== undefined) refuse(lk.pendingReq, ev.code, failMessage(ev.code, ev.conversion));
        lk.pendingReq = undefined;
        if (lk.cancelReq !== undefined) {
          if (ev.code === 'CANCELLED') reply(lk.cancelReq, true);
          else refuse(lk.cancelReq, 'BUSY', `the request had already ended: ${ev.code}`);
          lk.cancelReq = undefined;
        }
        lk.rqMode = lk.rqLvb = undefined;
        if (ev.conversion) lk.state = 'granted';
        else if (lk.unlockReq === undefined) forget(s, lk);
        return;
      case 'lock.queued':
        // Waiting in a queue is lock state, not work in progress: it no longer counts.
        if (lk.pendingReq !== undefined) settle(lk.pendingReq);
        return;
      case 'lock.bast':
        if (lk.state !== 'requesting') o.emit({ type: 'bast', lockId: lk.id, mode: ev.mode });
        return;
      case 'lock.released':
        if (lk.unlockReq !== undefined) reply(lk.unlockReq, true);
        forget(s, lk);
        return;
      case 'lock.opError':
        switch (ev.op) {
          case 'request':
            if (lk.pendingReq !== undefined) refuse(lk.pendingReq, ev.code, ev.message);
            forget(s, lk);
            return;
          case 'convert':
            if (lk.pendingReq !== undefined) refuse(lk.pendingReq, ev.code, ev.message);
            lk.pendingReq = undefined;
            lk.rqMode = lk.rqLvb = undefined;
            lk.state = 'granted';
            return;
          case 'unlock':
            if (lk.unlockReq !== undefined) refuse(lk.unlockReq, ev.code, ev.message);
            lk.unlockReq = undefined;
            lk.unlockLvb = false;
            return;
          case 'cancel':
            if (lk.cancelReq !== undefined) refuse(lk.cancelReq, ev.code, ev.message);
            lk.cancelReq = undefined;
            return;
        }
        return;
      case 'lock.lost':
        o.metrics?.lost(1);
        for (const id of [lk.pendingReq, lk.unlockReq, lk.cancelReq]) if (id !== undefined) refuse(id, 'LOST', ev.reason);
        o.emit({ type: 'lost', lockId: lk.id, reason: ev.reason });
        forget(s, lk);
        return;
    }
  };

  /**
   * The wait timeout a re-issued request or conversion gets on the new master: what is left of
   * the client's timeoutMs since it asked; one that ran out during the wait or the recovery
   * fails TIMEOUT in collect() instead (a conversion keeps its granted mode), as it would have
   * on the old master. Re-issuing the whole timeoutMs made a 6 s timeout fire after 10 s
   * across a recovery (the wait so far, the recovery, then 6 s again).
   */
  const timeLeft = (lk: ClientLock): number | undefined =>
    lk.timeoutMs === undefined || lk.askedAt === undefined || lk.state === 'granted' ? lk.timeoutMs
      : Math.ceil(lk.timeoutMs - (o.clock.now() - lk.askedAt));

  /**
   * Recovery: from now on this session's operations carry `epoch`; hand over a record of
   * every lock. A pending unlock or cancel is completed here: the lock (or request) is
   * simply not re-created on the new master, which is what was asked. But an unlock that
   * was to write the LVB (held in PW/EX) cannot be reported done: whether the old master
   * wrote it before the recovery is unknown, so it fails LOST — the lock is gone, the write
   * unconfirmed. (Readers then see that LVB, or see the LVB marked invalid: the rebuild keeps
   * an LVB only from the copy of a holder above CR.) A pending conversion's LVB goes in the record
   * and is written when the conversion is re-issued (not one from PW/EX down to NL/CR: its write
   * is in doubt, see LockRouter.rebuild).
   */
  const collect = (s: State, epoch: number, locks: ClientLock[], at: number): LockRecord[] => {
    s.epoch = epoch;
    const out: LockRecord[] = [];
    for (const lk of locks) {
      if (lk.unlockReq !== undefined) {
        if (lk.pendingReq !== undefined) refuse(lk.pendingReq, 'CANCELLED', 'cancelled by unlock');
        if (lk.unlockLvb && lk.mode !== undefined && isWriteMode(lk.mode)) {
          refuse(lk.unlockReq, 'LOST', `the lock is released, but a cluster recovery (epoch ${epoch}) interrupted the unlock before its LVB write was confirmed; the value block may not hold it`);
        } else {
          reply(lk.unlockReq, true);
        }
        forget(s, lk);
        continue;
      }
      if (lk.cancelReq !== undefined && lk.pendingReq !== undefined) {
        refuse(lk.pendingReq, 'CANCELLED', lk.state === 'converting' ? 'conversion cancelled' : 'request cancelled');
        reply(lk.cancelReq, true);
        lk.cancelReq = lk.pendingReq = lk.rqMode = lk.rqLvb = undefined;
        if (lk.state === 'requesting') { forget(s, lk); continue; }
        lk.state = 'granted';
        lk.askedAt = undefined;
        lk.settle();
      }
      const left = timeLeft(lk);
      if (lk.state !== 'granted' && left !== undefined && left <= 0) {
        applyEvent(s, lk, { type: 'lock.failed', lockId: lockIdOf(lk), conversion: lk.state === 'converting', code: 'TIMEOUT' });
        if (lk.state === 'requesting') continue; // forgotten
      }
      out.push({
        lockspace: lk.lockspace, resource: lk.resource, lockId: lockIdOf(lk), owner,
        grMode: lk.state === 'requesting' ? null : lk.mode!, token: lk.token,
        rqMode: lk.state === 'granted' ? null : lk.rqMode!, noqueue: lk.noqueue, timeoutMs: lk.state === 'granted' ? lk.timeoutMs : left,
        lvb: lk.lvb, lvbValid: lk.lvbValid, ...(lk.rqLvb && lk.state === 'converting' ? { rqLvb: lk.rqLvb } : {}),
        ...(lk.state !== 'granted' && lk.askedAt !== undefined ? { waitedMs: Math.max(0, Math.floor(at - lk.askedAt)) } : {}),
      });
    }
    return out;
  };

  /**
   * collect() over every lock, SLICE.collect per turn: a session with 100 000 locks must not
   * keep the event loop. The actor takes no other message until it is done (nact waits for
   * the handler), so the records are one consistent snapshot.
   */
  const collectAll = async (s: State, epoch: number, self: Ref<SessionMsg>, at = o.clock.now()): Promise<LockRecord[]> => {
    const all = [...s.locks.values()];
    const out = collect(s, epoch, all.slice(0, SLICE.collect), at);
    for (let i = SLICE.collect; i < all.length; i += SLICE.collect) {
      await yieldTurn();
      for (const x of collect(s, epoch, all.slice(i, i + SLICE.collect), at)) out.push(x);
    }
    // A release routed in an older epoch is over: its lock is not in these records, so the
    // new master never has it, and no event of that epoch reaches this session any more.
    for (const [id, rel] of [...s.releases]) if (rel.epoch < epoch) endRelease(s, id, self);
    return out;
  };

  return {
    init: () => ({ locks: new Map(), releases: new Map(), strays: [], hello: false, openedAt: o.clock.now(), lastHeard: o.clock.now(), ended: false, epoch: o.epoch }),

    handle(s, msg, ctx) {
      if (s.ended) return s;
      const sys = ctx.system;
      switch (msg.type) {
        case 'client':
          o.handled?.();
          s.lastHeard = o.clock.now();
          if (!s.timer) tick(s, sys, ctx.self);
          if (s.revoked !== undefined) {
            // Sent before the client read its 'lost': nothing new for it (a heartbeat needs no answer here).
            if (msg.req.type !== 'hb') refuse(msg.req.id, 'LOST', s.revoked);
            break;
          }
          handleRequest(s, msg.req, sys, ctx.self, msg.acked);
          break;
        case 'invalid':
          o.handled?.();
          s.lastHeard = o.clock.now();
          if (!s.hello && msg.reqType !== 'hello') {
            refuse(msg.id, 'PROTOCOL', 'the first request must be hello');
            end(s, sys, ctx.self, 'no hello');
            break;
          }
          refuse(msg.id, 'INVALID', msg.message);
          break;
        case 'tick':
          // A connection must say hello within client_timeout_ms of connecting: a silent
          // one (or one that only sends heartbeats) would otherwise hold a client slot forever.
          if (!s.hello && o.clock.now() - s.openedAt > o.clientTimeoutMs) {
            end(s, sys, ctx.self, `no hello within ${o.clientTimeoutMs} ms of connecting`);
            break;
          }
          // The client gives its locks up client_timeout_ms after sending the last message
          // we answered; we purge them only a keepalive period later, so a client never
          // holds a lock we have already handed to someone else.
          if (o.clock.now() - s.lastHeard > o.clientTimeoutMs + o.keepaliveMs) {
            end(s, sys, ctx.self, `client silent for more than ${o.clientTimeoutMs + o.keepaliveMs} ms`);
            break;
          }
          tick(s, sys, ctx.self);
          break;
        case 'disconnected':
          end(s, sys, ctx.self, msg.reason);
          break;
        case 'lostAll':
          if (s.revoked !== undefined) break;
          o.metrics?.lost(s.locks.size);
          o.emit({ type: 'lost', reason: msg.reason });
          if (msg.untilClosed) s.revoked = msg.reason; // ends on 'disconnected' or the keepalive rule ('tick')
          else end(s, sys, ctx.self, msg.reason);
          break;
        case 'collect':
          return collectAll(s, msg.epoch, ctx.self, msg.at).then((records) => { sys.reply(msg.replyTo, records); return s; });
        default:
          handleEvent(s, msg, ctx.self);
      }
      return s;
    },

    onCrash(_err, _msg, s, ctx) {
      // Releasing everything is the only state we can trust after a bug in here.
      try { o.emit({ type: 'lost', reason: 'internal error in the client session' }); } catch { /* transport gone */ }
      end(s, ctx.system, ctx.self, 'session crashed');
      return 'stop';
    },
  };
}

function lvbTooLong(n: number, lvbSize: number): string {
  return `field 'lvb' is ${n} bytes; the lock value block is ${lvbSize} bytes ([locking] lvb_size)`;
}

function failMessage(code: LockErrorCode, conversion: boolean): string {
  const what = conversion ? 'conversion' : 'request';
  switch (code) {
    case 'NOTQUEUED': return `${what} not queued: the lock is held in an incompatible mode`;
    case 'CANCELLED': return `${what} cancelled`;
    case 'TIMEOUT': return `${what} timed out`;
    case 'DEADLOCK': return `conversion deadlock: this ${what} was chosen to fail (EDEADLK); the lock keeps its granted mode`;
    default: return `${what} failed: ${code}`;
  }
}
