import { expect } from 'chai';
import { request, type TestRequestOptions } from './http.js';

/** One scrape of /metrics, read the way a dashboard query reads it. */
export interface Scrape {
  /** The sum over the series of `name` whose labels include all of `labels` (0 when there are none). */
  value(name: string, labels?: Record<string, string>): number;
  /** The `# TYPE` of a metric family (undefined when it is not served). */
  type(name: string): string | undefined;
  /** The label names of a family's series (its samples' for a histogram: `le` left out). */
  labelNames(name: string): string[];
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** Parse Prometheus text exposition format (what prom-client writes: no timestamps). */
export function parseScrape(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1] as string, type[2] as string);
    const m = SAMPLE.exec(line);
    if (line.startsWith('#') || m === null) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key as string] = value as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  const matching = (name: string, labels: Record<string, string>): Sample[] =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    value: (name, labels = {}) => matching(name, labels).reduce((sum, s) => sum + s.value, 0),
    type: (name) => types.get(name),
    labelNames(name) {
      const family = types.get(name) === 'histogram' ? `${name}_count` : name;
      return [...new Set(matching(family, {}).flatMap((s) => Object.keys(s.labels)))].sort();
    },
  };
}

/** GET /metrics over HTTPS with a key, parsed. */
export async function scrape(baseUrl: string, options: TestRequestOptions): Promise<Scrape> {
  const res = await request(`${baseUrl}/metrics`, options);
  expect(res.status, res.text).to.equal(200);
  return parseScrape(res.text);
}
