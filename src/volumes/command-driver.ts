/**
 * CommandVolumeDriver: a VolumeDriver made of configured shell commands, for hosts without
 * the mxfs kernel module and for tests. One instance per [volume] with driver = command.
 *
 * Every command runs as `/bin/sh -c <command>` in its own process group, with a bound
 * (command_timeout_ms: SIGTERM to the group, SIGKILL 2 s later), and sees in its environment:
 *   MXFS_VOLUME MXFS_DEVICE MXFS_MOUNTPOINT MXFS_MOUNT_OPTIONS MXFS_NODE
 *   MXFS_GENERATION MXFS_TOKEN                         (mount, recover, umount)
 *   MXFS_RECOVERY_OF MXFS_RECOVERY_GENERATION MXFS_RECOVERY_FROM_GENERATION  (a takeover)
 *   MXFS_FENCE_CAUSE                                   (fence)
 *   MXFS_OLD_OWNER MXFS_OLD_GENERATION                 (fence check)
 * Exit status 0 is success; otherwise the last line the command wrote to stderr (or stdout)
 * becomes the one-line error.
 *
 * What this driver cannot do, and docs/volumes.md says: it has no lease of its own in the
 * kernel, so a node whose daemon is dead or stopped runs no fence_cmd. Safety then rests on
 * what the commands do: storage that refuses writes of an older generation (MXFS_GENERATION),
 * or a fence_check_cmd that proves the old owner is off (e.g. a power switch's status).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { VolumeConfig } from '../config/config';
import type { Clock } from '../util/clock';
import {
  DriverEvent, DriverVolumeStatus, FenceReport, OwnershipContext, VolumeDriver, VolumeError, VolumeErrorCode, VolumeSpec,
} from './driver';

const OUTPUT_CAP = 64 * 1024;
const KILL_GRACE_MS = 2000;

export interface CommandResult { code: number | null; signal: string | null; out: string; err: string; timedOut: boolean }

/** Run one shell command with a bound; never rejects (spawn errors come back as code null). */
export function runCommand(cmd: string, env: Record<string, string>, timeoutMs: number, clock: Clock): Promise<CommandResult> {
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let timedOut = false;
    const child = spawn('/bin/sh', ['-c', cmd], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const group = (sig: NodeJS.Signals) => { try { if (child.pid) process.kill(-child.pid, sig); } catch { /* gone */ } };
    child.stdout.on('data', (d: Buffer) => { if (out.length < OUTPUT_CAP) out += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < OUTPUT_CAP) err += d.toString('utf8'); });
    let kill: ReturnType<Clock['setTimer']> | undefined;
    const term = clock.setTimer(() => {
      timedOut = true;
      group('SIGTERM');
      kill = clock.setTimer(() => group('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (e) => { err += e.message; });
    child.on('close', (code, signal) => {
      clock.clearTimer(term);
      clock.clearTimer(kill);
      resolve({ code, signal, out, err, timedOut });
    });
  });
}

/** The last non-empty line a command printed (stderr first), for a one-line error. */
export function lastLine(r: CommandResult): string {
  for (const text of [r.err, r.out]) {
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.length) return lines[lines.length - 1]!.slice(0, 300);
  }
  return '';
}

export function describeFailure(what: string, r: CommandResult, timeoutMs: number): string {
  const why = r.timedOut ? `did not finish within ${timeoutMs} ms`
    : r.code === null ? `was killed by ${r.signal ?? 'a signal'}`
      : `exited with status ${r.code}`;
  const line = lastLine(r);
  return `${what} ${why}${line ? `: ${line}` : ''}`;
}

export class CommandVolumeDriver implements VolumeDriver {
  readonly kind = 'command' as const;
  private mounted = false;
  private fenced = false;
  private handlers: Array<(ev: DriverEvent) => void> = [];

  constructor(private readonly v: VolumeConfig, private readonly node: number, private readonly clock: Clock) {}

  fenceBoundMs(): number { return this.v.fenceBoundMs; }

  private env(extra: Record<string, string | number | undefined> = {}): Record<string, string> {
    const e: Record<string, string> = {
      MXFS_VOLUME: this.v.name, MXFS_DEVICE: this.v.device, MXFS_MOUNTPOINT: this.v.mountpoint ?? '',
      MXFS_MOUNT_OPTIONS: this.v.mountOptions ?? '', MXFS_NODE: String(this.node),
    };
    for (const [k, x] of Object.entries(extra)) if (x !== undefined) e[k] = String(x);
    return e;
  }

  private ownership(ctx: OwnershipContext): Record<string, string | number | undefined> {
    return {
      MXFS_GENERATION: ctx.generation, MXFS_TOKEN: ctx.token,
      MXFS_RECOVERY_OF: ctx.recovery?.of, MXFS_RECOVERY_GENERATION: ctx.recovery?.generation,
      MXFS_RECOVERY_FROM_GENERATION: ctx.recovery?.fromGeneration,
    };
  }

  private async run(key: string, cmd: string, code: VolumeErrorCode, env: Record<string, string>): Promise<void> {
    const r = await runCommand(cmd, env, this.v.commandTimeoutMs, this.clock);
    if (r.code !== 0) throw new VolumeError(code, describeFailure(key, r, this.v.commandTimeoutMs));
  }

  async attach(_spec: VolumeSpec): Promise<void> {
    if (!fs.existsSync(this.v.device)) throw new VolumeError('DEVICE_MISSING', `device ${this.v.device} does not exist on this node`);
  }

  async mount(ctx: OwnershipContext): Promise<void> {
    if (!fs.existsSync(this.v.device)) throw new VolumeError('DEVICE_MISSING', `device ${this.v.device} does not exist on this node`);
    if (this.v.mountpoint !== undefined && !fs.existsSync(this.v.mountpoint)) {
      throw new VolumeError('MOUNTPOINT_MISSING', `mountpoint ${this.v.mountpoint} does not exist on this node`);
    }
    const env = this.env(this.ownership(ctx));
    const r = await runCommand(this.v.commands.mount!, env, this.v.commandTimeoutMs, this.clock);
    if (r.code !== 0) {
      const failed = describeFailure('mount_cmd', r, this.v.commandTimeoutMs);
      // An exit status says the mount did not happen; a timeout or a signal says nothing: the
      // mount may be in place (an XFS log replay can outlast the bound). Undo it before the
      // volume is given back, or report that it may still be mounted here (UMOUNT_FAILED).
      if (!r.timedOut && r.code !== null) throw new VolumeError('MOUNT_FAILED', failed);
      try {
        await this.run('umount_cmd', this.v.commands.umount!, 'UMOUNT_FAILED', env);
      } catch (e) {
        this.mounted = true;
        throw new VolumeError('UMOUNT_FAILED', `${failed}; it may have mounted, and ${(e as Error).message}`);
      }
      throw new VolumeError('MOUNT_FAILED', `${failed} (umount_cmd was run to undo whatever it did)`);
    }
    this.mounted = true;
    this.fenced = false;
  }

  async afterRecovery(ctx: OwnershipContext): Promise<void> {
    if (this.v.commands.recover === undefined) return;
    await this.run('recover_cmd', this.v.commands.recover, 'RECOVER_FAILED', this.env(this.ownership(ctx)));
  }

  async umount(ctx: OwnershipContext): Promise<void> {
    const r = await runCommand(this.v.commands.umount!, this.env(this.ownership(ctx)), this.v.commandTimeoutMs, this.clock);
    // An exit status is umount's word (nothing unmounted); a timeout or a signal says nothing:
    // the volume may be unmounted, half way, or still mounted.
    if (r.code !== 0) throw new VolumeError('UMOUNT_FAILED', describeFailure('umount_cmd', r, this.v.commandTimeoutMs), r.timedOut || r.code === null);
    this.mounted = false;
  }

  async fence(volume: string, cause: string): Promise<FenceReport> {
    const t0 = this.clock.now();
    const cmd = this.v.commands.fence;
    if (cmd === undefined) {
      return { fenced: false, cause, durationMs: 0, detail: 'no fence_cmd configured: only storage that refuses older generations stops this node' };
    }
    const r = await runCommand(cmd, this.env({ MXFS_FENCE_CAUSE: cause }), this.v.commandTimeoutMs, this.clock);
    const durationMs = Math.round(this.clock.now() - t0);
    if (r.code === 0) {
      this.fenced = true;
      return { fenced: true, cause, durationMs };
    }
    return { fenced: false, cause, durationMs, detail: describeFailure(`fence_cmd for ${volume}`, r, this.v.commandTimeoutMs) };
  }

  async clearFence(_volume: string): Promise<void> {
    await this.run('umount_cmd', this.v.commands.umount!, 'UMOUNT_FAILED', this.env({ MXFS_FENCE_CAUSE: 'clear' }));
    this.mounted = false;
    this.fenced = false;
  }

  async confirmFenced(_spec: VolumeSpec, node: number, generation: number): Promise<void> {
    const cmd = this.v.commands.fenceCheck;
    if (cmd === undefined) return;
    const r = await runCommand(cmd, this.env({ MXFS_OLD_OWNER: node, MXFS_OLD_GENERATION: generation }), this.v.commandTimeoutMs, this.clock);
    if (r.code !== 0) throw new VolumeError('FENCE_UNCONFIRMED', describeFailure(`fence_check_cmd for node ${node}`, r, this.v.commandTimeoutMs));
  }

  setLease(_deadline: number | null): void { /* no kernel lease: the Volume actor runs fence() on loss */ }

  async status(_volume: string): Promise<DriverVolumeStatus> {
    return { gate: this.fenced ? 'fenced' : this.mounted ? 'open' : 'closed', mounted: this.mounted };
  }

  onEvent(handler: (ev: DriverEvent) => void): void { this.handlers.push(handler); }

  async close(): Promise<void> { this.handlers = []; }
}
