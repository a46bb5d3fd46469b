import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHttpClient, expectStatus } from '../load/http.js';
import { runPutStreams } from '../load/put-stream.js';
import { finishScenario, ratio } from '../report/gates.js';
import type { Measurement } from '../report/types.js';
import type { HttpTarget } from '../targets/types.js';
import { inTurn, type Scenario, type Suite } from './context.js';
import { CONCURRENCY, FILES, measurePuts, warmUp } from './large-put.js';
import { growthOf, measured, measureWrk } from './measure.js';

/**
 * Scenario 12 (issue 25): the S3-compatible API (s3.listen_addr, a second
 * TLS listener) against CallFS's own /v1/files, in the same run:
 *   12 × 64 MiB PutObject with unique contents, c=2, against 12 × 64 MiB
 *   PUT /v1/files (the put-64m-unique client and warm-up);
 *   GetObject of one of those 64 MiB objects, c=2 (wrk), against GET
 *   /v1/files of the same file.
 * S3 requests carry presigned URLs (SigV4 by @smithy/signature-v4, the AWS
 * SDK's signer; payload UNSIGNED-PAYLOAD), so that the client neither hashes
 * 64 MiB nor signs inside the measured loop: the server still checks every
 * signature. Every ratio is informational (secondary): the S3 layer's cost
 * (signature check, MD5 next to the SHA-256, XML) read against /v1/files.
 * Each workload alternates the order of the two sides, as the scenarios do.
 */

/** The bench user's /bench directory is the bucket "bench". */
const BUCKET = 'bench';
const S3_KEYS = 's3/l/';
const S3_WARM = 's3/warm/';
const V1_DIR = 'v1/l/';
const PRESIGN_SECONDS = 3600;

/** Presigned path-style URLs (path and query) of the bench user's S3 listener. */
function presigner(suite: Suite): (method: 'GET' | 'PUT', key: string) => Promise<string> {
  const t = suite.callfs;
  const signer = new SignatureV4({ credentials: t.s3Credentials, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const host = `127.0.0.1:${t.s3Port}`;
  // As the SDK's presigner does: the payload is UNSIGNED-PAYLOAD, a header neither signed nor hoisted into the query.
  const unsigned = new Set(['x-amz-content-sha256']);
  return async (method, key) => {
    const path = `/${BUCKET}/${key}`;
    const request = { method, protocol: 'https:', hostname: '127.0.0.1', port: t.s3Port, path, query: {}, headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } };
    const signed = await signer.presign(request as never, { expiresIn: PRESIGN_SECONDS, unsignableHeaders: unsigned, unhoistableHeaders: unsigned });
    const query = Object.entries(signed.query as Record<string, string>).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    return `${path}?${query.join('&')}`;
  };
}

/** The S3 listener as a load target (name "callfs": the same process, its RSS, CPU and metrics). */
const s3Target = (suite: Suite): HttpTarget => {
  const { authorization: _a, ...rest } = suite.callfs;
  return { ...rest, port: suite.callfs.s3Port, readPrefix: `/${BUCKET}/`, writePrefix: `/${BUCKET}/` };
};

/**
 * Before measuring: a 4 KiB object PUT through the S3 listener (header-signed
 * with its SHA-256) answers its MD5 as the ETag, and reads back the same
 * through GetObject (presigned) and through /v1/files; an unsigned request is
 * refused.
 */
async function prepare(suite: Suite, presign: ReturnType<typeof presigner>): Promise<void> {
  const t = suite.callfs;
  const body = readFileSync(suite.smallBody);
  const s3 = createHttpClient({ port: t.s3Port, tls: suite.tls.client, maxSockets: 1 });
  const v1 = createHttpClient({ port: t.port, tls: suite.tls.client, authorization: t.authorization ?? '', maxSockets: 1 });
  try {
    const signer = new SignatureV4({ credentials: t.s3Credentials, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const path = `/${BUCKET}/s3/probe`;
    const headers = { host: `127.0.0.1:${t.s3Port}`, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), 'content-length': String(body.length) };
    const signed = (await signer.sign({ method: 'PUT', protocol: 'https:', hostname: '127.0.0.1', port: t.s3Port, path, query: {}, headers } as never)) as unknown as { headers: Record<string, string> };
    const put = await s3.request('PUT', path, { body, headers: signed.headers });
    if (put.status === 0 || put.status === 404) throw new Error(`PutObject ${path} answered ${put.status}: this CallFS has no S3 API (issue 25)`);
    expectStatus(put, `PutObject ${path}`, 200);
    const md5 = createHash('md5').update(body).digest('hex');
    if (String(put.headers.etag ?? '') !== `"${md5}"`) throw new Error(`PutObject ${path}: ETag ${String(put.headers.etag ?? '')}, expected "${md5}"`);
    const viaS3 = expectStatus(await s3.request('GET', await presign('GET', 's3/probe')), `GetObject ${path} (presigned)`, 200);
    const viaV1 = expectStatus(await v1.request('GET', `${t.readPrefix}s3/probe`), `GET ${t.readPrefix}s3/probe`, 200);
    if (!viaS3.body.equals(body) || !viaV1.body.equals(body)) throw new Error('a 4 KiB object PUT through S3 did not read back the same (through GetObject and /v1/files)');
    const anonymous = await s3.request('GET', path);
    if (anonymous.status !== 403) throw new Error(`GetObject ${path} without a signature answered ${anonymous.status}, expected 403`);
  } finally {
    s3.close();
    v1.close();
  }
}


export const s3Api: Scenario = {
  name: 's3-api',
  async run(suite, index) {
    const t = suite.callfs;
    const s3 = s3Target(suite);
    const presign = presigner(suite);
    const notes: string[] = [];
    await prepare(suite, presign);
    const m: Record<string, Measurement> = {};

    // 1. 12 × 64 MiB uploads with unique contents, c=2: PutObject (presigned), and PUT /v1/files.
    const putUrls = async (prefix: string, names: string[]): Promise<string[]> => Promise.all(names.map((n) => presign('PUT', `${prefix}${n}`)));
    const s3Puts = async (paths: string[]) => runPutStreams({ port: s3.port, tls: suite.tls.client, paths, headers: {}, body: suite.largeBody, uniquePrefix: true, concurrency: CONCURRENCY, signal: suite.signal });
    const putS3 = async (): Promise<void> => {
      const until = performance.now() + suite.warmupSeconds * 1000;
      for (let round = 0; round === 0 || performance.now() < until; round++) {
        const warm = await s3Puts(await putUrls(S3_WARM, Array.from({ length: CONCURRENCY }, (_, i) => `${round}-${i}`)));
        if (warm.non2xx + warm.socketErrors > 0) suite.log(`  callfs S3: warm-up saw statuses ${warm.statuses.join(', ')} and ${warm.socketErrors} socket errors`);
      }
      const paths = await putUrls(S3_KEYS, Array.from({ length: FILES }, (_, n) => String(n)));
      m.s3Put = (await measured(suite, this.name, s3, { label: `S3 PutObject 64 MiB × ${FILES}, unique contents, c=${CONCURRENCY}`, unit: 'MB/s' }, () => s3Puts(paths))).m;
    };
    const putV1 = async (): Promise<void> => {
      await warmUp(suite, t, `${t.writePrefix}s3-v1/warm/`, true);
      m.v1Put = await measurePuts(suite, this.name, t, `${t.writePrefix}${V1_DIR}`, true, `/v1/files PUT 64 MiB × ${FILES}, unique contents, c=${CONCURRENCY}`);
    };
    const growth: { put: number | null; get: number | null } = { put: null, get: null };
    await inTurn(index, async () => void (growth.put = await growthOf(suite, putS3)), [putV1]);

    // 2. GETs of one object PUT through S3, c=2: GetObject (presigned) and GET /v1/files of the same file.
    const getUrl = await presign('GET', `${S3_KEYS}0`);
    const get = async (side: HttpTarget, path: string, label: string): Promise<Measurement> =>
      (await measureWrk(suite, this.name, side, { script: 'read.lua', connections: CONCURRENCY, label, unit: 'MB/s', args: () => ['GET', path, '0', side.authorization ?? '-'] })).m;
    await inTurn(index + 1, async () => void (growth.get = await growthOf(suite, async () => void (m.s3Get = await get(s3, getUrl, `S3 GetObject 64 MiB (one object, presigned), c=${CONCURRENCY}`)))), [
      async () => void (m.v1Get = await get(t, `${t.readPrefix}${S3_KEYS}0`, `/v1/files GET 64 MiB (the same file), c=${CONCURRENCY}`)),
    ]);
    if (growth.put !== null) notes.push(`callfs RSS growth during its S3 64 MiB PutObjects (peak − before the warm-up): ${growth.put.toFixed(1)} MiB`);
    if (growth.get !== null) notes.push(`callfs RSS growth during its S3 64 MiB GetObjects (peak − before the warm-up): ${growth.get.toFixed(1)} MiB`);

    const order = [m.s3Put, m.v1Put, m.s3Get, m.v1Get];
    return finishScenario(
      index,
      this.name,
      order.filter((x): x is Measurement => x !== undefined),
      [
        ratio('callfs S3 PutObject ÷ callfs /v1/files PUT 64 MiB (the S3 layer)', 'secondary', m.s3Put, m.v1Put),
        ratio('callfs S3 GetObject ÷ callfs /v1/files GET 64 MiB (the S3 layer)', 'secondary', m.s3Get, m.v1Get),
      ],
      notes,
    );
  },
};
