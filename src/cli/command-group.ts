/**
 * CommandGroup: how `mxfsctl lock` runs COMMAND so that all of it can be stopped when the
 * lock is lost, and none of it outlives mxfsctl.
 *
 * COMMAND starts in its own session and process group (spawn's `detached`, i.e. setsid), so
 * a pipeline or anything else it forks stays reachable as one group: signals go to the group
 * (kill(-pgid)), and "stopped" means the group is empty, not that its first process exited.
 * (Keeping COMMAND in mxfsctl's own group instead would mean signalling mxfsctl itself and,
 * when mxfsctl is not a group leader, the shell or script that started it.) The price:
 * COMMAND has no controlling terminal.
 *
 * A watchdog process (lock-watchdog.ts) SIGKILLs the group if mxfsctl dies or stops
 * heartbeating to it; mxfsctl beats every keepalive period and dismisses it only once the
 * group is empty. COMMAND must never run unwatched, even if mxfsctl dies between starting
 * it and starting the watchdog: so it starts behind a gate — a `sh` that waits for "go" on
 * fd 3 and then execs COMMAND (same pid, same group) — and mxfsctl says "go" only once the
 * watchdog runs. If mxfsctl dies before, the gate reads end-of-file and COMMAND never starts. Owns: the child process, the watchdog, the beat timer. A process that
 * leaves the group (setsid, a daemon that forks into a new session) escapes, as with any
 * group kill.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export interface CommandGroupOptions {
  command: string[];
  env: NodeJS.ProcessEnv;
  /** Heartbeat period to the watchdog, and the silence after which it kills the group. */
  beatMs: number;
  silenceMs: number;
}

export class CommandGroup {
  readonly child: ChildProcess;
  private readonly watchdog: ChildProcess;
  private readonly beat: NodeJS.Timeout;
  /** COMMAND's exit status (128+N for signal N; 127 if it could not start), once its first process exited. */
  readonly exited: Promise<number>;

  constructor(o: CommandGroupOptions) {
    this.child = spawn('/bin/sh', ['-c', GATE, 'mxfsctl-lock', ...o.command], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env: o.env, detached: true });
    const pgid = this.child.pid ?? 0;
    // The group id as an argument: exec delivers it at once, whatever happens to mxfsctl next.
    this.watchdog = spawn(process.execPath, [path.join(__dirname, 'lock-watchdog.js'), String(pgid), String(o.silenceMs)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    this.watchdog.stdin!.on('error', () => { /* the watchdog is gone; nothing to tell it */ });
    this.watchdog.unref();
    if (!pgid) this.watchdog.kill('SIGKILL'); // the gate did not start: nothing to watch
    const gate = this.child.stdio[3] as NodeJS.WritableStream | null;
    gate?.on('error', () => { /* COMMAND already gone */ });
    gate?.end('go\n');
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => { process.stderr.write(`mxfsctl: cannot run ${o.command[0]}: ${e.message}\n`); resolve(127); });
      this.child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
    });
    this.beat = setInterval(() => this.watchdog.stdin!.write('.'), o.beatMs);
  }

  get pgid(): number | undefined { return this.child.pid; }

  /** Signal every process of the group (ignored once it is empty). */
  signal(sig: NodeJS.Signals): void {
    const g = this.pgid;
    if (g === undefined) return;
    try { process.kill(-g, sig); } catch { /* the group is gone */ }
  }

  /** True while any process of the group exists. */
  alive(): boolean {
    const g = this.pgid;
    if (g === undefined) return false;
    try { process.kill(-g, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
  }

  /** SIGTERM to the group, SIGKILL after graceMs; resolves once the group is empty. */
  async stop(graceMs: number): Promise<void> {
    this.signal('SIGTERM');
    const killAt = Date.now() + graceMs;
    let killed = false;
    while (this.alive()) {
      if (!killed && Date.now() >= killAt) { this.signal('SIGKILL'); killed = true; }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Once the group is empty: dismiss the watchdog (it must not kill a reused group id later). */
  release(): void {
    clearInterval(this.beat);
    this.watchdog.stdin!.end('x');
  }
}

/** Wait for "go" on fd 3, close it, become COMMAND ("$@"). End of file instead: never run it. */
const GATE = 'IFS= read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"';

function signalNumber(name: NodeJS.Signals): number {
  return (require('node:os').constants.signals as Record<string, number>)[name] ?? 0;
}
