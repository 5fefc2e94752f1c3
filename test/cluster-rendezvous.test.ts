/** Rendezvous hashing: exact 64-bit arithmetic, determinism, minimal movement on removal
 *  (property test), even distribution, and its speed. */
import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mix64, rendezvousOrder, rendezvousOwner, resourceHash } from '../src/cluster/rendezvous';

const M64 = (1n << 64n) - 1n;
const big = ([hi, lo]: [number, number]) => (BigInt(hi) << 32n) | BigInt(lo);

function fnvRef(ls: string, name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of [...Buffer.from(ls, 'utf8'), 0, ...Buffer.from(name, 'utf8')]) { h ^= BigInt(b); h = (h * 0x100000001b3n) & M64; }
  return h;
}
function mixRef(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

describe('rendezvous hashing', () => {
  it('FNV-1a 64 and the splitmix64 mix match a BigInt reference', () => {
    fc.assert(fc.property(fc.string(), fc.string({ unit: 'grapheme' }), (ls, name) => big(resourceHash(ls, name)) === fnvRef(ls, name)), { numRuns: 500 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (hi, lo) =>
      big(mix64(hi, lo)) === mixRef((BigInt(hi) << 32n) | BigInt(lo))), { numRuns: 2000 });
    expect(fnvRef('', '').toString(16)).to.equal('af63bd4c8601b7df'); // FNV-1a 64 of one NUL byte
  });

  it('is deterministic and independent of the member list order', () => {
    const a = rendezvousOwner('default', 'inode:42', [1, 2, 3, 4, 5]);
    expect(rendezvousOwner('default', 'inode:42', [5, 3, 1, 4, 2])).to.equal(a);
    expect(rendezvousOrder('default', 'inode:42', [5, 3, 1, 4, 2])[0]).to.equal(a);
    expect(rendezvousOwner('default', 'inode:42', [7])).to.equal(7);
    expect(() => rendezvousOwner('x', 'y', [])).to.throw(/no members/);
    // The lockspace is part of the key: the same name in two lockspaces is hashed apart.
    expect(big(resourceHash('a', 'bc'))).to.not.equal(big(resourceHash('ab', 'c')));
  });

  it('removing a node moves only the resources it mastered; adding one moves only what it wins', () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 1023 }), { minLength: 2, maxLength: 16 }),
      fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 24 })), { minLength: 1, maxLength: 60 }),
      fc.nat(),
      (members, resources, pick) => {
        const gone = members[pick % members.length];
        const rest = members.filter((m) => m !== gone);
        for (const [ls, name] of resources) {
          const before = rendezvousOwner(ls, name, members);
          const after = rendezvousOwner(ls, name, rest);
          if (before !== gone && after !== before) return false;
          if (before === gone && after === gone) return false;
          // Re-adding: only resources the new node wins move, and they move to it.
          if (before !== after && before !== gone) return false;
        }
        return true;
      }), { numRuns: 300 });
  });

  it('spreads resources evenly (5 nodes, 100k names: every node within 3% of 1/5)', () => {
    const members = [1, 2, 3, 4, 5];
    const count = new Map<number, number>();
    const N = 100000;
    for (let i = 0; i < N; i++) {
      const o = rendezvousOwner('default', `inode:${i}`, members);
      count.set(o, (count.get(o) ?? 0) + 1);
    }
    for (const m of members) expect(Math.abs(count.get(m)! / N - 0.2), `node ${m}: ${count.get(m)}`).to.be.below(0.006);
    console.log(`      shares: ${members.map((m) => (count.get(m)! / N * 100).toFixed(2) + '%').join(' ')}`);
  });

  it('measures the cost of a lookup (vs sha256)', () => {
    const members = [1, 2, 3, 4, 5];
    const names = Array.from({ length: 1000 }, (_, i) => `inode:${1000000 + i * 7919}`);
    let sink = 0;
    for (let i = 0; i < 20000; i++) sink += rendezvousOwner('default', names[i % 1000], members); // warm up
    const N = 200000;
    let t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) sink += rendezvousOwner('default', names[i % 1000], members);
    const own = Number(process.hrtime.bigint() - t) / N;
    t = process.hrtime.bigint();
    for (let i = 0; i < N / 10; i++) for (const m of members) sink += createHash('sha256').update(`default\0${names[i % 1000]}\0${m}`).digest().readUInt32BE(0) & 1;
    const sha = Number(process.hrtime.bigint() - t) / (N / 10);
    console.log(`      rendezvousOwner over 5 members: ${own.toFixed(0)} ns/op; the same with sha256 per member: ${sha.toFixed(0)} ns/op (sink ${sink % 2})`);
    expect(own).to.be.below(sha);
  });
});
