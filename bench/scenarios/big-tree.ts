import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { fillBigTree, type SqlRunner } from '../../test/support/big-tree.js';
import { createHttpClient, expectStatus, type HttpClient, type HttpResponse } from '../load/http.js';
import { finishScenario } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import { startCallfsTarget, type CallfsTarget } from '../targets/callfs.js';
import type { Scenario, Suite } from './context.js';

/**
 * Scenario 10: a big tree (issue 27). 100,000 entries (100 directories of
 * 999 files, made in the database directly), owned by the bench user, who
 * then lists the whole tree (one streamed recursive listing), renames it,
 * and deletes it recursively — on the suite's CallFS (Postgres) and on a
 * CallFS of its own on the embedded store (PGlite). Each figure is entries
 * per second of the whole operation, as the user waits for it: a rename or
 * delete that answered 202 counts until its job is done. No baseline: the
 * figures are absolute, for comparing runs.
 */

const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
const DIRS = 100;
const FILES_PER_DIR = 999;
const ENTRIES = DIRS * (1 + FILES_PER_DIR);
const JSON_HEADERS = { 'content-type': 'application/json' };

export const bigTree: Scenario = {
  name: 'big-tree',
  async run(suite, index) {
    const measurements: Measurement[] = [];
    const notes: string[] = [];
    const pool = suite.db.pool;
    measurements.push(...(await measureTree(suite, 'callfs', suite.callfs, 'Postgres', (sql) => fillWith(sql, pool), notes)));

    const dir = join(suite.dir, 'big-tree-embedded');
    const embedded = { metadata_store: { type: 'embedded', dsn: '' }, dlm: { type: 'local' }, backend: { cas: { mode: 'dir' } } };
    const start = () => startCallfsTarget({ dir, tls: suite.tls, dsn: '', redisAddr: suite.redisAddr, logFile: join(RESULTS_DIR, 'callfs-embedded-output.log'), cleanup: suite.cleanup, log: suite.log, extraConfig: embedded });
    let target = await start();
    try {
      // The tree goes into the embedded database while no server has it open.
      const fill = async (fillTree: (db: SqlRunner) => Promise<number>): Promise<number> => {
        await target.proc.stop('SIGTERM', 60_000);
        const db = await PGlite.create(join(target.dataDir, 'metadata', 'pgdata'));
        try {
          return await fillTree(db);
        } finally {
          await db.close();
          target = await start();
        }
      };
      measurements.push(...(await measureTree(suite, 'callfs-embedded', () => target, 'embedded', fill, notes)));
    } finally {
      await target.proc.stop('SIGTERM', 60_000);
    }
    return finishScenario(index, this.name, measurements, [], notes);
  },
};

async function fillWith(fillTree: (db: SqlRunner) => Promise<number>, pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    return await fillTree(client);
  } finally {
    client.release();
  }
}

async function measureTree(
  suite: Suite,
  name: string,
  targetOf: CallfsTarget | (() => CallfsTarget),
  store: string,
  fill: (fillTree: (db: SqlRunner) => Promise<number>) => Promise<number>,
  notes: string[],
): Promise<Measurement[]> {
  const current = (): CallfsTarget => (typeof targetOf === 'function' ? targetOf() : targetOf);
  const base = `${current().writePrefix}big-tree`;
  const root = decodeURIComponent(base.slice('/v1/files'.length));
  let http = clientOf(suite, current());
  expectStatus(await http.request('POST', `${base}/`, { body: Buffer.alloc(0) }), 'mkdir of the tree', 201, 200);
  http.close();
  const made = await fill((db) => fillBigTree(db, root, { dirs: DIRS, filesPerDir: FILES_PER_DIR, uid: 1000, gid: 1000, instanceId: 'callfs-instance-1' }));
  if (made !== ENTRIES) throw new Error(`big-tree: made ${made} entries, wanted ${ENTRIES}`);
  http = clientOf(suite, current());
  try {
    const listed = await timed(async () => {
      const res = await http.request('GET', `/v1/directories${root}?recursive=true&max_depth=10`, { timeoutMs: 600_000 });
      if (res.status !== 200) return { failed: res.status, what: `answered ${res.status}` };
      const count = (JSON.parse(res.body.toString()) as { items: unknown[] }).items.length;
      if (count !== ENTRIES) throw new Error(`big-tree: listed ${count} entries, wanted ${ENTRIES}`);
      return { failed: 0, what: `${(res.body.length / 1e6).toFixed(1)} MB of JSON` };
    });
    const renamed = await timed(async () => waitDone(http, await http.request('PATCH', base, { body: Buffer.from(JSON.stringify({ name: 'big-tree-renamed' })), headers: JSON_HEADERS, timeoutMs: 600_000 }), 200));
    // A rename that failed leaves the tree where it was.
    const at = renamed.value.failed === 0 ? `${base}-renamed` : base;
    const deletedAt = Date.now();
    let answeredMs = 0;
    const deleted = await timed(async () => {
      const res = await http.request('DELETE', `${at}?recursive=true`, { timeoutMs: 600_000 });
      answeredMs = Date.now() - deletedAt;
      return waitDone(http, res, 204);
    });
    notes.push(
      `${store}: ${ENTRIES.toLocaleString('en')} entries: listing ${ms(listed.ms)} (${listed.value.what}), rename ${ms(renamed.ms)} (${renamed.value.what}), ` +
        `delete answered in ${ms(answeredMs)}, done in ${ms(deleted.ms)} (${deleted.value.what})`,
    );
    const m = (label: string, t: { ms: number; value: { failed: number } }): Measurement => ({
      target: name, label: `${label} (${store})`, value: t.value.failed === 0 ? ENTRIES / (t.ms / 1000) : 0, unit: 'entries/s', non2xx: t.value.failed === 0 ? 0 : 1, socketErrors: 0,
    });
    return [m(`list ${ENTRIES.toLocaleString('en')} entries, recursive`, listed), m('rename the tree', renamed), m('delete the tree, recursive, until done', deleted)];
  } finally {
    http.close();
  }
}

function clientOf(suite: Suite, target: CallfsTarget): HttpClient {
  return createHttpClient({ port: target.port, tls: suite.tls.client, authorization: target.authorization as string, maxSockets: 2 });
}

/** The operation's outcome: after a 202, its job polled until it ended. `failed` is the refusing status, or 0. */
async function waitDone(http: HttpClient, res: HttpResponse, ok: number): Promise<{ failed: number; what: string }> {
  if (res.status === ok) return { failed: 0, what: `answered ${res.status}` };
  if (res.status !== 202) return { failed: res.status, what: `FAILED: ${res.status} ${res.body.toString().slice(0, 200)}` };
  const location = String(res.headers.location);
  for (;;) {
    const job = JSON.parse(expectStatus(await http.request('GET', location), 'job', 200).body.toString()) as { state: string };
    if (job.state === 'done') return { failed: 0, what: 'a job, 202' };
    if (job.state !== 'running') return { failed: 500, what: `FAILED: the job ended ${job.state}` };
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

const ms = (n: number): string => `${(n / 1000).toFixed(2)} s`;

