/**
 * HMAC-SHA256 of small messages in JavaScript, with the key's two padded blocks hashed once
 * (RFC 2104, FIPS 180-4). Every peer frame carries a MAC (auth.ts, frameMac): through
 * node:crypto each one builds an Hmac object, and OpenSSL sets up three digest contexts and
 * hashes the key's two padded blocks again before the frame's own bytes. On the lock path
 * (a remote lock+unlock pair seals and opens about four frames per node) that setup was
 * ~12 % of a main thread's samples (docs/benchmarks.md, "Per-message work on the lock
 * links"). Here a key's inner and outer states are computed once (macKey) and a MAC of a
 * small frame is three or four compressions of plain integer arithmetic, with no object
 * and no call into C++.
 *
 * Large messages (a recovery batch, an inspection reply) go to node:crypto, whose SHA-256
 * is faster per byte: SMALL_MAX bounds the JavaScript path. Both give the same bytes
 * (test/hmac-sha256.test.ts checks them against node:crypto).
 *
 * Why not a library: @noble/hashes 1.8 (audited, pure JS) with a keyed HMAC cloned per frame
 * took 3.0 µs per 100-byte frame hot against node:crypto's 2.1 and this file's 1.2 (2026-12-03,
 * same loop): it redoes no key setup either, but is slower than node:crypto, so it would not cut.
 *
 * Owns no messages. Not constant-time in the message length (neither is OpenSSL's); no
 * branch depends on the key or the message bytes.
 */
import { createHash, createHmac } from 'node:crypto';

/** Longest message (bytes) hashed here; longer ones go to node:crypto. */
export const SMALL_MAX = 512;

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const W = new Int32Array(64);

/** SHA-256's compression of the 64-byte block at b[off] into the state h. */
function compress(h: Int32Array, b: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + 4 * i;
    W[i] = (b[j]! << 24) | (b[j + 1]! << 16) | (b[j + 2]! << 8) | b[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!, y = W[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = h[0]!, bb = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
    hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0; h[1] = (h[1]! + bb) | 0; h[2] = (h[2]! + c) | 0; h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0; h[5] = (h[5]! + f) | 0; h[6] = (h[6]! + g) | 0; h[7] = (h[7]! + hh) | 0;
}

/** A key made ready: the states after its inner and outer padded blocks, and the key itself (for large messages). */
export interface MacKey { readonly key: Buffer; readonly inner: Int32Array; readonly outer: Int32Array }

export function macKey(key: Buffer): MacKey {
  const k = new Uint8Array(64);
  // RFC 2104: a key longer than the block is hashed first.
  k.set(key.length > 64 ? createHash('sha256').update(key).digest() : key);
  const ipad = new Uint8Array(64), opad = new Uint8Array(64);
  for (let i = 0; i < 64; i++) { ipad[i] = k[i]! ^ 0x36; opad[i] = k[i]! ^ 0x5c; }
  const inner = Int32Array.from(IV), outer = Int32Array.from(IV);
  compress(inner, ipad, 0);
  compress(outer, opad, 0);
  return { key: Buffer.from(key), inner, outer };
}

/** Scratch: the message being hashed (prefix | msg | padding), and the running state. */
const scratch = new Uint8Array(SMALL_MAX + 72); // the message and its padding (at most 72 bytes)
const state = new Int32Array(8);

/** Pads the `len` bytes at scratch[0] (after `pre` bytes already hashed) and hashes every block into state. */
function finish(len: number, pre: number): void {
  const bits = (len + pre) * 8;
  let end = len;
  scratch[end++] = 0x80;
  while ((end & 63) !== 56) scratch[end++] = 0;
  const hi = Math.floor(bits / 0x100000000), lo = bits >>> 0;
  scratch[end++] = hi >>> 24; scratch[end++] = (hi >>> 16) & 0xff; scratch[end++] = (hi >>> 8) & 0xff; scratch[end++] = hi & 0xff;
  scratch[end++] = lo >>> 24; scratch[end++] = (lo >>> 16) & 0xff; scratch[end++] = (lo >>> 8) & 0xff; scratch[end++] = lo & 0xff;
  for (let off = 0; off < end; off += 64) compress(state, scratch, off);
}

/**
 * The first `outBytes` bytes of HMAC-SHA256(key, prefix | msg), in a new Buffer.
 */
export function hmacSha256(k: MacKey, prefix: Uint8Array, msg: Uint8Array, outBytes = 32): Buffer {
  const len = prefix.length + msg.length;
  if (len > SMALL_MAX) return createHmac('sha256', k.key).update(prefix).update(msg).digest().subarray(0, outBytes);
  scratch.set(prefix, 0);
  scratch.set(msg, prefix.length);
  state.set(k.inner);
  finish(len, 64);
  // The inner digest is the outer hash's message.
  for (let i = 0; i < 8; i++) {
    const w = state[i]!;
    scratch[4 * i] = w >>> 24; scratch[4 * i + 1] = (w >>> 16) & 0xff; scratch[4 * i + 2] = (w >>> 8) & 0xff; scratch[4 * i + 3] = w & 0xff;
  }
  state.set(k.outer);
  finish(32, 64);
  const out = Buffer.allocUnsafe(outBytes);
  for (let i = 0; i < outBytes; i++) out[i] = (state[i >>> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
  return out;
}
