/**
 * The volume record: who owns a volume, in which generation, in what state, and the last
 * recovery of a dead owner. docs/volumes.md says how it is kept:
 *
 *  - every owner writes it to a majority of the configured nodes (each keeps it durably in
 *    [node] state_dir, newest wins) before it mounts, and again at each change, so the next
 *    owner, reading a majority, always sees the last generation used — even when the owner's
 *    node died holding the lock and the DLM marked the lock value block invalid;
 *  - a compact copy travels in the lock value block of the volume's resource (any node can
 *    read it with a grant), written by the owner at every change and at release.
 *
 * Order: a record is newer than another when its generation is higher; in the same
 * generation, when its token is higher; then when its version is higher. Generations go up by
 * one per ownership change and never back; versions count one owner's updates. The token
 * breaks a tie that can happen: an owner that lost its lock while its claim of generation g
 * was still travelling, and the next owner that read the majority before that claim arrived
 * and claimed g too. The later EX grant has the higher fencing token, so every node orders
 * the two claims the same way and a reader never takes the abandoned claim for the live one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileDurably } from '../util/durable';

/**
 * clean       nobody has the volume mounted (last owner unmounted, or never mounted)
 * mounting    the owner is mounting it (no recovery needed)
 * recovering  the owner is taking over from a dead owner: its mount replays their log
 * mounted     the owner uses it
 * Anything but clean, found by a node that is not the owner, means the owner went away
 * without unmounting: a death to recover.
 */
export const RECORD_STATES = ['clean', 'mounting', 'recovering', 'mounted'] as const;
export type RecordState = (typeof RECORD_STATES)[number];

export interface RecoveryInfo {
  /** The node that recovered (mounted after the death). */
  by: number;
  /** The dead owner whose generation was recovered (the latest of a chain). */
  of: number;
  /** The unclean generations this recovery covered, fromGeneration..ofGeneration. */
  fromGeneration: number;
  ofGeneration: number;
  /** Wall-clock ms when it completed; how long from the grant to mounted, ms. */
  at: number;
  ms: number;
}

export interface VolumeRecord {
  volume: string;
  generation: number;
  version: number;
  /** Owner node id (0: none yet). */
  owner: number;
  state: RecordState;
  /** Fencing token of the owner's EX grant on the volume's resource. */
  token: number;
  /** The owner's fence bound (VolumeDriver.fenceBoundMs) when it took the volume. */
  fenceBoundMs: number;
  /** Wall-clock ms of this version. */
  since: number;
  /** While recovering: the first unclean generation being recovered and whose it was. */
  recovering?: { of: number; fromGeneration: number; ofGeneration: number };
  lastRecovery?: RecoveryInfo;
}

export function isNewer(a: VolumeRecord, b: VolumeRecord | undefined): boolean {
  if (!b) return true;
  if (a.generation !== b.generation) return a.generation > b.generation;
  if (a.token !== b.token) return a.token > b.token;
  return a.version > b.version;
}

export function newest(...rs: Array<VolumeRecord | undefined>): VolumeRecord | undefined {
  let best: VolumeRecord | undefined;
  for (const r of rs) if (r && isNewer(r, best)) best = r;
  return best;
}

// ---- validation (records arrive from peers and from disk) ---------------------------------

export class RecordError extends Error {}

function int(o: Record<string, unknown>, k: string, max: number): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new RecordError(`record field '${k}' must be an integer 0..${max}`);
  return v;
}

const U32 = 2 ** 32 - 1;

export function validateRecord(x: unknown): VolumeRecord {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new RecordError('record is not a map');
  const o = x as Record<string, unknown>;
  if (typeof o.volume !== 'string' || o.volume.length === 0 || o.volume.length > 64) throw new RecordError(`record field 'volume' must be a name`);
  if (!RECORD_STATES.includes(o.state as RecordState)) throw new RecordError(`record field 'state' must be one of ${RECORD_STATES.join(', ')}`);
  const r: VolumeRecord = {
    volume: o.volume, generation: int(o, 'generation', U32), version: int(o, 'version', U32), owner: int(o, 'owner', 1023),
    state: o.state as RecordState, token: int(o, 'token', Number.MAX_SAFE_INTEGER), fenceBoundMs: int(o, 'fenceBoundMs', U32),
    since: int(o, 'since', Number.MAX_SAFE_INTEGER),
  };
  if (o.recovering !== undefined) {
    const rv = o.recovering as Record<string, unknown>;
    if (typeof rv !== 'object' || rv === null) throw new RecordError(`record field 'recovering' must be a map`);
    r.recovering = { of: int(rv, 'of', 1023), fromGeneration: int(rv, 'fromGeneration', U32), ofGeneration: int(rv, 'ofGeneration', U32) };
  }
  if (o.lastRecovery !== undefined) {
    const lr = o.lastRecovery as Record<string, unknown>;
    if (typeof lr !== 'object' || lr === null) throw new RecordError(`record field 'lastRecovery' must be a map`);
    r.lastRecovery = {
      by: int(lr, 'by', 1023), of: int(lr, 'of', 1023), fromGeneration: int(lr, 'fromGeneration', U32),
      ofGeneration: int(lr, 'ofGeneration', U32), at: int(lr, 'at', Number.MAX_SAFE_INTEGER), ms: int(lr, 'ms', U32),
    };
  }
  return r;
}

// ---- the lock value block copy (32 bytes: the smallest lvb_size volumes accept) ----------

export const RECORD_LVB_BYTES = 32;
const LVB_MAGIC = 0x56; // 'V'

/**
 * Layout (little endian): magic u8, state u8, owner u16, generation u32, version u32,
 * fenceBoundMs u32, token u64 (as two u32), lastRecovery.by u16, lastRecovery.of u16,
 * lastRecovery.ofGeneration u32. Wall-clock times and durations stay in the full record.
 */
export function encodeRecordLvb(r: VolumeRecord): Buffer {
  const b = Buffer.alloc(RECORD_LVB_BYTES);
  b.writeUInt8(LVB_MAGIC, 0);
  b.writeUInt8(RECORD_STATES.indexOf(r.state), 1);
  b.writeUInt16LE(r.owner, 2);
  b.writeUInt32LE(r.generation, 4);
  b.writeUInt32LE(r.version, 8);
  b.writeUInt32LE(r.fenceBoundMs, 12);
  b.writeUInt32LE(r.token % 2 ** 32, 16);
  b.writeUInt32LE(Math.floor(r.token / 2 ** 32), 20);
  b.writeUInt16LE(r.lastRecovery?.by ?? 0, 24);
  b.writeUInt16LE(r.lastRecovery?.of ?? 0, 26);
  b.writeUInt32LE(r.lastRecovery?.ofGeneration ?? 0, 28);
  return b;
}

/** The record a valid LVB carries, or undefined (never written, or not a volume record). */
export function decodeRecordLvb(volume: string, lvb: Buffer | undefined, valid: boolean): VolumeRecord | undefined {
  if (!valid || !lvb || lvb.length < RECORD_LVB_BYTES || lvb.readUInt8(0) !== LVB_MAGIC) return undefined;
  const state = RECORD_STATES[lvb.readUInt8(1)];
  if (!state) return undefined;
  const r: VolumeRecord = {
    volume, state, owner: lvb.readUInt16LE(2), generation: lvb.readUInt32LE(4), version: lvb.readUInt32LE(8),
    fenceBoundMs: lvb.readUInt32LE(12), token: lvb.readUInt32LE(16) + lvb.readUInt32LE(20) * 2 ** 32, since: 0,
  };
  const by = lvb.readUInt16LE(24);
  if (by !== 0) r.lastRecovery = { by, of: lvb.readUInt16LE(26), fromGeneration: 0, ofGeneration: lvb.readUInt32LE(28), at: 0, ms: 0 };
  return r;
}

// ---- durable copies on this node ---------------------------------------------------------

/**
 * This node's durable copies of the volume records it has seen: one JSON file per volume
 * under <state_dir>/volumes/, replaced atomically (temporary file, fsync, rename, fsync of
 * the directory) before an acknowledgement leaves the node. Only a newer record replaces
 * the stored one.
 */
export class RecordStore {
  private cache = new Map<string, VolumeRecord | undefined>();

  constructor(readonly dir: string) {}

  static open(stateDir: string): RecordStore {
    const dir = path.join(stateDir, 'volumes');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new RecordStore(dir);
  }

  private file(volume: string): string { return path.join(this.dir, `${volume}.json`); }

  get(volume: string): VolumeRecord | undefined {
    if (this.cache.has(volume)) return this.cache.get(volume);
    let r: VolumeRecord | undefined;
    const f = this.file(volume);
    if (fs.existsSync(f)) {
      try {
        r = validateRecord(JSON.parse(fs.readFileSync(f, 'utf8')));
      } catch (e) {
        // Refuse to guess: forgetting a generation could let two owners share one.
        throw new RecordError(`volume record ${f} is unreadable (${(e as Error).message}); restore it from another node's state_dir`);
      }
    }
    this.cache.set(volume, r);
    return r;
  }

  /** Store `r` if it is newer than what is stored; true when it was stored. */
  put(r: VolumeRecord): boolean {
    if (!isNewer(r, this.get(r.volume))) return false;
    writeFileDurably(this.file(r.volume), JSON.stringify(r) + '\n');
    this.cache.set(r.volume, r);
    return true;
  }
}
