/**
 * A generic netlink socket driven from Node through libnl.
 *
 * - Two libnl sockets: `channel` sends our requests and receives everything (unicast from
 *   the kernel, acks and error acks, multicast groups); `ctrl` is used only for the
 *   synchronous nlctrl look-ups (genl_ctrl_resolve*), which must not race with the receive
 *   loop for the same socket.
 * - With `separateRequests`, a third socket `req` sends our requests and receives only their
 *   acks and replies (its own receive loop): the kernel's acks never wait for room, so when
 *   a burst of kernel messages keeps the channel's receive buffer full they would be dropped
 *   there (issue 11). The kernel must be told that both ports are ours (mxfs: DAEMON_READY
 *   from `req` with the channel's port).
 * - Receiving: one persistent callback (koffi.register) for NL_CB_MSG_IN copies each raw
 *   message into a Buffer and returns NL_SKIP, so libnl does no further processing; the
 *   blocking nl_recvmsgs_default runs on a worker thread (koffi `.async`) and koffi runs
 *   the callback on the main thread. SO_RCVTIMEO bounds each receive so close() finishes.
 * - Requests carry our own sequence numbers; the kernel's ack or error ack (NLMSG_ERROR)
 *   with the same seq settles the request, and messages with that seq that arrive before
 *   it (e.g. a STATUS_RESP) are its replies. Messages with another seq (kernel unicast and
 *   multicast use seq 0) go to onMessage.
 * - With `separateRequests`, requests go out through a RequestWindow (request-window.ts): no
 *   more in flight than their answers fit req's receive buffer (SO_RCVBUF over the largest
 *   answer's truesize), so no answer is ever refused there; the rest wait, `urgent` ones
 *   first. An answer read for a later request settles the earlier ones still waiting with
 *   AnswerLost (answers are queued in send order). A request times out from when it was
 *   sent, not queued, and keeps its slot until its answer (or a later one) is read.
 * - After an overrun of the channel (ENOBUFS), `onCongestionEnded` is called once the
 *   channel's queue was seen empty (netlink refuses every message to it until then): what
 *   the kernel sent once and lost was sent before that moment.
 */
import koffi from 'koffi';
import {
  copyNlMsg, enableExtAck, libnl, NL_CB_CUSTOM, NL_CB_MSG_IN, NL_SKIP, NLE, pageSize, receiveBufferBytes,
  receiveQueuedBytes, setReceiveTimeout,
  type LibNl, type Ptr,
} from './libnl';
import { NLM_F, NLMSG_ERROR, NLMSG_OVERRUN, parseError, parseNlHeader, type NlError } from './netlink-msg';
import { answerTruesizeBound, RequestWindow, type RequestPriority, type WindowStats } from './request-window';

/** A libnl call failed: `code` is libnl's (positive) NLE_* number. */
export class NetlinkError extends Error {
  constructor(readonly op: string, readonly code: number, detail: string) {
    super(`${op}: ${detail} (libnl error ${code})`);
    this.name = 'NetlinkError';
  }
}

/** The kernel answered a request with an error ack. `errno` is positive. */
export class KernelAckError extends Error {
  constructor(readonly errno: number, readonly extack: string | undefined, readonly missingAttr?: number) {
    super(`kernel rejected the request: errno ${errno}${extack ? ` (${extack})` : ''}`);
    this.name = 'KernelAckError';
  }
}

export class RequestTimeout extends Error {
  constructor(readonly seq: number, ms: number) {
    super(`no ack for netlink request seq ${seq} within ${ms} ms`);
    this.name = 'RequestTimeout';
  }
}

/** The request's answer was refused by the kernel (its socket's buffer was full): an answer of
 *  a request sent after it was read first. What the kernel did with the request is unknown. */
export class AnswerLost extends Error {
  constructor(readonly seq: number) {
    super(`the answer to netlink request seq ${seq} was lost (a later request's answer came first)`);
    this.name = 'AnswerLost';
  }
}

export interface Reply { ack: NlError; replies: Buffer[] }

export interface RequestOptions {
  /** The most reply messages the request gets before its ack (Infinity: unknown). */
  maxReplies?: number;
  /** default 'bulk' */
  priority?: RequestPriority;
}

export interface GenlSocketOptions {
  /** Every message that is not the reply to one of our requests. */
  onMessage(msg: Buffer): void;
  /** A receive error (overrun: messages were lost) or a failure of the receive loop. */
  onError?(err: Error): void;
  /** Bound of one blocking receive; close() takes at most about this long. */
  recvTimeoutMs?: number;
  rcvbufBytes?: number;
  /** Send requests from a socket of their own, which receives nothing but their answers. */
  separateRequests?: boolean;
  /** The channel's queue was seen empty after an overrun (separateRequests). */
  onCongestionEnded?(): void;
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
  replies: Buffer[];
  timer?: NodeJS.Timeout;
  /** The caller has its answer (or its timeout): a late answer only frees the slot. */
  settled: boolean;
  seq: number;
  family: number; cmd: number; version: number; attrs: ReadonlyArray<readonly [number, Buffer]>; timeoutMs: number;
}

export interface GenlSocketStats {
  sent: number; received: number; recvCalls: number; callbackErrors: number;
  /** Receive buffer overflows (ENOBUFS) of the channel, and of req (separateRequests). */
  overruns: number; requestOverruns: number;
  /** Answers read after their request had timed out. */
  lateAnswers: number;
}

export interface RequestWindowStatus extends WindowStats {
  /** Answer messages the window holds, and the bytes it assumes each takes. */
  capacity: number; msgBytes: number; rcvbuf: number;
}

export class GenlSocket {
  private readonly lib: LibNl;
  private channel: Ptr;
  private ctrl: Ptr;
  /** Sends the requests and receives their answers (separateRequests); else the channel. */
  private req: Ptr | undefined;
  private readonly cb: bigint;
  private seq = 0;
  private pending = new Map<number, Pending>();
  private readonly window: RequestWindow<Pending>;
  private readonly windowInfo: { capacity: number; msgBytes: number; rcvbuf: number };
  private closing = false;
  private loopsRunning = 0;
  private loopStopped: (() => void) | undefined;
  /** The channel overflowed and its queue has not been seen empty since. */
  private channelCongested = false;
  readonly stats: GenlSocketStats = {
    sent: 0, received: 0, recvCalls: 0, callbackErrors: 0, overruns: 0, requestOverruns: 0, lateAnswers: 0,
  };

  private constructor(private readonly opts: GenlSocketOptions) {
    this.lib = libnl();
    const lib = this.lib;
    const channel = lib.nl_socket_alloc();
    const ctrl = lib.nl_socket_alloc();
    const req = opts.separateRequests ? lib.nl_socket_alloc() : undefined;
    const freeAll = () => { for (const sk of [channel, ctrl, req]) if (sk) lib.nl_socket_free(sk); };
    if (!channel || !ctrl || req === null) {
      freeAll();
      throw new NetlinkError('nl_socket_alloc', NLE.NOMEM, 'out of memory');
    }
    this.channel = channel;
    this.ctrl = ctrl;
    this.req = req;
    /** The sockets with a receive loop: the channel, and req. */
    const receiving: Ptr[] = req ? [channel, req] : [channel];
    try {
      const named: Array<[Ptr, string]> = [[channel, 'channel'], [ctrl, 'ctrl'], ...(req ? [[req, 'req'] as [Ptr, string]] : [])];
      for (const [sk, what] of named) {
        const rc = lib.genl_connect(sk);
        if (rc < 0) throw new NetlinkError(`genl_connect(${what})`, -rc, lib.nl_geterror(rc));
      }
      enableExtAck(lib, lib.nl_socket_get_fd(ctrl));
      for (const sk of receiving) {
        lib.nl_socket_disable_seq_check(sk);
        lib.nl_socket_set_buffer_size(sk, opts.rcvbufBytes ?? 1 << 20, 0);
        const fd = lib.nl_socket_get_fd(sk);
        enableExtAck(lib, fd);
        setReceiveTimeout(lib, fd, opts.recvTimeoutMs ?? 250);
      }
    } catch (e) {
      freeAll();
      throw e;
    }
    // The window: req's buffer as the kernel accounts it, over the largest answer's truesize.
    // Without a request socket the channel also takes the kernel's own messages: no window.
    const msgBytes = answerTruesizeBound(pageSize(lib));
    let rcvbuf: number;
    try {
      rcvbuf = req ? receiveBufferBytes(lib, lib.nl_socket_get_fd(req)) : Infinity;
    } catch (e) {
      freeAll();
      throw e;
    }
    this.window = new RequestWindow<Pending>({ rcvbuf, msgBytes }, (p) => this.transmit(p), (p, err) => {
      if (p.settled) return;
      p.settled = true;
      p.reject(err instanceof Error ? err : new Error(String(err)));
    });
    this.windowInfo = { capacity: this.window.capacity, msgBytes, rcvbuf };
    this.cb = koffi.register((msg: Ptr) => this.onRaw(msg), koffi.pointer(lib.RecvCallback));
    for (const sk of receiving) {
      const rc = lib.nl_socket_modify_cb(sk, NL_CB_MSG_IN, NL_CB_CUSTOM, this.cb, null);
      if (rc < 0) {
        koffi.unregister(this.cb);
        freeAll();
        throw new NetlinkError('nl_socket_modify_cb', -rc, lib.nl_geterror(rc));
      }
    }
  }

  /** Opens and connects the sockets and starts the receive loop. */
  static open(opts: GenlSocketOptions): GenlSocket {
    const s = new GenlSocket(opts);
    s.startLoop(s.channel);
    if (s.req) s.startLoop(s.req);
    return s;
  }

  /** The netlink port id of the channel socket (what the kernel sees as the sender). */
  get portid(): number {
    return this.lib.nl_socket_get_local_port(this.channel);
  }

  /** The port our requests are sent from: the channel's, or req's (separateRequests). */
  get requestPortid(): number {
    return this.lib.nl_socket_get_local_port(this.req ?? this.channel);
  }

  /** Family id; throws NetlinkError (code 12, NLE_OBJ_NOTFOUND) when no such family. */
  resolveFamily(name: string): number {
    const rc = this.lib.genl_ctrl_resolve(this.ctrl, name);
    if (rc < 0) throw new NetlinkError(`resolve family '${name}'`, -rc, this.lib.nl_geterror(rc));
    return rc;
  }

  resolveGroup(family: string, group: string): number {
    const rc = this.lib.genl_ctrl_resolve_grp(this.ctrl, family, group);
    if (rc < 0) throw new NetlinkError(`resolve group '${family}/${group}'`, -rc, this.lib.nl_geterror(rc));
    return rc;
  }

  joinGroup(group: number): void {
    const rc = this.lib.nl_socket_add_membership(this.channel, group);
    if (rc < 0) throw new NetlinkError(`join group ${group}`, -rc, this.lib.nl_geterror(rc));
  }

  /**
   * Sends a generic netlink request with NLM_F_ACK and resolves with the kernel's ack and any
   * replies; rejects with KernelAckError on an error ack, RequestTimeout (`timeoutMs` after it
   * was sent; Infinity: none), AnswerLost, or the send's NetlinkError. With separateRequests it
   * waits for room in the window first (`maxReplies` sizes its answers, default 0).
   */
  request(family: number, cmd: number, version: number, attrs: ReadonlyArray<readonly [number, Buffer]>,
    timeoutMs = 5000, opts: RequestOptions = {}): Promise<Reply> {
    if (this.closing) return Promise.reject(new Error('netlink socket closed'));
    return new Promise<Reply>((resolve, reject) => {
      const p: Pending = { resolve, reject, replies: [], settled: false, seq: 0, family, cmd, version, attrs, timeoutMs };
      this.window.submit(p, 1 + (opts.maxReplies ?? 0), opts.priority ?? 'bulk');
    });
  }

  /** The request window's state (sizes, what waits, what was lost). */
  windowStatus(): RequestWindowStatus {
    return { ...this.windowInfo, ...this.window.stats };
  }

  /** Builds and sends one request (the window's transmit); returns its seq, or throws. */
  private transmit(p: Pending): number {
    if (this.closing) throw new Error('netlink socket closed');
    const lib = this.lib;
    const msg = lib.nlmsg_alloc();
    if (!msg) throw new NetlinkError('nlmsg_alloc', NLE.NOMEM, 'out of memory');
    try {
      this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
      const seq = this.seq;
      if (!lib.genlmsg_put(msg, 0, seq, p.family, 0, NLM_F.ACK, p.cmd, p.version)) {
        throw new NetlinkError('genlmsg_put', NLE.NOMEM, 'message too small');
      }
      for (const [type, data] of p.attrs) {
        const rc = lib.nla_put(msg, type, data.length, data.length ? data : null);
        if (rc < 0) throw new NetlinkError(`nla_put(${type})`, -rc, lib.nl_geterror(rc));
      }
      p.seq = seq;
      this.pending.set(seq, p);
      const rc = lib.nl_send_auto(this.req ?? this.channel, msg);
      if (rc < 0) {
        this.pending.delete(seq);
        throw new NetlinkError('nl_send_auto', -rc, lib.nl_geterror(rc));
      }
      if (Number.isFinite(p.timeoutMs)) {
        p.timer = setTimeout(() => {
          p.timer = undefined;
          if (p.settled) return;
          p.settled = true;
          p.reject(new RequestTimeout(seq, p.timeoutMs));
        }, p.timeoutMs);
        p.timer.unref();
      }
      this.stats.sent++;
      return seq;
    } finally {
      lib.nlmsg_free(msg);
    }
  }

  /** An answer of `seq` was read: frees its slot (`final`: its ack) and fails the requests sent
   *  before it that are still waiting (their answers were refused). */
  private retire(seq: number, final: boolean): void {
    for (const lost of this.window.answered(seq, final)) {
      this.pending.delete(lost.seq);
      if (lost.timer) clearTimeout(lost.timer);
      if (lost.settled) continue;
      lost.settled = true;
      lost.reject(new AnswerLost(lost.seq));
    }
  }

  /** Stops the receive loop (within recvTimeoutMs), fails pending requests, frees the sockets. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.loopsRunning) await new Promise<void>((resolve) => { this.loopStopped = resolve; });
    for (const p of [...this.pending.values(), ...this.window.drain()]) {
      if (p.timer) clearTimeout(p.timer);
      if (p.settled) continue;
      p.settled = true;
      p.reject(new Error('netlink socket closed'));
    }
    this.pending.clear();
    this.lib.nl_socket_free(this.channel);
    this.lib.nl_socket_free(this.ctrl);
    if (this.req) this.lib.nl_socket_free(this.req);
    koffi.unregister(this.cb);
  }

  /** One receive loop per socket that receives (each keeps a libuv threadpool thread). */
  private startLoop(sk: Ptr): void {
    this.loopsRunning++;
    const step = (): void => {
      if (this.closing) {
        if (--this.loopsRunning === 0) this.loopStopped?.();
        return;
      }
      this.stats.recvCalls++;
      this.lib.nl_recvmsgs_default.async(sk, (err: unknown, rc: number) => {
        if (err) {
          this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
        } else if (rc < 0 && rc !== -NLE.AGAIN) {
          // ENOBUFS (libnl: NLE_NOMEM): the socket's receive buffer overflowed, messages for it
          // were dropped. On the channel the kernel retries its unicasts (mxfs); on req it
          // means lost answers (their requests time out).
          const onReq = sk === this.req;
          if (rc === -NLE.NOMEM) {
            this.stats[onReq ? 'requestOverruns' : 'overruns']++;
            if (!onReq) this.channelCongested = true;
          }
          this.opts.onError?.(new NetlinkError(onReq ? 'nl_recvmsgs(req)' : 'nl_recvmsgs', -rc, this.lib.nl_geterror(rc)));
        }
        if (sk === this.channel && this.channelCongested) this.checkCongestion(rc);
        setImmediate(step);
      });
    };
    step();
  }

  /**
   * After the channel overflowed: has the congestion ended? The receive that just returned has
   * finished (netlink clears NETLINK_S_CONGESTED at the end of a receive that leaves the queue
   * empty) and no other runs until the next step, so an empty queue now (nothing queued, or a
   * receive that timed out with nothing to read) means netlink takes the kernel's sends again,
   * and every send it refused happened before now.
   */
  private checkCongestion(rc: number): void {
    let empty = rc === -NLE.AGAIN;
    if (!empty) {
      try {
        empty = receiveQueuedBytes(this.lib, this.lib.nl_socket_get_fd(this.channel)) === 0;
      } catch {
        return; // SO_MEMINFO unsupported: the next timed-out receive tells
      }
    }
    if (!empty) return;
    this.channelCongested = false;
    try { this.opts.onCongestionEnded?.(); } catch { /* the caller's own */ }
  }

  /** NL_CB_MSG_IN callback: runs on the main thread; must not throw into C. */
  private onRaw(msgPtr: Ptr): number {
    try {
      this.stats.received++;
      const buf = copyNlMsg(this.lib, msgPtr);
      this.dispatch(buf);
    } catch (e) {
      this.stats.callbackErrors++;
      try { this.opts.onError?.(e instanceof Error ? e : new Error(String(e))); } catch { /* ignore */ }
    }
    return NL_SKIP;
  }

  private dispatch(buf: Buffer): void {
    const h = parseNlHeader(buf);
    if (h.type === NLMSG_OVERRUN) {
      this.stats.overruns++;
      return;
    }
    const pend = h.seq !== 0 ? this.pending.get(h.seq) : undefined;
    if (h.type === NLMSG_ERROR) {
      const ack = parseError(buf);
      const seq = ack.request.seq;
      const p = this.pending.get(seq);
      if (!p) return; // not one of ours (or retired already)
      this.retire(seq, true);
      this.pending.delete(seq);
      if (p.timer) clearTimeout(p.timer);
      if (p.settled) {
        this.stats.lateAnswers++;
        return;
      }
      p.settled = true;
      if (ack.error === 0) p.resolve({ ack, replies: p.replies });
      else p.reject(new KernelAckError(-ack.error, ack.message, ack.missingAttr));
      return;
    }
    if (pend) {
      this.retire(h.seq, false);
      if (!pend.settled) pend.replies.push(buf);
      return;
    }
    this.opts.onMessage(buf);
  }
}
