/**
 * NodeState: the little a node must remember across restarts so that fencing tokens never go
 * back — the boot generation of a standalone node and the highest membership epoch this node
 * ever promised. One JSON file in [node] state_dir, replaced atomically (write a temporary
 * file, fsync it, rename it over the old one, fsync the directory) before the value is used.
 *
 * The state_dir belongs to one daemon at a time: open() takes an exclusive lock on
 * `<state_dir>/mxfsd.lock` (NodeLock) before reading anything, held until close() or the
 * process ends, so a second daemon started as the same node refuses to start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NodeLock, NodeLockError } from './node-lock';
import { writeFileDurably } from '../util/durable';

interface Stored { generation: number; promisedEpoch: number }

export class StateError extends Error {}

export class NodeState {
  private v: Stored;

  private constructor(readonly file: string, v: Stored, private readonly lock: NodeLock) { this.v = v; }

  static open(dir: string): NodeState {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new StateError(`cannot create state_dir ${dir}: ${(e as Error).message}`);
    }
    let lock: NodeLock;
    try {
      lock = NodeLock.acquire(path.join(dir, 'mxfsd.lock'), `state_dir ${dir}`);
    } catch (e) {
      throw new StateError((e as NodeLockError).message);
    }
    try {
      return NodeState.read(dir, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  private static read(dir: string, lock: NodeLock): NodeState {
    const file = path.join(dir, 'state.json');
    let v: Stored = { generation: 0, promisedEpoch: 0 };
    if (fs.existsSync(file)) {
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        // Refuse to guess: restarting the counters could reissue old fencing tokens.
        throw new StateError(`state file ${file} is unreadable (${(e as Error).message}); restore it, or remove it only if every token this node ever issued is obsolete`);
      }
      const o = raw as Partial<Stored>;
      const ok = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;
      if (!ok(o.generation) || !ok(o.promisedEpoch)) throw new StateError(`state file ${file} is malformed`);
      v = { generation: o.generation!, promisedEpoch: o.promisedEpoch! };
    }
    return new NodeState(file, v, lock);
  }

  /** Release the state_dir (the daemon stopped; a dead process releases it anyway). */
  close(): void { this.lock.release(); }

  get generation(): number { return this.v.generation; }
  get promisedEpoch(): number { return this.v.promisedEpoch; }

  /** A new boot: the next generation, durable before it is returned. */
  nextGeneration(): number {
    this.write({ ...this.v, generation: this.v.generation + 1 });
    return this.v.generation;
  }

  /** Record a promised epoch (no-op unless higher), durable before returning. */
  promise(epoch: number): void {
    if (epoch > this.v.promisedEpoch) this.write({ ...this.v, promisedEpoch: epoch });
  }

  private write(v: Stored): void {
    writeFileDurably(this.file, JSON.stringify(v) + '\n');
    this.v = v;
  }
}
