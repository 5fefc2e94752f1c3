/**
 * qmp: sends one command to a QEMU's QMP unix socket (host side of the two-VM harness; the
 * host has no socat). Negotiates capabilities, runs the command, prints its `return` as JSON
 * and exits 0, or prints QEMU's error and exits 1. Gives up after --timeout-ms (default 10 s).
 *
 *   node qmp.js SOCKET COMMAND [ARGS-JSON] [--timeout-ms MS]
 *   node qmp.js /tmp/mxfs-vm2/a.qmp set_link '{"name":"nic0","up":false}'
 *   node qmp.js /tmp/mxfs-vm2/a.qmp quit
 * For `quit`, QEMU closing the socket before answering counts as success.
 */
import net from 'node:net';

function usage(msg: string): never {
  process.stderr.write(`qmp: ${msg}\nusage: qmp SOCKET COMMAND [ARGS-JSON] [--timeout-ms MS]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const ti = argv.indexOf('--timeout-ms');
const timeoutMs = ti >= 0 ? Number(argv.splice(ti, 2)[1]) : 10_000;
const [socket, command, argsJson] = argv;
if (!socket || !command || !Number.isFinite(timeoutMs)) usage('missing SOCKET or COMMAND');
let args: unknown;
try {
  args = argsJson === undefined ? undefined : JSON.parse(argsJson);
} catch {
  usage(`ARGS-JSON is not JSON: ${argsJson}`);
}

const sock = net.connect(socket);
const timer = setTimeout(() => { process.stderr.write(`qmp: no answer from ${socket} within ${timeoutMs} ms\n`); process.exit(1); }, timeoutMs);
let buf = '';
let phase: 'greeting' | 'capabilities' | 'command' = 'greeting';
const send = (execute: string, a?: unknown) => sock.write(JSON.stringify(a === undefined ? { execute } : { execute, arguments: a }) + '\n');
const done = (code: number, out: string) => {
  clearTimeout(timer);
  (code === 0 ? process.stdout : process.stderr).write(out + '\n');
  sock.destroy();
  process.exit(code);
};

sock.on('error', (e) => done(1, `qmp: ${socket}: ${e.message}`));
sock.on('close', () => { if (phase === 'command' && command === 'quit') done(0, '{}'); else done(1, `qmp: ${socket} closed in phase ${phase}`); });
sock.on('data', (d) => {
  buf += d.toString('utf8');
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (!line) continue;
    let msg: any;
    try { msg = JSON.parse(line); } catch { done(1, `qmp: unparsable line from QEMU: ${line}`); }
    if (msg.event) continue;  // asynchronous events (e.g. NIC_RX_FILTER_CHANGED) are not answers
    if (phase === 'greeting' && msg.QMP) { phase = 'capabilities'; send('qmp_capabilities'); continue; }
    if (msg.error) done(1, `qmp: ${command}: ${msg.error.class}: ${msg.error.desc}`);
    if (phase === 'capabilities' && 'return' in msg) { phase = 'command'; send(command, args); continue; }
    if (phase === 'command' && 'return' in msg) done(0, JSON.stringify(msg.return));
  }
});
