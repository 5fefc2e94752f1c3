/**
 * Which fields of a msgpack map carry a string that is not valid UTF-8.
 *
 * Why: msgpackr decodes a string's bytes leniently — an invalid sequence (a stray byte, an
 * overlong form, an encoded surrogate) becomes U+FFFD — so two different byte strings can
 * decode to one JavaScript string. For lock names that would alias two locks. Names are
 * defined as UTF-8 text (docs/dlm-protocol.md, "Lockspaces and names"), so the daemon walks
 * the raw payload before trusting what msgpackr made of it and refuses the request.
 *
 * Takes: one frame payload that already decoded as msgpack (so it is well-formed; the walk
 * still checks every bound). Returns the top-level map keys whose value contains an invalid
 * string anywhere inside it, INVALID_KEY if a key itself is invalid, or WHOLE if the payload
 * is not a map and holds an invalid string. An empty set: every string is valid UTF-8.
 */
import { isUtf8 } from 'node:buffer';

/** Marks a map key that is itself not valid UTF-8 (its name cannot be reported). */
export const INVALID_KEY = '\0key';
/** Marks a payload that is not a map and holds an invalid string. */
export const WHOLE = '\0whole';

// What item() read of the item at hand: module fields, not a new object per item (this runs
// for every item of every client request; docs/benchmarks.md, "The local pair").
/** Bytes of the item's header (the type byte and any length). */
let head = 0;
/** Payload bytes after the header (strings, binaries, extensions, numbers). */
let body = 0;
/** Nested items that follow (array elements; map keys and values). */
let children = 0;
/** The item is a string. */
let str = false;

class Truncated extends Error {}

function set(h: number, b: number, c: number, s: boolean): void {
  head = h; body = b; children = c; str = s;
}

/** Reads the header of the item at `p` (msgpack type byte table) into head, body, children, str. */
function item(b: Buffer, p: number): void {
  if (p >= b.length) throw new Truncated();
  const t = b[p]!;
  if (t <= 0x7f || t >= 0xe0) return set(1, 0, 0, false); // fixint
  if (t <= 0x8f) return set(1, 0, 2 * (t & 0x0f), false); // fixmap
  if (t <= 0x9f) return set(1, 0, t & 0x0f, false); // fixarray
  if (t <= 0xbf) return set(1, t & 0x1f, 0, true); // fixstr
  switch (t) {
    case 0xc0: case 0xc2: case 0xc3: return set(1, 0, 0, false);
    case 0xc4: return set(2, u8(b, p), 0, false); // bin 8
    case 0xc5: return set(3, u16(b, p), 0, false);
    case 0xc6: return set(5, u32(b, p), 0, false);
    case 0xc7: return set(3, u8(b, p), 0, false); // ext 8 (+type byte)
    case 0xc8: return set(4, u16(b, p), 0, false);
    case 0xc9: return set(6, u32(b, p), 0, false);
    case 0xca: return set(1, 4, 0, false);
    case 0xcb: return set(1, 8, 0, false);
    case 0xcc: case 0xd0: return set(1, 1, 0, false);
    case 0xcd: case 0xd1: return set(1, 2, 0, false);
    case 0xce: case 0xd2: return set(1, 4, 0, false);
    case 0xcf: case 0xd3: return set(1, 8, 0, false);
    case 0xd4: return set(2, 1, 0, false); // fixext
    case 0xd5: return set(2, 2, 0, false);
    case 0xd6: return set(2, 4, 0, false);
    case 0xd7: return set(2, 8, 0, false);
    case 0xd8: return set(2, 16, 0, false);
    case 0xd9: return set(2, u8(b, p), 0, true); // str 8
    case 0xda: return set(3, u16(b, p), 0, true);
    case 0xdb: return set(5, u32(b, p), 0, true);
    case 0xdc: return set(3, 0, u16(b, p), false); // array 16
    case 0xdd: return set(5, 0, u32(b, p), false);
    case 0xde: return set(3, 0, 2 * u16(b, p), false); // map 16
    case 0xdf: return set(5, 0, 2 * u32(b, p), false);
    default: throw new Truncated(); // 0xc1: never used
  }
}

function u8(b: Buffer, p: number): number { need(b, p + 2); return b[p + 1]!; }
function u16(b: Buffer, p: number): number { need(b, p + 3); return b.readUInt16BE(p + 1); }
function u32(b: Buffer, p: number): number { need(b, p + 5); return b.readUInt32BE(p + 1); }

function need(b: Buffer, end: number): void {
  if (end > b.length) throw new Truncated();
}

/**
 * Whether b[start, end) is valid UTF-8. ASCII (every name the benchmarks and most users send)
 * is settled here byte by byte; anything else goes to node's validator, on a view of the bytes.
 */
function validUtf8(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return isUtf8(b.subarray(start, end));
  return true;
}

/** The end offset of the item at `p` and everything nested in it; `walkOk`: every string valid. */
let walkOk = true;
function walk(b: Buffer, p: number): number {
  let remaining = 1;
  walkOk = true;
  while (remaining > 0) {
    item(b, p);
    const start = p + head;
    p = start + body;
    if (p > b.length) throw new Truncated();
    if (str && walkOk && !validUtf8(b, start, p)) walkOk = false;
    remaining += children - 1;
  }
  return p;
}

export function invalidUtf8Fields(payload: Buffer): Set<string> {
  const bad = new Set<string>();
  try {
    item(payload, 0);
    const t = payload[0]!;
    const isMap = (t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf;
    if (!isMap) {
      walk(payload, 0);
      if (!walkOk) bad.add(WHOLE);
      return bad;
    }
    let p = head;
    const pairs = children / 2;
    for (let i = 0; i < pairs; i++) {
      const afterKey = walk(payload, p);
      const keyOk = walkOk;
      const afterValue = walk(payload, afterKey);
      // The key's name is made only to report its value (a valid key of an invalid value).
      if (!keyOk) bad.add(INVALID_KEY);
      else if (!walkOk) bad.add(keyName(payload, p));
      p = afterValue;
    }
  } catch (e) {
    if (!(e instanceof Truncated)) throw e;
    bad.add(WHOLE); // cannot happen after a successful decode; refuse rather than guess
  }
  return bad;
}

/** The key at `p` (valid UTF-8) as text, or INVALID_KEY if it is not a string. */
function keyName(payload: Buffer, p: number): string {
  item(payload, p);
  return str ? payload.toString('utf8', p + head, p + head + body) : INVALID_KEY;
}
