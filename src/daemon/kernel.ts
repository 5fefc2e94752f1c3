/**
 * Kernel support for the daemon: starts the kernel-bridge actor on its own in-process
 * client session when [node] kernel is auto or on, and reports its state in status.
 */
import type { Daemon } from './daemon';

export interface KernelSupport { stop(): Promise<void> }

export async function startKernelSupport(daemon: Daemon): Promise<KernelSupport> {
  const mode = daemon.config.node.kernel;
  if (mode === 'off') {
    daemon.kernel = { status: () => ({ state: 'disabled' }) };
    return { stop: async () => {} };
  }
  daemon.kernel = { status: () => ({ state: 'no-module', detail: 'kernel bridge not built into this daemon yet' }) };
  return { stop: async () => {} };
}
