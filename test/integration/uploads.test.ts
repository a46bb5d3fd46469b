import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { request, type TestResponse } from '../support/http.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { MiB, OFFSET_TYPE, patternBytes, sha256, tusClient, uploadMetadata, waitFor, type TusClient, UPLOAD_PATH, digest, expectError, expectHead404 } from '../support/tus.js';

/**
 * Issue 24: resumable uploads (tus 1.0) at /v1/uploads, through the real
 * server over HTTPS: the protocol, the same rules as PUT, progress that
 * survives cut connections, kill -9 and a change of instance.
 */


describe('resumable uploads (tus 1.0): the protocol', function () {
  this.timeout(120_000);
  const LIMIT = 8 * MiB;
  let server: TestServer;
  let tus: TusClient;
  const file = (path: string, method = 'GET', token: string = KEYS.alice): Promise<TestResponse> => request(`${server.url}/v1/files${path}`, { method, token });
  const partFile = (id: string): string => join(server.dataDir, 'uploads', `${id}.part`);

  before(async () => {
    server = await startTestServer({ server: { max_upload_bytes: '8MiB' } });
    tus = tusClient(server.url, KEYS.alice);
  });
  after(async () => {
    await server?.stop();
  });

  it('OPTIONS tells the version, the extensions, the size limit and the checksum algorithms', async () => {
    for (const path of ['/v1/uploads', `/v1/uploads/${'0'.repeat(32)}`]) {
      const res = await tus.call('OPTIONS', path, { bare: true });
      expect(res.status, path).to.equal(204);
      expect(res.headers['tus-resumable']).to.equal('1.0.0');
      expect(res.headers['tus-version']).to.equal('1.0.0');
      expect(String(res.headers['tus-extension']).split(',').sort()).to.deep.equal(['checksum', 'creation', 'creation-with-upload', 'expiration', 'termination']);
      expect(res.headers['tus-max-size']).to.equal(String(LIMIT));
      expect(String(res.headers['tus-checksum-algorithm']).split(',').sort()).to.deep.equal(['sha1', 'sha256']);
    }
  });

  it('needs a key (401) and Tus-Resumable: 1.0.0 on every other request (412 with Tus-Version)', async () => {
    const anonymous = await request(`${server.url}/v1/uploads`, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-metadata': uploadMetadata({ path: '/up/anon' }) } });
    expectError(anonymous, 401, 'AUTHENTICATION_FAILED');
    for (const version of [undefined, '0.2.2']) {
      const res = await tus.call('POST', '/v1/uploads', { bare: true, headers: { ...(version === undefined ? {} : { 'tus-resumable': version }), 'upload-length': '1', 'upload-metadata': uploadMetadata({ path: '/up/no-version' }) } });
      expectError(res, 412, 'PRECONDITION_FAILED');
      expect(res.headers['tus-version']).to.equal('1.0.0');
      expect(res.headers['tus-resumable']).to.equal('1.0.0');
    }
    const { location } = await tus.create('/up/version.bin', 10);
    expect((await tus.call('HEAD', location, { bare: true })).status).to.equal(412);
    const patch = await tus.call('PATCH', location, { bare: true, headers: { 'content-type': OFFSET_TYPE, 'upload-offset': '0' }, body: 'x' });
    expectError(patch, 412, 'PRECONDITION_FAILED');
    expect((await tus.call('DELETE', location, { bare: true })).status).to.equal(412);
    expect((await tus.head(location)).headers['upload-offset'], 'nothing was taken').to.equal('0');
    expect((await file('/up/no-version', 'HEAD')).status).to.equal(404);
  });

  it('POST refuses a missing or relative path, a missing length, Upload-Defer-Length and a bad mode (400)', async () => {
    const post = (headers: Record<string, string>): Promise<TestResponse> => tus.call('POST', '/v1/uploads', { headers });
    expectError(await post({ 'upload-length': '10' }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-length': '10', 'upload-metadata': uploadMetadata({ filename: 'a.bin' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-length': '10', 'upload-metadata': uploadMetadata({ path: 'relative/a.bin' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-metadata': uploadMetadata({ path: '/up/a.bin' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-length': '-1', 'upload-metadata': uploadMetadata({ path: '/up/a.bin' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-defer-length': '1', 'upload-metadata': uploadMetadata({ path: '/up/a.bin' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-length': '10', 'upload-metadata': uploadMetadata({ path: '/up/a.bin', mode: 'rwx' }) }), 400, 'BAD_REQUEST');
    expectError(await post({ 'upload-length': '10', 'upload-metadata': 'path %%%' }), 400, 'BAD_REQUEST');
  });

  it('POST with an Upload-Length over server.max_upload_bytes is 413; at the limit it is taken', async () => {
    const over = await tus.call('POST', '/v1/uploads', { headers: { 'upload-length': String(LIMIT + 1), 'upload-metadata': uploadMetadata({ path: '/up/too-big.bin' }) } });
    expectError(over, 413, 'PAYLOAD_TOO_LARGE');
    const { location } = await tus.create('/up/at-limit.bin', LIMIT);
    expect((await tus.call('DELETE', location)).status).to.equal(204);
  });

  it('creation: 201 with Location, offset 0 and an expiry; HEAD tells offset, length and metadata', async () => {
    const before = Date.now();
    const metadata = uploadMetadata({ path: '/up/created.bin', filename: 'created.bin' });
    const res = await tus.call('POST', '/v1/uploads', { headers: { 'upload-length': '12345', 'upload-metadata': metadata } });
    expect(res.status, res.text).to.equal(201);
    expect(res.headers.location).to.match(UPLOAD_PATH);
    expect(res.headers['upload-offset']).to.equal('0');
    expect(res.headers['tus-resumable']).to.equal('1.0.0');
    const expires = Date.parse(String(res.headers['upload-expires']));
    expect(expires, 'Upload-Expires is an HTTP date in the future').to.be.above(before);
    const head = await tus.head(String(res.headers.location));
    expect(head.status).to.equal(200);
    expect(head.headers['upload-offset']).to.equal('0');
    expect(head.headers['upload-length']).to.equal('12345');
    expect(head.headers['upload-metadata']).to.equal(metadata);
    expect(head.headers['cache-control']).to.equal('no-store');
    expect(head.headers['tus-resumable']).to.equal('1.0.0');
    expect(Date.parse(String(head.headers['upload-expires']))).to.be.above(before);
    expect(existsSync(partFile(String(res.headers.location).slice('/v1/uploads/'.length)))).to.equal(true);
  });

  it('PATCH: a wrong Content-Type is 415, a wrong or missing offset 409/400, bytes past the length 400; the offset stays', async () => {
    const body = patternBytes(1000, 'patch-errors');
    const { location } = await tus.create('/up/patch-errors.bin', body.length);
    const wrongType = await tus.call('PATCH', location, { headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' }, body });
    expectError(wrongType, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectError(await tus.patch(location, 5, body.subarray(5, 100)), 409, 'UPLOAD_OFFSET_MISMATCH');
    expectError(await tus.call('PATCH', location, { headers: { 'content-type': OFFSET_TYPE }, body }), 400, 'BAD_REQUEST');
    expect((await tus.head(location)).headers['upload-offset']).to.equal('0');
    const first = await tus.patch(location, 0, body.subarray(0, 400));
    expect(first.status, first.text).to.equal(204);
    expect(first.headers['upload-offset']).to.equal('400');
    expect(first.headers['tus-resumable']).to.equal('1.0.0');
    expectError(await tus.patch(location, 0, body.subarray(0, 400)), 409, 'UPLOAD_OFFSET_MISMATCH');
    expectError(await tus.patch(location, 400, Buffer.concat([body.subarray(400), Buffer.from('one too many')])), 400, 'BAD_REQUEST');
    expect((await file('/up/patch-errors.bin', 'HEAD')).status, 'nothing past the length is written').to.equal(404);
    const head = await tus.head(location);
    expect(head.status).to.equal(200);
    expect(Number(head.headers['upload-offset'])).to.be.within(400, 999);
    const offset = Number(head.headers['upload-offset']);
    const last = await tus.patch(location, offset, body.subarray(offset));
    expect(last.status, last.text).to.equal(204);
    const got = await file('/up/patch-errors.bin');
    expect(got.status).to.equal(200);
    expect(got.body.equals(body)).to.equal(true);
  });

  it('checksums: matching sha256 and sha1 move the offset; a mismatch is 460 and moves nothing; md5 is 400', async () => {
    const body = patternBytes(300_000, 'checksums');
    const [a, b, c] = [body.subarray(0, 100_000), body.subarray(100_000, 200_000), body.subarray(200_000)] as [Buffer, Buffer, Buffer];
    const { location } = await tus.create('/up/checksums.bin', body.length);

    const withSha256 = await tus.patch(location, 0, a, { headers: { 'upload-checksum': `sha256 ${digest('sha256', a)}` } });
    expect(withSha256.status, withSha256.text).to.equal(204);
    expect(withSha256.headers['upload-offset']).to.equal('100000');

    const wrong = Buffer.from(b);
    wrong[wrong.length - 1] = (wrong[wrong.length - 1] as number) ^ 0xff;
    const mismatch = await tus.patch(location, 100_000, wrong, { headers: { 'upload-checksum': `sha256 ${digest('sha256', b)}` } });
    expectError(mismatch, 460, 'CHECKSUM_MISMATCH');
    expect((await tus.head(location)).headers['upload-offset'], 'a mismatched chunk does not count').to.equal('100000');
    const mismatchSha1 = await tus.patch(location, 100_000, wrong, { headers: { 'upload-checksum': `sha1 ${digest('sha1', b)}` } });
    expectError(mismatchSha1, 460, 'CHECKSUM_MISMATCH');
    expect((await tus.head(location)).headers['upload-offset']).to.equal('100000');

    const md5 = await tus.patch(location, 100_000, b, { headers: { 'upload-checksum': `md5 ${digest('md5', b)}` } });
    expectError(md5, 400, 'BAD_REQUEST');
    expect((await tus.head(location)).headers['upload-offset']).to.equal('100000');

    const withSha1 = await tus.patch(location, 100_000, b, { headers: { 'upload-checksum': `sha1 ${digest('sha1', b)}` } });
    expect(withSha1.status, withSha1.text).to.equal(204);
    expect(withSha1.headers['upload-offset']).to.equal('200000');
    const last = await tus.patch(location, 200_000, c, { headers: { 'upload-checksum': `sha256 ${digest('sha256', c)}` } });
    expect(last.status, last.text).to.equal(204);
    expect(last.headers['upload-offset']).to.equal('300000');
    const got = await file('/up/checksums.bin');
    expect(got.status).to.equal(200);
    expect(sha256(got.body), 'the refused bytes left nothing behind').to.equal(sha256(body));
  });

  it('creation-with-upload: the POST body is taken at offset 0, in part or whole', async () => {
    const body = patternBytes(3000, 'with-upload');
    const part = await tus.create('/up/with-upload-part.bin', body.length, { body: body.subarray(0, 1000) });
    expect(part.res.headers['upload-offset']).to.equal('1000');
    expect((await tus.head(part.location)).headers['upload-offset']).to.equal('1000');
    expect((await file('/up/with-upload-part.bin', 'HEAD')).status).to.equal(404);
    expect((await tus.patch(part.location, 1000, body.subarray(1000))).status).to.equal(204);
    expect((await file('/up/with-upload-part.bin')).body.equals(body)).to.equal(true);

    const whole = await tus.create('/up/with-upload-whole.bin', body.length, { body });
    expect(whole.res.headers['upload-offset']).to.equal(String(body.length));
    const got = await file('/up/with-upload-whole.bin');
    expect(got.status).to.equal(200);
    expect(got.body.equals(body)).to.equal(true);
    expectHead404(await tus.head(whole.location));
  });

  it('a 0-byte upload completes at once', async () => {
    const { res, location } = await tus.create('/up/empty.bin', 0);
    expect(res.headers['upload-offset']).to.equal('0');
    const got = await file('/up/empty.bin');
    expect(got.status).to.equal(200);
    expect(got.body.length).to.equal(0);
    expect(got.headers.etag).to.equal(`"${sha256('')}"`);
    expectHead404(await tus.head(location));
  });

  it('nothing is visible at the path until the last byte; then the file is there byte-exact, ETag its SHA-256, and the upload is gone', async () => {
    const body = patternBytes(3 * MiB + 17, 'visible');
    const { location, id } = await tus.create('/up/visible/late.bin', body.length);
    const cuts = [0, MiB, 2 * MiB + 5, body.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      expect((await file('/up/visible/late.bin', 'HEAD')).status, `before chunk ${i}`).to.equal(404);
      expect((await file('/up/visible/late.bin')).status, `before chunk ${i}`).to.equal(404);
      const res = await tus.patch(location, cuts[i] as number, body.subarray(cuts[i], cuts[i + 1]));
      expect(res.status, res.text).to.equal(204);
      expect(res.headers['upload-offset']).to.equal(String(cuts[i + 1]));
    }
    const got = await file('/up/visible/late.bin');
    expect(got.status).to.equal(200);
    expect(got.body.equals(body)).to.equal(true);
    expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
    const meta = await file('/up/visible/late.bin', 'HEAD');
    expect(meta.headers['x-callfs-mode'], 'the default mode').to.equal('0644');
    expectHead404(await tus.head(location));
    expectError(await tus.patch(location, body.length, Buffer.alloc(0)), 404, 'FILE_NOT_FOUND');
    expect(existsSync(partFile(id)), 'the part file is removed').to.equal(false);
  });

  it('replaces an existing file only at the last byte', async () => {
    expect((await request(`${server.url}/v1/files/up/replace.txt`, { method: 'PUT', token: KEYS.alice, body: 'old content' })).status).to.equal(201);
    const body = patternBytes(200_000, 'replace');
    const { location } = await tus.create('/up/replace.txt', body.length);
    expect((await tus.patch(location, 0, body.subarray(0, 150_000))).status).to.equal(204);
    expect((await file('/up/replace.txt')).text, 'the old file is served until the upload completes').to.equal('old content');
    expect((await tus.patch(location, 150_000, body.subarray(150_000))).status).to.equal(204);
    const got = await file('/up/replace.txt');
    expect(got.body.equals(body)).to.equal(true);
    expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
  });

  it('DELETE terminates: 204, then HEAD, PATCH and DELETE are 404 and the bytes are gone', async () => {
    const { location, id } = await tus.create('/up/terminated.bin', 1000);
    expect((await tus.patch(location, 0, Buffer.alloc(600, 1))).status).to.equal(204);
    expect(existsSync(partFile(id))).to.equal(true);
    const res = await tus.call('DELETE', location);
    expect(res.status, res.text).to.equal(204);
    expect(res.headers['tus-resumable']).to.equal('1.0.0');
    expectHead404(await tus.head(location));
    expectError(await tus.patch(location, 600, Buffer.alloc(400, 1)), 404, 'FILE_NOT_FOUND');
    expectError(await tus.call('DELETE', location), 404, 'FILE_NOT_FOUND');
    expect(existsSync(partFile(id)), 'the part file is removed').to.equal(false);
    expect((await file('/up/terminated.bin', 'HEAD')).status).to.equal(404);
  });

  it('only its creator sees an upload: another user gets 404 on HEAD, PATCH and DELETE, and it goes on untouched', async () => {
    const body = patternBytes(2000, 'owner');
    const { location } = await tus.create('/up/owned.bin', body.length);
    expect((await tus.patch(location, 0, body.subarray(0, 500))).status).to.equal(204);
    for (const token of [KEYS.bob, KEYS.root]) {
      expectHead404(await tus.head(location, token));
      expectError(await tus.patch(location, 500, body.subarray(500), { token }), 404, 'FILE_NOT_FOUND');
      expectError(await tus.call('DELETE', location, { token }), 404, 'FILE_NOT_FOUND');
    }
    expectHead404(await tus.head('/v1/uploads/not-an-id'));
    expectHead404(await tus.head(`/v1/uploads/${'f'.repeat(32)}`));
    const head = await tus.head(location);
    expect(head.status).to.equal(200);
    expect(head.headers['upload-offset']).to.equal('500');
    expect((await tus.patch(location, 500, body.subarray(500))).status).to.equal(204);
    const got = await file('/up/owned.bin');
    expect(got.body.equals(body)).to.equal(true);
    expect((await file('/up/owned.bin', 'GET', KEYS.root)).status).to.equal(200);
  });

  it('the mode metadata sets the new file\'s mode; a path ending in / takes the filename', async () => {
    const { location } = await tus.create('/up/modes/private.bin', 3, { metadata: { mode: '0640' } });
    expect((await tus.patch(location, 0, Buffer.from('abc'))).status).to.equal(204);
    const meta = await file('/up/modes/private.bin', 'HEAD');
    expect(meta.status).to.equal(200);
    expect(meta.headers['x-callfs-mode']).to.equal('0640');
    expect(meta.headers['x-callfs-size']).to.equal('3');

    const named = await tus.create('/up/modes/', 4, { metadata: { filename: 'named.txt' }, body: Buffer.from('name') });
    expect(named.res.headers['upload-offset']).to.equal('4');
    const got = await file('/up/modes/named.txt');
    expect(got.status).to.equal(200);
    expect(got.text).to.equal('name');
  });

  it('the same permissions and checks as PUT at creation: 403 into another\'s directory or over another\'s file, 400/409 onto a directory or below a file', async () => {
    const asRoot = (method: string, path: string, body?: string): Promise<TestResponse> => request(`${server.url}/v1/files${path}`, { method, token: KEYS.root, ...(body === undefined ? {} : { body }) });
    const post = (path: string): Promise<TestResponse> => tus.call('POST', '/v1/uploads', { headers: { 'upload-length': '10', 'upload-metadata': uploadMetadata({ path }) } });
    expect((await asRoot('POST', '/locked/')).status).to.equal(201);
    expectError(await post('/locked/a.bin'), 403, 'PERMISSION_DENIED');
    expectError(await post('/locked/deeper/a.bin'), 403, 'PERMISSION_DENIED');
    expect((await asRoot('PUT', '/roots-file.txt', 'root\'s')).status).to.equal(201);
    expectError(await post('/roots-file.txt'), 403, 'PERMISSION_DENIED');
    expect((await request(`${server.url}/v1/files/up/checks/file.txt`, { method: 'PUT', token: KEYS.alice, body: 'x' })).status).to.equal(201);
    expectError(await post('/up/checks'), 400, 'IS_A_DIRECTORY');
    expectError(await post('/up/checks/file.txt/below.bin'), 409, 'NOT_A_DIRECTORY');
    expect((await asRoot('GET', '/roots-file.txt')).text, 'untouched').to.equal('root\'s');
  });

  it('permissions are checked again at completion: 403 on the last PATCH and nothing appears', async () => {
    const asRoot = (method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<TestResponse> => request(`${server.url}/v1/files${path}`, { method, token: KEYS.root, ...options });

    expect((await asRoot('POST', '/dropbox/', { headers: { 'x-callfs-mode': '0777' } })).status).to.equal(201);
    const body = patternBytes(1000, 'recheck');
    const { location } = await tus.create('/dropbox/a.bin', body.length);
    expect((await tus.patch(location, 0, body.subarray(0, 500))).status).to.equal(204);
    const chmod = await asRoot('PATCH', '/dropbox', { body: JSON.stringify({ mode: '0755' }), headers: { 'content-type': 'application/json' } });
    expect(chmod.status, chmod.text).to.equal(200);
    const last = await tus.patch(location, 500, body.subarray(500));
    expectError(last, 403, 'PERMISSION_DENIED');
    expect((await asRoot('HEAD', '/dropbox/a.bin')).status, 'nothing appears').to.equal(404);

    // The upload stays: once the user may write again, the complete upload is placed.
    expect((await asRoot('PATCH', '/dropbox', { body: JSON.stringify({ mode: '0777' }), headers: { 'content-type': 'application/json' } })).status).to.equal(200);
    const head = await tus.head(location);
    expect(head.status, head.text).to.equal(200);
    expect(head.headers['upload-offset']).to.equal(String(body.length));
    const got = await file('/dropbox/a.bin');
    expect(got.status).to.equal(200);
    expect(got.body.equals(body)).to.equal(true);
  });
});

describe('resumable uploads (tus 1.0): limits and expiry', function () {
  this.timeout(120_000);
  let servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    servers = [];
  });
  const start = async (uploads: Record<string, unknown>): Promise<TestServer> => {
    const server = await startTestServer({ uploads });
    servers.push(server);
    return server;
  };

  it('uploads.max_per_user: a user with that many unfinished uploads gets 429 for another', async () => {
    const server = await start({ max_per_user: 2 });
    const tus = tusClient(server.url, KEYS.alice);
    const first = await tus.create('/limit/1.bin', 10);
    await tus.create('/limit/2.bin', 10);
    const third = await tus.call('POST', '/v1/uploads', { headers: { 'upload-length': '10', 'upload-metadata': uploadMetadata({ path: '/limit/3.bin' }) } });
    expectError(third, 429, 'RATE_LIMIT_EXCEEDED');
    expect(Number(third.headers['retry-after'])).to.be.above(0);
    await tus.create('/limit/bob.bin', 10, { token: KEYS.bob });
    // A terminated or a finished upload no longer counts.
    expect((await tus.call('DELETE', first.location)).status).to.equal(204);
    const again = await tus.create('/limit/3.bin', 10);
    expect((await tus.patch(again.location, 0, Buffer.alloc(10, 7))).status).to.equal(204);
    await tus.create('/limit/4.bin', 10);
  });

  it('uploads.expire_after: an upload that gets no bytes expires (404) and the sweep removes its bytes', async () => {
    const server = await start({ expire_after: '1s', sweep_interval: '200ms' });
    const tus = tusClient(server.url, KEYS.alice);
    const { location, id } = await tus.create('/expiry/a.bin', 100);
    const res = await tus.patch(location, 0, Buffer.alloc(10, 1));
    expect(res.status).to.equal(204);
    const part = join(server.dataDir, 'uploads', `${id}.part`);
    expect(existsSync(part), 'the part file is there while the upload lives').to.equal(true);
    await waitFor('the upload to expire and its part file to go', 20_000, async () => ((await tus.head(location)).status === 404 && !existsSync(part) ? true : undefined));
    expectHead404(await tus.head(location));
    expectError(await tus.patch(location, 10, Buffer.alloc(90, 1)), 404, 'FILE_NOT_FOUND');
    expect((await request(`${server.url}/v1/files/expiry/a.bin`, { method: 'HEAD', token: KEYS.alice })).status).to.equal(404);
  });

  it('an expired upload is 404 at once, before any sweep, and no longer counts against the limit', async () => {
    const server = await start({ expire_after: '1s', sweep_interval: '0', max_per_user: 1 });
    const tus = tusClient(server.url, KEYS.alice);
    const { location, id } = await tus.create('/expiry/b.bin', 100);
    await waitFor('the upload to expire', 20_000, async () => ((await tus.head(location)).status === 404 ? true : undefined));
    expect(existsSync(join(server.dataDir, 'uploads', `${id}.part`)), 'no sweep ran').to.equal(true);
    await tus.create('/expiry/c.bin', 100);
  });
});
