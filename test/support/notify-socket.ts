/** Test support: a fake systemd notification socket ($NOTIFY_SOCKET) recording what mxfsd says. */
import { DatagramReceiver } from '../../src/ffi/unix-datagram';
import { waitFor } from './daemon-proc';

export class FakeNotifySocket {
  readonly received: Array<{ at: number; fields: Record<string, string> }> = [];
  private readonly rx: DatagramReceiver;

  /** `address`: a path, or '@name' for an abstract socket (default: a fresh abstract name). */
  constructor(readonly address = `@mxfs-notify-test-${process.pid}-${Math.random().toString(16).slice(2)}`) {
    this.rx = new DatagramReceiver(address);
    // Drain as systemd does (the kernel queues only ~10 datagrams per socket).
    this.timer = setInterval(() => this.poll(), 10);
  }
  private readonly timer: NodeJS.Timeout;

  /** Reads what arrived since the last call; each datagram is "KEY=value" lines. */
  poll(): void {
    for (const buf of this.rx.receive()) {
      const fields: Record<string, string> = {};
      for (const line of buf.toString('utf8').split('\n')) {
        const i = line.indexOf('=');
        if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1);
      }
      this.received.push({ at: Date.now(), fields });
    }
  }

  /** Every datagram that set `key` (after polling). */
  with(key: string): Array<Record<string, string>> {
    this.poll();
    return this.received.filter((r) => key in r.fields).map((r) => r.fields);
  }

  async waitFor(key: string, count = 1, timeoutMs = 20000, value?: RegExp): Promise<void> {
    await waitFor(() => this.with(key).filter((f) => !value || value.test(f[key]!)).length >= count, timeoutMs, `${count} notification(s) with ${key}${value ? ` ~ ${value}` : ''}`);
  }

  close(): void {
    clearInterval(this.timer);
    this.rx.close();
  }
}
