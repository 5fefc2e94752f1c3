/**
 * NodeLock: an exclusive, process-lifetime lock on a file — how one mxfsd claims its node's
 * state_dir and its client socket, so that a second daemon started as the same node (same
 * state_dir, or same socket) refuses to start instead of granting locks of its own.
 *
 * Mechanism: flock(LOCK_EX | LOCK_NB) on `<file>`, called through koffi (already a
 * dependency, for libnl) since Node has no flock. The kernel releases the lock when the
 * process dies however it dies (kill -9 included), so there is no stale-lock guessing; a
 * pid file with O_EXCL would need a liveness check that pid reuse can fool, and two daemons
 * cleaning up the same stale file at once could both win. The holder writes its pid into the
 * file, only to name it in the error. The file is never removed (removing a locked file would
 * let a second daemon lock a new file of the same name).
 */
import fs from 'node:fs';
import koffi from 'koffi';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

let flockFn: ((fd: number, op: number) => number) | undefined;

function flock(): (fd: number, op: number) => number {
  if (!flockFn) flockFn = koffi.load('libc.so.6').func('int flock(int fd, int op)') as (fd: number, op: number) => number;
  return flockFn;
}

export class NodeLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeLockError';
  }
}

export class NodeLock {
  private fd?: number;

  private constructor(readonly file: string, fd: number) { this.fd = fd; }

  /**
   * Lock `file` (created if missing) or throw NodeLockError saying who holds it.
   * `what` names the thing protected, for the message ("state_dir /var/lib/mxfs").
   */
  static acquire(file: string, what: string): NodeLock {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    } catch (e) {
      throw new NodeLockError(`cannot open lock file ${file} for ${what}: ${(e as Error).message}`);
    }
    let rc: number;
    try {
      rc = flock()(fd, LOCK_EX | LOCK_NB);
    } catch (e) {
      fs.closeSync(fd);
      throw new NodeLockError(`cannot lock ${file} (flock through koffi): ${(e as Error).message}`);
    }
    if (rc !== 0) {
      const errno = koffi.errno();
      let holder = '';
      try { holder = fs.readFileSync(file, 'utf8').trim(); } catch { /* unreadable: say less */ }
      fs.closeSync(fd);
      if (errno === EWOULDBLOCK) {
        throw new NodeLockError(`${what} is in use by another mxfsd${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''}; two daemons must not run as the same node`);
      }
      throw new NodeLockError(`cannot lock ${file} for ${what}: errno ${errno}`);
    }
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
    return new NodeLock(file, fd);
  }

  /** Give the lock up (a clean stop; process death does the same). */
  release(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd); // closing the last descriptor of the open file releases the flock
    this.fd = undefined;
  }
}
