/**
 * mxfsd — the MXFS daemon (foreground).
 *   mxfsd --config FILE [--log-level LEVEL]
 * SIGTERM/SIGINT: clean shutdown (clients are told, locks released). SIGHUP: reopen logs.
 * Exit codes: 0 clean stop, 1 runtime failure (e.g. socket in use), 2 usage or config error,
 * 70 internal failure (an uncaught exception, or the cluster worker thread died).
 *
 * With peers, the cluster layer (links, leases, quorum) runs in a worker thread of its own
 * (src/cluster/cluster-worker.ts). MXFS_CLUSTER_THREAD=main runs it on the main thread
 * instead, as before (a diagnostic switch, used by bench/event-loop.ts to compare).
 */
import { loadConfig, ConfigError, formatConfigError } from '../config/config';
import { createLogger } from '../log';
import { Daemon, VERSION } from '../daemon/daemon';
import { startKernelSupport } from '../daemon/kernel';
import { TcpClusterPort } from '../daemon/cluster-port';
import { systemClock } from '../util/clock';
import { die, parse, UsageError } from './usage';

const USAGE = `usage: mxfsd --config FILE [--log-level trace|debug|info|warn|error|fatal]
       mxfsd --version | --help
`;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

async function main(): Promise<void> {
  let args;
  try {
    args = parse(process.argv.slice(2), {
      config: { type: 'string', short: 'c' },
      'log-level': { type: 'string' },
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
  if (!v.config) die('mxfsd', 'missing --config FILE', USAGE);
  const level = v['log-level'];
  if (level !== undefined && !LEVELS.includes(level)) die('mxfsd', `bad --log-level '${level}' (one of ${LEVELS.join(', ')})`, USAGE);

  let config;
  try {
    config = loadConfig(v.config);
  } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`mxfsd: config error: ${formatConfigError(e)}\n`); process.exit(2); }
    throw e;
  }
  const logs = createLogger(config.logging, { name: 'mxfsd', levelOverride: level });
  const log = logs.log;
  const clustered = config.peers.length > 0;
  let daemon: Daemon;
  try {
    daemon = new Daemon({
      config, log, faultInjection: process.env.MXFS_FAULT_INJECTION === '1',
      port: clustered ? (sys, state) => new TcpClusterPort({
        config, sys, log, clock: systemClock, state,
        worker: process.env.MXFS_CLUSTER_THREAD === 'main' ? undefined : {
          logLevel: level,
          syslogRecord: (rec) => logs.syslogRecord(rec),
          onFatal: (e) => {
            process.stderr.write(`mxfsd: fatal: the cluster worker thread failed: ${e.message}\n`);
            process.exit(70);
          },
        },
      }) : undefined,
    });
    await daemon.start();
  } catch (e) {
    log.fatal({ err: e }, 'cannot start');
    process.stderr.write(`mxfsd: cannot start: ${(e as Error).message}\n`);
    await logs.close();
    process.exit(1);
  }
  const kernel = await startKernelSupport(daemon);
  try {
    await daemon.startVolumes(kernel.volumeDriver);
  } catch (e) {
    log.fatal({ err: e }, 'cannot start the volumes');
    process.stderr.write(`mxfsd: cannot start: ${(e as Error).message}\n`);
    await kernel.stop();
    await daemon.stop('mxfsd could not start its volumes');
    await logs.close();
    process.exit(1);
  }

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down');
    // Volumes first (unmount or fence while the kernel bridge and the cluster still run).
    await daemon.volumes?.shutdown(config.timing.shutdownGraceMs).catch((e: Error) => log.error({ err: e }, 'volume shutdown failed'));
    await kernel.stop();
    await daemon.stop(`mxfsd on node ${config.node.id} shutting down (${sig})`);
    await logs.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    logs.reopen();
    (daemon.port as TcpClusterPort | undefined)?.reopenLogs();
    log.info('log files reopened (SIGHUP)');
  });
  process.on('uncaughtException', (e) => {
    // Actors catch their own faults; reaching here means the process state is unknown.
    // Exiting drops every client connection, so every client knows its locks are gone.
    log.fatal({ err: e }, 'uncaught exception; exiting');
    process.stderr.write(`mxfsd: fatal: ${e.stack ?? e.message}\n`);
    process.exit(70);
  });
  log.info({ version: VERSION, node: config.node.id, pid: process.pid }, 'mxfsd ready');
}

main().catch((e) => {
  process.stderr.write(`mxfsd: fatal: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
