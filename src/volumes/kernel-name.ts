/**
 * The kernel volume name rule: what the mxfs module accepts as a volume name (mxfs_volume.c
 * mxfs_volume_name_ok). The name becomes the stacked disk's name `mxfs!<name>`
 * (/dev/mxfs/<name>), so it has at most MXFS_VOLUME_DEV_NAME_MAX bytes of [A-Za-z0-9_.-] and
 * does not start with '.' or '-'. The configuration refuses other names for driver = kernel
 * at load; the kernel driver checks again before it registers a volume.
 */
import { MXFS_VOLUME_DEV_NAME_MAX } from '../ffi/mxfs-genl';

/** Why a volume name cannot be a kernel volume (undefined when it can). */
export function kernelVolumeNameError(name: string): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > MXFS_VOLUME_DEV_NAME_MAX) {
    return `kernel volume names have 1-${MXFS_VOLUME_DEV_NAME_MAX} bytes (the device is /dev/mxfs/<name>, a ${MXFS_VOLUME_DEV_NAME_MAX + 6}-byte disk name); '${name}' has ${bytes}`;
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    return `kernel volume names use [A-Za-z0-9_.-] and do not start with '.' or '-'; '${name}' does not`;
  }
  return undefined;
}
