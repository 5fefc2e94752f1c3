/**
 * Kernel support for the daemon: when [node] kernel is auto or on, the kernel-bridge actor
 * runs on its own in-process client session (so the kernel's locks are owned, purged and
 * reported like any client's), and `mxfsctl status` shows its state. The kernel volume
 * driver is made on first use (a volume with driver = kernel): from then on the module's
 * VOLUME_MOUNT requests go to it instead of the bridge's own volume lock.
 */
import type { Daemon } from './daemon';
import { startKernelBridge } from '../actors/kernel-bridge';
import type { VolumeDriver } from '../volumes/driver';
import { KernelVolumeDriver } from '../volumes/kernel-driver';

export interface KernelSupport {
  stop(): Promise<void>;
  /** The VolumeDriver for driver = kernel volumes (absent with kernel = off). */
  volumeDriver?: () => VolumeDriver;
}

export async function startKernelSupport(daemon: Daemon): Promise<KernelSupport> {
  const mode = daemon.config.node.kernel;
  if (mode === 'off') {
    daemon.kernel = { status: () => ({ state: 'disabled' }) };
    return { stop: async () => {} };
  }
  const locks = await daemon.connectLocal('kernel-bridge');
  const bridge = startKernelBridge({
    system: daemon.sys, locks, log: daemon.log, clock: daemon.clock, mode, nodeId: daemon.config.node.id,
    // A quorum loss ends the session for good: the kernel's later requests need a new one.
    reconnect: () => daemon.connectLocal('kernel-bridge'),
  });
  daemon.kernel = bridge;
  let driver: KernelVolumeDriver | undefined;
  return {
    volumeDriver: () => (driver ??= new KernelVolumeDriver({ bridge, clock: daemon.clock, log: daemon.log })),
    async stop() {
      // The module keeps the volumes registered (and fences an open gate when the bridge's
      // socket goes): the next mxfsd adopts them.
      await driver?.close();
      await bridge.stop();
      await locks.close();
    },
  };
}
