import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { startWithS3, type S3TestServer } from '../support/s3.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the S3 backend while S3 is down (s3rver stopped)', function () {
  this.timeout(120_000);
  let s3: S3TestServer;
  let server: TestServer;
  const call = (method: string, path: string, options: Parameters<typeof request>[1] = {}): Promise<TestResponse> =>
    request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });
  const patch = (path: string, body: unknown): Promise<TestResponse> =>
    call('PATCH', `/v1/files${path}`, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  function expectUnavailable(res: TestResponse): void {
    expect(res.status, res.text).to.equal(503);
    expect(res.json.code).to.equal('SERVICE_UNAVAILABLE');
    expect(Number(res.headers['retry-after'])).to.be.above(0);
    // Plain words only: no endpoint, bucket or SDK error reaches the client.
    expect(res.json.message).to.equal('the S3 store is unavailable; retry shortly');
    expect(res.text).to.not.match(/127\.0\.0\.1|ECONN|bucket/i);
  }

  let stopBoth: (() => Promise<void>) | undefined;
  before(async function () {
    ({ s3, server, stop: stopBoth } = await startWithS3((s) => startTestServer({ backend: { default_backend: 's3', ...s.config() } })));
  });
  after(async function () {
    await stopBoth?.();
  });
  afterEach(async function () {
    await s3.start();
  });

  it('/ready reports the bucket: 200 when reachable, 503 when not', async function () {
    const up = await request(`${server.url}/ready`);
    expect(up.status).to.equal(200);
    expect(up.json.checks.backends.s3).to.equal('ok');
    await s3.stop();
    const down = await request(`${server.url}/ready`);
    expect(down.status).to.equal(503);
    expect(down.json.checks.backends.s3).to.equal('unavailable');
    expect(down.json.checks.backends.cas).to.equal('ok');
    await s3.start();
    expect((await request(`${server.url}/ready`)).status).to.equal(200);
  });

  it('answers 503 with Retry-After and writes nothing: no entry for a new file, the old content for a replace', async function () {
    expect((await call('PUT', '/v1/files/out/keep.txt', { body: 'old' })).status).to.equal(201);
    await s3.stop();
    expectUnavailable(await call('PUT', '/v1/files/out/new.txt', { body: 'new file' }));
    expect((await call('HEAD', '/v1/files/out/new.txt')).status).to.equal(404);
    expectUnavailable(await call('PUT', '/v1/files/out/keep.txt', { body: 'replacement' }));
    expectUnavailable(await call('GET', '/v1/files/out/keep.txt'));
    const head = await call('HEAD', '/v1/files/out/keep.txt');
    expect(head.status).to.equal(200);
    expect(head.headers.etag).to.equal(`"${sha256('old')}"`);
    await s3.start();
    expect((await call('GET', '/v1/files/out/keep.txt')).text).to.equal('old');
    expect((await call('HEAD', '/v1/files/out/new.txt')).status).to.equal(404);
    expect(await s3.keys('out/')).to.deep.equal(['out/keep.txt']);
  });

  it('keeps the old content when S3 goes down in the middle of a multipart replace', async function () {
    const old = randomBytes(2 * MiB);
    expect((await call('PUT', '/v1/files/mid/f.bin', { body: old })).status).to.equal(201);
    const body = new Readable({ read() {} });
    const pending = call('PUT', '/v1/files/mid/f.bin', { body });
    const partsBefore = s3.uploadedParts().length;
    body.push(randomBytes(12 * MiB));
    for (let waited = 0; s3.uploadedParts().length < partsBefore + 1 && waited < 10_000; waited += 50) await tick(50);
    expect(s3.uploadedParts().length).to.be.above(partsBefore);
    await s3.stop();
    body.push(randomBytes(MiB));
    body.push(null);
    expectUnavailable(await pending);
    await s3.start();
    const got = await call('GET', '/v1/files/mid/f.bin');
    expect(got.status).to.equal(200);
    expect(sha256(got.body)).to.equal(sha256(old));
    expect(got.headers.etag).to.equal(`"${sha256(old)}"`);
  });

  it('refuses renames, directory moves and backend moves of S3 files with 503 and changes nothing', async function () {
    await call('PUT', '/v1/files/mv/dir/a', { body: 'a' });
    await call('PUT', '/v1/files/mv/dir/sub/b', { body: 'b' });
    await call('PUT', '/v1/files/mv/f', { body: 'f' });
    await s3.stop();
    expectUnavailable(await patch('/mv/f', { name: 'g' }));
    expectUnavailable(await patch('/mv/dir', { destination: '/mv/moved' }));
    expectUnavailable(await patch('/mv/f', { backend: 'cas' }));
    expect((await call('HEAD', '/v1/files/mv/f')).status).to.equal(200);
    expect((await call('HEAD', '/v1/files/mv/g')).status).to.equal(404);
    expect((await call('HEAD', '/v1/files/mv/dir/sub/b')).status).to.equal(200);
    expect((await call('HEAD', '/v1/files/mv/moved')).status).to.equal(404);
    await s3.start();
    expect(await s3.keys('mv/')).to.deep.equal(['mv/dir/a', 'mv/dir/sub/b', 'mv/f']);
    for (const [path, text] of [['/mv/f', 'f'], ['/mv/dir/a', 'a'], ['/mv/dir/sub/b', 'b']] as const) {
      expect((await call('GET', `/v1/files${path}`)).text, path).to.equal(text);
    }
    // And with S3 back, the same moves work.
    expect((await patch('/mv/dir', { destination: '/mv/moved' })).status).to.equal(200);
    expect(await s3.keys('mv/')).to.deep.equal(['mv/f', 'mv/moved/a', 'mv/moved/sub/b']);
  });
});
