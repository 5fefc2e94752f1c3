/**
 * The contended one-name handoff without sockets: a standalone Daemon in this process and N
 * in-process clients (Daemon.localTransport: no frames, no system calls), each looping lock EX
 * + unlock on one name. What is left is the JS work of a handoff (session, router, lockspace,
 * resource, the client library): pairs/s and CPU per pair of this one process. Run it under
 * `node --cpu-prof` for a profile of that work alone (docs/benchmarks.md).
 *
 * Usage: node dist/bench/one-name-inproc.js [--seconds 3] [--clients 16] [--reps 3]
 */
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Daemon } from '../src/daemon/daemon';
import { Mode } from '../src/dlm/modes';
import { quietLogger, testConfig, tmpDir } from '../test/support/daemon-proc';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, clients: { type: 'string', default: '16' }, reps: { type: 'string', default: '3' } } });
  const seconds = Number(values.seconds), clients = Number(values.clients), reps = Number(values.reps);
  const d = new Daemon({ config: testConfig(tmpDir('mxfs-inproc-')), log: quietLogger(), listen: false });
  await d.start();
  try {
    const cs: MxfsClient[] = [];
    for (let i = 0; i < clients; i++) cs.push(await MxfsClient.start(d.localTransport()));
    for (let r = 0; r < reps; r++) {
      let pairs = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now(), end = t0 + seconds * 1000;
      await Promise.all(cs.map(async (c) => { while (performance.now() < end) { await (await c.lock('hot', Mode.EX)).unlock(); pairs++; } }));
      const cpu = process.cpuUsage(cpu0);
      console.log(`rep ${r + 1}: ${clients} in-process clients on one name: ${Math.round(pairs / ((performance.now() - t0) / 1000))} pairs/s, ${((cpu.user + cpu.system) / pairs).toFixed(2)} µs CPU per pair`);
    }
    for (const c of cs) await c.close();
  } finally {
    await d.stop();
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
