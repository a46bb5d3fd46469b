import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { stringify } from 'yaml';
import { KEYS, TEST_USERS } from '../support/callfs.js';
import { startCliServer, type CliServer } from '../support/cli.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3TestServer } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const RSS_GROWTH_LIMIT = 128 * MiB;

/** Deterministic bytes generated as they are sent (the client holds no copy). */
function generated(total: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let counter = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(MiB, total - sent);
      const chunk = Buffer.allocUnsafe(size);
      for (let off = 0; off < size; off += 32) createHash('sha256').update(String(counter++)).digest().copy(chunk, off);
      hash.update(chunk);
      sent += size;
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

function send(method: string, url: string, body?: Readable, headers: Record<string, string> = {}): Promise<{ status: number; size: number; sha256: string; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = https.request(
      { method, hostname: u.hostname, port: u.port, path: u.pathname, rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}`, ...headers } },
      (res) => {
        const hash = createHash('sha256');
        let size = 0;
        let text = '';
        res.on('data', (c: Buffer) => {
          size += c.length;
          hash.update(c);
          if (text.length < 4096) text += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: hash.digest('hex'), text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body === undefined) req.end();
    else body.pipe(req);
  });
}

describe('a 64 MiB file through `callfs server` on S3, configured with CALLFS_BACKEND_S3_* variables', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let s3: S3TestServer;
  let server: CliServer;

  before(async function () {
    tmp = tempDir('callfs-s3-large-');
    s3 = await startS3rver();
    writeFileSync(
      join(tmp.dir, 'config.yaml'),
      stringify({
        server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, 'data') },
        metrics: { listen_addr: '' },
        auth: { users: TEST_USERS },
        backend: { cas: { mode: 'dir' } },
        log: { level: 'info' },
      }),
    );
    server = await startCliServer(['-c', join(tmp.dir, 'config.yaml')], {
      cwd: tmp.dir,
      env: {
        CALLFS_BACKEND_DEFAULT_BACKEND: 's3',
        CALLFS_BACKEND_S3_BUCKET_NAME: s3.bucket,
        CALLFS_BACKEND_S3_ENDPOINT: s3.endpoint,
        CALLFS_BACKEND_S3_REGION: 'eu-west-1',
        CALLFS_BACKEND_S3_ACCESS_KEY: S3RVER_CREDENTIALS.accessKeyId,
        CALLFS_BACKEND_S3_SECRET_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        CALLFS_BACKEND_S3_PREFIX: 'big-files/',
        CALLFS_BACKEND_S3_SERVER_SIDE_ENCRYPTION: 'AES256',
        CALLFS_BACKEND_S3_ACL: 'private',
        CALLFS_BACKEND_S3_PART_SIZE: '8MiB',
        CALLFS_BACKEND_S3_QUEUE_SIZE: '4',
      },
    });
  });
  after(async function () {
    try {
      await server?.stop();
    } finally {
      await s3?.remove();
      tmp?.remove();
    }
  });

  it('streams it up and down byte-exact, with the server’s RSS growing less than 128 MiB', async function () {
    const pid = server.child.pid as number;
    // Warm up the code paths (TLS, SDK, metadata) before taking the baseline.
    expect((await send('PUT', `${server.url}/v1/files/warm.txt`, Readable.from([Buffer.from('warm')]))).status).to.equal(201);
    expect((await send('GET', `${server.url}/v1/files/warm.txt`)).status).to.equal(200);
    const baseline = rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 25);
    let expected: string;
    try {
      const body = generated(SIZE);
      const put = await send('PUT', `${server.url}/v1/files/large/64mib.bin`, body.stream, { 'content-length': String(SIZE) });
      expected = body.digest();
      expect(put.status, put.text).to.equal(201);
      expect(JSON.parse(put.text).etag).to.equal(expected);
      const got = await send('GET', `${server.url}/v1/files/large/64mib.bin`);
      expect(got.status).to.equal(200);
      expect(got.size).to.equal(SIZE);
      expect(got.sha256).to.equal(expected);
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    console.log(`      server RSS: baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB during 64 MiB up+down`);
    expect(growth).to.be.below(RSS_GROWTH_LIMIT);
    expect(await s3.keys()).to.deep.equal(['big-files/large/64mib.bin', 'big-files/warm.txt']);
    const stored = await s3.read('big-files/large/64mib.bin');
    expect(stored?.length).to.equal(SIZE);
    expect(createHash('sha256').update(stored ?? Buffer.alloc(0)).digest('hex')).to.equal(expected);
  });
});
