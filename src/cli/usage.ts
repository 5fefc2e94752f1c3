/** Shared CLI plumbing: strict argument parsing with one clear usage error (exit 2). */
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
