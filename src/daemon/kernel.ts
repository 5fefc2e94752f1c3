/**
 * Kernel support for the daemon: when [node] kernel is auto or on, the kernel-bridge actor
 * runs on its own in-process client session (so the kernel's locks are owned, purged and
 * reported like any client's), and `mxfsctl status` shows its state.
 */
import type { Daemon } from './daemon';
import { startKernelBridge } from '../actors/kernel-bridge';
import type { VolumeDriver } from '../volumes/driver';

export interface KernelSupport {
  stop(): Promise<void>;
  /** The VolumeDriver for driver = kernel volumes (absent while the kernel volume driver does not exist). */
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
  });
  daemon.kernel = bridge;
  return {
    async stop() {
      await bridge.stop();
      await locks.close();
    },
  };
}
