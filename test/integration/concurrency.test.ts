import { expect } from 'chai';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { request } from '../support/http.js';
import { KEYS, type TestServer } from '../support/callfs.js';
import { clusterStack, embeddedStack } from '../support/stacks.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Start an upload, send `sent` bytes, then cut the connection. Resolves once the socket is gone. */
function abortedUpload(url: string, sent: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = https.request({ method: 'PUT', hostname: u.hostname, port: u.port, path: u.pathname, rejectUnauthorized: false, headers: { authorization: `Bearer ${KEYS.alice}`, 'content-length': String(sent.length * 10) } });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(sent, () => setTimeout(() => req.destroy(), 100));
  });
}

for (const stack of [embeddedStack, clusterStack]) {
  describe(`concurrency and failures — ${stack.name}`, function () {
    this.timeout(300_000);
    let server: TestServer;
    const call = (method: string, path: string, options: Parameters<typeof request>[1] = {}) => request(`${server.url}${path}`, { method, token: KEYS.alice, ...options });
    before(async function () {
      await stack.require(this);
      server = await stack.start({ server: { max_upload_bytes: '4MiB' } });
    });
    after(async () => {
      await server?.stop();
    });

    it('50 concurrent PUTs of different content to one path end with exactly one of them intact', async () => {
      const bodies = Array.from({ length: 50 }, (_, i) => Buffer.concat([Buffer.from(`body ${i} `), randomBytes(20_000)]));
      const results = await Promise.all(bodies.map((body) => call('PUT', '/v1/files/race/one.bin', { body })));
      expect(results.map((r) => r.status).filter((s) => s !== 200 && s !== 201)).to.deep.equal([]);
      expect(results.filter((r) => r.status === 201)).to.have.length(1);
      const final = await call('GET', '/v1/files/race/one.bin');
      const match = bodies.filter((b) => b.equals(final.body));
      expect(match).to.have.length(1);
      expect(final.headers.etag).to.equal(`"${sha256(final.body)}"`);
    });

    it('concurrent mkdir -p of overlapping trees all succeed and build one tree', async () => {
      const paths = Array.from({ length: 20 }, (_, i) => `/v1/files/overlap/a/b/${i % 4 === 0 ? '' : `c${i % 5}/d${i}/`}`);
      const results = await Promise.all(paths.map((p) => call('POST', p.endsWith('/') ? p : `${p}/`)));
      expect(results.map((r) => r.status).filter((s) => s !== 200 && s !== 201)).to.deep.equal([]);
      const tree = await call('GET', '/v1/directories/overlap?recursive=true');
      const dirs = tree.json.items.map((e: { path: string }) => e.path);
      expect(new Set(dirs).size).to.equal(dirs.length);
      expect(dirs).to.include.members(['/overlap/a', '/overlap/a/b', '/overlap/a/b/c1/d1']);
    });

    it('renames a directory with 1,000 descendants atomically', async () => {
      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(Array.from({ length: 100 }, (_, i) => call('PUT', `/v1/files/big/src/d${batch}/f${i}.txt`, { body: `${batch}/${i}` })));
      }
      const res = await call('PATCH', '/v1/files/big/src', { body: JSON.stringify({ name: 'dst' }) });
      expect(res.status).to.equal(200);
      const moved = await call('GET', '/v1/directories/big/dst?recursive=true');
      expect(moved.json.count).to.equal(1010);
      expect((await call('GET', '/v1/directories/big/src')).status).to.equal(404);
      expect((await call('GET', '/v1/files/big/dst/d7/f42.txt')).text).to.equal('7/42');
    });

    it('an upload cut off halfway leaves the previous content, and no entry for a new file', async () => {
      await call('PUT', '/v1/files/abort/existing.bin', { body: 'previous' });
      await abortedUpload(`${server.url}/v1/files/abort/existing.bin`, randomBytes(64 * 1024));
      await abortedUpload(`${server.url}/v1/files/abort/new.bin`, randomBytes(64 * 1024));
      await new Promise((r) => setTimeout(r, 200));
      expect((await call('GET', '/v1/files/abort/existing.bin')).text).to.equal('previous');
      expect((await call('HEAD', '/v1/files/abort/new.bin')).status).to.equal(404);
    });

    it('a body over server.max_upload_bytes is 413: by Content-Length before reading, and when a chunked body grows past it', async () => {
      const declared = await call('PUT', '/v1/files/limits/declared.bin', { body: randomBytes(5 * 1024 * 1024) }).catch((err: Error) => err);
      if (declared instanceof Error) expect.fail(`the client saw ${declared.message} instead of a 413`);
      expect(declared.status).to.equal(413);
      expect(declared.json.code).to.equal('PAYLOAD_TOO_LARGE');
      const { Readable } = await import('node:stream');
      const chunks = Array.from({ length: 6 }, () => randomBytes(1024 * 1024));
      const chunked = await call('PUT', '/v1/files/limits/chunked.bin', { body: Readable.from(chunks) }).catch((err: Error) => err);
      if (!(chunked instanceof Error)) {
        expect(chunked.status).to.equal(413);
        expect(chunked.json.code).to.equal('PAYLOAD_TOO_LARGE');
      }
      expect((await call('HEAD', '/v1/files/limits/declared.bin')).status).to.equal(404);
      expect((await call('HEAD', '/v1/files/limits/chunked.bin')).status).to.equal(404);
      expect((await call('PUT', '/v1/files/limits/fits.bin', { body: randomBytes(1024 * 1024) })).status).to.equal(201);
    });
  });
}
