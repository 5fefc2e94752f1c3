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
    return parseArgs({ args: negativeValues(argv, options), allowPositionals, options, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

/** A value that reads as a negative number (`-5`, `-1.5`): no option of ours looks like one. */
const NEGATIVE = /^-\d/;

/**
 * `--timeout -5` as `--timeout=-5`: parseArgs refuses a separate value starting with a dash as
 * "ambiguous", so the option's own check (a range error naming it) would never be reached.
 * Only for options that take a value, and only for values that read as negative numbers.
 */
function negativeValues(argv: string[], options: Options): string[] {
  let out: string[] | undefined;
  for (let i = 0; i < argv.length - 1; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (!NEGATIVE.test(argv[i + 1]!)) continue;
    const long = a.startsWith('--') ? a.slice(2) : /^-[^-]$/.test(a) ? Object.keys(options ?? {}).find((k) => options![k]!.short === a[1]) : undefined;
    if (long === undefined || options?.[long]?.type !== 'string') continue;
    out ??= argv.slice();
    out.splice(i - (argv.length - out.length), 2, `--${long}=${argv[i + 1]}`);
    i++;
  }
  return out ?? argv;
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
