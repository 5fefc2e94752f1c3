/**
 * mxfsd as a systemd service (Type=notify, WatchdogSec): the sd_notify(3) protocol spoken
 * directly on $NOTIFY_SOCKET (one datagram per notification, path or abstract "@" address;
 * no libsystemd).
 *
 * Readiness. READY=1 once the node serves locks: a standalone node when its socket listens;
 * a cluster node the first time its lock engine runs in a quorate view (router state
 * 'running': it joined a view and finished recovery). Units ordered after mxfsd.service
 * (the shared volumes' mounts) start only then. STATUS= follows every state change
 * (`systemctl status mxfsd` shows it); STOPPING=1 at shutdown.
 *
 * Watchdog ($WATCHDOG_USEC). Fed only from the lease-renewal path (ClusterPort.onRenewal),
 * on the main thread, so it stops being fed when lease renewal stops:
 *  - an acknowledged renewal ('confirmed': "lease renewed, quorum until T") feeds it;
 *  - a renewal round feeds it while the quorum deadline is still ahead, or while the lock
 *    engine has fenced itself (no-quorum, joining): a node cut off from its peers is
 *    harmless, and restarting it would not bring them back;
 *  - a round after the deadline passed, with the lock engine still in a granting state,
 *    does not: that daemon's self-fencing is stuck.
 * A daemon whose event loop or membership is wedged sends no renewals, so its lease lapses
 * (it can no longer grant: every grant checks the deadline against the clock) and systemd
 * kills it with SIGABRT (a core dump) and restarts it. A standalone node has no lease: a
 * periodic tick feeds the watchdog after a message made a round trip through the actor
 * system.
 * The watchdog period is kept between two renew intervals (one lost round is not fatal) and
 * the lease (the wedged process is gone before its peers regrant its locks); when the unit's
 * WatchdogSec is outside that range, mxfsd sets WATCHDOG_USEC itself and says so in the log.
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import type { RenewalReport } from '../cluster/membership';
import type { ClusterPort } from '../cluster/port';
import { DatagramSender } from '../ffi/unix-datagram';
import type { Clock, TimerHandle } from '../util/clock';
import type { RecoveryState } from './lock-router';

/** The router states in which this node has fenced itself (it grants nothing). */
const FENCED: ReadonlySet<RecoveryState> = new Set(['joining', 'no-quorum']);

/** What systemd told this process (read once; NOTIFY_SOCKET is removed from the environment). */
export interface ServiceEnv { notifySocket?: string; watchdogMs?: number }

export function serviceEnv(env: NodeJS.ProcessEnv = process.env): ServiceEnv {
  const out: ServiceEnv = {};
  if (env.NOTIFY_SOCKET) out.notifySocket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  if (Number.isInteger(usec) && usec > 0 && forUs) out.watchdogMs = Math.max(1, Math.floor(usec / 1000));
  // As sd_notify(3)'s unset_environment: nothing this process starts should talk to systemd.
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  return out;
}

/**
 * The watchdog period to use for a lease: `requested` (the unit's WatchdogSec) when it lies
 * in [2 * renew, lease), else the nearest bound (for a lease, half of it when requested is
 * too long). No lease (standalone): requested as it is.
 */
export function watchdogPeriodMs(requested: number, timing?: { leaseTimeoutMs: number; renewIntervalMs: number }): number {
  if (!timing) return requested;
  const lo = 2 * timing.renewIntervalMs;
  if (requested < lo) return lo;
  if (requested >= timing.leaseTimeoutMs) return Math.max(lo, Math.floor(timing.leaseTimeoutMs / 2));
  return requested;
}

/** Should this renewal report feed the watchdog? (see the file header) */
export function renewalFeedsWatchdog(r: RenewalReport, now: number, state: RecoveryState): boolean {
  if (r.kind === 'confirmed') return true;
  return now < r.quorumUntil || FENCED.has(state);
}

/** A one-line STATUS= text for a router state. */
export function statusText(state: RecoveryState, epoch: number, members: number[]): string {
  switch (state) {
    case 'standalone': return 'standalone node: serving locks';
    case 'joining': return 'joining the cluster: waiting for a quorate view';
    case 'recovering': return `recovering locks for epoch ${epoch} (members ${members.join(' ')})`;
    case 'running': return `running: epoch ${epoch}, members ${members.join(' ')}`;
    case 'no-quorum': return `no quorum in epoch ${epoch}: self-fenced, granting nothing`;
  }
}

type PingMsg = { type: 'ping'; replyTo: Ref<true> };

export interface ServiceOptions {
  env: ServiceEnv;
  log: Logger;
  clock: Clock;
  sys: ActorSystem;
  port?: ClusterPort;
  timing: { leaseTimeoutMs: number; renewIntervalMs: number };
  /** The lock engine's current state and view. */
  state(): { state: RecoveryState; epoch: number; members: number[] };
  /** Notification transport (tests); default: datagrams to env.notifySocket. */
  send?: (text: string) => void;
}

export class ServiceNotifier {
  private ready = false;
  private stopped = false;
  private lastPing = -Infinity;
  private tick?: TimerHandle;
  private readonly periodMs?: number;
  private readonly sender?: DatagramSender;
  private readonly send: (text: string) => void;
  private backlog: string[] = [];
  private retry?: TimerHandle;

  constructor(private readonly o: ServiceOptions) {
    const socket = o.env.notifySocket;
    if (o.send) this.send = o.send;
    else if (socket) {
      let warned = false;
      try {
        this.sender = new DatagramSender();
      } catch (e) {
        o.log.warn(`cannot create a socket for systemd notifications: ${(e as Error).message}`);
      }
      // A full queue (EAGAIN) drops a WATCHDOG=1 (the next one comes soon); anything else
      // (READY=1 above all) waits and is retried in order.
      const trySend = (text: string) => {
        const err = this.sender?.send(Buffer.from(text), socket);
        if (err && err !== 'EAGAIN' && !warned) { warned = true; o.log.warn({ socket }, `systemd notification socket unreachable (${err})`); }
        if (!err) warned = false;
        return err;
      };
      const flush = () => {
        this.retry = undefined;
        while (this.backlog.length && trySend(this.backlog[0]!) !== 'EAGAIN') this.backlog.shift();
        if (this.backlog.length) this.retry = o.clock.setTimer(flush, 50);
      };
      this.send = (text) => {
        if (this.backlog.length) { if (text !== 'WATCHDOG=1') this.backlog.push(text); return; }
        if (trySend(text) === 'EAGAIN' && text !== 'WATCHDOG=1') { this.backlog.push(text); this.retry ??= o.clock.setTimer(flush, 50); }
      };
    } else this.send = () => {};
    if (o.env.watchdogMs !== undefined) {
      const p = watchdogPeriodMs(o.env.watchdogMs, o.port ? o.timing : undefined);
      this.periodMs = p;
      if (p !== o.env.watchdogMs) {
        this.send(`WATCHDOG_USEC=${Math.round(p * 1000)}`);
        o.log.warn({ requestedMs: o.env.watchdogMs, usedMs: p }, `watchdog period set to ${p} ms: it must lie between 2 renew intervals (${2 * o.timing.renewIntervalMs} ms) and the lease (${o.timing.leaseTimeoutMs} ms)`);
      }
    }
  }

  get watchdogMs(): number | undefined { return this.periodMs; }

  /** Call once the daemon listens; from then on readiness and the watchdog follow the node. */
  start(onState: (listener: (state: RecoveryState) => void) => void): void {
    onState(() => this.stateChanged());
    this.stateChanged();
    if (this.periodMs === undefined) return;
    if (this.o.port?.onRenewal) {
      this.o.port.onRenewal((r) => {
        if (!this.stopped && renewalFeedsWatchdog(r, this.o.clock.now(), this.o.state().state)) this.ping();
      });
    } else {
      this.startTick();
    }
  }

  /** STOPPING=1; no more watchdog pings (systemd stops watching a unit that is stopping). */
  stopping(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.o.clock.clearTimer(this.tick);
    this.send('STOPPING=1\nSTATUS=shutting down: clients are told their locks are lost');
  }

  close(): void {
    this.o.clock.clearTimer(this.retry);
    this.sender?.close();
  }

  private stateChanged(): void {
    if (this.stopped) return;
    const { state, epoch, members } = this.o.state();
    const parts = [`STATUS=${statusText(state, epoch, members)}`];
    if (!this.ready && (state === 'running' || state === 'standalone')) {
      this.ready = true;
      parts.unshift('READY=1');
      this.o.log.info({ state, epoch }, 'ready (told systemd)');
    }
    this.send(parts.join('\n'));
  }

  private ping(): void {
    const now = this.o.clock.now();
    // Acknowledgements arrive in bursts (one per peer): one datagram per few of them is plenty.
    if (now - this.lastPing < this.periodMs! / 8) return;
    this.lastPing = now;
    this.send('WATCHDOG=1');
  }

  /** Standalone: every quarter period, a round trip through the actor system, then a ping. */
  private startTick(): void {
    const sys = this.o.sys;
    const echo = sys.spawn<undefined, PingMsg>(undefined, 'watchdog', {
      init: () => undefined,
      handle: (s, msg, ctx) => { ctx.system.reply(msg.replyTo, true); return s; },
    });
    const every = this.periodMs! / 4;
    const round = async () => {
      if (this.stopped) return;
      try {
        await sys.ask<PingMsg, true>(echo, (replyTo) => ({ type: 'ping', replyTo }), this.periodMs! / 2);
        if (!this.stopped) this.ping();
      } catch {
        // The actor system did not answer in time: no ping; systemd decides.
      }
      if (!this.stopped) this.tick = this.o.clock.setTimer(() => void round(), every);
    };
    void round();
  }
}
