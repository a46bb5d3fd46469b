import { createHttpClient, expectStatus } from '../load/http.js';
import { runPutStreams } from '../load/put-stream.js';
import { check, finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import type { HttpTarget } from '../targets/types.js';
import { inTurn, type Scenario, type Suite } from './context.js';
import { measured } from './measure.js';

/** Scenarios 6 and 7: 64 MiB uploads with new contents, then the same content again (dedup). */

/** Also used by the webdav scenario's 64 MiB uploads. */
export const FILES = 12;
export const CONCURRENCY = 2;

function headersOf(t: HttpTarget): Record<string, string> {
  return t.authorization === undefined ? {} : { authorization: t.authorization };
}

/** Uploads for `warmupSeconds` (at least one round), to paths under `prefix`. */
export async function warmUp(suite: Suite, t: HttpTarget, prefix: string, uniquePrefix: boolean): Promise<void> {
  const until = performance.now() + suite.warmupSeconds * 1000;
  for (let round = 0; round === 0 || performance.now() < until; round++) {
    const paths = Array.from({ length: CONCURRENCY }, (_, i) => `${prefix}${round}-${i}`);
    const r = await runPutStreams({ port: t.port, tls: suite.tls.client, paths, headers: headersOf(t), body: suite.largeBody, uniquePrefix, concurrency: CONCURRENCY, signal: suite.signal });
    if (r.requests === 0) throw new Error(`${t.name}: every warm-up upload failed (${r.socketErrors} socket errors)`);
    if (r.non2xx + r.socketErrors > 0) suite.log(`  ${t.name}: warm-up saw ${r.non2xx} non-2xx (${r.statuses.filter((s) => s < 200 || s > 299).join(', ') || 'none'}) and ${r.socketErrors} socket errors`);
  }
}

export async function measurePuts(suite: Suite, scenario: string, t: HttpTarget, prefix: string, uniquePrefix: boolean, label: string): Promise<Measurement> {
  const paths = Array.from({ length: FILES }, (_, n) => `${prefix}${n}`);
  const run = () => runPutStreams({ port: t.port, tls: suite.tls.client, paths, headers: headersOf(t), body: suite.largeBody, uniquePrefix, concurrency: CONCURRENCY, signal: suite.signal });
  return (await measured(suite, scenario, t, { label, unit: 'MB/s' }, run)).m;
}

export const put64mUnique: Scenario = {
  name: 'put-64m-unique',
  async run(suite, index) {
    const ceilings = await suite.ceilings();
    const label = `PUT 64 MiB × ${FILES}, unique contents, c=${CONCURRENCY}`;
    const one = async (t: HttpTarget): Promise<Measurement> => {
      await warmUp(suite, t, `${t.writePrefix}warm/l-`, true);
      return measurePuts(suite, this.name, t, `${t.writePrefix}l/`, true, label);
    };
    const m: Record<string, Measurement> = {};
    await inTurn(index, async () => void (m.callfs = await one(suite.callfs)), [async () => void (m.nginx = await one(suite.nginx)), async () => void (m.node = await one(suite.node))]);
    const ceil = (label: string, value: number): Measurement => ({ target: 'B-ceil', label, value, unit: 'MB/s', non2xx: 0, socketErrors: 0 });
    const ceilingRows = [
      ceil('Node TLS loopback, server core decrypts + SHA-256 (3 s)', ceilings.tlsRecvSha),
      ceil('Node TLS loopback, server core decrypts (3 s)', ceilings.tlsRecv),
      ceil("createHash('sha256') over 1 MiB buffers (3 s)", ceilings.sha256),
    ];
    return finishScenario(index, this.name, [...Object.values(m), ...ceilingRows], [
      ratio('callfs ÷ B-nginx WebDAV PUT', 'primary', m.callfs, m.nginx, { op: '>=', threshold: 0.6 }),
      ratio('callfs ÷ B-ceil TLS receive + SHA-256 on one core', 'primary', m.callfs, ceilings.tlsRecvSha, { op: '>=', threshold: 0.8 }),
      ratio('callfs ÷ min(B-ceil TLS receive, B-ceil SHA-256)', 'secondary', m.callfs, Math.min(ceilings.tlsRecv, ceilings.sha256)),
      ratio('callfs ÷ B-node cas-PUT', 'secondary', m.callfs, m.node),
    ]);
  },
};

/** Blobs in the CAS (GET /v1/cas/images, as root) and CallFS rows under a prefix (SQL on its database). */
async function casState(suite: Suite, rowsPrefix: string): Promise<{ blobs: number; rows: number }> {
  const admin = createHttpClient({ port: suite.callfs.port, tls: suite.tls.client, authorization: suite.callfs.adminAuthorization, maxSockets: 1 });
  try {
    const res = expectStatus(await admin.request('GET', '/v1/cas/images'), 'GET /v1/cas/images', 200);
    const images = (JSON.parse(res.body.toString('utf8')) as { images: { blob_count: number }[] }).images;
    const { rows } = await suite.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM inodes WHERE path >= $1 AND path < $2`, [rowsPrefix, rowsPrefix.slice(0, -1) + '0']);
    return { blobs: images.reduce((sum, i) => sum + i.blob_count, 0), rows: Number(rows[0]?.n ?? 0) };
  } finally {
    admin.close();
  }
}

export const putDedup: Scenario = {
  name: 'put-dedup',
  async run(suite, index) {
    const t = suite.callfs;
    const notes: string[] = [];
    // The content exists once before anything is measured; the warm-up re-PUTs it too.
    const seed = await runPutStreams({ port: t.port, tls: suite.tls.client, paths: [`${t.writePrefix}dedup-seed`], headers: headersOf(t), body: suite.largeBody, uniquePrefix: false, concurrency: 1 });
    if (seed.non2xx + seed.socketErrors > 0) throw new Error(`put-dedup: the seed upload failed (statuses ${seed.statuses.join(', ')})`);
    await warmUp(suite, t, `${t.writePrefix}warm/d-`, false);
    const before = await casState(suite, '/bench/dedup/');
    const m = await measurePuts(suite, this.name, t, `${t.writePrefix}dedup/`, false, `re-PUT one 64 MiB content × ${FILES}, c=${CONCURRENCY}`);
    const after = await casState(suite, '/bench/dedup/');
    notes.push(`blobs ${before.blobs} → ${after.blobs}; rows under /bench/dedup/ ${before.rows} → ${after.rows}`);
    const unique = suite.done.get('put-64m-unique')?.measurements.find((x) => x.target === 'callfs');
    return finishScenario(
      index,
      this.name,
      [m],
      [
        ratio('callfs dedup ÷ callfs put-64m-unique (self)', 'primary', m, unique, { op: '>=', threshold: 1.0 }),
        check('new blobs written (must be 0)', after.blobs - before.blobs, '', { op: '<=', threshold: 0 }),
        check(`new metadata rows (must be ${FILES})`, after.rows - before.rows === FILES ? 1 : 0, '', { op: '>=', threshold: 1 }, `${after.rows - before.rows} rows`),
      ],
      notes,
    );
  },
};
