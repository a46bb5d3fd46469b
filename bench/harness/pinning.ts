import { readFileSync } from 'node:fs';
import { childrenOf, runCommand, runChecked, LOAD_CPU, SERVER_CPU } from './processes.js';

/**
 * CPU pinning. The harness pins itself (and so every load generator it
 * starts) to the load core; servers are started under taskset on the server
 * core; the Postgres and Redis that already run are moved to the server core
 * for the run and put back afterwards, so that CallFS's metadata and lock
 * work lands on the core it competes with — a real cost the ratios must show.
 */

/** The affinity list of a process ("0,1"), or null when it is gone. */
async function affinityOf(pid: number): Promise<string | null> {
  const result = await runCommand('taskset', ['-pc', String(pid)]);
  const match = /affinity list:\s*(\S+)/.exec(result.stdout);
  return result.code === 0 && match?.[1] !== undefined ? match[1] : null;
}

/** Set the affinity of every thread of a process; false when it is gone or not ours to change. */
async function setAffinity(pid: number, cpus: string): Promise<boolean> {
  return (await runCommand('taskset', ['-apc', cpus, String(pid)])).code === 0;
}

/** Pin the harness (all its threads) to the load core; children inherit it. */
export async function pinSelfToLoadCore(): Promise<void> {
  await runChecked('taskset', ['-apc', LOAD_CPU, String(process.pid)]);
}

/** Parent pid from /proc/<pid>/stat, or null. */
export function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return null;
  }
}

export interface PinnedService {
  name: string;
  /** The root process (postmaster, redis-server). */
  pid: number;
  /** Its affinity before the run. */
  original: string;
}

/**
 * Move a running service (a process and its children, e.g. the postmaster and
 * its backends) to the server core. Returns null, with the reason logged,
 * when it cannot be done (not on this host, not permitted).
 */
export async function pinService(name: string, pid: number, log: (line: string) => void): Promise<PinnedService | null> {
  const original = await affinityOf(pid);
  if (original === null) {
    log(`${name} (pid ${pid}) is not a local process: not pinned`);
    return null;
  }
  const pids = [pid, ...childrenOf(pid)];
  let ok = true;
  for (const p of pids) ok = (await setAffinity(p, SERVER_CPU)) && ok;
  if (!ok) log(`${name}: some processes could not be pinned to CPU ${SERVER_CPU}`);
  return { name, pid, original };
}

/** Put a pinned service back: the root and every current child (those forked during the run inherited the pin). */
export async function restoreService(service: PinnedService): Promise<void> {
  for (const p of [service.pid, ...childrenOf(service.pid)]) await setAffinity(p, service.original);
}
