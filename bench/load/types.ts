/** What every load generator of the suite reports. */
export interface LoadResult {
  /** Completed requests. */
  requests: number;
  /** Wall time of the run. */
  seconds: number;
  /** Bytes received (wrk, head client) or sent (put client). */
  bytes: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Responses outside 2xx (wrk: status 400 and above). */
  non2xx: number;
  /** Connect, read and write errors, resets and timeouts. */
  socketErrors: number;
}

/** Percentiles of latencies given in milliseconds (nearest rank). */
export function summarizeLatencies(latencies: number[]): Pick<LoadResult, 'p50Ms' | 'p90Ms' | 'p99Ms' | 'maxMs'> {
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number): number => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0));
  return { p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), maxMs: sorted.length === 0 ? 0 : (sorted[sorted.length - 1] ?? 0) };
}
