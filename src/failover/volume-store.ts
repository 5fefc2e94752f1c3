/**
 * VolumeStore: a shared "disk" for command-mode volumes in tests and failover scenarios. It
 * plays the storage side of the fencing-token literature for volumes: every mount raises the
 * volume's generation floor, and a write carrying an older generation is refused. Every
 * mount, unmount, recovery, fence, fence check and write is recorded in the history, so the
 * checker (volume-checker.ts) can tell what the cluster did from what the storage caught.
 *
 * mxfsd's commands reach it through `volume-cmd.js <socket> <op>` (mount_cmd, umount_cmd,
 * recover_cmd, fence_cmd, fence_check_cmd), which sends one JSON line with the MXFS_*
 * environment over a Unix socket and exits with the answer. Writers — the applications
 * using a mounted volume — are simulated here: while a node has a generation mounted (and its
 * process is alive: a killed node's applications die with it; a paused daemon's do not), a
 * write goes to the store every few milliseconds.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { History } from './history';

export type VolumeCmd = 'mount' | 'umount' | 'recover' | 'fence' | 'check';

export interface VolumeCmdRequest {
  op: VolumeCmd;
  volume: string;
  node: number;
  generation?: number;
  recoveryOf?: number;
  recoveryGeneration?: number;
  recoveryFromGeneration?: number;
  fenceCause?: string;
  oldOwner?: number;
  oldGeneration?: number;
}

export interface VolumeCmdReply { ok: boolean; message: string }

const key = (volume: string, node: number) => `${volume}/${node}`;

export class VolumeStore {
  /** Highest generation mounted per volume: writes below it are refused. */
  private floor = new Map<string, number>();
  /** What each node has mounted (volume/node -> generation). */
  private mounted = new Map<string, number>();
  private server?: net.Server;
  private writers?: NodeJS.Timeout;
  /** Test controls: make the next n recover commands of a volume fail; hold recover commands. */
  private failRecovers = new Map<string, number>();
  private holding = new Map<string, Array<{ node: number; go(proceed: boolean): void }>>();
  private holdRecovers = new Set<string>();
  accepted = 0;
  refused = 0;

  constructor(private readonly history?: History) {}

  generationFloor(volume: string): number { return this.floor.get(volume) ?? 0; }
  mountedOn(volume: string, node: number): number | undefined { return this.mounted.get(key(volume, node)); }
  /** The node that has the newest generation mounted (undefined: nobody). */
  currentOwner(volume: string): number | undefined {
    const floor = this.generationFloor(volume);
    return this.nodesWithMount(volume).find((n) => this.mountedOn(volume, n) === floor);
  }
  nodesWithMount(volume: string): number[] {
    return [...this.mounted.keys()].filter((k) => k.startsWith(`${volume}/`)).map((k) => Number(k.slice(volume.length + 1)));
  }

  failNextRecovers(volume: string, n: number): void { this.failRecovers.set(volume, n); }
  /** Recover commands of `volume` wait until releaseRecovers (so a test can kill the recovering node). */
  holdRecoversOf(volume: string): void { this.holdRecovers.add(volume); }
  /** Let held recover commands go on, except those of `dead` nodes: a node killed mid-recovery never finishes it. */
  releaseRecovers(volume: string, dead: number[] = []): void {
    this.holdRecovers.delete(volume);
    for (const h of this.holding.get(volume) ?? []) h.go(!dead.includes(h.node));
    this.holding.delete(volume);
  }
  /** Nodes whose recover command of `volume` is being held. */
  heldRecovers(volume: string): number[] { return (this.holding.get(volume) ?? []).map((h) => h.node); }

  async handle(r: VolumeCmdRequest): Promise<VolumeCmdReply> {
    const h = this.history;
    switch (r.op) {
      case 'mount': {
        const gen = r.generation ?? 0;
        const floor = this.generationFloor(r.volume);
        const recovery = r.recoveryOf !== undefined ? { of: r.recoveryOf, fromGeneration: r.recoveryFromGeneration ?? r.recoveryGeneration ?? 0, ofGeneration: r.recoveryGeneration ?? 0 } : undefined;
        const ok = gen > floor;
        h?.add({ type: 'vmount', volume: r.volume, node: r.node, generation: gen, accepted: ok, floor, ...(recovery ? { recovery } : {}) });
        if (!ok) return { ok: false, message: `generation ${gen} is not newer than generation ${floor}, already mounted` };
        this.floor.set(r.volume, gen);
        this.mounted.set(key(r.volume, r.node), gen);
        return { ok: true, message: `mounted generation ${gen}` };
      }
      case 'umount':
        h?.add({ type: 'vumount', volume: r.volume, node: r.node, generation: r.generation ?? this.mountedOn(r.volume, r.node) ?? 0 });
        this.mounted.delete(key(r.volume, r.node));
        return { ok: true, message: 'unmounted' };
      case 'fence':
        h?.add({ type: 'vfence', volume: r.volume, node: r.node, cause: r.fenceCause ?? '', generation: this.mountedOn(r.volume, r.node) ?? 0 });
        this.mounted.delete(key(r.volume, r.node));
        return { ok: true, message: 'fenced' };
      case 'recover': {
        if (this.holdRecovers.has(r.volume)) {
          const proceed = await new Promise<boolean>((go) => {
            const l = this.holding.get(r.volume) ?? [];
            l.push({ node: r.node, go });
            this.holding.set(r.volume, l);
          });
          if (!proceed) return { ok: false, message: 'the node died during its recovery' };
        }
        const fails = this.failRecovers.get(r.volume) ?? 0;
        const ok = fails === 0;
        if (!ok) this.failRecovers.set(r.volume, fails - 1);
        h?.add({
          type: 'vrecover', volume: r.volume, node: r.node, generation: r.generation ?? 0, of: r.recoveryOf ?? 0,
          fromGeneration: r.recoveryFromGeneration ?? 0, ofGeneration: r.recoveryGeneration ?? 0, ok,
        });
        return ok ? { ok: true, message: 'recovered' } : { ok: false, message: 'journal replay failed (injected by the test)' };
      }
      case 'check': {
        const old = r.oldOwner ?? 0;
        const still = this.mountedOn(r.volume, old);
        const ok = still === undefined;
        h?.add({ type: 'vcheck', volume: r.volume, node: r.node, old, ok });
        return ok ? { ok: true, message: `node ${old} has nothing mounted` } : { ok: false, message: `node ${old} still has generation ${still} mounted` };
      }
    }
  }

  /** One write by `node`'s applications, if it has the volume mounted; undefined when it has not. */
  write(volume: string, node: number): boolean | undefined {
    const gen = this.mountedOn(volume, node);
    if (gen === undefined) return undefined;
    const floor = this.generationFloor(volume);
    const ok = gen >= floor;
    if (ok) this.accepted++; else this.refused++;
    this.history?.add({ type: 'vwrite', volume, node, generation: gen, accepted: ok, floor });
    return ok;
  }

  /**
   * Simulated applications: every periodMs, each live node with a mount writes once. A node
   * that is not alive lost its power: its applications and its mounts are gone (a paused
   * mxfsd is alive: its node's applications go on writing).
   */
  startWriters(volumes: string[], nodes: number[], alive: (node: number) => boolean, periodMs = 20): void {
    this.writers = setInterval(() => {
      for (const v of volumes) {
        for (const n of nodes) {
          if (alive(n)) this.write(v, n);
          else this.mounted.delete(key(v, n));
        }
      }
    }, periodMs);
    this.writers.unref();
  }

  listen(socket: string): Promise<void> {
    try { fs.unlinkSync(socket); } catch { /* none */ }
    const server = net.createServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        let req: VolumeCmdRequest;
        try { req = JSON.parse(buf.slice(0, nl)) as VolumeCmdRequest; } catch { sock.end(JSON.stringify({ ok: false, message: 'bad request' }) + '\n'); return; }
        void this.handle(req).then((rep) => sock.end(JSON.stringify(rep) + '\n'));
      });
      sock.on('error', () => undefined);
    });
    this.server = server;
    return new Promise((resolve, reject) => { server.once('error', reject); server.listen(socket, () => resolve()); });
  }

  close(): void {
    if (this.writers) clearInterval(this.writers);
    this.server?.close();
    for (const v of [...this.holding.keys()]) this.releaseRecovers(v, [...new Set((this.holding.get(v) ?? []).map((h) => h.node))]);
  }
}

/** The [volume] section of a command-mode volume backed by a VolumeStore listening on `socket`. */
export function storeVolumeConfig(o: { name: string; dir: string; socket: string; cmd: string; start?: 'none' | 'mount' | 'standby'; failover?: 'auto' | 'manual'; fenceBoundMs?: number; fenceCheck?: boolean }): string {
  const c = (op: string) => `${process.execPath} ${o.cmd} ${o.socket} ${op}`;
  fs.mkdirSync(o.dir, { recursive: true });
  const device = `${o.dir}/device`;
  if (!fs.existsSync(device)) fs.writeFileSync(device, '');
  return [
    '[volume]', `name = ${o.name}`, `device = ${device}`, `mountpoint = ${o.dir}`, 'driver = command',
    `mount_cmd = ${c('mount')}`, `umount_cmd = ${c('umount')}`, `recover_cmd = ${c('recover')}`, `fence_cmd = ${c('fence')}`,
    ...(o.fenceCheck ? [`fence_check_cmd = ${c('check')}`] : []),
    `fence_bound_ms = ${o.fenceBoundMs ?? 300}`, `failover = ${o.failover ?? 'auto'}`, `start = ${o.start ?? 'none'}`,
    'command_timeout_ms = 30000', '',
  ].join('\n');
}
