/**
 * The least a lock server written in Node can do per request on mxfsd's client socket: the
 * reference `bench/local-ref.ts` measures mxfsd against (docs/benchmarks.md, "What a Node
 * daemon can do at best"). It speaks the client frame format well enough for the MXFS client
 * library's hello, lock, unlock and heartbeats: each request is decoded, looked up in one
 * Map of name -> holder, answered (encoded, one write). No actors, no validation, no queue
 * (a lock held by another client is refused NOTQUEUED), no timers, no metrics, no eviction.
 * It is not a lock manager: a yardstick for the per-request cost of everything else.
 *
 * Usage: node dist/bench/min-lock-server.js SOCKET [--echo]
 *   --echo: write back every chunk read, as is (the transport alone, for scale).
 * Prints "ready" on stdout once listening.
 */
import fs from 'node:fs';
import net from 'node:net';
import { encodeFrame, FrameDecoder, decodeTransientPayload } from '../src/wire/frame';
import { readIntoBuffer } from '../src/util/socket-read';
import { CLIENT_PROTOCOL_VERSION } from '../src/wire/client-protocol';

const MAX_FRAME = 1024 * 1024;
const LVB = Buffer.alloc(32);

function main(): void {
  const sockPath = process.argv[2];
  if (!sockPath) throw new Error('usage: min-lock-server SOCKET [--echo]');
  const echo = process.argv.includes('--echo');
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
      const req = decodeTransientPayload(body) as { type: string; id: number; lockId: number; lockspace: string; resource: string; mode: number; seq: number };
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
          mine.set(req.lockId, key);
          out = { type: 'reply', id: req.id, ok: true, grant: { mode: req.mode, token: ++token, lvb: LVB, lvbValid: false } };
          break;
        }
        case 'unlock': {
          const key = mine.get(req.lockId);
          if (key === undefined) { out = { type: 'reply', id: req.id, ok: false, code: 'NOTFOUND', message: 'no such lock' }; break; }
          mine.delete(req.lockId);
          held.delete(key);
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
