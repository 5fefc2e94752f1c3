/**
 * The cluster worker thread: runs one ClusterNode (peer links over TCP, leases, quorum,
 * epochs) with its own event loop, actor system, clock timers and log streams, for
 * ClusterWorker (cluster-worker.ts) on the lock engine's thread.
 *
 * Owns: the ClusterNode, <state_dir>/epoch.json (EpochFile: the promised epoch is written
 * here, durably, before any accept/proposal/commit based on it leaves), the watchdog on the
 * main thread's heartbeat.
 * Takes: ToWorker messages (sends, faults, link drops, status, log reopen, stop).
 * Sends: WorkerItems in the order they happened (when the node traces, batches of trace
 * events too, each just ahead of the next item or after TRACE_SHIP_MS),
 * through the thread pipe (thread-pipe.ts: the socket pair's end in pipeFd, or 'batch'
 * messages); FromWorker messages for the rest; the quorum
 * deadline also straight into shared memory (SharedLease) the moment it changes.
 *
 * The thread asks for a higher CPU priority than the rest of the process (thread-priority.ts).
 *
 * The watchdog: every beat it stamps its own heartbeat and reads the main thread's. If the
 * main thread has not beaten for longer than stallMs while this thread kept running — not
 * counting the time the main thread was runnable but waiting for a CPU, up to
 * STARVED_SILENCE_FACTOR × stallMs in all (thread-sched.ts: a starved thread is slow, not
 * wedged, and a mute costs every local lock) — the node mutes itself (MembershipCore.mute: no renewals, no answers, no quorum), so a wedged
 * lock engine still ends in a fence and the others take its resources over; when the main
 * thread beats again it unmutes and rejoins. If this thread was frozen too (the whole process
 * was paused), it waits one beat for the main thread before judging: the lease itself decides
 * about process-wide pauses, as before. The mute's reason says where the main thread's time
 * went meanwhile (thread-sched.ts: on a CPU, waiting for one, or neither), so a log tells a
 * long turn of the lock engine from a starved or blocked thread.
 */
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { ActorSystem } from '../actors/actor';
import { createLogger, LogHandle } from '../log';
import { systemClock } from '../util/clock';
import { LoopMonitor } from '../util/loop-monitor';
import { raiseThreadPriority } from '../util/thread-priority';
import { describeSilence, readThreadSched, SchedTimes, silenceExceeds, STARVED_SILENCE_FACTOR } from '../util/thread-sched';
import { WindowedMax } from '../util/windowed-max';
import { EpochFile } from '../daemon/state';
import { WorkerTracer } from '../trace/worker-tracer';
import { ClusterNode } from './cluster-node';
import type { PeerFaults } from './cluster-layer';
import { TcpNetwork } from './network';
import { SharedLease } from './shared-lease';
import { PipeReceiver, PipeSender } from './thread-pipe';
import { FromWorker, ToWorker, WireFaults, WorkerInit, WorkerItem, WorkerSend } from './worker-protocol';
import { probe } from '../util/probe';

const init = workerData as WorkerInit;
const port = parentPort!;
const clock = systemClock;
const shared = new SharedLease(init.shared);
const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

// ---- to and from the main thread, in order, bounded work per turn ----------------------------

/** The socket pair's end of this thread (socket-pair.ts); without one the port carries the pipe. */
const pipe = init.pipeFd !== undefined ? new net.Socket({ fd: init.pipeFd, readable: true, writable: true, allowHalfOpen: true }) : undefined;
const toMain = new PipeSender<WorkerItem>((items, transfer) => {
  if (!pipe) post({ type: 'batch', items }, transfer);
  else if (!pipe.destroyed) { probe('w.pw'); pipe.write(items); }
});
// The node's recorder is on the main thread: this thread's actor messages and frames go there (worker-tracer.ts).
const tracer = init.trace ? new WorkerTracer(init.config.node.id, clock, (n) => tracePending(n)) : undefined;
/**
 * Trace events do not cross to the main thread by themselves: they wait for the next item
 * (lock traffic goes both ways, so under load they ride with it and tracing adds no crossing,
 * no wake-up of the other thread), for TRACE_SHIP_MS at most (so `trace tail` stays live), or
 * until TRACE_SHIP_EVENTS wait. A trace read asks for them first ('traceSync').
 */
const TRACE_SHIP_MS = 20, TRACE_SHIP_EVENTS = 256;
let traceTimer: NodeJS.Timeout | undefined;
function shipTrace(): void {
  const b = tracer?.take();
  if (b) toMain.push(['tev', b]);
}
function tracePending(n: number): void {
  if (n >= TRACE_SHIP_EVENTS) shipTrace();
  else if (traceTimer === undefined) traceTimer = setTimeout(() => { traceTimer = undefined; shipTrace(); }, TRACE_SHIP_MS);
}
/**
 * What this thread reports goes out in order; when the node traces, the trace events made
 * since the last item go first (the main thread records them before it handles what they
 * caused: a lock frame, a view).
 */
const out = (item: WorkerItem) => { shipTrace(); toMain.push(item); };
const flush = () => { shipTrace(); toMain.flush(); };

// ---- logging: file and stderr here; syslog records go to the main thread ------------------

/**
 * stderr holds back what this thread logs until the cluster layer has started: if mxfsd cannot
 * start, the main thread says why in one line there (the log file has the whole story).
 */
const stderrGate = {
  open: false,
  held: [] as Array<string | Uint8Array>,
  write(chunk: string | Uint8Array): boolean {
    if (this.open) return process.stderr.write(chunk);
    if (this.held.length < 1000) this.held.push(chunk);
    return true;
  },
  release(): void { this.open = true; for (const c of this.held.splice(0)) process.stderr.write(c); },
};

let logs: LogHandle;
{
  logs = createLogger({ ...init.logging, syslog: false }, { name: 'mxfsd', levelOverride: init.logLevel, stderrStream: stderrGate as unknown as NodeJS.WritableStream });
  if (init.forwardSyslog) {
    logs.log.addStream({ type: 'raw', level: logs.log.level(), stream: { write: (rec: object) => { out(['log', rec as Record<string, unknown>]); return true; } } as unknown as NodeJS.WritableStream });
  }
}
const log = logs.log.child({ thread: 'cluster' });

const toFaults = (f: WireFaults): PeerFaults => ({ blocked: new Set(f.blocked), drop: f.drop, delayMs: f.delayMs, mute: f.mute });

const epochs = EpochFile.open(init.stateDir, init.promisedEpoch);
const sys = new ActorSystem(log, 'mxfs-cluster');
// The node's recorder is on the main thread: this thread's actor messages and frames go there, in order (worker-tracer.ts).
if (tracer) { sys.tracer = tracer; sys.frames = tracer; }
const node = new ClusterNode({
  config: init.config, network: new TcpNetwork(), clock, system: sys, log, incarnation: init.incarnation,
  epochStore: { load: () => epochs.value, save: (e) => epochs.promise(e) },
  faults: init.faults ? toFaults(init.faults) : undefined,
  onEvent: (ev) => out(tracer && tracer.cur > 0 ? ['event', ev, tracer.cur] : ['event', ev]),
  onLinkEvent: (ev) => out(['link', ev]),
  onDlmFrame: (from, frame) => out(tracer && tracer.cur > 0 ? ['dlm', from, frame, tracer.cur] : ['dlm', from, frame]),
  onBoundMessage: (from, msg) => out(['bound', from, msg]),
  onRejected: (from, msg, reason) => out(['rejected', from, msg, reason]),
  onLease: (until) => { shared.quorumUntil = until; out(['lease', until]); },
  onRenewal: (r) => out(['renewal', r]),
  onPeerRenewal: (from) => out(['renewHeard', from]),
});

// ---- the watchdog on the main thread --------------------------------------------------------

const loop = new LoopMonitor();
const beatAges = new WindowedMax(1000, 120);
let muted = false;
/** A starved silence was logged (once per silence). */
let starvedLogged = false;
let starvedSilences = 0;
let mutes = 0;
let lastCheck = clock.now();
/** The main thread's scheduler figures when it last beat in time (the start of a silence). */
let heard: { at: number; sched: SchedTimes } | undefined;
const watchdog = setInterval(() => {
  const now = clock.now();
  const ranMeanwhile = now - lastCheck < init.stallMs / 2; // false: this thread was frozen too
  lastCheck = now;
  shared.workerBeat = now;
  const age = now - shared.mainBeat;
  beatAges.add(now, age);
  if (age <= 2 * init.beatMs) {
    const sched = readThreadSched(process.pid); // the main thread's id is the process's
    heard = sched ? { at: now, sched } : undefined;
  }
  if (age <= init.stallMs) {
    starvedLogged = false;
    if (muted) { muted = false; node.mute(undefined); }
    return;
  }
  if (!muted && ranMeanwhile) {
    const sched = heard && readThreadSched(process.pid);
    if (!silenceExceeds(age, init.stallMs, heard?.sched, sched)) {
      if (!starvedLogged) {
        starvedLogged = true;
        starvedSilences++;
        log.warn(`the lock engine's thread has not answered for ${Math.round(age)} ms, but it was waiting for a CPU (${describeSilence(heard!.sched, sched!, now - heard!.at)}): not muting before ${STARVED_SILENCE_FACTOR * init.stallMs} ms`);
      }
      return;
    }
    muted = true;
    mutes++;
    const where = heard && sched ? `; in the last ${Math.round(now - heard.at)} ms it was ${describeSilence(heard.sched, sched, now - heard.at)}` : '';
    node.mute(`the lock engine's thread has not answered for ${Math.round(age)} ms (bound ${init.stallMs} ms = client_timeout_ms, of time not spent waiting for a CPU: its clients have given up their locks)${where}; this node leaves the cluster so that its resources move`);
  }
}, init.beatMs);

// ---- requests from the main thread ----------------------------------------------------------

const fromMain = new PipeReceiver<WorkerSend>(([to, body, epoch, ctx]) => {
  if (tracer && ctx) tracer.fromMain(ctx, () => node.send(to, body, epoch ?? undefined));
  else node.send(to, body, epoch ?? undefined);
});
pipe?.on('data', (chunk: Buffer) => { probe('w.pr'); fromMain.receive(chunk); });
/** The main thread ended its side of the pipe (it is stopping: everything it sent before 'stop' is in). */
let pipeEnded = !pipe;
pipe?.on('end', () => { pipeEnded = true; });

/** Resolves once what the main thread sent before 'stop' has been handled (at most maxMs). */
function mainSendsHandled(maxMs: number): Promise<void> {
  const until = clock.now() + maxMs;
  return new Promise((resolve) => {
    const check = () => (pipeEnded && fromMain.backlog === 0) || clock.now() >= until ? resolve() : void setTimeout(check, 5);
    check();
  });
}
// The main thread closed its end (stopping) or is gone: its heartbeat tells the watchdog which.
pipe?.on('error', (e) => log.debug(`the pipe to the main thread: ${e.message}`));

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'send': fromMain.receive(m.batch); return;
    case 'faults': node.setFaults(toFaults(m.faults)); return;
    case 'dropLink': node.dropLink(m.peer, m.reason); return;
    case 'reopenLogs': logs.reopen(); return;
    case 'traceSync': out(['traceSynced', m.id]); return;
    case 'status':
      node.status(m.timeoutMs).then(
        (st) => {
          const now = clock.now();
          post({ type: 'status', id: m.id, status: { ...st, thread: {
            isolation: 'worker', pipe: pipe ? 'socket pair' : 'message port', stallBoundMs: init.stallMs, mainBeatAgeMs: Math.round(now - shared.mainBeat),
            mainBeatAgeMaxMs: beatAges.max(now, 60000) ?? null, muted, mutes, starvedSilences, workerLoop: loop.snapshot(),
          } } });
        },
        (e: Error) => post({ type: 'status', id: m.id, error: e.message }),
      );
      return;
    case 'stop':
      clearInterval(watchdog);
      loop.stop();
      flush();
      void mainSendsHandled(1000).then(() => node.stop(m.reason)).finally(async () => {
        flush();
        sys.shutdown();
        await logs.close();
        post({ type: 'stopped' });
      });
      return;
  }
});

loop.start();
shared.workerBeat = clock.now();
{
  const p = raiseThreadPriority(10);
  if (p.ok) log.debug(`cluster layer thread: ${p.text}`);
  else log.warn(`cluster layer thread: ${p.text}; lease renewals compete for the CPU with the lock engine`);
}
node.start().then(
  () => { stderrGate.release(); post({ type: 'started' }); },
  (e: NodeJS.ErrnoException & { port?: number; address?: string }) => post({ type: 'startFailed', message: e.message, code: e.code, syscall: e.syscall, port: e.port, address: e.address, path: e.path }),
);
