/**
 * FrameTap: how the peer links of the cluster worker thread (cluster-worker-main.ts) get their
 * frames into the node's trace. The recorder lives on the lock engine's thread (its ring, its
 * Lamport clock, its file); the tap takes each frame a PeerLink sends or receives, keeps only
 * its trace fields (the same fields TraceRecorder.frameOut/frameIn keep), and hands them to
 * `forward`, which puts them in the pipe to the main thread in order with everything else the
 * worker reports; there TraceRecorder.forwardedFrame records them.
 *
 * Takes: frameOut/frameIn calls of PeerLink (FrameTracer). Sends: ForwardedFrame to `forward`.
 * Present only when the node traces ([trace] enabled): otherwise the links record nothing and
 * nothing crosses.
 *
 * What differs from a link on the recorder's thread: an event's time is when the main thread
 * recorded it (after the pipe, in order), and a frame-in is not the cause of what the worker
 * did with it (the lock messages it carries are, as dlm-in events, on the main thread).
 */
import type { MessageTap } from '../actors/actor';
import type { TraceFields, TraceStamp } from '../trace/event';
import { extractFields, peerBodyFields, SELF_TRAFFIC } from '../trace/fields';
import type { ForwardedFrame, ForwardedSend, FrameTracer } from '../trace/recorder';
import { leaseRoute } from './lease';

export class FrameTap implements FrameTracer {
  constructor(private readonly forward: (x: ForwardedFrame) => void) {}

  frameOut(peer: number, body: { type: string }, epoch: number): void {
    const f = fieldsOf(peer, body, epoch);
    if (f) this.forward({ dir: 'out', peer, type: body.type, f });
  }

  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number): undefined {
    const f = fieldsOf(peer, body, epoch);
    if (!f) return undefined;
    const stamp = body.type === 'dlm' ? body.msg?.tr : undefined;
    this.forward(stamp ? { dir: 'in', peer, type: body.type, f, stamp } : { dir: 'in', peer, type: body.type, f });
    return undefined;
  }

  /** Nothing to restore: the tap sets no context on this thread. */
  restore(): void {}
}

/**
 * The same for the Lease actors of the worker (lease.ts): a message tap of the worker's actor
 * system that forwards every lease message's paths, type and key fields (ForwardedSend), in
 * order with the frames; on the main thread TraceRecorder.forwardedSend records it.
 */
export function leaseSendTap(selfId: number, forward: (x: ForwardedSend) => void): MessageTap {
  return (_to, msg) => {
    const route = leaseRoute(msg as { type: string; peer?: number }, selfId);
    if (!route) return;
    forward({ ...route, type: msg.type, f: compact(extractFields(msg as Record<string, unknown>, {})) });
  };
}

function compact(f: TraceFields): TraceFields {
  for (const k of Object.keys(f) as Array<keyof TraceFields>) if (f[k] === undefined) delete f[k];
  return f;
}

/** The frame's trace fields, only those set (they cross a thread); undefined: trace traffic. */
function fieldsOf(peer: number, body: unknown, epoch: number): TraceFields | undefined {
  const f: TraceFields = { epoch, peer };
  peerBodyFields(body, f);
  if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return undefined;
  return compact(f);
}
