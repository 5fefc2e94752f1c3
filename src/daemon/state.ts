/**
 * NodeState: the little a node must remember across restarts so that fencing tokens never go
 * back — the boot generation of a standalone node (state.json) and the highest membership
 * epoch this node ever promised (epoch.json, see EpochFile). Each file is replaced
 * atomically (write a temporary file, fsync it, rename it over the old one, fsync the
 * directory) before the value is used, and each has one writer: the daemon writes the
 * generation at start; the membership layer writes the promised epoch, from the cluster
 * worker thread in mxfsd (src/cluster/cluster-worker.ts), so the two never race on a file.
 * (Before epoch.json existed the epoch was in state.json; that value is still read as a floor.)
 *
 * The state_dir belongs to one daemon at a time: open() takes an exclusive lock on
 * `<state_dir>/mxfsd.lock` (NodeLock) before reading anything, held until close() or the
 * process ends, so a second daemon started as the same node refuses to start. (The cluster
 * worker thread opens epoch.json under that same lock, which its process holds.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { NodeLock, NodeLockError } from './node-lock';
import { writeFileDurably } from '../util/durable';
import { MAX_EPOCH } from '../cluster/peer-protocol';

interface Stored { generation: number; promisedEpoch: number }

/**
 * The highest value each counter may have: the promised epoch is bounded by the fencing
 * tokens it must leave room for (MAX_EPOCH); the generation so that the next one is exact.
 */
const COUNTER_MAX: Record<string, number> = { promisedEpoch: MAX_EPOCH, generation: Number.MAX_SAFE_INTEGER - 1 };

/**
 * The counters in `file` (undefined if it does not exist), each a whole number in 0..its
 * COUNTER_MAX. Refuses to guess: restarting the counters could reissue old fencing tokens, and
 * a value beyond the bound would spread to every peer (each promises the epochs it sees).
 */
function readCounters<K extends string>(file: string, keys: readonly K[]): Record<K, number> | undefined {
  if (!fs.existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new StateError(`state file ${file} is unreadable (${(e as Error).message}); restore it, or remove it only if every token this node ever issued is obsolete`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new StateError(`state file ${file} is malformed: it must hold a JSON object with ${keys.map((k) => `'${k}'`).join(', ')}, got ${JSON.stringify(raw)}`);
  const o = raw as Record<string, unknown>;
  for (const k of keys) {
    const n = o[k], max = COUNTER_MAX[k] ?? Number.MAX_SAFE_INTEGER;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
      const bound = k === 'promisedEpoch' ? ` (the highest epoch whose fencing tokens stay below 2^53)` : '';
      throw new StateError(`state file ${file} is malformed: '${k}' must be a whole number 0..${max}${bound}, got ${n === undefined ? 'nothing' : JSON.stringify(n)}; restore it from a backup`);
    }
  }
  return o as Record<K, number>;
}

/**
 * The highest membership epoch this node promised, in <state_dir>/epoch.json. Opened by
 * NodeState, and by the cluster worker thread, which is then its only writer. `floor`: a value
 * known from elsewhere (the old state.json field), never gone below.
 */
export class EpochFile {
  private v: number;

  private constructor(readonly file: string, v: number) { this.v = v; }

  static open(dir: string, floor = 0): EpochFile {
    const file = path.join(dir, 'epoch.json');
    const stored = readCounters(file, ['promisedEpoch']);
    return new EpochFile(file, Math.max(floor, stored?.promisedEpoch ?? 0));
  }

  get value(): number { return this.v; }

  /** Record a promised epoch (no-op unless higher), durable before returning. */
  promise(epoch: number): void {
    if (epoch <= this.v) return;
    writeFileDurably(this.file, JSON.stringify({ promisedEpoch: epoch }) + '\n');
    this.v = epoch;
  }
}

export class StateError extends Error {}

export class NodeState {
  private v: Stored;
  private readonly epochs: EpochFile;

  private constructor(readonly file: string, v: Stored, private readonly lock: NodeLock) {
    this.v = v;
    this.epochs = EpochFile.open(path.dirname(file), v.promisedEpoch);
  }

  get dir(): string { return path.dirname(this.file); }

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
    const stored = readCounters(file, ['generation', 'promisedEpoch']);
    const v: Stored = stored ? { generation: stored.generation, promisedEpoch: stored.promisedEpoch } : { generation: 0, promisedEpoch: 0 };
    return new NodeState(file, v, lock);
  }

  /** Release the state_dir (the daemon stopped; a dead process releases it anyway). */
  close(): void { this.lock.release(); }

  get generation(): number { return this.v.generation; }
  get promisedEpoch(): number { return this.epochs.value; }

  /** A new boot: the next generation, durable before it is returned. */
  nextGeneration(): number {
    this.write({ ...this.v, generation: this.v.generation + 1 });
    return this.v.generation;
  }

  /**
   * Record a promised epoch (no-op unless higher), durable before returning. Only for a
   * membership layer in this thread: with the cluster worker, the worker owns epoch.json.
   */
  promise(epoch: number): void { this.epochs.promise(epoch); }

  private write(v: Stored): void {
    writeFileDurably(this.file, JSON.stringify(v) + '\n');
    this.v = v;
  }
}
