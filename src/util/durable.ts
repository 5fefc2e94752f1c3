/**
 * Durable small files: write a temporary file, fsync it, rename it over the old one, fsync the
 * directory — so that after a crash the file holds either the old or the new content, and
 * the new content is on disk before the call returns.
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeFileDurably(file: string, text: string, mode = 0o600): void {
  const tmp = `${file}.tmp`;
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
}
