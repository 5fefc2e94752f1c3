/** The shipped scenarios, by name (the runner's `mxfs-failover run NAME` looks here). */
import type { Scenario } from '../../src/failover/scenario';
import { scenario as killHolder } from './kill-holder';
import { scenario as killMaster } from './kill-master';
import { scenario as pauseHolder } from './pause-holder';
import { scenario as gcPauseClient } from './gc-pause-client';
import { scenario as partitionMinority } from './partition-minority';
import { scenario as twoNodePartition } from './two-node-partition';
import { scenario as doubleFailure } from './double-failure';
import { scenario as killDuringRecovery } from './kill-during-recovery';
import { scenario as rollingRestart } from './rolling-restart';
import { scenario as random } from './random';
import { scenario as standaloneRestart } from './standalone-restart';
import { scenario as standaloneGcPause } from './standalone-gc-pause';
import { scenario as fullRestart } from './full-restart';
import { scenario as lossyLinks } from './lossy-links';
import { scenario as nonTransitive } from './non-transitive-partition';
import { scenario as volumeKillOwner } from './volume-kill-owner';
import { scenario as volumeKillRecoverer } from './volume-kill-recoverer';
import { scenario as volumePauseOwner } from './volume-pause-owner';
import { scenario as volumePartitionOwner } from './volume-partition-owner';
import { scenario as abuse } from './abuse';

export const SCENARIOS: Scenario[] = [
  killHolder, killMaster, pauseHolder, gcPauseClient, partitionMinority, twoNodePartition,
  doubleFailure, killDuringRecovery, rollingRestart, fullRestart, lossyLinks, nonTransitive, abuse, random, standaloneRestart, standaloneGcPause,
  volumeKillOwner, volumeKillRecoverer, volumePauseOwner, volumePartitionOwner,
];

/** What CI runs with fixed seeds (random runs separately over a batch of seeds). */
export const CI_FIXED = SCENARIOS.filter((s) => s.name !== 'random').map((s) => s.name);

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
