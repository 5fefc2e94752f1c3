/**
 * The watchdog of `mxfsctl lock` (a separate, tiny process): kills COMMAND's whole process
 * group with SIGKILL when mxfsctl can no longer vouch for the lock.
 *
 *   node lock-watchdog.js PGID SILENCE_MS        (started by src/cli/command-group.ts)
 *
 * stdin, whose write end only mxfsctl holds: a byte every keepalive period, and 'x' once
 * COMMAND's group is gone and the watchdog is no longer needed. (The group id comes as an
 * argument, which exec delivers at once; bytes written to a pipe just created may still sit
 * in the writer's queue when it dies.) If stdin ends without 'x' (mxfsctl died, however: on kill -9 the kernel closes the
 * pipe), or nothing arrives for SILENCE_MS (mxfsctl is stopped or hung, so its client stopped
 * heartbeating too and the lock may be gone), the group is killed and the watchdog exits.
 * That is PR_SET_PDEATHSIG for a whole process group, without native code. It runs in its own
 * session, so a terminal's ^C or hangup does not take it away before mxfsctl.
 */
const [pgid, silenceMs] = process.argv.slice(2).map(Number) as [number, number];
if (!Number.isInteger(pgid) || pgid <= 1 || !Number.isInteger(silenceMs) || silenceMs <= 0) {
  process.stderr.write('usage: lock-watchdog PGID SILENCE_MS\n');
  process.exit(2);
}

let done = false;

function killGroup(): void {
  try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  process.exit(0);
}

const timer = setTimeout(killGroup, silenceMs);
process.stdin.on('data', (chunk: Buffer) => {
  timer.refresh();
  if (chunk.includes(0x78 /* 'x' */)) { done = true; process.exit(0); }
});
process.stdin.on('end', () => { if (!done) killGroup(); });
process.stdin.on('error', () => { if (!done) killGroup(); });
for (const sig of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(sig, () => { if (!done) killGroup(); });
