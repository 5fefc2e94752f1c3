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

interface Item {
  /** Bytes of this item's header (the type byte and any length). */
  head: number;
  /** Payload bytes after the header (strings, binaries, extensions, numbers). */
  body: number;
  /** Nested items that follow (array elements; map keys and values). */
  children: number;
  str: boolean;
}

class Truncated extends Error {}

/** Header of the item at `p` (msgpack type byte table). */
function item(b: Buffer, p: number): Item {
  if (p >= b.length) throw new Truncated();
  const t = b[p]!;
  const u8 = () => need(b, p + 2) && b[p + 1]!;
  const u16 = () => need(b, p + 3) && b.readUInt16BE(p + 1);
  const u32 = () => need(b, p + 5) && b.readUInt32BE(p + 1);
  if (t <= 0x7f || t >= 0xe0) return { head: 1, body: 0, children: 0, str: false }; // fixint
  if (t <= 0x8f) return { head: 1, body: 0, children: 2 * (t & 0x0f), str: false }; // fixmap
  if (t <= 0x9f) return { head: 1, body: 0, children: t & 0x0f, str: false }; // fixarray
  if (t <= 0xbf) return { head: 1, body: t & 0x1f, children: 0, str: true }; // fixstr
  switch (t) {
    case 0xc0: case 0xc2: case 0xc3: return { head: 1, body: 0, children: 0, str: false };
    case 0xc4: return { head: 2, body: u8() as number, children: 0, str: false }; // bin 8
    case 0xc5: return { head: 3, body: u16() as number, children: 0, str: false };
    case 0xc6: return { head: 5, body: u32() as number, children: 0, str: false };
    case 0xc7: return { head: 3, body: u8() as number, children: 0, str: false }; // ext 8 (+type byte)
    case 0xc8: return { head: 4, body: u16() as number, children: 0, str: false };
    case 0xc9: return { head: 6, body: u32() as number, children: 0, str: false };
    case 0xca: return { head: 1, body: 4, children: 0, str: false };
    case 0xcb: return { head: 1, body: 8, children: 0, str: false };
    case 0xcc: case 0xd0: return { head: 1, body: 1, children: 0, str: false };
    case 0xcd: case 0xd1: return { head: 1, body: 2, children: 0, str: false };
    case 0xce: case 0xd2: return { head: 1, body: 4, children: 0, str: false };
    case 0xcf: case 0xd3: return { head: 1, body: 8, children: 0, str: false };
    case 0xd4: return { head: 2, body: 1, children: 0, str: false }; // fixext
    case 0xd5: return { head: 2, body: 2, children: 0, str: false };
    case 0xd6: return { head: 2, body: 4, children: 0, str: false };
    case 0xd7: return { head: 2, body: 8, children: 0, str: false };
    case 0xd8: return { head: 2, body: 16, children: 0, str: false };
    case 0xd9: return { head: 2, body: u8() as number, children: 0, str: true }; // str 8
    case 0xda: return { head: 3, body: u16() as number, children: 0, str: true };
    case 0xdb: return { head: 5, body: u32() as number, children: 0, str: true };
    case 0xdc: return { head: 3, body: 0, children: u16() as number, str: false }; // array 16
    case 0xdd: return { head: 5, body: 0, children: u32() as number, str: false };
    case 0xde: return { head: 3, body: 0, children: 2 * (u16() as number), str: false }; // map 16
    case 0xdf: return { head: 5, body: 0, children: 2 * (u32() as number), str: false };
    default: throw new Truncated(); // 0xc1: never used
  }
}

function need(b: Buffer, end: number): true {
  if (end > b.length) throw new Truncated();
  return true;
}

/** Skips one item and everything nested in it; returns [end offset, every string valid]. */
function walk(b: Buffer, p: number): [number, boolean] {
  let remaining = 1;
  let ok = true;
  while (remaining > 0) {
    const it = item(b, p);
    const start = p + it.head;
    p = start + it.body;
    if (p > b.length) throw new Truncated();
    if (it.str && ok && !isUtf8(b.subarray(start, p))) ok = false;
    remaining += it.children - 1;
  }
  return [p, ok];
}

export function invalidUtf8Fields(payload: Buffer): Set<string> {
  const bad = new Set<string>();
  try {
    const top = item(payload, 0);
    const t = payload[0]!;
    const isMap = (t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf;
    if (!isMap) {
      if (!walk(payload, 0)[1]) bad.add(WHOLE);
      return bad;
    }
    let p = top.head;
    for (let i = 0; i < top.children / 2; i++) {
      const k = item(payload, p);
      let key: string | undefined;
      if (k.str) {
        const bytes = payload.subarray(p + k.head, p + k.head + k.body);
        if (isUtf8(bytes)) key = bytes.toString('utf8');
      }
      const [afterKey, keyOk] = walk(payload, p);
      const [afterValue, valueOk] = walk(payload, afterKey);
      if (!keyOk || (k.str && key === undefined)) bad.add(INVALID_KEY);
      else if (!valueOk) bad.add(key ?? INVALID_KEY);
      p = afterValue;
    }
  } catch (e) {
    if (!(e instanceof Truncated)) throw e;
    bad.add(WHOLE); // cannot happen after a successful decode; refuse rather than guess
  }
  return bad;
}
