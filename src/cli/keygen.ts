/** `mxfsctl keygen --out FILE`: a new cluster key in a file nobody else can read. */
import fs from 'node:fs';
import { generateClusterKey } from '../cluster/auth';
import { fileErrorReason } from '../config/config';

/**
 * Creates FILE (never replaces one: every node of a cluster must hold the same key, so an
 * existing key is the cluster's until someone removes it on purpose) with mode 0600 from
 * the start. Returns an error line, or undefined on success.
 */
export function writeKeyFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return `${file} already exists; every node of a cluster needs the same key, so it is not replaced (remove it first to start a new cluster key)`;
    return `cannot create ${file}: ${fileErrorReason(e)}`;
  }
  try {
    fs.fchmodSync(fd, 0o600); // the umask may have removed bits, never added any: make it exact
    fs.writeSync(fd, generateClusterKey());
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
}
