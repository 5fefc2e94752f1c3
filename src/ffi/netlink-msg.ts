/**
 * Pure-TypeScript view of netlink bytes: nlmsghdr, genlmsghdr, attributes, error acks.
 * libnl builds and sends our messages; what we receive is copied out of libnl's buffer
 * into a Buffer and parsed here, never trusted: every length is bounds-checked, and an
 * MXFS message is validated against its command's attribute set and each attribute's
 * policy (src/ffi/mxfs-genl.ts) before the bridge sees it.
 */
import {
  ATTR_POLICY, CMD_SCHEMA, MXFS_ATTR_MAX, MXFS_CMD_MAX, MxfsAttr, MxfsCmd, type AttrKind,
} from './mxfs-genl';

export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const NLA_HDRLEN = 4;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const GENL_ID_CTRL = 16;

export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, ECHO: 0x8, CAPPED: 0x100, ACK_TLVS: 0x200 } as const;
const NLA_TYPE_MASK = 0x3fff;

/** nlmsgerr extended-ack attributes. */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

/** nlctrl (the generic netlink controller) commands and attributes used here. */
export const CTRL_CMD = { NEWFAMILY: 1, DELFAMILY: 2, GETFAMILY: 3 } as const;
export const CTRL_ATTR = { FAMILY_ID: 1, FAMILY_NAME: 2, MCAST_GROUPS: 7 } as const;

export class NetlinkParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetlinkParseError';
  }
}

export interface NlHeader { len: number; type: number; flags: number; seq: number; pid: number }

export function align4(n: number): number {
  return (n + 3) & ~3;
}

export function parseNlHeader(buf: Buffer, off = 0): NlHeader {
  if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkParseError(`short nlmsghdr (${buf.length - off} bytes)`);
  const h = {
    len: buf.readUInt32LE(off), type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6),
    seq: buf.readUInt32LE(off + 8), pid: buf.readUInt32LE(off + 12),
  };
  if (h.len < NLMSG_HDRLEN || h.len > buf.length - off) throw new NetlinkParseError(`bad nlmsg_len ${h.len}`);
  return h;
}

/** Splits a received buffer (possibly several messages) into single messages. */
export function splitMessages(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= NLMSG_HDRLEN) {
    const h = parseNlHeader(buf, off);
    out.push(buf.subarray(off, off + h.len));
    off += align4(h.len);
  }
  return out;
}

export interface RawAttr { type: number; nested: boolean; data: Buffer }

/** Attributes of a byte range; throws on a truncated or overlong attribute. */
export function parseAttrs(buf: Buffer): RawAttr[] {
  const out: RawAttr[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) throw new NetlinkParseError('truncated attribute header');
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN || len > buf.length - off) throw new NetlinkParseError(`bad attribute length ${len}`);
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & 0x8000) !== 0, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

export function encodeAttr(type: number, data: Buffer): Buffer {
  const len = NLA_HDRLEN + data.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, NLA_HDRLEN);
  return out;
}

// ---- error acks ----

export interface NlError {
  /** 0 for a plain ACK, else a negative errno. */
  error: number;
  /** Header of the request this answers (its seq matches our send). */
  request: NlHeader;
  /** Extended-ack message, if the socket asked for them (NETLINK_EXT_ACK). */
  message?: string;
  missingAttr?: number;
}

export function parseError(msg: Buffer): NlError {
  const h = parseNlHeader(msg);
  if (h.type !== NLMSG_ERROR) throw new NetlinkParseError('not an NLMSG_ERROR');
  if (h.len < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) throw new NetlinkParseError('short NLMSG_ERROR');
  const error = msg.readInt32LE(NLMSG_HDRLEN);
  const reqOff = NLMSG_HDRLEN + 4;
  const request = {
    len: msg.readUInt32LE(reqOff), type: msg.readUInt16LE(reqOff + 4), flags: msg.readUInt16LE(reqOff + 6),
    seq: msg.readUInt32LE(reqOff + 8), pid: msg.readUInt32LE(reqOff + 12),
  };
  const out: NlError = { error, request };
  if (h.flags & NLM_F.ACK_TLVS) {
    // The request is echoed whole unless capped (or for a plain ack).
    const echoed = (h.flags & NLM_F.CAPPED) || error === 0 ? NLMSG_HDRLEN : align4(request.len);
    const tlvOff = reqOff + echoed;
    if (tlvOff <= h.len) {
      for (const a of parseAttrs(msg.subarray(tlvOff, h.len))) {
        if (a.type === NLMSGERR_ATTR.MSG) out.message = cString(a.data);
        else if (a.type === NLMSGERR_ATTR.MISS_TYPE && a.data.length >= 4) out.missingAttr = a.data.readUInt32LE(0);
      }
    }
  }
  return out;
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.subarray(0, nul < 0 ? data.length : nul).toString('utf8');
}

// ---- generic netlink ----

export interface GenlMessage { header: NlHeader; cmd: number; version: number; attrs: RawAttr[] }

export function parseGenl(msg: Buffer): GenlMessage {
  const header = parseNlHeader(msg);
  if (header.len < NLMSG_HDRLEN + GENL_HDRLEN) throw new NetlinkParseError('short genlmsghdr');
  return {
    header,
    cmd: msg.readUInt8(NLMSG_HDRLEN),
    version: msg.readUInt8(NLMSG_HDRLEN + 1),
    attrs: parseAttrs(msg.subarray(NLMSG_HDRLEN + GENL_HDRLEN, header.len)),
  };
}

/** nlctrl NEWFAMILY/DELFAMILY (replies and "notify" events): the family's name and id. */
export function parseCtrlFamily(msg: Buffer): { cmd: number; name?: string; id?: number } {
  const g = parseGenl(msg);
  const out: { cmd: number; name?: string; id?: number } = { cmd: g.cmd };
  for (const a of g.attrs) {
    if (a.type === CTRL_ATTR.FAMILY_NAME) out.name = cString(a.data);
    else if (a.type === CTRL_ATTR.FAMILY_ID && a.data.length >= 2) out.id = a.data.readUInt16LE(0);
  }
  return out;
}

// ---- MXFS attribute values ----

export type AttrValue = number | bigint | string | Buffer;
/** Decoded attributes of one MXFS message: u64 as bigint, strings without the NUL. */
export type MxfsAttrs = Partial<Record<MxfsAttr, AttrValue>>;

export interface MxfsMessage { cmd: MxfsCmd; seq: number; portid: number; attrs: MxfsAttrs }

function decodeValue(attr: MxfsAttr, kind: AttrKind, data: Buffer): AttrValue {
  const name = MxfsAttr[attr];
  const need = (n: number) => {
    if (data.length !== n) throw new NetlinkParseError(`attribute ${name}: ${data.length} bytes, expected ${n}`);
  };
  switch (kind.kind) {
    case 'u8': {
      need(1);
      const v = data.readUInt8(0);
      if (kind.max !== undefined && v > kind.max) throw new NetlinkParseError(`attribute ${name}: ${v} > ${kind.max}`);
      return v;
    }
    case 'u32': {
      need(4);
      const v = data.readUInt32LE(0);
      if (kind.mask !== undefined && (v & ~kind.mask) !== 0) throw new NetlinkParseError(`attribute ${name}: bits outside 0x${kind.mask.toString(16)}`);
      return v;
    }
    case 's32': {
      need(4);
      const v = data.readInt32LE(0);
      if (v < kind.min || v > kind.max) throw new NetlinkParseError(`attribute ${name}: ${v} outside [${kind.min}, ${kind.max}]`);
      return v;
    }
    case 'u64':
      need(8);
      return data.readBigUInt64LE(0);
    case 'string': {
      const nul = data.indexOf(0);
      if (nul < 0) throw new NetlinkParseError(`attribute ${name}: string without NUL`);
      if (nul > kind.maxLen) throw new NetlinkParseError(`attribute ${name}: longer than ${kind.maxLen}`);
      return data.subarray(0, nul).toString('utf8');
    }
    case 'binary':
      if (kind.maxLen !== undefined && data.length > kind.maxLen) throw new NetlinkParseError(`attribute ${name}: longer than ${kind.maxLen}`);
      return Buffer.from(data);
  }
}

/**
 * Validates and decodes one message of the mxfs family: the command must be one the kernel
 * sends (to-daemon or multicast), every attribute must belong to the command's set, appear
 * once and fit its policy, and every required attribute must be present.
 */
export function parseMxfsMessage(msg: Buffer): MxfsMessage {
  const g = parseGenl(msg);
  if (g.cmd <= 0 || g.cmd > MXFS_CMD_MAX) throw new NetlinkParseError(`unknown command ${g.cmd}`);
  const cmd = g.cmd as Exclude<MxfsCmd, MxfsCmd.UNSPEC>;
  const schema = CMD_SCHEMA[cmd];
  if (schema.dir === 'to-kernel') throw new NetlinkParseError(`command ${MxfsCmd[cmd]} is not sent by the kernel`);
  const allowed = new Set<number>([...schema.required, ...schema.optional]);
  const attrs: MxfsAttrs = {};
  for (const a of g.attrs) {
    if (a.type === 0 || a.type > MXFS_ATTR_MAX || !allowed.has(a.type)) {
      throw new NetlinkParseError(`attribute ${MxfsAttr[a.type] ?? a.type} not allowed in ${MxfsCmd[cmd]}`);
    }
    if (a.type === MxfsAttr.PAD) continue;
    const attr = a.type as Exclude<MxfsAttr, MxfsAttr.UNSPEC>;
    if (attrs[attr] !== undefined) throw new NetlinkParseError(`attribute ${MxfsAttr[attr]} repeated`);
    attrs[attr] = decodeValue(attr, ATTR_POLICY[attr], a.data);
  }
  for (const r of schema.required) {
    if (attrs[r] === undefined) throw new NetlinkParseError(`${MxfsCmd[cmd]}: missing ${MxfsAttr[r]}`);
  }
  return { cmd, seq: g.header.seq, portid: g.header.pid, attrs };
}

/** Encodes an attribute's payload according to its policy (what the kernel will check). */
export function encodeValue(attr: Exclude<MxfsAttr, MxfsAttr.UNSPEC>, value: AttrValue): Buffer {
  const kind = ATTR_POLICY[attr];
  const name = MxfsAttr[attr];
  const num = (v: AttrValue): number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`attribute ${name}: integer expected`);
    return v;
  };
  switch (kind.kind) {
    case 'u8': { const b = Buffer.alloc(1); b.writeUInt8(num(value)); return b; }
    case 'u32': { const b = Buffer.alloc(4); b.writeUInt32LE(num(value)); return b; }
    case 's32': { const b = Buffer.alloc(4); b.writeInt32LE(num(value)); return b; }
    case 'u64': {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(typeof value === 'bigint' ? value : BigInt(num(value)));
      return b;
    }
    case 'string': {
      if (typeof value !== 'string') throw new TypeError(`attribute ${name}: string expected`);
      const s = Buffer.from(value, 'utf8');
      if (s.length > kind.maxLen) throw new RangeError(`attribute ${name}: longer than ${kind.maxLen} bytes`);
      return Buffer.concat([s, Buffer.alloc(1)]);
    }
    case 'binary': {
      if (!Buffer.isBuffer(value)) throw new TypeError(`attribute ${name}: Buffer expected`);
      return value;
    }
  }
}
