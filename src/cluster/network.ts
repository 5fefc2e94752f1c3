/**
 * The injected network under the peer links: a `Network` gives listen() and connect(), each
 * producing a byte-stream `Connection`. Two implementations:
 *
 * - TcpNetwork: node:net, for the daemon and the real-socket tests (127.0.0.1 only in tests).
 * - SimNetwork: in memory, timed by an injected Clock (a ManualClock makes a whole cluster
 *   run deterministically in one process). It can partition sets of node ids, delay, drop
 *   whole writes, freeze a node's inbound delivery (a hung process) and crash a node.
 *
 * Owns no protocol messages: it only moves bytes. A Connection delivers data and close events
 * through handlers that may be (re)installed at any time; data that arrives while no handler
 * is installed is buffered and handed to the next handler.
 */
import * as net from 'node:net';
import type { Clock, TimerHandle } from '../util/clock';

export interface Connection {
  /** Unique per process (per SimNetwork in simulation); used in logs and to match events. */
  readonly id: number;
  /** The remote end's IP address (IPv4-mapped IPv6 normalised to plain IPv4). */
  readonly remoteAddress: string;
  readonly closed: boolean;
  /** Queue bytes. false = the connection is above its buffer high-water mark: wait for onDrain. */
  write(buf: Buffer): boolean;
  /** Install the data handler (replaces the previous one; buffered data is flushed to it). */
  onData(cb: (chunk: Buffer) => void): void;
  onDrain(cb: () => void): void;
  /** Called once when the connection is closed by either side or fails. */
  onClose(cb: (reason: string) => void): void;
  /** Graceful close: queued bytes are still sent. */
  close(): void;
  /** Immediate close: queued bytes are discarded. */
  destroy(reason?: string): void;
}

export interface Listener {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface Network {
  /** Host name -> IP address as the remote end will see it (identity for IP literals). */
  resolve?(host: string): Promise<string>;
  listen(address: string, port: number, onConnection: (c: Connection) => void): Promise<Listener>;
  /** Rejects on refusal, error or after timeoutMs. */
  connect(address: string, port: number, timeoutMs?: number): Promise<Connection>;
}

let nextConnId = 0;

export function normaliseAddress(a: string | undefined): string {
  if (!a) return '?';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/** Shared handler plumbing: buffers data until a handler exists; fires close once. */
abstract class ConnectionBase implements Connection {
  readonly id = ++nextConnId;
  abstract readonly remoteAddress: string;
  protected dataCb?: (chunk: Buffer) => void;
  protected drainCb?: () => void;
  protected closeCb?: (reason: string) => void;
  private pending: Buffer[] = [];
  private closeReason?: string;
  isClosed = false;

  get closed(): boolean { return this.isClosed; }

  abstract write(buf: Buffer): boolean;
  abstract close(): void;
  abstract destroy(reason?: string): void;

  onData(cb: (chunk: Buffer) => void): void {
    this.dataCb = cb;
    while (this.pending.length > 0 && this.dataCb === cb) cb(this.pending.shift()!);
  }

  onDrain(cb: () => void): void { this.drainCb = cb; }

  /** A handler installed after the close still hears about it (so ownership can move). */
  onClose(cb: (reason: string) => void): void {
    this.closeCb = cb;
    if (this.closeReason !== undefined) cb(this.closeReason);
  }

  protected emitData(chunk: Buffer): void {
    if (this.dataCb && this.pending.length === 0) this.dataCb(chunk);
    else this.pending.push(chunk);
  }

  protected emitDrain(): void { this.drainCb?.(); }

  protected emitClose(reason: string): void {
    this.isClosed = true;
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.closeCb?.(reason);
  }
}

// ------------------------------------------------------------------------------------------
// TCP

class TcpConnection extends ConnectionBase {
  readonly remoteAddress: string;

  constructor(private readonly sock: net.Socket) {
    super();
    this.remoteAddress = normaliseAddress(sock.remoteAddress);
    sock.setNoDelay(true);
    sock.on('data', (c: Buffer) => this.emitData(c));
    sock.on('drain', () => this.emitDrain());
    let lastErr: string | undefined;
    sock.on('error', (e) => { lastErr = e.message; });
    sock.on('close', () => this.emitClose(lastErr ?? 'closed by peer'));
    sock.on('end', () => sock.end());
  }

  write(buf: Buffer): boolean {
    if (this.isClosed || this.sock.destroyed) return false;
    return this.sock.write(buf);
  }

  close(): void { this.isClosed = true; this.sock.end(); }

  destroy(reason?: string): void {
    this.isClosed = true;
    this.sock.destroy();
    if (reason) this.emitClose(reason);
  }
}

export class TcpNetwork implements Network {
  constructor(private readonly defaultConnectTimeoutMs = 5000) {}

  async resolve(host: string): Promise<string> {
    if (net.isIP(host)) return normaliseAddress(host);
    const { lookup } = await import('node:dns/promises');
    return normaliseAddress((await lookup(host)).address);
  }

  listen(address: string, port: number, onConnection: (c: Connection) => void): Promise<Listener> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (sock) => onConnection(new TcpConnection(sock)));
      server.once('error', reject);
      server.listen(port, address, () => {
        server.removeListener('error', reject);
        server.on('error', () => { /* accept errors are per-connection; keep listening */ });
        const a = server.address() as net.AddressInfo;
        resolve({
          address: a.address, port: a.port,
          close: () => new Promise<void>((res) => server.close(() => res())),
        });
      });
    });
  }

  connect(address: string, port: number, timeoutMs = this.defaultConnectTimeoutMs): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: address, port });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect to ${address}:${port} timed out after ${timeoutMs} ms`)); }, timeoutMs);
      sock.once('error', (e) => { clearTimeout(timer); reject(e); });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new TcpConnection(sock));
      });
    });
  }
}

// ------------------------------------------------------------------------------------------
// Simulation

export interface SimLinkOptions {
  /** One-way delay per write (ms of the injected clock). */
  delayMs?: number;
  /** Extra uniform random delay 0..jitterMs (order within a connection is still kept). */
  jitterMs?: number;
  /** Probability that a whole write is lost (the receiver sees a gap in the stream). */
  dropRate?: number;
}

export interface SimNetworkOptions extends SimLinkOptions {
  random?: () => number;
  /** How long a connect across a partition hangs before failing. */
  connectTimeoutMs?: number;
  /** Per-connection unacknowledged bytes above which write() returns false. */
  highWaterBytes?: number;
}

interface SimHost { nodeId: number; address: string; listeners: Map<number, SimListener>; conns: Set<SimConnection>; frozen: boolean; held: Array<() => void> }
interface SimListener { port: number; host: SimHost; onConnection: (c: Connection) => void; closed: boolean }

class SimConnection extends ConnectionBase {
  peer!: SimConnection;
  inFlight = 0;
  lastDeliverAt = 0;
  wantDrain = false;

  constructor(private readonly sim: SimNetwork, readonly host: SimHost, readonly remoteAddress: string) { super(); }

  write(buf: Buffer): boolean {
    if (this.isClosed) return false;
    return this.sim.transmit(this, Buffer.from(buf));
  }

  close(): void { this.shut('closed by peer'); }
  destroy(reason?: string): void { this.shut('connection reset by peer', reason); }

  private shut(remoteReason: string, localReason?: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sim.closeEnd(this, remoteReason, localReason ?? 'closed locally');
  }

  deliver(chunk: Buffer): void { if (!this.isClosed) this.emitData(chunk); }
  ackBytes(n: number): void {
    this.inFlight -= n;
    if (this.wantDrain && this.inFlight <= this.sim.highWaterBytes / 2 && !this.isClosed) { this.wantDrain = false; this.emitDrain(); }
  }
  remoteClosed(reason: string): void { this.emitClose(reason); }
}

export class SimNetwork {
  private hosts = new Map<number, SimHost>();
  private byAddress = new Map<string, SimHost>();
  private blocked = new Set<string>();
  private links = new Map<string, SimLinkOptions>();
  private readonly random: () => number;
  readonly highWaterBytes: number;
  readonly stats = { writes: 0, dropped: 0, blocked: 0, delivered: 0, connects: 0 };

  constructor(private readonly clock: Clock, private readonly opts: SimNetworkOptions = {}) {
    this.random = opts.random ?? Math.random;
    this.highWaterBytes = opts.highWaterBytes ?? 1 << 20;
  }

  /** The Network as seen from node `nodeId` at `address` (one host per node). */
  host(nodeId: number, address: string): Network {
    let h = this.hosts.get(nodeId);
    if (!h) {
      if (this.byAddress.has(address)) throw new Error(`address ${address} already belongs to node ${this.byAddress.get(address)!.nodeId}`);
      h = { nodeId, address, listeners: new Map(), conns: new Set(), frozen: false, held: [] };
      this.hosts.set(nodeId, h);
      this.byAddress.set(address, h);
    }
    const host = h;
    return {
      listen: (_addr, port, onConnection) => this.listen(host, port, onConnection),
      connect: (addr, port, timeoutMs) => this.connect(host, addr, port, timeoutMs),
    };
  }

  /** Block all traffic between nodes in different groups (existing connections go silent). */
  partition(...groups: number[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        for (const a of groups[i]) for (const b of groups[j]) { this.blocked.add(key(a, b)); this.blocked.add(key(b, a)); }
      }
    }
  }

  /** Block one direction only (asymmetric failure). */
  blockOneWay(from: number, to: number): void { this.blocked.add(key(from, to)); }

  heal(): void { this.blocked.clear(); }

  isBlocked(from: number, to: number): boolean { return this.blocked.has(key(from, to)); }

  /** Delay/jitter/drop for traffic between a and b (both directions). */
  setLink(a: number, b: number, o: SimLinkOptions): void { this.links.set(key(a, b), o); this.links.set(key(b, a), o); }

  /** Delay/jitter/drop for traffic from `from` to `to` only (a slow sender, e.g. a node whose outgoing frames are delayed). */
  setLinkOneWay(from: number, to: number, o: SimLinkOptions): void { this.links.set(key(from, to), o); }

  /** Stop delivering to node (a hung process): bytes are held, in-flight grows, senders see backpressure. */
  freeze(nodeId: number): void { this.hostOf(nodeId).frozen = true; }

  thaw(nodeId: number): void {
    const h = this.hostOf(nodeId);
    h.frozen = false;
    const held = h.held;
    h.held = [];
    for (const f of held) f();
  }

  /** Power loss: every connection of the node is reset (the peers hear it unless partitioned), listeners vanish. */
  crash(nodeId: number): void {
    const h = this.hostOf(nodeId);
    for (const l of h.listeners.values()) l.closed = true;
    h.listeners.clear();
    h.held = [];
    h.frozen = false;
    for (const c of [...h.conns]) c.destroy('node crashed');
  }

  private hostOf(nodeId: number): SimHost {
    const h = this.hosts.get(nodeId);
    if (!h) throw new Error(`no simulated node ${nodeId}`);
    return h;
  }

  private linkOpts(from: number, to: number): Required<SimLinkOptions> {
    const o = this.links.get(key(from, to)) ?? {};
    return {
      delayMs: o.delayMs ?? this.opts.delayMs ?? 1,
      jitterMs: o.jitterMs ?? this.opts.jitterMs ?? 0,
      dropRate: o.dropRate ?? this.opts.dropRate ?? 0,
    };
  }

  private later(fn: () => void, ms: number): TimerHandle { return this.clock.setTimer(fn, ms); }

  private async listen(host: SimHost, port: number, onConnection: (c: Connection) => void): Promise<Listener> {
    if (host.listeners.has(port)) throw new Error(`listen ${host.address}:${port}: address in use`);
    const l: SimListener = { port, host, onConnection, closed: false };
    host.listeners.set(port, l);
    return {
      address: host.address, port,
      close: async () => { l.closed = true; if (host.listeners.get(port) === l) host.listeners.delete(port); },
    };
  }

  private connect(from: SimHost, address: string, port: number, timeoutMs?: number): Promise<Connection> {
    this.stats.connects++;
    return new Promise((resolve, reject) => {
      const to = this.byAddress.get(address);
      const o = to ? this.linkOpts(from.nodeId, to.nodeId) : this.linkOpts(from.nodeId, -1);
      const cut = to !== undefined && (this.isBlocked(from.nodeId, to.nodeId) || this.isBlocked(to.nodeId, from.nodeId));
      if (cut) {
        this.later(() => reject(new Error(`connect to ${address}:${port} timed out`)), timeoutMs ?? this.opts.connectTimeoutMs ?? 3000);
        return;
      }
      this.later(() => {
        const l = to?.listeners.get(port);
        if (!to || !l || l.closed) { reject(new Error(`connect ECONNREFUSED ${address}:${port}`)); return; }
        const client = new SimConnection(this, from, to.address);
        const server = new SimConnection(this, to, from.address);
        client.peer = server;
        server.peer = client;
        client.lastDeliverAt = server.lastDeliverAt = this.clock.now();
        from.conns.add(client);
        to.conns.add(server);
        l.onConnection(server);
        resolve(client);
      }, 2 * o.delayMs);
    });
  }

  /** Called by SimConnection.write. */
  transmit(src: SimConnection, buf: Buffer): boolean {
    this.stats.writes++;
    const dst = src.peer;
    const from = src.host.nodeId;
    const to = dst.host.nodeId;
    if (this.isBlocked(from, to)) { this.stats.blocked++; return true; }
    const o = this.linkOpts(from, to);
    if (o.dropRate > 0 && this.random() < o.dropRate) { this.stats.dropped++; return true; }
    const at = Math.max(this.clock.now() + o.delayMs + (o.jitterMs > 0 ? this.random() * o.jitterMs : 0), src.lastDeliverAt);
    src.lastDeliverAt = at;
    src.inFlight += buf.length;
    const deliver = () => {
      if (dst.host.frozen) { dst.host.held.push(deliver); return; }
      src.ackBytes(buf.length);
      if (this.isBlocked(from, to)) { this.stats.blocked++; return; }
      if (dst.isClosed) {
        // The far end is gone (e.g. it crashed while its reset was cut off): like TCP, data
        // reaching a closed endpoint draws a reset.
        if (!src.isClosed && !this.isBlocked(to, from)) {
          src.isClosed = true;
          src.host.conns.delete(src);
          this.later(() => src.remoteClosed('connection reset by peer'), o.delayMs);
        }
        return;
      }
      this.stats.delivered++;
      dst.deliver(buf);
    };
    this.later(deliver, at - this.clock.now());
    if (src.inFlight > this.highWaterBytes) { src.wantDrain = true; return false; }
    return true;
  }

  /** Called when one end closes: local close event now, remote after the link delay (unless cut). */
  closeEnd(end: SimConnection, remoteReason: string, localReason: string): void {
    end.host.conns.delete(end);
    const dst = end.peer;
    const from = end.host.nodeId;
    const to = dst.host.nodeId;
    this.later(() => end.remoteClosed(localReason), 0);
    if (this.isBlocked(from, to)) return; // the FIN/RST is lost: the peer keeps a half-open connection
    const at = Math.max(this.clock.now() + this.linkOpts(from, to).delayMs, end.lastDeliverAt);
    this.later(() => {
      if (this.isBlocked(from, to) || dst.isClosed) return;
      dst.isClosed = true;
      dst.host.conns.delete(dst);
      dst.remoteClosed(remoteReason);
    }, at - this.clock.now());
  }
}

function key(a: number, b: number): string { return `${a}>${b}`; }
