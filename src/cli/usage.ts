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
