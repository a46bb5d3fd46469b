import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { type TestResponse } from '../support/http.js';
import { scrape } from '../support/prometheus.js';
import { KEYS, startTestServer, type TestServer } from '../support/callfs.js';
import { davSession } from '../support/webdav.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('WebDAV protocol: COPY, MOVE, permissions and client habits (embedded server over HTTPS)', function () {
  this.timeout(120_000);
  let server: TestServer;
  const { dav, v1, propfind, mkcol, put, url } = davSession(() => server);
  /** Sum of the CAS blob counts over every image (root only). */
  const casBlobs = async (): Promise<number> => {
    const res = await v1('GET', '/v1/cas/images', { as: 'root' });
    expect(res.status).to.equal(200);
    return (res.json.images as { blob_count: number }[]).reduce((n, i) => n + i.blob_count, 0);
  };

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  describe('COPY and MOVE', () => {
    const copy = (from: string, to: string, headers: Record<string, string> = {}): Promise<TestResponse> => dav('COPY', from, { headers: { destination: url(to), ...headers } });
    const move = (from: string, to: string, headers: Record<string, string> = {}): Promise<TestResponse> => dav('MOVE', from, { headers: { destination: url(to), ...headers } });

    before(async () => {
      await mkcol('/cp');
      await mkcol('/cp/tree');
      await mkcol('/cp/tree/nested');
      await put('/cp/tree/one.txt', 'one');
      await put('/cp/tree/nested/two.txt', 'two');
    });

    it('copies a file: 201 new, 204 over an existing one, 412 with Overwrite: F', async () => {
      await put('/cp/src.txt', 'source bytes');
      expect((await copy('/cp/src.txt', '/cp/dst.txt')).status).to.equal(201);
      expect((await v1('GET', '/v1/files/cp/dst.txt')).text).to.equal('source bytes');
      expect((await v1('GET', '/v1/files/cp/src.txt')).text, 'the source stays').to.equal('source bytes');
      await put('/cp/other.txt', 'other');
      expect((await copy('/cp/src.txt', '/cp/other.txt')).status).to.equal(204);
      expect((await v1('GET', '/v1/files/cp/other.txt')).text).to.equal('source bytes');
      await put('/cp/kept.txt', 'kept');
      expect((await copy('/cp/src.txt', '/cp/kept.txt', { overwrite: 'F' })).status).to.equal(412);
      expect((await v1('GET', '/v1/files/cp/kept.txt')).text).to.equal('kept');
    });

    it('Destination as a path under the prefix works; outside the prefix is 502; onto itself 403; no parent 409', async () => {
      expect((await dav('COPY', '/cp/src.txt', { headers: { destination: '/webdav/cp/by-path.txt' } })).status).to.equal(201);
      expect((await v1('GET', '/v1/files/cp/by-path.txt')).text).to.equal('source bytes');
      for (const destination of [`${server.url}/v1/files/cp/escaped.txt`, '/elsewhere/escaped.txt', 'https://other.example.com/webdav/cp/escaped.txt']) {
        expect((await dav('COPY', '/cp/src.txt', { headers: { destination } })).status, destination).to.equal(502);
      }
      expect((await v1('HEAD', '/v1/files/cp/escaped.txt')).status).to.equal(404);
      expect((await copy('/cp/src.txt', '/cp/src.txt')).status).to.equal(403);
      expect((await copy('/cp/src.txt', '/cp/missing/dst.txt')).status).to.equal(409);
      expect((await copy('/cp/nothing-here', '/cp/dst2.txt')).status).to.equal(404);
    });

    it('copies a collection with Depth infinity (the tree) and Depth 0 (only the collection)', async () => {
      expect((await copy('/cp/tree', '/cp/deep-copy')).status).to.equal(201);
      expect((await v1('GET', '/v1/files/cp/deep-copy/one.txt')).text).to.equal('one');
      expect((await v1('GET', '/v1/files/cp/deep-copy/nested/two.txt')).text).to.equal('two');
      expect((await copy('/cp/tree', '/cp/shallow-copy', { depth: '0' })).status).to.equal(201);
      const shallow = await propfind('/cp/shallow-copy', '1');
      expect(shallow.map((r) => r.path)).to.deep.equal(['/webdav/cp/shallow-copy/']);
      expect((await copy('/cp/tree', '/cp/bad-depth', { depth: '1' })).status).to.equal(400);
    });

    it('on the CAS a COPY names the same blob: no byte copy', async () => {
      // A byte copy of the same content would end in the same blob (content addressing), so the
      // blob count alone cannot tell; the bytes written into CAS temp files can.
      const written = async (): Promise<number> => (await scrape(server.url, { token: KEYS.root, ca: server.ca })).value('callfs_cas_written_bytes_total');
      const body = randomBytes(300_000);
      const beforePut = await written();
      await put('/cp/unique.bin', body);
      expect((await written()) - beforePut, 'the PUT is counted (the counter works)').to.be.at.least(body.length);
      const blobsBefore = await casBlobs();
      const writtenBefore = await written();
      expect((await copy('/cp/unique.bin', '/cp/unique-copy.bin')).status).to.equal(201);
      expect((await copy('/cp/tree', '/cp/tree-copy-2')).status).to.equal(201);
      expect(await casBlobs(), 'blob count after the copies').to.equal(blobsBefore);
      expect(await written(), 'bytes written into the CAS by the copies').to.equal(writtenBefore);
      const got = await v1('GET', '/v1/files/cp/unique-copy.bin');
      expect(sha256(got.body)).to.equal(sha256(body));
      expect(got.headers.etag).to.equal(`"${sha256(body)}"`);
    });

    it('moves a file and a collection with its children; Overwrite: F onto an existing one is 412', async () => {
      await put('/cp/mv.txt', 'moving');
      expect((await move('/cp/mv.txt', '/cp/moved.txt')).status).to.equal(201);
      expect((await v1('HEAD', '/v1/files/cp/mv.txt')).status).to.equal(404);
      expect((await v1('GET', '/v1/files/cp/moved.txt')).text).to.equal('moving');

      expect((await copy('/cp/tree', '/cp/to-move')).status).to.equal(201);
      expect((await move('/cp/to-move', '/cp/was-moved')).status).to.equal(201);
      expect((await v1('HEAD', '/v1/files/cp/to-move')).status).to.equal(404);
      expect((await v1('GET', '/v1/files/cp/was-moved/nested/two.txt')).text).to.equal('two');

      await put('/cp/blocker.txt', 'blocker');
      expect((await move('/cp/moved.txt', '/cp/blocker.txt', { overwrite: 'F' })).status).to.equal(412);
      expect((await v1('GET', '/v1/files/cp/moved.txt')).text).to.equal('moving');
      expect((await move('/cp/moved.txt', '/cp/blocker.txt')).status).to.equal(204);
      expect((await v1('GET', '/v1/files/cp/blocker.txt')).text).to.equal('moving');
      expect((await move('/cp/was-moved', '/cp/depth-zero', { depth: '0' })).status, 'MOVE of a collection is Depth infinity only').to.equal(400);
    });
  });

  describe('permissions (the same checks as /v1)', () => {
    before(async () => {
      await mkcol('/alices');
      await put('/alices/public.txt', 'public');
      expect((await v1('PUT', '/v1/files/alices/private.txt', { body: 'private', headers: { 'x-callfs-mode': '0600' } })).status).to.equal(201);
    });

    it('bob cannot PUT, MKCOL or DELETE in alice’s 0755 directory, nor read her 0600 file', async () => {
      expect((await dav('PUT', '/alices/bobs.txt', { as: 'bob', body: 'b' })).status).to.equal(403);
      expect((await dav('MKCOL', '/alices/bobs', { as: 'bob' })).status).to.equal(403);
      expect((await dav('DELETE', '/alices/public.txt', { as: 'bob' })).status).to.equal(403);
      expect((await dav('PUT', '/alices/public.txt', { as: 'bob', body: 'vandal' })).status).to.equal(403);
      expect((await dav('GET', '/alices/private.txt', { as: 'bob' })).status).to.equal(403);
      expect((await dav('GET', '/alices/public.txt', { as: 'bob' })).text).to.equal('public');
      expect((await dav('COPY', '/alices/private.txt', { as: 'bob', headers: { destination: url('/bob-stole.txt') } })).status).to.equal(403);
      expect((await v1('HEAD', '/v1/files/bob-stole.txt')).status).to.equal(404);
      expect((await v1('GET', '/v1/files/alices/public.txt')).text).to.equal('public');
    });

    it('a 0700 collection cannot be listed by another user; root sees everything', async () => {
      expect((await v1('POST', '/v1/files/alices/closed/', { headers: { 'x-callfs-mode': '0700' } })).status).to.equal(201);
      expect((await dav('PROPFIND', '/alices/closed', { as: 'bob', headers: { depth: '1' } })).status).to.equal(403);
      expect((await dav('PROPFIND', '/alices/closed', { as: 'root', headers: { depth: '1' } })).status).to.equal(207);
      expect((await dav('GET', '/alices/private.txt', { as: 'root' })).text).to.equal('private');
    });
  });

  describe('client habits', () => {
    it('Windows: a 0-byte PUT and then the real PUT', async () => {
      await mkcol('/win');
      expect((await dav('PUT', '/win/report.docx', { body: Buffer.alloc(0) })).status).to.equal(201);
      expect((await v1('HEAD', '/v1/files/win/report.docx')).headers['content-length']).to.equal('0');
      const body = randomBytes(50_000);
      expect((await dav('PUT', '/win/report.docx', { body })).status).to.equal(204);
      expect(sha256((await dav('GET', '/win/report.docx')).body)).to.equal(sha256(body));
    });

    it('macOS: ._ AppleDouble files are stored and listed as ordinary files', async () => {
      await mkcol('/mac');
      await put('/mac/photo.jpg', 'jpeg');
      await put('/mac/._photo.jpg', Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]));
      const listing = await propfind('/mac', '1');
      expect(listing.map((r) => r.path)).to.include('/webdav/mac/._photo.jpg');
      const v1list = await v1('GET', '/v1/directories/mac');
      expect(JSON.stringify(v1list.json)).to.include('._photo.jpg');
      expect((await v1('GET', '/v1/files/mac/._photo.jpg')).body.equals(Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]))).to.equal(true);
    });
  });
});
