/**
 * Samples the servers' resident memory every 250 ms for the whole run, so
 * that any window (a scenario's measurement) can be asked for its peak.
 */
export interface RssSampler {
  /** Peak RSS in bytes of `name` between two performance.now() times (and one sample now). */
  peakBetween(name: string, fromMs: number, toMs: number): number | null;
  /** Peak over the whole run. */
  peak(name: string): number | null;
  /** The current value, read now. */
  now(name: string): number | null;
  stop(): void;
}

const INTERVAL_MS = 250;

export function startRssSampler(sources: Record<string, () => number | null>): RssSampler {
  const series = new Map<string, { t: number; rss: number }[]>(Object.keys(sources).map((k) => [k, []]));
  const sample = (): void => {
    const t = performance.now();
    for (const [name, read] of Object.entries(sources)) {
      const rss = read();
      if (rss !== null) series.get(name)?.push({ t, rss });
    }
  };
  sample();
  const timer = setInterval(sample, INTERVAL_MS);
  timer.unref();
  const max = (points: { rss: number }[]): number | null => (points.length === 0 ? null : Math.max(...points.map((p) => p.rss)));
  return {
    peakBetween(name, fromMs, toMs) {
      return max((series.get(name) ?? []).filter((p) => p.t >= fromMs && p.t <= toMs));
    },
    peak: (name) => max(series.get(name) ?? []),
    now: (name) => sources[name]?.() ?? null,
    stop: () => clearInterval(timer),
  };
}
