/**
 * Runs one abusive client (abuse.ts) in a child process, so that its work (100 000 pipelined
 * requests, megabytes of replies) never delays the well-behaved clients of the process that
 * started it: their keepalives must measure the daemon, not the test harness.
 *
 * Parent side: abuseInChild(kind, options) forks this file and resolves with the child's
 * AbuseResult (or rejects if the child dies without one). Child side: takes one
 * { kind, options } message, runs the abuser, sends the result back and exits.
 */
import { fork } from 'node:child_process';
import { AbuseKind, AbuseOptions, AbuseResult, runAbuse } from './abuse';

export interface AbuseChild { result: Promise<AbuseResult>; kill(): void }

export function abuseInChild(kind: AbuseKind, options: AbuseOptions): AbuseChild {
  const child = fork(__filename, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const result = new Promise<AbuseResult>((resolve, reject) => {
    let got: AbuseResult | undefined;
    child.on('message', (m) => { got = m as AbuseResult; });
    child.on('exit', (code, signal) => (got ? resolve(got) : reject(new Error(`abusive client '${kind}' exited (${code ?? signal}) without a result: ${stderr.trim()}`))));
  });
  child.send({ kind, options });
  return { result, kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); } };
}

if (require.main === module) {
  process.once('message', (m: { kind: AbuseKind; options: AbuseOptions }) => {
    runAbuse(m.kind, m.options).then(
      (r) => process.send!(r, () => process.exit(0)),
      (e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); process.exit(1); },
    );
  });
}
