/**
 * Abusive clients: what a hostile or broken local client can do to mxfsd over its Unix
 * socket, written raw (frames built by hand, nothing validated on the way out) so that they
 * can send what the client library never would. Used by the failover scenario family
 * "abuse" (in child processes, see abuse-child.ts) and by bench/event-loop.ts.
 *
 *   flood-inspect        pipelines `locks` requests (each one fans out to every master)
 *   pipeline-disconnect  pipelines lock requests on distinct resources, then disconnects
 *   bad-fields           requests with oversized LVBs (to local and remote masters),
 *                        too-long, empty, NUL-containing and invalid-UTF-8 names, bad
 *                        modes and types, unknown request types — each followed by a good
 *                        request that must still be answered
 *   never-read           floods requests and never reads a reply
 *
 * Each returns an AbuseResult: what was sent, how each request was answered (grouped by
 * error code, with a few example messages), requests that got no answer, and whether and why
 * the daemon closed the connection. `unclear` lists the answers that were not a clear error
 * (a bad request accepted, a bad field not named, a request left unanswered on an open
 * connection): the abuse scenario requires it to be empty.
 */
import net from 'node:net';
import { encodeFrame, FrameDecoder } from '../wire/frame';
import { CLIENT_PROTOCOL_VERSION } from '../wire/client-protocol';
import { Mode } from '../dlm/modes';

export type AbuseKind = 'flood-inspect' | 'pipeline-disconnect' | 'bad-fields' | 'never-read';
export const ABUSE_KINDS: readonly AbuseKind[] = ['flood-inspect', 'pipeline-disconnect', 'bad-fields', 'never-read'];

export interface AbuseOptions {
  socket: string;
  /** Requests per round (flood-inspect: 20 000; pipeline-disconnect: 100 000; never-read: 20 000). */
  count?: number;
  /** Keep going for this long (flood-inspect, never-read, bad-fields: rounds); default: one round. */
  durationMs?: number;
  /** Resource name prefix (pipeline-disconnect, bad-fields). */
  prefix?: string;
  /** bad-fields: a resource mastered by another node and one mastered by this node (for the LVB cases). */
  remoteResource?: string;
  localResource?: string;
  /** The daemon's frame limit (bad-fields sends LVBs up to it). */
  maxFrameBytes?: number;
  /** Give up waiting for answers after this long (default 120 s). */
  answerTimeoutMs?: number;
}

export interface AbuseResult {
  kind: AbuseKind;
  sent: number;
  answered: number;
  ok: number;
  /** Error replies by code. */
  errors: Record<string, number>;
  /** A few error messages, one per code. */
  examples: Record<string, string>;
  /** Requests never answered (the connection was closed by the daemon, or the wait timed out). */
  unanswered: number;
  /** Set when the daemon closed the connection: its last 'lost' reason or the socket's. */
  cutOff?: string;
  /** Answers that were not a clear error where one was due (see the header). */
  unclear: string[];
  ms: number;
}

interface Reply { id: number; ok: boolean; code?: string; message?: string; data?: unknown }

/** A raw connection: sends any object (or bytes) as a frame, collects replies by id. */
export class RawClient {
  readonly sock: net.Socket;
  private dec = new FrameDecoder(64 * 1024 * 1024);
  private waiting = new Map<number, (r: Reply) => void>();
  private nextId = 1;
  closed?: string;
  lostReason?: string;
  private onCloseCbs: Array<() => void> = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (chunk: Buffer) => {
      let msgs: unknown[];
      try { msgs = this.dec.push(chunk); } catch (e) { this.close(`undecodable data from mxfsd: ${(e as Error).message}`); return; }
      for (const m of msgs as Array<Record<string, unknown>>) {
        if (m.type === 'reply') {
          const cb = this.waiting.get(m.id as number);
          this.waiting.delete(m.id as number);
          cb?.({ id: m.id as number, ok: m.ok === true, code: m.code as string | undefined, message: m.message as string | undefined, data: m.data });
        } else if (m.type === 'lost' && m.lockId === undefined) {
          this.lostReason = String(m.reason);
        }
      }
    });
    sock.on('error', () => { /* reported by close */ });
    sock.on('close', () => this.close(this.lostReason ? `mxfsd: ${this.lostReason}` : 'connection closed by mxfsd'));
  }

  static connect(path: string, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path);
      const t = setTimeout(() => { sock.destroy(); reject(new Error(`cannot connect to ${path}: timed out`)); }, timeoutMs);
      sock.once('connect', () => { clearTimeout(t); resolve(new RawClient(sock)); });
      sock.once('error', (e) => { clearTimeout(t); reject(e); });
    });
  }

  get pending(): number { return this.waiting.size; }

  onClose(cb: () => void): void { if (this.closed) cb(); else this.onCloseCbs.push(cb); }

  private close(why: string): void {
    if (this.closed) return;
    this.closed = why;
    this.sock.destroy();
    for (const cb of this.onCloseCbs.splice(0)) cb();
  }

  /** Sends a request (the id is filled in); the promise resolves with its reply, or undefined if the connection closes first. */
  request(req: Record<string, unknown>): Promise<Reply | undefined> {
    return this.requestFrame(encodeFrame({ ...req, id: this.nextId }, 1 << 30));
  }

  /** Sends ready-made frame bytes whose request id must be `this.peekId()`. */
  requestFrame(frame: Buffer): Promise<Reply | undefined> {
    const id = this.nextId++;
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.onClose(() => { if (this.waiting.delete(id)) resolve(undefined); });
      this.sock.write(frame);
    });
  }

  peekId(): number { return this.nextId; }

  async hello(name: string): Promise<void> {
    const r = await this.request({ type: 'hello', version: CLIENT_PROTOCOL_VERSION, client: name, pid: process.pid });
    if (!r?.ok) throw new Error(`hello refused: ${r?.message ?? this.closed}`);
  }

  /** Answers the daemon's keepalive expectations (a heartbeat is just a frame). */
  heartbeat(seq: number): void { if (!this.closed) this.sock.write(encodeFrame({ type: 'hb', seq }, 1 << 20)); }

  destroy(): void { this.close('closed by the client'); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Tally {
  readonly r: AbuseResult;
  private t0 = performance.now();
  constructor(kind: AbuseKind) {
    this.r = { kind, sent: 0, answered: 0, ok: 0, errors: {}, examples: {}, unanswered: 0, unclear: [], ms: 0 };
  }
  add(p: Promise<Reply | undefined>, expectError?: { field: string }): Promise<void> {
    this.r.sent++;
    return p.then((x) => {
      if (!x) { this.r.unanswered++; return; }
      this.r.answered++;
      if (x.ok) {
        this.r.ok++;
        if (expectError) this.unclear(`a request with a bad '${expectError.field}' was accepted`);
        return;
      }
      const code = x.code ?? '?';
      this.r.errors[code] = (this.r.errors[code] ?? 0) + 1;
      this.r.examples[code] ??= String(x.message ?? '');
      if (!x.message) this.unclear(`error ${code} without a message`);
      else if (expectError && !x.message.includes(expectError.field)) this.unclear(`error for a bad '${expectError.field}' does not name it: ${code} ${x.message}`);
    });
  }
  unclear(s: string): void { if (this.r.unclear.length < 20) this.r.unclear.push(s); }
  done(c: RawClient): AbuseResult {
    this.r.ms = Math.round(performance.now() - this.t0);
    if (c.closed && c.closed !== 'closed by the client') this.r.cutOff = c.closed;
    return this.r;
  }
}

/** Keeps the session alive from the daemon's point of view while the abuser waits. */
function keepalive(c: RawClient): () => void {
  let seq = 0;
  const t = setInterval(() => c.heartbeat(++seq), 100);
  return () => clearInterval(t);
}

async function settle(c: RawClient, pending: Array<Promise<void>>, timeoutMs: number): Promise<void> {
  await Promise.race([Promise.all(pending), sleep(timeoutMs)]);
}

export async function floodInspect(o: AbuseOptions): Promise<AbuseResult> {
  const c = await RawClient.connect(o.socket);
  const tally = new Tally('flood-inspect');
  await c.hello('abuse-flood-inspect');
  const stopHb = keepalive(c);
  const end = performance.now() + (o.durationMs ?? 0);
  const all: Array<Promise<void>> = [];
  do {
    const round: Array<Promise<void>> = [];
    for (let i = 0; i < (o.count ?? 20000) && !c.closed; i++) round.push(tally.add(c.request({ type: 'locks' })));
    all.push(...round);
    await settle(c, round, o.answerTimeoutMs ?? 120000);
  } while (performance.now() < end && !c.closed);
  stopHb();
  if (c.pending > 0 && !c.closed) tally.unclear(`${c.pending} inspection requests unanswered on an open connection`);
  const r = tally.done(c);
  c.destroy();
  await Promise.all(all);
  return r;
}

export async function pipelineDisconnect(o: AbuseOptions): Promise<AbuseResult> {
  const c = await RawClient.connect(o.socket);
  const tally = new Tally('pipeline-disconnect');
  await c.hello('abuse-pipeline');
  const stopHb = keepalive(c);
  const all: Array<Promise<void>> = [];
  const prefix = o.prefix ?? `abuse-${process.pid}-`;
  for (let i = 0; i < (o.count ?? 100000) && !c.closed; i++) {
    all.push(tally.add(c.request({ type: 'lock', lockId: i + 1, lockspace: 'default', resource: `${prefix}${i}`, mode: Mode.EX, noqueue: true })));
    if (i % 5000 === 4999) await new Promise((r) => setImmediate(r)); // let the socket drain now and then
  }
  await settle(c, all, o.answerTimeoutMs ?? 120000);
  stopHb();
  if (c.pending > 0 && !c.closed) tally.unclear(`${c.pending} lock requests unanswered on an open connection`);
  const r = tally.done(c);
  c.destroy(); // every granted lock must now be purged; what was unanswered counts as such
  await Promise.all(all);
  return r;
}

/** A msgpack str of `len` bytes whose bytes are then overwritten with invalid UTF-8. */
function withInvalidUtf8(req: Record<string, unknown>, field: string, id: number): Buffer {
  const marker = 'Z'.repeat(12);
  const frame = encodeFrame({ ...req, id, [field]: marker }, 1 << 20);
  const at = frame.indexOf(Buffer.from(marker));
  frame.fill(0xff, at, at + 4);
  frame[at + 4] = 0xc3; // a truncated two-byte sequence
  return frame;
}

export async function badFields(o: AbuseOptions): Promise<AbuseResult> {
  const c = await RawClient.connect(o.socket);
  const tally = new Tally('bad-fields');
  await c.hello('abuse-bad-fields');
  const stopHb = keepalive(c);
  const maxFrame = o.maxFrameBytes ?? 65536;
  const prefix = o.prefix ?? `abuse-bad-${process.pid}-`;
  const end = performance.now() + (o.durationMs ?? 0);
  let lockId = 1;
  let round = 0;
  do {
    round++;
    // Locks to convert and unlock with oversized LVBs: one on a remote master, one local.
    const held: number[] = [];
    for (const res of [o.remoteResource, o.localResource].filter((x): x is string => !!x)) {
      const id = lockId++;
      const r = await c.request({ type: 'lock', lockId: id, lockspace: 'default', resource: `${res}`, mode: Mode.EX, timeoutMs: 10000 });
      if (r?.ok) held.push(id);
    }
    const bad: Array<[Record<string, unknown> | ((id: number) => Buffer), string]> = [
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: 'x'.repeat(65), mode: Mode.EX }, 'resource'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: '', mode: Mode.EX }, 'resource'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: 'a\0b', mode: Mode.EX }, 'resource'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'y'.repeat(200), resource: `${prefix}ls`, mode: Mode.EX }, 'lockspace'],
      [(id) => withInvalidUtf8({ type: 'lock', lockId: lockId++, lockspace: 'default', mode: Mode.EX }, 'resource', id), 'resource'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: `${prefix}m`, mode: 9 }, 'mode'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: `${prefix}q`, mode: Mode.EX, noqueue: 'yes' }, 'noqueue'],
      [{ type: 'lock', lockId: -1, lockspace: 'default', resource: `${prefix}n`, mode: Mode.EX }, 'lockId'],
      [{ type: 'lock', lockId: lockId++, lockspace: 'default', resource: `${prefix}t`, mode: Mode.EX, timeoutMs: 2 ** 40 }, 'timeoutMs'],
      [{ type: 'explode', lockId: 1 }, 'type'],
      ...held.flatMap((id): Array<[Record<string, unknown>, string]> => [
        [{ type: 'convert', lockId: id, mode: Mode.PR, lvb: Buffer.alloc(maxFrame - 200, 7) }, 'lvb'],
        [{ type: 'unlock', lockId: id, lvb: Buffer.alloc(maxFrame - 200, 7) }, 'lvb'],
      ]),
    ];
    for (const [req, field] of bad) {
      if (c.closed) break;
      const p = typeof req === 'function' ? c.requestFrame(req(c.peekId())) : c.request(req);
      await tally.add(p, { field });
      // The connection must survive a bad request: a good one right after it is answered.
      const good = await c.request({ type: 'status' });
      if (!good && !c.closed) tally.unclear(`status after a bad '${field}' unanswered`);
      if (!good) tally.unclear(`the connection did not survive a bad '${field}' (${c.closed ?? 'no answer'})`);
    }
    for (const id of held) if (!c.closed) await c.request({ type: 'unlock', lockId: id });
  } while (performance.now() < end && !c.closed);
  stopHb();
  const r = tally.done(c);
  r.examples.rounds = String(round);
  c.destroy();
  return r;
}

export async function neverRead(o: AbuseOptions): Promise<AbuseResult> {
  const c = await RawClient.connect(o.socket);
  const tally = new Tally('never-read');
  await c.hello('abuse-never-read');
  c.sock.pause(); // from now on nothing is read: the daemon's answers pile up
  const end = performance.now() + (o.durationMs ?? 0);
  let seq = 0;
  do {
    for (let i = 0; i < (o.count ?? 20000) && !c.closed; i++) {
      void c.request({ type: i % 2 ? 'locks' : 'status' });
      tally.r.sent++;
      if (i % 100 === 0) c.heartbeat(++seq);
      if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
    }
    await sleep(200);
  } while (performance.now() < end && !c.closed);
  const r = tally.done(c);
  r.unanswered = r.sent; // it never looked
  c.destroy();
  return r;
}

export function runAbuse(kind: AbuseKind, o: AbuseOptions): Promise<AbuseResult> {
  switch (kind) {
    case 'flood-inspect': return floodInspect(o);
    case 'pipeline-disconnect': return pipelineDisconnect(o);
    case 'bad-fields': return badFields(o);
    case 'never-read': return neverRead(o);
  }
}
