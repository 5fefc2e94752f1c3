/**
 * A fake KernelChannel for the kernel bridge's host tests (no module, no netlink): records what
 * the bridge sends, answers STATUS_REQ as an attached module does, answers other commands with
 * the replies a test gives it (encoded as the module would send them, so the bridge's real
 * parser reads them), refuses commands with an errno on request, and lets a test inject
 * kernel->daemon messages.
 */
import { NetlinkError, KernelAckError } from '../../src/ffi/genl-socket';
import type { KernelChannel, KernelChannelEvents } from '../../src/ffi/mxfs-channel';
import { MxfsAttr, MxfsCmd } from '../../src/ffi/mxfs-genl';
import { encodeAttr, encodeValue, type MxfsAttrs, type MxfsMessage } from '../../src/ffi/netlink-msg';

export interface Sent { cmd: MxfsCmd; attrs: MxfsAttrs }

/** The family id the fake module resolves to. */
const FAMILY = 33;

/** One kernel->daemon message of the mxfs family, as bytes on the netlink socket. */
export function kernelMessage(cmd: MxfsCmd, attrs: MxfsAttrs): Buffer {
  const body = Buffer.concat(Object.entries(attrs).map(([k, v]) => {
    const a = Number(k) as Exclude<MxfsAttr, MxfsAttr.UNSPEC>;
    return encodeAttr(a, encodeValue(a, v!));
  }));
  const b = Buffer.alloc(20 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(FAMILY, 4);
  b.writeUInt8(cmd, 16);
  body.copy(b, 20);
  return b;
}

/** A STATUS_RESP as the module sends it, naming portid as its daemon. */
function statusResp(portid: number): Buffer {
  const A = MxfsAttr;
  const attrs: MxfsAttrs = { [A.DAEMON_PORTID]: portid, [A.STAT_PENDING]: 0, [A.STAT_HELD]: 1 };
  for (const a of [A.STAT_REQUESTS, A.STAT_GRANTS, A.STAT_DENIES, A.STAT_TIMEOUTS, A.STAT_DAEMON_LOSSES, A.STAT_REJECTED] as const) attrs[a] = 3n;
  return kernelMessage(MxfsCmd.STATUS_RESP, attrs);
}

export class FakeKernelChannel implements KernelChannel {
  readonly portid = 4242;
  /** Where requests are sent from (the real channel: a socket of their own); undefined: portid. */
  requestPortid: number | undefined;
  loaded = false;
  closed = false;
  resolves = 0;
  sent: Sent[] = [];
  /** Per command: make the kernel refuse it with this errno. */
  refuse = new Map<MxfsCmd, number>();
  /** Per command: fail the send with this error (e.g. AnswerLost: its answer was refused). */
  failWith = new Map<MxfsCmd, Error>();
  /** Per command: the messages the module answers it with (a dump's replies). */
  answer = new Map<MxfsCmd, (attrs: MxfsAttrs) => Array<{ cmd: MxfsCmd; attrs: MxfsAttrs }>>();
  /** The daemon port the fake module reports in STATUS_RESP (undefined: this channel's). */
  kernelKnowsPortid: number | undefined;
  constructor(readonly events: KernelChannelEvents) {}
  resolve(): number {
    this.resolves++;
    if (!this.loaded) throw new NetlinkError("resolve family 'mxfs'", 12, 'Object not found');
    return FAMILY;
  }
  async send(cmd: MxfsCmd, attrs: MxfsAttrs): Promise<Buffer[]> {
    this.sent.push({ cmd, attrs });
    const failure = this.failWith.get(cmd);
    if (failure) throw failure;
    const errno = this.refuse.get(cmd);
    if (errno !== undefined) throw new KernelAckError(errno, 'refused by the fake');
    if (cmd === MxfsCmd.STATUS_REQ) return [statusResp(this.kernelKnowsPortid ?? this.portid)];
    const answer = this.answer.get(cmd);
    return answer ? answer(attrs).map((m) => kernelMessage(m.cmd, m.attrs)) : [];
  }
  async close(): Promise<void> { this.closed = true; }
  kernel(cmd: MxfsCmd, attrs: MxfsAttrs): void {
    const m: MxfsMessage = { cmd, seq: 0, portid: 0, attrs };
    this.events.onMessage(m);
  }
  of(cmd: MxfsCmd): Sent[] { return this.sent.filter((s) => s.cmd === cmd); }
}
