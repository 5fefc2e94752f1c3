/** Shared CLI plumbing: strict argument parsing with one clear usage error (exit 2). */
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import { parseArgs, ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

type Options = ParseArgsConfig['options'];
/** What parseArgs returns for these options (named, so the declaration file can say it). */
export type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

export function parse<T extends Options>(argv: string[], options: T, allowPositionals = true): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export function die(prog: string, message: string, usage: string, code = 2): never {
  process.stderr.write(`${prog}: ${message}\n${usage}`);
  process.exit(code);
}

/**
 * The reader of our output went away (`mxfsctl locks | head`): stop quietly with the exit code
 * so far, as a tool ended by SIGPIPE would, instead of dying of an unhandled 'error' event with
 * a stack trace. Node ignores SIGPIPE, so a write to a closed pipe comes back as EPIPE.
 */
export function endOnClosedOutput(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    });
  }
}

/**
 * The first argument (after the script) whose bytes are not valid UTF-8, as a usage message,
 * or undefined. Node decodes argv as UTF-8 and turns an invalid sequence into U+FFFD, so such
 * an argument could only be passed on altered (a lock name aliased to U+FFFD, a COMMAND
 * argument naming another file). The raw bytes come from /proc/self/cmdline (Linux); where
 * it cannot be read or does not line up with process.argv, nothing is checked.
 */
export function nonUtf8Argument(argv: string[] = process.argv.slice(2)): string | undefined {
  let b: Buffer;
  try { b = fs.readFileSync('/proc/self/cmdline'); } catch { return undefined; }
  if (b.length > 0 && b[b.length - 1] === 0) b = b.subarray(0, b.length - 1);
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0) { parts.push(b.subarray(at, i)); at = i + 1; }
  }
  if (parts.length < argv.length) return undefined;
  const raw = parts.slice(parts.length - argv.length);
  if (raw.some((r, i) => isUtf8(r) && r.toString('utf8') !== argv[i])) return undefined;
  const bad = raw.findIndex((r) => !isUtf8(r));
  if (bad < 0) return undefined;
  const shown = [...raw[bad].subarray(0, 40)].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  return `argument ${bad + 1} ('${shown}${raw[bad].length > 40 ? '...' : ''}') is not valid UTF-8: it cannot be passed on unchanged (names are UTF-8 text)`;
}
