/**
 * mxfsd — the MXFS daemon (foreground; under systemd a Type=notify service).
 *   mxfsd [--config FILE] [--log-level LEVEL]      FILE defaults to /etc/mxfs/mxfs.conf
 *   mxfsd [--config FILE] --check-config          validate (config, key file, socket group) and exit
 *   mxfsd --version | --help
 * SIGTERM/SIGINT: clean shutdown (clients are told, locks released). SIGHUP: reopen logs.
 * Exit codes: 0 clean stop, 1 could not start (one line on stderr saying why), 2 usage or
 * config error, 70 internal fatal error (an uncaught exception, or the cluster worker thread
 * died).
 *
 * With peers, the cluster layer (links, leases, quorum) runs in a worker thread of its own
 * (src/cluster/cluster-worker.ts). MXFS_CLUSTER_THREAD=main runs it on the main thread
 * instead, as before (a diagnostic switch, used by bench/event-loop.ts to compare).
 */
import './threadpool'; // first: sizes libuv's threadpool before anything uses it
import { ConfigError, DEFAULT_CONFIG_FILE, fileErrorReason, formatConfigError, loadConfig, type Config } from '../config/config';
import { createLogger } from '../log';
import { Daemon, VERSION } from '../daemon/daemon';
import { startKernelSupport, type KernelSupport } from '../daemon/kernel';
import { TcpClusterPort } from '../daemon/cluster-port';
import { ServiceNotifier, serviceEnv } from '../daemon/service';
import { loadClusterKey } from '../cluster/auth';
import { resolveGroup } from '../ffi/groups';
import { systemClock } from '../util/clock';
import { die, parse, UsageError } from './usage';

const USAGE = `usage: mxfsd [--config FILE] [--log-level trace|debug|info|warn|error|fatal]
       mxfsd [--config FILE] --check-config
       mxfsd --version | --help
FILE defaults to ${DEFAULT_CONFIG_FILE}.
`;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** One line for stderr: what stopped mxfsd from starting, without a stack trace. */
function startupFailure(e: unknown, config: Config): string {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (err.code === 'EADDRINUSE' && err.syscall === 'listen' && err.port !== undefined && err.port === config.node.lockPort && err.port !== config.node.port) {
    return `lock_port ${config.node.address}:${config.node.lockPort} is already in use (another mxfsd, or another program: see 'ss -ltnp')`;
  }
  if (err.code === 'EADDRINUSE' && err.syscall === 'listen' && err.port !== undefined) {
    return `cluster port ${config.node.address}:${config.node.port} is already in use (another mxfsd, or another program: see 'ss -ltnp')`;
  }
  if (err.code === 'EADDRNOTAVAIL' && err.syscall === 'listen') {
    return `[node] address ${config.node.address} is not an address of this host`;
  }
  if ((err.code === 'EACCES' || err.code === 'EPERM') && err.path) {
    return `${err.path}: permission denied (${err.code})`;
  }
  return String(err?.message ?? e).split('\n')[0]!;
}

/** --check-config: the checks that need no running daemon, beyond parsing. Returns problems. */
function checkEnvironment(config: Config): string[] {
  const problems: string[] = [];
  if (config.cluster.keyFile !== undefined) {
    try { loadClusterKey(config.cluster.keyFile); } catch (e) { problems.push((e as Error).message); }
  }
  if (config.node.socketGroup !== undefined) {
    try { resolveGroup(config.node.socketGroup); } catch (e) { problems.push(`[node] socket_group: ${(e as Error).message}`); }
  }
  return problems;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parse(process.argv.slice(2), {
      config: { type: 'string', short: 'c' },
      'log-level': { type: 'string' },
      'check-config': { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, false);
  } catch (e) {
    if (e instanceof UsageError) die('mxfsd', e.message, USAGE);
    throw e;
  }
  const v = args.values;
  if (v.help) { process.stdout.write(USAGE); return; }
  if (v.version) { process.stdout.write(`mxfsd ${VERSION}\n`); return; }
  const level = v['log-level'];
  if (level !== undefined && !LEVELS.includes(level)) die('mxfsd', `bad --log-level '${level}' (one of ${LEVELS.join(', ')})`, USAGE);
  if (v.config === '') die('mxfsd', '--config needs a file path (it was empty)', USAGE);
  const file = v.config ?? DEFAULT_CONFIG_FILE;

  let config: Config;
  try {
    config = loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      const hint = v.config === undefined && (e.reason.includes('ENOENT')) ? ` (the default; give another with --config FILE)` : '';
      process.stderr.write(`mxfsd: config error: ${formatConfigError(e)}${hint}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (v['check-config']) {
    const problems = checkEnvironment(config);
    for (const p of problems) process.stderr.write(`mxfsd: ${config.file}: ${p}\n`);
    if (problems.length) process.exit(2);
    const c = config;
    process.stdout.write(`${c.file}: ok (node ${c.node.id} '${c.node.name}', ${c.peers.length ? `${c.peers.length + 1}-node cluster '${c.cluster.name}'` : 'standalone'}, ${c.volumes.length} volume${c.volumes.length === 1 ? '' : 's'}, socket ${c.node.socket})\n`);
    return;
  }

  let logs;
  try {
    logs = createLogger(config.logging, { name: 'mxfsd', levelOverride: level });
  } catch (e) {
    process.stderr.write(`mxfsd: cannot start: log file ${config.logging.file}: ${fileErrorReason(e)}\n`);
    process.exit(1);
  }
  const log = logs.log;
  // SIGHUP reopens the logs from the moment they exist: logrotate may send it while the daemon
  // is still starting (joining the cluster, the kernel bridge, volumes), and an unhandled
  // SIGHUP would end the process.
  let reopenPortLogs: (() => void) | undefined;
  process.on('SIGHUP', () => {
    logs.reopen();
    reopenPortLogs?.();
    log.info('log files reopened (SIGHUP)');
  });
  const service = serviceEnv();
  const clustered = config.peers.length > 0;
  let daemon: Daemon | undefined;
  let listening = false;
  let kernel: KernelSupport | undefined;
  try {
    daemon = new Daemon({
      config, log, faultInjection: process.env.MXFS_FAULT_INJECTION === '1',
      port: clustered ? (sys, state) => new TcpClusterPort({
        config, sys, log, clock: systemClock, state,
        worker: process.env.MXFS_CLUSTER_THREAD === 'main' ? undefined : {
          logLevel: level,
          syslogRecord: (rec) => logs!.syslogRecord(rec),
          onFatal: (e) => {
            process.stderr.write(`mxfsd: fatal: the cluster worker thread failed: ${e.message}\n`);
            process.exit(70);
          },
        },
      }) : undefined,
    });
    await daemon.start();
    reopenPortLogs = () => (daemon?.port as TcpClusterPort | undefined)?.reopenLogs();
    listening = true;
    kernel = await startKernelSupport(daemon);
    await daemon.startVolumes(kernel.volumeDriver);
  } catch (e) {
    // The whole error (stack included) goes to the log file / syslog; stderr gets one line.
    logs.quiet.fatal({ err: e }, 'cannot start');
    process.stderr.write(`mxfsd: cannot start: ${startupFailure(e, config)}\n`);
    await kernel?.stop().catch(() => {});
    // Only a daemon that got its socket may remove it (a busy socket is another daemon's).
    if (listening) await daemon?.stop('mxfsd could not start').catch(() => {});
    await logs.close();
    process.exit(1);
  }
  const d = daemon!;
  const notifier = new ServiceNotifier({
    env: service, log: log.child({ actor: 'service' }), clock: d.clock, sys: d.sys, port: d.port, timing: config.timing,
    state: () => ({ state: d.router.state, epoch: d.router.epoch, members: d.router.members }),
  });
  notifier.start((l) => d.onStateChange(l));

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    notifier.stopping();
    log.info({ signal: sig }, 'shutting down');
    // Volumes first (unmount or fence while the kernel bridge and the cluster still run).
    await d.volumes?.shutdown(config.timing.shutdownGraceMs).catch((e: Error) => log.error({ err: e }, 'volume shutdown failed'));
    await kernel!.stop();
    await d.stop(`mxfsd on node ${config.node.id} shutting down (${sig})`);
    notifier.close();
    await logs.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('uncaughtException', (e) => {
    // Actors catch their own faults; reaching here means the process state is unknown.
    // Exiting drops every client connection, so every client knows its locks are gone.
    log.fatal({ err: e }, 'uncaught exception; exiting');
    process.stderr.write(`mxfsd: fatal: ${String(e.message).split('\n')[0]} (details in the log)\n`);
    process.exit(70);
  });
  log.info({ version: VERSION, node: config.node.id, pid: process.pid, config: config.file, watchdogMs: notifier.watchdogMs }, 'mxfsd started');
}

main().catch((e) => {
  process.stderr.write(`mxfsd: fatal: ${String((e as Error)?.message ?? e).split('\n')[0]}\n`);
  process.exit(1);
});
