/**
 * DlmChannelActor: the DlmChannel (dlm-channel.ts, the pure sequencing core: streams,
 * acknowledgements, go-back-N, refusals) run as an actor of the node's ActorSystem, so that
 * what goes through it is messages of the one send path, in the trace like any other.
 *
 * Owns: the DlmChannel. Takes (`ChannelMsg`):
 *   dlm.send     lock messages for peers (from TcpClusterPort.send), in order
 *   dlm.receive  channel frames from the peers (data and acks), in arrival order
 *   dlm.linkUp   a link came up: resend what it may have lost, re-ack
 *   dlm.forget   a peer left the committed view: drop its stream
 *   dlm.timer    the channel's deferred work fired: a retransmission timeout, a delayed ack, the
 *                rest of a pump (ChannelTimer)
 * Sends: frames to the cluster layer (`transmit`), delivered messages to the lock router
 * (`deliver`, through the traced port), refusals (`refused`) — all from its handler, so they
 * name the channel message as cause.
 *
 * Batching: the peer link coalesces what is transmitted in one turn into one write, and the
 * thread pipe likewise; a mailbox that handled one lock message per turn would undo that. So
 * consecutive sends (or receipts) join the last message posted while it waits in the mailbox
 * — one trace event per batch, caused by its first item; each lock message in it also has its
 * own `dlm-out`/`dlm-in` event — and any other message closes the batch, so the order of
 * everything posted is the order handled (a forget never overtakes a send made before it,
 * nor discards one made after it).
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import { ChannelFrame, ChannelTimer, DlmChannel, DlmChannelOptions } from './dlm-channel';
import type { DlmPeerMsg } from './dlm-messages';
import { probe } from '../util/probe';

export type ChannelMsg =
  | { type: 'dlm.send'; peer: number; items: Array<[number, DlmPeerMsg]> }
  | { type: 'dlm.receive'; peer: number; items: Array<[number, ChannelFrame]> }
  | { type: 'dlm.linkUp'; peer: number }
  | { type: 'dlm.forget'; peer: number }
  | { type: 'dlm.timer'; what: ChannelTimer; peer: number; fire: () => void };

/** A trace query or reply, as a message or inside a frame (not recorded: docs/tracing.md). */
function isTraceTraffic(x: DlmPeerMsg | ChannelFrame): boolean {
  const t = 't' in x ? x.t : x.type === 'dlm' && 'msg' in x ? x.msg.t : undefined;
  return t === 'traceQuery' || t === 'traceReply';
}

export class DlmChannelActor {
  readonly channel: DlmChannel;
  private readonly ref: Ref<ChannelMsg>;
  /** The last message posted, while it waits in the mailbox (see Batching). */
  private open?: Extract<ChannelMsg, { type: 'dlm.send' | 'dlm.receive' }>;
  private stopped = false;

  constructor(private readonly sys: ActorSystem, o: Omit<DlmChannelOptions, 'defer'>) {
    this.channel = new DlmChannel({
      ...o,
      defer: (what, peer, fire) => () => this.post({ type: 'dlm.timer', what, peer, fire }),
    });
    this.ref = sys.spawn<null, ChannelMsg>(undefined, 'dlm-channel', {
      init: () => null,
      handle: (s, m, ctx) => { this.handle(m, ctx.log); return s; },
      // The channel's state is the streams: a message that threw must not lose them.
      onCrash: () => 'resume',
      leaf: true,
    });
  }

  send(to: number, msg: DlmPeerMsg): void { this.batch('dlm.send', to, msg); }
  receive(from: number, frame: ChannelFrame): void { this.batch('dlm.receive', from, frame); }
  linkUp(peer: number): void { this.post({ type: 'dlm.linkUp', peer }); }
  forget(peer: number): void { this.post({ type: 'dlm.forget', peer }); }

  stop(): void {
    this.stopped = true;
    this.open = undefined;
    this.channel.stop();
    this.sys.stopActor(this.ref);
  }

  private batch(type: 'dlm.send', peer: number, item: DlmPeerMsg): void;
  private batch(type: 'dlm.receive', peer: number, item: ChannelFrame): void;
  private batch(type: 'dlm.send' | 'dlm.receive', peer: number, item: DlmPeerMsg | ChannelFrame): void {
    if (this.stopped) return;
    const open = this.open;
    const own = isTraceTraffic(item);
    if (open && open.type === type && !own) { (open.items as Array<[number, unknown]>).push([peer, item]); return; }
    const m = { type, peer, items: [[peer, item]] } as Extract<ChannelMsg, { type: 'dlm.send' | 'dlm.receive' }>;
    probe('m.chpost', type);
    this.post(m);
    // The trace's own traffic goes alone, so the recorder leaves it out (and nothing with it).
    if (!own) this.open = m;
  }

  private post(m: ChannelMsg): void {
    if (this.stopped) return;
    this.open = undefined;
    this.sys.send(this.ref, m);
  }

  private handle(m: ChannelMsg, log: Logger): void {
    probe('m.ch', m.type);
    if (m === this.open) this.open = undefined; // handled: later items start a new batch
    if (this.stopped) return;
    const c = this.channel;
    // One item that throws (a bug further on) must not lose the rest of its batch.
    const each = <T>(items: Array<[number, T]>, f: (peer: number, x: T) => void) => {
      for (const [peer, x] of items) {
        try { f(peer, x); } catch (err) { log.error({ err, peer, msgType: m.type }, 'lock message channel: one item of a batch failed'); }
      }
    };
    switch (m.type) {
      case 'dlm.send': each(m.items, (to, msg) => c.send(to, msg)); return;
      case 'dlm.receive': each(m.items, (from, f) => c.receive(from, f)); return;
      case 'dlm.linkUp': c.linkUp(m.peer); return;
      case 'dlm.forget': c.forget(m.peer); return;
      case 'dlm.timer': m.fire(); return;
    }
  }
}
