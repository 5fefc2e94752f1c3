/** Shared CLI plumbing: strict argument parsing with one clear usage error (exit 2). */
import { parseArgs, ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export function parse<T extends ParseArgsConfig['options']>(argv: string[], options: T, allowPositionals = true) {
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
