/**
 * Coalescer: identical queries asked while one is running share one later run.
 *
 * Why: an inspection (`mxfsctl status`, `mxfsctl locks`) asks every resource actor, and on a
 * cluster every member; N clients asking at once must cost a bounded amount of work, not N
 * times that. Joining the query already running would be cheaper still, but its answer may
 * predate the request (a client that just took a lock and asks `locks` must see it). So a
 * query asked while an identical one runs waits for the next round, which starts when the
 * running one ends and answers everyone who asked meanwhile: each answer reflects the state
 * at or after its request, and a burst of N costs at most two runs.
 *
 * Takes: a key naming the query (identical key = identical answer) and the function that
 * runs it. Owns: the running and the next round per key. Rounds of other keys are independent.
 */
export class Coalescer<V> {
  private readonly running = new Map<string, Promise<V>>();
  private readonly next = new Map<string, Promise<V>>();
  /** Runs started (tests and status: how much work the queries really cost). */
  runs = 0;

  run(key: string, query: () => Promise<V>): Promise<V> {
    const waiting = this.next.get(key);
    if (waiting) return waiting;
    const current = this.running.get(key);
    if (!current) return this.start(key, query);
    const round = current.then(noop, noop).then(() => {
      this.next.delete(key);
      return this.start(key, query);
    });
    this.next.set(key, round);
    return round;
  }

  private start(key: string, query: () => Promise<V>): Promise<V> {
    this.runs++;
    const p: Promise<V> = query().finally(() => { if (this.running.get(key) === p) this.running.delete(key); });
    this.running.set(key, p);
    return p;
  }
}

function noop(): void { /* only the end of the round matters here */ }
