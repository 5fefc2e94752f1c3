/**
 * Timestamp probes along the path of a lock message (measurement only; docs/benchmarks.md,
 * "Where a remote pair's time goes"). Off unless the environment names a directory in
 * MXFS_PROBE: then probe(label) keeps (CLOCK_MONOTONIC ns, label) in memory, and every 500 ms
 * and at exit appends them to DIR/<pid>-<threadId>.txt as `ns pid.thread label` lines. The
 * clock is the same in every thread and process of the machine, so the files of a client and
 * of several daemons (both threads each) merge into one timeline: bench/probe-report.ts cuts
 * it at the client's probes and prints the median gap before each step.
 *
 * Off, probe is an empty function: a call per step of a lock message and nothing else.
 * Labels: `m.` the lock engine's thread, `w.` the cluster worker thread, `c.` the client.
 */
import fs from 'node:fs';
import { threadId } from 'node:worker_threads';

const dir = process.env.MXFS_PROBE;
const times: bigint[] = [];
const labels: string[] = [];

function flush(): void {
  if (!dir || times.length === 0) return;
  let text = '';
  for (let i = 0; i < times.length; i++) text += `${times[i]} ${process.pid}.${threadId} ${labels[i]}\n`;
  times.length = 0;
  labels.length = 0;
  fs.appendFileSync(`${dir}/${process.pid}-${threadId}.txt`, text);
}

/** Records the time of a step: `label`, or `label.detail` (joined only when probes are on). */
export const probe: (label: string, detail?: string) => void = dir
  ? (label, detail) => { times.push(process.hrtime.bigint()); labels.push(detail === undefined ? label : `${label}.${detail}`); }
  : () => undefined;

if (dir) {
  setInterval(flush, 500).unref();
  process.on('exit', flush);
}
