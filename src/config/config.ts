/**
 * mxfsd configuration: the schema of every section and key (as data tables), value parsing,
 * defaults, cross-field rules, and the ConfigError format "FILE:LINE: [section] key: reason".
 * The syntax layer lives in ./ini; docs/configuration.md is the operator-facing description
 * and must be kept in step with the SECTIONS table below.
 *
 * Strictness is intentional: a typo in a lock manager's timing section must stop the daemon
 * at startup, not silently fall back to a default.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { IniSection, IniSyntaxError, tokenizeIni } from './ini';
import { PRIVATE_BIND_SUFFIX_BYTES } from '../daemon/client-socket';
import { RECORD_LVB_BYTES } from '../volumes/record';
import { kernelVolumeNameError } from '../volumes/kernel-name';
import { lockLinkTimes } from '../cluster/options';

export interface NodeConfig { id: number; name: string; address: string; port: number; lockPort?: number; socket: string; socketMode: number; socketGroup?: string; kernel: 'auto' | 'on' | 'off'; stateDir: string }
export interface ClusterConfig { name: string; keyFile?: string; tiebreaker?: number }
export interface PeerConfig { id: number; name: string; address: string; port: number; lockPort?: number }
export type VolumeDriverKind = 'kernel' | 'command';
export type VolumeStart = 'none' | 'mount' | 'standby';
export interface VolumeCommands { mount?: string; umount?: string; recover?: string; fence?: string; fenceCheck?: string }
export interface VolumeConfig {
  name: string;
  device: string;
  mountpoint?: string;
  mountOptions?: string;
  /** auto: a standby takes over when the owner dies; manual: only an operator's mount does. */
  failover: 'auto' | 'manual';
  driver: VolumeDriverKind;
  /** What mxfsd does with the volume when it starts. */
  start: VolumeStart;
  /** Command driver: the commands (run with /bin/sh -c) and their bounds. */
  commands: VolumeCommands;
  commandTimeoutMs: number;
  /** Command driver: bound between losing the lease and the last write landing (the kernel driver reads it from the module). */
  fenceBoundMs: number;
}
export interface TimingConfig {
  leaseTimeoutMs: number; renewIntervalMs: number; clientKeepaliveMs: number; clientTimeoutMs: number; queryTimeoutMs: number; shutdownGraceMs: number;
  /** Lock links' idle check (lockLinkTimes in src/cluster/options.ts); absent: derived from renew_interval_ms. */
  lockLinkPingMs?: number;
  lockLinkDeadMs?: number;
}
export interface LockingConfig {
  lvbSize: number; idleEvictMs: number; maxFrameBytes: number; maxLocksPerClient: number; maxClients: number;
  /** Admission control: requests in flight per client connection and over the daemon; output queued per client. */
  maxRequestsPerClient: number; maxRequests: number; maxClientOutputBytes: number;
}
export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export type StderrFormat = 'auto' | 'json' | 'journal';
export interface LoggingConfig { level: LogLevelName; file?: string; syslog: boolean; syslogSocket: string; syslogFacility: string; stderr: boolean; stderrFormat: StderrFormat }
/** [trace]: the message trace (docs/tracing.md). */
export interface TraceConfig { enabled: boolean; ringSize: number; file?: string; fileMaxBytes: number; fileKeep: number }
/** [metrics]: the Prometheus text endpoint (docs/tracing.md, "Metrics"). */
export interface MetricsConfig { enabled: boolean; address: string; port: number; maxConnections: number }
export interface Config { file: string; node: NodeConfig; cluster: ClusterConfig; peers: PeerConfig[]; volumes: VolumeConfig[]; timing: TimingConfig; locking: LockingConfig; logging: LoggingConfig; trace: TraceConfig; metrics: MetricsConfig }

export class ConfigError extends Error {
  readonly file: string;
  readonly line?: number;
  readonly section?: string;
  readonly key?: string;
  /** What is wrong, without the location prefix. `message` is the full one-line form. */
  readonly reason: string;
  constructor(where: { file: string; line?: number; section?: string; key?: string }, reason: string) {
    super(formatParts(where.file, where.line, where.section, where.key, reason));
    this.name = 'ConfigError';
    this.file = where.file;
    this.line = where.line;
    this.section = where.section;
    this.key = where.key;
    this.reason = reason;
  }
}

/** "FILE:LINE: [section] key: what is wrong", leaving out the parts that are unknown. */
export function formatConfigError(e: ConfigError): string {
  return formatParts(e.file, e.line, e.section, e.key, e.reason);
}

function formatParts(file: string, line: number | undefined, section: string | undefined, key: string | undefined, reason: string): string {
  const head = line !== undefined ? `${file}:${line}:` : `${file}:`;
  const tag = [section !== undefined ? `[${section}]` : undefined, key].filter((s) => s !== undefined).join(' ');
  return tag ? `${head} ${tag}: ${reason}` : `${head} ${reason}`;
}

// ---------------------------------------------------------------------------------------
// Schema tables

/** Largest delay Node's timers accept; larger values silently become 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
/** sun_path is 108 bytes on Linux including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

type ValueType =
  | { kind: 'int'; min: number; max: number; unit?: 'milliseconds' | 'bytes' }
  | { kind: 'bool' }
  | { kind: 'octal' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'name'; maxLen: number }
  | { kind: 'address' }
  | { kind: 'group' }       // a group name or a numeric gid
  | { kind: 'path' }        // relative paths resolve against the config file's directory
  | { kind: 'absPath' }     // must already be absolute (block devices, mount points)
  | { kind: 'options' }     // mount options: comma-separated words [A-Za-z0-9_=.:/-]
  | { kind: 'command' };    // a shell command line (run with /bin/sh -c), one line

type Value = string | number | boolean;
interface KeySpec { type: ValueType; required?: boolean; default?: Value }
interface SectionSpec { count: 'exactly-one' | 'at-most-one' | 'any'; keys: Record<string, KeySpec> }

const ms = (min: number): ValueType => ({ kind: 'int', min, max: MAX_TIMER_MS, unit: 'milliseconds' });
const NODE_ID: ValueType = { kind: 'int', min: 1, max: 1023 };
const PORT: ValueType = { kind: 'int', min: 1, max: 65535 };
const NAME32: ValueType = { kind: 'name', maxLen: 32 };
const NODE_NAME: ValueType = { kind: 'name', maxLen: 64 };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const SYSLOG_FACILITIES = ['user', 'daemon', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
export const STDERR_FORMATS = ['auto', 'json', 'journal'] as const;
export const DEFAULT_PORT = 7600;
/** Where mxfsd and mxfsctl look for the configuration when --config is not given. */
export const DEFAULT_CONFIG_FILE = '/etc/mxfs/mxfs.conf';

const SECTIONS: Record<string, SectionSpec> = {
  node: {
    count: 'exactly-one',
    keys: {
      id: { type: NODE_ID, required: true },
      name: { type: NODE_NAME },                       // default "node<id>"
      address: { type: { kind: 'address' }, default: '127.0.0.1' },
      port: { type: PORT, default: DEFAULT_PORT },
      lock_port: { type: PORT },                       // the lock engine's own peer link; absent: none
      socket: { type: { kind: 'path' }, default: '/run/mxfs/mxfsd.sock' },
      socket_mode: { type: { kind: 'octal' }, default: 0o660 },
      socket_group: { type: { kind: 'group' } },
      state_dir: { type: { kind: 'path' }, default: '/var/lib/mxfs' },
      kernel: { type: { kind: 'enum', values: ['auto', 'on', 'off'] }, default: 'auto' },
    },
  },
  cluster: {
    count: 'at-most-one',
    keys: {
      name: { type: NAME32, default: 'mxfs' },
      key_file: { type: { kind: 'path' } },
      tiebreaker: { type: NODE_ID },
    },
  },
  peer: {
    count: 'any',
    keys: {
      id: { type: NODE_ID, required: true },
      name: { type: NODE_NAME },                       // default "node<id>"
      address: { type: { kind: 'address' }, required: true },
      port: { type: PORT, default: DEFAULT_PORT },
      lock_port: { type: PORT },
    },
  },
  volume: {
    count: 'any',
    keys: {
      name: { type: NAME32, required: true },
      device: { type: { kind: 'absPath' }, required: true },
      mountpoint: { type: { kind: 'absPath' } },
      mount_options: { type: { kind: 'options' } },
      failover: { type: { kind: 'enum', values: ['auto', 'manual'] }, default: 'auto' },
      driver: { type: { kind: 'enum', values: ['kernel', 'command'] }, default: 'kernel' },
      start: { type: { kind: 'enum', values: ['none', 'mount', 'standby'] }, default: 'none' },
      mount_cmd: { type: { kind: 'command' } },
      umount_cmd: { type: { kind: 'command' } },
      recover_cmd: { type: { kind: 'command' } },
      fence_cmd: { type: { kind: 'command' } },
      fence_check_cmd: { type: { kind: 'command' } },
      command_timeout_ms: { type: ms(100), default: 60000 },
      fence_bound_ms: { type: ms(0), default: 1000 },
    },
  },
  timing: {
    count: 'at-most-one',
    keys: {
      lease_timeout_ms: { type: ms(500), default: 10000 },
      renew_interval_ms: { type: ms(1), default: 2000 },
      client_keepalive_ms: { type: ms(1), default: 1000 },
      client_timeout_ms: { type: ms(1), default: 5000 },
      query_timeout_ms: { type: ms(1), default: 5000 },
      shutdown_grace_ms: { type: ms(0), default: 5000 },
      // No fixed default: half a renew interval and one renew interval (lockLinkTimes).
      lock_link_ping_ms: { type: ms(10) },
      lock_link_dead_ms: { type: ms(10) },
    },
  },
  locking: {
    count: 'at-most-one',
    keys: {
      lvb_size: { type: { kind: 'int', min: 0, max: 1024, unit: 'bytes' }, default: 32 },
      idle_evict_ms: { type: ms(100), default: 60000 },
      max_frame_bytes: { type: { kind: 'int', min: 1024, max: 16_777_216, unit: 'bytes' }, default: 65536 },
      max_locks_per_client: { type: { kind: 'int', min: 1, max: MAX_TIMER_MS }, default: 100000 },
      max_clients: { type: { kind: 'int', min: 1, max: 1_000_000 }, default: 1024 },
      max_requests_per_client: { type: { kind: 'int', min: 1, max: 1_000_000 }, default: 1024 },
      max_requests: { type: { kind: 'int', min: 1, max: 10_000_000 }, default: 16384 },
      max_client_output_bytes: { type: { kind: 'int', min: 65536, max: 1 << 30, unit: 'bytes' }, default: 8 * 1024 * 1024 },
    },
  },
  logging: {
    count: 'at-most-one',
    keys: {
      level: { type: { kind: 'enum', values: LOG_LEVELS }, default: 'info' },
      file: { type: { kind: 'path' } },
      syslog: { type: { kind: 'bool' }, default: false },
      syslog_socket: { type: { kind: 'path' }, default: '/dev/log' },
      syslog_facility: { type: { kind: 'enum', values: SYSLOG_FACILITIES }, default: 'daemon' },
      stderr: { type: { kind: 'bool' }, default: true },
      stderr_format: { type: { kind: 'enum', values: STDERR_FORMATS }, default: 'auto' },
    },
  },
  trace: {
    count: 'at-most-one',
    keys: {
      enabled: { type: { kind: 'bool' }, default: false },
      ring_size: { type: { kind: 'int', min: 16, max: 10_000_000 }, default: 65536 },
      file: { type: { kind: 'path' } },
      file_max_bytes: { type: { kind: 'int', min: 65536, max: 2 ** 40, unit: 'bytes' }, default: 64 * 1024 * 1024 },
      file_keep: { type: { kind: 'int', min: 0, max: 64 }, default: 3 },
    },
  },
  metrics: {
    count: 'at-most-one',
    keys: {
      enabled: { type: { kind: 'bool' }, default: false },
      address: { type: { kind: 'address' }, default: '127.0.0.1' },
      port: { type: PORT, default: 9464 },
      max_connections: { type: { kind: 'int', min: 1, max: 1024 }, default: 16 },
    },
  },
};

/** Defaults of every optional key, in the shape of Config (node id/name and lists excluded). */
export function configDefaults(): { node: Omit<NodeConfig, 'id' | 'name'>; cluster: ClusterConfig; timing: TimingConfig; locking: LockingConfig; logging: LoggingConfig; trace: TraceConfig; metrics: MetricsConfig } {
  const text = '[node]\nid = 1\n';
  const c = parseConfig(text, '/defaults.conf');
  const { id: _id, name: _name, ...node } = c.node;
  return { node, cluster: c.cluster, timing: c.timing, locking: c.locking, logging: c.logging, trace: c.trace, metrics: c.metrics };
}

// ---------------------------------------------------------------------------------------
// Parsing

interface SetValue { value: Value; line: number }
interface Instance { name: string; line: number; values: Map<string, SetValue> }

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError({ file }, `cannot read config file: ${fileErrorReason(e)}`);
  }
  return parseConfig(text, file);
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory', ENOTDIR: 'a component of the path is not a directory', ELOOP: 'too many symbolic links',
};

/** "no such file (ENOENT)": what went wrong opening a file, without repeating its path. */
export function fileErrorReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code && FILE_ERRORS[code]) return `${FILE_ERRORS[code]} (${code})`;
  return code ?? (e as Error).message;
}

export function parseConfig(text: string, file: string): Config {
  const dir = path.dirname(path.resolve(file));
  let raw: IniSection[];
  try {
    raw = tokenizeIni(text);
  } catch (e) {
    if (e instanceof IniSyntaxError) throw new ConfigError({ file, line: e.line, key: e.key }, e.reason);
    throw e;
  }

  const bySection = new Map<string, Instance[]>();
  for (const sec of raw) {
    const spec = SECTIONS[sec.name];
    if (!spec) {
      const hint = closest(sec.name, Object.keys(SECTIONS));
      throw new ConfigError({ file, line: sec.line, section: sec.name },
        `unknown section [${sec.name}]${hint ? ` (did you mean [${hint}]?)` : ` (known: ${Object.keys(SECTIONS).map((s) => `[${s}]`).join(', ')})`}`);
    }
    const list = bySection.get(sec.name) ?? [];
    if (spec.count !== 'any' && list.length > 0) {
      throw new ConfigError({ file, line: sec.line, section: sec.name },
        `section [${sec.name}] may appear only once (first at line ${list[0].line})`);
    }
    const inst: Instance = { name: sec.name, line: sec.line, values: new Map() };
    for (const ent of sec.entries) {
      const where = { file, line: ent.line, section: sec.name, key: ent.key };
      const keySpec = spec.keys[ent.key];
      if (!keySpec) throw new ConfigError(where, unknownKeyReason(sec.name, ent.key));
      const prev = inst.values.get(ent.key);
      if (prev) throw new ConfigError(where, `duplicate key '${ent.key}' in this [${sec.name}] section (first set at line ${prev.line})`);
      const parsed = parseValue(keySpec.type, ent.key, ent.value, dir);
      if (typeof parsed === 'object') throw new ConfigError(where, parsed.error);
      inst.values.set(ent.key, { value: parsed, line: ent.line });
    }
    for (const [key, ks] of Object.entries(spec.keys)) {
      if (ks.required && !inst.values.has(key)) {
        throw new ConfigError({ file, line: sec.line, section: sec.name, key }, `missing required key '${key}'`);
      }
    }
    list.push(inst);
    bySection.set(sec.name, list);
  }
  for (const [name, spec] of Object.entries(SECTIONS)) {
    if (spec.count === 'exactly-one' && !bySection.has(name)) {
      throw new ConfigError({ file, section: name }, `missing required section [${name}]`);
    }
  }

  const one = (name: string): Instance | undefined => bySection.get(name)?.[0];
  const config: Config = {
    file: path.resolve(file),
    node: buildNode(one('node')!),
    cluster: buildCluster(one('cluster')),
    peers: (bySection.get('peer') ?? []).map(buildPeer),
    volumes: (bySection.get('volume') ?? []).map(buildVolume),
    timing: buildTiming(one('timing')),
    locking: buildLocking(one('locking')),
    logging: buildLogging(one('logging')),
    trace: buildTrace(one('trace')),
    metrics: {
      enabled: get('metrics', one('metrics'), 'enabled'), address: get('metrics', one('metrics'), 'address'), port: get('metrics', one('metrics'), 'port'),
      maxConnections: get('metrics', one('metrics'), 'max_connections'),
    },
  };
  checkCrossFieldRules(config, file, bySection);
  return config;
}

/** Value of `key` in `inst` if set there, else the schema default. */
function get<T extends Value>(section: string, inst: Instance | undefined, key: string): T {
  const set = inst?.values.get(key);
  if (set) return set.value as T;
  return SECTIONS[section].keys[key].default as T;
}
function getOpt<T extends Value>(inst: Instance | undefined, key: string): T | undefined {
  return inst?.values.get(key)?.value as T | undefined;
}

function buildNode(inst: Instance): NodeConfig {
  const id = get<number>('node', inst, 'id');
  const n: NodeConfig = {
    id,
    name: getOpt<string>(inst, 'name') ?? `node${id}`,
    address: get('node', inst, 'address'),
    port: get('node', inst, 'port'),
    socket: get('node', inst, 'socket'),
    socketMode: get('node', inst, 'socket_mode'),
    kernel: get('node', inst, 'kernel'),
    stateDir: get('node', inst, 'state_dir'),
  };
  const group = getOpt<string>(inst, 'socket_group');
  if (group !== undefined) n.socketGroup = group;
  const lockPort = getOpt<number>(inst, 'lock_port');
  if (lockPort !== undefined) n.lockPort = lockPort;
  return n;
}

function buildCluster(inst: Instance | undefined): ClusterConfig {
  const c: ClusterConfig = { name: get('cluster', inst, 'name') };
  const keyFile = getOpt<string>(inst, 'key_file');
  if (keyFile !== undefined) c.keyFile = keyFile;
  const tb = getOpt<number>(inst, 'tiebreaker');
  if (tb !== undefined) c.tiebreaker = tb;
  return c;
}

function buildPeer(inst: Instance): PeerConfig {
  const id = get<number>('peer', inst, 'id');
  const p: PeerConfig = { id, name: getOpt<string>(inst, 'name') ?? `node${id}`, address: get('peer', inst, 'address'), port: get('peer', inst, 'port') };
  const lockPort = getOpt<number>(inst, 'lock_port');
  if (lockPort !== undefined) p.lockPort = lockPort;
  return p;
}

function buildVolume(inst: Instance): VolumeConfig {
  const commands: VolumeCommands = {};
  const cmds = { mount: 'mount_cmd', umount: 'umount_cmd', recover: 'recover_cmd', fence: 'fence_cmd', fenceCheck: 'fence_check_cmd' } as const;
  for (const [k, key] of Object.entries(cmds)) {
    const c = getOpt<string>(inst, key);
    if (c !== undefined) commands[k as keyof VolumeCommands] = c;
  }
  const v: VolumeConfig = {
    name: get('volume', inst, 'name'), device: get('volume', inst, 'device'),
    failover: get('volume', inst, 'failover'), driver: get('volume', inst, 'driver'), start: get('volume', inst, 'start'),
    commands, commandTimeoutMs: get('volume', inst, 'command_timeout_ms'), fenceBoundMs: get('volume', inst, 'fence_bound_ms'),
  };
  const mp = getOpt<string>(inst, 'mountpoint');
  if (mp !== undefined) v.mountpoint = mp;
  const mo = getOpt<string>(inst, 'mount_options');
  if (mo !== undefined) v.mountOptions = mo;
  return v;
}

function buildTiming(inst: Instance | undefined): TimingConfig {
  const ping = getOpt<number>(inst, 'lock_link_ping_ms');
  const dead = getOpt<number>(inst, 'lock_link_dead_ms');
  return {
    ...(ping !== undefined ? { lockLinkPingMs: ping } : {}),
    ...(dead !== undefined ? { lockLinkDeadMs: dead } : {}),
    leaseTimeoutMs: get('timing', inst, 'lease_timeout_ms'),
    renewIntervalMs: get('timing', inst, 'renew_interval_ms'),
    clientKeepaliveMs: get('timing', inst, 'client_keepalive_ms'),
    clientTimeoutMs: get('timing', inst, 'client_timeout_ms'),
    queryTimeoutMs: get('timing', inst, 'query_timeout_ms'),
    shutdownGraceMs: get('timing', inst, 'shutdown_grace_ms'),
  };
}

function buildLocking(inst: Instance | undefined): LockingConfig {
  return {
    lvbSize: get('locking', inst, 'lvb_size'),
    idleEvictMs: get('locking', inst, 'idle_evict_ms'),
    maxFrameBytes: get('locking', inst, 'max_frame_bytes'),
    maxLocksPerClient: get('locking', inst, 'max_locks_per_client'),
    maxClients: get('locking', inst, 'max_clients'),
    maxRequestsPerClient: get('locking', inst, 'max_requests_per_client'),
    maxRequests: get('locking', inst, 'max_requests'),
    maxClientOutputBytes: get('locking', inst, 'max_client_output_bytes'),
  };
}

function buildLogging(inst: Instance | undefined): LoggingConfig {
  const l: LoggingConfig = {
    level: get('logging', inst, 'level'),
    syslog: get('logging', inst, 'syslog'),
    syslogSocket: get('logging', inst, 'syslog_socket'),
    syslogFacility: get('logging', inst, 'syslog_facility'),
    stderr: get('logging', inst, 'stderr'),
    stderrFormat: get('logging', inst, 'stderr_format'),
  };
  const file = getOpt<string>(inst, 'file');
  if (file !== undefined) l.file = file;
  return l;
}

function buildTrace(inst: Instance | undefined): TraceConfig {
  const t: TraceConfig = {
    enabled: get('trace', inst, 'enabled'), ringSize: get('trace', inst, 'ring_size'),
    fileMaxBytes: get('trace', inst, 'file_max_bytes'), fileKeep: get('trace', inst, 'file_keep'),
  };
  const file = getOpt<string>(inst, 'file');
  if (file !== undefined) t.file = file;
  return t;
}

// ---------------------------------------------------------------------------------------
// Values

const NAME_CHARS = /^[A-Za-z0-9_.-]+$/;
/** What useradd/groupadd accept (plus a numeric gid). */
const GROUP_NAME = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const BOOLS: Record<string, boolean> = { true: true, yes: true, '1': true, false: false, no: false, '0': false };

/** Parsed value, or { error } with the reason (the caller adds file/line/section/key). */
function parseValue(t: ValueType, key: string, v: string, dir: string): Value | { error: string } {
  if (v === '') return { error: `empty value for '${key}' (remove the line to use the default)` };
  const shown = v.length > 60 ? `${v.slice(0, 57)}...` : v;
  switch (t.kind) {
    case 'int': {
      const unit = t.unit ? ` ${t.unit}` : '';
      if (!/^[0-9]+$/.test(v)) {
        const what = t.unit ? `a whole number of ${t.unit}` : 'a whole number';
        return { error: `'${key}' must be ${what} written in decimal digits only (no units, signs, exponents or hex), got '${shown}'` };
      }
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < t.min || n > t.max) {
        return { error: `'${key}' out of range: ${shown}${unit} (allowed ${t.min}..${t.max}${unit})` };
      }
      return n;
    }
    case 'bool': {
      const b = BOOLS[v.toLowerCase()];
      if (b === undefined) return { error: `'${key}' must be a boolean (true/false, yes/no, 1/0), got '${shown}'` };
      return b;
    }
    case 'octal': {
      if (!/^(?:0o)?[0-7]{3,4}$/i.test(v)) return { error: `'${key}' must be an octal file mode like 0660, got '${shown}'` };
      const mode = parseInt(v.replace(/^0o/i, ''), 8);
      // Permission bits only: setuid, setgid and sticky (07000) mean nothing on a socket.
      if (mode > 0o777) return { error: `'${key}' must be permission bits 0000..0777 (setuid, setgid and sticky do not apply), got '${shown}'` };
      return mode;
    }
    case 'enum':
      if (!t.values.includes(v)) return { error: `'${key}' must be one of ${t.values.join(', ')}; got '${shown}'` };
      return v;
    case 'name':
      if (!NAME_CHARS.test(v) || v.length > t.maxLen) {
        return { error: `'${key}' must be 1..${t.maxLen} characters from [A-Za-z0-9_.-], got '${shown}'` };
      }
      return v;
    case 'address':
      if (!isValidAddress(v)) return { error: `'${key}' must be an IPv4 address, IPv6 address or hostname, got '${shown}'` };
      return v;
    case 'group':
      if (!GROUP_NAME.test(v)) return { error: `'${key}' must be a group name or a numeric gid, got '${shown}'` };
      return v;
    case 'path': {
      if (v.includes('\0')) return { error: `'${key}' contains a NUL byte` };
      return path.resolve(dir, v);
    }
    case 'absPath':
      if (v.includes('\0')) return { error: `'${key}' contains a NUL byte` };
      if (!path.isAbsolute(v)) return { error: `'${key}' must be an absolute path, got '${shown}'` };
      return path.normalize(v);
    case 'options':
      if (!/^[A-Za-z0-9_=.:/-]+(,[A-Za-z0-9_=.:/-]+)*$/.test(v) || v.length > 512) {
        return { error: `'${key}' must be comma-separated mount options (letters, digits and _ = . : / -), got '${shown}'` };
      }
      return v;
    case 'command':
      if (/[\0\r\n]/.test(v)) return { error: `'${key}' must be one line without NUL bytes` };
      if (v.length > 4096) return { error: `'${key}' is longer than 4096 characters` };
      return v;
  }
}

function isValidAddress(v: string): boolean {
  if (net.isIP(v) !== 0) return true;
  // All-digit dotted strings are meant as IPv4; don't let "300.1.1.1" pass as a hostname.
  if (/^[0-9.]+$/.test(v)) return false;
  if (v.length > 253) return false;
  return v.replace(/\.$/, '').split('.').every((label) => HOST_LABEL.test(label));
}

function unknownKeyReason(section: string, key: string): string {
  const known = Object.keys(SECTIONS[section].keys);
  const hint = closest(key, known);
  if (hint) return `unknown key '${key}' (did you mean '${hint}'?)`;
  const elsewhere = Object.entries(SECTIONS).filter(([, s]) => key in s.keys).map(([n]) => `[${n}]`);
  if (elsewhere.length) return `unknown key '${key}' in [${section}] (it belongs in ${elsewhere.join(' or ')})`;
  return `unknown key '${key}' (known keys in [${section}]: ${known.join(', ')})`;
}

/** Closest candidate within edit distance 2, or undefined. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDist) { best = c; bestDist = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  // Long garbage keys can't be within 2 of a short name; skip the quadratic work.
  if (Math.abs(a.length - b.length) > 2) return Math.abs(a.length - b.length);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------
// Cross-field rules

function checkCrossFieldRules(c: Config, file: string, bySection: Map<string, Instance[]>): void {
  const one = (name: string) => bySection.get(name)?.[0];
  /** Line of the first of `keys` set in `inst`, else the section header line. */
  const lineOf = (inst: Instance | undefined, ...keys: string[]): number | undefined => {
    for (const k of keys) { const s = inst?.values.get(k); if (s) return s.line; }
    return inst?.line;
  };
  const fail = (section: string, inst: Instance | undefined, key: string, reason: string, ...lineKeys: string[]): never => {
    throw new ConfigError({ file, line: lineOf(inst, key, ...lineKeys), section, key }, reason);
  };

  const node = one('node');
  if (Buffer.byteLength(c.node.socket) > MAX_SOCKET_PATH_BYTES) {
    fail('node', node, 'socket', `socket path is ${Buffer.byteLength(c.node.socket)} bytes; unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES}`);
  }
  // mxfsd binds the socket in a private directory beside it first (src/daemon/client-socket.ts).
  const sockDir = Buffer.byteLength(path.dirname(c.node.socket));
  if (sockDir + PRIVATE_BIND_SUFFIX_BYTES > MAX_SOCKET_PATH_BYTES) {
    fail('node', node, 'socket', `the socket's directory is ${sockDir} bytes; at most ${MAX_SOCKET_PATH_BYTES - PRIVATE_BIND_SUFFIX_BYTES} are allowed (mxfsd first binds the socket in a private directory inside it, and unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES} bytes)`);
  }

  // Timing: the lease protocol's safety depends on these orderings.
  const tm = one('timing');
  const t = c.timing;
  if (t.renewIntervalMs * 2 >= t.leaseTimeoutMs) {
    fail('timing', tm, 'renew_interval_ms', `renew_interval_ms (${t.renewIntervalMs}) must be less than half of lease_timeout_ms (${t.leaseTimeoutMs}) so a lease gets at least two renewal attempts before it expires`, 'lease_timeout_ms');
  }
  // A daemon's last heartbeat to its clients can precede its last lease renewal by up to one
  // renew interval; the client must still give up before peers can declare the node dead.
  if (t.clientTimeoutMs + t.renewIntervalMs >= t.leaseTimeoutMs) {
    fail('timing', tm, 'client_timeout_ms', `client_timeout_ms (${t.clientTimeoutMs}) + renew_interval_ms (${t.renewIntervalMs}) must be less than lease_timeout_ms (${t.leaseTimeoutMs}) so a client gives up its locks before the cluster could regrant them`, 'lease_timeout_ms');
  }
  // A lock link that swallows frames is given up (its traffic moves to the worker's links) before a lease could lapse.
  const ll = lockLinkTimes(t);
  if (ll.pingAfterMs + ll.deadAfterMs >= t.leaseTimeoutMs) {
    const key = t.lockLinkDeadMs !== undefined ? 'lock_link_dead_ms' : t.lockLinkPingMs !== undefined ? 'lock_link_ping_ms' : 'renew_interval_ms';
    fail('timing', tm, key, `lock_link_ping_ms (${ll.pingAfterMs}) + lock_link_dead_ms (${ll.deadAfterMs}) must be less than lease_timeout_ms (${t.leaseTimeoutMs}) so a silent lock link is given up before a lease could lapse`, 'lock_link_ping_ms', 'lease_timeout_ms');
  }
  if (t.clientTimeoutMs <= 2 * t.clientKeepaliveMs) {
    fail('timing', tm, 'client_timeout_ms', `client_timeout_ms (${t.clientTimeoutMs}) must be greater than 2 * client_keepalive_ms (${t.clientKeepaliveMs}) so one lost keepalive does not drop a client`, 'client_keepalive_ms');
  }

  // A client must be able to hold two whole replies queued without being cut off.
  const lk = one('locking');
  if (c.locking.maxClientOutputBytes < 2 * c.locking.maxFrameBytes) {
    fail('locking', lk, 'max_client_output_bytes', `max_client_output_bytes (${c.locking.maxClientOutputBytes}) must be at least 2 * max_frame_bytes (${c.locking.maxFrameBytes}) so two whole replies fit in a client's output queue`, 'max_frame_bytes');
  }

  // Membership: ids, names and endpoints must identify exactly one node each.
  const peers = bySection.get('peer') ?? [];
  const ids = new Map<number, string>([[c.node.id, `[node] at line ${node?.line}`]]);
  const names = new Map<string, string>([[c.node.name, `[node] at line ${node?.line}`]]);
  const endpoints = new Map<string, string>([[endpoint(c.node.address, c.node.port), `[node] at line ${node?.line}`]]);
  if (c.node.lockPort !== undefined) {
    const ep = endpoint(c.node.address, c.node.lockPort);
    if (endpoints.has(ep)) fail('node', node, 'lock_port', `lock_port ${c.node.lockPort} is the node's peer port: the lock link needs a port of its own`);
    endpoints.set(ep, `[node] at line ${node?.line} (lock_port)`);
  }
  c.peers.forEach((p, i) => {
    const inst = peers[i];
    const here = `[peer] at line ${inst.line}`;
    const idOwner = ids.get(p.id);
    if (idOwner) fail('peer', inst, 'id', `id ${p.id} is already used by ${idOwner}`);
    ids.set(p.id, here);
    const nameOwner = names.get(p.name);
    if (nameOwner) fail('peer', inst, 'name', `name '${p.name}' is already used by ${nameOwner}`, 'id');
    names.set(p.name, here);
    const ep = endpoint(p.address, p.port);
    const epOwner = endpoints.get(ep);
    if (epOwner) fail('peer', inst, 'address', `address:port ${ep} is already used by ${epOwner}`, 'port');
    endpoints.set(ep, here);
    if (p.lockPort !== undefined) {
      const lep = endpoint(p.address, p.lockPort);
      const lepOwner = endpoints.get(lep);
      if (lepOwner) fail('peer', inst, 'lock_port', `address:lock_port ${lep} is already used by ${lepOwner}`);
      endpoints.set(lep, `${here} (lock_port)`);
    }
  });

  // The metrics endpoint must not take a port this node listens on for its peers (else mxfsd
  // would find its own cluster port busy at start, after --check-config said ok).
  const m = c.metrics;
  if (m.enabled && c.peers.length > 0) {
    const overlaps = (a: string) => a === m.address || [a, m.address].some((x) => x === '0.0.0.0' || x === '::');
    for (const [key, port] of [['port', c.node.port], ['lock_port', c.node.lockPort]] as const) {
      if (port === m.port && overlaps(c.node.address)) {
        fail('metrics', one('metrics'), 'port', `port ${m.port} is this node's peer ${key === 'port' ? 'port' : 'lock_port'} ([node] ${node?.values.get(key) ? `${key} at line ${node.values.get(key)!.line}` : `${key}, the default`}): the metrics endpoint needs a port of its own`);
      }
    }
  }

  const cl = one('cluster');
  if (c.peers.length > 0 && c.cluster.keyFile === undefined) {
    fail('cluster', cl, 'key_file', `key_file is required when [peer] sections are configured: peers must prove they know the cluster key`);
  }
  if (c.cluster.tiebreaker !== undefined) {
    const tb = c.cluster.tiebreaker;
    if (!ids.has(tb)) {
      fail('cluster', cl, 'tiebreaker', `tiebreaker ${tb} is neither this node's id (${c.node.id}) nor a [peer] id`);
    }
    const size = 1 + c.peers.length;
    if (size !== 2) {
      fail('cluster', cl, 'tiebreaker', `tiebreaker is only meaningful in a two-node cluster; this config has ${size} node(s)`);
    }
  }

  const vols = bySection.get('volume') ?? [];
  const seen = { name: new Map<string, number>(), device: new Map<string, number>(), mountpoint: new Map<string, number>() };
  c.volumes.forEach((v, i) => {
    const inst = vols[i];
    for (const key of ['name', 'device', 'mountpoint'] as const) {
      const val = v[key];
      if (val === undefined) continue;
      const first = seen[key].get(val);
      if (first !== undefined) fail('volume', inst, key, `${key} '${val}' is already used by the [volume] at line ${first}`);
      seen[key].set(val, inst.line);
    }
    if (v.driver === 'command') {
      for (const [k, key] of [['mount', 'mount_cmd'], ['umount', 'umount_cmd']] as const) {
        if (v.commands[k] === undefined) fail('volume', inst, key, `driver = command needs ${key} (the command that ${k === 'mount' ? 'mounts' : 'unmounts'} the volume)`, 'driver');
      }
    } else {
      if (c.node.kernel === 'off') fail('volume', inst, 'driver', `driver = kernel needs the kernel module, but [node] kernel = off (use driver = command with mount_cmd/umount_cmd, or enable the kernel)`);
      for (const key of ['mount_cmd', 'umount_cmd', 'fence_cmd'] as const) {
        if (inst.values.has(key)) fail('volume', inst, key, `${key} is for driver = command; with driver = kernel the module mounts, unmounts and fences`);
      }
      const nameErr = kernelVolumeNameError(v.name);
      if (nameErr) fail('volume', inst, 'name', `with driver = kernel, ${nameErr}`);
    }
  });
  if (c.volumes.length > 0 && c.locking.lvbSize < RECORD_LVB_BYTES) {
    const lk = one('locking');
    fail('locking', lk, 'lvb_size', `lvb_size must be at least ${RECORD_LVB_BYTES} bytes when [volume] sections are configured (each volume's record travels in its lock value block)`);
  }
}

function endpoint(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address.toLowerCase()}]:${port}` : `${address.toLowerCase()}:${port}`;
}
