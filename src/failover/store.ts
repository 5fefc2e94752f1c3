/**
 * FencedStore: the storage a lock protects, as the fencing-token literature describes it
 * (Chubby sequencers, Kleppmann on Redlock). Each resource remembers the highest token any
 * write carried; a write with a lower token is rejected. Every write, accepted or not, is
 * recorded in the history, so the checker can tell a stale write that storage caught from
 * one that got through.
 */
import type { History } from './history';

export interface WriteRequest {
  client: string;
  node: number;
  resource: string;
  lock: number;
  token: number;
  /** Written by a client that was deliberately paused between its validity check and the write. */
  zombie?: boolean;
}

export class FencedStore {
  private highest = new Map<string, number>();
  private values = new Map<string, { token: number; client: string; seq: number }>();
  accepted = 0;
  rejected = 0;

  constructor(private readonly history?: History) {}

  /** Returns true when the write was accepted. */
  write(w: WriteRequest): boolean {
    const hi = this.highest.get(w.resource) ?? -Infinity;
    const ok = w.token >= hi;
    if (ok) {
      this.highest.set(w.resource, w.token);
      const prev = this.values.get(w.resource);
      this.values.set(w.resource, { token: w.token, client: w.client, seq: (prev?.seq ?? 0) + 1 });
      this.accepted++;
    } else {
      this.rejected++;
    }
    this.history?.add({
      type: 'write', client: w.client, node: w.node, resource: w.resource, lock: w.lock, token: w.token,
      accepted: ok, highest: Number.isFinite(hi) ? hi : -1, ...(w.zombie ? { zombie: true } : {}),
    });
    return ok;
  }

  highestToken(resource: string): number | undefined { return this.highest.get(resource); }
}
