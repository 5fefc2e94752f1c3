/**
 * The least a lock server written in Node can do per request on mxfsd's client socket: the
 * reference `bench/local-ref.ts` measures mxfsd against (docs/benchmarks.md, "What a Node
 * daemon can do at best"). It speaks the client frame format well enough for the MXFS client
 * library's hello, lock, unlock and heartbeats: each request is decoded, looked up in one
 * Map of name -> holder, answered (encoded, one write). No actors, no validation, no queue
 * (a lock held by another client is refused NOTQUEUED), no timers, no metrics, no eviction.
 * It is not a lock manager: a yardstick for the per-request cost of everything else.
 *
 * Usage: node dist/bench/min-lock-server.js SOCKET [--echo] [--validate] [--defer] [--retain]
 *   --echo: write back every chunk read, as is (the transport alone, for scale).
 * Each of the others adds one piece of what mxfsd does, to see what it costs:
 *   --validate: every request checked as mxfsd checks it (validateClientRequest, invalidUtf8Fields);
 *   --defer: requests handled from a setImmediate after the read, as mxfsd's actor scheduler does;
 *   --retain: an object per name kept after its unlock for idle_evict_ms (60 s) in a queue, as
 *     mxfsd keeps an idle resource (fresh names then pile up, as they do in mxfsd).
 * Prints "ready" on stdout once listening.
 */
import fs from 'node:fs';
import net from 'node:net';
import { encodeFrame, FrameDecoder, decodeTransientPayload } from '../src/wire/frame';
import { readIntoBuffer } from '../src/util/socket-read';
import { CLIENT_PROTOCOL_VERSION, validateClientRequest } from '../src/wire/client-protocol';
import { invalidUtf8Fields } from '../src/wire/utf8-fields';

const MAX_FRAME = 1024 * 1024;
const LVB = Buffer.alloc(32);

function main(): void {
  const sockPath = process.argv[2];
  if (!sockPath) throw new Error('usage: min-lock-server SOCKET [--echo]');
  const echo = process.argv.includes('--echo');
  const validate = process.argv.includes('--validate');
  const defer = process.argv.includes('--defer');
  const retain = process.argv.includes('--retain');
  /** --retain: name -> its idle record, oldest first; dropped 60 s after they went idle. */
  const idle = new Map<string, { since: number; tokens: number; lvb: Buffer | undefined }>();
  if (retain) setInterval(() => { const t = performance.now() - 60000; for (const [k, v] of idle) { if (v.since > t) break; idle.delete(k); } }, 1000).unref();
  try { fs.unlinkSync(sockPath); } catch { /* none */ }
  const held = new Map<string, number>(); // "lockspace\0resource" -> session
  const readBuf = Buffer.allocUnsafe(64 * 1024);
  let sessions = 0;
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    if (echo) {
      sock.on('data', (d) => sock.write(d));
      sock.resume();
      return;
    }
    const session = ++sessions;
    const mine = new Map<number, string>(); // client lock id -> key
    let token = 0;
    const dec = new FrameDecoder(MAX_FRAME);
    const onBody = (body: Buffer) => {
      const raw = decodeTransientPayload(body);
      const req = (validate ? validateClientRequest(raw, invalidUtf8Fields(body)) : raw) as { type: string; id: number; lockId: number; lockspace: string; resource: string; mode: number; seq: number };
      if (defer) setImmediate(() => answer(req)); else answer(req);
    };
    const answer = (req: { type: string; id: number; lockId: number; lockspace: string; resource: string; mode: number; seq: number }) => {
      let out: unknown;
      switch (req.type) {
        case 'hello':
          out = { type: 'reply', id: req.id, ok: true, data: { node: 1, nodeName: 'ref', version: CLIENT_PROTOCOL_VERSION, session, keepaliveMs: 5000, lostAfterMs: 15000, lvbSize: LVB.length, maxFrameBytes: MAX_FRAME } };
          break;
        case 'hb':
          out = { type: 'hb', ack: req.seq };
          break;
        case 'lock': {
          const key = `${req.lockspace}\0${req.resource}`;
          if (held.has(key)) { out = { type: 'reply', id: req.id, ok: false, code: 'NOTQUEUED', message: 'held' }; break; }
          held.set(key, session);
          if (retain) idle.delete(key);
          mine.set(req.lockId, key);
          out = { type: 'reply', id: req.id, ok: true, grant: { mode: req.mode, token: ++token, lvb: LVB, lvbValid: false } };
          break;
        }
        case 'unlock': {
          const key = mine.get(req.lockId);
          if (key === undefined) { out = { type: 'reply', id: req.id, ok: false, code: 'NOTFOUND', message: 'no such lock' }; break; }
          mine.delete(req.lockId);
          held.delete(key);
          if (retain) idle.set(key, { since: performance.now(), tokens: token, lvb: undefined });
          out = { type: 'reply', id: req.id, ok: true };
          break;
        }
        default:
          out = { type: 'reply', id: req.id, ok: false, code: 'INVALID', message: `not supported: ${req.type}` };
      }
      sock.write(encodeFrame(out, MAX_FRAME));
    };
    readIntoBuffer(sock, readBuf, (n, buf) => { dec.pushRawTransient(buf.subarray(0, n), onBody); return true; });
    sock.on('error', () => { /* the client went away */ });
    sock.on('close', () => { for (const key of mine.values()) held.delete(key); });
  });
  server.listen(sockPath, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
}

main();
