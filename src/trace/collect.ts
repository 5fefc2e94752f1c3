/**
 * TraceCollector: reads trace pages from this node's ring and, through the peers, from every
 * other member's (mxfsctl trace collect / tail / why, from any one node).
 *
 * Owns: the traceQuery ids in flight and their replies. Takes: traceQuery (answers with a
 * page of the local ring after the asked cursor, cut to the asked size) and traceReply from
 * the TracedPort. Sends: traceQuery/traceReply through the port, untraced.
 * A member that does not answer within the query timeout is reported missing, not waited for.
 */
import type { DlmPeerMsg, WireTracePage } from '../cluster/dlm-messages';
import { MAX_DLM_LIST_BYTES, MAX_TRACE_EVENTS } from '../cluster/dlm-messages';
import type { Clock } from '../util/clock';
import type { TraceFilter } from './filter';
import type { TraceRecorder } from './recorder';
import type { TracedPort, TraceQueryHandler } from './traced-port';

export interface CollectResult {
  /** By node id: the page read from that node (cursor to pass back next time). */
  pages: Record<number, WireTracePage>;
  /** Nodes asked that did not answer in time. */
  missing: number[];
}

interface Pending { expect: Set<number>; pages: Map<number, WireTracePage>; done(): void }

export class TraceCollector implements TraceQueryHandler {
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(private readonly o: {
    selfId: number;
    recorder?: TraceRecorder;
    port?: TracedPort;
    clock: Clock;
    queryTimeoutMs: number;
  }) {
    o.port?.handleQueries(this);
  }

  /**
   * Resolves once this node's ring holds every event made before the call, the cluster worker
   * thread's included (it holds its events back for a while: worker-tracer.ts). A page of the
   * local ring is read after it. A peer's traceQuery needs none: the worker's events made
   * before the query arrived crossed to the main thread ahead of it.
   */
  synced(): Promise<void> { return this.o.recorder && this.o.port?.traceSync ? this.o.port.traceSync() : Promise.resolve(); }

  localPage(after: number, filter: TraceFilter, maxBytes: number): WireTracePage {
    const r = this.o.recorder;
    if (!r) return { events: [], cursor: after, more: false, missed: 0, enabled: false };
    const p = r.page(after, filter, maxBytes, MAX_TRACE_EVENTS);
    return { events: p.events, cursor: p.cursor, more: p.more, missed: p.missed, enabled: true };
  }

  /** Members of the current view other than this node (the nodes `collect` asks by default). */
  peers(): number[] {
    const v = this.o.port?.view();
    return v ? v.members.filter((m) => m !== this.o.selfId) : [];
  }

  /**
   * One page from each of `nodes` (default: this node and every other member), after each
   * node's cursor, each at most maxBytes.
   */
  async collect(nodes: number[] | undefined, cursors: Record<number, number>, filter: TraceFilter, maxBytes: number): Promise<CollectResult> {
    const want = nodes ?? [this.o.selfId, ...this.peers()];
    const pages: Record<number, WireTracePage> = {};
    if (want.includes(this.o.selfId)) await this.synced();
    if (want.includes(this.o.selfId)) pages[this.o.selfId] = this.localPage(cursors[this.o.selfId] ?? 0, filter, maxBytes);
    const others = want.filter((n) => n !== this.o.selfId);
    if (others.length === 0 || !this.o.port) return { pages, missing: others };
    const id = this.nextId++;
    const got = new Map<number, WireTracePage>();
    await new Promise<void>((resolve) => {
      const t = this.o.clock.setTimer(resolve, this.o.queryTimeoutMs);
      this.pending.set(id, { expect: new Set(others), pages: got, done: () => { this.o.clock.clearTimer(t); resolve(); } });
      const room = Math.min(maxBytes, MAX_DLM_LIST_BYTES - 1024);
      for (const n of others) {
        this.o.port!.sendUntraced(n, { t: 'traceQuery', epoch: this.o.port!.view().epoch, id, after: cursors[n] ?? 0, filter, maxBytes: room });
      }
    });
    this.pending.delete(id);
    for (const [n, p] of got) pages[n] = p;
    return { pages, missing: others.filter((n) => !got.has(n)) };
  }

  onQuery(from: number, m: Extract<DlmPeerMsg, { t: 'traceQuery' }>): void {
    const page = this.localPage(m.after, m.filter, Math.min(m.maxBytes, MAX_DLM_LIST_BYTES - 1024));
    this.o.port?.sendUntraced(from, { t: 'traceReply', epoch: this.o.port.view().epoch, id: m.id, page });
  }

  onReply(from: number, m: Extract<DlmPeerMsg, { t: 'traceReply' }>): void {
    const q = this.pending.get(m.id);
    if (!q || !q.expect.has(from) || q.pages.has(from)) return;
    q.pages.set(from, m.page);
    if (q.pages.size >= q.expect.size) q.done();
  }
}
