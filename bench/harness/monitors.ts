import { createCpuMeter, minorFaultsOf, processTicks, systemTicksOf, treeTicks, type CpuMeter, type CpuSource } from './cpu.js';
import type { Cleanup } from './cleanup.js';
import { startRssSampler, type RssSampler } from './rss-sampler.js';
import type { HttpTarget } from '../targets/types.js';

/** The pids of the services the server stack shares its core with (null when not on this host). */
export interface ServicePids {
  postgres: number | null;
  redis: number | null;
}

/** RSS sampling of the three HTTP targets and CPU accounting of the whole server stack, for the run. */
export function startMonitors(targets: HttpTarget[], services: ServicePids, cleanup: Cleanup): { rss: RssSampler; cpu: CpuMeter } {
  const rss = startRssSampler(Object.fromEntries(targets.map((t) => [t.name, () => t.rss()])));
  cleanup.add('stop the RSS sampler', () => rss.stop());
  // nginx and Postgres are process trees (master + worker, postmaster + backends).
  const source = (pid: () => number | null, tree: boolean): CpuSource => ({
    ticks: () => (tree ? treeTicks : processTicks)(pid() ?? -1),
    systemTicks: () => systemTicksOf(pid() ?? -1),
    faults: () => minorFaultsOf(pid() ?? -1),
  });
  const cpu = createCpuMeter({
    ...Object.fromEntries(targets.map((t) => [t.name, source(() => t.proc.pid, t.name === 'B-nginx')])),
    postgres: source(() => services.postgres, true),
    redis: source(() => services.redis, false),
  });
  return { rss, cpu };
}
