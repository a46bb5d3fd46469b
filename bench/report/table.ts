import type { Gate, Measurement, ScenarioResult } from './types.js';

/**
 * The one table of a run (Markdown): per scenario, each target's absolute
 * figure with latency, errors and peak RSS, then its ratios and checks with
 * their gates and whether they are met.
 */

const num = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v: number | undefined): string => (v === undefined ? '' : v < 10 ? v.toFixed(2) : v.toFixed(1));

function figure(m: Measurement): string {
  return `${num(m.value, m.value < 100 ? 2 : 0)} ${m.unit}`;
}

function gateText(g: Gate): string {
  if (g.op === undefined || g.threshold === undefined) return '';
  return `${g.op === '>=' ? '≥' : '≤'} ${g.threshold}${g.unit === '×' ? '×' : g.unit === 'MiB' ? ' MiB' : ''}`;
}

function gateValue(g: Gate): string {
  if (g.value === null) return 'n/a';
  if (g.unit === '×') return `${g.value >= 0.01 || g.value === 0 ? g.value.toFixed(2) : g.value.toPrecision(2)}×`;
  if (g.unit === 'MiB') return `${g.value.toFixed(1)} MiB`;
  return num(g.value);
}

/** "97% · 0% · 71 / 22 / 2": the server core, then the target's, Postgres' and Redis' shares (% of one core). */
function cpuCell(m: Measurement): string {
  if (m.cpu === undefined) return '';
  const p = m.cpu.processes;
  // pgbench's backends exit with the run, so their share cannot be read reliably: the core figures only.
  if (m.target === 'B-pg') return `${m.cpu.coreBusy}% · ${m.cpu.coreIowait}% · (Postgres)`;
  return `${m.cpu.coreBusy}% · ${m.cpu.coreIowait}% · ${p[m.target] ?? 0} / ${p.postgres ?? 0} / ${p.redis ?? 0}`;
}

const STATUS: Record<Gate['status'], string> = { met: 'met', below: '**below**', INVALID: '**INVALID**', info: '', 'n/a': 'n/a' };

export function renderTable(results: ScenarioResult[]): string {
  const rows: string[] = [
    '| # | scenario | target / ratio | result | p50 ms | p99 ms | non-2xx | socket err | peak RSS MiB | server core: busy · iowait · target / pg / redis | gate | status |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const r of results) {
    let first = true;
    const lead = (): string => {
      const s = first ? `| ${r.index} | ${r.name} |` : '| | |';
      first = false;
      return s;
    };
    for (const m of r.measurements) {
      const rss = m.peakRssMiB === undefined ? '' : num(m.peakRssMiB);
      rows.push(`${lead()} ${m.target}: ${m.label} | ${figure(m)} | ${ms(m.p50Ms)} | ${ms(m.p99Ms)} | ${m.non2xx} | ${m.socketErrors} | ${rss} | ${cpuCell(m)} | | |`);
    }
    for (const g of r.gates) {
      const label = g.kind === 'check' ? `check: ${g.label}` : `${g.kind === 'primary' ? '**' : ''}${g.label}${g.kind === 'primary' ? '**' : ''} (${g.kind})`;
      rows.push(`${lead()} ${label}${g.note === undefined ? '' : ` — ${g.note}`} | ${gateValue(g)} | | | | | | | ${gateText(g)} | ${STATUS[g.status]} |`);
    }
    for (const note of r.notes) rows.push(`${lead()} note: ${note} | | | | | | | | | |`);
  }
  return rows.join('\n');
}

/** Counts for the closing line: gated ratios and checks met, below, invalid. */
export function tally(results: ScenarioResult[]): string {
  const gated = results.flatMap((r) => r.gates).filter((g) => g.op !== undefined);
  const count = (s: Gate['status']): number => gated.filter((g) => g.status === s).length;
  return `${gated.length} gates: ${count('met')} met, ${count('below')} below, ${count('INVALID')} invalid, ${count('n/a')} n/a`;
}
