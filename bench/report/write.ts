import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { environmentLine, type Environment } from '../harness/environment.js';
import { renderTable, tally } from './table.js';
import type { ProfileWindow, ScenarioResult } from './types.js';

export interface RunReport {
  results: ScenarioResult[];
  environment: Environment;
  /** Peak RSS over the run, MiB, by target. */
  peakRssMiB: Record<string, number>;
  seconds: number;
  /** Everything else worth keeping in the JSON (options, ceilings, profile windows). */
  extra: Record<string, unknown> & { callfsWindows: ProfileWindow[] };
}

/** The Markdown of a run: the table, a summary line and the environment line. */
export function renderReport(report: RunReport): string {
  const rss = Object.entries(report.peakRssMiB)
    .map(([n, v]) => `${n} ${v}`)
    .join(', ');
  const summary = `${tally(report.results)}. Server peak RSS over the run (MiB): ${rss}. Suite time ${report.seconds} s.`;
  return `${renderTable(report.results)}\n\n${summary}\n\nEnvironment: ${environmentLine(report.environment)}\n`;
}

/** Write latest.md and latest.json into `dir`. */
export function writeReport(dir: string, report: RunReport, markdown: string): void {
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString();
  writeFileSync(join(dir, 'latest.md'), `# CallFS benchmark, ${date}\n\n${markdown}`);
  const { extra, ...rest } = report;
  writeFileSync(join(dir, 'latest.json'), JSON.stringify({ date, ...rest, ...extra }, null, 2) + '\n');
}
