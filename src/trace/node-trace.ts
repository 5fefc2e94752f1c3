/**
 * NodeTrace: the trace facility of one mxfsd, assembled from [trace] — the TraceRecorder
 * (installed on the node's ActorSystem), its NDJSON file sink, the TracedPort the lock router
 * talks through, the TraceCollector — and the answers to the client's `trace` requests:
 *
 *   status    recorder figures (events, evicted, dropped, ring, file)
 *   dump      one page of this node's ring after a cursor, filtered
 *   collect   one page from each node (default: every member), through the peers
 *   why       a resource's master and epoch, holders, waiters (since when), BASTs (how long
 *             ago), the last recovery, and its recent traffic from every node's ring
 *
 * Every answer fits in one client frame: pages are cut to the room left per node; a client
 * reads on with the cursors it gets back.
 */
import type Logger from 'bunyan';
import type { ActorSystem } from '../actors/actor';
import type { ClusterPort } from '../cluster/port';
import type { WireTracePage } from '../cluster/dlm-messages';
import type { Config } from '../config/config';
import type { Clock } from '../util/clock';
import type { ClientRequest } from '../wire/client-protocol';
import type { RecoveryState } from '../daemon/lock-router';
import type { TraceEvent } from './event';
import { NdjsonFileSink } from './file-sink';
import { TraceRecorder } from './recorder';
import { TracedPort } from './traced-port';
import { TraceCollector } from './collect';
import { causalOrder } from './merge';
import { isInspection } from './fields';

/** Room kept around the pages in a reply frame ({type, id, ok, data: {node, pages, missing}}). */
const ENVELOPE_BYTES = 1024;
/** Trace events shown by `why` (the most recent ones of the resource, all nodes merged). */
export const WHY_EVENTS = 40;
/** Left out of `why`'s recent traffic besides inspection (isInspection: why itself asks for it): transport hand-offs. */
const WHY_SKIP: ReadonlySet<string> = new Set(['send', 'data']);

export interface RecoveryNote { epoch: number; startedAt: number; endedAt?: number; ms?: number }

/** What the node tells `why` about the lock state (the router and `locks`). */
export interface WhySources {
  locks(filter: { lockspace?: string; resource?: string }): Promise<unknown>;
  router(): { state: RecoveryState; epoch: number; members: number[]; readonly recovery?: { epoch: number; phase: string } };
  masterOf(lockspace: string, resource: string, members: number[]): number;
}

export type TraceRequest = Extract<ClientRequest, { type: 'trace' }>;

export class NodeTrace {
  readonly recorder?: TraceRecorder;
  private port?: TracedPort;
  private collector!: TraceCollector;
  private lastRecovery?: RecoveryNote;
  private sources?: WhySources;

  constructor(private readonly o: { config: Config; clock: Clock; log: Logger; sys: ActorSystem }) {
    const t = o.config.trace;
    if (t?.enabled) {
      const sink = t.file ? new NdjsonFileSink({
        file: t.file, maxBytes: t.fileMaxBytes, keep: t.fileKeep,
        onError: (err) => o.log.error({ err, file: t.file }, 'trace file cannot be written; the trace goes on in memory only (the file is tried again every 5 s)'),
        onResume: () => o.log.warn({ file: t.file }, 'trace file written again'),
      }) : undefined;
      this.recorder = new TraceRecorder(o.config.node.id, o.clock, t.ringSize, sink);
      o.sys.tracer = this.recorder;
    }
  }

  get enabled(): boolean { return this.recorder !== undefined; }

  /** The port the lock router uses (stamps and records lock traffic, answers trace queries). */
  wrapPort(port: ClusterPort | undefined): ClusterPort | undefined {
    if (port) this.port = new TracedPort(port, this.recorder);
    this.collector = new TraceCollector({
      selfId: this.o.config.node.id, recorder: this.recorder, port: this.port, clock: this.o.clock, queryTimeoutMs: this.o.config.timing.queryTimeoutMs,
    });
    return this.port;
  }

  attach(s: WhySources): void { this.sources = s; }

  /** The router's state changes (RouterListener.onState): remembers the last recovery for `why`. */
  onRouterState(state: RecoveryState, epoch: number): void {
    const now = this.o.clock.now();
    if (state === 'recovering' && this.lastRecovery?.epoch !== epoch) this.lastRecovery = { epoch, startedAt: now };
    else if (state === 'running' && this.lastRecovery && this.lastRecovery.endedAt === undefined && this.lastRecovery.epoch === epoch) {
      this.lastRecovery.endedAt = now;
      this.lastRecovery.ms = Math.round(now - this.lastRecovery.startedAt);
    }
  }

  async request(req: TraceRequest): Promise<unknown> {
    const node = this.o.config.node.id;
    const room = this.o.config.locking.maxFrameBytes - ENVELOPE_BYTES;
    const cursors = (n: number) => req.cursors?.[String(n)] ?? 0;
    switch (req.op) {
      case 'status': {
        const t = this.o.config.trace;
        return { node, enabled: this.enabled, ...(this.recorder ? { stats: this.recorder.stats } : {}), ...(t?.file ? { file: t.file } : {}) };
      }
      case 'dump': {
        if (req.nodes && (req.nodes.length !== 1 || req.nodes[0] !== node)) throw new Error(`dump reads this node (${node}) only; use collect for others`);
        await this.collector.synced();
        return { node, enabled: this.enabled, pages: { [node]: this.collector.localPage(cursors(node), req.filter ?? {}, room) }, missing: [] };
      }
      case 'collect': {
        // A node that is neither this one nor a configured peer cannot answer: said at once
        // (`unknown`), not waited for until the query timeout.
        const known = (n: number) => n === node || this.o.config.peers.some((p) => p.id === n);
        const unknown = req.nodes?.filter((n) => !known(n)) ?? [];
        const nodes = req.nodes?.filter(known) ?? [node, ...this.collector.peers()];
        const per = Math.max(4096, Math.floor(room / Math.max(1, nodes.length)));
        const cur: Record<number, number> = {};
        for (const n of nodes) cur[n] = cursors(n);
        const r = await this.collector.collect(nodes, cur, req.filter ?? {}, per);
        return { node, enabled: this.enabled, ...r, ...(unknown.length ? { unknown } : {}) };
      }
      case 'why':
        return this.why(req.lockspace ?? 'default', req.resource!, room);
    }
  }

  /** Everything the node knows about why a resource's locks are where they are. */
  private async why(lockspace: string, resource: string, room: number): Promise<unknown> {
    const src = this.sources;
    if (!src) throw new Error('why: the node is not ready');
    const r = src.router();
    const standalone = r.state === 'standalone';
    const master = standalone ? this.o.config.node.id : r.members.length ? src.masterOf(lockspace, resource, r.members) : null;
    const locks = await src.locks({ lockspace, resource }) as { resources: Array<Record<string, unknown>>; missing?: number[] };
    const entry = locks.resources.find((x) => x.lockspace === lockspace && x.resource === resource) ?? null;
    const now = this.o.clock.now();
    const rec = this.lastRecovery && {
      epoch: this.lastRecovery.epoch, ms: this.lastRecovery.ms ?? null,
      agoMs: Math.round(now - (this.lastRecovery.endedAt ?? this.lastRecovery.startedAt)), done: this.lastRecovery.endedAt !== undefined,
      // The named phase (src/daemon/recovery.ts) while this recovery runs.
      phase: r.recovery?.epoch === this.lastRecovery.epoch ? r.recovery.phase : null,
    };
    let traffic: TraceEvent[] = [];
    let traceMissing: number[] = [];
    if (this.enabled || !standalone) {
      // The resource's recent traffic, every node's ring merged (newest WHY_EVENTS).
      const all: TraceEvent[] = [];
      const cursors: Record<number, number> = {};
      const nodes = standalone ? [this.o.config.node.id] : [this.o.config.node.id, ...this.collector.peers()];
      // Pages look at PAGE_SCAN events each: enough rounds to pass the largest ring (ring_size 10M).
      for (let round = 0; round < 1000; round++) {
        const res = await this.collector.collect(nodes, cursors, { resource, lockspace }, Math.max(8192, Math.floor(room / 2 / nodes.length)));
        traceMissing = res.missing;
        let more = false;
        for (const [n, p] of Object.entries(res.pages) as Array<[string, WireTracePage]>) {
          for (const e of p.events) if (!WHY_SKIP.has(e.type) && !isInspection(e.type, e.sub) && e.kind !== 'frame-in' && e.kind !== 'frame-out') all.push(e);
          cursors[Number(n)] = p.cursor;
          more ||= p.more;
        }
        if (!more) break;
        // Keep only what can be shown; older pages are read to reach the newest events.
        if (all.length > 8 * WHY_EVENTS) all.splice(0, all.length - 8 * WHY_EVENTS);
      }
      traffic = causalOrder(all).slice(-WHY_EVENTS);
    }
    return {
      node: this.o.config.node.id, lockspace, resource, state: r.state, epoch: r.epoch, members: r.members, master,
      entry, missing: locks.missing ?? [], lastRecovery: rec ?? null,
      trace: { enabled: this.enabled, events: traffic, missing: traceMissing },
    };
  }

  async close(): Promise<void> { await this.recorder?.close(); }
}
