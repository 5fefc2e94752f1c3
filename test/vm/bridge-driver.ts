/**
 * Stand-in daemon for the VM tests while mxfsd does not start the kernel bridge itself:
 * an ActorSystem, an in-process FakeLockClient that grants by the compatibility matrix, and
 * the real kernel-bridge actor (mode 'on', node id 1). Logs JSON to stderr (bunyan) and
 * prints "BRIDGE-STATE <state> <detail>" on every state change. SIGTERM: clean stop.
 *   node dist/test/vm/bridge-driver.js [--node-id N] [--retry-ms MS]
 */
import bunyan from 'bunyan';
import { ActorSystem } from '../../src/actors/actor';
import { startKernelBridge } from '../../src/actors/kernel-bridge';
import { systemClock } from '../../src/util/clock';
import { FakeLockClient } from './fake-lock-client';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

const log = bunyan.createLogger({ name: 'bridge-driver', level: 'debug', streams: [{ stream: process.stderr }] });
const system = new ActorSystem(log);
const locks = new FakeLockClient();
const bridge = startKernelBridge({
  system, locks, log, clock: systemClock, mode: 'on', nodeId: arg('--node-id', 1), retryMs: arg('--retry-ms', 1000),
});

let last = '';
const timer = setInterval(() => {
  const s = bridge.status();
  const line = `BRIDGE-STATE ${s.state} ${s.detail ?? ''}`.trim();
  if (line !== last) {
    last = line;
    process.stdout.write(`${line}\n`);
  }
}, 100);

process.on('SIGTERM', () => {
  clearInterval(timer);
  void bridge.stop().then(() => { system.shutdown(); process.exit(0); });
});
process.stdout.write(`DRIVER PID ${process.pid}\n`);
