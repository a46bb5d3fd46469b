import { readFileSync } from 'node:fs';
import { childrenOf, SERVER_CPU } from './processes.js';

/**
 * CPU accounting of a measured window: how busy the server core was (and how
 * much it sat in iowait), and what share of the wall time each server-side
 * process used. It tells a CPU-bound target (core ~100% busy) from one that
 * waits (on fsync, locks, round trips), and who spent the core.
 */
export interface CpuUsage {
  /** Server core busy, % of the window (user+system+irq+softirq+steal). */
  coreBusy: number;
  /** Server core idle waiting for I/O, % of the window. */
  coreIowait: number;
  /** Per process (tree): CPU time as % of the window (100 = one full core). */
  processes: Record<string, number>;
  /** Of `processes`, the part spent in the kernel (system time). */
  system: Record<string, number>;
  /** Minor page faults during the window, per process (tree): fresh memory being touched. */
  minorFaults: Record<string, number>;
}

export interface CpuSnapshot {
  at: number;
  core: { busy: number; iowait: number; total: number };
  ticks: Record<string, number>;
  systemTicks: Record<string, number>;
  faults: Record<string, number>;
}

/** /proc/<pid>/stat fields from the state (field 3) on, as numbers; null when gone. */
function statFields(pid: number): number[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  } catch {
    return null;
  }
}

/** user+system (+ reaped children's, when `withChildren`) ticks of one process; 0 when gone. */
function ticksOf(pid: number, withChildren: boolean): number {
  // utime is field 14, stime 15, cutime 16, cstime 17 (index = field - 3).
  const [utime = 0, stime = 0, cutime = 0, cstime = 0] = statFields(pid)?.slice(11, 15) ?? [];
  return utime + stime + (withChildren ? cutime + cstime : 0);
}

/** System (kernel) ticks of one process (field 15). */
export function systemTicksOf(pid: number): number {
  return statFields(pid)?.[12] ?? 0;
}

/** Minor faults (field 10) of a process. */
export function minorFaultsOf(pid: number): number {
  return statFields(pid)?.[7] ?? 0;
}

/**
 * A process and its children: the root's own and reaped children's time plus
 * the live children's (a Postgres backend that exits during the window moves
 * from the second term to the first, so it is counted once).
 */
export function treeTicks(pid: number): number {
  return childrenOf(pid).reduce((sum, kid) => sum + ticksOf(kid, false), ticksOf(pid, true));
}

export function processTicks(pid: number): number {
  return ticksOf(pid, false);
}

function coreTicks(): CpuSnapshot['core'] {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${SERVER_CPU} `));
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (line ?? '').split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, iowait, total: busy + idle + iowait };
}

export interface CpuMeter {
  snapshot(): CpuSnapshot;
  usage(from: CpuSnapshot, to: CpuSnapshot): CpuUsage;
}

/** A measured process: its CPU ticks (USER_HZ, 100 per second on Linux) and minor faults. */
export interface CpuSource {
  ticks: () => number;
  systemTicks: () => number;
  faults: () => number;
}

export function createCpuMeter(sources: Record<string, CpuSource>): CpuMeter {
  const HZ = 100;
  const read = (what: keyof CpuSource): Record<string, number> => Object.fromEntries(Object.entries(sources).map(([k, source]) => [k, source[what]()]));
  return {
    snapshot: () => ({ at: performance.now(), core: coreTicks(), ticks: read('ticks'), systemTicks: read('systemTicks'), faults: read('faults') }),
    usage(from, to) {
      const wall = (to.at - from.at) / 1000;
      const total = Math.max(1, to.core.total - from.core.total);
      const pct = (n: number): number => Math.round(1000 * n) / 10;
      return {
        coreBusy: pct((to.core.busy - from.core.busy) / total),
        coreIowait: pct((to.core.iowait - from.core.iowait) / total),
        processes: Object.fromEntries(Object.keys(to.ticks).map((k) => [k, pct(((to.ticks[k] ?? 0) - (from.ticks[k] ?? 0)) / HZ / wall)])),
        system: Object.fromEntries(Object.keys(to.systemTicks).map((k) => [k, pct(((to.systemTicks[k] ?? 0) - (from.systemTicks[k] ?? 0)) / HZ / wall)])),
        minorFaults: Object.fromEntries(Object.keys(to.faults).map((k) => [k, (to.faults[k] ?? 0) - (from.faults[k] ?? 0)])),
      };
    },
  };
}
