/**
 * Flow control of the daemon's requests to the kernel on their own netlink socket (issue 11).
 *
 * A generic netlink request is handled inside the sender's sendmsg: when nl_send_auto returns,
 * every reply and the ack are already queued on the sending socket, or were refused because
 * its receive buffer was full (the kernel never waits for room to answer; once it refused one,
 * netlink refuses everything until the queue is empty). So the answers that can be waiting in
 * the buffer are those of the requests sent and not yet answered. The window keeps that count
 * below what the buffer holds: a request goes out only while the answers of the requests in
 * flight plus its own (`msgs`: its most replies + the ack) times the largest size one answer
 * can take in the buffer (`msgBytes`, its skb truesize) stay below SO_RCVBUF. The others wait
 * in order. The buffer then cannot overflow, however slowly the daemon reads it.
 *
 * Two classes, each in call order: `urgent` (the kernel lease's renewals, volume commands,
 * status) goes before any queued `bulk` request (lock traffic: LOCK_GRANT & co), and bulk
 * requests leave `reserveMsgs` of the window free, so an urgent request finds room at once
 * however many grants are queued.
 *
 * A request's slot is freed when its ack is read, or when an answer of a request sent after it
 * is read (answers are queued in send order): a request retired that way had its answer
 * refused (`answered` returns it as lost). A request that timed out keeps its slot: its answer
 * may still be in the buffer. One request whose answers alone exceed the window (a status of
 * every volume, a 256-entry glock list) is sent only when nothing else is in flight, and
 * nothing is sent beside it.
 */
export type RequestPriority = 'urgent' | 'bulk';

export interface WindowLimits {
  /** The receive buffer in bytes, as the kernel accounts it (getsockopt SO_RCVBUF: sk_rcvbuf). */
  rcvbuf: number;
  /** The most buffer space one answer message takes (its skb's truesize). */
  msgBytes: number;
  /** Answer messages kept free for urgent requests (default 4: two lease renewals). */
  reserveMsgs?: number;
}

/**
 * The most bytes of receive buffer one netlink answer can take: the kernel allocates a reply
 * with genlmsg_new(NLMSG_DEFAULT_SIZE), a page at most 8 KiB (NLMSG_GOODSIZE), and an ack
 * with nlmsg_new of less; netlink_trim can only shrink it. Plus struct sk_buff (232 bytes on
 * x86_64, 256 aligned), rounded up to 512 for other builds.
 */
export function answerTruesizeBound(pageSize: number): number {
  return Math.min(pageSize, 8192) + 512;
}

/** Answer messages the window holds: their truesize bound below rcvbuf (accepted while
 *  rmem_alloc stays below sk_rcvbuf). */
export function windowCapacity(l: WindowLimits): number {
  return Math.max(1, Math.floor((l.rcvbuf - 1) / l.msgBytes));
}

interface Entry<T> { item: T; msgs: number }
interface Flying<T> extends Entry<T> { key: number }

export interface WindowStats {
  /** Requests sent. */
  sent: number;
  /** Requests waiting for room now, and the most that ever waited. */
  queued: number;
  queuedMax: number;
  /** Answer messages reserved by the requests in flight now, and the most ever. */
  inFlightMsgs: number;
  inFlightMax: number;
  /** Requests whose answer was found lost (an answer of a later request came first). */
  lost: number;
}

export class RequestWindow<T> {
  readonly capacity: number;
  private readonly bulkCapacity: number;
  private reserved = 0;
  /** In send order; `head` is the oldest still in flight. */
  private flight: Array<Flying<T>> = [];
  private head = 0;
  private readonly urgent: Array<Entry<T>> = [];
  private readonly bulk: Array<Entry<T>> = [];
  private uHead = 0;
  private bHead = 0;
  readonly stats: WindowStats = { sent: 0, queued: 0, queuedMax: 0, inFlightMsgs: 0, inFlightMax: 0, lost: 0 };

  /**
   * `transmit` sends one request and returns its key (the netlink seq), or throws: a request
   * that could not be sent takes no slot (the error is its caller's, through `failed`).
   */
  constructor(limits: WindowLimits, private readonly transmit: (item: T) => number,
    private readonly failed: (item: T, err: unknown) => void) {
    this.capacity = windowCapacity(limits);
    const reserve = Math.min(limits.reserveMsgs ?? 4, this.capacity - 1);
    this.bulkCapacity = Math.max(1, this.capacity - reserve);
  }

  /** Queues a request whose answers are at most `msgs` messages (replies + the ack). */
  submit(item: T, msgs: number, priority: RequestPriority): void {
    // More than the window holds counts as the whole window (sent alone, nothing beside it).
    const m = Math.max(1, Math.min(msgs, Number.isFinite(this.capacity) ? this.capacity : Number.isFinite(msgs) ? msgs : 1));
    (priority === 'urgent' ? this.urgent : this.bulk).push({ item, msgs: m });
    this.count();
    this.pump();
  }

  /**
   * An answer of the request `key` was read (a reply, or with `final` its ack). Returns the
   * requests sent before it that are still in flight: their answers were lost.
   */
  answered(key: number, final: boolean): T[] {
    let i = this.head;
    while (i < this.flight.length && this.flight[i]!.key !== key) i++;
    if (i === this.flight.length) return []; // not ours, or retired already
    const lost: T[] = [];
    for (; this.head < i; this.head++) {
      const f = this.flight[this.head]!;
      this.reserved -= f.msgs;
      lost.push(f.item);
    }
    this.stats.lost += lost.length;
    if (final) {
      this.reserved -= this.flight[this.head]!.msgs;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.flight.length) {
      this.flight = this.flight.slice(this.head);
      this.head = 0;
    }
    this.stats.inFlightMsgs = this.reserved;
    this.pump();
    return lost;
  }

  /** Everything still queued or in flight (the socket closes). */
  drain(): T[] {
    const out = [
      ...this.flight.slice(this.head).map((f) => f.item),
      ...this.urgent.slice(this.uHead).map((e) => e.item),
      ...this.bulk.slice(this.bHead).map((e) => e.item),
    ];
    this.flight = [];
    this.head = 0;
    this.urgent.length = 0;
    this.bulk.length = 0;
    this.uHead = 0;
    this.bHead = 0;
    this.reserved = 0;
    this.stats.inFlightMsgs = 0;
    this.count();
    return out;
  }

  private count(): void {
    this.stats.queued = this.urgent.length - this.uHead + this.bulk.length - this.bHead;
    if (this.stats.queued > this.stats.queuedMax) this.stats.queuedMax = this.stats.queued;
  }

  private fits(msgs: number, cap: number): boolean {
    return this.reserved === 0 || this.reserved + msgs <= cap;
  }

  private pump(): void {
    for (;;) {
      let e: Entry<T> | undefined;
      if (this.uHead < this.urgent.length) {
        if (!this.fits(this.urgent[this.uHead]!.msgs, this.capacity)) break;
        e = this.urgent[this.uHead++];
      } else if (this.bHead < this.bulk.length) {
        if (!this.fits(this.bulk[this.bHead]!.msgs, this.bulkCapacity)) break;
        e = this.bulk[this.bHead++];
      } else {
        break;
      }
      this.compact();
      let key: number;
      try {
        key = this.transmit(e!.item);
      } catch (err) {
        this.count();
        this.failed(e!.item, err);
        continue;
      }
      this.stats.sent++;
      this.flight.push({ key, item: e!.item, msgs: e!.msgs });
      this.reserved += e!.msgs;
      this.stats.inFlightMsgs = this.reserved;
      if (this.reserved > this.stats.inFlightMax) this.stats.inFlightMax = this.reserved;
    }
    this.count();
  }

  private compact(): void {
    if (this.uHead > 1024 && this.uHead * 2 > this.urgent.length) {
      this.urgent.splice(0, this.uHead);
      this.uHead = 0;
    }
    if (this.bHead > 1024 && this.bHead * 2 > this.bulk.length) {
      this.bulk.splice(0, this.bHead);
      this.bHead = 0;
    }
  }
}
