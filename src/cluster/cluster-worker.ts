/**
 * ClusterWorker: the cluster layer in a worker thread of its own (cluster-worker-main.ts),
 * seen from the lock engine's thread as a ClusterLayer. This is how mxfsd keeps liveness
 * apart from load, as Linux DLM leaves membership to corosync: lease renewals, their
 * acknowledgements and quorum decisions run on the worker's event loop, with its own actor
 * system and its own (small) heap, so they never wait behind lock traffic, a purge, a
 * recovery, an inspection flood or a garbage collection of the lock engine's large heap
 * (docs/architecture.md, "Threads"; measured in docs/benchmarks.md, "Event loop under abuse").
 *
 * Safety is unchanged: the worker publishes its quorum deadline in shared memory the moment
 * it changes (SharedLease), and canGrant() compares it with the clock at the call, so the lock
 * engine never grants on a deadline the worker has withdrawn, whatever is still queued
 * between the threads. Liveness of the lock engine itself is watched: this side writes a
 * heartbeat into shared memory every beatMs from a timer of its event loop; a worker that
 * sees none for stallMs mutes itself (no renewals, no answers, no quorum: the node fences
 * and the others take over), and unmutes when the beats come back.
 *
 * Owns: the Worker, the SharedLease, the outgoing batch, pending status queries.
 * Takes (method calls): start, stop, send, canGrant, quorumUntil, status, dropLink, setFaults,
 * reopenLogs. Sends: ToWorker messages; ClusterLayerEvents callbacks with what the worker
 * reports, in order.
 */
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type Logger from 'bunyan';
import type { Clock } from '../util/clock';
import type { ClusterLayer, ClusterLayerEvents, ClusterLayerStatus, PeerFaults } from './cluster-layer';
import type { PeerBody } from './peer-protocol';
import type { TraceContext } from '../trace/recorder';
import type { TevBatch } from '../trace/worker-events';
import { socketPair } from '../util/socket-pair';
import { SharedLease } from './shared-lease';
import { PipeReceiver, PipeSender } from './thread-pipe';
import { FromWorker, ToWorker, WireFaults, WorkerInit, WorkerItem, WorkerSend } from './worker-protocol';
import { probe } from '../util/probe';

/** What the worker starts from (config, state_dir and promised epoch, logging, stall bound: see WorkerInit), and the main thread's side. */
export interface ClusterWorkerOptions extends ClusterLayerEvents, Pick<WorkerInit, 'config' | 'incarnation' | 'stateDir' | 'promisedEpoch' | 'logging' | 'logLevel' | 'stallMs'> {
  /** Where the worker's log records go for syslog (LogHandle.syslogRecord); absent: no syslog. */
  syslogRecord?(rec: Record<string, unknown>): void;
  clock: Clock;
  log: Logger;
  faults?: PeerFaults;
  /** The worker died: the node has no cluster layer any more (mxfsd exits). */
  onFatal?(err: Error): void;
  /**
   * The node traces: every event of the worker (its actors' messages, its frames) goes to
   * `events`, in batches, ahead of what it caused among everything else the worker reports;
   * `context` is this thread's causal context, handed over with each send
   * (src/trace/worker-tracer.ts).
   */
  trace?: { events(b: TevBatch): void; context(): TraceContext | undefined; causedBy(w: number, fn: () => void): void };
}

const wireFaults = (f: PeerFaults): WireFaults => ({ blocked: [...f.blocked], drop: f.drop, delayMs: f.delayMs, mute: f.mute });

export class ClusterWorker implements ClusterLayer {
  private w?: Worker;
  private readonly shared = new SharedLease();
  /** This thread's end of the socket pair that carries the pipe (absent: the worker's MessagePort carries it). */
  private pipe?: net.Socket;
  private readonly toWorker = new PipeSender<WorkerSend>((batch, transfer) => {
    if (this.stopping) return;
    if (this.pipe) { probe('m.pw'); this.pipe.write(batch); }
    else this.post({ type: 'send', batch }, transfer);
  });
  private readonly fromWorker = new PipeReceiver<WorkerItem>((item) => this.dispatch(item));
  private beat?: NodeJS.Timeout;
  private queries = new Map<number, (m: Extract<FromWorker, { type: 'status' }>) => void>();
  private syncs = new Map<number, () => void>();
  private nextQuery = 1;
  private stopping = false;
  private stopped?: () => void;
  /** The committed epoch as this thread knows it (the last view it processed): stamped on sends. */
  private knownEpoch = 0;
  readonly beatMs: number;

  constructor(private readonly o: ClusterWorkerOptions) {
    this.beatMs = Math.max(10, Math.min(50, Math.floor(o.stallMs / 10)));
  }

  get incarnation(): number { return this.o.incarnation; }

  async start(): Promise<void> {
    this.shared.mainBeat = this.o.clock.now();
    this.beat = setInterval(() => { this.shared.mainBeat = this.o.clock.now(); }, this.beatMs);
    this.beat.unref();
    const pair = socketPair();
    if ('fds' in pair) {
      const pipe = new net.Socket({ fd: pair.fds[0], readable: true, writable: true });
      pipe.on('data', (chunk: Buffer) => { probe('m.pr'); this.fromWorker.receive(chunk); });
      pipe.on('error', (e) => this.died(new Error(`the pipe to the cluster worker thread failed: ${e.message}`)));
      pipe.on('close', () => this.died(new Error('the pipe to the cluster worker thread closed')));
      this.pipe = pipe;
    } else {
      this.o.log.warn(`the thread pipe goes through the worker's message port: ${pair.error}`);
    }
    const init: WorkerInit = {
      config: this.o.config, incarnation: this.o.incarnation, stateDir: this.o.stateDir, promisedEpoch: this.o.promisedEpoch,
      logging: this.o.logging, logLevel: this.o.logLevel, forwardSyslog: !!this.o.syslogRecord && this.o.logging.syslog,
      shared: this.shared.buffer, pipeFd: 'fds' in pair ? pair.fds[1] : undefined, stallMs: this.o.stallMs, beatMs: this.beatMs,
      faults: this.o.faults ? wireFaults(this.o.faults) : undefined, trace: !!this.o.trace,
    };
    const w = new Worker(path.join(__dirname, 'cluster-worker-main.js'), { workerData: init, name: 'mxfs-cluster' });
    this.w = w;
    let started = false;
    await new Promise<void>((resolve, reject) => {
      const early = (e: Error) => reject(e);
      w.once('error', early);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'started') { started = true; w.off('error', early); w.on('error', (e) => this.died(e)); resolve(); return; }
        if (m.type === 'startFailed') {
          // The errno fields too: the caller turns "port in use" into one clear line.
          const { type: _t, message, ...errno } = m;
          reject(Object.assign(new Error(message), errno));
          return;
        }
        this.onWorkerMessage(m);
      });
      w.on('exit', (code) => {
        if (this.stopping) { this.stopped?.(); return; }
        const e = new Error(`the cluster worker thread exited (code ${code})`);
        if (!started) { reject(e); return; }
        this.died(e);
      });
    });
  }

  private died(e: Error): void {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.beat);
    this.pipe?.destroy();
    this.shared.quorumUntil = -Infinity;
    this.o.log.fatal({ err: e }, 'the cluster worker thread failed: no lease any more, self-fencing');
    this.o.onEvent?.({ type: 'quorum', has: false, reason: `the cluster worker thread failed: ${e.message}` });
    this.o.onFatal?.(e);
  }

  private onWorkerMessage(m: FromWorker): void {
    switch (m.type) {
      case 'batch':
        this.fromWorker.receive(m.items);
        return;
      case 'status':
        this.queries.get(m.id)?.(m);
        return;
      case 'stopped':
        this.stopped?.();
        return;
      default:
        return;
    }
  }

  private dispatch(item: WorkerItem): void {
    switch (item[0]) {
      case 'event': {
        if (item[1].type === 'view') this.knownEpoch = item[1].epoch;
        const ev = item[1];
        if (item[2] !== undefined && this.o.trace) this.o.trace.causedBy(item[2], () => this.o.onEvent?.(ev));
        else this.o.onEvent?.(ev);
        return;
      }
      case 'link': this.o.onLinkEvent?.(item[1]); return;
      case 'dlm': {
        const [, from, frame, w] = item;
        if (w !== undefined && this.o.trace) this.o.trace.causedBy(w, () => this.o.onDlmFrame?.(from, frame));
        else this.o.onDlmFrame?.(from, frame);
        return;
      }
      case 'bound': this.o.onBoundMessage?.(item[1], item[2]); return;
      case 'rejected': this.o.onRejected?.(item[1], item[2], item[3]); return;
      case 'lease': this.o.onLease?.(item[1]); return;
      case 'renewal': this.o.onRenewal?.(item[1]); return;
      case 'renewHeard': this.o.onPeerRenewal?.(item[1]); return;
      case 'log': this.o.syslogRecord?.(item[1]); return;
      case 'tev': this.o.trace?.events(item[1]); return;
      case 'traceSynced': this.syncs.get(item[1])?.(); return;
    }
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void { if (!this.stopping) this.w?.postMessage(m, transfer); }

  /** A control message, after what was pushed into the pipe before it (which it may still overtake on arrival). */
  private control(m: ToWorker): void {
    this.toWorker.flush();
    this.post(m);
  }

  send(to: number, body: PeerBody, epoch?: number): void {
    if (this.stopping) return;
    const ctx = this.o.trace?.context();
    this.toWorker.push(ctx ? [to, body, epoch ?? this.knownEpoch, ctx] : [to, body, epoch ?? this.knownEpoch]);
  }

  canGrant(): boolean { return this.o.clock.now() < this.shared.quorumUntil; }
  quorumUntil(): number { return this.shared.quorumUntil; }

  status(timeoutMs = 1000): Promise<ClusterLayerStatus> {
    const id = this.nextQuery++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.queries.delete(id); reject(new Error(`the cluster worker thread did not answer within ${timeoutMs} ms`)); }, timeoutMs + 500);
      this.queries.set(id, (m) => {
        clearTimeout(t);
        this.queries.delete(id);
        if (m.status) resolve(m.status); else reject(new Error(m.error ?? 'no status'));
      });
      this.control({ type: 'status', id, timeoutMs });
    });
  }

  /**
   * Resolves once every trace event the worker made before this call has been recorded here
   * (the worker holds them back for a while when it has nothing else to send: worker-tracer.ts),
   * or after timeoutMs. Immediate when the node does not trace.
   */
  traceSync(timeoutMs = 1000): Promise<void> {
    if (!this.o.trace || !this.w || this.stopping) return Promise.resolve();
    const id = this.nextQuery++;
    return new Promise((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void { clearTimeout(t); self.syncs.delete(id); resolve(); }
      this.syncs.set(id, done);
      this.control({ type: 'traceSync', id });
    });
  }

  dropLink(peer: number, reason: string): void { this.control({ type: 'dropLink', peer, reason }); }
  setFaults(f: PeerFaults): void { this.control({ type: 'faults', faults: wireFaults(f) }); }
  reopenLogs(): void { this.control({ type: 'reopenLogs' }); }

  async stop(reason = 'shutdown'): Promise<void> {
    if (!this.w || this.stopping) return;
    this.toWorker.flush();
    this.pipe?.end(); // the worker handles what it holds before it stops the node (its answers still come back)
    const w = this.w;
    const done = new Promise<void>((r) => { this.stopped = r; });
    this.post({ type: 'stop', reason });
    this.stopping = true;
    clearInterval(this.beat);
    await Promise.race([done, new Promise((r) => setTimeout(r, 3000).unref())]);
    await w.terminate();
    this.pipe?.destroy();
  }
}
