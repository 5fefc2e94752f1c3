/**
 * Plain text for trace events (mxfsctl trace tail/dump/collect --format text): one line each,
 * wall time, node, sequence (and a worker event's number, w) and Lamport clock, sender -> receiver, type, key fields, trace id.
 */
import { modeText, traceIdText, TraceEvent } from './event';

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * Text with its control characters escaped (\n, \u001b...): resource, lockspace and client
 * names are anyone's bytes, and printed raw a newline forged a line of the trace and an escape
 * sequence reached the operator's terminal. A backslash is doubled, so that a name spelled
 * with a backslash and an n reads apart from one with a newline.
 */
export function printable(s: string): string {
  return s.replace(CONTROL, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function clock(wall: number): string {
  const d = new Date(wall);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** The message and its key fields, e.g. "route/request default/r1 EX lock 1:4/1", printable. */
export function eventLabel(e: TraceEvent): string {
  return printable(rawEventLabel(e));
}

/** eventLabel() as the names are (for text that is made printable as a whole: escaped once). */
export function rawEventLabel(e: TraceEvent): string {
  const parts = [e.sub !== undefined ? `${e.type}/${e.sub}` : e.type];
  if (e.res !== undefined) parts.push(e.ls !== undefined ? `${e.ls}/${e.res}` : e.res);
  const m = modeText(e.mode);
  if (m) parts.push(m);
  if (e.token !== undefined) parts.push(`token ${e.token}`);
  if (e.lock !== undefined) parts.push(`lock ${e.lock}`);
  if (e.req !== undefined) parts.push(`req ${e.req}`);
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch}`);
  if (e.info !== undefined) parts.push(`(${e.info})`);
  return parts.join(' ');
}

export function eventLine(e: TraceEvent): string {
  const src = e.srcNode !== undefined ? ` <- n${e.srcNode}@${e.srcLc}` : '';
  return `${clock(e.wall)} n${e.node} #${e.seq}${e.w !== undefined ? ` w${e.w}` : ''} lc ${e.lc} ${e.kind.padEnd(10)} ${printable(`${e.from} -> ${e.to}  ${rawEventLabel(e)}`)}  [trace ${traceIdText(e.trace)}${e.cause !== undefined ? ` cause #${e.cause}` : ''}${src}]`;
}
