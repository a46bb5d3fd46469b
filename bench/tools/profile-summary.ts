/**
 * Summarise the CallFS CPU profile of a `npm run bench -- --cpu-prof` run,
 * scenario by scenario: only the samples inside that scenario's measured
 * CallFS window count (V8 profile timestamps and the harness's windows are
 * both CLOCK_MONOTONIC µs).
 *   node dist/bench/tools/profile-summary.js [bench/results/latest.json] [--top 20]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface Window {
  scenario: string;
  startUs: number;
  endUs: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
const resultsFile = positionals[0] ?? fileURLToPath(new URL('../../../bench/results/latest.json', import.meta.url));
const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as { profileDir: string | null; callfsWindows: Window[] };
if (results.profileDir === null) throw new Error(`${resultsFile}: that run had no --cpu-prof`);
const file = readdirSync(results.profileDir).find((f) => f.endsWith('.cpuprofile'));
if (file === undefined) throw new Error(`no .cpuprofile in ${results.profileDir}`);
const profile = JSON.parse(readFileSync(join(results.profileDir, file), 'utf8')) as CpuProfile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** Where a frame's code lives: our code by folder, dependencies by package, Node internals by module. */
function category(n: ProfileNode): string {
  const { url, functionName } = n.callFrame;
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep !== null) return `npm:${dep[1]}`;
  const ours = /\/dist\/(lib\/[^/]+|cmd)/.exec(url);
  if (ours !== null) return ours[1] ?? url;
  const internal = /^node:internal\/([^/]+(?:\/[^/]+)?)/.exec(url);
  if (internal !== null) return `node:${internal[1]}`;
  return url.replace(/^file:\/\//, '');
}

const frameName = (n: ProfileNode): string => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url === '' ? '' : ` ${url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:internal\//, 'internal/')}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${where}`;
};

function summarise(window: Window, top: number): string {
  const self = new Map<string, number>();
  const categories = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < window.startUs || t > window.endUs) continue;
    const node = byId.get(profile.samples[i] ?? -1);
    if (node === undefined) continue;
    total++;
    self.set(frameName(node), (self.get(frameName(node)) ?? 0) + 1);
    categories.set(category(node), (categories.get(category(node)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id);
      if (frame === undefined) break;
      const name = frameName(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  }
  const pct = (n: number): string => `${((100 * n) / Math.max(total, 1)).toFixed(1).padStart(5)}%`;
  const list = (m: Map<string, number>, n: number): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v)}  ${k}`)
      .join('\n');
  const secs = (window.endUs - window.startUs) / 1e6;
  return [
    `## ${window.scenario}: ${total} samples in ${secs.toFixed(1)} s`,
    'self time by where the code lives:',
    list(categories, 15),
    'self time by function:',
    list(self, top),
    'inclusive time (on the stack) by function:',
    list(inclusive, top),
  ].join('\n');
}

const top = Number(values.top);
for (const w of results.callfsWindows) process.stdout.write(summarise(w, top) + '\n\n');
