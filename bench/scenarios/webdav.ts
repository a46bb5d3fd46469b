import { readFileSync } from 'node:fs';
import { createHttpClient, expectStatus } from '../load/http.js';
import { check, finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import { SEED, type HttpTarget } from '../targets/types.js';
import { inTurn, type Scenario, type Suite } from './context.js';
import { FILES, measurePuts, warmUp } from './large-put.js';
import { growthOf, measureWrk, type WrkSpec } from './measure.js';
import { ensureSmallSeeds } from './seed.js';

/**
 * Scenario 11 (issue 23): CallFS's WebDAV front end (`/webdav/`, HTTP Basic
 * with the bench user's name and API key, as a WebDAV client logs in) against
 * nginx's WebDAV and against CallFS's own /v1/files, in the same run:
 *   PUT 4 KiB to unique paths with unique contents, c=16 (like put-4k-unique);
 *   GET of the seeded 4 KiB files at random, c=16;
 *   12 × 64 MiB PUTs with unique contents, c=2 (also through /v1/files), then
 *   GETs of the 12 files PUT through each server, c=2 (a WebDAV GET is served
 *   by the same code as a /v1/files GET: not measured twice).
 * Every ratio is informational (secondary): the WebDAV layer's cost is read
 * against /v1/files, what CallFS adds against nginx. Each workload alternates
 * the order of the targets (index, index + 1, …), as the scenarios do.
 */

const MiB = 1024 * 1024;
const LARGE = 64 * MiB;
const PREFIX = '/webdav';
/** What the scenario writes into, made with MKCOL (a WebDAV PUT under a missing parent is a 409). */
const DIRS = ['/bench/webdav/', '/bench/webdav/s/', '/bench/webdav/l/', '/bench/webdav-v1/', '/bench/webdav-v1/s/', '/bench/webdav-v1/l/'];

/** One way in: a target and its paths (each side writes to a directory of its own). */
interface Side {
  target: HttpTarget;
  /** How the rows name the protocol: "WebDAV ", "/v1/files " or "" (nginx's plain GET). */
  put: string;
  get: string;
  put4k: string;
  warm4k: string;
  get4k: string;
  putLarge?: string;
  warmLarge?: string;
}

function sides(suite: Suite): { dav: Side; v1: Side; nginx: Side } {
  const t = suite.callfs;
  const davTarget: HttpTarget = { ...t, authorization: t.basicAuthorization, readPrefix: `${PREFIX}/bench/`, writePrefix: `${PREFIX}/bench/` };
  return {
    dav: {
      target: davTarget,
      put: 'WebDAV ',
      get: 'WebDAV ',
      put4k: `${PREFIX}/bench/webdav/s/`,
      warm4k: `${PREFIX}/bench/warm/webdav-s-`,
      get4k: `${PREFIX}/bench/s/`,
      putLarge: `${PREFIX}/bench/webdav/l/`,
      warmLarge: `${PREFIX}/bench/warm/webdav-l-`,
    },
    v1: {
      target: t,
      put: '/v1/files ',
      get: '/v1/files ',
      put4k: `${t.writePrefix}webdav-v1/s/`,
      warm4k: `${t.writePrefix}warm/webdav-v1-s-`,
      get4k: `${t.readPrefix}s/`,
      putLarge: `${t.writePrefix}webdav-v1/l/`,
      warmLarge: `${t.writePrefix}warm/webdav-v1-l-`,
    },
    nginx: {
      target: suite.nginx,
      put: 'WebDAV ',
      get: '',
      put4k: `${suite.nginx.writePrefix}webdav/s/`,
      warm4k: `${suite.nginx.writePrefix}warm/webdav-s-`,
      get4k: `${suite.nginx.readPrefix}s/`,
      putLarge: `${suite.nginx.writePrefix}webdav/l/`,
      warmLarge: `${suite.nginx.writePrefix}warm/webdav-l-`,
    },
  };
}

const auth = (t: HttpTarget): string => t.authorization ?? '-';

/**
 * Before measuring: the endpoint is there (OPTIONS with DAV: 1), refuses a
 * client without credentials, the directories exist, and 4 KiB PUT through
 * WebDAV read back through /v1/files and through WebDAV are the bytes sent.
 */
async function prepare(suite: Suite, dav: HttpTarget, notes: string[]): Promise<void> {
  const t = suite.callfs;
  const client = createHttpClient({ port: t.port, tls: suite.tls.client, authorization: t.basicAuthorization, maxSockets: 1 });
  const bearer = createHttpClient({ port: t.port, tls: suite.tls.client, authorization: t.authorization ?? '', maxSockets: 1 });
  const anonymous = createHttpClient({ port: t.port, tls: suite.tls.client, maxSockets: 1 });
  try {
    const options = await client.request('OPTIONS', `${PREFIX}/`);
    if (options.status === 404) throw new Error(`OPTIONS ${PREFIX}/ answered 404: this CallFS has no WebDAV front end (issue 23)`);
    expectStatus(options, `OPTIONS ${PREFIX}/`, 200);
    if (!/(^|[\s,])1([\s,]|$)/.test(String(options.headers.dav ?? ''))) throw new Error(`OPTIONS ${PREFIX}/: DAV header "${String(options.headers.dav ?? '')}" does not name class 1`);
    const refused = await anonymous.request('OPTIONS', `${PREFIX}/`);
    const challenge = String(refused.headers['www-authenticate'] ?? '');
    if (refused.status !== 401 || !/^Basic\b/i.test(challenge)) notes.push(`OPTIONS without credentials: HTTP ${refused.status}, WWW-Authenticate "${challenge}" (expected 401 with a Basic challenge)`);
    for (const dir of DIRS) expectStatus(await client.request('MKCOL', `${PREFIX}${dir}`), `MKCOL ${PREFIX}${dir}`, 201, 405);
    const body = readFileSync(suite.smallBody);
    expectStatus(await client.request('PUT', `${dav.writePrefix}webdav/probe`, { body }), `PUT ${dav.writePrefix}webdav/probe`, 201, 204);
    const viaV1 = expectStatus(await bearer.request('GET', `${t.readPrefix}webdav/probe`), `GET ${t.readPrefix}webdav/probe`, 200);
    const viaDav = expectStatus(await client.request('GET', `${dav.readPrefix}webdav/probe`), `GET ${dav.readPrefix}webdav/probe`, 200);
    if (!viaV1.body.equals(body) || !viaDav.body.equals(body)) throw new Error('a 4 KiB file PUT through WebDAV did not read back the same (through /v1/files and WebDAV)');
  } finally {
    client.close();
    bearer.close();
    anonymous.close();
  }
  if (!suite.smallSeeded) {
    const filled = await ensureSmallSeeds(suite);
    if (filled > 0) notes.push(`${filled} of the ${SEED.smallCount} CallFS seeds were written by the harness`);
  }
}

/** How many files under `dir` PROPFIND (Depth 1) lists with a getcontentlength of `size`. */
async function listedAt(suite: Suite, dir: string, size: number): Promise<number> {
  const t = suite.callfs;
  const client = createHttpClient({ port: t.port, tls: suite.tls.client, authorization: t.basicAuthorization, maxSockets: 1 });
  try {
    const body = Buffer.from('<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/></D:prop></D:propfind>\n');
    const res = expectStatus(await client.request('PROPFIND', dir, { body, headers: { depth: '1', 'content-type': 'application/xml; charset=utf-8' } }), `PROPFIND ${dir}`, 207);
    return [...res.body.toString('utf8').matchAll(/<(?:[\w.-]+:)?getcontentlength(?:\s[^>]*)?>\s*(\d+)\s*</g)].filter((x) => Number(x[1]) === size).length;
  } finally {
    client.close();
  }
}


export const webdav: Scenario = {
  name: 'webdav',
  async run(suite, index) {
    const { dav, v1, nginx } = sides(suite);
    const notes: string[] = [];
    await prepare(suite, dav.target, notes);
    const m: Record<string, Measurement> = {};

    const small = (side: Side, what: 'put' | 'get'): WrkSpec =>
      what === 'put'
        ? {
            script: 'put.lua',
            connections: 16,
            label: `${side.put}PUT 4 KiB, unique paths and contents, c=16`,
            unit: 'req/s',
            args: (x, warm) => ['unique', warm ? side.warm4k : side.put4k, suite.smallBody, auth(x)],
          }
        : {
            script: 'read.lua',
            connections: 16,
            label: `${side.get}GET 4 KiB, c=16`,
            unit: 'req/s',
            args: (x) => ['GET', side.get4k, String(SEED.smallCount), auth(x)],
          };
    const wrk = async (side: Side, what: 'put' | 'get'): Promise<Measurement> => (await measureWrk(suite, this.name, side.target, small(side, what))).m;

    // 1. PUT 4 KiB, then 2. GET 4 KiB: WebDAV, /v1/files and nginx.
    await inTurn(index, async () => void (m.davPut = await wrk(dav, 'put')), [async () => void (m.v1Put = await wrk(v1, 'put')), async () => void (m.nginxPut = await wrk(nginx, 'put'))]);
    // The PUTs above can push seeds out of CallFS's metadata cache: one HEAD of each, so that every side starts from the same cache.
    await ensureSmallSeeds(suite);
    await inTurn(index + 1, async () => void (m.davGet = await wrk(dav, 'get')), [async () => void (m.v1Get = await wrk(v1, 'get')), async () => void (m.nginxGet = await wrk(nginx, 'get'))]);

    // 3. 12 × 64 MiB PUTs (the put-64m-unique client and warm-up): WebDAV, /v1/files and nginx; then 4. GETs of those files: WebDAV and nginx.
    const putLarge = async (side: Side): Promise<Measurement> => {
      await warmUp(suite, side.target, side.warmLarge ?? '', true);
      return measurePuts(suite, this.name, side.target, side.putLarge ?? '', true, `${side.put}PUT 64 MiB × ${FILES}, unique contents, c=2`);
    };
    const getLarge = async (side: Side): Promise<Measurement> =>
      (
        await measureWrk(suite, this.name, side.target, {
          script: 'read.lua',
          connections: 2,
          label: `${side.get}GET 64 MiB (the ${FILES} files just PUT, at random), c=2`,
          unit: 'MB/s',
          args: (x) => ['GET', side.putLarge ?? '', String(FILES), auth(x)],
        })
      ).m;
    const growth: { put: number | null; get: number | null } = { put: null, get: null };
    await inTurn(index + 2, async () => void (growth.put = await growthOf(suite, async () => void (m.davPutLarge = await putLarge(dav)))), [
      async () => void (m.v1PutLarge = await putLarge(v1)),
      async () => void (m.nginxPutLarge = await putLarge(nginx)),
    ]);
    const listed = await listedAt(suite, dav.putLarge ?? '', LARGE);
    await inTurn(index + 3, async () => void (growth.get = await growthOf(suite, async () => void (m.davGetLarge = await getLarge(dav)))), [async () => void (m.nginxGetLarge = await getLarge(nginx))]);
    if (growth.put !== null) notes.push(`callfs RSS growth during its WebDAV 64 MiB PUTs (peak − before the warm-up): ${growth.put.toFixed(1)} MiB`);

    const order = [m.davPut, m.v1Put, m.nginxPut, m.davGet, m.v1Get, m.nginxGet, m.davPutLarge, m.v1PutLarge, m.nginxPutLarge, m.davGetLarge, m.nginxGetLarge];
    return finishScenario(
      index,
      this.name,
      order.filter((x): x is Measurement => x !== undefined),
      [
        ratio('callfs WebDAV ÷ B-nginx WebDAV PUT 4 KiB', 'secondary', m.davPut, m.nginxPut),
        ratio('callfs WebDAV ÷ callfs /v1/files PUT 4 KiB (the WebDAV layer)', 'secondary', m.davPut, m.v1Put),
        ratio('callfs WebDAV ÷ B-nginx GET 4 KiB', 'secondary', m.davGet, m.nginxGet),
        ratio('callfs WebDAV ÷ callfs /v1/files GET 4 KiB (the WebDAV layer)', 'secondary', m.davGet, m.v1Get),
        ratio('callfs WebDAV ÷ B-nginx WebDAV PUT 64 MiB', 'secondary', m.davPutLarge, m.nginxPutLarge),
        ratio('callfs WebDAV ÷ callfs /v1/files PUT 64 MiB (the WebDAV layer)', 'secondary', m.davPutLarge, m.v1PutLarge),
        ratio('callfs WebDAV ÷ B-nginx GET 64 MiB', 'secondary', m.davGetLarge, m.nginxGetLarge),
        check('callfs RSS growth while streaming WebDAV 64 MiB GETs (peak − before)', growth.get, 'MiB', { op: '<=', threshold: 64 }),
        check(`WebDAV 64 MiB uploads that PROPFIND lists at 64 MiB (must be ${FILES})`, listed === FILES ? 1 : 0, '', { op: '>=', threshold: 1 }, `${listed} listed`),
      ],
      notes,
    );
  },
};
