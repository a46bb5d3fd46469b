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

    it('PUTs (which take no path lock) racing chmods of one file: no 412 and no 5xx, and the file ends whole with one of the modes', async () => {
      expect((await call('PUT', '/v1/files/race/chmod.bin', { body: 'first' })).status).to.equal(201);
      const bodies = Array.from({ length: 30 }, (_, i) => Buffer.concat([Buffer.from(`put ${i} `), randomBytes(5_000)]));
      const modes = ['0600', '0640', '0644', '0660'];
      const results = await Promise.all([
        ...bodies.map((body) => call('PUT', '/v1/files/race/chmod.bin', { body })),
        ...Array.from({ length: 30 }, (_, i) => call('PATCH', '/v1/files/race/chmod.bin', { body: JSON.stringify({ mode: modes[i % 4] }), headers: { 'content-type': 'application/json' } })),
      ]);
      expect(results.map((r) => `${r.status} ${r.status >= 300 ? r.text : ''}`).filter((s) => !s.startsWith('200'))).to.deep.equal([]);
      const final = await call('GET', '/v1/files/race/chmod.bin');
      expect(bodies.filter((b) => b.equals(final.body))).to.have.length(1);
      expect(modes).to.include(final.headers['x-callfs-mode']);
    });

    it('20 concurrent create-only PUTs (If-None-Match: *) to one path: exactly one creates it, the others get 412', async () => {
      const bodies = Array.from({ length: 20 }, (_, i) => Buffer.concat([Buffer.from(`create ${i} `), randomBytes(10_000)]));
      const results = await Promise.all(bodies.map((body) => call('PUT', '/v1/files/race/create-only.bin', { body, headers: { 'if-none-match': '*' } })));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).to.deep.equal([201, ...Array<number>(19).fill(412)]);
      const winner = bodies[results.findIndex((r) => r.status === 201)] as Buffer;
      expect((await call('GET', '/v1/files/race/create-only.bin')).body.equals(winner)).to.equal(true);
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

    it('a write decided before its upload is decided again when what it read changed during the upload', async () => {
      const { PassThrough } = await import('node:stream');
      // Starts a PUT, sends half its body, lets `change` run while the server holds the half, then sends the rest.
      const putAround = async (path: string, body: Buffer, change: () => Promise<void>, headers: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof call>>> => {
        const stream = new PassThrough();
        stream.write(body.subarray(0, body.length / 2));
        const pending = call('PUT', path, { body: stream, headers });
        // By now the server has made its checks (one lookup) and is reading the body.
        await new Promise((r) => setTimeout(r, 400));
        await change();
        stream.end(body.subarray(body.length / 2));
        return pending;
      };
      const body = randomBytes(256 * 1024);

      // The parent made read-only during the upload: refused, nothing created.
      expect((await call('POST', '/v1/files/guard/ro/')).status).to.equal(201);
      const denied = await putAround('/v1/files/guard/ro/f.bin', body, async () => {
        const chmod = await call('PATCH', '/v1/files/guard/ro', { body: JSON.stringify({ mode: '0555' }), headers: { 'content-type': 'application/json' } });
        expect(chmod.status).to.equal(200);
      });
      expect(denied.status).to.equal(403);
      expect(denied.json.code).to.equal('PERMISSION_DENIED');
      expect((await call('HEAD', '/v1/files/guard/ro/f.bin')).status).to.equal(404);

      // If-Match on the version read at the start; another PUT replaces the file meanwhile: 412, the other content stays.
      const first = await call('PUT', '/v1/files/guard/im.bin', { body: 'first' });
      const stale = await putAround('/v1/files/guard/im.bin', body, async () => {
        expect((await call('PUT', '/v1/files/guard/im.bin', { body: 'second' })).status).to.equal(200);
      }, { 'if-match': String(first.headers.etag) });
      expect(stale.status).to.equal(412);
      expect((await call('GET', '/v1/files/guard/im.bin')).text).to.equal('second');

      // The parent renamed during the upload: the file is created at the path asked for, not inside the moved directory.
      expect((await call('POST', '/v1/files/guard/mv/')).status).to.equal(201);
      const created = await putAround('/v1/files/guard/mv/f.bin', body, async () => {
        const rename = await call('PATCH', '/v1/files/guard/mv', { body: JSON.stringify({ name: 'moved' }), headers: { 'content-type': 'application/json' } });
        expect(rename.status).to.equal(200);
      });
      expect(created.status).to.equal(201);
      expect(sha256((await call('GET', '/v1/files/guard/mv/f.bin')).body)).to.equal(sha256(body));
      expect((await call('GET', '/v1/directories/guard/moved')).json.count).to.equal(0);
      expect((await call('HEAD', '/v1/files/guard/moved/f.bin')).status).to.equal(404);
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
      if (chunked instanceof Error) expect.fail(`the client saw ${chunked.message} instead of a 413`);
      expect(chunked.status).to.equal(413);
      expect(chunked.json.code).to.equal('PAYLOAD_TOO_LARGE');
      expect((await call('HEAD', '/v1/files/limits/declared.bin')).status).to.equal(404);
      expect((await call('HEAD', '/v1/files/limits/chunked.bin')).status).to.equal(404);
      expect((await call('PUT', '/v1/files/limits/fits.bin', { body: randomBytes(1024 * 1024) })).status).to.equal(201);
    });
  });
}
