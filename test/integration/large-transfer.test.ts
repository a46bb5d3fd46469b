import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { stringify } from 'yaml';
import { startCliServer, type CliServer } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { KEYS, TEST_USERS } from '../support/callfs.js';
import { request } from '../support/http.js';
import { ensurePostgres, ensureRedis, loopMountsAvailable, requireComponent } from '../support/services.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const GIB = 1024 ** 3;
const RSS_LIMIT = 200 * 1024 * 1024;

/** Random bytes generated as they are sent (the client holds no copy; the test hashes what it sent). */
function generated(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(1024 * 1024, total - sent);
      sent += size;
      this.push(randomFillSync(Buffer.allocUnsafe(size)));
    },
  });
}

/** GET a path of the server as alice: the status and the body as text. */
function getText(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** callfs_cas_written_bytes_total{mode} from the server's /metrics (0 when absent). */
async function writtenBytes(serverUrl: string, mode: 'direct' | 'buffered'): Promise<number> {
  const { status, text } = await getText(`${serverUrl}/metrics`);
  expect(status).to.equal(200);
  const m = new RegExp(`^callfs_cas_written_bytes_total\\{mode="${mode}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/**
 * The server runs as the CLI child process, as a user runs it, on Postgres,
 * Redis and the loop-image CAS (the embedded PGlite alone takes several
 * hundred MiB of WebAssembly memory, which says nothing about streaming).
 */
describe('a 1 GiB upload and download streamed through the real server', function () {
  this.timeout(600_000);
  let tmp: ReturnType<typeof tempDir>;
  let db: TestDatabase;
  let server: CliServer;
  before(async function () {
    requireComponent(this, await ensurePostgres());
    requireComponent(this, await ensureRedis());
    requireComponent(this, loopMountsAvailable());
    tmp = tempDir('callfs-large-');
    db = await createTestDatabase('callfs_large');
    writeFileSync(join(tmp.dir, 'config.yaml'), stringify({
      server: { listen_addr: '127.0.0.1:0', data_dir: join(tmp.dir, 'data') },
      metrics: { listen_addr: '' },
      metadata_store: { dsn: db.dsn },
      dlm: { redis_addr: '127.0.0.1:6379' },
      auth: { users: TEST_USERS, internal_proxy_secret: 'proxy-secret-0123456789abcdef', single_use_link_secret: 'link-secret-0123456789abcdef' },
      backend: { cas: { mode: 'loop', image_size: '3GiB', min_free_bytes: '64MiB' } },
      log: { level: 'info' },
    }));
    server = await startCliServer(['-c', join(tmp.dir, 'config.yaml')], { cwd: tmp.dir });
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    tmp?.remove();
  });

  it('keeps the server’s RSS under 200 MiB both ways, and the bytes are exact', async () => {
    const directBefore = await writtenBytes(server.url, 'direct');
    const pid = server.child.pid as number;
    let peak = rssOf(pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 100);
    try {
      const sentHash = createHash('sha256');
      const body = generated(GIB);
      body.on('data', (c: Buffer) => sentHash.update(c));
      const put = await new Promise<{ status: number; json: any }>((resolve, reject) => {
        const u = new URL(`${server.url}/v1/files/large/one-gib.bin`);
        const req = https.request({ method: 'PUT', hostname: u.hostname, port: u.port, path: u.pathname, rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}`, 'content-length': String(GIB) } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
        });
        req.on('error', reject);
        body.pipe(req);
      });
      expect(put.status).to.equal(201);
      const expected = sentHash.digest('hex');
      expect(put.json.etag).to.equal(expected);
      // Every byte went to the image around the page cache (1 GiB is a whole number of 4 KiB blocks).
      expect((await writtenBytes(server.url, 'direct')) - directBefore).to.equal(GIB);
      const got = await new Promise<{ size: number; hash: string }>((resolve, reject) => {
        https.get(`${server.url}/v1/files/large/one-gib.bin`, { rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}` } }, (res) => {
          const hash = createHash('sha256');
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            hash.update(c);
          });
          res.on('end', () => resolve({ size, hash: hash.digest('hex') }));
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(got.size).to.equal(GIB);
      expect(got.hash).to.equal(expected);
    } finally {
      clearInterval(sampler);
    }
    console.log(`      server peak RSS during 1 GiB up+down: ${(peak / 1024 / 1024).toFixed(1)} MiB`);
    expect(peak).to.be.below(RSS_LIMIT);
  });

  it('writes nothing for a re-upload of stored bytes, and stores other bytes of the same length exactly', async () => {
    const written = async (): Promise<number> => (await writtenBytes(server.url, 'direct')) + (await writtenBytes(server.url, 'buffered'));
    const original = randomFillSync(Buffer.allocUnsafe(8 * 1024 * 1024 + 100));
    const other = Buffer.from(original);
    other[5 * 1024 * 1024] = (other[5 * 1024 * 1024] as number) ^ 1;
    const put = (path: string, data: Buffer) =>
      request(`${server.url}/v1/files/large/${path}`, { method: 'PUT', token: KEYS.alice, headers: { 'content-length': String(data.length) }, body: data });
    const get = (path: string) => request(`${server.url}/v1/files/large/${path}`, { token: KEYS.alice });
    expect((await put('first.bin', original)).status).to.equal(201);
    const before = await written();
    const again = await put('again.bin', original);
    expect(again.status).to.equal(201);
    expect(again.json.etag).to.equal(createHash('sha256').update(original).digest('hex'));
    expect(await written()).to.equal(before);
    const changed = await put('other.bin', other);
    expect(changed.status).to.equal(201);
    expect(await written()).to.equal(before + other.length);
    const readAgain = await get('again.bin');
    expect(readAgain.status).to.equal(200);
    expect(readAgain.body.equals(original)).to.equal(true);
    const readOther = await get('other.bin');
    expect(readOther.status).to.equal(200);
    expect(readOther.body.equals(other)).to.equal(true);
  });
});
