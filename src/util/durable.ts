/**
 * Durable small files: write a temporary file, fsync it, rename it over the old one, fsync the
 * directory — so that after a crash the file holds either the old or the new content, and
 * the new content is on disk before the call returns.
 */
import fs from 'node:fs';
import path from 'node:path';

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system',
  EACCES: 'permission denied', EPERM: 'operation not permitted', ENOENT: 'its directory does not exist (removed?)',
  ENOTDIR: 'a component of the path is not a directory', EIO: 'I/O error', EFBIG: 'file too large',
};

/** A failed durable write, naming the file and what went wrong; `code` is the errno code. */
export class DurableWriteError extends Error {
  constructor(readonly file: string, readonly code: string | undefined, message: string) {
    super(message);
    this.name = 'DurableWriteError';
  }
}

/**
 * Replaces `file` with `text`, durably. On failure the old content stays, the temporary file
 * is removed, and a DurableWriteError says which file and why ("cannot write F: no space left
 * on device (ENOSPC)"): a bare errno message would not name the file.
 */
export function writeFileDurably(file: string, text: string, mode = 0o600): void {
  const tmp = `${file}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    const dfd = fs.openSync(path.dirname(file), 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* not there (renamed, or never created) */ }
    const code = (e as NodeJS.ErrnoException).code;
    const what = code && WRITE_ERRORS[code] ? `${WRITE_ERRORS[code]} (${code})` : (e as Error).message;
    throw new DurableWriteError(file, code, `cannot write ${file}: ${what}`);
  }
}
