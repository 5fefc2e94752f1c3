/**
 * The systems the peer benchmark compares, each behind one small interface: start it on
 * loopback, open client sessions that take and release exclusive locks by name, read the
 * server's RSS, stop it. Every system runs as its own processes from its Debian package
 * (bench/peers/install.sh) or, for MXFS, from this tree's dist/; every client is a Node
 * client in the benchmark's process.
 *
 * How each takes a lock (the way a user of that system would):
 *   MXFS    EX through the client library (the daemon queues waiters, FIFO).
 *   Redis   SET name token NX PX ttl; on failure retry after a random 0–2 ms sleep (Redis
 *           has no waiting); release by compare-and-delete (a Lua script run with EVALSHA).
 *   etcd    one lease per client session, then the Lock RPC (the server queues the caller
 *           behind the name's earlier keys) and Unlock of the key it returned.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import Redis from 'ioredis';
import { Mode } from '../../src/dlm/modes';
import { rendezvousOwner } from '../../src/cluster/rendezvous';
import type { LockHandle } from '../../src/client/api';
import { TestCluster } from '../../test/support/cluster-proc';
import { freePort, ROOT, rssKiB, tmpDir, waitFor } from '../../test/support/daemon-proc';

/** One client connection: exclusive lock and unlock by name. */
export interface LockSession {
  lock(name: string): Promise<unknown>;
  unlock(handle: unknown): Promise<void>;
  close(): Promise<void>;
}

/** A column of the table: a running system and how its clients reach it. */
export interface Column {
  readonly label: string;
  session(tag: string): Promise<LockSession>;
  /** A name this column's clients may use, the i-th of a family (e.g. a client's own names). */
  name(family: string, i: number): string;
  /** Resident memory of the server process that holds the locks (bytes). */
  serverRss(): number;
}

function versionOf(cmd: string, args: string[], re: RegExp): string {
  try {
    return re.exec(execFileSync(cmd, args, { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'missing';
  }
}

function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

// ---------------------------------------------------------------------------------------
// MXFS: a 3-node cluster; clients on node 1; names mastered by node 1 (local) or node 2.

export class MxfsSystem {
  readonly cluster: TestCluster;
  readonly version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  private readonly members = [1, 2, 3];
  private readonly nameCache = new Map<string, { names: string[]; next: number }>();

  constructor(readonly leaseMs: number) {
    this.cluster = new TestCluster(3, leaseMs);
  }

  async start(): Promise<void> {
    await this.cluster.up(60000);
  }

  /** The i-th name of `family` whose master (rendezvous hash over the members) is `master`. */
  nameOn(master: number, family: string, i: number): string {
    const key = `${master}/${family}`;
    let c = this.nameCache.get(key);
    if (!c) this.nameCache.set(key, (c = { names: [], next: 0 }));
    while (c.names.length <= i) {
      const name = `${family}.${c.next++}`;
      if (rendezvousOwner('default', name, this.members) === master) c.names.push(name);
    }
    return c.names[i]!;
  }

  column(master: number, label: string): Column {
    return {
      label,
      session: async (tag) => {
        const c = await this.cluster.client(1, `bench-${tag}`);
        return {
          lock: (name) => c.lock(name, Mode.EX),
          unlock: (h) => (h as LockHandle).unlock(),
          close: () => c.close(),
        };
      },
      name: (family, i) => this.nameOn(master, family, i),
      serverRss: () => rssKiB(this.cluster.node(1).proc!.pid!) * 1024,
    };
  }

  async stop(): Promise<void> {
    await this.cluster.stopAll();
  }
}

// ---------------------------------------------------------------------------------------
// Redis: one redis-server, no persistence.

const RELEASE_LUA = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export class RedisSystem {
  readonly version = versionOf('redis-server', ['--version'], /v=(\S+)/);
  private proc?: ChildProcess;
  private port = 0;
  private dir = '';

  /** redis-server's process id (once started). */
  get pid(): number | undefined { return this.proc?.pid; }

  async start(): Promise<void> {
    this.port = await freePort();
    this.dir = tmpDir('mxfs-bench-redis-');
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitFor(async () => {
      const r = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined); // refused while the server starts: the probe just says no
      try { await r.connect(); return (await r.ping()) === 'PONG'; } catch { return false; } finally { r.disconnect(); }
    }, 30000, 'redis-server up');
  }

  column(): Column {
    let seq = 0;
    return {
      label: 'Redis',
      session: async () => {
        const r = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
        await r.connect();
        const sha = (await r.script('LOAD', RELEASE_LUA)) as string;
        return {
          lock: async (name) => {
            const token = `${process.pid}.${++seq}`;
            for (;;) {
              if ((await r.set(name, token, 'PX', 30000, 'NX')) === 'OK') return { name, token };
              await new Promise((res) => setTimeout(res, Math.random() * 2));
            }
          },
          unlock: async (h) => {
            const { name, token } = h as { name: string; token: string };
            if ((await r.evalsha(sha, 1, name, token)) !== 1) throw new Error(`redis: lock ${name} was not ours at release`);
          },
          close: async () => { r.disconnect(); },
        };
      },
      name: (family, i) => `${family}.${i}`,
      serverRss: () => rssKiB(this.proc!.pid!) * 1024,
    };
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// etcd: a 3-member cluster on loopback; clients talk gRPC to member 1.

interface EtcdClients { lease: any; lock: any }

export class EtcdSystem {
  readonly version = versionOf('etcd', ['--version'], /etcd Version: (\S+)/);
  private procs: ChildProcess[] = [];
  private clientPorts: number[] = [];
  private dir = '';
  private defs?: grpc.GrpcObject;

  async start(): Promise<void> {
    this.dir = tmpDir('mxfs-bench-etcd-');
    const peerPorts: number[] = [];
    for (let i = 0; i < 3; i++) { this.clientPorts.push(await freePort()); peerPorts.push(await freePort()); }
    const initial = peerPorts.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(',');
    for (let i = 0; i < 3; i++) {
      const log = fs.openSync(path.join(this.dir, `m${i + 1}.log`), 'a');
      this.procs.push(spawn('etcd', [
        '--name', `m${i + 1}`, '--data-dir', path.join(this.dir, `m${i + 1}`),
        '--listen-client-urls', `http://127.0.0.1:${this.clientPorts[i]}`, '--advertise-client-urls', `http://127.0.0.1:${this.clientPorts[i]}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPorts[i]}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[i]}`,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'mxfs-bench',
      ], { stdio: ['ignore', log, log] }));
      fs.closeSync(log);
    }
    const pkg = protoLoader.loadSync(['etcd.proto', 'etcd-lock.proto'], { includeDirs: [path.join(ROOT, 'bench', 'peers')], longs: String, defaults: true });
    this.defs = grpc.loadPackageDefinition(pkg);
    const c = this.clients('probe');
    try {
      await waitFor(async () => {
        try { await call(c.lease, 'LeaseGrant', { TTL: 5 }); return true; } catch { return false; }
      }, 60000, 'etcd cluster up');
    } finally { c.lease.close(); c.lock.close(); }
  }

  /** Separate channels per session (grpc-js would otherwise share one connection). */
  private clients(tag: string): EtcdClients {
    const target = `127.0.0.1:${this.clientPorts[0]}`;
    const opts = { 'grpc.use_local_subchannel_pool': 1, 'mxfs.session': tag } as grpc.ChannelOptions;
    const Lease = (this.defs!.etcdserverpb as grpc.GrpcObject).Lease as grpc.ServiceClientConstructor;
    const Lock = (this.defs!.v3lockpb as grpc.GrpcObject).Lock as grpc.ServiceClientConstructor;
    return { lease: new Lease(target, grpc.credentials.createInsecure(), opts), lock: new Lock(target, grpc.credentials.createInsecure(), opts) };
  }

  column(): Column {
    return {
      label: 'etcd',
      session: async (tag) => {
        const c = this.clients(tag);
        const grant = await call(c.lease, 'LeaseGrant', { TTL: 300 });
        return {
          lock: async (name) => (await call(c.lock, 'Lock', { name: Buffer.from(name), lease: grant.ID })).key,
          unlock: async (key) => { await call(c.lock, 'Unlock', { key }); },
          close: async () => {
            try { await call(c.lease, 'LeaseRevoke', { ID: grant.ID }); } finally { c.lease.close(); c.lock.close(); }
          },
        };
      },
      name: (family, i) => `${family}.${i}`,
      serverRss: () => rssKiB(this.procs[0]!.pid!) * 1024,
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map(stopProc));
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function call(client: any, method: string, req: object): Promise<any> {
  return new Promise((resolve, reject) => client[method](req, (err: Error | null, res: any) => (err ? reject(err) : resolve(res))));
}
