/** The JavaScript HMAC-SHA256 of the frame MACs (src/cluster/hmac-sha256.ts) gives node:crypto's
 *  bytes for every key and message length: across the block and padding boundaries, keys longer
 *  than a block, the hand-over to node:crypto above SMALL_MAX, and the scratch reused between
 *  calls of different lengths. */
import { expect } from 'chai';
import fc from 'fast-check';
import { createHmac, randomBytes } from 'node:crypto';
import { hmacSha256, macKey, SMALL_MAX } from '../src/cluster/hmac-sha256';

const reference = (key: Buffer, prefix: Buffer, msg: Buffer) => createHmac('sha256', key).update(prefix).update(msg).digest();

describe('HMAC-SHA256 in JavaScript (frame MACs)', () => {
  it('equals node:crypto at every message length up to past SMALL_MAX, 8-byte prefix', () => {
    const key = randomBytes(32), k = macKey(key), prefix = randomBytes(8);
    const bad: number[] = [];
    for (let len = 0; len <= SMALL_MAX + 80; len++) {
      const msg = randomBytes(len);
      if (!hmacSha256(k, prefix, msg).equals(reference(key, prefix, msg))) bad.push(len);
    }
    expect(bad, 'lengths whose MAC differs').to.deep.equal([]);
  });

  it('equals node:crypto for random keys (shorter than, equal to and longer than a block), prefixes, messages and truncations', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 150 }), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: SMALL_MAX + 200 }), fc.integer({ min: 1, max: 32 }),
      (key, prefix, msg, out) => {
        const [kb, pb, mb] = [Buffer.from(key), Buffer.from(prefix), Buffer.from(msg)];
        const mac = hmacSha256(macKey(kb), pb, mb, out);
        return mac.length === out && mac.equals(reference(kb, pb, mb).subarray(0, out));
      }), { numRuns: 400 });
  });

  it('one key made ready serves many messages, and changing the caller\'s key buffer afterwards does not change it', () => {
    const key = randomBytes(32), copy = Buffer.from(key), k = macKey(key);
    const msgs = [randomBytes(300), randomBytes(5), randomBytes(SMALL_MAX + 1), randomBytes(64)];
    key.fill(0);
    for (const m of msgs) expect(hmacSha256(k, Buffer.alloc(8), m).equals(reference(copy, Buffer.alloc(8), m))).to.equal(true);
  });
});
