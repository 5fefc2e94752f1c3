/**
 * Length-prefixed msgpackr frames, used on the client socket and on peer links.
 *
 *   +----------------+---------------------------+
 *   | u32 BE length  | msgpack payload (length)  |
 *   +----------------+---------------------------+
 *
 * The decoder never trusts the stream: a length above the limit, a zero length or a payload
 * that is not valid msgpack raises FrameError, and the caller cuts that connection off.
 * Validating the decoded value's shape is the protocol layer's job.
 *
 * Peer links after their handshake use the same framing, but the payload is the msgpack
 * bytes followed by a fixed-size trailer (a MAC, src/cluster/auth.ts): encodeFrameWithTrailer
 * writes such frames, FrameDecoder.pushRaw returns payloads undecoded so the trailer can be
 * checked before decodePayload looks at the rest.
 *
 * Sockets read into one reused buffer (the client's `onread`, the daemon's readIntoBuffer) feed
 * FrameDecoder.pushTransient / pushRawTransient instead: what outlives the call is copied.
 */
import { Packr, RESERVE_START_SPACE } from 'msgpackr';

export const FRAME_HEADER = 4;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

// One Packr for the process. No shared structures (both ends would need the same list);
// useRecords:false keeps the encoding plain msgpack so foreign tools can read it.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
// The same decoding, but every binary value is copied out of the input (msgpackr otherwise
// returns views of it): for bytes read into a buffer that the next read writes over.
const copyingPackr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', copyBuffers: true });

/** msg's msgpack encoding (a frame payload, or a batch handed to another thread). */
export function encodePayload(msg: unknown): Buffer { return packr.pack(msg); }

/** Bytes of msg's msgpack encoding (the frame payload). */
export function encodedSize(msg: unknown): number { return packr.pack(msg).length; }

/**
 * The longest prefix of items whose message wrap(prefix) encodes to at most maxBytes. For
 * replies that list things without a natural bound (inspection): what does not fit is
 * counted in `omitted`, never silently lost. Work is proportional to what fits, not to the
 * list: a msgpack array is its header (1, 3 or 5 bytes by length) followed by each item's
 * own encoding, so the prefix is found by adding up item sizes, then checked once by
 * encoding it (a guard: shortened if the wrapper encodes otherwise).
 */
export function fitList<T>(items: readonly T[], wrap: (xs: readonly T[]) => unknown, maxBytes: number): { items: T[]; omitted: number } {
  const header = (n: number) => (n < 16 ? 1 : n < 65536 ? 3 : 5);
  const base = encodedSize(wrap([])) - header(0);
  let sum = 0;
  let n = 0;
  while (n < items.length) {
    const next = sum + encodedSize(items[n]);
    if (base + header(n + 1) + next > maxBytes) break;
    sum = next;
    n++;
  }
  while (n > 0 && encodedSize(wrap(items.slice(0, n))) > maxBytes) n--;
  return { items: items.slice(0, n), omitted: items.length - n };
}

/**
 * Largest packr block a frame is left a view of. packr starts with 8 KiB blocks, but after one
 * large message (an inspection reply) every new block is that large: a small frame waiting in
 * a slow reader's socket queue would then keep megabytes alive, so it is copied out instead.
 */
export const FRAME_VIEW_BLOCK_MAX = 16 * 1024;

/**
 * A frame of msg: packr writes the payload after FRAME_HEADER bytes it leaves free, and the
 * length goes there, so the frame is packr's output itself, not a copy of it (one buffer
 * fewer per message on the local lock path). Like every packr output, the frame is a view of
 * packr's current block, which later frames never write over; like a small Buffer from
 * Node's 8 KiB pool, it keeps at most FRAME_VIEW_BLOCK_MAX bytes alive.
 */
export function encodeFrame(msg: unknown, maxBytes: number): Buffer {
  const out = packr.pack(msg, RESERVE_START_SPACE | FRAME_HEADER);
  const len = out.length - FRAME_HEADER;
  if (len > maxBytes) throw new FrameError(`frame of ${len} bytes exceeds the limit of ${maxBytes}`);
  out.writeUInt32BE(len, 0);
  return out.buffer.byteLength <= FRAME_VIEW_BLOCK_MAX ? out : Buffer.from(out);
}

/** msgpack bytes of reply data already encoded once (see encodeReplyFrame). */
const encodedData = new WeakMap<object, Buffer>();

/**
 * A reply frame whose `data` object is encoded once however many replies carry it: a
 * coalesced inspection answers every waiting request with the same object (up to a frame
 * each, and a flooding client has dozens waiting), and encoding each copy anew kept the
 * thread for 1-1.5 ms per reply, 50-180 ms per turn under the abuse scenario's flood.
 * The rest of the message is encoded with `data: null` last, whose one byte (nil, 0xc0) is
 * then replaced by the cached bytes: the same bytes encodeFrame writes. `data` must not be
 * changed once a reply carried it (inspection answers are built, then only read).
 */
export function encodeReplyFrame(msg: { data?: unknown } & Record<string, unknown>, maxBytes: number): Buffer {
  const data = msg.data;
  if (typeof data !== 'object' || data === null || Buffer.isBuffer(data)) return encodeFrame(msg, maxBytes);
  let bytes = encodedData.get(data);
  if (!bytes) {
    bytes = Buffer.from(packr.pack(data)); // a copy: packr's output lives in its reused buffer
    encodedData.set(data, bytes);
  }
  const { data: _, ...rest } = msg;
  const head = packr.pack({ ...rest, data: null });
  if (head[head.length - 1] !== 0xc0) return encodeFrame(msg, maxBytes); // not the layout assumed above
  const len = head.length - 1 + bytes.length;
  if (len > maxBytes) throw new FrameError(`frame of ${len} bytes exceeds the limit of ${maxBytes}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER + len);
  out.writeUInt32BE(len, 0);
  head.copy(out, FRAME_HEADER, 0, head.length - 1);
  bytes.copy(out, FRAME_HEADER + head.length - 1);
  return out;
}

/**
 * A frame whose payload is msg's msgpack bytes followed by `trailerBytes` bytes computed by
 * trailer(msgpack bytes) (e.g. a MAC). maxBytes bounds the whole payload, trailer included.
 */
export function encodeFrameWithTrailer(msg: unknown, maxBytes: number, trailerBytes: number, trailer: (body: Buffer) => Buffer): Buffer {
  const body = packr.pack(msg);
  const out = frameOf(body, trailerBytes, maxBytes);
  const end = FRAME_HEADER + body.length;
  const t = trailer(out.subarray(FRAME_HEADER, end));
  if (t.length !== trailerBytes) throw new FrameError(`frame trailer of ${t.length} bytes where ${trailerBytes} were expected`);
  t.copy(out, end);
  return out;
}

/** Header + body, with room for `trailerBytes` more (left unfilled). */
function frameOf(body: Buffer, trailerBytes: number, maxBytes: number): Buffer {
  const len = body.length + trailerBytes;
  if (len > maxBytes) throw new FrameError(`frame of ${len} bytes exceeds the limit of ${maxBytes}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER + len);
  out.writeUInt32BE(len, 0);
  body.copy(out, FRAME_HEADER);
  return out;
}

/** Decodes one frame payload (the msgpack bytes); throws FrameError if they are not msgpack. */
export function decodePayload(body: Buffer): unknown {
  return decodeWith(packr, body);
}

/** decodePayload with every binary value copied out of body. */
export function decodeTransientPayload(body: Buffer): unknown {
  return decodeWith(copyingPackr, body);
}

function decodeWith(p: Packr, body: Buffer): unknown {
  try {
    return p.unpack(body);
  } catch (e) {
    throw new FrameError(`undecodable frame: ${(e as Error).message}`);
  }
}

/** No bytes: what a decoder holds between whole frames (one buffer, not a new one per chunk). */
const EMPTY = Buffer.alloc(0);

export class FrameDecoder {
  private buf: Buffer = EMPTY;

  constructor(private readonly maxBytes: number) {}

  /** Bytes received but not yet forming a whole frame. */
  get pending(): number { return this.buf.length; }

  /** Feed bytes; returns every whole frame's decoded value. Throws FrameError on bad input. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    this.split(chunk, (body) => out.push(decodePayload(body)));
    return out;
  }

  /**
   * Feed bytes; returns every whole frame's payload, not decoded (views of the received bytes:
   * the caller must not modify a chunk it passed in). Throws FrameError on a zero or too
   * large length. push and pushRaw may be mixed on one decoder: they share the framing state.
   */
  pushRaw(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.split(chunk, (body) => out.push(body));
    return out;
  }

  /**
   * Feed bytes that are only valid during this call (a read buffer the socket reuses, see
   * net.connect's `onread`): calls each(value) for every whole frame, decoded with its binary
   * values copied out, and keeps a copy of a partial frame's bytes, never a view of the chunk.
   * Throws FrameError on bad input (the frames before the bad one have been delivered).
   */
  pushTransient(chunk: Buffer, each: (value: unknown) => void): void {
    this.pushRawTransient(chunk, (body) => each(decodeTransientPayload(body)));
  }

  /**
   * pushRaw for bytes valid only during this call: each(body) gets every whole frame's payload,
   * a view valid only during that call (decodeTransientPayload copies binary values out).
   */
  pushRawTransient(chunk: Buffer, each: (body: Buffer) => void): void {
    const held = this.buf.length;
    this.split(chunk, each);
    // A partial frame left as a view of the chunk (the chunk was not concatenated to earlier bytes).
    if (held === 0 && this.buf.length > 0) this.buf = Buffer.from(this.buf);
  }

  private split(chunk: Buffer, each: (body: Buffer) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= FRAME_HEADER) {
      const len = this.buf.readUInt32BE(off);
      if (len === 0) throw new FrameError('zero-length frame');
      if (len > this.maxBytes) throw new FrameError(`frame of ${len} bytes exceeds the limit of ${this.maxBytes}`);
      if (this.buf.length - off - FRAME_HEADER < len) break;
      const body = this.buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len);
      off += FRAME_HEADER + len;
      each(body);
    }
    this.buf = off === this.buf.length ? EMPTY : this.buf.subarray(off);
  }
}
