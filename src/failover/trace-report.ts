/**
 * The merged trace of a failed scenario, attached to its report (docs/failover-testing.md):
 * every node of a run traces to its own NDJSON files ([trace] in TRACE_CONFIG); when the
 * checker finds a violation or the run aborts, the files of every node (killed ones too: the
 * files outlive the process) are merged into one causally ordered timeline and written to
 * REPORT/trace/ as merged.ndjson, perfetto.json (Perfetto, chrome://tracing) and
 * timeline.html (the newest events).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TraceEvent } from '../trace/event';
import { validateTraceEvent } from '../trace/event';
import { readTraceFiles } from '../trace/file-sink';
import { causalOrder } from '../trace/merge';
import { toChromeTrace } from '../trace/export-chrome';
import { toHtml } from '../trace/export-html';

/** Appended to every node's config in a failover run (paths relative to the node's directory). */
export const TRACE_CONFIG = '[trace]\nenabled = true\nring_size = 65536\nfile = trace.ndjson\nfile_max_bytes = 16777216\nfile_keep = 2\n';
export const TRACE_FILE = 'trace.ndjson';
/** Newest events kept per node when merging (bounds memory), and drawn in the HTML page. */
const MAX_EVENTS_PER_NODE = 150000;
const HTML_EVENTS = 5000;

/**
 * Merges the nodes' trace files into REPORT/trace/. `nodes`: the harness's node id and that
 * node's directory (standalone daemons all call themselves node 1: the harness's id is used).
 * Returns a one-line summary, or undefined when no node left a trace.
 */
export function attachTrace(nodes: Array<{ id: number; dir: string }>, reportDir: string, title: string): string | undefined {
  const all: TraceEvent[] = [];
  let bad = 0;
  for (const nd of nodes) {
    const { lines } = readTraceFiles(path.join(nd.dir, TRACE_FILE));
    for (const l of lines.slice(-MAX_EVENTS_PER_NODE)) {
      try { all.push({ ...validateTraceEvent(JSON.parse(l)), node: nd.id }); } catch { bad++; } // a line cut by a kill
    }
  }
  if (all.length === 0) return undefined;
  const t = causalOrder(all);
  const dir = path.join(reportDir, 'trace');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'merged.ndjson'), t.map((e) => JSON.stringify(e)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'perfetto.json'), JSON.stringify(toChromeTrace(t, { title })));
  fs.writeFileSync(path.join(dir, 'timeline.html'), toHtml(t, { title, maxEvents: HTML_EVENTS }));
  return `trace: ${t.length} events from ${new Set(t.map((e) => e.node)).size} nodes merged in ${dir} (merged.ndjson, perfetto.json, timeline.html)${bad ? `; ${bad} unreadable lines skipped` : ''}`;
}
