/**
 * Rendezvous (highest-random-weight) hashing: which live member masters a resource.
 *
 * Owns no messages; a pure function every node evaluates identically from the committed
 * member list, so no directory traffic is needed to find a master. Removing a member moves
 * only the resources that member mastered; adding one moves only those it now wins.
 *
 * weight(node, resource) = mix64(fnv1a64(lockspace \0 name) ^ nodeSalt(node)), max wins
 * (ties, astronomically rare, go to the lower node id). The resource hash is computed once
 * per lookup, so a lookup costs one FNV-1a pass over the name plus one 64-bit mix per member.
 * 64-bit arithmetic is done on two 32-bit halves with Math.imul (no BigInt: ~10x faster).
 */

const FNV_OFFSET_HI = 0xcbf29ce4;
const FNV_OFFSET_LO = 0x84222325;

/** FNV-1a 64-bit over the UTF-8 bytes of lockspace, a NUL, then name. Returns [hi, lo]. */
export function resourceHash(lockspace: string, name: string): [number, number] {
  // Locals only: module-level number state would be boxed on every store.
  let hi = FNV_OFFSET_HI;
  let lo = FNV_OFFSET_LO;
  for (let part = 0; part < 3; part++) {
    const str = part === 0 ? lockspace : part === 1 ? '\0' : name;
    for (let i = 0; i < str.length; i++) {
      let c = str.charCodeAt(i);
      let n = 1, b0 = c, b1 = 0, b2 = 0, b3 = 0;
      if (c >= 0x80) {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
          const d = str.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
        }
        if (c < 0x800) { n = 2; b0 = 0xc0 | (c >> 6); b1 = 0x80 | (c & 63); }
        else if (c < 0x10000) { n = 3; b0 = 0xe0 | (c >> 12); b1 = 0x80 | ((c >> 6) & 63); b2 = 0x80 | (c & 63); }
        else { n = 4; b0 = 0xf0 | (c >> 18); b1 = 0x80 | ((c >> 12) & 63); b2 = 0x80 | ((c >> 6) & 63); b3 = 0x80 | (c & 63); }
      }
      for (let k = 0; k < n; k++) {
        lo = (lo ^ (k === 0 ? b0 : k === 1 ? b1 : k === 2 ? b2 : b3)) >>> 0;
        // (hi,lo) * FNV prime 0x100000001b3 = 2^40 + 0x1b3 mod 2^64: lo * 2^40 adds lo << 8 to
        // the high word; lo * 0x1b3 < 2^41 is exact in a double, so its carry is a division.
        const p = lo * 0x1b3;
        hi = (Math.imul(hi, 0x1b3) + Math.floor(p / 4294967296) + (lo << 8)) >>> 0;
        lo = p >>> 0;
      }
    }
  }
  return [hi, lo];
}

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers. */
function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  const carry = ((lolo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

// Result registers of mixInto: a typed array, so stores neither allocate nor box.
const REG = new Uint32Array(2);

/** splitmix64 finaliser of (hi, lo) into REG: a strong 64-bit avalanche. */
function mixInto(hi: number, lo: number): void {
  let l = (lo ^ ((lo >>> 30) | (hi << 2))) >>> 0;
  let h = (hi ^ (hi >>> 30)) >>> 0;
  // * 0xbf58476d1ce4e5b9
  let nh = (mulhi32(l, 0x1ce4e5b9) + Math.imul(h, 0x1ce4e5b9) + Math.imul(l, 0xbf58476d)) >>> 0;
  l = Math.imul(l, 0x1ce4e5b9) >>> 0;
  h = nh;
  l = (l ^ ((l >>> 27) | (h << 5))) >>> 0;
  h = (h ^ (h >>> 27)) >>> 0;
  // * 0x94d049bb133111eb
  nh = (mulhi32(l, 0x133111eb) + Math.imul(h, 0x133111eb) + Math.imul(l, 0x94d049bb)) >>> 0;
  l = Math.imul(l, 0x133111eb) >>> 0;
  h = nh;
  REG[1] = l ^ ((l >>> 31) | (h << 1));
  REG[0] = h ^ (h >>> 31);
}

/** splitmix64 finaliser (exported for the reference test). */
export function mix64(hi: number, lo: number): [number, number] {
  mixInto(hi, lo);
  return [REG[0], REG[1]];
}

// Per-node salts, computed once per id: the id pushed through the mix, so ids 1,2,3 are far apart.
const SALT_HI = new Uint32Array(1024);
const SALT_LO = new Uint32Array(1024);
const SALT_SET = new Uint8Array(1024);

function salt(nodeId: number): void {
  if (nodeId >= 0 && nodeId < 1024 && SALT_SET[nodeId]) { REG[0] = SALT_HI[nodeId]; REG[1] = SALT_LO[nodeId]; return; }
  mixInto((0x9e3779b9 ^ nodeId) >>> 0, Math.imul(nodeId, 0x85ebca6b) >>> 0);
  if (nodeId >= 0 && nodeId < 1024) { SALT_HI[nodeId] = REG[0]; SALT_LO[nodeId] = REG[1]; SALT_SET[nodeId] = 1; }
}

/** Weight of node for a resource hash; compared as (hi, lo) unsigned. */
export function weight(rh: [number, number], nodeId: number): [number, number] {
  salt(nodeId);
  mixInto((rh[0] ^ REG[0]) >>> 0, (rh[1] ^ REG[1]) >>> 0);
  return [REG[0], REG[1]];
}

/** The member with the highest weight for (lockspace, name); throws on an empty member list. */
export function rendezvousOwner(lockspace: string, name: string, members: readonly number[]): number {
  if (members.length === 0) throw new Error('rendezvousOwner: no members');
  const [r0, r1] = resourceHash(lockspace, name);
  let best = -1, bh = -1, bl = -1;
  for (let i = 0; i < members.length; i++) {
    const id = members[i];
    salt(id);
    mixInto((r0 ^ REG[0]) >>> 0, (r1 ^ REG[1]) >>> 0);
    const h = REG[0], l = REG[1];
    if (h > bh || (h === bh && (l > bl || (l === bl && id < best)))) { best = id; bh = h; bl = l; }
  }
  return best;
}

/** Members ordered by descending weight: the owner first, then its successors (for replicas/fallback). */
export function rendezvousOrder(lockspace: string, name: string, members: readonly number[]): number[] {
  const rh = resourceHash(lockspace, name);
  return members
    .map((id) => ({ id, w: weight(rh, id) }))
    .sort((a, b) => (b.w[0] - a.w[0]) || (b.w[1] - a.w[1]) || (a.id - b.id))
    .map((e) => e.id);
}
