/**
 * The messages between the lock engine's thread (ClusterWorker, cluster-worker.ts) and the
 * cluster worker thread (cluster-worker-main.ts), defined once for both sides.
 *
 * Bulk traffic travels through a PipeSender/PipeReceiver pair each way (thread-pipe.ts: items
 * msgpack-encoded one by one, batched, written to a Unix socket pair between the threads —
 * or, without one, posted with the batch's buffer transferred — and handled a slice per
 * turn, in order): the main thread's sends to peers ('send' of WorkerSend), and everything the cluster layer reports
 * ('batch' of WorkerItem: membership events, link events, lock-engine frames, bound
 * messages, rejections, lease deadlines, log records for syslog, batches of trace events). Control messages (faults,
 * link drops, status, trace syncs, stop) are plain. The quorum deadline and the two heartbeats
 * are also in shared memory (shared-lease.ts): read at once, whatever the queues hold.
 */
import type { LoggingConfig } from '../config/config';
import type { ChannelFrame } from './dlm-channel';
import type { ClusterLayerStatus } from './cluster-layer';
import type { MembershipEvent, RenewalReport } from './membership';
import type { ClusterOptions } from './options';
import type { LinkEvent } from './peer-link';
import type { PeerBody, PeerMessage } from './peer-protocol';
import type { TraceContext } from '../trace/recorder';
import type { TevBatch } from '../trace/worker-events';

/** workerData of the cluster worker. */
export interface WorkerInit {
  config: ClusterOptions;
  incarnation: number;
  /** The worker owns <stateDir>/epoch.json (state.ts, EpochFile); promisedEpoch is the floor known to the main thread. */
  stateDir: string;
  promisedEpoch: number;
  logging: LoggingConfig;
  logLevel?: string;
  /** Forward log records to the main thread for its syslog output (see LogHandle.syslogRecord). */
  forwardSyslog: boolean;
  shared: SharedArrayBuffer;
  /** The worker's end of the socket pair that carries the pipe both ways (socket-pair.ts); absent: 'send' and 'batch' messages carry it. */
  pipeFd?: number;
  /**
   * The lock engine's stall bound (client_timeout_ms): mute (stop renewing) when the main
   * thread has not beaten for this long, not counting time it waited for a CPU
   * (cluster-worker-main.ts, thread-sched.ts).
   */
  stallMs: number;
  beatMs: number;
  faults?: WireFaults;
  /** The node traces: every message of the worker's actors and every peer-link frame is forwarded ('tev' items: batches, src/trace/worker-tracer.ts). */
  trace: boolean;
}

export interface WireFaults { blocked: number[]; drop: number; delayMs: number; mute?: boolean }

/**
 * One send in a 'send' batch: to, body, the epoch to stamp (null: the worker's committed
 * epoch), and when the node traces the main thread's causal context (the cause of the frame).
 */
export type WorkerSend = [number, PeerBody, number | null, TraceContext?];

export type WorkerItem =
  /** The last element, when the node traces: the worker event being handled when it happened (WorkerTracer.cur), its cause. */
  | ['event', MembershipEvent, number?]
  | ['link', LinkEvent]
  | ['dlm', number, ChannelFrame, number?]
  | ['bound', number, PeerMessage]
  | ['rejected', number, PeerMessage, string]
  | ['lease', number]
  | ['renewal', RenewalReport]
  | ['renewHeard', number]
  | ['log', Record<string, unknown>]
  /** Trace events of the worker (src/trace/worker-events.ts), ahead of what they caused. */
  | ['tev', TevBatch]
  /** The answer to 'traceSync': every trace event the worker made before it is ahead of it. */
  | ['traceSynced', number];

export type ToWorker =
  /** WorkerSend items, each msgpack-encoded behind its length, in one transferred buffer (thread-pipe.ts); without a socket pair only. */
  | { type: 'send'; batch: Uint8Array }
  | { type: 'faults'; faults: WireFaults }
  | { type: 'dropLink'; peer: number; reason: string }
  | { type: 'status'; id: number; timeoutMs: number }
  | { type: 'reopenLogs' }
  /** Send the trace events made so far, then ['traceSynced', id] (a trace read on the main thread waits for them). */
  | { type: 'traceSync'; id: number }
  | { type: 'stop'; reason: string };

export type FromWorker =
  | { type: 'started' }
  /** The error's message and, for start-up messages on the main thread, its errno fields. */
  | { type: 'startFailed'; message: string; code?: string; syscall?: string; port?: number; address?: string; path?: string }
  /** WorkerItem items, each msgpack-encoded behind its length, in one transferred buffer (thread-pipe.ts); without a socket pair only. */
  | { type: 'batch'; items: Uint8Array }
  | { type: 'status'; id: number; status?: ClusterLayerStatus; error?: string }
  | { type: 'stopped' };
