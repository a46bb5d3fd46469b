import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack } from '../support/stacks.js';
import { startWithS3, type S3TestServer } from '../support/s3.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

for (const stack of [embeddedStack, clusterStack]) describe(`files API on the S3 backend (s3rver, default_backend: s3) — ${stack.name}`, function () {
  this.timeout(180_000);
  let s3: S3TestServer;
  let server: TestServer;
  const call = (method: string, path: string, options: Parameters<typeof request>[1] = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });
  const patch = (path: string, body: unknown): Promise<TestResponse> =>
    call('PATCH', `/v1/files${path}`, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const keys = (under = ''): Promise<string[]> => s3.keys(`data/${under}`);

  let stopBoth: (() => Promise<void>) | undefined;
  before(async function () {
    await stack.require(this);
    ({ s3, server, stop: stopBoth } = await startWithS3((s) => stack.start({ backend: { default_backend: 's3', ...s.config({ s3_prefix: 'data' }) } })));
  });
  after(async function () {
    await stopBoth?.();
  });

  it('stores 0-byte and 1-byte files as objects named after their paths', async function () {
    for (const body of [Buffer.alloc(0), Buffer.from('x')]) {
      const path = `/tiny/${body.length}.dat`;
      const put = await call('PUT', `/v1/files${path}`, { body });
      expect(put.status).to.equal(201);
      expect(put.json.etag).to.equal(sha256(body));
      const got = await call('GET', `/v1/files${path}`);
      expect(got.status).to.equal(200);
      expect(got.body.equals(body)).to.equal(true);
      expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
      expect((await s3.read(`data${path}`))?.equals(body)).to.equal(true);
    }
    expect(await keys('tiny/')).to.deep.equal(['data/tiny/0.dat', 'data/tiny/1.dat']);
  });

  it('serves ranges (206), suffix ranges, and 416 past the end', async function () {
    const body = randomBytes(50_000);
    await call('PUT', '/v1/files/range/r.bin', { body });
    const mid = await call('GET', '/v1/files/range/r.bin', { headers: { range: 'bytes=100-199' } });
    expect(mid.status).to.equal(206);
    expect(mid.headers['content-range']).to.equal(`bytes 100-199/${body.length}`);
    expect(mid.body.equals(body.subarray(100, 200))).to.equal(true);
    const first = await call('GET', '/v1/files/range/r.bin', { headers: { range: 'bytes=0-0' } });
    expect(first.status).to.equal(206);
    expect(first.body.equals(body.subarray(0, 1))).to.equal(true);
    const tail = await call('GET', '/v1/files/range/r.bin', { headers: { range: 'bytes=-10' } });
    expect(tail.status).to.equal(206);
    expect(tail.body.equals(body.subarray(body.length - 10))).to.equal(true);
    const past = await call('GET', '/v1/files/range/r.bin', { headers: { range: `bytes=${body.length}-` } });
    expect(past.status).to.equal(416);
    expect(past.json.code).to.equal('RANGE_NOT_SATISFIABLE');
  });

  it('replaces content in place (one object per file)', async function () {
    await call('PUT', '/v1/files/over/x.txt', { body: 'first version' });
    const replaced = await call('PUT', '/v1/files/over/x.txt', { body: 'second' });
    expect(replaced.status).to.equal(200);
    expect((await call('GET', '/v1/files/over/x.txt')).text).to.equal('second');
    expect((await s3.read('data/over/x.txt'))?.toString()).to.equal('second');
    expect(await keys('over/')).to.deep.equal(['data/over/x.txt']);
  });

  it('deletes the object with the file, and a whole tree recursively', async function () {
    await call('PUT', '/v1/files/del/a', { body: 'a' });
    await call('PUT', '/v1/files/del/sub/b', { body: 'b' });
    expect((await call('DELETE', '/v1/files/del/a')).status).to.equal(204);
    expect(await s3.read('data/del/a')).to.equal(null);
    expect((await call('GET', '/v1/files/del/a')).status).to.equal(404);
    expect((await call('DELETE', '/v1/files/del?recursive=true')).status).to.equal(204);
    expect(await keys('del/')).to.deep.equal([]);
  });

  it('renames a file: its object follows to the new key, bytes intact', async function () {
    const body = randomBytes(20_000);
    await call('PUT', '/v1/files/ren/old.bin', { body });
    const renamed = await patch('/ren/old.bin', { name: 'new.bin' });
    expect(renamed.status).to.equal(200);
    expect(renamed.json).to.deep.equal({ path: '/ren/new.bin' });
    expect(await keys('ren/')).to.deep.equal(['data/ren/new.bin']);
    const got = await call('GET', '/v1/files/ren/new.bin');
    expect(got.body.equals(body)).to.equal(true);
    expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
    expect((await call('GET', '/v1/files/ren/old.bin')).status).to.equal(404);
  });

  it('moves a directory: every S3 object beneath follows, CAS files too, bytes intact', async function () {
    const files: Record<string, Buffer> = { '/tree/a.bin': randomBytes(1000), '/tree/sub/b.bin': randomBytes(7 * MiB), '/tree/sub/deep/c.txt': Buffer.from('c') };
    for (const [path, body] of Object.entries(files)) expect((await call('PUT', `/v1/files${path}`, { body })).status).to.equal(201);
    const local = Buffer.from('on the CAS');
    await call('PUT', '/v1/files/tree/sub/local.txt', { body: local });
    expect((await patch('/tree/sub/local.txt', { backend: 'cas' })).status).to.equal(200);
    const moved = await patch('/tree', { destination: '/moved/tree', create_parents: true });
    expect(moved.status).to.equal(200);
    expect(await keys('tree/')).to.deep.equal([]);
    expect(await keys('moved/')).to.deep.equal(['data/moved/tree/a.bin', 'data/moved/tree/sub/b.bin', 'data/moved/tree/sub/deep/c.txt']);
    for (const [path, body] of Object.entries(files)) {
      const got = await call('GET', `/v1/files/moved${path}`);
      expect(got.status, path).to.equal(200);
      expect(sha256(got.body), path).to.equal(sha256(body));
    }
    expect((await call('GET', '/v1/files/moved/tree/sub/local.txt')).body.equals(local)).to.equal(true);
    // The moved entries are replaced in place afterwards (their keys are their paths now).
    expect((await call('PUT', '/v1/files/moved/tree/a.bin', { body: 'replaced' })).status).to.equal(200);
    expect((await s3.read('data/moved/tree/a.bin'))?.toString()).to.equal('replaced');
  });

  it('moves a file onto an existing S3 file with overwrite: one object, the moved bytes', async function () {
    await call('PUT', '/v1/files/ow/src', { body: 'source bytes' });
    await call('PUT', '/v1/files/ow/dst', { body: 'destination bytes' });
    expect((await patch('/ow/src', { destination: '/ow/dst' })).status).to.equal(409);
    expect((await s3.read('data/ow/dst'))?.toString()).to.equal('destination bytes');
    expect((await patch('/ow/src', { destination: '/ow/dst', overwrite: true })).status).to.equal(200);
    expect(await keys('ow/')).to.deep.equal(['data/ow/dst']);
    const got = await call('GET', '/v1/files/ow/dst');
    expect(got.text).to.equal('source bytes');
    expect(got.headers.etag).to.equal(`"${sha256('source bytes')}"`);
  });

  it('moves bytes S3 → CAS → S3 with PATCH backend, byte-exact, and cleans up each side', async function () {
    const body = randomBytes(6 * MiB + 11);
    await call('PUT', '/v1/files/xfer/f.bin', { body });
    expect(await keys('xfer/')).to.deep.equal(['data/xfer/f.bin']);

    const toCas = await patch('/xfer/f.bin', { backend: 'localfs' });
    expect(toCas.status).to.equal(200);
    expect(await keys('xfer/')).to.deep.equal([]);
    let got = await call('GET', '/v1/files/xfer/f.bin');
    expect(sha256(got.body)).to.equal(sha256(body));
    expect(got.headers.etag).to.equal(`"${sha256(body)}"`);

    expect((await patch('/xfer/f.bin', { backend: 'cas' })).status).to.equal(200);

    const back = await patch('/xfer/f.bin', { backend: 's3', destination: '/xfer/g.bin' });
    expect(back.status).to.equal(200);
    expect(back.json).to.deep.equal({ path: '/xfer/g.bin' });
    expect(await keys('xfer/')).to.deep.equal(['data/xfer/g.bin']);
    expect(sha256((await s3.read('data/xfer/g.bin')) ?? Buffer.alloc(0))).to.equal(sha256(body));
    got = await call('GET', '/v1/files/xfer/g.bin');
    expect(sha256(got.body)).to.equal(sha256(body));
  });

  it('refuses a directory (400), an unknown backend (400, nothing moved), and does nothing for the same backend', async function () {
    await call('PUT', '/v1/files/refuse/a', { body: 'a' });
    const dir = await patch('/refuse', { backend: 'cas' });
    expect(dir.status).to.equal(400);
    expect(dir.json.code).to.equal('BAD_REQUEST');
    const bad = await patch('/refuse/a', { backend: 'tape', destination: '/refuse/b' });
    expect(bad.status).to.equal(400);
    expect((await call('GET', '/v1/files/refuse/a')).status).to.equal(200);
    const same = await patch('/refuse/a', { backend: 's3' });
    expect(same.status).to.equal(200);
    expect(await keys('refuse/')).to.deep.equal(['data/refuse/a']);
  });
});

describe('S3 configured, default_backend: cas', function () {
  this.timeout(60_000);
  let s3: S3TestServer;
  let server: TestServer;

  let stopBoth: (() => Promise<void>) | undefined;
  before(async function () {
    ({ s3, server, stop: stopBoth } = await startWithS3((s) => startTestServer({ backend: { default_backend: 'localfs', ...s.config() } })));
  });
  after(async function () {
    await stopBoth?.();
  });

  it('puts new files on the CAS, and moves one to S3 and back on request', async function () {
    const body = randomBytes(3000);
    const put = await request(`${server.url}/v1/files/c/a.bin`, { method: 'PUT', token: KEYS.alice, body });
    expect(put.status).to.equal(201);
    expect(await s3.keys()).to.deep.equal([]);
    const toS3 = await request(`${server.url}/v1/files/c/a.bin`, { method: 'PATCH', token: KEYS.alice, body: JSON.stringify({ backend: 's3' }), headers: { 'content-type': 'application/json' } });
    expect(toS3.status).to.equal(200);
    expect(await s3.keys()).to.deep.equal(['c/a.bin']);
    // Replacing keeps the file on the backend it is on.
    const replaced = await request(`${server.url}/v1/files/c/a.bin`, { method: 'PUT', token: KEYS.alice, body: 'v2' });
    expect(replaced.status).to.equal(200);
    expect((await s3.read('c/a.bin'))?.toString()).to.equal('v2');
    const ready = await request(`${server.url}/ready`);
    expect(ready.status).to.equal(200);
    expect(ready.json.checks.backends).to.deep.equal({ cas: 'ok', s3: 'ok' });
  });
});
