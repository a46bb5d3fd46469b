import { breakdown, breakdownText, pgCounters, postgresPerRequest, scrapeMetrics, type RequestBreakdown } from '../harness/callfs-metrics.js';
import { runHeadLoad } from '../load/head-client.js';
import { runPgbench } from '../load/pgbench.js';
import type { LoadResult } from '../load/types.js';
import { runWrk, type WrkResult } from '../load/wrk.js';
import type { Measurement } from '../report/types.js';
import type { HttpTarget } from '../targets/types.js';
import { monotonicUs, type Suite } from './context.js';

/**
 * One measurement = a warm-up of the same workload (BENCH.md: 2 s), then the
 * measured run, recording the target's peak RSS and, for CallFS, the time
 * window (for slicing a CPU profile).
 */

const MiB = 1024 * 1024;
const PG_STATS_DELAY_MS = 1100;

/** Run `measure` as a measured window of `target` and turn its load result into a Measurement. */
export async function measured<T extends LoadResult>(
  suite: Suite,
  scenario: string,
  target: HttpTarget,
  what: { label: string; unit: 'req/s' | 'MB/s' },
  measure: () => Promise<T>,
): Promise<{ m: Measurement; raw: T }> {
  const isCallfs = target.name === 'callfs';
  const metricsFrom = isCallfs ? await scrapeMetrics(suite.callfsMetrics) : null;
  const query = (sql: string) => suite.db.pool.query<Record<string, string>>(sql);
  // Postgres publishes its counters up to 1 s late: let the warm-up's settle first.
  if (isCallfs) await new Promise((r) => setTimeout(r, PG_STATS_DELAY_MS));
  const pgFrom = isCallfs ? await pgCounters(query) : null;
  const fromMs = performance.now();
  const startUs = monotonicUs();
  const cpuFrom = suite.cpu.snapshot();
  const raw = await measure();
  const cpu = suite.cpu.usage(cpuFrom, suite.cpu.snapshot());
  const endUs = monotonicUs();
  let perRequest: RequestBreakdown | undefined;
  if (metricsFrom !== null && pgFrom !== null) {
    perRequest = breakdown(metricsFrom, await scrapeMetrics(suite.callfsMetrics), raw.requests);
    await new Promise((r) => setTimeout(r, PG_STATS_DELAY_MS));
    // Two of the counted transactions are the clear_snapshot and the counter reads of the first snapshot.
    perRequest.postgresPerRequest = postgresPerRequest(pgFrom, await pgCounters(query), raw.requests, 2);
  }
  if (isCallfs) suite.windows.push({ scenario, startUs, endUs });
  const peak = suite.rss.peakBetween(target.name, fromMs, performance.now());
  const m: Measurement = {
    target: target.name,
    label: what.label,
    value: what.unit === 'MB/s' ? raw.bytes / raw.seconds / 1e6 : raw.requests / raw.seconds,
    unit: what.unit,
    p50Ms: raw.p50Ms,
    p99Ms: raw.p99Ms,
    requests: raw.requests,
    non2xx: raw.non2xx,
    socketErrors: raw.socketErrors,
    ...(peak === null ? {} : { peakRssMiB: peak / MiB }),
    cpu,
    ...(perRequest === undefined ? {} : { perRequest }),
  };
  suite.log(`  ${target.name.padEnd(7)} ${format(m)}`);
  if (perRequest !== undefined) suite.log(`          per request: ${breakdownText(perRequest)}`);
  return { m, raw };
}

/** "core 1 97% busy, 0% iowait: callfs 71%, postgres 22%, redis 2%" (the target's own process first). */
export function cpuText(m: Measurement): string {
  if (m.cpu === undefined) return '';
  const { coreBusy, coreIowait, processes } = m.cpu;
  if (m.target === 'B-pg') return `core 1 ${coreBusy}% busy, ${coreIowait}% iowait`;
  const own = m.target === 'B-pg' ? 'postgres' : m.target;
  const names = [own, ...['postgres', 'redis'].filter((n) => n !== own)];
  const faults = m.cpu.minorFaults[own] ?? 0;
  const perRequest = m.requests === undefined || m.requests === 0 || own === 'postgres' ? '' : `, ${Math.round(faults / m.requests)} minor faults/req`;
  const system = own === 'postgres' ? '' : ` (${m.cpu.system[own] ?? 0}% in the kernel)`;
  return `core 1 ${coreBusy}% busy, ${coreIowait}% iowait: ${names.map((n, i) => `${n} ${processes[n] ?? 0}%${i === 0 ? system : ''}`).join(', ')}${perRequest}`;
}

export function format(m: Measurement): string {
  const lat = m.p50Ms === undefined ? '' : `  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${(m.p99Ms ?? 0).toFixed(2)} ms`;
  const errors = m.non2xx + m.socketErrors > 0 ? `  non-2xx ${m.non2xx}  socket errors ${m.socketErrors}` : '';
  const cpu = m.cpu === undefined ? '' : `  [${cpuText(m)}]`;
  return `${m.label}: ${m.value.toFixed(m.value < 100 ? 2 : 0)} ${m.unit}${lat}${errors}${cpu}`;
}

export interface WrkSpec {
  script: 'read.lua' | 'put.lua';
  /** The script's arguments for a target; `warm` is true for the warm-up run (writes go elsewhere). */
  args: (target: HttpTarget, warm: boolean) => string[];
  connections: number;
  label: string;
  unit: 'req/s' | 'MB/s';
  seconds?: number;
}

export async function measureWrk(suite: Suite, scenario: string, target: HttpTarget, spec: WrkSpec): Promise<{ m: Measurement; raw: WrkResult }> {
  const common = { wrk: suite.tools.wrk, port: target.port, script: spec.script, connections: spec.connections, opensslConf: suite.tls.opensslConf, signal: suite.signal };
  const warm = await runWrk({ ...common, args: spec.args(target, true), seconds: suite.warmupSeconds });
  if (warm.non2xx + warm.socketErrors > 0) suite.log(`  ${target.name}: warm-up saw ${warm.non2xx} non-2xx and ${warm.socketErrors} socket errors`);
  return measured(suite, scenario, target, spec, () => runWrk({ ...common, args: spec.args(target, false), seconds: spec.seconds ?? suite.seconds }));
}

export async function measureHead(suite: Suite, scenario: string, target: HttpTarget, connections: number, count: number): Promise<Measurement> {
  const options = {
    port: target.port,
    tls: suite.tls.client,
    prefix: `${target.readPrefix}s/`,
    count,
    connections,
    signal: suite.signal,
    ...(target.authorization === undefined ? {} : { authorization: target.authorization }),
  };
  await runHeadLoad({ ...options, seconds: suite.warmupSeconds });
  return (await measured(suite, scenario, target, { label: `HEAD, c=${connections}`, unit: 'req/s' }, () => runHeadLoad({ ...options, seconds: suite.seconds }))).m;
}

/** B-pg: a warm-up, then the measured pgbench run. Failed transactions count as errors. */
export async function measurePgbench(suite: Suite, script: string, clients: number, label: string): Promise<Measurement> {
  const common = { pgbench: suite.tools.pgbench, dsn: suite.db.dsn, script, clients, signal: suite.signal };
  await runPgbench({ ...common, seconds: suite.warmupSeconds });
  const cpuFrom = suite.cpu.snapshot();
  const r = await runPgbench({ ...common, seconds: suite.seconds });
  const cpu = suite.cpu.usage(cpuFrom, suite.cpu.snapshot());
  const m: Measurement = { target: 'B-pg', label, value: r.tps, unit: 'tps', requests: r.transactions, non2xx: r.failed, socketErrors: 0, cpu };
  suite.log(`  B-pg    ${format(m)} (latency average ${r.latencyAvgMs} ms)`);
  return m;
}

/** RSS growth of CallFS over its RSS before `work` (its warm-up included), in MiB. */
export async function growthOf(suite: Suite, work: () => Promise<void>): Promise<number | null> {
  const before = suite.rss.now('callfs');
  const from = performance.now();
  await work();
  const peak = suite.rss.peakBetween('callfs', from, performance.now());
  return before === null || peak === null ? null : (peak - before) / (1024 * 1024);
}
