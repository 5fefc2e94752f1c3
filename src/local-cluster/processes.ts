/**
 * Which process is a given node's mxfsd: read from /proc, never assumed from a recorded pid.
 * A pid file can outlive its process and the pid be reused by anything; a node may also have
 * been started by hand from the same config. So a process counts as node X's daemon only
 * if its command line runs mxfsd (bin/mxfsd, or dist/src/cli/mxfsd.js) with --config naming
 * X's config file (a relative path is resolved against that process's working directory).
 */
import fs from 'node:fs';
import path from 'node:path';

/** argv of a process, or undefined if it is gone (or not ours to read). */
function cmdline(pid: number): string[] | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s, i, a) => i < a.length - 1 || s !== '');
  } catch {
    return undefined;
  }
}

/** The --config (-c, --config=) argument of an mxfsd command line, resolved; undefined if not mxfsd. */
export function mxfsdConfigOf(argv: string[], cwd: string): string | undefined {
  const script = argv.findIndex((a) => /(^|\/)mxfsd(\.js)?$/.test(a));
  if (script < 0) return undefined;
  const args = argv.slice(script + 1);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if ((a === '--config' || a === '-c') && i + 1 < args.length) return path.resolve(cwd, args[i + 1]!);
    if (a.startsWith('--config=')) return path.resolve(cwd, a.slice('--config='.length));
  }
  return undefined;
}

/** True if `pid` is a live mxfsd whose config is `config` (an absolute path). */
export function isNodeProcess(pid: number, config: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const argv = cmdline(pid);
  if (!argv) return false;
  let cwd = '/';
  try { cwd = fs.readlinkSync(`/proc/${pid}/cwd`); } catch { /* relative paths then resolve from / */ }
  return mxfsdConfigOf(argv, cwd) === path.resolve(config);
}

/** Every live mxfsd process running with `config` (normally none or one). */
export function findNodeProcesses(config: string): number[] {
  const out: number[] = [];
  let entries: string[];
  try { entries = fs.readdirSync('/proc'); } catch { return out; }
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e)) continue;
    const pid = Number(e);
    if (pid !== process.pid && isNodeProcess(pid, config)) out.push(pid);
  }
  return out;
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
