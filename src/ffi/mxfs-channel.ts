/**
 * The daemon's end of the "mxfs" genetlink family, over GenlSocket (libnl via koffi).
 *
 * - resolve() finds the family and joins its "events" multicast group; it throws
 *   NetlinkError with code NLE_OBJ_NOTFOUND (12) when the module is not loaded.
 * - The nlctrl "notify" group is joined at open, so the module being loaded, unloaded or
 *   reloaded later is seen at once (onFamily 'new' / 'del').
 * - Incoming mxfs messages are validated (parseMxfsMessage) before onMessage sees them;
 *   outgoing ones are checked against the command's attribute set before they are built.
 * - Requests go out from a socket of their own (GenlSocket `separateRequests`), so their acks
 *   are never dropped because the kernel's messages filled the channel's receive buffer;
 *   DAEMON_READY, sent from it, names the channel (`portid`) as where the kernel's messages go.
 * KernelChannel is the seam the kernel-bridge actor is tested through (a fake in tests).
 */
import { GenlSocket, NetlinkError, type Reply } from './genl-socket';
import {
  CMD_SCHEMA, MXFS_GENL_MCGRP_EVENTS, MXFS_GENL_NAME, MXFS_GENL_VERSION, MxfsAttr, MxfsCmd,
} from './mxfs-genl';
import {
  CTRL_CMD, encodeValue, GENL_ID_CTRL, parseCtrlFamily, parseMxfsMessage, parseNlHeader,
  type AttrValue, type MxfsAttrs, type MxfsMessage,
} from './netlink-msg';
import { NLE } from './libnl';

export interface KernelChannelEvents {
  onMessage(m: MxfsMessage): void;
  /** The mxfs family appeared (module loaded) or disappeared (module unloaded). */
  onFamily(event: 'new' | 'del'): void;
  /** A message failed validation, or the receive loop reported an error. */
  onError(err: Error): void;
}

export interface KernelChannel {
  /** Where the kernel's messages arrive. */
  readonly portid: number;
  /** Where requests are sent from, when not `portid` (DAEMON_READY then names `portid`). */
  readonly requestPortid?: number;
  resolve(): number;
  /** Sends a daemon->kernel command; resolves on the kernel's ack with its replies. */
  send(cmd: MxfsCmd, attrs: MxfsAttrs, timeoutMs?: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

export type KernelChannelFactory = (events: KernelChannelEvents) => KernelChannel;

export function isFamilyMissing(e: unknown): boolean {
  return e instanceof NetlinkError && e.code === NLE.OBJ_NOTFOUND;
}

export class GenlKernelChannel implements KernelChannel {
  readonly socket: GenlSocket;
  private family: number | undefined;

  constructor(private readonly events: KernelChannelEvents) {
    this.socket = GenlSocket.open({
      onMessage: (buf) => this.route(buf),
      onError: (err) => this.events.onError(err),
      separateRequests: true,
    });
    try {
      this.socket.joinGroup(this.socket.resolveGroup('nlctrl', 'notify'));
    } catch (e) {
      void this.socket.close();
      throw e;
    }
  }

  get portid(): number {
    return this.socket.portid;
  }

  get requestPortid(): number {
    return this.socket.requestPortid;
  }

  resolve(): number {
    const family = this.socket.resolveFamily(MXFS_GENL_NAME);
    this.socket.joinGroup(this.socket.resolveGroup(MXFS_GENL_NAME, MXFS_GENL_MCGRP_EVENTS));
    this.family = family;
    return family;
  }

  send(cmd: MxfsCmd, attrs: MxfsAttrs, timeoutMs = 5000): Promise<Buffer[]> {
    if (this.family === undefined) return Promise.reject(new Error('mxfs family not resolved'));
    let encoded: Array<[number, Buffer]>;
    try {
      encoded = encodeCommand(cmd, attrs);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.socket.request(this.family, cmd, MXFS_GENL_VERSION, encoded, timeoutMs).then((r: Reply) => r.replies);
  }

  /** Sends attributes as given, unchecked: only for tests of the kernel's validation. */
  sendRaw(cmd: number, attrs: ReadonlyArray<readonly [number, Buffer]>, timeoutMs = 5000): Promise<Reply> {
    if (this.family === undefined) return Promise.reject(new Error('mxfs family not resolved'));
    return this.socket.request(this.family, cmd, MXFS_GENL_VERSION, attrs, timeoutMs);
  }

  close(): Promise<void> {
    return this.socket.close();
  }

  private route(buf: Buffer): void {
    const h = parseNlHeader(buf);
    if (h.type === GENL_ID_CTRL) {
      const f = parseCtrlFamily(buf);
      if (f.name !== MXFS_GENL_NAME) return;
      if (f.cmd === CTRL_CMD.NEWFAMILY) this.events.onFamily('new');
      else if (f.cmd === CTRL_CMD.DELFAMILY) {
        this.family = undefined;
        this.events.onFamily('del');
      }
      return;
    }
    if (this.family === undefined || h.type !== this.family) return;
    let m: MxfsMessage;
    try {
      m = parseMxfsMessage(buf);
    } catch (e) {
      this.events.onError(e as Error);
      return;
    }
    this.events.onMessage(m);
  }
}

/** Checks a daemon->kernel command against its attribute set and encodes the attributes. */
export function encodeCommand(cmd: MxfsCmd, attrs: MxfsAttrs): Array<[number, Buffer]> {
  if (cmd === MxfsCmd.UNSPEC) throw new TypeError('UNSPEC is not a command');
  const schema = CMD_SCHEMA[cmd];
  if (schema.dir !== 'to-kernel') throw new TypeError(`${MxfsCmd[cmd]} is not sent by the daemon`);
  const allowed = new Set<MxfsAttr>([...schema.required, ...schema.optional]);
  for (const r of schema.required) {
    if (attrs[r] === undefined) throw new TypeError(`${MxfsCmd[cmd]}: missing ${MxfsAttr[r]}`);
  }
  const out: Array<[number, Buffer]> = [];
  for (const [k, v] of Object.entries(attrs) as Array<[string, AttrValue | undefined]>) {
    const attr = Number(k) as Exclude<MxfsAttr, MxfsAttr.UNSPEC>;
    if (v === undefined) continue;
    if (!allowed.has(attr)) throw new TypeError(`${MxfsCmd[cmd]}: attribute ${MxfsAttr[attr]} not allowed`);
    out.push([attr, encodeValue(attr, v)]);
  }
  return out;
}
