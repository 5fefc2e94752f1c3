/**
 * Purger: releases the locks of client sessions that ended, a slice per turn.
 *
 * A session that ends (disconnect, keepalive timeout, lostAll, crash) hands over the
 * resources it held or waited on; the purger routes one 'purge' (its owner id, stamped with
 * the session's epoch) to each, at most SLICE.purge per turn over all sessions (round-robin,
 * so a small session is not stuck behind one with 100 000 locks). A client with 50 000 locks
 * that disconnected used to have all of them routed in one turn: the event loop was kept for
 * seconds, lease renewals were late and the node fenced itself (issue 15, defect 3).
 *
 * Ordering and safety are unchanged: each purge still goes through the router after every
 * operation the session routed on that resource (the session routed those before it ended),
 * on the same FIFO path to the master; nothing can follow it, the session being gone. A purge
 * stamped with an epoch a recovery has since left is dropped by the router, as before, and
 * the recovery covered it: an ended session gives no records, so its locks are not rebuilt.
 *
 * Owns: the queue of pending purges. Takes: add(), idle(). Sends: ResourceMsg 'purge' via route.
 */
import type { ResourceMsg } from '../actors/messages';
import { SLICE, yieldTurn } from '../util/slices';

export type Route = (lockspace: string, resource: string, msg: ResourceMsg, epoch: number) => void;

interface Job { owner: string; epoch: number; targets: Array<[string, string]>; next: number }

export class Purger {
  private jobs: Job[] = [];
  private running = false;
  private waiters: Array<() => void> = [];
  readonly stats = { sessions: 0, purges: 0 };

  constructor(private readonly route: Route) {}

  /** Purges waiting to be routed. */
  get pending(): number { return this.jobs.reduce((n, j) => n + j.targets.length - j.next, 0); }

  /** The locks of session `owner` (held or requested on these resources) must go. */
  add(owner: string, epoch: number, targets: Array<[string, string]>): void {
    this.stats.sessions++;
    if (targets.length === 0) return;
    this.jobs.push({ owner, epoch, targets, next: 0 });
    if (!this.running) void this.run();
  }

  /** Resolves once every purge queued so far has been routed. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        this.slice(); // the first slice at once: a small session is purged in its own turn
        if (this.jobs.length === 0) break;
        await yieldTurn();
      }
    } finally {
      this.running = false;
      for (const w of this.waiters.splice(0)) w();
    }
  }

  private slice(): void {
    let budget = SLICE.purge;
    while (budget > 0 && this.jobs.length > 0) {
      const share = Math.max(1, Math.ceil(budget / this.jobs.length));
      for (const j of [...this.jobs]) {
        const end = Math.min(j.targets.length, j.next + share, j.next + budget);
        for (; j.next < end; j.next++, budget--) {
          const [lockspace, resource] = j.targets[j.next]!;
          this.stats.purges++;
          this.route(lockspace, resource, { type: 'purge', owner: j.owner }, j.epoch);
        }
        if (j.next >= j.targets.length) this.jobs.splice(this.jobs.indexOf(j), 1);
        if (budget <= 0) break;
      }
    }
  }
}
