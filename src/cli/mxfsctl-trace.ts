/**
 * mxfsctl trace … and mxfsctl why … (docs/tracing.md):
 *
 *   trace status                      this node's recorder: events, evicted, dropped, ring, file
 *   trace dump    [FILTERS] [OUT]     this node's ring
 *   trace collect [FILTERS] [OUT] [--node N,..]   every member's ring (through the peers), merged
 *   trace tail    [FILTERS] [--node N,..] [--since D] [--interval MS] [--count N]   live
 *   why RESOURCE [--lockspace L]      holders, waiters and since when, BASTs, master, epoch,
 *                                     last recovery, recent traffic
 * FILTERS: --resource R --lockspace L --actor A --type T --since D (500ms, 10s, 5m, 2h, or an
 * ISO date) --trace ID. OUT: --format text|ndjson|json|chrome|mermaid|html --out FILE.
 */
import fs from 'node:fs';
import type { MxfsClient } from '../client/client';
import type { WireTracePage } from '../cluster/dlm-messages';
import { parseTraceId, TraceEvent, traceIdText } from '../trace/event';
import type { TraceFilter } from '../trace/filter';
import { causalOrder } from '../trace/merge';
import { eventLine, printable, rawEventLabel } from '../trace/export-text';
import { toChromeTrace } from '../trace/export-chrome';
import { toMermaid } from '../trace/export-mermaid';
import { toHtml } from '../trace/export-html';
import { compatible, parseMode } from '../dlm/modes';

export const TRACE_FORMATS = ['text', 'ndjson', 'json', 'chrome', 'mermaid', 'html'] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export interface TraceArgs {
  resource?: string; lockspace?: string; actor?: string; type?: string; since?: string; trace?: string;
  node?: string; format?: string; output?: string; interval?: string; count?: string; json?: boolean;
}

export class TraceUsageError extends Error {}
const usage = (m: string): never => { throw new TraceUsageError(m); };
/** The output could not be written (--out): mxfsctl says so and exits 1. */
export class TraceOutputError extends Error {}

/**
 * "500ms", "10s", "5m", "2h", "1d" -> ms; or an ISO date -> ms ago. A time before 1970 (a
 * duration longer than that) is 1970: everything.
 */
export function parseSince(s: string, now = Date.now()): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (m) return Math.max(0, now - Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 }[m[2] as 'ms']!);
  const t = Date.parse(s);
  if (/^\d{4}-\d\d-\d\d/.test(s) && Number.isFinite(t)) return Math.max(0, t);
  return usage(`--since wants a duration (500ms, 10s, 5m, 2h, 1d) or an ISO date, got '${s}'`);
}

/** --actor and --type as the daemon takes them (validateTraceFilter): 1..max characters. */
function textArg(name: string, v: string, max: number): string {
  if (v.length === 0 || v.length > max) usage(`${name} wants 1..${max} characters, got ${v.length}`);
  return v;
}

function filterOf(a: TraceArgs): TraceFilter {
  const f: TraceFilter = {};
  if (a.resource !== undefined) f.resource = a.resource;
  if (a.lockspace !== undefined) f.lockspace = a.lockspace;
  if (a.actor !== undefined) f.actor = textArg('--actor', a.actor, 128);
  if (a.type !== undefined) f.type = textArg('--type', a.type, 64);
  if (a.since !== undefined) f.since = parseSince(a.since);
  if (a.trace !== undefined) {
    const id = parseTraceId(a.trace);
    if (id === undefined) usage(`--trace wants a trace id NODE.N or NODE.wN as printed, got '${a.trace}'`);
    f.trace = id;
  }
  return f;
}

function nodesOf(a: TraceArgs): number[] | undefined {
  if (a.node === undefined) return undefined;
  const ids = a.node.split(',').map((x) => x.trim());
  if (!ids.every((x) => /^\d{1,4}$/.test(x) && Number(x) >= 1 && Number(x) <= 1023)) usage(`--node wants node ids 1..1023, comma-separated, got '${a.node}'`);
  return [...new Set(ids.map(Number))];
}

function formatOf(a: TraceArgs): TraceFormat {
  const f = a.format ?? (a.json ? 'json' : 'text');
  if (!(TRACE_FORMATS as readonly string[]).includes(f)) usage(`--format must be one of ${TRACE_FORMATS.join(', ')}, got '${f}'`);
  if (f === 'mermaid' && a.resource === undefined) usage('--format mermaid draws one resource: give --resource');
  return f as TraceFormat;
}

/** The shortest pause between two polls of trace tail, ms. */
const MIN_TAIL_INTERVAL = 20;

function uintArg(name: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  if (!/^\d+$/.test(s) || Number(s) > 2 ** 31 - 1) usage(`${name} wants a whole number, got '${s}'`);
  return Number(s);
}

/** Reads every page from the asked nodes until none has more; the events merged causally. `missing`: nodes that did not answer; `unknown`: asked nodes not in the cluster. */
export async function readAll(c: MxfsClient, op: 'dump' | 'collect', filter: TraceFilter, nodes?: number[]): Promise<{ events: TraceEvent[]; missing: number[]; unknown: number[]; missed: number; enabled: boolean }> {
  const cursors: Record<string, number> = {};
  const all: TraceEvent[] = [];
  let missing: number[] = [];
  let unknown: number[] = [];
  let missed = 0;
  let enabled = false;
  let ask = nodes;
  for (let round = 0; round < 100000; round++) {
    const r = await c.trace(op, { filter, cursors, ...(ask ? { nodes: ask } : {}) }) as { enabled: boolean; pages: Record<string, WireTracePage>; missing: number[]; unknown?: number[] };
    enabled ||= r.enabled || Object.values(r.pages).some((p) => p.enabled);
    if (round === 0) { missing = r.missing; unknown = r.unknown ?? []; }
    const more: number[] = [];
    for (const [n, p] of Object.entries(r.pages)) {
      all.push(...p.events);
      missed += p.missed;
      cursors[n] = p.cursor;
      if (p.more) more.push(Number(n));
    }
    if (more.length === 0) break;
    ask = op === 'collect' ? more : undefined;
  }
  return { events: causalOrder(all), missing, unknown, missed, enabled };
}

function render(events: TraceEvent[], format: TraceFormat, a: TraceArgs, title: string, missing: number[]): string {
  switch (format) {
    case 'text': return events.map(eventLine).join('\n') + (events.length ? '\n' : '');
    case 'ndjson': return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
    case 'json': return JSON.stringify(events, null, 2) + '\n';
    case 'chrome': return JSON.stringify(toChromeTrace(events, { title, ...(missing.length ? { missing } : {}) })) + '\n';
    case 'mermaid': return toMermaid(events, a.resource!, a.lockspace);
    case 'html': return toHtml(events, { title });
  }
}

function emit(text: string, output?: string): void {
  if (output === undefined || output === '-') { process.stdout.write(text); return; }
  try {
    fs.writeFileSync(output, text);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TraceOutputError(`cannot write ${output}: ${err.code ?? err.message}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const noAnswer = (nodes: number[]) => `no answer from node${nodes.length > 1 ? 's' : ''} ${nodes.join(' ')}`;
const notInCluster = (nodes: number[]) => `node${nodes.length > 1 ? 's' : ''} ${nodes.join(' ')} ${nodes.length > 1 ? 'are' : 'is'} not in the cluster (neither the node asked nor one of its [peer]s)`;

export async function traceCommand(c: MxfsClient, sub: string | undefined, rest: string[], a: TraceArgs): Promise<void> {
  if (rest.length) usage(`'trace ${sub ?? ''}' takes no positional arguments`);
  switch (sub) {
    case 'status': {
      const st = await c.trace('status');
      if (a.json) { process.stdout.write(JSON.stringify(st, null, 2) + '\n'); return; }
      if (!st.enabled) { process.stdout.write(`node ${st.node}: tracing is off ([trace] enabled = false)\n`); return; }
      const s = st.stats;
      process.stdout.write(`node ${st.node}: tracing on  ring ${s.ringSize} events (seq ${s.first}..${s.last})  recorded ${s.recorded}  evicted ${s.evicted}  dropped ${s.dropped}${st.file ? `  file ${st.file}` : ''}\n`);
      return;
    }
    case 'dump': case 'collect': {
      const format = formatOf(a);
      if (sub === 'dump' && a.node !== undefined) usage(`'trace dump' reads the node you talk to; use 'trace collect --node N'`);
      if (a.output === '') usage('--out needs a file path (it was empty)');
      const r = await readAll(c, sub, filterOf(a), nodesOf(a));
      if (!r.enabled) process.stderr.write(`mxfsctl: tracing is off on ${sub === 'dump' ? 'this node' : 'every node asked'} ([trace] enabled = false)\n`);
      if (r.unknown.length) process.stderr.write(`mxfsctl: ${notInCluster(r.unknown)}\n`);
      if (r.missing.length) process.stderr.write(`mxfsctl: ${noAnswer(r.missing)}: the trace is partial\n`);
      if (r.missed) process.stderr.write(`mxfsctl: ${r.missed} events were overwritten in a ring while reading\n`);
      // An export kept for later says it lacks a node (the HTML page's and Perfetto's title).
      const lacking = [...r.missing, ...r.unknown];
      const partial = lacking.length ? `; partial: ${noAnswer(lacking)}` : '';
      emit(render(r.events, format, a, `MXFS trace (${sub}${a.resource ? ` ${a.resource}` : ''}, ${r.events.length} events${partial})`, lacking), a.output);
      return;
    }
    case 'tail': {
      const format = formatOf(a);
      if (format !== 'text' && format !== 'ndjson') usage(`'trace tail' prints text or ndjson`);
      const filter = filterOf(a);
      filter.since ??= Date.now();
      const nodes = nodesOf(a);
      const interval = uintArg('--interval', a.interval, 250);
      // A poll asks every node for a page: without a pause between them tail would keep the daemons busy.
      if (interval < MIN_TAIL_INTERVAL) usage(`--interval wants at least ${MIN_TAIL_INTERVAL} ms between polls, got ${interval}`);
      const count = a.count === undefined ? Infinity : uintArg('--count', a.count, 0);
      const cursors: Record<string, number> = {};
      let printed = 0;
      let stop = false;
      process.once('SIGINT', () => { stop = true; });
      let told = false;
      let silent = '';
      let saidUnknown = false;
      while (!stop && printed < count) {
        const r = await c.trace('collect', { filter, cursors, ...(nodes ? { nodes } : {}) }) as { enabled: boolean; pages: Record<string, WireTracePage>; missing: number[]; unknown?: number[] };
        if (!saidUnknown && r.unknown?.length) { process.stderr.write(`mxfsctl: ${notInCluster(r.unknown)}\n`); saidUnknown = true; }
        // A node that does not answer (stopped, cut off) is said once, and again when it answers.
        const now = r.missing.join(' ');
        if (now !== silent) {
          process.stderr.write(now ? `mxfsctl: ${noAnswer(r.missing)}: its events are not shown until it answers\n` : `mxfsctl: node${silent.includes(' ') ? 's' : ''} ${silent} answer${silent.includes(' ') ? '' : 's'} again\n`);
          silent = now;
        }
        // As dump and collect say it: otherwise tail waits in silence for events that never come.
        if (!told && !r.enabled && Object.values(r.pages).every((p) => !p.enabled)) {
          process.stderr.write(`mxfsctl: tracing is off on every node asked ([trace] enabled = false); nothing will be printed\n`);
          told = true;
        }
        const batch: TraceEvent[] = [];
        let more = false;
        for (const [n, p] of Object.entries(r.pages)) {
          batch.push(...p.events);
          cursors[n] = p.cursor;
          more ||= p.more;
          // Overwritten in the node's ring since the last poll: said, not skipped in silence.
          if (p.missed > 0) process.stderr.write(`mxfsctl: ${p.missed} events of node ${n} were overwritten in its ring before they could be read (raise [trace] ring_size or poll more often)\n`);
        }
        for (const e of causalOrder(batch)) {
          if (printed >= count) break;
          process.stdout.write(format === 'ndjson' ? JSON.stringify(e) + '\n' : eventLine(e) + '\n');
          printed++;
        }
        if (!more) await sleep(interval);
      }
      return;
    }
    default:
      usage(`'trace' needs one of: status, dump, collect, tail`);
  }
}

const age = (ms: number | undefined) => (ms === undefined ? '?' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

/** `mxfsctl why RESOURCE`: the answer to "why is my lock waiting?". */
export async function whyCommand(c: MxfsClient, resource: string, lockspace: string | undefined, json: boolean): Promise<void> {
  const w = await c.trace('why', { resource, ...(lockspace ? { lockspace } : {}) });
  if (json) { process.stdout.write(JSON.stringify(w, null, 2) + '\n'); return; }
  process.stdout.write(whyText(w));
}

export function whyText(w: any): string {
  const out: string[] = [];
  const name = `${w.lockspace}/${w.resource}`;
  const who = (l: any) => `${l.lockId} (owner ${l.owner}${l.client ? `, ${l.client}${l.pid ? ` pid ${l.pid}` : ''}` : ''} on node ${String(l.owner).split(':')[0]})`;
  const where = w.state === 'standalone' ? `node ${w.node} (standalone)` : `node ${w.master ?? '?'} in epoch ${w.epoch} (members ${w.members.join(' ') || '-'}; node ${w.node} is ${w.state})`;
  out.push(`${name}: mastered by ${where}`);
  const e = w.entry;
  // A resource rebuilt by a recovery knows its locks from then: one adopted from the records
  // (its time as old as the rebuild) was granted or queued before, how long before is not known.
  const since = (l: any) => (e?.rebuilt && typeof l.sinceMs === 'number' && l.sinceMs >= e.rebuilt.agoMs ? `at least ${age(l.sinceMs)} (from before the recovery)` : age(l.sinceMs));
  if (!e || (e.granted.length + e.converting.length + e.waiting.length === 0)) {
    out.push('  nobody holds or waits for it');
  } else {
    for (const l of e.granted) {
      out.push(`  held by ${who(l)} in ${l.mode}, token ${l.token}, for ${since(l)}`);
      if (l.bast) out.push(`    BAST sent ${age(l.bast.agoMs)} ago: another lock wants ${l.bast.mode}`);
    }
    for (const l of e.converting) {
      out.push(`  converting: ${who(l)} ${l.mode} -> ${l.requested}, waiting for ${since(l)}`);
      if (l.bast) out.push(`    BAST sent ${age(l.bast.agoMs)} ago: another lock wants ${l.bast.mode}`);
    }
    for (const l of e.waiting) {
      const blockers = [...e.granted, ...e.converting].filter((g: any) => g.mode !== null && !compatibleNames(g.mode, l.requested));
      out.push(`  waiting: ${who(l)} for ${l.requested}, for ${since(l)}${blockers.length ? `, blocked by ${blockers.map((b: any) => `${b.lockId} (${b.mode})`).join(', ')}` : ', behind earlier requests (FIFO)'}`);
    }
    if (e.rebuilt) out.push(`  rebuilt from ${e.rebuilt.records} record${e.rebuilt.records === 1 ? '' : 's'} by a recovery ${age(e.rebuilt.agoMs)} ago`);
  }
  const r = w.lastRecovery;
  out.push(r ? `  last recovery: epoch ${r.epoch}${r.done ? `, took ${r.ms} ms, ended ${age(r.agoMs)} ago` : `, running for ${age(r.agoMs)}${r.phase ? `, phase ${r.phase}` : ''}`}` : '  last recovery: none seen by this node');
  if (w.missing?.length) out.push(`  (no answer from node${w.missing.length > 1 ? 's' : ''} ${w.missing.join(' ')}: its view is not included)`);
  const t = w.trace;
  if (t?.events?.length) {
    out.push(`  recent traffic (${t.events.length} events, every node merged):`);
    for (const ev of t.events as TraceEvent[]) out.push(`    n${ev.node} ${ev.from} -> ${ev.to}: ${rawEventLabel(ev)}  [trace ${traceIdText(ev.trace)}]`);
  } else if (t && !t.enabled) out.push('  (tracing is off on this node: enable [trace] to see the recent traffic)');
  // Names (resource, lockspace, client) are printed with their control characters escaped, once.
  return out.map(printable).join('\n') + '\n';
}

function compatibleNames(a: string, b: string): boolean {
  const x = parseMode(a), y = parseMode(b);
  return x === undefined || y === undefined || compatible(x, y);
}
