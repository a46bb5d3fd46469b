import type { HttpClient } from '../load/http.js';

/**
 * Per-request breakdown of a CallFS measurement from its own Prometheus
 * metrics, scraped before and after: metadata operations and cache results
 * per request, lock acquisitions and mean wait, mean backend operation time.
 * It shows where a request's time goes without touching CallFS's code.
 */
export type MetricsSnapshot = Map<string, number>;

/** Parse the Prometheus text format into "name{labels}" → value. */
export function parseMetrics(text: string): MetricsSnapshot {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (!Number.isNaN(value)) values.set(line.slice(0, cut), value);
  }
  return values;
}

export async function scrapeMetrics(client: HttpClient): Promise<MetricsSnapshot> {
  const res = await client.request('GET', '/metrics');
  return res.status === 200 ? parseMetrics(res.body.toString('utf8')) : new Map();
}

const label = (key: string, name: string): string => new RegExp(`${name}="([^"]*)"`).exec(key)?.[1] ?? '';

/** Deltas of the series of `metric` whose key passes `keep`, grouped by `groupBy`. */
function deltas(before: MetricsSnapshot, after: MetricsSnapshot, metric: string, groupBy: (key: string) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) {
    if (!key.startsWith(metric + '{') && key !== metric) continue;
    const d = value - (before.get(key) ?? 0);
    if (d === 0) continue;
    const group = groupBy(key);
    out.set(group, (out.get(group) ?? 0) + d);
  }
  return out;
}

export interface RequestBreakdown {
  /** Metadata store operations per request, by operation (and outcome when not ok). */
  metadataOpsPerRequest: Record<string, number>;
  /** Metadata cache lookups per request: hit, miss, bypass. */
  cachePerRequest: Record<string, number>;
  lockAcquisitionsPerRequest: number;
  lockWaitMeanMs: number | null;
  /** Mean duration of backend operations, ms, by backend.operation. */
  backendMeanMs: Record<string, number>;
  /** Mean HTTP request duration as CallFS measures it, ms. */
  httpMeanMs: number | null;
  /** Postgres transactions (each autocommit statement is one) and rows written, per request. */
  postgresPerRequest?: { transactions: number; rowsInserted: number; rowsUpdated: number; rowsDeleted: number };
}

export interface PgCounters {
  transactions: number;
  inserted: number;
  updated: number;
  deleted: number;
}

/** The scratch database's counters from pg_stat_database (Postgres flushes them at most 1 s late). */
export async function pgCounters(query: (sql: string) => Promise<{ rows: Record<string, string>[] }>): Promise<PgCounters> {
  await query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await query(
    'SELECT xact_commit + xact_rollback AS t, tup_inserted AS i, tup_updated AS u, tup_deleted AS d FROM pg_stat_database WHERE datname = current_database()',
  );
  const r = rows[0] ?? {};
  return { transactions: Number(r.t ?? 0), inserted: Number(r.i ?? 0), updated: Number(r.u ?? 0), deleted: Number(r.d ?? 0) };
}

export function postgresPerRequest(from: PgCounters, to: PgCounters, requests: number, ownTransactions: number): NonNullable<RequestBreakdown['postgresPerRequest']> {
  const per = (n: number): number => Math.round((100 * n) / Math.max(requests, 1)) / 100;
  return {
    transactions: per(to.transactions - from.transactions - ownTransactions),
    rowsInserted: per(to.inserted - from.inserted),
    rowsUpdated: per(to.updated - from.updated),
    rowsDeleted: per(to.deleted - from.deleted),
  };
}

export function breakdown(before: MetricsSnapshot, after: MetricsSnapshot, requests: number): RequestBreakdown {
  const per = (m: Map<string, number>): Record<string, number> =>
    Object.fromEntries([...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((100 * v) / Math.max(requests, 1)) / 100]));
  const sumOf = (metric: string): number => [...deltas(before, after, metric, () => 'all').values()].reduce((a, b) => a + b, 0);
  const mean = (metric: string): number | null => {
    const count = sumOf(`${metric}_count`);
    return count === 0 ? null : Math.round((100000 * sumOf(`${metric}_sum`)) / count) / 100;
  };
  const backendSums = deltas(before, after, 'callfs_backend_operation_duration_seconds_sum', (k) => `${label(k, 'backend')}.${label(k, 'operation')}`);
  const backendCounts = deltas(before, after, 'callfs_backend_operation_duration_seconds_count', (k) => `${label(k, 'backend')}.${label(k, 'operation')}`);
  return {
    metadataOpsPerRequest: per(deltas(before, after, 'callfs_metadata_operations_total', (k) => (label(k, 'outcome') === 'ok' ? label(k, 'operation') : `${label(k, 'operation')}:${label(k, 'outcome')}`))),
    cachePerRequest: per(deltas(before, after, 'callfs_metadata_cache_total', (k) => label(k, 'result'))),
    lockAcquisitionsPerRequest: Math.round((100 * sumOf('callfs_lock_acquisitions_total')) / Math.max(requests, 1)) / 100,
    lockWaitMeanMs: mean('callfs_lock_wait_seconds'),
    backendMeanMs: Object.fromEntries([...backendSums.entries()].map(([k, s]) => [k, Math.round((100000 * s) / (backendCounts.get(k) ?? 1)) / 100])),
    httpMeanMs: mean('callfs_http_request_duration_seconds'),
  };
}

/** One line for the log. */
export function breakdownText(b: RequestBreakdown): string {
  const kv = (r: Record<string, number>): string =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  return [
    `metadata ops/req: ${kv(b.metadataOpsPerRequest) || '0'}`,
    `cache/req: ${kv(b.cachePerRequest) || '0'}`,
    `locks/req ${b.lockAcquisitionsPerRequest}${b.lockWaitMeanMs === null ? '' : ` (wait mean ${b.lockWaitMeanMs} ms)`}`,
    `backend mean ms: ${kv(b.backendMeanMs) || '-'}`,
    `CallFS-measured request mean ${b.httpMeanMs ?? '-'} ms`,
    ...(b.postgresPerRequest === undefined
      ? []
      : [`postgres/req: ${b.postgresPerRequest.transactions} transactions, rows +${b.postgresPerRequest.rowsInserted} ~${b.postgresPerRequest.rowsUpdated} -${b.postgresPerRequest.rowsDeleted}`]),
  ].join('; ');
}
