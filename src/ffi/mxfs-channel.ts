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
 *   Their answers cannot overflow that socket either: requests wait for room in its window
 *   (request-window.ts), sized by each command's most replies (`maxReplies`); `urgent` ones
 *   (the driver's: lease, volumes) go before the queued `bulk` ones (lock traffic).
 * - After an overrun of the channel (a burst of kernel messages: something the module sent
 *   once may be lost), onCongestionEnded is called once its queue was seen empty again.
 * KernelChannel is the seam the kernel-bridge actor is tested through (a fake in tests).
 */
import { GenlSocket, NetlinkError, type Reply, type RequestWindowStatus } from './genl-socket';
import {
  CMD_SCHEMA, MXFS_GENL_MCGRP_EVENTS, MXFS_GENL_NAME, MXFS_GENL_VERSION, MXFS_GLOCK_LIST_MAX, MxfsAttr, MxfsCmd,
} from './mxfs-genl';
import type { RequestPriority } from './request-window';
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
  /** After an overrun: the channel's queue was seen empty (what was lost was sent before). */
  onCongestionEnded?(): void;
}

/** Fence records the module keeps per volume (MXFS_FENCE_HISTORY): FENCE_INFOs per volume. */
const FENCE_HISTORY = 8;

/**
 * The most reply messages the module sends before the ack of `cmd` (kernel/mxfs_netlink.c):
 * LEASE_INFO for the lease commands, STATUS_RESP, one volume's VOLUME_INFO and its fence
 * records, GLOCK_INFO up to LIMIT; a status of every volume has no bound (Infinity: it is sent
 * alone).
 */
export function maxReplies(cmd: MxfsCmd, attrs: MxfsAttrs): number {
  switch (cmd) {
    case MxfsCmd.STATUS_REQ: case MxfsCmd.LEASE_RENEW: case MxfsCmd.LEASE_LOST:
      return 1;
    case MxfsCmd.VOLUME_REGISTER: case MxfsCmd.VOLUME_GATE: case MxfsCmd.VOLUME_FENCE: case MxfsCmd.VOLUME_CLEAR:
      return 1 + FENCE_HISTORY;
    case MxfsCmd.VOLUME_STATUS_REQ:
      return attrs[MxfsAttr.VOLUME] !== undefined ? 2 + FENCE_HISTORY : Infinity;
    case MxfsCmd.GLOCK_LIST_REQ:
      return (attrs[MxfsAttr.LIMIT] as number | undefined) ?? MXFS_GLOCK_LIST_MAX;
    default:
      return 0;
  }
}

export interface KernelChannel {
  /** Where the kernel's messages arrive. */
  readonly portid: number;
  /** Where requests are sent from, when not `portid` (DAEMON_READY then names `portid`). */
  readonly requestPortid?: number;
  resolve(): number;
  /**
   * Sends a daemon->kernel command; resolves on the kernel's ack with its replies. `timeoutMs`
   * counts from when it left (Infinity: none); `priority` (default bulk) orders it among the
   * requests waiting for room.
   */
  send(cmd: MxfsCmd, attrs: MxfsAttrs, timeoutMs?: number, priority?: RequestPriority): Promise<Buffer[]>;
  /** The request window's state, when requests have a socket of their own. */
  requestWindow?(): RequestWindowStatus;
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
      onCongestionEnded: () => this.events.onCongestionEnded?.(),
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

  requestWindow(): RequestWindowStatus {
    return this.socket.windowStatus();
  }

  send(cmd: MxfsCmd, attrs: MxfsAttrs, timeoutMs = 5000, priority: RequestPriority = 'bulk'): Promise<Buffer[]> {
    if (this.family === undefined) return Promise.reject(new Error('mxfs family not resolved'));
    let encoded: Array<[number, Buffer]>;
    try {
      encoded = encodeCommand(cmd, attrs);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.socket.request(this.family, cmd, MXFS_GENL_VERSION, encoded, timeoutMs, {
      maxReplies: maxReplies(cmd, attrs), priority,
    }).then((r: Reply) => r.replies);
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
