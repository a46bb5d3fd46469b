import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENTRY_COLUMNS } from '../../lib/metadata/rows.js';
import { runCommand } from '../harness/processes.js';

/**
 * B-pg (BENCH.md §6.1): pgbench with a custom script at a given concurrency,
 * over the extended protocol like node-postgres' parameterised queries.
 */
export interface PgbenchResult {
  tps: number;
  latencyAvgMs: number;
  transactions: number;
  failed: number;
  seconds: number;
}

/** The two scripts: CallFS's own by-path SELECT (its unique index) of a seeded file, and B-node's upsert. */
export function writePgbenchScripts(dir: string, smallCount: number): { pkSelect: string; insert: string } {
  const pkSelect = join(dir, 'pk_select.sql');
  const insert = join(dir, 'insert.sql');
  writeFileSync(
    pkSelect,
    `\\set n random(0, ${smallCount - 1})
SELECT ${ENTRY_COLUMNS}
  FROM inodes WHERE path = '/bench/s/' || :n;
`,
  );
  writeFileSync(
    insert,
    `\\set n random(1, 9000000000000000000)
INSERT INTO bench_pg_files (path, sha256, size) VALUES ('/pg/' || :n || '-' || :client_id, md5(:n::text) || md5(:client_id::text), 4096)
  ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, mtime = now();
`,
  );
  return { pkSelect, insert };
}

export async function runPgbench(options: { pgbench: string; dsn: string; script: string; clients: number; seconds: number; signal?: AbortSignal }): Promise<PgbenchResult> {
  const args = ['-n', '-M', 'extended', '-c', String(options.clients), '-j', '1', '-T', String(options.seconds), '-f', options.script, options.dsn];
  const result = await runCommand(options.pgbench, args, { timeoutMs: (options.seconds + 30) * 1000, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  const out = result.stdout;
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  const tps = num(/^tps = ([\d.]+) \(without initial connection time\)/m);
  if (result.code !== 0 || Number.isNaN(tps)) {
    throw new Error(`pgbench exited with ${result.code ?? result.signal}: ${(result.stderr || out).trim().split('\n').slice(-4).join(' | ')}`);
  }
  return {
    tps,
    latencyAvgMs: num(/^latency average = ([\d.]+) ms/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m) || 0,
    seconds: num(/^duration: (\d+) s/m),
  };
}
